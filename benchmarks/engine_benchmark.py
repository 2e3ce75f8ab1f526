"""Training throughput of ``thesislib.engine``: bf16 autocast, channels_last and torch.compile
against an fp32 NCHW baseline measured in the same run.

Two workloads, the backbones of the built chapters at their full-scale shapes:

* ``wrn``: Wide-ResNet-16-4 (G-softmax's family) on CIFAR-shaped batches, 128 x 3 x 32 x 32;
* ``deeplab``: DeepLab-LargeFOV (SEC) on 8 x 3 x 321 x 321 crops, 21 classes.

Each variant trains ``--steps`` optimiser steps through :class:`thesislib.engine.Trainer` on
random tensors already on the device (so the numbers are the engine's and the model's, not
data loading), after ``--warmup`` steps that also absorb compilation. Images per second is
the median over ``--repeats`` timed windows; the ratio column is against the fp32 NCHW
baseline of the same workload. On a CPU only the baseline and channels_last make sense
(AMP and channels_last are CUDA-only in the engine), so the script needs a CUDA device.

Run: ``python benchmarks/engine_benchmark.py [--json results/engine/benchmark_<gpu>.json]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from thesislib.device import describe_device
from thesislib.engine import IndexDataset, TrainConfig, Trainer
from thesislib.nn import wrn
from thesislib.nn.deeplab import deeplab_largefov
from thesislib.repro import provenance, write_json

VARIANTS: dict[str, dict[str, bool]] = {
    "fp32": {"amp": False, "channels_last": False, "compile": False},
    "bf16": {"amp": True, "channels_last": False, "compile": False},
    "bf16+cl": {"amp": True, "channels_last": True, "compile": False},
    "bf16+cl+compile": {"amp": True, "channels_last": True, "compile": True},
}


def _workload(name: str, device: torch.device) -> tuple[Any, torch.Tensor, torch.Tensor, int]:
    generator = torch.Generator(device="cpu").manual_seed(0)
    if name == "wrn":
        model = wrn(16, 4, 10)
        x = torch.randn(128, 3, 32, 32, generator=generator)
        y = torch.randint(0, 10, (128,), generator=generator)
        return model, x.to(device), y.to(device), 128
    model = deeplab_largefov(21)
    x = torch.randn(8, 3, 321, 321, generator=generator)
    y = torch.randint(0, 21, (8, 41, 41), generator=generator)
    return model, x.to(device), y.to(device), 8


def _time_variant(workload: str, flags: dict[str, bool], device: torch.device, steps: int, warmup: int,
                  repeats: int) -> list[float]:
    torch.manual_seed(0)
    model, x, y, batch = _workload(workload, device)
    if flags["channels_last"]:
        x = x.contiguous(memory_format=torch.channels_last)

    def step_fn(m, _indices):
        logits = m(x)
        if logits.dim() == 4 and logits.shape[-2:] != y.shape[-2:]:
            logits = F.interpolate(logits, size=y.shape[-2:], mode="bilinear", align_corners=False)
        return F.cross_entropy(logits.float(), y), {}

    total = warmup + repeats * steps
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    marks: list[float] = []

    def on_step(trainer: Trainer) -> None:
        if trainer.step >= warmup and (trainer.step - warmup) % steps == 0:
            torch.cuda.synchronize(device)
            marks.append(time.perf_counter())

    config = TrainConfig(epochs=1, batch_size=1, max_steps=total, drop_last=True, progress="none",
                         log_every=10_000, **flags)
    Trainer(model, optimizer, IndexDataset(total), step_fn, config, device, on_step=on_step).fit()
    return [batch * steps / (b - a) for a, b in zip(marks, marks[1:])]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results (and provenance) to this JSON file")
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps per timed window")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["wrn", "deeplab"], choices=["wrn", "deeplab"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("engine_benchmark.py needs a CUDA device (AMP and channels_last act on CUDA only)")
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    rows = []
    print(f"{'workload':<9} {'variant':<17} {'img/s':>10} {'vs fp32':>8}")
    for workload in args.workloads:
        baseline = None
        for variant in args.variants:
            rates = _time_variant(workload, VARIANTS[variant], device, args.steps, args.warmup, args.repeats)
            rate = statistics.median(rates)
            baseline = rate if variant == "fp32" else baseline
            ratio = rate / baseline if baseline else None
            rows.append({"workload": workload, "variant": variant, "images_per_s": rate, "windows": rates,
                         "ratio_vs_fp32": ratio})
            shown = f"{ratio:.2f}x" if ratio else "-"
            print(f"{workload:<9} {variant:<17} {rate:>10.1f} {shown:>8}", flush=True)
    if args.json:
        write_json(args.json, {"device": describe_device(device), "steps": args.steps, "warmup": args.warmup,
                               "repeats": args.repeats, "rows": rows,
                               "provenance": provenance(config=vars(args), device=device)})
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""PixelCNN++ sampling speed: naive (one full forward per pixel) vs the exact fast sampler.

Model: ``PixelCNNpp(updown=False)`` (the variant of the Pyramid PixelCNN and PIC's f^θ) with a
3-channel, 10-component DMOL head, at ``--size`` x ``--size`` (default 32) for batch 1 and 16 in one
run. Both samplers start from the same generator seed; the script checks that they return the same
samples, then prints samples per second and the ratio fast / naive. Goal (issue 8): >= 20x on a GPU;
the CPU ratio is measured and reported as is.

Run: ``python benchmarks/pixelcnn_sampling.py [--json out.json] [--nr-resnet 2] [--nr-filters 32]``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch

from thesislib.device import describe_device
from thesislib.nn.pixelcnn import PixelCNNpp, dmol_params_count, dmol_step, sample_fast, sample_naive
from thesislib.repro import provenance, write_json

GPU_GOAL = 20.0


def _timed(fn, cuda: bool) -> tuple[float, torch.Tensor]:
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def _gen(device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(1)


def run(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    model = PixelCNNpp(3, dmol_params_count(3, 10), nr_resnet=args.nr_resnet, nr_filters=args.nr_filters,
                       updown=False, dropout=0.0).to(device).eval()
    step = dmol_step(3, 10)
    rows = []
    for batch in args.batches:
        shape = (batch, 3, args.size, args.size)
        cuda = device.type == "cuda"
        t_naive, a = _timed(lambda s=shape: sample_naive(model, s, step, _gen(device)), cuda)
        t_fast, b = _timed(lambda s=shape: sample_fast(model, s, step, _gen(device)), cuda)
        rows.append(dict(device=str(device), batch=batch, size=args.size, naive_s=t_naive, fast_s=t_fast,
                         naive_samples_per_s=batch / t_naive, fast_samples_per_s=batch / t_fast,
                         ratio=t_naive / t_fast, identical=bool(torch.equal(a, b))))
        r = rows[-1]
        print(f"{r['device']:<6} batch {batch:>3}  naive {r['naive_samples_per_s']:9.4f} samples/s  "
              f"fast {r['fast_samples_per_s']:9.4f} samples/s  ratio {r['ratio']:6.2f}x  identical={r['identical']}",
              flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the results (and provenance) to this JSON file")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--nr-resnet", type=int, default=2)
    parser.add_argument("--nr-filters", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cpu-only", action="store_true", help="skip CUDA even when available")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    print(f"torch {torch.__version__}; CPU: {describe_device(torch.device('cpu'))}; {args.threads} threads")
    if hasattr(os, "getloadavg"):
        print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    rows = [r for d in devices for r in run(args, d)]
    cuda_ratios = [r["ratio"] for r in rows if r["device"].startswith("cuda")]
    goal = (f"measured min {min(cuda_ratios):.1f}x -> {'MET' if min(cuda_ratios) >= GPU_GOAL else 'NOT MET'}"
            if cuda_ratios else "not measured (no CUDA device)")
    print(f"GPU goal: fast >= {GPU_GOAL:.0f}x naive samples/s at {args.size}x{args.size}: {goal}")
    if args.json:
        config = dict(size=args.size, batches=args.batches, nr_resnet=args.nr_resnet, nr_filters=args.nr_filters,
                      threads=args.threads, n_mix=10, channels=3, updown=False)
        write_json(args.json, dict(rows=rows, gpu_goal=GPU_GOAL, provenance=provenance(config, devices[-1])))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

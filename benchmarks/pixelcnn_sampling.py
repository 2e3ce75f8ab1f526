"""PixelCNN++ sampling speed: naive vs crop (``sample_fast``) vs cached (``sample_cached``), both variants.

Models: ``PixelCNNpp(updown=False)`` (the variant of the Pyramid PixelCNN and PIC's f^θ) and
``PixelCNNpp(updown=True)`` (PixelCNN++ as published) with a 3-channel, 10-component DMOL head, at
``--size`` x ``--size`` (default 32), for batch 1 and 16 in one run, on ``--device``. Every sampler
starts from the same generator seed; the script checks that each returns the naive sampler's samples,
then prints samples per second and the ratio to naive measured in the same run. The crop sampler is
exact for ``updown=False`` only (n/a otherwise). Goal (issue 8): the fastest exact sampler >= 20x naive
on a GPU; the CPU ratio is measured and reported as is.

On CUDA, TF32 convolutions are off (both samplers run fp32, so their samples can be compared).
``--naive-rows N`` times the naive sampler over the first N image rows only and extrapolates to the
whole image: every naive step is one forward pass over the whole canvas, so its cost per pixel does
not depend on the pixel; the samples are then compared on those rows. 0 (default) runs it in full.

Run: ``python benchmarks/pixelcnn_sampling.py [--device cpu|cuda] [--json out.json] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch

from thesislib.device import describe_device, resolve_device
from thesislib.nn.pixelcnn import PixelCNNpp, dmol_params_count, dmol_step, sample_cached, sample_fast
from thesislib.nn.pixelcnn.sampling import time_naive_rows
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


def run(args: argparse.Namespace, device: torch.device, updown: bool) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    model = PixelCNNpp(3, dmol_params_count(3, 10), nr_resnet=args.nr_resnet, nr_filters=args.nr_filters,
                       updown=updown, dropout=0.0).to(device).eval()
    step, cuda = dmol_step(3, 10), device.type == "cuda"
    rows = []
    for batch in args.batches:
        shape = (batch, 3, args.size, args.size)
        t_cached, c = _timed(lambda s=shape: sample_cached(model, s, step, _gen(device)), cuda)
        naive_rows = args.size if args.naive_rows <= 0 else min(args.naive_rows, args.size)
        t_naive, a = time_naive_rows(model, shape, step, naive_rows, _gen(device))
        t_crop, b = (None, None) if updown else _timed(lambda s=shape: sample_fast(model, s, step, _gen(device)), cuda)
        r = dict(device=str(device), updown=updown, batch=batch, size=args.size, naive_s=t_naive,
                 naive_rows_timed=naive_rows, crop_s=t_crop, cached_s=t_cached,
                 naive_samples_per_s=batch / t_naive, crop_samples_per_s=None if t_crop is None else batch / t_crop,
                 cached_samples_per_s=batch / t_cached, crop_ratio=None if t_crop is None else t_naive / t_crop,
                 cached_ratio=t_naive / t_cached,
                 crop_identical=None if b is None else bool(torch.equal(a[:, :, :naive_rows], b[:, :, :naive_rows])),
                 cached_identical=bool(torch.equal(a[:, :, :naive_rows], c[:, :, :naive_rows])))
        rows.append(r)
        crop = "n/a" if t_crop is None else f"{r['crop_samples_per_s']:9.4f} ({r['crop_ratio']:5.1f}x)"
        print(f"{r['device']:<6} updown={str(updown):<5} batch {batch:>3}  naive {r['naive_samples_per_s']:9.4f}"
              f"{'' if naive_rows == args.size else f' [{naive_rows} rows]'}  crop {crop:>19}  cached "
              f"{r['cached_samples_per_s']:9.4f} ({r['cached_ratio']:5.1f}x) samples/s  identical: crop="
              f"{r['crop_identical']} cached={r['cached_identical']}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--json", help="write the results (and provenance) to this JSON file")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--variants", nargs="+", choices=["plain", "updown"], default=["plain", "updown"],
                        help="plain: PixelCNNpp(updown=False); updown: with down/up-sampling")
    parser.add_argument("--nr-resnet", type=int, default=2)
    parser.add_argument("--nr-filters", type=int, default=32)
    parser.add_argument("--naive-rows", type=int, default=0, help="time naive on this many rows (0: all)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.backends.cudnn.allow_tf32 = False         # fp32 convolutions: the samplers are compared for equality
    print(f"torch {torch.__version__}; {describe_device(device)}; {args.threads} CPU threads")
    if hasattr(os, "getloadavg"):
        print(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    rows = [r for v in args.variants for r in run(args, device, v == "updown")]
    print(f"benchmark wall time: {time.perf_counter() - started:.0f} s")
    best = min(r["cached_ratio"] for r in rows)
    goal = (f"measured min {best:.1f}x -> {'MET' if best >= GPU_GOAL else 'NOT MET'}" if device.type == "cuda"
            else "not measured (CPU run)")
    print(f"GPU goal: cached >= {GPU_GOAL:.0f}x naive samples/s at {args.size}x{args.size}: {goal}")
    if args.json:
        config = dict(size=args.size, batches=args.batches, variants=args.variants, nr_resnet=args.nr_resnet,
                      nr_filters=args.nr_filters, threads=args.threads, naive_rows=args.naive_rows, n_mix=10,
                      channels=3)
        write_json(args.json, dict(rows=rows, gpu_goal=GPU_GOAL, provenance=provenance(config, device)))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

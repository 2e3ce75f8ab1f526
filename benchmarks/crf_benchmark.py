"""Dense-CRF timing: thesislib's torch paths vs pydensecrf2, for SEC's two uses of the CRF.

Workloads (Kolesnikov thesis ch. 2; parameters from ``thesislib.crf.params``):

* ``sec_batch``: the constrain-to-boundary CRF of one training step: 15 images downscaled to
  41x41, 21 labels, 10 mean-field iterations, SEC training parameters (spatial thetas / 12);
* ``postproc``: test-time post-processing of one 500x375 image (VOC's typical size), 21 labels,
  10 iterations, SEC test parameters.

Images are bundled photos (and procedural shapes on noise to fill the batch), unaries are noisy
softmax maps of a segmentation of each image (``thesislib.crf.demo``), so the lattices have
realistic sizes. Each entry is timed ``--repeats`` times after ``--warmup`` runs, the
implementations interleaved round by round (median reported; CUDA timings are bracketed by
``torch.cuda.synchronize``). pydensecrf2 runs
single-threaded, one image after the other, as SEC's Caffe layer called it; torch uses
``--threads`` intra-op threads (default: all cores). The table also reports agreement with
pydensecrf (argmax agreement, max |Q - Q_pydensecrf|).

Run: ``python benchmarks/crf_benchmark.py [--json results.json] [--repeats 5]``; a couple of
minutes on a 2-core CPU (the exact path on CPU dominates; ``--skip-exact-cpu`` drops it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from thesislib.crf import SEC_TEST, SEC_TRAIN, DenseCRFParams, dense_crf, resolve_method
from thesislib.crf.demo import noisy_unaries, photo, segment_labels, shapes_on_noise
from thesislib.crf.reference import pydensecrf_available, pydensecrf_batch
from thesislib.data.photos import COLOR_PHOTOS
from thesislib.device import describe_device
from thesislib.repro import provenance, write_json

METHODS = ("exact", "permutohedral", "hybrid", "auto")
GPU_GOAL = 20.0


def sec_batch(batch: int = 15, size: int = 41) -> tuple[torch.Tensor, np.ndarray]:
    """``batch`` images of size x size (photos, then shapes on noise) and their unaries."""
    images, labels = [], []
    for i in range(batch):
        if i < len(COLOR_PHOTOS):
            image = photo(COLOR_PHOTOS[i], size, size)
            label = segment_labels(image, 5, seed=i)
        else:
            image, label = shapes_on_noise(size, size, seed=i)
        images.append(image)
        labels.append(label)
    unary = torch.stack([noisy_unaries(lab, seed=i) for i, lab in enumerate(labels)])
    return unary, np.stack(images)


def postproc_image(height: int = 375, width: int = 500) -> tuple[torch.Tensor, np.ndarray]:
    """One full-resolution photo and unaries upsampled from a 41x41 grid, as in SEC's demo."""
    image = photo("astronaut", height, width)
    unary = noisy_unaries(segment_labels(image, 5), grid=41)
    return unary[None], image[None]


def _clock(fn: Callable[[], Any], cuda: bool) -> tuple[float, Any]:
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def run_workload(name: str, unary: torch.Tensor, images: np.ndarray, params: DenseCRFParams,
                 devices: list[torch.device], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time every implementation on one workload, interleaved (round-robin over repeats).

    Interleaving makes the ratios robust to load that changes during the run (other jobs on a
    shared machine): every implementation sees the same conditions in each round.
    """
    batch, _, height, width = unary.shape
    image_t = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    rows: list[dict[str, Any]] = []
    jobs: list[tuple[dict[str, Any], Callable[[], Any], bool, int]] = []  # row, fn, cuda, threads
    if pydensecrf_available():
        rows.append(dict(workload=name, impl="pydensecrf2", device="cpu (1 thread)", method="-"))
        jobs.append((rows[-1], lambda: pydensecrf_batch(unary.numpy(), images, params), False, 1))
    for device in devices:
        cuda = device.type == "cuda"
        u, im = unary.to(device), image_t.to(device)
        thread_counts = [args.threads] + ([1] if not cuda and args.threads > 1 else [])
        for method in METHODS:
            concrete = resolve_method(method, batch, height, width, device,
                                      theta_gamma_px=params.theta_gamma_px)
            label = f"{method} -> {concrete}" if method == "auto" else method
            for threads in thread_counts if method == "auto" else thread_counts[:1]:
                where = f"cpu ({threads} thr)" if not cuda else str(device)
                rows.append(dict(workload=name, impl="thesislib", device=where, method=label))
                if concrete == "exact" and (height * width > args.max_exact_pixels
                                            or (not cuda and args.skip_exact_cpu)):
                    rows[-1]["note"] = "skipped (all-pairs too large, or --skip-exact-cpu)"
                    continue
                fn = (lambda u=u, im=im, m=method: dense_crf(u, im, params, method=m))
                jobs.append((rows[-1], fn, cuda, threads))

    outputs: dict[int, Any] = {}
    for row, fn, cuda, threads in jobs:
        torch.set_num_threads(threads)
        for _ in range(args.warmup):
            _, outputs[id(row)] = _clock(fn, cuda)
        row["times"] = []
    for _ in range(args.repeats):
        for row, fn, cuda, threads in jobs:
            torch.set_num_threads(threads)
            seconds, outputs[id(row)] = _clock(fn, cuda)
            row["times"].append(seconds)
    torch.set_num_threads(args.threads)
    for row, _, _, _ in jobs:
        row["seconds"] = statistics.median(row["times"])

    if pydensecrf_available():
        ref_row = rows[0]
        ref = torch.from_numpy(np.asarray(outputs[id(ref_row)]))
        for row, _, _, _ in jobs:
            q = torch.as_tensor(outputs[id(row)]).cpu()
            row.update(speedup=ref_row["seconds"] / row["seconds"],
                       agreement=(q.argmax(1) == ref.argmax(1)).double().mean().item(),
                       max_abs_diff=(q - ref).abs().max().item())
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'workload':<10} {'implementation':<13} {'device':<15} {'method':<25} " \
             f"{'median s':>9} {'pyd/torch':>9} {'argmax agree':>12} {'max|dQ|':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        secs = f"{r['seconds']:.4f}" if r.get("seconds") is not None else "-"
        speed = f"{r['speedup']:.2f}x" if r.get("speedup") is not None else "-"
        agree = f"{r['agreement']:.5f}" if r.get("agreement") is not None else "-"
        diff = f"{r['max_abs_diff']:.1e}" if r.get("max_abs_diff") is not None else "-"
        print(f"{r['workload']:<10} {r['impl']:<13} {r['device']:<15} {r['method']:<25} "
              f"{secs:>9} {speed:>9} {agree:>12} {diff:>9}" + (f"  {r['note']}" if r.get("note") else ""))


def goal_lines(rows: list[dict[str, Any]], threads: int) -> list[str]:
    """The issue's goals, checked on ``method="auto"``: on a GPU >= 20x pydensecrf2 per SEC batch;
    on a CPU no slower than it, per SEC batch and per post-processed image."""
    def auto_speedup(workload: str, device: str) -> float | None:
        for r in rows:
            if (r["workload"] == workload and r["method"].startswith("auto")
                    and r["device"] == device and r.get("speedup") is not None):
                return r["speedup"]
        return None

    def verdict(value: float | None, goal: float, missing: str, digits: int) -> str:
        if value is None:
            return f"not measured ({missing})"
        return f"measured {value:.{digits}f}x -> {'MET' if value >= goal else 'NOT MET'}"

    lines = [f"GPU goal: >= {GPU_GOAL:.0f}x faster than pydensecrf2 per SEC batch: "
             + verdict(auto_speedup("sec_batch", "cuda"), GPU_GOAL, "no CUDA device", 1)]
    for workload, label in (("sec_batch", "SEC batch"), ("postproc", "500x375 post-processing")):
        if workload == "postproc" and not any(r["workload"] == workload for r in rows):
            continue
        line = (f"CPU goal: no slower than pydensecrf2 ({label}, method=auto, {threads} torch threads): "
                + verdict(auto_speedup(workload, f"cpu ({threads} thr)"), 1.0, "pydensecrf2 missing", 2))
        single = auto_speedup(workload, "cpu (1 thr)")
        if single is not None and threads > 1:
            line += f"; with 1 torch thread {single:.2f}x"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the results (and provenance) to this JSON file")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch CPU threads (default: all cores)")
    parser.add_argument("--skip-exact-cpu", action="store_true", help="do not time the all-pairs path on CPU")
    parser.add_argument("--skip-postproc", action="store_true", help="only the SEC training batch")
    parser.add_argument("--max-exact-pixels", type=int, default=64 * 64,
                        help="skip the all-pairs path above this many pixels per image")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}; CPU: {describe_device(torch.device('cpu'))}")
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        print(f"load average (1 min): {load:.2f}" + ("  -- other jobs are using the CPU: multi-threaded "
              "torch timings will be pessimistic" if load > 0.5 * (os.cpu_count() or 1) else ""))
    if torch.cuda.is_available():
        print(f"GPU: {describe_device(torch.device('cuda'))}")
    if not pydensecrf_available():
        print("pydensecrf2 is not installed: no reference timings (pip install pydensecrf2)")

    rows = run_workload("sec_batch", *sec_batch(), SEC_TRAIN, devices, args)
    if not args.skip_postproc:
        rows += run_workload("postproc", *postproc_image(), SEC_TEST, devices, args)
    print()
    print_table(rows)
    print()
    lines = goal_lines(rows, args.threads)
    for line in lines:
        print(line)
    if args.json:
        record = provenance(config=vars(args), device=devices[-1], threads=torch.get_num_threads(),
                            results=rows, goals=lines)
        print(f"wrote {write_json(args.json, record)}")


if __name__ == "__main__":
    main()

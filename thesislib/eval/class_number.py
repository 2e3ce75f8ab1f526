"""Estimating the number of new classes C^u from labelled probe classes (DTC: Han, Vedaldi & Zisserman, ICCV 2019,
§3.3; used by AutoNovel, Rebuffi thesis ch. 6 App. E, Table 6, "C^u computed from DTC").

The labelled classes serve as probes for the choice of K. They are split at random into *anchor* classes and
*probe* (validation) classes. For each candidate number ``c`` of new clusters, a k-means with
``K = |anchor| + |probe| + c`` clusters (:func:`constrained_kmeans`) runs on the anchor images, the probe images
and the unlabelled images together; each anchor image is held in the cluster of its class (a must-link of the
anchor images to their label), the probe and unlabelled images are free. Each candidate is scored twice:

* the clustering **ACC of the probe images** against their (known, but unused by the clustering) classes, with
  the Hungarian matching of :func:`thesislib.eval.clustering.cluster_accuracy` (rectangular: K clusters for the
  probe classes; unmatched clusters count as errors);
* a **cluster validity index**, the silhouette (:func:`thesislib.eval.clustering.silhouette`) of the free
  (probe + unlabelled) images under their clusters.

Selection, as the released code (``omniglot_est_k.py`` / ``imagenet_est_k.py``, ``get_best_k``): the candidate
half-way between the two maximisers, index ``ceil((i_acc + i_cvi) / 2)`` where ``i_acc`` / ``i_cvi`` is the
*last* index of the largest probe ACC / silhouette. The estimate is then the number of clusters of that
clustering holding unlabelled images, a cluster counting when its unlabelled count exceeds ``min_size`` times
the largest one (``min_max_ratio``: 0.01 OmniGlot, 0.3 ImageNet; :func:`count_clusters`); the candidate ``c``
itself is not the answer.

A property of the rule, not of this code: once every probe class has its own cluster the probe ACC stays on a
plateau as more clusters are added (the extra ones split unlabelled classes), and the *last* maximiser sits at the
end of that plateau, so on well-separated data the chosen candidate lies above the silhouette's peak and the
estimate can exceed the truth by a split class (``tests/eval/test_class_number.py`` shows both cases).

Cost: per candidate, ``n_init`` seedings and Lloyd runs on the device, and a silhouette on the CPU (scikit-learn,
O(M^2 D) over the M probe + unlabelled rows; ``silhouette_sample`` bounds it). Measured on this project's 2-core
CPU: 1 s for 5k rows of 512-d, so about 1.5 min per candidate at ImageNet scale (M ~ 49k rows, DTC's
``silhouette_sample`` 0) and 2.5 h for 100 candidates, against about 7 min with ``silhouette_sample`` 10000.

Decisions where the code is silent or would fail: an empty cluster keeps its previous centre (the code's mean of
no rows is NaN); each restart of :func:`constrained_kmeans` returns its last iterate, and the restart of lowest
inertia (anchor terms included) wins; at least one anchor and one probe class are kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from thesislib.eval.clustering import cluster_accuracy, silhouette

Features = np.ndarray | Tensor


def _rows(x: Features, name: str, device: torch.device) -> Tensor:
    t = x.detach() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be a (N, D) feature matrix, got shape {tuple(t.shape)}")
    t = t.to(device=device, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} holds non-finite values")
    return t


def _sq_dist(x: Tensor, c: Tensor) -> Tensor:
    """(N, K) squared Euclidean distances of the rows of x (N, D) to the centres c (K, D)."""
    return ((x * x).sum(1, keepdim=True) - 2.0 * x @ c.T + (c * c).sum(1)).clamp_min_(0.0)


@dataclass(frozen=True)
class ConstrainedClustering:
    """One constrained k-means: ``free`` (M,) cluster of each free row, ``anchor`` (N_a,) cluster of each anchor row
    (its class's cluster, ``0 .. A-1`` in the order of ``anchor_classes``), ``centers`` (K, D), ``inertia``."""

    free: Tensor
    anchor: Tensor
    centers: Tensor
    inertia: float
    anchor_classes: tuple[int, ...]
    iterations: int


def weighted_draw(weights: Tensor, rng: np.random.Generator) -> int:
    """One index drawn with probability proportional to ``weights`` (M,) (non-negative, positive sum), the same
    draw as ``rng.choice(M, p=weights / weights.sum())`` (numpy's inverse CDF: one ``rng.random()`` searched in the
    normalised cumulative sum, ``side="right"``), but computed where ``weights`` lives: only the uniform goes to
    the device and one index comes back, not the M-vector."""
    cdf = torch.cumsum(weights / weights.sum(), 0)
    cdf = cdf / cdf[-1]
    u = torch.tensor([rng.random()], dtype=cdf.dtype, device=cdf.device)
    return int(torch.searchsorted(cdf, u, right=True)[0])


def _kmeanspp(free: Tensor, fixed: Tensor, k: int, rng: np.random.Generator) -> Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) of ``k`` centres, the first being ``fixed`` (A, D); the rest
    drawn from the rows of ``free`` with probability proportional to the squared distance to the nearest centre
    chosen so far (the first one uniformly when ``fixed`` is empty)."""
    centers = [fixed] if len(fixed) else [free[int(rng.integers(len(free)))][None]]
    have = len(centers[0])
    d2 = _sq_dist(free, torch.cat(centers)).min(1).values
    while have < k:
        total = float(d2.sum())
        i = int(rng.integers(len(free))) if total <= 0 else weighted_draw(d2, rng)
        new = free[i][None]
        centers.append(new)
        d2 = torch.minimum(d2, _sq_dist(free, new)[:, 0])
        have += 1
    return torch.cat(centers)


def constrained_kmeans(free: Features, anchor: Features, anchor_labels: Features | Sequence[int], k: int,
                       seed: int = 0, n_init: int = 10, max_iter: int = 100, tol: float = 1e-4,
                       device: torch.device | str = "cpu") -> ConstrainedClustering:
    """k-means into ``k`` clusters of the rows of ``free`` (M, D) and ``anchor`` (N_a, D), each anchor row held in
    the cluster of its label ``anchor_labels`` (N_a,) (clusters ``0 .. A-1`` for the A anchor classes, sorted).

    Per restart (``n_init``, the numpy generator seeded by ``seed``): the anchor clusters start at their class
    means, the other ``k - A`` centres by k-means++ over the free rows; then Lloyd iterations — each free row to
    its nearest centre (anchor clusters included), every centre the mean of its rows (anchor and free) — until the
    squared sum of the centre shifts is below ``tol`` or ``max_iter``. Returns the restart of lowest inertia
    (sum of squared distances of all rows to their centres)."""
    dev = torch.device(device)
    xf, xa = _rows(free, "free", dev), _rows(anchor, "anchor", dev)
    ya = torch.as_tensor(np.asarray(anchor_labels.detach().cpu() if isinstance(anchor_labels, Tensor)
                                    else anchor_labels)).to(dev)
    if ya.ndim != 1 or len(ya) != len(xa):
        raise ValueError(f"anchor_labels must be one label per anchor row ({len(xa)}), got shape {tuple(ya.shape)}")
    if len(xf) == 0:
        raise ValueError("constrained_kmeans: no free rows to cluster")
    if len(xa) and xa.shape[1] != xf.shape[1]:
        raise ValueError(f"free rows have {xf.shape[1]} dimensions, anchor rows {xa.shape[1]}")
    classes, ya_idx = torch.unique(ya, return_inverse=True) if len(ya) else (ya, ya.long())
    n_a = len(classes)
    if not n_a + 1 <= k <= n_a + len(xf):
        raise ValueError(f"constrained_kmeans: k = {k} must exceed the {n_a} anchor classes and be at most "
                         f"{n_a + len(xf)} (anchor classes + free rows)")
    if n_init < 1 or max_iter < 1:
        raise ValueError(f"constrained_kmeans: n_init ({n_init}) and max_iter ({max_iter}) must be >= 1")
    x = torch.cat([xa, xf])
    anchor_means = torch.zeros(n_a, x.shape[1], dtype=x.dtype, device=dev).index_add_(0, ya_idx, xa)
    anchor_means /= torch.bincount(ya_idx, minlength=n_a).to(x.dtype)[:, None]
    rng = np.random.default_rng(seed)
    best: ConstrainedClustering | None = None
    for _ in range(n_init):
        centers = _kmeanspp(xf, anchor_means, k, rng)
        iterations = 0
        for _ in range(max_iter):
            iterations += 1
            assign = torch.cat([ya_idx, _sq_dist(xf, centers).argmin(1)])
            sums = torch.zeros_like(centers).index_add_(0, assign, x)
            counts = torch.bincount(assign, minlength=k).to(x.dtype)[:, None]
            new = torch.where(counts > 0, sums / counts.clamp_min(1.0), centers)
            shift = float(((new - centers) ** 2).sum(1).sqrt().sum()) ** 2
            centers = new
            if shift < tol:
                break
        assign_f = _sq_dist(xf, centers).argmin(1)
        inertia = float(((x - centers[torch.cat([ya_idx, assign_f])]) ** 2).sum())
        if best is None or inertia < best.inertia:
            best = ConstrainedClustering(assign_f, ya_idx, centers, inertia,
                                         tuple(int(c) for c in classes.cpu()), iterations)
    assert best is not None
    return best


@dataclass(frozen=True)
class ClassNumberEstimate:
    """The estimate ``k`` of C^u and the per-candidate scores (module docstring).

    ``candidates[i]`` new clusters were added to the probe and anchor classes' for ``probe_acc[i]`` (ACC of the
    probe images, in [0, 1]) and ``silhouette[i]`` (of the free images, in [-1, 1]); ``chosen`` is the index
    ``ceil((acc_index + cvi_index) / 2)``; ``unlabelled_sizes`` the unlabelled count of each cluster of that
    clustering (largest first); ``k`` the number of them above ``min_size`` x the largest."""

    k: int
    candidates: tuple[int, ...]
    probe_acc: tuple[float, ...]
    silhouette: tuple[float, ...]
    acc_index: int
    cvi_index: int
    chosen: int
    unlabelled_sizes: tuple[int, ...]
    anchor_classes: tuple[int, ...]
    probe_classes: tuple[int, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields (for ``metrics.json``)."""
        return {"k": self.k, "candidates": list(self.candidates), "probe_acc": list(self.probe_acc),
                "silhouette": list(self.silhouette), "chosen_candidate": self.candidates[self.chosen],
                "acc_index": self.acc_index, "cvi_index": self.cvi_index, "chosen_index": self.chosen,
                "unlabelled_sizes": list(self.unlabelled_sizes),
                "anchor_classes": list(self.anchor_classes), "probe_classes": list(self.probe_classes)}


def _last_argmax(values: Sequence[float]) -> int:
    a = np.asarray(values)
    return int(np.flatnonzero(a == a.max())[-1])


def select_candidate(probe_acc: Sequence[float], cvi: Sequence[float]) -> tuple[int, int, int]:
    """DTC's rule: ``(i_acc, i_cvi, ceil((i_acc + i_cvi) / 2))`` with ``i_acc`` / ``i_cvi`` the last index of the
    largest probe ACC / cluster validity index over the candidates (in the order tried)."""
    if len(probe_acc) != len(cvi) or not len(cvi):
        raise ValueError(f"select_candidate: {len(probe_acc)} ACC values for {len(cvi)} validity values")
    i_acc, i_cvi = _last_argmax(probe_acc), _last_argmax(cvi)
    return i_acc, i_cvi, int(math.ceil((i_acc + i_cvi) / 2))


def count_clusters(clusters: Features | Sequence[int], min_size: float) -> tuple[tuple[int, ...], int]:
    """The sizes (largest first, empty clusters left out) of the clusters of the rows labelled ``clusters`` (M,)
    and how many of them hold *more than* ``min_size`` x the largest one's rows (DTC's ``min_max_ratio`` count)."""
    c = clusters.detach().cpu().numpy() if isinstance(clusters, Tensor) else np.asarray(clusters)
    if c.ndim != 1 or not len(c) or not np.issubdtype(c.dtype, np.integer) or c.min() < 0:
        raise ValueError("count_clusters: clusters must be a non-empty 1-D array of non-negative integer labels")
    sizes = np.sort(np.bincount(c))[::-1]
    sizes = sizes[sizes > 0]
    return tuple(int(n) for n in sizes), int((sizes / sizes[0] > min_size).sum())


def split_anchor_probe(classes: Sequence[int], anchor_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """The labelled classes split at random (numpy generator ``seed``) into ``round(anchor_fraction x n)`` anchor
    classes (at least 1, at most n - 1) and the remaining probe classes, each list sorted."""
    if len(classes) < 2:
        raise ValueError(f"estimating C^u needs at least 2 labelled classes (anchor and probe), got {len(classes)}")
    if not 0.0 < anchor_fraction < 1.0:
        raise ValueError(f"anchor_fraction must be in (0, 1), got {anchor_fraction}")
    n_anchor = min(max(int(round(anchor_fraction * len(classes))), 1), len(classes) - 1)
    order = np.random.default_rng(seed).permutation(len(classes))
    chosen = sorted(int(classes[i]) for i in order[:n_anchor])
    return chosen, sorted(int(c) for c in classes if int(c) not in set(chosen))


def estimate_num_classes(unlabelled: Features, labelled: Features, labels: Features | Sequence[int],
                         candidates: Sequence[int], anchor_fraction: float = 0.7, min_size: float = 0.01,
                         seed: int = 0, n_init: int = 10, max_iter: int = 100, silhouette_sample: int = 0,
                         device: torch.device | str = "cpu") -> ClassNumberEstimate:
    """DTC's estimate of the number of classes among the ``unlabelled`` features (M, D), with the ``labelled``
    features (N, D) of other classes ``labels`` (N,) as anchors and probes (module docstring). ``candidates``:
    the numbers of new clusters tried (DTC: 0 .. 99); ``silhouette_sample``: rows the silhouette is computed on
    (0: all, as the code; else a seeded subset of that size)."""
    y = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError("labels must be one integer class per labelled row (1-D)")
    dev = torch.device(device)
    xu, xl = _rows(unlabelled, "unlabelled", dev), _rows(labelled, "labelled", dev)   # moved to the device once
    if len(y) != len(xl):
        raise ValueError(f"labels ({len(y)}) and labelled rows ({len(xl)}) differ in number")
    if xu.shape[1] != xl.shape[1]:
        raise ValueError(f"unlabelled rows have {xu.shape[1]} dimensions, labelled rows {xl.shape[1]}")
    if len(xu) < 2:
        raise ValueError(f"estimating C^u needs at least 2 unlabelled rows, got {len(xu)}")
    cands = [int(c) for c in candidates]
    if not cands or min(cands) < 0 or len(set(cands)) != len(cands) or cands != sorted(cands):
        raise ValueError(f"candidates must be distinct non-negative numbers of new clusters, increasing: {cands}")
    if not 0.0 <= min_size < 1.0:
        raise ValueError(f"min_size must be in [0, 1), got {min_size}")
    anchors, probes = split_anchor_probe(sorted(int(c) for c in np.unique(y)), anchor_fraction, seed)
    is_anchor = np.isin(y, anchors)
    xa, ya = xl[torch.from_numpy(is_anchor).to(dev)], y[is_anchor]
    xp, yp = xl[torch.from_numpy(~is_anchor).to(dev)], y[~is_anchor]
    free = torch.cat([xp, xu])
    free_host = free.cpu().numpy()                       # the silhouette runs on the CPU: one copy for all candidates
    n_p = len(xp)
    if max(cands) + len(anchors) + len(probes) > len(anchors) + len(free):
        raise ValueError(f"candidate {max(cands)} new clusters exceed the {len(free)} probe + unlabelled rows")
    sample = silhouette_sample if 0 < silhouette_sample < len(free) else len(free)
    accs, cvis, runs = [], [], []
    for c in cands:
        run = constrained_kmeans(free, xa, ya, len(anchors) + len(probes) + c, seed=seed, n_init=n_init,
                                 max_iter=max_iter, device=dev)
        pred = run.free.cpu().numpy()
        accs.append(cluster_accuracy(pred[:n_p], np.searchsorted(probes, yp)))
        cvis.append(silhouette(free_host, pred, sample_size=sample, seed=seed))
        runs.append(pred[n_p:])
    i_acc, i_cvi, chosen = select_candidate(accs, cvis)
    sizes, k = count_clusters(runs[chosen], min_size)
    return ClassNumberEstimate(k, tuple(cands), tuple(float(a) for a in accs), tuple(float(s) for s in cvis),
                               i_acc, i_cvi, chosen, sizes, tuple(anchors), tuple(probes))

"""Semantic-segmentation metrics from an accumulated confusion matrix (PASCAL VOC protocol).

IoU_c = TP_c / (TP_c + FP_c + FN_c), with the counts summed over every pixel of the split
(not averaged per image); mean IoU averages IoU_c over classes. Pixels whose ground truth
is ``ignore_index`` (VOC's 255 "void" boundaries) are left out everywhere.
"""

from __future__ import annotations

import torch


class SegmentationConfusion:
    """Accumulates a (C, C) confusion matrix of ground truth (rows) x prediction (columns).

    ``update(pred, target)`` takes int tensors of equal shape, typically (N, H, W), on any
    device, and adds to on-device counts with ``index_put_(accumulate=True)``: no host sync
    and no data-dependent shapes (ignored pixels go to a discard bin instead of being masked
    out). Predictions or non-ignored targets outside 0..C-1 are counted in an "invalid" bin
    and reported as an error when results are read, so a bad batch cannot pass silently.

    Results (read with one transfer): :meth:`iou` per class, :meth:`mean_iou`,
    :meth:`pixel_accuracy`, :meth:`foreground_fraction`, or all as floats via :meth:`summary`.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 device: torch.device | str = "cpu") -> None:
        if num_classes < 1:
            raise ValueError("num_classes must be positive")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.device = torch.device(device)
        c = self.num_classes
        # bins 0..C*C-1: confusion cells; C*C: invalid; C*C+1: ignored.
        self._counts = torch.zeros(c * c + 2, dtype=torch.int64, device=self.device)
        # predicted-class histogram over all pixels (ignored ground truth included); C: invalid.
        self._pred_hist = torch.zeros(c + 1, dtype=torch.int64, device=self.device)
        self._one = torch.ones((), dtype=torch.int64, device=self.device)

    @classmethod
    def from_matrix(cls, matrix: torch.Tensor, ignore_index: int = 255) -> "SegmentationConfusion":
        """An accumulator holding ``matrix`` (C, C) int counts ([t, p] as :attr:`matrix`), e.g. the sum of
        per-image matrices gathered from several processes. The predicted-class histogram is the column
        sums (ignored pixels, which a bare matrix does not record, are not in it)."""
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"expected a square (C, C) matrix, got {tuple(matrix.shape)}")
        if torch.is_floating_point(matrix) or bool((matrix < 0).any()):
            raise ValueError("a confusion matrix holds non-negative integer counts")
        out = cls(matrix.shape[0], ignore_index, matrix.device)
        c = out.num_classes
        out._counts[: c * c] = matrix.reshape(-1).to(torch.int64)
        out._pred_hist[:c] = matrix.sum(dim=0).to(torch.int64)
        return out

    def reset(self) -> None:
        self._counts.zero_()
        self._pred_hist.zero_()

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``pred`` and ``target`` integer tensors of the same shape, e.g. (N, H, W)."""
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        if torch.is_floating_point(pred) or torch.is_floating_point(target):
            raise TypeError("pred and target must be integer class maps (take argmax of logits first)")
        c = self.num_classes
        p = pred.reshape(-1).to(self.device, torch.int64)
        t = target.reshape(-1).to(self.device, torch.int64)
        ignored = t == self.ignore_index
        p_ok = (p >= 0) & (p < c)
        t_ok = (t >= 0) & (t < c)
        cell = torch.where(p_ok & t_ok, t * c + p, torch.full_like(p, c * c))
        cell = torch.where(ignored, torch.full_like(cell, c * c + 1), cell)
        self._counts.index_put_((cell,), self._one, accumulate=True)
        self._pred_hist.index_put_((torch.where(p_ok, p, torch.full_like(p, c)),), self._one,
                                   accumulate=True)

    def merge(self, other: "SegmentationConfusion") -> None:
        """Add another accumulator's counts (e.g. from another process after gathering)."""
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError("cannot merge accumulators with different classes or ignore_index")
        self._counts += other._counts.to(self.device)
        self._pred_hist += other._pred_hist.to(self.device)

    def _checked(self) -> torch.Tensor:
        c = self.num_classes
        invalid = int(self._counts[c * c]) + int(self._pred_hist[c])
        if invalid:
            raise ValueError(f"{invalid} pixel labels were outside 0..{c - 1} (and not the "
                             f"ignore index {self.ignore_index}) in pred or target")
        return self._counts[: c * c].view(c, c)

    @property
    def matrix(self) -> torch.Tensor:
        """The (C, C) int64 confusion matrix: [t, p] = pixels of class t predicted as p."""
        return self._checked()

    @property
    def ignored_pixels(self) -> int:
        return int(self._counts[-1])

    def iou(self) -> torch.Tensor:
        """Per-class IoU, float64 (C,). A class absent from both ground truth and prediction
        (union 0) gets NaN, as in the VOC devkit, and is excluded from :meth:`mean_iou`; a class
        in the ground truth that is never predicted (or predicted but absent) gets 0."""
        cm = self._checked().double()
        tp = cm.diagonal()
        union = cm.sum(dim=0) + cm.sum(dim=1) - tp
        return tp / union  # 0/0 = NaN

    def mean_iou(self) -> torch.Tensor:
        """Mean IoU over classes with a non-empty union, 0-dim float64."""
        return self.iou().nanmean()

    def pixel_accuracy(self) -> torch.Tensor:
        """Correct / non-ignored pixels, 0-dim float64 (NaN before any valid pixel)."""
        cm = self._checked().double()
        return cm.diagonal().sum() / cm.sum()

    def foreground_fraction(self, background_index: int = 0) -> torch.Tensor:
        """Fraction of all predicted pixels (ignore-labelled ones included: a prediction exists
        there too) whose class is not ``background_index``; 0-dim float64."""
        self._checked()
        hist = self._pred_hist[: self.num_classes].double()
        return 1.0 - hist[background_index] / hist.sum()

    def summary(self, background_index: int | None = 0) -> dict[str, float]:
        """Python floats: ``mIoU``, ``pixel_acc``, ``fg_fraction`` (unless ``background_index``
        is None) and ``IoU_<c>`` per class (NaN where undefined)."""
        out = {"mIoU": float(self.mean_iou()), "pixel_acc": float(self.pixel_accuracy())}
        if background_index is not None:
            out["fg_fraction"] = float(self.foreground_fraction(background_index))
        out.update({f"IoU_{i}": v for i, v in enumerate(self.iou().tolist())})
        return out

"""The fixed-folds protocol (STL-10, Coates et al. 2011; Jenni Table 3.2, 4.x): train once per fold, report mean +- SD.

STL-10 ships ten predefined folds of 1,000 of its 5,000 labelled training images
(``fold_indices.txt``); a method is trained on each fold in turn and tested on the full 8,000-image
test set, and the table gives the mean accuracy and its standard deviation over the ten runs.
:func:`fold_protocol` runs any per-fold routine and summarises; the SD is the sample SD (ddof=1,
as the STL-10 papers report it; a decision, since the thesis does not say).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def fold_protocol(folds: Sequence[Sequence[int] | np.ndarray],
                  run_fold: Callable[[int, np.ndarray], float]) -> dict[str, Any]:
    """Call ``run_fold(i, train_indices)`` for every fold and summarise the returned accuracies.

    ``folds``: one index array per fold (into the labelled training set). Returns ``{"per_fold":
    [acc_0, ...], "mean": float, "std": float (ddof=1; NaN for one fold), "n_folds": int}``.
    """
    if not len(folds):
        raise ValueError("need at least one fold")
    accs = [float(run_fold(i, np.asarray(f, dtype=np.int64))) for i, f in enumerate(folds)]
    arr = np.asarray(accs, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return {"per_fold": accs, "mean": float(arr.mean()), "std": std, "n_folds": int(arr.size)}

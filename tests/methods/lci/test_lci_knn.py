"""Figs. 4.6 / 4.7 analogues: LOO kNN accuracy and retrievals from a replicate's kept nets and data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from thesislib.methods.lci.config import LCIParams, replicate  # noqa: E402
from thesislib.methods.lci.data import chapter_data  # noqa: E402
from thesislib.methods.lci.evaluate import random_classifier  # noqa: E402
from thesislib.methods.lci.experiments import ReplicateResult, knn_neighbours  # noqa: E402
from thesislib.methods.lci.plots import knn_plot, retrieval_plot  # noqa: E402


def test_knn_neighbours_reads_the_kept_nets_and_the_random_c_of_the_probes() -> None:
    torch.set_num_threads(1)
    params = LCIParams(n_seeds=1)
    data = chapter_data(params, 3)
    # a "trained" C that is the probes' random C: both feature sets must then agree exactly
    result = ReplicateResult(3, nets={"cls": random_classifier(replicate(params, 3), 3)}, data=data)
    out = knn_neighbours(params, result, torch.device("cpu"), ks=(1, 5), n_retrieved=4)
    assert out.accuracy["ssl"] == out.accuracy["random"]
    assert set(out.accuracy["ssl"]) == {1, 5} and all(0.0 <= v <= 1.0 for v in out.accuracy["ssl"].values())
    n = len(data.probe_test)
    assert out.labels.shape == (n,) and out.neighbours["ssl"].shape == (n, 4)
    assert (out.neighbours["ssl"] != torch.arange(n)[:, None]).all()  # leave-one-out: never the query itself
    assert torch.equal(out.neighbours["ssl"], out.neighbours["random"])
    # a differently initialised C gives other neighbours
    other = ReplicateResult(3, nets={"cls": random_classifier(replicate(params, 4), 4)}, data=data)
    assert not torch.equal(knn_neighbours(params, other, torch.device("cpu"), ks=(1,), n_retrieved=4).neighbours["ssl"],
                           out.neighbours["random"])

    hits = (out.labels[out.neighbours["ssl"]] == out.labels[:, None]).all(1)
    queries = [int(hits.nonzero()[0]), int((~hits).nonzero()[0])]  # one all-correct row, one with a miss
    fig = retrieval_plot(out.dataset, out.labels, queries, out.neighbours)
    assert len(fig.axes) == 4 * 5  # 2 queries x 2 feature sets, query + 4 neighbours
    wrong = sum(int(out.labels[j] != out.labels[q]) for q in queries for name in ("ssl", "random")
                for j in out.neighbours[name][q])
    assert wrong > 0
    red = sum(ax.spines["top"].get_edgecolor()[:3] == (1.0, 0.0, 0.0) for ax in fig.axes)
    assert red == wrong
    assert len(knn_plot(out.accuracy, 0.1).axes[0].lines) == 3  # two curves and chance


def test_knn_neighbours_names_what_is_missing() -> None:
    params = LCIParams(n_seeds=1)
    with pytest.raises(ValueError, match="no labelled held-out set"):
        knn_neighbours(params, ReplicateResult(0), torch.device("cpu"))

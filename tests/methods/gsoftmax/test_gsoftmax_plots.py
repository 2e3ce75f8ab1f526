"""Every chapter figure draws from real (tiny) runs, with titles and axis labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from thesislib.engine import build_schedule  # noqa: E402
from thesislib.methods.gsoftmax import experiments as A  # noqa: E402
from thesislib.methods.gsoftmax import plots as P  # noqa: E402
from thesislib.methods.gsoftmax.config import GSoftmaxParams, multilabel_runs, single_label_runs  # noqa: E402
from thesislib.methods.gsoftmax.train import run_many  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def runs():
    params = GSoftmaxParams(n_seeds=2, epochs=1, hidden=(16,), multi_hidden=(16,), mosaic_train=128,
                            mosaic_test=64, multi_epochs=1)
    single = run_many(single_label_runs(params), CPU, verbose=False)
    multi = A.first_replicate(run_many(multilabel_runs(params), CPU, verbose=False))
    yield single, multi
    plt.close("all")


def check(fig, n_axes: int) -> None:
    axes = [ax for ax in fig.axes if ax.has_data()]
    assert len(axes) >= n_axes
    for ax in axes:                                          # stacked panels share the bottom x label
        assert ax.get_title() or ax.get_ylabel()
    assert any(ax.get_title() for ax in axes) and any(ax.get_xlabel() for ax in axes)
    plt.close(fig)


def test_transfer_curve_and_schedules() -> None:
    fig = P.plot_transfer_curves()
    check(fig, 4)
    ax = fig.axes[0]
    lam2 = ax.lines[-1].get_ydata()                         # z - x for lam = 2: from 0 to 2
    assert lam2.min() == pytest.approx(0.0, abs=1e-6) and lam2.max() == pytest.approx(2.0, abs=1e-6)
    fig = P.plot_schedules({"wrn": (build_schedule("multistep", milestones=(60, 120), gamma=0.2), 200),
                            "malleable": (build_schedule("malleable"), 1100)})
    lines = fig.axes[0].lines
    assert lines[0].get_ydata()[0] == pytest.approx(0.1) and lines[0].get_ydata()[-1] == pytest.approx(0.004)
    assert lines[1].get_ydata()[999] == pytest.approx(1e-9) and lines[1].get_ydata()[-1] == pytest.approx(1e-10)
    check(fig, 1)


def test_single_label_figures(runs) -> None:
    single, _ = runs
    by_method: dict[str, list] = {}
    for r in single:
        by_method.setdefault(P.display_name(r.config), []).append(r)
    assert list(by_method) == ["softmax", "G-softmax (λ=1)", "L-softmax (m=2)"]
    check(P.plot_true_vs_imposter({k: v[0] for k, v in by_method.items()}, 3, "3"), 3)
    check(P.plot_logit_gaussians(by_method, 3, "3"), 5)
    check(P.plot_per_class_measures(by_method, single[0].class_names), 4)
    check(P.plot_gaussian_trajectories(by_method["G-softmax (λ=1)"][0], single[0].class_names), 2)


def test_multilabel_figures(runs) -> None:
    _, multi = runs
    variants = {P.display_name(r.config): r for r in multi[1:]}
    assert "G-softmax (λ=1, μ=-0.1, σ=1)" in variants
    check(P.plot_per_class_ap(multi[0], variants), 1)
    correlations = A.table6_correlations(multi[1:], "learned")
    check(P.plot_correlations(correlations, list(variants), multi[0].class_names), 3)
    check(P.plot_gaussian_trajectories(multi[1], multi[0].class_names), 2)

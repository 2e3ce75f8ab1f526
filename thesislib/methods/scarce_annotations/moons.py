"""Fig. 1 of thesis ch. 5, computed exactly: a Π-model with a consistency ramp-up on two moons, the
decision border at several optimisation steps, following the released code ``two_moons/pi_model.py``.

Protocol (code): two moons of ``n_per_moon`` = 1,000 points, x0 = (t, sin t) for t evenly spaced in
[0, π] and x1 = -x0 + (π/2 + 0.1, 0.15), each point moved by N(0, 0.15²) noise; 6 fixed labelled points,
(1.1, 1), (2, 1), (2.9, 0.3) of class 0 and (-0.8, -0.5), (0, -0.8), (1, -0.5) of class 1, appended to the
set (so they also enter the consistency term); an MLP 2-10-10-10-10-1 (ReLU; weights N(0, 2/fan_in),
PyTorch's default biases); SGD lr 0.1, momentum 0.9, weight decay 5e-4, 2,000 full-batch iterations.
Each iteration draws two perturbations of every point, 0.1·u with u uniform on {-1, 0, 1} per coordinate;
loss = BCE on the first view of the 6 labelled points + w(t)·MSE between the sigmoids of the two views
of all points, w = 0 until iteration 200 then linear up to 10 at iteration 1,000. Training goes through
:func:`thesislib.engine.fit`: one epoch of 2,000 steps, each batch the whole set. The seed is ours (the
code fixes 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from thesislib.engine import TrainConfig, fit
from thesislib.repro import seed_everything
from thesislib.selfsup import consistency_mse


@dataclass(frozen=True)
class MoonsRun:
    """Points (N, 2) and classes (N,), the labelled points (6, 2) / classes (6,), the grid axes (G,),
    ``frames[iteration]`` = P(class 1) on the grid (G, G) (rows: y, columns: x), and ``point_acc[iteration]``
    = accuracy of the network on the N points and the 6 labelled ones (the code's printed "Test Acc")."""

    points: Tensor
    labels: Tensor
    anchors: Tensor
    anchor_labels: Tensor
    grid_x: Tensor
    grid_y: Tensor
    frames: dict[int, Tensor]
    point_acc: dict[int, float]


def two_moons(n_per_moon: int, noise: float, seed: int) -> tuple[Tensor, Tensor]:
    """The code's moons: points (2n, 2) float32, classes (2n,) (0: x0 = (t, sin t), 1: -x0 + (π/2 + 0.1, 0.15))."""
    t = np.linspace(0.0, np.pi, n_per_moon)
    x0 = np.stack([t, np.sin(t)], 1)
    x1 = -x0 + np.array([np.pi / 2 + 0.1, 0.15])
    rng = np.random.default_rng(seed)
    pts = np.concatenate([x0 + rng.normal(scale=noise, size=x0.shape), x1 + rng.normal(scale=noise, size=x1.shape)])
    return torch.from_numpy(pts.astype(np.float32)), torch.cat([torch.zeros(n_per_moon), torch.ones(n_per_moon)]).long()


def anchor_points() -> tuple[Tensor, Tensor]:
    """The code's 6 labelled points (6, 2): three on the upper moon (class 0), three on the lower (class 1)."""
    pts = torch.tensor([[1.1, 1.0], [2.0, 1.0], [2.9, 0.3], [-0.8, -0.5], [0.0, -0.8], [1.0, -0.5]])
    return pts, torch.tensor([0, 0, 0, 1, 1, 1])


def consistency_weight(iteration: int, start: int = 200, end: int = 1000, top: float = 10.0) -> float:
    """0 before ``start``, linear to ``top`` at ``end``, ``top`` after (the code's ramp-up)."""
    return top * min(max((iteration - start) / (end - start), 0.0), 1.0)


def moons_mlp() -> nn.Module:
    """2-10-10-10-10-1 with ReLU; weights N(0, 2 / fan_in) (He), biases PyTorch's default (as the code)."""
    layers: list[nn.Module] = []
    widths = [2, 10, 10, 10, 10]
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(10, 1))
    net = nn.Sequential(*layers)
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / m.in_features))
    return net


def perturbation(x: Tensor, scale: float) -> Tensor:
    """The code's consistency noise: ``scale`` x u, u uniform on {-1, 0, 1} per coordinate (shape of ``x``)."""
    return scale * torch.randint(-1, 2, x.shape, device=x.device).to(x.dtype)


def pi_moons(iterations: int = 2000, every: int = 50, n_per_moon: int = 1000, noise: float = 0.15,
             perturb: float = 0.1, seed: int = 0, grid: int = 60) -> MoonsRun:
    """Train the Π-model of Fig. 1 and keep the decision map every ``every`` iterations (and at 0)."""
    pts, cls = two_moons(n_per_moon, noise, seed)
    anchors, anchor_labels = anchor_points()
    everything = torch.cat([pts, anchors])                     # the labelled points are in the consistency set too
    all_labels = torch.cat([cls, anchor_labels])
    seed_everything(seed)
    net = moons_mlp()
    gx, gy = torch.linspace(-2.0, 3.5, grid), torch.linspace(-1.5, 1.5, grid)
    mesh = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)
    frames: dict[int, Tensor] = {}
    point_acc: dict[int, float] = {}

    def snapshot(it: int) -> None:
        with torch.no_grad():
            frames[it] = torch.sigmoid(net(mesh)).reshape(grid, grid)
            point_acc[it] = float(((net(everything)[:, 0] > 0).long() == all_labels).float().mean())

    def step(model: nn.Module, batch: object) -> tuple[Tensor, dict[str, Tensor]]:
        (xs,) = (t[0] for t in batch)   # type: ignore[union-attr]
        w = consistency_weight(len(frames_it))
        out1 = model(xs + perturbation(xs, perturb))[:, 0]
        out2 = model(xs + perturbation(xs, perturb))[:, 0]
        sup = F.binary_cross_entropy_with_logits(out1[-len(anchor_labels):], anchor_labels.float())
        cons = consistency_mse(torch.sigmoid(out1), torch.sigmoid(out2))
        frames_it.append(1)
        return sup + w * cons, {"bce": sup.detach(), "mse": cons.detach()}

    frames_it: list[int] = []
    snapshot(0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    config = TrainConfig(epochs=1, batch_size=1, shuffle=False, seed=seed, progress="none",
                         log_every=every, amp=False, channels_last=False)

    def on_step(trainer: object) -> None:
        if len(frames_it) % every == 0:
            snapshot(len(frames_it))

    # one epoch of ``iterations`` steps, each batch the whole set (an expanded view, no copies)
    dataset = TensorDataset(everything.expand(iterations, *everything.shape))
    net.eval()  # no BatchNorm / dropout: train and eval modes are the same network
    fit(net, opt, dataset, step, config, torch.device("cpu"), on_step=on_step)
    return MoonsRun(pts, cls, anchors, anchor_labels, gx, gy, frames, point_acc)


def border_stretch(run: MoonsRun, iteration: int) -> float:
    """Accuracy on the 2n moon points of the decision map at ``iteration``, read at each point's nearest
    grid node: how far the border has stretched along the moons."""
    p = run.frames[iteration]

    def nearest(v: Tensor, axis: Tensor) -> Tensor:
        return torch.round((v - axis[0]) / (axis[1] - axis[0])).long().clamp(0, len(axis) - 1)

    pred = (p[nearest(run.points[:, 1], run.grid_y), nearest(run.points[:, 0], run.grid_x)] > 0.5).long()
    return float((pred == run.labels).float().mean())

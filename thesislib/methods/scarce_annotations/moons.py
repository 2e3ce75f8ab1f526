"""Fig. 1 of thesis ch. 5, computed exactly: a Π-model with a consistency ramp-up on two moons, the
decision border at several optimisation steps (released code ``two_moons/pi_model.py``).

Protocol (code): 1,000 points per moon (``sklearn.datasets.make_moons(2000, noise=0.15)``), 6 labelled
points; an MLP 2-10-10-10-10-1 (ReLU, He initialisation); SGD lr 0.1, momentum 0.9, weight decay 5e-4,
2,000 full-batch iterations; loss = BCE on the labelled points + w(t)·MSE between the sigmoids of two
perturbed copies of every point, w = 0 until iteration 200 then linear up to 10 at iteration 1,000.

Decisions (the code's constants we could not read verbatim): the perturbation is uniform in [-0.1, 0.1]
per coordinate; the 6 labelled points are the noiseless moon points at angles 0, π/2 and π of each moon
(three per class). Training goes through :func:`thesislib.engine.fit`: one epoch of 2,000 steps, each
batch the whole set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import make_moons
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from thesislib.engine import TrainConfig, fit
from thesislib.repro import seed_everything
from thesislib.selfsup import consistency_mse


@dataclass(frozen=True)
class MoonsRun:
    """Points (N, 2) and classes (N,), the labelled points (6, 2) / classes (6,), the grid axes (G,),
    and ``frames[iteration]`` = P(class 1) on the grid (G, G) (rows: y, columns: x)."""

    points: Tensor
    labels: Tensor
    anchors: Tensor
    anchor_labels: Tensor
    grid_x: Tensor
    grid_y: Tensor
    frames: dict[int, Tensor]


def anchor_points() -> tuple[Tensor, Tensor]:
    """The 6 labelled points: angles 0, π/2, π on the upper moon (class 0) and the lower one (class 1)."""
    t = torch.tensor([0.0, math.pi / 2, math.pi])
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    return torch.cat([upper, lower]), torch.tensor([0, 0, 0, 1, 1, 1])


def consistency_weight(iteration: int, start: int = 200, end: int = 1000, top: float = 10.0) -> float:
    """0 before ``start``, linear to ``top`` at ``end``, ``top`` after (the code's ramp-up)."""
    return top * min(max((iteration - start) / (end - start), 0.0), 1.0)


def moons_mlp() -> nn.Module:
    """2-10-10-10-10-1 with ReLU and He (Kaiming normal) initialisation."""
    layers: list[nn.Module] = []
    widths = [2, 10, 10, 10, 10]
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(10, 1))
    net = nn.Sequential(*layers)
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return net


def pi_moons(iterations: int = 2000, every: int = 50, n_per_moon: int = 1000, noise: float = 0.15,
             perturb: float = 0.1, seed: int = 0, grid: int = 60) -> MoonsRun:
    """Train the Π-model of Fig. 1 and keep the decision map every ``every`` iterations (and at 0)."""
    x, y = make_moons(2 * n_per_moon, noise=noise, random_state=seed)
    pts, cls = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    anchors, anchor_labels = anchor_points()
    seed_everything(seed)
    net = moons_mlp()
    gx, gy = torch.linspace(-1.5, 2.5, grid), torch.linspace(-1.0, 1.5, grid)
    mesh = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)
    frames: dict[int, Tensor] = {}

    def snapshot(it: int) -> None:
        with torch.no_grad():
            frames[it] = torch.sigmoid(net(mesh)).reshape(grid, grid)

    def step(model: nn.Module, batch: object) -> tuple[Tensor, dict[str, Tensor]]:
        xs, xa, ya = (t[0] for t in batch)   # type: ignore[union-attr]
        w = consistency_weight(len(frames_it))
        sup = F.binary_cross_entropy_with_logits(model(xa)[:, 0], ya.float())
        p1 = torch.sigmoid(model(xs + perturb * (2 * torch.rand_like(xs) - 1)))
        p2 = torch.sigmoid(model(xs + perturb * (2 * torch.rand_like(xs) - 1)))
        cons = consistency_mse(p1, p2)
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

    # one epoch of ``iterations`` steps, each batch the whole set (expanded views, no copies)
    dataset = TensorDataset(pts.expand(iterations, *pts.shape), anchors.expand(iterations, *anchors.shape),
                            anchor_labels.expand(iterations, *anchor_labels.shape))
    net.eval()  # no BatchNorm / dropout: train and eval modes are the same network
    fit(net, opt, dataset, step, config, torch.device("cpu"), on_step=on_step)
    return MoonsRun(pts, cls, anchors, anchor_labels, gx, gy, frames)


def border_stretch(run: MoonsRun, iteration: int) -> float:
    """Accuracy on all 2,000 moon points of the decision map at ``iteration`` (nearest grid cell):
    how far the border has stretched along the moons."""
    p = run.frames[iteration]
    ix = torch.bucketize(run.points[:, 0].contiguous(), run.grid_x).clamp(0, len(run.grid_x) - 1)
    iy = torch.bucketize(run.points[:, 1].contiguous(), run.grid_y).clamp(0, len(run.grid_y) - 1)
    pred = (p[iy, ix] > 0.5).long()
    return float((pred == run.labels).float().mean())

"""Training one part (one factor of Eq. 4.2) through :mod:`thesislib.engine`; the torchrun entry point.

:func:`train_part` builds the part's networks (:func:`~thesislib.methods.pixelcnn_aux.model.build_part`),
Adam with the thesis's exponential learning-rate decay after every iteration, and trains them with
:func:`thesislib.engine.fit` on :class:`~thesislib.methods.pixelcnn_aux.data.PartItems`. The parts
share no parameters and are separate runs, as in the thesis (p(X̂) for 30 epochs, p(X|X̂) for 200).

:func:`run_part` trains in this process (``nproc`` 1) or as ``nproc`` torchrun DDP processes of
this module (``batch_size`` stays the global batch), reading rank 0's weights back::

    torchrun --standalone --nproc_per_node 4 -m thesislib.methods.pixelcnn_aux.train \
        --params p.json --part color --output DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.config import ConfigError, load_params_file, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.transforms import HorizontalFlipItems
from thesislib.device import resolve_device
from thesislib.engine import Exponential, History, fit, launch, make_scheduler
from thesislib.engine.distributed import distributed_session, is_main_process, unwrap
from thesislib.methods.pixelcnn_aux.config import (
    GRAY_PARTS,
    PixelCNNAuxParams,
    engine_config,
    part_spec,
    pixelcnn_aux_config,
)
from thesislib.methods.pixelcnn_aux.data import PartItems, gray_images, pyramid_images
from thesislib.methods.pixelcnn_aux.losses import image_log_prob, part_loss
from thesislib.methods.pixelcnn_aux.model import PartModel, build_part, to_model_input
from thesislib.repro import seed_everything, write_json

__all__ = ["batch_inputs", "main", "part_items", "part_step_fn", "run_part", "train_part"]


def batch_inputs(model: PartModel, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
    """(x, aux) of a batch of :class:`PartItems` in [-1, 1] (aux None for unconditional parts)."""
    spec = model.spec
    x = to_model_input(batch["x"], spec.in_channels)
    aux = batch.get("aux")
    if aux is not None:
        aux = to_model_input(aux, 1 if spec.cond == "gray" else 3)
    return x, aux


def part_step_fn() -> Callable[[nn.Module, dict[str, Tensor]], tuple[Tensor, dict[str, Tensor]]]:
    """The engine step: forward, the part's term of Eq. 4.4 in bits/dim of its own image (the random
    flips are drawn per item, :func:`part_items`)."""
    def step(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        part = unwrap(model)
        x, aux = batch_inputs(part, batch)
        out = model(x, aux)
        loss = part_loss(image_log_prob(out, x, part.spec.out_kind, part.n_mix), x[0].numel())
        return loss, {"bpd": loss.detach()}
    return step


def part_items(params: PixelCNNAuxParams, name: str, images: Tensor | Dataset,
               train: bool = False) -> Dataset:
    """The items of part ``name`` over ``images`` (the right pyramid depth for pyramid parts); for
    training with ``params.flip``, each item (x and its conditioning image together) flipped
    left-right with probability 1/2 (:class:`~thesislib.data.transforms.HorizontalFlipItems`: one
    coin per item, so a DDP run flips the same samples as one process)."""
    items = PartItems(images, name, 0 if name in GRAY_PARTS else params.pyramid_levels)
    return HorizontalFlipItems(items) if train and params.flip else items


def train_part(params: PixelCNNAuxParams, name: str, images: Tensor | Dataset, device: torch.device,
               ) -> tuple[PartModel, History]:
    """Train part ``name`` on the training ``images``; every generator is seeded from
    ``params.seed`` first. Returns (plain model, history)."""
    part_spec(params, name)  # an unknown part fails before anything is built
    seed_everything(params.seed)
    model = build_part(params, name)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    scheduler = make_scheduler(optimizer, Exponential(params.lr_decay))
    history = fit(model, optimizer, part_items(params, name, images, train=True), part_step_fn(),
                  engine_config(params, name), device, scheduler=scheduler)
    return unwrap(model), history


def _train_images(params: PixelCNNAuxParams, name: str) -> Tensor | Dataset:
    split = gray_images(params, params.seed) if name in GRAY_PARTS else pyramid_images(params, params.seed)
    return split.train


def run_part(params: PixelCNNAuxParams, name: str, device: str | torch.device = "auto",
             images: Tensor | Dataset | None = None, nproc: int | None = None,
             timeout: float | None = None) -> tuple[PartModel, History]:
    """Part ``name`` trained in this process (``nproc`` 1, on ``images`` or the params' data) or as
    ``nproc`` torchrun DDP processes (default ``params.nproc``; they load the data themselves)."""
    nproc = params.nproc if nproc is None else nproc
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if nproc == 1:
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        return train_part(params, name, images if images is not None else _train_images(params, name), dev)
    with tempfile.TemporaryDirectory(prefix="pixelcnn-aux-") as tmp:
        out = Path(tmp)
        args = ["--params", str(write_json(out / "params.json", to_dict(params))), "--part", name,
                "--output", str(out), "--device", resolve_device(device).type]
        launch("thesislib.methods.pixelcnn_aux.train", args, nproc=nproc, timeout=timeout)
        model = build_part(params, name)
        model.load_state_dict(torch.load(out / "model.pt", map_location="cpu", weights_only=True))
        history = History()
        history.load_state_dict(json.loads((out / "history.json").read_text()))
    return model, history


def main(argv: list[str] | None = None) -> int:
    """``[torchrun ...] python -m thesislib.methods.pixelcnn_aux.train --params p.(json|yaml) --part NAME
    [--output DIR] [--device D]``: train one part; rank 0 writes DIR/model.pt and DIR/history.json."""
    parser = argparse.ArgumentParser(prog="python -m thesislib.methods.pixelcnn_aux.train", description=main.__doc__)
    parser.add_argument("--params", required=True, help="JSON or YAML mapping of PixelCNNAuxParams fields")
    parser.add_argument("--part", required=True, help="plain | gray | color | base | level<side>")
    parser.add_argument("--output", help="directory for model.pt and history.json")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    args = parser.parse_args(argv)
    try:
        mapping: dict[str, Any] = load_params_file(args.params)
        params = pixelcnn_aux_config(mapping)
        part_spec(params, args.part)
        images = _train_images(params, args.part)
    except (ConfigError, DatasetNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"pixelcnn_aux: error: {err}", file=sys.stderr)
        return 2
    with distributed_session(args.device) as device:
        model, history = train_part(params, args.part, images, device)
        if is_main_process() and args.output:
            out = Path(args.output)
            out.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), out / "model.pt")
            write_json(out / "history.json", history.state_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())

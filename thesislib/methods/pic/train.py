"""Training PIC and its g^w-only baseline through :mod:`thesislib.engine` (thesis §5.3.2).

Two separate runs per replicate, each :func:`thesislib.engine.fit` (through a
:class:`~thesislib.engine.Trainer`, so the Polyak average is the engine's EMA):

* :func:`train_pic`: g^w and f^θ jointly on Eq. 5.3 (bits per chroma dimension), plus, with
  ``gw_aux_weight`` > 0, the released code's extra term: the same DMOL loss on g^w's first
  ``6 K`` output channels;
* :func:`train_gw_only`: the feed-forward baseline alone on the same loss (``baseline="separate"``;
  with ``"aux"`` the baseline is PIC's auxiliary head, :func:`~thesislib.methods.pic.model.gw_head`).

Optimiser: Adam (lr, β1 = 0.95, β2 = 0.9995 in the thesis), the lr multiplied by ``lr_decay`` after
every iteration (:class:`~thesislib.engine.Exponential`); random horizontal flips with ``flip``,
drawn per item (:class:`~thesislib.data.transforms.HorizontalFlipItems`), so DDP flips the samples one process does.

Several processes: :func:`run` with ``nproc`` > 1 starts ``nproc`` DDP processes of this module
through ``torchrun`` (:func:`thesislib.engine.launch`); each trains its share of every global batch,
rank 0 writes ``metrics.json``, ``provenance.json``, ``pic.pt`` (and ``gw_only.pt`` for a separate baseline). By hand::

    torchrun --standalone --nproc_per_node 4 -m thesislib.methods.pic.train --params p.json --output DIR
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

from thesislib.config import ConfigError, load_params_file, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.transforms import HorizontalFlipItems
from thesislib.device import resolve_device
from thesislib.engine import Exponential, History, Trainer, launch, make_scheduler
from thesislib.engine.distributed import distributed_session, is_main_process, unwrap
from thesislib.methods.pic.config import PICParams, engine_config, pic_config
from thesislib.methods.pic.data import PICData, load_data
from thesislib.methods.pic.losses import chroma_bits_per_dim
from thesislib.methods.pic.model import PIC, GwOnly, build_gw_only, build_pic, gw_head
from thesislib.repro import provenance, seed_everything, write_json

__all__ = ["gw_step_fn", "main", "make_optimizer", "pic_step_fn", "run", "train_gw_only", "train_pic"]

Batch = tuple[Tensor, Tensor]
StepFn = Callable[[nn.Module, Batch], tuple[Tensor, dict[str, Tensor]]]


def pic_step_fn(n_mix: int, aux_weight: float = 0.0) -> StepFn:
    """The engine step of PIC: Eq. 5.3' averaged over the batch (+ ``aux_weight`` x the g^w DMOL
    term on h's first 6 n_mix channels); metrics ``bpd`` (and ``bpd_gw_aux``)."""
    p = 6 * n_mix

    def step(model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        big_l, canvas = batch
        out, h = model(canvas, big_l=big_l, return_h=True)
        ab = canvas[:, 1:]
        bpd = chroma_bits_per_dim(ab, out.float(), n_mix).mean()
        metrics = {"bpd": bpd.detach()}
        loss = bpd
        if aux_weight > 0:
            aux = chroma_bits_per_dim(ab, h[:, :p].float(), n_mix).mean()
            metrics["bpd_gw_aux"] = aux.detach()
            loss = loss + aux_weight * aux
        return loss, metrics
    return step


def gw_step_fn(n_mix: int) -> StepFn:
    """The engine step of the g^w-only baseline: the same DMOL loss, per pixel independently."""
    def step(model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        big_l, canvas = batch
        bpd = chroma_bits_per_dim(canvas[:, 1:], model(big_l).float(), n_mix).mean()
        return bpd, {"bpd": bpd.detach()}
    return step


def make_optimizer(model: nn.Module, params: PICParams) -> torch.optim.Optimizer:
    """Adam with the thesis's betas (§5.3.2)."""
    return torch.optim.Adam(model.parameters(), lr=params.lr, betas=(params.beta1, params.beta2))


def _train(model: nn.Module, params: PICParams, data: PICData, step: StepFn, device: torch.device,
           on_step: Callable[[Trainer], None] | None) -> tuple[nn.Module, History]:
    optimizer = make_optimizer(model, params)
    scheduler = make_scheduler(optimizer, Exponential(params.lr_decay)) if params.lr_decay < 1 else None
    train = HorizontalFlipItems(data.train) if params.flip else data.train
    trainer = Trainer(model, optimizer, train, step, engine_config(params), device, scheduler=scheduler,
                      on_step=on_step)
    history = trainer.fit()
    return trainer.eval_models(), history


def train_pic(params: PICParams, device: torch.device, data: PICData | None = None,
              on_step: Callable[[Trainer], None] | None = None) -> tuple[PIC, History]:
    """Train PIC (g^w + f^θ) on ``data.train``; returns (the model evaluation should use -- the EMA
    with ``ema_decay`` -- and the history). Seeded from ``params.seed`` first."""
    data = data if data is not None else load_data(params)
    seed_everything(params.seed)
    model = build_pic(params)
    return _train(model, params, data, pic_step_fn(params.n_mix, params.gw_aux_weight), device, on_step)


def train_gw_only(params: PICParams, device: torch.device, data: PICData | None = None,
                  on_step: Callable[[Trainer], None] | None = None) -> tuple[GwOnly, History]:
    """Train the g^w-only baseline on ``data.train`` (a separate run, same seed and batches)."""
    data = data if data is not None else load_data(params)
    seed_everything(params.seed)
    model = build_gw_only(params)
    return _train(model, params, data, gw_step_fn(params.n_mix), device, on_step)


# ---------------------------------------------------------------------------------------------
# one replicate: in this process or as torchrun processes
# ---------------------------------------------------------------------------------------------

def train_both(params: PICParams, device: torch.device, data: PICData | None = None
               ) -> tuple[PIC, GwOnly, dict[str, History]]:
    """Both runs of one replicate in this process (a DDP rank under torchrun)."""
    data = data if data is not None else load_data(params)
    pic, h_pic = train_pic(params, device, data)
    pic = unwrap(pic)
    if params.baseline == "aux":
        return pic, gw_head(pic, params), {"pic": h_pic}
    gw, h_gw = train_gw_only(params, device, data)
    return pic, unwrap(gw), {"pic": h_pic, "gw_only": h_gw}


def run(params: PICParams, device: str | torch.device = "auto", nproc: int | None = None,
        output: Path | None = None, data: PICData | None = None, timeout: float | None = None
        ) -> tuple[PIC, GwOnly, dict[str, History]]:
    """Train one replicate's PIC and g^w-only models: in this process (``nproc`` 1) or as ``nproc``
    torchrun DDP processes (default ``params.nproc``), whose rank 0 writes ``output`` and whose models
    are read back here."""
    nproc = params.nproc if nproc is None else nproc
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if nproc == 1:
        device = device if isinstance(device, torch.device) else resolve_device(device)
        pic, gw, histories = train_both(params, device, data)
        if output is not None:
            _save(Path(output), params, pic, gw, histories, device)
        return pic, gw, histories
    with tempfile.TemporaryDirectory(prefix="pic-") as tmp:
        out = Path(output) if output else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        args = ["--params", str(write_json(out / "params.json", to_dict(params))), "--output", str(out),
                "--device", resolve_device(device).type]
        launch("thesislib.methods.pic.train", args, nproc=nproc, timeout=timeout)
        pic = build_pic(params)
        pic.load_state_dict(torch.load(out / "pic.pt", map_location="cpu", weights_only=True))
        if params.baseline == "aux":
            gw = gw_head(pic, params)
        else:
            gw = build_gw_only(params)
            gw.load_state_dict(torch.load(out / "gw_only.pt", map_location="cpu", weights_only=True))
        record = json.loads((out / "metrics.json").read_text())
    histories = {}
    for name in record["history"]:
        histories[name] = History()
        histories[name].load_state_dict(record["history"][name])
    return pic, gw, histories


def _save(out: Path, params: PICParams, pic: nn.Module, gw: nn.Module, histories: dict[str, History],
          device: torch.device, extra: dict[str, Any] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {"chapter": "pic", "scale": params.scale, "history": {k: h.state_dict() for k, h in histories.items()},
              **(extra or {})}
    write_json(out / "metrics.json", record)
    write_json(out / "provenance.json", provenance(config=to_dict(params), device=device))
    torch.save(unwrap(pic).state_dict(), out / "pic.pt")
    if params.baseline == "separate":
        torch.save(unwrap(gw).state_dict(), out / "gw_only.pt")


def main(argv: list[str] | None = None) -> int:
    """``[torchrun ...] python -m thesislib.methods.pic.train --params p.(json|yaml) [--output DIR]
    [--device D]``: one replicate (PIC and g^w-only), rank 0 writes DIR."""
    parser = argparse.ArgumentParser(prog="python -m thesislib.methods.pic.train", description=main.__doc__)
    parser.add_argument("--params", "--config", dest="params", required=True,
                        help="JSON or YAML mapping of PICParams fields")
    parser.add_argument("--output", help="directory for metrics.json, provenance.json, pic.pt and gw_only.pt")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    args = parser.parse_args(argv)
    try:  # everything that can be wrong with the inputs fails here, before training
        mapping = load_params_file(args.params)
        params = pic_config(mapping)
        data = load_data(params)
    except (ConfigError, DatasetNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"pic: error: {err}", file=sys.stderr)
        return 2
    with distributed_session(args.device) as device:
        pic, gw, histories = train_both(params, device, data)
        if is_main_process() and args.output:
            _save(Path(args.output), params, pic, gw, histories, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training SEC (thesis section 2.4.1): cues, the segmentation network, one run, torchrun entry point.

Pipeline of one configuration in one replicate (:func:`run`): :func:`~thesislib.methods.sec.data.load_data`
-> cues (:func:`get_cues`: train a CAM localizer with :func:`train_localizer_for` and run
:func:`~thesislib.methods.sec.localization.compute_cues`, or read the released cue file) ->
:func:`train_sec` (Eq. 2.1 through the engine) -> :func:`~thesislib.methods.sec.evaluate.evaluate_config`
(mIoU without and with the test-time dense CRF, Fig. 2.3).

Several processes: ``run(params, device, nproc=N)`` with N > 1 starts ``N`` DDP processes of
this module through ``torchrun`` (:func:`thesislib.engine.launch`; several machines: the
how-to's ``--nnodes`` / rendezvous launch of the same module). Every rank trains its share of
each global batch (the localizer and the segmentation network), evaluates every W-th image and
gathers; rank 0 writes ``metrics.json``, ``provenance.json`` and ``model.pt``. The thesis's
setting (``configs/sec/full.yaml``) by hand::

    torchrun --standalone --nproc_per_node 4 -m thesislib.methods.sec.train --params p.json --output DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.config import ConfigError, load_params_file, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.transforms import denormalize
from thesislib.device import resolve_device
from thesislib.engine import History, StepDecay, Trainer, fit, launch, make_scheduler
from thesislib.engine.distributed import distributed_session, is_main_process, unwrap
from thesislib.methods.sec.config import (
    SECParams,
    cue_config,
    engine_config,
    experiment_id,
    localizer_config,
    sec_config,
)
from thesislib.methods.sec.cue_file import load_cues, read_foreground_cues
from thesislib.methods.sec.cues import replace_foreground
from thesislib.methods.sec.data import SECData, check_inputs, load_data
from thesislib.methods.sec.evaluate import cue_stats, evaluate_config, flat_metrics
from thesislib.methods.sec.localization import CueMaps, build_localizer, compute_cues
from thesislib.methods.sec.model import build_network, param_groups
from thesislib.methods.sec.objective import SECLoss
from thesislib.nn.cam_training import train_cam_classifier
from thesislib.repro import provenance, seed_everything, write_json

__all__ = ["CuedItems", "get_cues", "main", "run", "sec_step_fn", "train_localizer_for", "train_sec"]


# ---------------------------------------------------------------------------------------------
# cues
# ---------------------------------------------------------------------------------------------

def train_localizer_for(params: SECParams, data: SECData, device: torch.device) -> tuple[nn.Module, History]:
    """Build and train the run's CAM localizer on the training images' labels (BCE); every
    generator is seeded from ``params.seed`` first."""
    seed_everything(params.seed)
    model = build_localizer(params.localizer, data.num_labels - 1, params.weights_path or None)
    history = train_cam_classifier(model, data.train, localizer_config(params), device)
    return model, history


def get_cues(params: SECParams, data: SECData, device: torch.device,
             localizer: nn.Module | None = None) -> CueMaps:
    """Cue maps for ``data.train``: from the released file (``cue_source="file"``) or from a CAM
    localizer (trained here unless given); with ``foreground_cue_file``, their foreground replaced by
    that file's maps."""
    cues = _source_cues(params, data, device, localizer)
    if not params.foreground_cue_file:
        return cues
    if data.train_ids is None:
        raise ConfigError("foreground_cue_file needs VOC data (the file is keyed by VOC image ids)")
    foreground = read_foreground_cues(params.foreground_cue_file, data.train_ids, size=params.mask_side)
    return CueMaps(replace_foreground(cues.cues, torch.from_numpy(foreground)), cues.conflicts)


def _source_cues(params: SECParams, data: SECData, device: torch.device, localizer: nn.Module | None) -> CueMaps:
    size = (params.mask_side, params.mask_side)
    if params.cue_source == "file":
        ids = data.train_ids
        if ids is None:
            raise ConfigError("cue_source='file' needs VOC data (the file is keyed by VOC image ids)")
        cue_set = load_cues(params.cue_path, params.cue_list, ids, size=params.mask_side)
        return CueMaps(torch.from_numpy(cue_set.cues), torch.zeros(len(ids), dtype=torch.int64))
    if localizer is None:
        localizer, _ = train_localizer_for(params, data, device)
    return compute_cues(unwrap(localizer), data.train, size, cue_config(params), device)


class CuedItems(Dataset):
    """Training items with their cue label map under ``"cues"``."""

    def __init__(self, base: Dataset, cues: Tensor) -> None:
        if len(base) != len(cues):
            raise ValueError(f"{len(base)} training items but {len(cues)} cue maps")
        self.base, self.cues = base, cues

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = dict(self.base[index])
        item["cues"] = self.cues[index]
        return item


# ---------------------------------------------------------------------------------------------
# the segmentation network
# ---------------------------------------------------------------------------------------------

def make_optimizer(model: nn.Module, params: SECParams) -> torch.optim.Optimizer:
    """SGD with momentum (the thesis) or Adam over :func:`~thesislib.methods.sec.model.param_groups`."""
    groups = param_groups(model, params)
    if params.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=params.lr, momentum=params.momentum)
    return torch.optim.Adam(groups, lr=params.lr)


def sec_step_fn(loss_fn: SECLoss, normalization: str) -> Callable[[nn.Module, dict[str, Tensor]],
                                                                  tuple[Tensor, dict[str, Tensor]]]:
    """The engine step: forward, Eq. 2.1, and the enabled terms as metrics (no host sync)."""
    def step(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        logits = model(batch["image"])
        rgb = denormalize(batch["image"].float(), normalization, scale=255.0)
        out = loss_fn(logits, batch["labels"], batch["cues"], rgb)
        metrics = {name: value.detach() for name, value in
                   (("seed", out.seed), ("expand", out.expand), ("constrain", out.constrain)) if value is not None}
        return out.loss, metrics
    return step


def train_sec(params: SECParams, cues: CueMaps | Tensor, device: torch.device, data: SECData | None = None,
              on_step: Callable[[Trainer], None] | None = None) -> tuple[nn.Module, History]:
    """Train the segmentation network with the SEC loss; returns (plain model, history).

    ``cues``: cue maps (N, h, w) aligned with ``data.train`` (loaded from ``params`` when ``data``
    is None). Every generator is seeded from ``params.seed`` first, so each configuration of a
    replicate starts from the same weights and sees the same batches. Under torchrun the engine
    trains with DDP (``batch_size`` is global). ``on_step(trainer)`` runs after every step.
    """
    data = data or load_data(params)
    cue_maps = cues.cues if isinstance(cues, CueMaps) else cues
    if tuple(cue_maps.shape[-2:]) != (params.mask_side, params.mask_side):
        raise ValueError(f"cues are {tuple(cue_maps.shape[-2:])} but the network gives "
                         f"{params.mask_side} x {params.mask_side} masks")
    seed_everything(params.seed)
    model = build_network(params, data.num_labels)
    optimizer = make_optimizer(model, params)
    scheduler = make_scheduler(optimizer, StepDecay(params.lr_step, params.lr_gamma))
    step = sec_step_fn(SECLoss(params.loss_config()), params.normalization)
    history = fit(model, optimizer, CuedItems(data.train, cue_maps), step, engine_config(params), device,
                  scheduler=scheduler, on_step=on_step)
    return unwrap(model), history


# ---------------------------------------------------------------------------------------------
# one run: in this process or as torchrun processes
# ---------------------------------------------------------------------------------------------

def train_and_evaluate(params: SECParams, device: torch.device, data: SECData | None = None,
                       cues: CueMaps | None = None) -> tuple[dict[str, Any], nn.Module, History]:
    """Cues (computed unless given), training and evaluation of one configuration in this process
    (a DDP rank under torchrun). Returns the ``metrics.json`` record in the results schema
    (``{"chapter", "scale", "experiments": {id: metrics}}``, the id naming the ablation and any
    departure from the thesis's protocol) plus ``cue_stats``, ``seconds``, ``final_loss`` and the
    training ``history`` (:meth:`~thesislib.engine.History.state_dict`); and the model and its history."""
    data = data if data is not None else load_data(params)
    started = time.perf_counter()
    cues = cues if cues is not None else get_cues(params, data, device)
    stats = cue_stats(cues, data)
    model, history = train_sec(params, cues, device, data)
    metrics = flat_metrics(evaluate_config(model, data, params, device), data.class_names)
    record = {"chapter": "sec", "scale": "full" if params.data == "voc" else "smoke",
              "experiments": {experiment_id(params): metrics}, "cue_stats": stats,
              "seconds": time.perf_counter() - started, "final_loss": history.last().get("loss"),
              "history": history.state_dict()}
    return record, model, history


def save_record(output: Path, record: dict[str, Any], params: SECParams, model: nn.Module,
                device: torch.device) -> None:
    """``metrics.json``, ``provenance.json`` and ``model.pt`` of one run (``thesislib record`` reads them)."""
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / "metrics.json", record)
    write_json(output / "provenance.json", provenance(config=to_dict(params), device=device))
    torch.save(unwrap(model).state_dict(), output / "model.pt")


def run(params: SECParams, device: str | torch.device = "auto", nproc: int | None = None,
        output: Path | None = None, data: SECData | None = None, cues: CueMaps | None = None,
        timeout: float | None = None) -> tuple[dict[str, Any], nn.Module, History]:
    """One configuration: in this process (``nproc`` 1) or as ``nproc`` torchrun DDP processes
    (default ``params.nproc``), whose rank 0 writes ``output`` (a temporary directory if None) and
    whose record and model are read back here. ``cues`` (given): passed to the processes in a file
    instead of being recomputed. Returns (record, model, training history)."""
    nproc = params.nproc if nproc is None else nproc
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if nproc == 1:
        device = resolve_device(device) if not isinstance(device, torch.device) else device
        record, model, history = train_and_evaluate(params, device, data, cues)
        if output is not None:
            save_record(output, record, params, model, device)
        return record, model, history
    device_type = resolve_device(device).type
    with tempfile.TemporaryDirectory(prefix="sec-") as tmp:
        out = Path(output) if output else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        args = ["--params", str(write_json(out / "params.json", to_dict(params))), "--output", str(out),
                "--device", device_type]
        if cues is not None:
            torch.save({"cues": cues.cues, "conflicts": cues.conflicts}, out / "cues.pt")
            args += ["--cues", str(out / "cues.pt")]
        launch("thesislib.methods.sec.train", args, nproc=nproc, timeout=timeout)
        record = json.loads((out / "metrics.json").read_text())
        model = build_network(params, (data if data is not None else load_data(params)).num_labels)
        model.load_state_dict(torch.load(out / "model.pt", map_location="cpu", weights_only=True))
    history = History()
    history.load_state_dict(record["history"])
    return record, model, history


def main(argv: list[str] | None = None) -> int:
    """``[torchrun ...] python -m thesislib.methods.sec.train --params p.(json|yaml) [--output DIR]
    [--cues cues.pt] [--device D]``: one configuration (the SECParams fields of the file; its loss
    switches name the ablation), rank 0 writes DIR."""
    parser = argparse.ArgumentParser(prog="python -m thesislib.methods.sec.train", description=main.__doc__)
    parser.add_argument("--params", "--config", dest="params", required=True,
                        help="JSON or YAML mapping of SECParams fields")
    parser.add_argument("--output", help="directory for metrics.json, provenance.json and model.pt")
    parser.add_argument("--cues", help="cue maps saved by run() (torch file with 'cues', 'conflicts')")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    args = parser.parse_args(argv)
    try:  # everything that can be wrong with the inputs fails here, before training
        mapping = load_params_file(args.params)
        params = sec_config(mapping)
        check_inputs(params)
        data = load_data(params)
    except (ConfigError, DatasetNotFoundError, FileNotFoundError, ValueError) as err:
        print(f"sec: error: {err}", file=sys.stderr)
        return 2
    with distributed_session(args.device) as device:
        cues = None
        if args.cues:
            saved = torch.load(args.cues, map_location="cpu", weights_only=True)
            cues = CueMaps(saved["cues"], saved["conflicts"])
        record, model, _ = train_and_evaluate(params, device, data, cues)
        if is_main_process():
            if args.output:
                save_record(Path(args.output), record, params, model, device)
            print(json.dumps(record["experiments"], indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A method trained in named stages (RotNet, then supervised, then joint...), each stage one engine run
that may start from the previous stage's weights, in this process or under torchrun.

:class:`StagedPipeline` gives a chapter's ``train.py`` its ``run_stage`` (in-process with ``nproc`` 1;
else ``nproc`` DDP processes through :func:`thesislib.engine.launch`, whose rank 0 writes
``<stage>.pt`` and ``metrics_<stage>.json``, read back here) and its torchrun entry point ``main``::

    [torchrun ...] python -m <module> --params p.(json|yaml) --stage S [--init prev.pt] [--output DIR] [--device D]

Inputs are checked before training: a bad parameter, a missing or corrupt dataset or a missing
``--init`` is exit status 2 with the message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from thesislib.config import ConfigError, load_params_file, to_dict
from thesislib.data.errors import DatasetNotFoundError
from thesislib.data.integrity import DatasetCorruptError
from thesislib.device import resolve_device
from thesislib.engine import History, launch
from thesislib.engine.distributed import distributed_session, get_rank, is_distributed, is_main_process, unwrap
from thesislib.repro import provenance, seed_everything, write_json

#: train(stage, params, data, device, init) -> (trained network, history)
StageFn = Callable[[str, Any, Any, torch.device, "dict[str, Tensor] | None"], tuple[nn.Module, History]]


def decorrelate_ranks(seed: int) -> None:
    """Under DDP, reseed the global RNGs of ranks 1.. with ``seed + 1_000_003 * rank``; called after the
    network is built and before training, so the ranks draw different augmentations, RICAP crops and
    MixUp weights (every rank seeds ``params.seed`` for the network, which DDP broadcasts from rank 0
    anyway). Rank 0 and a single process are untouched: one-process results do not change."""
    rank = get_rank()
    if is_distributed() and rank > 0:
        seed_everything(seed + 1_000_003 * rank)


@dataclass(frozen=True)
class StagedPipeline:
    """``chapter`` and the ``module`` torchrun runs; ``stages`` in order and those that ``need_init``;
    ``config(mapping) -> params``, ``load_data(params) -> data``, ``train`` (:data:`StageFn`) and
    ``model_for(stage, params)``, an untrained network whose state dict matches the stage's output."""

    chapter: str
    module: str
    stages: tuple[str, ...]
    need_init: tuple[str, ...]
    config: Callable[[Mapping[str, Any]], Any]
    load_data: Callable[[Any], Any]
    train: StageFn
    model_for: Callable[[str, Any], nn.Module]

    def check(self, stage: str, init: dict[str, Tensor] | None) -> None:
        if stage not in self.stages:
            raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(self.stages)}")
        if stage in self.need_init and init is None:
            raise ValueError(f"the {stage} stage needs the previous stage's weights (--init)")

    def run(self, stage: str, params: Any, device: str | torch.device = "auto", *, data: Any = None,
            init: dict[str, Tensor] | None = None, nproc: int | None = None, output: Path | None = None,
            timeout: float | None = None) -> tuple[nn.Module, History]:
        """Train ``stage`` from ``init`` in this process or as ``nproc`` (default ``params.nproc``) DDP processes.

        ``data`` is for the in-process path only: torchrun processes load the data from ``params``, so
        passing ``data`` with ``nproc`` > 1 is an error rather than silently ignored."""
        self.check(stage, init)
        nproc = params.nproc if nproc is None else nproc
        if nproc < 1:
            raise ValueError(f"nproc must be >= 1, got {nproc}")
        if nproc > 1 and data is not None:
            raise ValueError(f"{self.chapter}: data= cannot reach {nproc} torchrun processes (each loads the "
                             "data from params); pass data only with nproc 1")
        if nproc == 1:
            device = device if isinstance(device, torch.device) else resolve_device(device)
            model, history = self.train(stage, params, data if data is not None else self.load_data(params),
                                        device, init)
            if output is not None:
                self.save(Path(output), stage, params, model, history, device)
            return model, history
        with tempfile.TemporaryDirectory(prefix=f"{self.chapter}-") as tmp:
            out = Path(output) if output else Path(tmp)
            out.mkdir(parents=True, exist_ok=True)
            args = ["--params", str(write_json(out / "params.json", to_dict(params))), "--output", str(out),
                    "--device", resolve_device(device).type, "--stage", stage]
            if init is not None:
                torch.save(init, out / "init.pt")
                args += ["--init", str(out / "init.pt")]
            launch(self.module, args, nproc=nproc, timeout=timeout)
            model = self.model_for(stage, params)
            model.load_state_dict(torch.load(out / f"{stage}.pt", map_location="cpu", weights_only=True))
            record = json.loads((out / f"metrics_{stage}.json").read_text())
        history = History()
        history.load_state_dict(record["history"])
        return model, history

    def save(self, out: Path, stage: str, params: Any, model: nn.Module, history: History,
             device: torch.device) -> None:
        """``<stage>.pt``, ``metrics_<stage>.json`` (the history) and ``provenance.json`` under ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / f"metrics_{stage}.json", {"chapter": self.chapter, "stage": stage, "scale": params.scale,
                                                    "history": history.state_dict()})
        write_json(out / "provenance.json", provenance(config=to_dict(params), device=device))
        torch.save(unwrap(model).state_dict(), out / f"{stage}.pt")

    def main(self, argv: list[str] | None = None) -> int:
        """The torchrun entry point (module docstring); 0 on success, 2 on bad inputs."""
        parser = argparse.ArgumentParser(prog=f"python -m {self.module}",
                                         description=f"one training stage of the {self.chapter} chapter")
        parser.add_argument("--params", "--config", dest="params", required=True, help="JSON or YAML parameters")
        parser.add_argument("--stage", choices=self.stages, default=self.stages[0])
        parser.add_argument("--init", help="the previous stage's weights (a state dict file)")
        parser.add_argument("--output", help="directory for <stage>.pt, metrics_<stage>.json, provenance.json")
        parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
        args = parser.parse_args(argv)
        try:
            params = self.config(load_params_file(args.params))
            data = self.load_data(params)
            init = torch.load(args.init, map_location="cpu", weights_only=True) if args.init else None
            self.check(args.stage, init)
        except (ConfigError, DatasetNotFoundError, DatasetCorruptError, FileNotFoundError, ValueError) as err:
            print(f"{self.chapter}: error: {err}", file=sys.stderr)
            return 2
        with distributed_session(args.device) as device:
            model, history = self.train(args.stage, params, data, device, init)
            if is_main_process() and args.output:
                self.save(Path(args.output), args.stage, params, model, history, device)
        return 0

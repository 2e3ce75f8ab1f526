"""Training the chapter's CAM classifier through the engine, in this process or under torchrun.

:func:`train_cam`: Adam at a fixed ``lr`` (:func:`.config.cam_optimizer_settings`), the loss of
:mod:`.losses`, ``epochs`` passes (:func:`.config.cam_train_config`, built by
:func:`thesislib.engine.train_config`) through :func:`thesislib.engine.fit`, which shards the
data and wraps the model in DDP when the process was started by torchrun.

:func:`prepare_model` (the full runs): the CAM classifier of ``arch`` loaded from
``weights_path`` and/or trained for ``epochs``; with ``nproc > 1`` the training runs as
``nproc`` DDP processes (:func:`thesislib.engine.launch`) of this module's command line::

    python -m torch.distributed.run --standalone --nproc_per_node=4 \\
        -m thesislib.methods.micro_annotation.train --params params.json --output DIR

whose rank 0 writes ``DIR/cam_classifier.pt`` (a state dict), read back here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from thesislib.config import ConfigError, to_dict
from thesislib.engine import History, fit, launch
from thesislib.engine.distributed import distributed_session, is_main_process
from thesislib.methods.micro_annotation.config import (
    MicroAnnotationParams,
    cam_optimizer_settings,
    cam_train_config,
    micro_params,
)
from thesislib.methods.micro_annotation.data import training_set
from thesislib.methods.micro_annotation.losses import cam_loss
from thesislib.methods.micro_annotation.model import build_cam_classifier
from thesislib.nn import CAMClassifier
from thesislib.repro import seed_everything

WEIGHTS_FILE = "cam_classifier.pt"


def train_cam(model: nn.Module, dataset: Any, params: MicroAnnotationParams, seed: int, device: torch.device, *,
              multilabel: bool, collate_fn: Any = None, checkpoint_dir: str | None = None) -> History:
    """Fit ``model`` on the image-level labels of ``dataset`` (module doc); returns the engine's
    history and leaves the model on ``device`` in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), **cam_optimizer_settings(params))
    history = fit(model, optimizer, dataset, cam_loss(multilabel),
                  cam_train_config(params, seed, len(dataset), checkpoint_dir), device, collate_fn=collate_fn)
    model.eval()
    return history


def _build(params: MicroAnnotationParams, num_classes: int, weights_path: str | None = None) -> CAMClassifier:
    return build_cam_classifier(params.arch, num_classes, width=params.cam_width, extra=params.cam_extra,
                                weights_path=weights_path, vgg16_path=params.vgg16_path or None)


def train_here(params: MicroAnnotationParams, device: torch.device) -> CAMClassifier:
    """Build and train the CAM classifier of ``params`` on :func:`.data.training_set` in this process
    (one rank of a DDP job when torchrun started it); checkpoints under ``<output_dir>/cam_checkpoints``."""
    seed_everything(params.seed)
    dataset, num_classes, multilabel, collate = training_set(params, params.seed)
    model = _build(params, num_classes, params.weights_path or None).to(device)
    checkpoints = str(Path(params.output_dir) / "cam_checkpoints") if params.output_dir else None
    train_cam(model, dataset, params, params.seed, device, multilabel=multilabel, collate_fn=collate,
              checkpoint_dir=checkpoints)
    return model


def prepare_model(params: MicroAnnotationParams, num_classes: int, device: torch.device,
                  timeout: float | None = None) -> CAMClassifier:
    """The full runs' CAM classifier: ``weights_path`` as is (``epochs = 0``), or trained for
    ``epochs`` here (``nproc = 1``) or by ``nproc`` torchrun processes writing
    ``<output_dir>/cam_classifier.pt``; returned on ``device`` in eval mode."""
    if params.epochs == 0:
        return _build(params, num_classes, params.weights_path).to(device).eval()
    if params.nproc == 1:
        return train_here(params, device)
    if not params.output_dir:
        raise ConfigError("nproc > 1 needs output_dir (the torchrun job writes cam_classifier.pt there)")
    out = Path(params.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cam_params.json").write_text(json.dumps(to_dict(params)))
    launch("thesislib.methods.micro_annotation.train",
           ["--params", str(out / "cam_params.json"), "--output", str(out), "--device", device.type],
           nproc=params.nproc, timeout=timeout)
    return _build(params, num_classes, str(out / WEIGHTS_FILE)).to(device).eval()


def main(argv: list[str] | None = None) -> int:
    """Command line (one rank of a torchrun job): train the CAM classifier of ``--params`` (a JSON
    file of :class:`~.config.MicroAnnotationParams` fields); rank 0 writes ``--output``/cam_classifier.pt."""
    parser = argparse.ArgumentParser(prog="python -m thesislib.methods.micro_annotation.train",
                                     description="Train micro-annotation's CAM classifier (one DDP rank).")
    parser.add_argument("--params", required=True, help="JSON file of MicroAnnotationParams fields")
    parser.add_argument("--output", required=True, help="directory for cam_classifier.pt")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (each rank takes cuda:LOCAL_RANK)")
    args = parser.parse_args(argv)
    try:
        params = micro_params(json.loads(Path(args.params).read_text()), nproc=1)
    except (ConfigError, OSError, json.JSONDecodeError) as err:
        print(f"error: {args.params}: {err}", file=sys.stderr)
        return 2
    with distributed_session(args.device) as device:
        model = train_here(params, device)
        if is_main_process():
            Path(args.output).mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), Path(args.output) / WEIGHTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())

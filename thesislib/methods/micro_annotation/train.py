"""The CAM classifiers of the chapter and their training through the shared engine.

The thesis takes a trained GAP network (Zhou et al.'s VGGnet-GAP: VGG16 to conv5_3, one 3x3 conv
with 1024 channels + ReLU, global average pooling, linear) and clusters conv5_3 patterns. The
smoke run uses the same layout at a small size, :func:`cam_small_gap`: the trunk of
:func:`~thesislib.nn.cam_smallnet` (3 conv layers, stride 2, 16x16 maps for 32x32 images) plays
conv5_3, and an extra 3x3 conv + ReLU feeds the GAP, so ``pattern_layer="trunk"`` takes the
patterns one layer below the CAM features, as on ILSVRC.

Training: image-level labels only, binary cross-entropy on the multi-hot labels (one sigmoid per
class: images may hold several classes) or softmax cross-entropy for single-label data (ILSVRC),
Adam, a fixed learning rate, the engine's :func:`~thesislib.engine.fit` loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.engine import History, TrainConfig, fit
from thesislib.nn import CAMClassifier, WeightsNotFoundError, cam_smallnet, cam_vgg16


def cam_small_gap(num_classes: int, width: int = 16, extra: int = 64) -> CAMClassifier:
    """Smoke-scale GAP network: ``cam_smallnet``'s trunk (K = 2 width channels, stride 2,
    receptive field 9 px) + 3x3 conv to ``extra`` channels + ReLU (receptive field 13 px), GAP,
    linear. CAMs and trunk patterns are (B, ., H/2, W/2)."""
    trunk = cam_smallnet(num_classes, width=width).trunk
    return CAMClassifier(trunk, 2 * width, num_classes, extra_channels=extra)


def build_cam_classifier(arch: str, num_classes: int, *, width: int = 16, extra: int = 64,
                         weights_path: str | Path | None = None,
                         vgg16_path: str | Path | None = None) -> CAMClassifier:
    """``"cam_small"`` (:func:`cam_small_gap`) or ``"cam_vgg16"`` (:func:`~thesislib.nn.cam_vgg16`,
    trunk from ``vgg16_path`` when given). ``weights_path``: a state dict of the whole CAM
    classifier (e.g. a trained GAP network), loaded last; a missing file is a
    :class:`~thesislib.nn.WeightsNotFoundError`."""
    if arch == "cam_small":
        model = cam_small_gap(num_classes, width, extra)
    elif arch == "cam_vgg16":
        model = cam_vgg16(num_classes, weights_path=vgg16_path or None)
    else:
        raise ValueError(f"arch must be 'cam_small' or 'cam_vgg16', got {arch!r}")
    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"CAM classifier weights not found at {path}: pass weights_path= "
                                       f"a state dict saved with torch.save(model.state_dict(), path), "
                                       f"or set epochs > 0 to train the classifier")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
            state = state["model"]  # an engine checkpoint
        model.load_state_dict(state)
    return model


def cam_step(multilabel: bool):
    """The engine's ``step_fn`` for a batch (images (B, 3, H, W), labels, ...) or a dict with
    ``image`` and ``labels``: BCE with logits on multi-hot labels (B, C), or cross-entropy on class
    indices (B,); reports accuracy (multi-label: the top class is one of the image's labels)."""
    def step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        images, labels = (batch["image"], batch["labels"]) if isinstance(batch, Mapping) else (batch[0], batch[1])
        logits = model(images)
        if multilabel:
            loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float())
            top = logits.argmax(dim=1, keepdim=True)
            acc = labels.gather(1, top).float().mean()
        else:
            loss = F.cross_entropy(logits.float(), labels.long())
            acc = (logits.argmax(dim=1) == labels).float().mean()
        return loss, {"acc": acc}
    return step


def train_cam_classifier(model: CAMClassifier, train_set: Dataset, device: torch.device, *, epochs: int,
                         batch_size: int, lr: float, seed: int, multilabel: bool, num_workers: int = 0,
                         collate_fn: Callable[[list[Any]], Any] | None = None, checkpoint_dir: str | None = None,
                         progress: str = "auto") -> History:
    """Fit ``model`` on ``train_set`` (items (image, label, ...) or dicts, see :func:`cam_step`)
    with Adam at a fixed ``lr``, logging once per epoch; returns the engine's
    :class:`~thesislib.engine.History`. With ``checkpoint_dir`` the run resumes from its newest
    checkpoint. The model is left on ``device``, in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, num_workers=num_workers,
                         log_every=-(-len(train_set) // batch_size), checkpoint_dir=checkpoint_dir,
                         resume=checkpoint_dir is not None, progress=progress)  # type: ignore[arg-type]
    history = fit(model, optimizer, train_set, cam_step(multilabel), config, device, collate_fn=collate_fn)
    model.eval()
    return history

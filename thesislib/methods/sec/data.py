"""SEC's training and evaluation data: procedural scenes (smoke) or PASCAL VOC 2012 + SBD (full).

Both give the same item layout, so the training and evaluation code does not care which:

* training items: ``{"image": float32 (3, S, S) network input, "labels": float32 (C',)
  present foreground classes, "index": int64}`` (the position, used to look the cues up);
* evaluation items: ``{"image": float32 (3, S, S), "rgb": uint8 (3, H, W) the image at its own
  resolution, "mask": int64 (H, W) ground truth, 255 = ignore}``.

The network input is the RGB image on the 0-255 scale normalised by
:func:`thesislib.data.transforms.normalize` with ``scale=255`` (``"imagenet"`` statistics for
torchvision VGG16 weights, ``"caffe"`` for converted Caffe weights);
:func:`thesislib.data.transforms.denormalize` with ``scale=255`` inverts it for the CRF.
Scenes (``thesislib.data.scenes.sec_scenes``): 4 classes, S = H = W =
``image_size``; VOC: *trainaug* (10,582 images, image-level labels only are used for training)
resized to S x S = 321 x 321 (no crop), *val* at full resolution for evaluation.
:func:`load_data` picks by the parameters; :func:`check_inputs` checks the files they name
before anything heavy runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from thesislib.data.scenes import Scenes, generate_scenes, sec_scenes
from thesislib.data.transforms import normalize, resize_image, to_tensor
from thesislib.data.voc import VOC_CLASSES, VOCSegmentation
from thesislib.methods.sec.config import SECParams
from thesislib.nn.vgg import check_vgg16_file


class TensorItems(Dataset):
    """Items ``{name: tensor[i] for each given tensor} | {"index": i}`` from equal-length tensors."""

    def __init__(self, **tensors: Tensor) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors have different lengths {sorted(lengths)}")
        self.tensors = tensors
        self.length = lengths.pop()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = {name: t[index] for name, t in self.tensors.items()}
        item["index"] = torch.tensor(index, dtype=torch.int64)
        return item


class VOCTrainItems(Dataset):
    """VOC *trainaug* as SEC training items (image resized to S x S and normalised, labels).
    Only the image file is read: the labels come from the split's cached label table, so the
    ground-truth mask (an SBD ``.mat`` for most of *trainaug*) stays untouched in training."""

    def __init__(self, base: VOCSegmentation, size: int, normalization: str) -> None:
        self.base, self.size, self.normalization = base, size, normalization

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        rgb = to_tensor(self.base.read_image(index), scale=255.0)
        return {"image": normalize(resize_image(rgb, self.size), self.normalization, scale=255.0),
                "labels": torch.as_tensor(self.base.labels[index], dtype=torch.float32),
                "index": torch.tensor(index, dtype=torch.int64)}

    def mask(self, index: int) -> np.ndarray:
        """The ground-truth mask of item ``index`` (for cue statistics only), int64 (H, W)."""
        return self.base.read(index)["mask"]


class VOCEvalItems(Dataset):
    """VOC *val* as evaluation items: network input, full-resolution RGB and mask."""

    def __init__(self, base: VOCSegmentation, size: int, normalization: str, limit: int = 0) -> None:
        self.base, self.size, self.normalization = base, size, normalization
        self.length = min(len(base), limit) if limit > 0 else len(base)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.base.read(index)
        rgb = to_tensor(sample["image"], scale=255.0)
        image = normalize(resize_image(rgb, self.size), self.normalization, scale=255.0)
        return {"image": image, "rgb": rgb.round().to(torch.uint8),
                "mask": torch.as_tensor(sample["mask"], dtype=torch.int64)}


@dataclass(frozen=True, eq=False)
class SECData:
    """Training and evaluation sets of one run.

    ``class_names`` has K entries, background first; ``image_size`` is the network input side
    S; ``normalization`` the input normalisation; ``scenes_train`` / ``scenes_test`` hold the
    generated scenes (None for VOC), with their masks and 0-1 images for figures.
    """

    kind: str
    train: Dataset
    test: Dataset
    class_names: tuple[str, ...]
    image_size: int
    normalization: str
    scenes_train: Scenes | None = None
    scenes_test: Scenes | None = None

    @property
    def num_labels(self) -> int:
        return len(self.class_names)

    @property
    def train_ids(self) -> list[str] | None:
        """VOC image ids of the training items (None for scenes)."""
        return self.train.base.ids if isinstance(self.train, VOCTrainItems) else None

    def train_masks(self, indices: Any = None) -> Tensor | None:
        """Ground-truth masks of training items (for cue statistics): scenes (N, S, S); VOC: a
        list is impractical at full size, so None unless ``indices`` are given, then a list of
        (H, W) arrays."""
        if self.scenes_train is not None:
            masks = self.scenes_train.masks
            return masks if indices is None else masks[indices]
        if indices is None:
            return None
        return [torch.as_tensor(self.train.mask(int(i))) for i in indices]  # type: ignore[attr-defined]


def scene_items(scenes: Scenes, normalization: str, eval_items: bool) -> TensorItems:
    """Scenes (0-1 images) as training or evaluation items."""
    rgb = (scenes.images * 255.0).round()
    image = normalize(rgb, normalization, scale=255.0)
    if eval_items:
        return TensorItems(image=image, rgb=rgb.to(torch.uint8), mask=scenes.masks)
    return TensorItems(image=image, labels=scenes.labels)


def load_scenes(n_train: int, n_test: int, image_size: int = 32, seed: int = 0,
                normalization: str = "imagenet") -> SECData:
    """Procedural SEC scenes (``sec_scenes`` preset: disk, square, triangle, cross): ``n_train``
    training and ``n_test`` test images of ``image_size`` pixels, drawn from ``seed`` (the test
    scenes from an independent stream)."""
    config = sec_scenes(size=image_size)
    rng = np.random.default_rng(seed)
    train = generate_scenes(config, n_train, rng)
    test = generate_scenes(config, n_test, rng)
    return SECData("scenes", scene_items(train, normalization, False), scene_items(test, normalization, True),
                   ("background",) + train.class_names, image_size, normalization, train, test)


def load_voc(image_size: int = 321, normalization: str = "imagenet", voc_root: str | None = None,
             sbd_root: str | None = None, train_split: str = "trainaug", eval_split: str = "val",
             max_eval_images: int = 0) -> SECData:
    """PASCAL VOC 2012 (+ SBD for *trainaug*) from ``$THESISLIB_DATA`` (or the given roots).

    Raises :class:`thesislib.data.DatasetNotFoundError` naming the variable and the expected
    layout when a directory or list is missing (checked before any image is read).
    """
    train_base = VOCSegmentation(train_split, voc_root, sbd_root)
    eval_base = VOCSegmentation(eval_split, voc_root, sbd_root)
    return SECData("voc", VOCTrainItems(train_base, image_size, normalization),
                   VOCEvalItems(eval_base, image_size, normalization, max_eval_images),
                   VOC_CLASSES, image_size, normalization)


def load_data(params: SECParams) -> SECData:
    """The run's data: scenes drawn from ``params.seed`` or VOC / SBD (a missing directory raises
    :class:`~thesislib.data.DatasetNotFoundError` before anything heavy runs)."""
    if params.data == "scenes":
        return load_scenes(params.n_train, params.n_test, params.image_size, params.seed, params.normalization)
    voc_root, sbd_root = params.roots()
    return load_voc(params.image_size, params.normalization, voc_root, sbd_root, params.train_split,
                    params.eval_split, params.max_eval_images)


def check_inputs(params: SECParams) -> None:
    """Fail early on missing files named by the parameters (weights, cue file and list, foreground cues)."""
    if params.weights_path:
        check_vgg16_file(params.weights_path)
    if params.cue_source == "file":
        for name in ("cue_path", "cue_list"):
            path = Path(getattr(params, name)).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"SECParams.{name} = {path} does not exist (the released code ships "
                                        "training/localization_cues/localization_cues.pickle.gz and "
                                        "training/input_list.txt)")
    if params.foreground_cue_file and not Path(params.foreground_cue_file).expanduser().is_file():
        raise FileNotFoundError(f"SECParams.foreground_cue_file = {params.foreground_cue_file} does not exist "
                                "(cues_after.npz or cues_before.npz of a micro-annotation VOC run, written to "
                                "runs/micro_annotation/<stamp>-full_voc/ by thesislib run micro_annotation "
                                "--scale full_voc)")

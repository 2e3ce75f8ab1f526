"""What one G-softmax experiment is made of: its data on the device, its network, its step function.

:func:`prepare_data` turns a :class:`~thesislib.methods.gsoftmax.train.GSoftmaxConfig` into an
:class:`ExperimentData`:

* ``digits`` (single-label, scikit-learn's 8x8 digits) and ``mosaics`` (multi-label, 2x2 digit
  mosaics) live as whole tensors on the device; the engine's DataLoader only hands out sample
  indices (:class:`IndexDataset`) and the step function gathers the batch on the device.
* ``cifar10``/``cifar100``: the uint8 images (N, 3, 32, 32) are moved to the device once; every
  batch is gathered, randomly cropped (pad 4) and flipped, and normalised THERE
  (:func:`~thesislib.data.random_crop_flip`, :func:`~thesislib.data.normalize`), so data loading
  never limits a GPU.
* ``coco``: :class:`~thesislib.data.CocoMultiLabel` with the released code's transforms (square
  resize to ``image_size``, horizontal flip, colour jitter 0.4, ImageNet normalisation; test:
  square resize only), decoded by DataLoader workers.

:class:`GSoftmaxNet` is backbone + head: ``forward(inputs, target=None) -> (x, z)`` with ``x`` the
logits of the final fully-connected layer and ``z = x + lam Phi(x; mu, sigma)`` (Eq. 3) for
G-softmax, ``z = x`` otherwise. Multi-label heads have two logits per class (``2m`` outputs,
layout in :mod:`~thesislib.methods.gsoftmax.losses`). For L-softmax the backbone's final linear
layer is replaced by :class:`~thesislib.methods.gsoftmax.lsoftmax.LargeMarginLinear`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from thesislib.data import (
    IMAGENET,
    CocoMultiLabel,
    cifar_class_names,
    dataset_dir,
    load_cifar_tensors,
    load_digits_split,
    normalize,
    random_crop_flip,
    resize_image,
    to_tensor,
)
from thesislib.methods.gsoftmax.losses import gsoftmax_multilabel_loss
from thesislib.methods.gsoftmax.lsoftmax import BetaSchedule, LargeMarginLinear
from thesislib.methods.gsoftmax.mosaics import digit_mosaic_splits
from thesislib.methods.gsoftmax.transform import GaussianLogitTransform
from thesislib.nn import mlp, resnet_gmp, wrn

if TYPE_CHECKING:
    from thesislib.methods.gsoftmax.train import GSoftmaxConfig

SINGLE_LABEL_DATASETS: tuple[str, ...] = ("digits", "cifar10", "cifar100")
MULTI_LABEL_DATASETS: tuple[str, ...] = ("mosaics", "coco")
DATASETS: tuple[str, ...] = SINGLE_LABEL_DATASETS + MULTI_LABEL_DATASETS

_WRN = re.compile(r"^wrn-(\d+)-(\d+)$")
_RESNET = re.compile(r"^(resnet(?:18|34|50|101|152))-gmp$")


# --------------------------------------------------------------------------------------------
# backbones by name
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackboneSpec:
    """A parsed backbone name: ``"mlp"``, ``"wrn-<depth>-<widen>"`` or ``"<resnet arch>-gmp"``."""

    kind: str                 # "mlp" | "wrn" | "resnet-gmp"
    depth: int = 0
    widen: int = 0
    arch: str = ""


def parse_backbone(name: str) -> BackboneSpec:
    """``"wrn-40-14"`` -> ``BackboneSpec("wrn", 40, 14)``; unknown names raise ValueError listing the forms."""
    if name == "mlp":
        return BackboneSpec("mlp")
    if match := _WRN.match(name):
        depth, widen = int(match[1]), int(match[2])
        if depth < 10 or (depth - 4) % 6 or widen < 1:
            raise ValueError(f"backbone {name!r}: a WRN needs depth = 6n + 4 >= 10 and widen >= 1")
        return BackboneSpec("wrn", depth, widen)
    if match := _RESNET.match(name):
        return BackboneSpec("resnet-gmp", arch=match[1])
    raise ValueError(f"unknown backbone {name!r}; use 'mlp', 'wrn-<depth>-<widen>' (e.g. wrn-40-14) or "
                     "'resnet<18|34|50|101|152>-gmp' (e.g. resnet101-gmp)")


def backbone_compatible(dataset: str, backbone: str) -> bool:
    """Which backbones each data set can feed: MLPs for the 8x8 / 16x16 digit data, WRNs for CIFAR,
    ResNet-GMP for COCO."""
    kind = parse_backbone(backbone).kind
    return {"digits": kind == "mlp", "mosaics": kind == "mlp", "cifar10": kind in ("wrn", "mlp"),
            "cifar100": kind in ("wrn", "mlp"), "coco": kind == "resnet-gmp"}[dataset]


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------

class IndexDataset(Dataset):
    """Items are the sample indices ``0..n-1``: the data itself stays on the device.

    ``deterministic`` tells the engine that loading an item draws no random numbers (the random
    augmentation happens on the device, in the step function), so it skips per-sample seeding.
    """

    deterministic = True

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return int(index)


def collate_indices(indices: list[int]) -> Tensor:
    return torch.as_tensor(indices, dtype=torch.int64)


Batch = tuple[Tensor, Tensor]


@dataclass
class ExperimentData:
    """The train and test sides of one experiment.

    ``train_set``/``test_set`` are what the engine's loaders iterate (indices or COCO items);
    ``train_batch(batch)``/``test_batch(batch)`` turn a loaded batch, already on the device, into
    ``(inputs, targets)``: targets are class indices (B,) for single-label and {0, 1} (B, m) for
    multi-label data. ``collate_fn`` is the loaders' collate function (None: PyTorch's default).
    """

    dataset: str
    multilabel: bool
    num_classes: int
    class_names: tuple[str, ...]
    train_set: Dataset
    test_set: Dataset
    train_batch: Callable[[Any], Batch]
    test_batch: Callable[[Any], Batch]
    collate_fn: Callable[[list[Any]], Any] | None
    in_features: int = 0      # flattened input size, for the MLP

    @property
    def num_outputs(self) -> int:
        """m logits single-label, 2m (positive and negative per class) multi-label."""
        return 2 * self.num_classes if self.multilabel else self.num_classes


def _in_memory(train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, device: torch.device,
               **kwargs: Any) -> ExperimentData:
    tensors = [t.to(device) for t in (train_x, train_y, test_x, test_y)]
    tx, ty, vx, vy = tensors

    def train_batch(idx: Tensor) -> Batch:
        return tx[idx], ty[idx]

    def test_batch(idx: Tensor) -> Batch:
        idx = idx.to(device)
        return vx[idx], vy[idx]

    return ExperimentData(train_set=IndexDataset(len(ty)), test_set=IndexDataset(len(vy)), train_batch=train_batch,
                          test_batch=test_batch, collate_fn=collate_indices, in_features=tx[0].numel(), **kwargs)


def _digits(config: GSoftmaxConfig, device: torch.device) -> ExperimentData:
    split = load_digits_split(config.test_fraction, config.data_seed, flat=True)
    return _in_memory(split.x_train, split.y_train, split.x_test, split.y_test, device, dataset="digits",
                      multilabel=False, num_classes=split.num_classes, class_names=split.class_names)


def _mosaics(config: GSoftmaxConfig, device: torch.device) -> ExperimentData:
    train, test = digit_mosaic_splits(config.mosaic_train, config.mosaic_test, config.data_seed,
                                      test_fraction=config.test_fraction)
    flat = [train.images.flatten(1), train.labels, test.images.flatten(1), test.labels]
    return _in_memory(*flat, device, dataset="mosaics", multilabel=True, num_classes=10,
                      class_names=tuple(str(d) for d in range(10)))


def _cifar(config: GSoftmaxConfig, device: torch.device) -> ExperimentData:
    name = config.dataset
    root = dataset_dir(name, data_root=config.data_root)
    train_x, train_y = (t.to(device) for t in load_cifar_tensors(name, train=True, root=root))
    test_x, test_y = (t.to(device) for t in load_cifar_tensors(name, train=False, root=root))
    channels_last = config.channels_last and device.type == "cuda"

    def prepare(x: Tensor) -> Tensor:
        x = normalize(x, name)
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def train_batch(idx: Tensor) -> Batch:
        return prepare(random_crop_flip(train_x[idx], padding=4)), train_y[idx]

    def test_batch(idx: Tensor) -> Batch:
        idx = idx.to(device)
        return prepare(test_x[idx]), test_y[idx]

    names = cifar_class_names(name)
    return ExperimentData(name, False, len(names), names, IndexDataset(len(train_y)), IndexDataset(len(test_y)),
                          train_batch, test_batch, collate_indices, in_features=3 * 32 * 32)


def coco_transforms(image_size: int) -> tuple[Callable[[Any], Tensor], Callable[[Any], Tensor]]:
    """(train, test) PIL-image transforms of the released COCO code: square resize (no crop), flip,
    colour jitter 0.4 (brightness, contrast, saturation), ImageNet mean/std; test: resize only.
    To-tensor, resize and normalisation are :mod:`thesislib.data.transforms`' (one resize policy).

    The code's AlexNet-style PCA lighting noise (0.1) is left out (torchvision has no such transform).
    """
    import torchvision.transforms as T

    resize = partial(resize_image, size=image_size)
    norm = partial(normalize, normalization=IMAGENET)
    train = T.Compose([to_tensor, resize, T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4), norm])
    return train, T.Compose([to_tensor, resize, norm])


def _coco(config: GSoftmaxConfig, device: torch.device) -> ExperimentData:
    train_tf, test_tf = coco_transforms(config.image_size)
    root = dataset_dir("coco", data_root=config.data_root)
    train = CocoMultiLabel(root, "train2014", transform=train_tf)
    test = CocoMultiLabel(root, "val2014", transform=test_tf)

    def passthrough(batch: Any) -> Batch:
        images, targets = batch
        return images, targets

    return ExperimentData("coco", True, train.num_classes, tuple(train.class_names), train, test, passthrough,
                          passthrough, None)


def prepare_data(config: GSoftmaxConfig, device: torch.device) -> ExperimentData:
    """Load (or generate) the data of ``config.dataset``; in-memory data is moved to ``device``.

    Missing CIFAR/COCO files raise :class:`~thesislib.data.DatasetNotFoundError` (it names
    ``THESISLIB_DATA`` and the layout); ``config.data_root`` overrides the data root.
    """
    builders = {"digits": _digits, "mosaics": _mosaics, "cifar10": _cifar, "cifar100": _cifar, "coco": _coco}
    return builders[config.dataset](config, torch.device(device))


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------

class GSoftmaxNet(nn.Module):
    """Backbone + classification head. ``forward(inputs, target=None) -> (x, z)``, each (B, outputs).

    ``x``: logits of the final fully-connected layer (for L-softmax in training, with the margin
    applied to the true class, which needs ``target``); ``z``: ``transform(x)`` for G-softmax
    (Eq. 3's softmax argument), else ``x`` itself.
    """

    def __init__(self, backbone: nn.Module, transform: GaussianLogitTransform | None = None,
                 margin_head: LargeMarginLinear | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.transform = transform
        self.margin_head = margin_head

    def forward(self, inputs: Tensor, target: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.margin_head is not None:
            x = self.margin_head(self.backbone(inputs), target if self.training else None)
        else:
            x = self.backbone(inputs)
        return x, (x if self.transform is None else self.transform(x))


def _final_layer_name(backbone: nn.Module) -> str:
    for name in ("head", "fc"):
        if isinstance(getattr(backbone, name, None), nn.Linear):
            return name
    raise TypeError(f"{type(backbone).__name__} has no final linear layer named 'head' or 'fc'")


def build_model(config: GSoftmaxConfig, data: ExperimentData) -> GSoftmaxNet:
    """The network of ``config`` for ``data`` (draws its initial weights from torch's global RNG).

    The G-softmax transform holds one (mu, sigma) per output (``2m`` multi-label); its construction
    draws no random numbers, so softmax and G-softmax runs with one seed start from the same weights.
    """
    spec = parse_backbone(config.backbone)
    outputs = data.num_outputs
    if spec.kind == "mlp":
        backbone = mlp(data.in_features, outputs, config.hidden)
    elif spec.kind == "wrn":
        backbone = wrn(spec.depth, spec.widen, outputs)
    else:
        backbone = resnet_gmp(outputs, spec.arch, config.weights_path or None)
    transform = margin_head = None
    if config.method == "gsoftmax":
        transform = GaussianLogitTransform(outputs, lam=config.lam, mu_init=config.mu_init,
                                           sigma_init=config.sigma_init, learn=config.learn_gaussians,
                                           sigma_param=config.sigma_param)
    elif config.method == "lsoftmax":
        name = _final_layer_name(backbone)
        setattr(backbone, name, nn.Identity())          # the backbone now returns its features
        margin_head = LargeMarginLinear(backbone.num_features, outputs, margin=config.lsoftmax_margin,
                                        beta=BetaSchedule(*config.lsoftmax_beta))
    return GSoftmaxNet(backbone, transform, margin_head)


def make_step_fn(config: GSoftmaxConfig, data: ExperimentData) -> Callable[[nn.Module, Any], tuple[Tensor, dict]]:
    """The engine's ``step_fn(model, batch) -> (loss, metrics)``.

    Single-label: cross-entropy of ``z`` (Eq. 13; plain softmax when ``z = x``), train accuracy on
    ``argmax z``. Multi-label: :func:`~thesislib.methods.gsoftmax.losses.gsoftmax_multilabel_loss`
    of ``z`` with ``config.multilabel_reading`` (the transform was already applied by the model).
    """
    needs_target = config.method == "lsoftmax"

    def single(model: nn.Module, batch: Any) -> tuple[Tensor, dict]:
        inputs, targets = data.train_batch(batch)
        _, z = model(inputs, targets if needs_target else None)
        z = z.float()
        return F.cross_entropy(z, targets), {"acc": (z.argmax(1) == targets).float().mean()}

    def multi(model: nn.Module, batch: Any) -> tuple[Tensor, dict]:
        inputs, targets = data.train_batch(batch)
        _, z = model(inputs)
        return gsoftmax_multilabel_loss(z.float(), targets, None, reading=config.multilabel_reading), {}

    return multi if data.multilabel else single


# --------------------------------------------------------------------------------------------
# the chapter notebook's plan: parameters -> configs
# --------------------------------------------------------------------------------------------

#: Table III's (mu, sigma) initialisations of the multi-label G-softmax
TABLE3_INITS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (0.0, 0.5), (0.0, 5.0), (-0.1, 1.0), (0.1, 1.0))


@dataclass(frozen=True)
class GSoftmaxNotebookParams:
    """The parameters of ``notebooks/luo2020/01_gsoftmax`` (names = its ``parameters`` cell).

    Defaults are the smoke scale (2-core CPU, under two minutes); ``configs/gsoftmax/full*.yaml``
    hold the paper's settings. ``single_*`` fields set the single-label part (``single_dataset``
    digits | cifar10 | cifar100 | none, ``n_seeds`` paired seeds ``seed, seed+1, ...``), ``multi_*``
    the multi-label part (mosaics | coco | none; one run per (mu, sigma) of ``multi_inits`` plus the
    softmax baseline, seed ``seed``). ``nproc > 1`` runs every configuration as ``nproc`` DDP
    processes; ``checkpoint_root`` ('' = no checkpoints) keeps resumable checkpoints per run.
    """

    seed: int = 0
    n_seeds: int = 5
    scale: str = "smoke"
    output_dir: str = ""
    device: str = "auto"
    threads: int = 1
    nproc: int = 1
    progress: str = "none"
    data_root: str = ""
    num_workers: int = 0
    checkpoint_root: str = ""
    amp: bool = True
    compile: bool = False
    figure_class: int = 0
    single_dataset: str = "digits"
    single_backbone: str = "mlp"
    single_methods: tuple[str, ...] = ("softmax", "gsoftmax", "lsoftmax")
    hidden: tuple[int, ...] = (128, 64)
    lam: float = 1.0
    sigma_param: str = "exp"
    learn_gaussians: bool = True
    lsoftmax_margin: int = 2
    lsoftmax_beta: tuple[float, float, float, float] = (1000.0, 2e-3, 45.0, 0.0)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.2
    malleable_pieces: tuple[tuple[int, float, float], ...] = ((1000, 0.0, -8.0), (100, -8.0, -9.0))
    malleable_base: float = 10.0
    multi_dataset: str = "mosaics"
    multi_backbone: str = "mlp"
    multi_hidden: tuple[int, ...] = (256, 128)
    multi_lam: float = 1.0
    multi_inits: tuple[tuple[float, float], ...] = TABLE3_INITS
    multi_reading: str = "pairwise"
    mosaic_train: int = 2000
    mosaic_test: int = 1000
    multi_epochs: int = 15
    multi_batch_size: int = 64
    multi_lr: float = 0.05
    multi_momentum: float = 0.9
    multi_nesterov: bool = False
    multi_weight_decay: float = 5e-4
    image_size: int = 448
    weights_path: str = ""

    def __post_init__(self) -> None:
        from thesislib.config import ConfigError

        if self.single_dataset not in (*SINGLE_LABEL_DATASETS, "none"):
            raise ConfigError(f"single_dataset must be one of {', '.join(SINGLE_LABEL_DATASETS)}, none; "
                              f"got {self.single_dataset!r}")
        if self.multi_dataset not in (*MULTI_LABEL_DATASETS, "none"):
            raise ConfigError(f"multi_dataset must be one of {', '.join(MULTI_LABEL_DATASETS)}, none; "
                              f"got {self.multi_dataset!r}")
        if self.n_seeds < 1 or self.nproc < 1:
            raise ConfigError("n_seeds and nproc must be >= 1")
        if self.single_dataset != "none" and "softmax" not in self.single_methods:
            raise ConfigError("single_methods must include 'softmax', the baseline every comparison is against")
        if self.multi_dataset == "coco" and self.scale != "smoke" and not self.weights_path:
            raise ConfigError("multi_dataset='coco' needs weights_path: the torchvision ImageNet ResNet-101 "
                              "state dict (resnet101-63fe2227.pth), as the paper fine-tunes a pretrained network; "
                              "pass -p weights_path=/path/to/resnet101-63fe2227.pth")


def _common(p: GSoftmaxNotebookParams) -> dict[str, Any]:
    return dict(data_root=p.data_root, num_workers=p.num_workers, amp=p.amp, compile=p.compile,
                progress=p.progress, sigma_param=p.sigma_param, learn_gaussians=p.learn_gaussians)


def _with_checkpoint(config: GSoftmaxConfig, root: str) -> GSoftmaxConfig:
    if not root:
        return config
    from thesislib.config import replace
    from thesislib.methods.gsoftmax.train import experiment_id, id_slug

    return replace(config, checkpoint_dir=str(Path(root) / id_slug(experiment_id(config)) / f"seed{config.seed}"))


def single_label_configs(p: GSoftmaxNotebookParams) -> list[GSoftmaxConfig]:
    """Every method of ``single_methods`` for each of the ``n_seeds`` seeds (seed-major order)."""
    from thesislib.methods.gsoftmax.train import GSoftmaxConfig

    if p.single_dataset == "none":
        return []
    configs = []
    for seed in range(p.seed, p.seed + p.n_seeds):
        for method in p.single_methods:
            config = GSoftmaxConfig(
                dataset=p.single_dataset, backbone=p.single_backbone, method=method, lam=p.lam, hidden=p.hidden,
                lsoftmax_margin=p.lsoftmax_margin, lsoftmax_beta=p.lsoftmax_beta, epochs=p.epochs,
                batch_size=p.batch_size, lr=p.lr, momentum=p.momentum, nesterov=p.nesterov,
                weight_decay=p.weight_decay, schedule=p.schedule, milestones=p.milestones, gamma=p.gamma,
                malleable_pieces=p.malleable_pieces, malleable_base=p.malleable_base, seed=seed, **_common(p))
            configs.append(_with_checkpoint(config, p.checkpoint_root))
    return configs


def multilabel_configs(p: GSoftmaxNotebookParams) -> list[GSoftmaxConfig]:
    """The softmax baseline, then G-softmax with each (mu, sigma) of ``multi_inits``; seed ``p.seed``."""
    from thesislib.methods.gsoftmax.train import GSoftmaxConfig

    if p.multi_dataset == "none":
        return []
    base = dict(dataset=p.multi_dataset, backbone=p.multi_backbone, lam=p.multi_lam, hidden=p.multi_hidden,
                multilabel_reading=p.multi_reading, mosaic_train=p.mosaic_train, mosaic_test=p.mosaic_test,
                image_size=p.image_size, weights_path=p.weights_path, epochs=p.multi_epochs,
                batch_size=p.multi_batch_size, lr=p.multi_lr, momentum=p.multi_momentum, nesterov=p.multi_nesterov,
                weight_decay=p.multi_weight_decay, seed=p.seed, **_common(p))
    configs = [GSoftmaxConfig(method="softmax", **base)]
    configs += [GSoftmaxConfig(method="gsoftmax", mu_init=mu, sigma_init=sigma, **base) for mu, sigma in p.multi_inits]
    return [_with_checkpoint(c, p.checkpoint_root) for c in configs]

"""Evaluation of a trained replicate: C's per-layer linear probes against a random C, C's accuracy per
transformation on held-out images, and the local-vs-global diagnostics.

* :func:`probe_accuracies`: :func:`thesislib.eval.layer_probes` on C's frozen conv layers (features
  average-pooled to ~``probe_dims``, standardised, softmax regression with weight decay): Table 4.2's shape;
  with ``multilabel`` (CelebA) one logistic regression per attribute, scored by the mean attribute AP (Table 4.3).
* :func:`probe_scores`: the same per ``probe_mode``: ``cached`` as above, ``streaming`` through
  :func:`thesislib.eval.streaming_probe.streaming_probe` (all layers in one pass per batch, fresh random crops each
  epoch, all of ImageNet / Places train; single-crop and, with ``probe_test_crops``, multi-crop scores).
* :func:`random_classifier`: the same C, randomly initialised (the "Random" rows).
* :func:`heldout_batch`, :func:`transformation_accuracy`: every transformation of held-out images with draws
  from a seeded generator, and C's accuracy on each class, through :func:`thesislib.engine.evaluate`.
* :func:`diagnostic_task`, :func:`train_diagnostic`: a two-class (identity vs one transformation) or four-class
  (rotation) task on fixed images, a :class:`~thesislib.methods.lci.model.LocalNet` or
  :class:`~thesislib.methods.lci.model.GlobalNet` trained on it through :func:`thesislib.engine.fit` (Adam
  3e-3, ``diag_iterations`` steps of 32), and its held-out accuracy.
* :func:`transfer_results`: the VOC transfer evaluations of ``params.transfer`` (Table 4.4) through the shared
  :func:`thesislib.eval.voc_transfer.run_voc_transfer`, each on a copy of C's conv1-5 (:func:`transfer_backbone`).
* :func:`tiles_task`, :func:`tiles_probe_accuracy`, :func:`supervised_classifier`: Fig. 4.1's test, a linear
  probe on frozen conv5 telling natural from tile-shuffled + band-inpainted held-out images, and the supervised C
  it compares against.
* :func:`stl10_finetune`: Table 4.7: a copy of the whole C with a new 10-way head fine-tuned on STL-10's labelled
  train images and scored on its test images with multi-crop averaging (:func:`thesislib.eval.finetune_classifier`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from thesislib.config import replace
from thesislib.data.round_robin import center_crop
from thesislib.engine import evaluate, fit, train_config
from thesislib.eval.probe import layer_probes
from thesislib.eval.streaming_probe import (
    chapter_probe_config,
    probe_checkpoint_dir,
    probe_data_set,
    streaming_probe,
)
from thesislib.eval.transfer import ConvFeatures, TransferConfig, finetune_classifier
from thesislib.eval.voc_transfer import run_voc_transfer
from thesislib.methods.lci.config import LCIParams, class_names
from thesislib.methods.lci.data import ChapterData, stl10_finetune_data
from thesislib.methods.lci.model import GlobalNet, LocalNet, build_classifier
from thesislib.methods.lci.tiles import tile_shuffle_inpaint
from thesislib.methods.lci.train import inpainter_inputs
from thesislib.methods.lci.transforms import assemble, draw, rotate
from thesislib.repro import seed_everything

__all__ = ["diagnostic_task", "heldout_batch", "probe_accuracies", "probe_scores", "random_classifier", "rotation_task",
           "train_diagnostic", "transfer_backbone", "transfer_results", "transformation_accuracy"]

DIAG_BATCH = 32
DIAG_LR = 3e-3


def random_classifier(params: LCIParams, seed: int) -> nn.Module:
    """A randomly initialised C (PyTorch's default init, seeded by ``seed``)."""
    seed_everything(seed)
    return build_classifier(params)


def probe_accuracies(params: LCIParams, cls: nn.Module, train: Any, test: Any, device: torch.device,
                     seed: int, multilabel: bool = False) -> dict[str, float]:
    """``{layer: probe test accuracy}`` for every layer in ``params.probe_layers``, cached (``probe_mode: cached``:
    :func:`thesislib.eval.layer_probes`, ``probe_views`` fixed random views per training image when > 1: Table
    4.1's random crops); ``multilabel`` (targets (C,) 0/1 vectors, CelebA's attributes): ``{layer: mean over the
    attributes of the per-attribute average precision}`` in [0, 1] (the non-interpolated AP of
    :func:`thesislib.eval.probe.linear_probe`; Table 4.3). :func:`probe_scores` dispatches on ``probe_mode``."""
    out = layer_probes(cls.to(device), params.probe_layers, train, test, device, dims=params.probe_dims,
                       batch_size=params.probe_batch_size or params.eval_batch_size, epochs=params.probe_epochs,
                       weight_decay=params.probe_weight_decay, seed=seed, train_views=params.probe_views,
                       multilabel=multilabel)
    key = "test_ap" if multilabel else "test_acc"
    return {layer: float(r[key]) for layer, r in out.items()}


def probe_scores(params: LCIParams, cls: nn.Module, data: ChapterData, device: torch.device, seed: int,
                 name: str = "ssl") -> tuple[dict[str, float], dict[str, float]]:
    """(``{layer: single-crop score}``, ``{layer: multi-crop score}``) of C's probes on ``data``'s probe sets
    (scores: top-1 accuracy, or the mean attribute AP with ``data.multilabel``, in [0, 1]; the multi-crop dict is
    empty unless ``probe_test_crops``). ``probe_mode: cached``: :func:`probe_accuracies`. ``streaming``:
    :func:`thesislib.eval.streaming_probe.streaming_probe` over every layer at once: ``probe_epochs`` epochs of
    ``probe_batch_size`` (0: ``eval_batch_size``) with a fresh crop per epoch (the training set's transform),
    weight decay ``probe_weight_decay``, schedule ``probe_schedule``; test on ``data.probe_crop`` centre crops (and
    the ten crops); with ``checkpoint_dir`` the heads are checkpointed under
    ``<checkpoint_dir>/probe-<data>-<name>-s<seed>`` (``data``: the probes' data set) and resume."""
    if not params.streaming_probe:
        return probe_accuracies(params, cls, data.probe_train, data.probe_test, device, seed,
                                multilabel=data.multilabel), {}
    probe_set = probe_data_set(params.data, params.probe_data)
    config = chapter_probe_config(
        params, seed, multilabel=data.multilabel, crop=data.probe_crop, test_crops=params.probe_test_crops,
        checkpoint_dir=probe_checkpoint_dir(params.checkpoint_dir, probe_set, name, seed))
    out = streaming_probe(cls.to(device), params.probe_layers, data.probe_train, data.probe_test, device, config,
                          num_classes=data.probe_classes)["layers"]
    key = "test_ap" if data.multilabel else "test_acc"
    multi = {layer: float(r[f"{key}_10crop"]) for layer, r in out.items() if f"{key}_10crop" in r}
    return {layer: float(r[key]) for layer, r in out.items()}, multi


@torch.no_grad()
def heldout_batch(params: LCIParams, inpainter: nn.Module | None, images: Tensor, seed: int,
                  augment: bool = True) -> tuple[Tensor, Tensor]:
    """All K transformations of ``images`` (N, C, L, L) as C's input: (K·N, C, S, S), labels (K·N,). Draws from a
    generator seeded with ``seed`` (on the images' device); F in eval mode; ``augment`` False: no small rotation
    and the central crop."""
    gen = torch.Generator(device=images.device).manual_seed(seed)
    draws = draw(params, images, gen)
    if not augment:
        centre = (images.shape[-1] - params.image_size) // 2
        draws = type(draws)(draws.lci_corners, draws.noise, draws.ae_corners, draws.warped,
                            torch.zeros_like(draws.angles), torch.full_like(draws.crops, centre))
    r = a = None
    if params.uses_inpainter and inpainter is not None:
        was = inpainter.training
        inpainter.eval()
        _, e_hat, _, e_ae = inpainter_inputs(params, images, draws)
        out = inpainter(torch.cat([e_hat, e_ae]))
        r, a = out[: images.shape[0]], out[images.shape[0]:]
        inpainter.train(was)
    return assemble(params, images, draws, r, a)


def transformation_accuracy(params: LCIParams, cls: nn.Module, inpainter: nn.Module | None, images: Tensor,
                            device: torch.device, seed: int) -> dict[str, float]:
    """C's accuracy per class on the held-out transformations of ``images`` (and ``"all"``)."""
    inputs, labels = heldout_batch(params, inpainter, images.to(device), seed)

    def fn(model: nn.Module, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        return {"hit": (model(x).argmax(1) == y).float(), "y": y}

    res = evaluate(cls.to(device), TensorDataset(inputs, labels), fn, device, batch_size=params.eval_batch_size,
                   shard=False)
    out = {name: float(res["hit"][res["y"] == k].mean()) for k, name in enumerate(class_names(params.transforms))}
    out["all"] = float(res["hit"].mean())
    return out


def diagnostic_task(params: LCIParams, name: str, images: Tensor, inpainter: nn.Module | None,
                    seed: int) -> TensorDataset:
    """Identity vs ``name`` (``warp`` or ``lci``) on ``images`` (N, C, L, L): each image appears once, a random
    half transformed (label 1), the rest identity (label 0), built as C's batch is (:func:`heldout_batch` with
    ``augment``): the thesis's shortcut guards stay on, i.e. random ``image_size`` crops and the small rotation
    on ``augment_fraction`` of each class, and for ``lci`` (with ``autoencode``) F's autoencoded patch in
    ``replace_fraction`` of the identity images (review #2)."""
    if name not in ("warp", "lci"):
        raise ValueError(f"diagnostic_task: name must be 'warp' or 'lci', got {name!r}")
    task = replace(params, transforms=(name,))
    inputs, labels = heldout_batch(task, inpainter, images, seed)
    n = images.shape[0]
    gen = torch.Generator().manual_seed(seed)
    pick = (torch.rand(n, generator=gen) < 0.5).long().to(images.device)  # 1: transformed
    chosen = torch.where(pick.view(-1, 1, 1, 1).bool(), inputs[n:], inputs[:n])
    return TensorDataset(chosen.cpu(), pick.cpu())


def rotation_task(images: Tensor, size: int, seed: int) -> TensorDataset:
    """Four-way rotation prediction on ``images`` (N, C, H, H): each image once, rotated by a random k x 90°,
    centre-cropped to ``size``; labels k."""
    gen = torch.Generator().manual_seed(seed)
    k = torch.randint(0, 4, (images.shape[0],), generator=gen)
    rotated = images.clone()
    for kk in range(1, 4):  # one rot90 per angle, not per image
        rotated[k == kk] = rotate(images[k == kk], kk)
    return TensorDataset(center_crop(rotated, size), k)


def train_diagnostic(params: LCIParams, kind: str, train: TensorDataset, test: TensorDataset, classes: int,
                     device: torch.device, seed: int) -> float:
    """Train a ``kind`` (``local`` or ``global``) network on ``train`` and return its accuracy on ``test``."""
    seed_everything(seed)
    in_channels = train.tensors[0].shape[1]
    if kind not in ("local", "global"):
        raise ValueError(f"train_diagnostic: kind must be 'local' or 'global', got {kind!r}")
    net = (LocalNet(in_channels, params.diag_width, classes, params.local_rf) if kind == "local"
           else GlobalNet(in_channels, params.diag_width, classes))
    opt = torch.optim.Adam(net.parameters(), lr=DIAG_LR)

    def step(model: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        x, y = batch
        return F.cross_entropy(model(x), y), {}

    config = train_config(params, batch_size=DIAG_BATCH, iterations=params.diag_iterations, progress="none",
                          log_every=params.diag_iterations, channels_last=False, amp=False)
    fit(net, opt, train, step, config, device)

    def hits(model: nn.Module, batch: Any) -> dict[str, Tensor]:
        x, y = batch
        return {"hit": (model(x).argmax(1) == y).float()}

    return float(evaluate(net, test, hits, device, batch_size=params.eval_batch_size, shard=False)["hit"].mean())


def transfer_backbone(classifier: nn.Module) -> ConvFeatures:
    """A copy of C's conv1-5 as a backbone: images (B, 3, H, W) -> conv5 map (B, C5, H5, W5). C itself is
    untouched. The copy keeps C's fc layers and classifier (:class:`thesislib.eval.ConvFeatures` runs up to conv5
    only): they get no gradient, and the rescaling leaves them alone; C's BN layers are folded into the conv
    weights before Krähenbühl et al.'s rescaling (thesis §4.4, Table 4.4; :mod:`thesislib.nn.rescaling`). The
    transfer fine-tunes run in one process; a DDP fine-tune would need ``ddp_find_unused_parameters``."""
    return ConvFeatures(copy.deepcopy(classifier).cpu(), "conv5")


def transfer_results(params: LCIParams, classifier: nn.Module, device: torch.device, seed: int) -> dict[str, float]:
    """Table 4.4: every VOC task in ``params.transfer`` on copies of C's conv1-5 with new fc6 / fc7 (``fc_dim``
    wide) and task heads: ``{"voc07_cls_map": %, "voc07_det_map": %, "voc12_seg_miou": %}`` (requested keys)."""
    return run_voc_transfer(params, params.transfer, lambda: transfer_backbone(classifier), params.fc_dim, device,
                            seed)


__all__ += ["finetune_network", "stl10_finetune"]

STL10_CLASSES = 10


def finetune_network(classifier: nn.Module, num_classes: int = STL10_CLASSES) -> nn.Module:
    """A copy of the whole C (on the CPU; C untouched) whose (1 + #transforms)-way output layer is replaced by a
    new ``num_classes``-way linear layer (PyTorch's default init) on C's penultimate features: images
    (B, C, S, S) -> logits (B, num_classes). AlexNet's output layer is ``head`` (after fc6 / fc7), the ResNet's
    ``fc`` (after the global average pooling)."""
    net = copy.deepcopy(classifier).cpu()
    slot = "head" if isinstance(getattr(net, "head", None), nn.Linear) else "fc"
    old = getattr(net, slot, None)
    if not isinstance(old, nn.Linear):
        raise TypeError(f"finetune_network: {type(classifier).__name__} has no linear output layer 'head' or 'fc'")
    setattr(net, slot, nn.Linear(old.in_features, num_classes))
    return net


def stl10_finetune(params: LCIParams, classifier: nn.Module, device: torch.device, seed: int) -> dict[str, float]:
    """Table 4.7: ``{"stl10_acc": %}``, the whole C (new 10-way head, :func:`finetune_network`) fine-tuned for
    ``finetune_epochs`` epochs on STL-10's labelled train images (random ``image_size`` crops of the ``load_size``
    images and flips; Adam ``finetune_lr``, cosine-decayed, cross-entropy; no Krähenbühl rescaling), then top-1 on
    the test images from the softmax averaged over ``finetune_test_crops`` fixed random crops per image."""
    train, test = stl10_finetune_data(params)
    iterations = max(1, -(-params.finetune_epochs * len(train) // params.finetune_batch_size))
    config = TransferConfig(iterations=iterations, batch_size=params.finetune_batch_size, lr=params.finetune_lr,
                            weight_decay=params.finetune_weight_decay, crop=params.image_size,
                            n_test_crops=params.finetune_test_crops, seed=seed, rescale=False,
                            num_workers=params.num_workers)
    out = finetune_classifier(finetune_network(classifier), train, test, device, config, run=params,
                              test_crops=params.finetune_test_crops)
    return {"stl10_acc": 100.0 * out["acc"]}


__all__ += ["labelled_images", "supervised_classifier", "tiles_probe_accuracy", "tiles_task"]


def labelled_images(dataset: Any, n: int) -> Tensor:
    """The images of the first ``n`` items ``(image (C, S, S), target)`` of ``dataset``, stacked (n', C, S, S)
    (n' = min(n, len(dataset)))."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[0][:n]
    return torch.stack([dataset[i][0] for i in range(min(n, len(dataset)))])


@torch.no_grad()
def tiles_task(params: LCIParams, inpainter: nn.Module | None, images: Tensor, seed: int
               ) -> tuple[TensorDataset, TensorDataset]:
    """Fig. 4.1's binary task on held-out ``images`` (N, C, S, S): every image natural (label 0) and tile-shuffled
    with its tile borders inpainted by ``inpainter`` (label 1; the band inpainter F_b, or the chapter's F;
    :func:`thesislib.methods.lci.tiles.tile_shuffle_inpaint` with ``tiles_grid``, ``tiles_band``, ``noise_std``,
    the inpainter in eval mode), in chunks of ``eval_batch_size`` from one generator seeded with ``seed`` on the
    images' device; ``inpainter`` None: the tiles shuffled only (the same permutations, no band inpainted). The
    first N // 2 images (both versions) train the probe, the other N − N // 2 test it: ((2·N//2, C, S, S) images,
    labels), ((2·(N − N//2), C, S, S), labels), on the CPU."""
    n = images.shape[0]
    if n < 4:
        raise ValueError(f"tiles_task: {n} images; the probe needs at least 2 to train and 2 to test")
    gen = torch.Generator(device=images.device).manual_seed(seed)
    was = inpainter.training if inpainter is not None else False
    if inpainter is not None:
        inpainter.eval()
    try:
        shuffled = torch.cat([tile_shuffle_inpaint(chunk, inpainter, params.tiles_grid, params.tiles_band,
                                                   params.noise_std, gen)[0]
                              for chunk in images.split(params.eval_batch_size)])
    finally:
        if inpainter is not None:
            inpainter.train(was)
    half = n // 2

    def pairs(a: int, b: int) -> TensorDataset:
        x = torch.cat([images[a:b], shuffled[a:b]]).cpu()
        y = torch.cat([torch.zeros(b - a, dtype=torch.long), torch.ones(b - a, dtype=torch.long)])
        return TensorDataset(x, y)

    return pairs(0, half), pairs(half, n)


def tiles_probe_accuracy(params: LCIParams, net: nn.Module, train: TensorDataset, test: TensorDataset,
                         device: torch.device, seed: int) -> float:
    """Held-out accuracy in [0, 1] of the linear probe (:func:`probe_accuracies`: pooled to ~``probe_dims``,
    standardised, ``probe_epochs``, ``probe_weight_decay``) on ``net``'s frozen last conv stage (conv5; layer4 for
    ``classifier: resnet34``), natural (0) vs transformed (1): Fig. 4.1's number."""
    layer = "layer4" if params.classifier == "resnet34" else "conv5"
    return probe_accuracies(replace(params, probe_layers=(layer,), probe_views=1), net, train, test, device,
                            seed)[layer]


def supervised_classifier(params: LCIParams, train: Any, test: Any, num_classes: int, device: torch.device,
                          seed: int) -> tuple[nn.Module, float]:
    """Fig. 4.1's "ImageNet labels" network at this scale: C's architecture (:func:`build_classifier`, seeded by
    ``seed``) with a ``num_classes``-way head (:func:`finetune_network`), trained from scratch on ``train``'s
    labels ``(image (C, L, L), class)`` for ``tiles_supervised_epochs`` epochs of random ``image_size`` crops and
    flips (Adam ``tiles_supervised_lr``, cosine-decayed, weight decay ``tiles_supervised_weight_decay``, batch
    ``tiles_supervised_batch_size``) through :func:`thesislib.eval.finetune_classifier` (the engine's ``fit``; no
    rescaling). Returns (the network, its top-1 on ``test``'s ``image_size`` images in [0, 1])."""
    seed_everything(seed)
    net = finetune_network(build_classifier(params), num_classes)
    iterations = max(1, -(-params.tiles_supervised_epochs * len(train) // params.tiles_supervised_batch_size))
    config = TransferConfig(iterations=iterations, batch_size=params.tiles_supervised_batch_size,
                            lr=params.tiles_supervised_lr, weight_decay=params.tiles_supervised_weight_decay,
                            crop=params.image_size, n_test_crops=1, seed=seed, rescale=False,
                            num_workers=params.num_workers)
    out = finetune_classifier(net, train, test, device, config, run=params)
    return net, float(out["acc"])

"""Evaluation of a trained replicate: per-layer linear probes of C against a random C, and how well C
spots held-out corruptions.

* :func:`probe_layers`: :func:`thesislib.eval.layer_probes` on the frozen conv layers of a
  discriminator (features average-pooled to ~``probe_dims``, standardised, softmax regression with
  weight decay; the Zhang et al. protocol of Tables 3.4-3.5 at smoke scale).
* :func:`probe_scores`: the same per ``probe_mode`` (``streaming``: :func:`thesislib.eval.streaming_probe.
  streaming_probe`, all layers from one trunk pass per batch, all of ImageNet train: Table 3.4's protocol).
* :func:`random_discriminator`: the same architecture, randomly initialised (the "Random" rows).
* :func:`spotting_accuracy`: on held-out images with fresh masks (no history), C's real/corrupt
  accuracy on the repaired corruptions and on the same damage decoded without repair, and its mask
  head on the repaired corruptions (accuracy, and the prior-free rank AUC), through
  :func:`thesislib.engine.evaluate`. Both diagnose the adversarial game: C near 100 % on un-repaired
  damage but at chance on repaired damage means C learned the damage and R learned to hide it.
* Transfer of C's conv layers (``params.transfer``; full scale, Tables 3.2-3.3), each on a copy of C's
  conv1-5 (BN after conv5 folded into conv5, the fc and mask heads dropped): the VOC07 classification / detection
  and VOC12 segmentation tasks of the shared :mod:`thesislib.eval.voc_transfer` (Table 3.3), :func:`stl10_folds`
  (Table 3.2 through :func:`thesislib.eval.fold_protocol`), :func:`stl10_frozen` (Table 3.1: conv1-5 kept fixed,
  new fc layers trained on the labelled train split); :func:`transfer_results` runs the requested ones.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset, TensorDataset

from thesislib.data.crops import CenterResize, RandomResizeCropFlip
from thesislib.data.roots import dataset_dir
from thesislib.data.stl10 import STL10, stl10_fold_indices
from thesislib.engine import evaluate
from thesislib.eval.auc import binary_auc
from thesislib.eval.folds import fold_protocol
from thesislib.eval.probe import layer_probes
from thesislib.eval.streaming_probe import (
    chapter_probe_config,
    probe_checkpoint_dir,
    probe_data_set,
    streaming_probe,
)
from thesislib.eval.transfer import ConvFeatures, TransferConfig, TransferNet, finetune_classifier
from thesislib.eval.voc_transfer import VOC_TASKS, check_voc_data, run_voc_transfer
from thesislib.methods.spotting_artifacts.config import SpottingArtifactsParams
from thesislib.methods.spotting_artifacts.data import ChapterData
from thesislib.methods.spotting_artifacts.model import DamageRepair, Discriminator, drop_mask
from thesislib.methods.spotting_artifacts.train import build_discriminator
from thesislib.repro import seed_everything

__all__ = ["check_transfer_data", "probe_layers", "probe_scores", "random_discriminator", "spotting_accuracy",
           "stl10_folds", "stl10_frozen", "transfer_backbone", "transfer_results"]


def random_discriminator(params: SpottingArtifactsParams, seed: int) -> Discriminator:
    """A randomly initialised C (PyTorch's default init, seeded by ``seed``)."""
    seed_everything(seed)
    return build_discriminator(params)


def probe_layers(params: SpottingArtifactsParams, disc: Discriminator, train: Dataset, test: Dataset,
                 device: torch.device, seed: int) -> dict[str, float]:
    """``{layer: probe test accuracy}`` for every layer in ``params.probe_layers``."""
    out = layer_probes(disc.to(device), params.probe_layers, train, test, device, dims=params.probe_dims,
                       batch_size=params.probe_batch_size or params.eval_batch_size, epochs=params.probe_epochs,
                       weight_decay=params.probe_weight_decay, seed=seed)
    return {layer: float(r["test_acc"]) for layer, r in out.items()}


def probe_scores(params: SpottingArtifactsParams, disc: Discriminator, data: ChapterData, device: torch.device,
                 seed: int, name: str = "ssl") -> dict[str, float]:
    """``{layer: probe test accuracy}`` on ``data``'s probe sets: ``probe_mode: cached``, :func:`probe_layers`;
    ``streaming`` (Table 3.4 on all of ImageNet train, Table 3.5 on all of Places205 train with ``probe_data:
    places205``), :func:`thesislib.eval.streaming_probe.streaming_probe` over every layer at once (``probe_epochs``
    epochs, a fresh crop per epoch, ``probe_schedule``, single centre crop of side ``data.probe_crop``; heads
    checkpointed under ``<checkpoint_dir>/probe-<probe data set>-<name>-s<seed>`` when set:
    :func:`thesislib.eval.streaming_probe.probe_checkpoint_dir`)."""
    if params.probe_mode != "streaming":
        return probe_layers(params, disc, data.probe_train, data.probe_test, device, seed)
    probe_set = probe_data_set(params.data, params.probe_data)
    config = chapter_probe_config(params, seed, crop=data.probe_crop,
                                  checkpoint_dir=probe_checkpoint_dir(params.checkpoint_dir, probe_set, name, seed))
    out = streaming_probe(disc.to(device), params.probe_layers, data.probe_train, data.probe_test, device, config,
                          num_classes=data.probe_classes)["layers"]
    return {layer: float(r["test_acc"]) for layer, r in out.items()}


class _Pair(nn.Module):
    """The generator and the discriminator as one module (for :func:`thesislib.engine.evaluate`)."""

    def __init__(self, gen: DamageRepair, disc: Discriminator) -> None:
        super().__init__()
        self.gen, self.disc = gen, disc


def spotting_accuracy(params: SpottingArtifactsParams, gen: DamageRepair, disc: Discriminator, images: Tensor,
                      device: torch.device, seed: int) -> dict[str, float]:
    """C on held-out ``images`` (N, C, S, S): ``acc`` over real (D(E(x)) or x) and repaired corrupted
    copies, ``acc_real``, ``acc_fake``; ``acc_unrepaired``: the same over real and the same damage decoded
    without repair (D(φ̂)); ``mask_acc`` of the mask head on the repaired corruptions (0.5 threshold) and
    ``mask_auc``, its rank AUC for "kept" over all their latent positions (0.5: no localisation,
    whatever θ; :func:`thesislib.eval.binary_auc`).
    The masks are drawn from a generator seeded with ``seed`` per item index, so the result does not
    depend on the batch size."""
    gen, disc = gen.to(device), disc.to(device)
    grid = (params.grid, params.grid)
    masks = torch.stack([drop_mask(1, grid, params.drop_rate, "cpu",
                                   torch.Generator().manual_seed(seed * 100_003 + i))[0]
                         for i in range(images.shape[0])])

    def fn(model: nn.Module, batch: Any) -> dict[str, Tensor]:
        idx, x = batch
        omega = masks[idx.cpu()].to(x.device)
        real = model.gen.autoencode(x) if params.real_source == "autoencoded" else x
        fake = model.gen(x, omega)
        plain = model.gen.damaged(x, omega)
        logits, mask_logits = model.disc(torch.cat([real, fake, plain]))
        b = x.shape[0]
        out = {"real": (logits[:b] > 0).float(), "fake": (logits[b:2 * b] < 0).float(),
               "plain": (logits[2 * b:] < 0).float()}
        if mask_logits is not None:
            hit = ((mask_logits[b:2 * b] > 0).float() == omega[:, 0]).float()
            out["mask"] = hit.flatten(1).mean(dim=1)
            out["mask_logit"] = mask_logits[b:2 * b].flatten(1)
        return out

    indexed = TensorDataset(torch.arange(images.shape[0]), images)  # items (index, image)
    res = evaluate(_Pair(gen, disc), indexed, fn, device, batch_size=params.eval_batch_size, shard=False)
    acc_real, acc_fake = float(res["real"].mean()), float(res["fake"].mean())
    out = {"acc": (acc_real + acc_fake) / 2, "acc_real": acc_real, "acc_fake": acc_fake,
           "acc_unrepaired": (acc_real + float(res["plain"].mean())) / 2}
    if "mask" in res:
        out["mask_acc"] = float(res["mask"].mean())
        kept = masks[:, 0].flatten(1).to(res["mask_logit"].device)
        out["mask_auc"] = float(binary_auc(res["mask_logit"], kept)) if 0 < float(kept.mean()) < 1 else 0.5
    return out


# --- Transfer of C's conv layers (full scale) ---

def transfer_backbone(disc: Discriminator) -> ConvFeatures:
    """A copy of C's conv1-5 (the ch. 3 AlexNet trunk) as a backbone: images -> conv5 map. C itself is untouched;
    the BN after conv5 is folded into conv5 by the transfer protocols' rescaling (ch. 3 "removes it in transfer";
    folding removes it without changing the function). With ``stl10_frozen`` (Table 3.1) the BN stays, in eval mode
    (its running statistics): the same affine map, not folded."""
    return ConvFeatures(copy.deepcopy(disc.trunk).cpu(), "conv5")


def check_transfer_data(params: SpottingArtifactsParams) -> None:
    """Open every data set ``params.transfer`` will read (VOC2007 cls / det, VOC2012 + SBD seg through
    :func:`thesislib.eval.voc_transfer.check_voc_data`, STL-10's ``fold_indices.txt``) so that a missing or corrupt
    one raises before the pre-training, not after it. Raises the data loaders' errors (naming
    ``$THESISLIB_DATA/<subdir>`` and the expected layout)."""
    check_voc_data(params, [t for t in params.transfer if t in VOC_TASKS])
    if "stl10_folds" in params.transfer:
        stl10_fold_indices(dataset_dir("stl10", data_root=params.data_root))
    if "stl10_frozen" in params.transfer:
        STL10(("train", "test"), root=dataset_dir("stl10", data_root=params.data_root))  # checks both splits' files


def stl10_finetune_net(params: SpottingArtifactsParams, disc: Discriminator) -> TransferNet:
    """Table 3.2's fine-tuned network: C's conv1-5 (a copy) + the standard AlexNet fc6 / fc7 (``disc_hidden`` wide,
    4096 in the full config) and a 10-way classifier, all fc layers new, **without pool5** (thesis ch. 3: "the
    standard AlexNet architecture ... except that we drop the pool5 layer to handle the smaller image size"; at
    96 px conv5 is 256 x 6 x 6 = 9216, standard fc6's input). Images (B, 3, S, S) -> logits (B, 10)."""
    return TransferNet(transfer_backbone(disc), 10, params.image_size,
                       fc_dims=(params.disc_hidden, params.disc_hidden), pool5=False)


def stl10_folds(params: SpottingArtifactsParams, disc: Discriminator, device: torch.device,
                seed: int) -> dict[str, dict[str, Any]]:
    """Table 3.2: the ten predefined 1,000-image folds of STL-10's labelled train split, each trained in turn and
    tested on the 8,000 test images; mean ± SD over the folds (:func:`thesislib.eval.fold_protocol`).

    * ``frozen``: a linear classifier on C's frozen conv5 (the full 256 x 6 x 6 map at 96 px, standardised,
      softmax regression for ``fold_epochs`` epochs: :func:`thesislib.eval.layer_probes`);
    * ``finetuned``: conv1-5 fine-tuned with new fc6 / fc7 / classifier and no pool5 (:func:`stl10_finetune_net`,
      Krähenbühl rescaling when ``transfer_rescale``) for ``fold_epochs`` epochs of Adam with the training
      augmentation of the self-supervised stage (random resize to [S, 1.15 S], random S crop, flip).

    Returns ``{variant: fold_protocol result (accuracies in %)}``."""
    root = dataset_dir("stl10", data_root=params.data_root)
    size = params.image_size
    folds = stl10_fold_indices(root)
    if params.fold_limit:
        folds = folds[: params.fold_limit]
    plain = STL10("train", root=root, transform=CenterResize(size))
    augmented = STL10("train", root=root, transform=RandomResizeCropFlip(size))
    test = STL10("test", root=root, transform=CenterResize(size))
    out: dict[str, dict[str, Any]] = {}
    for variant in params.fold_variants:
        def run_fold(i: int, idx: np.ndarray, variant: str = variant) -> float:
            if variant == "frozen":
                probe = layer_probes(disc.to(device), ["conv5"], Subset(plain, idx.tolist()), test, device,
                                     dims=params.probe_dims, batch_size=params.eval_batch_size,
                                     epochs=params.fold_epochs, weight_decay=params.probe_weight_decay,
                                     seed=seed + i, num_classes=10)
                return 100.0 * float(probe["conv5"]["test_acc"])
            return _stl10_supervised(params, disc, Subset(augmented, idx.tolist()), test, device, seed + i)

        out[variant] = fold_protocol(folds, run_fold)
    return out


def _stl10_supervised(params: SpottingArtifactsParams, disc: Discriminator, train: Dataset, test: Dataset,
                      device: torch.device, seed: int, frozen: bool = False) -> float:
    """Test accuracy (%) of :func:`stl10_finetune_net` on a copy of C trained on ``train`` for ``fold_epochs``
    epochs (Adam ``fold_lr``, cosine-decayed, batch ``fold_batch_size``; Krähenbühl rescaling when
    ``transfer_rescale``) through :func:`thesislib.eval.transfer.finetune_classifier`; ``frozen``: conv1-5 kept
    fixed, only fc6 / fc7 / the classifier train (``TransferConfig.freeze_backbone``)."""
    net = stl10_finetune_net(params, disc)
    steps = max(1, params.fold_epochs * len(train) // params.fold_batch_size)  # type: ignore[arg-type]
    cfg = TransferConfig(iterations=steps, batch_size=params.fold_batch_size, lr=params.fold_lr,
                         crop=params.image_size, weight_decay=params.weight_decay, seed=seed,
                         rescale=params.transfer_rescale, num_workers=params.transfer_workers, freeze_backbone=frozen)
    return 100.0 * finetune_classifier(net, train, test, device, cfg, run=params)["acc"]


def stl10_frozen(params: SpottingArtifactsParams, disc: Discriminator, device: torch.device, seed: int) -> float:
    """Table 3.1's transfer protocol (ch. 3: after the self-supervised training, "supervised transfer" for 200
    epochs on STL-10's labelled train split; caption: the conv layers "were pre-trained on the proposed
    self-supervised task and kept fixed during transfer"): :func:`stl10_finetune_net` (conv1-5 of C, a copy, no
    pool5, new fc6 / fc7 ``disc_hidden`` wide and a 10-way classifier, randomly initialised) with conv1-5 frozen,
    the new layers trained for ``fold_epochs`` epochs on all 5,000 labelled train images (the self-supervised
    stage's random-resize-crop-flip augmentation; optimiser, lr, weight decay (the self-supervised stage's
    ``weight_decay``) and augmentation are decisions, the thesis gives none), tested on the 8,000 test images
    (resized to ``image_size``). Returns the test accuracy in %."""
    root = dataset_dir("stl10", data_root=params.data_root)
    train = STL10("train", root=root, transform=RandomResizeCropFlip(params.image_size))
    test = STL10("test", root=root, transform=CenterResize(params.image_size))
    return _stl10_supervised(params, disc, train, test, device, seed, frozen=True)


def transfer_results(params: SpottingArtifactsParams, disc: Discriminator, device: torch.device,
                     seed: int) -> dict[str, Any]:
    """Every evaluation in ``params.transfer``: ``{"voc07_cls_map": %, "voc07_det_map": %, "voc12_seg_miou": %,
    "stl10_folds": {variant: fold_protocol result}, "stl10_frozen": %}`` (only the requested keys). The VOC tasks
    (Table 3.3) run through :func:`thesislib.eval.voc_transfer.run_voc_transfer` on copies of C's conv1-5 (fc6 /
    fc7 ``disc_hidden`` wide, 4096 in the full configs)."""
    out: dict[str, Any] = run_voc_transfer(params, params.transfer, lambda: transfer_backbone(disc),
                                           params.disc_hidden, device, seed)
    if "stl10_folds" in params.transfer:
        out["stl10_folds"] = stl10_folds(params, disc, device, seed)
    if "stl10_frozen" in params.transfer:
        out["stl10_frozen"] = stl10_frozen(params, disc, device, seed)
    return out

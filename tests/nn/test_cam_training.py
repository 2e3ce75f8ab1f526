"""The shared CAM classifier training (nn/cam_training.py)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from thesislib.nn import CAMTrainConfig, cam_smallnet, train_cam_classifier
from thesislib.nn.cam_training import cam_classifier_step


def _two_class_images(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: a bright left half; class 1: a bright right half (separable)."""
    g = torch.Generator().manual_seed(0)
    images = 0.1 * torch.rand(n, 3, 16, 16, generator=g)
    cls = torch.arange(n) % 2
    images[cls == 0, :, :, :8] += 1.0
    images[cls == 1, :, :, 8:] += 1.0
    return images, torch.nn.functional.one_hot(cls, 2).float()


@pytest.mark.parametrize("loss", ["bce", "ce"])
def test_shared_trainer_reduces_the_loss_on_a_separable_set(loss):
    images, labels = _two_class_images()
    targets = labels if loss == "bce" else labels.argmax(dim=1)
    torch.manual_seed(0)
    model = cam_smallnet(2, width=8)
    config = CAMTrainConfig(iterations=30, batch_size=16, loss=loss, lr=1e-2, log_every=10, amp=False,
                            progress="none")
    history = train_cam_classifier(model, TensorDataset(images, targets), config, torch.device("cpu"))
    losses = history.get("loss")
    assert len(losses) >= 3 and losses[-1] < 0.5 * losses[0]
    assert not model.training
    with torch.no_grad():
        assert (model(images).argmax(dim=1) == labels.argmax(dim=1)).float().mean() > 0.9


def test_step_metrics_and_config_checks():
    logits_model = torch.nn.Identity()
    batch = {"image": torch.tensor([[2.0, -1.0], [-3.0, 1.0]]), "labels": torch.tensor([[1.0, 0.0], [1.0, 1.0]])}
    loss, metrics = cam_classifier_step("bce")(logits_model, batch)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(batch["image"], batch["labels"])
    assert torch.allclose(loss, expected)
    assert metrics["acc"].item() == 1.0 and metrics["label_acc"].item() == 0.75
    assert CAMTrainConfig(iterations=7, batch_size=4).train_config(10).max_steps == 7  # epochs follow from steps
    assert CAMTrainConfig(epochs=2, batch_size=4).train_config(10).log_every == 3
    with pytest.raises(ValueError, match="loss"):
        CAMTrainConfig(loss="mse")  # type: ignore[arg-type]

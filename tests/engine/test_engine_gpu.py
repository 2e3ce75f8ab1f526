"""A few AMP (bf16) + channels_last steps on CUDA (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from thesislib.engine import TrainConfig, Trainer, evaluate


@pytest.mark.gpu
def test_amp_channels_last_steps_on_cuda() -> None:
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 4))
    data = TensorDataset(torch.randn(64, 3, 16, 16), torch.randint(0, 4, (64,)))
    seen = {}

    def step_fn(m, batch):
        x, y = batch
        seen["channels_last"] = x.is_contiguous(memory_format=torch.channels_last)
        logits = m(x)
        seen["dtype"] = logits.dtype
        return F.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean()}

    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), data, step_fn,
                      TrainConfig(epochs=2, batch_size=16, ema_decay=0.9, grad_clip=1.0, progress="none"), device)
    history = trainer.fit()
    assert seen == {"channels_last": True, "dtype": torch.bfloat16}
    assert model[0].weight.dtype == torch.float32
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert len(history.train) == 2 and all(torch.isfinite(torch.tensor(history.get("loss"))))
    out = evaluate(trainer.ema.module, data, lambda m, b: m(b[0]), device, batch_size=32)
    assert out.shape == (64, 4) and out.dtype == torch.float32 and out.device.type == "cpu"


@pytest.mark.gpu
def test_gan_update_on_cuda_with_amp_and_compile() -> None:
    """The multi-network update under bf16 autocast (and torch.compile): finite losses, fp32 weights,
    the discriminator untouched by the generator's phase."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from engine_gan import GAN_CONFIG, train_gan

    for compile_ in (False, True):
        trainer = train_gan(TrainConfig(**{**GAN_CONFIG, "compile": compile_}, ema_decay=0.9), torch.device("cuda"))
        for key in ("loss_disc", "loss_gen"):
            assert torch.isfinite(torch.tensor(trainer.history.get(key))).all()
        assert all(p.dtype == torch.float32 and p.device.type == "cuda" for p in trainer.models["gen"].parameters())
        assert trainer.step == 12

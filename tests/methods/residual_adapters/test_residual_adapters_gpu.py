"""On CUDA (skipped elsewhere): one target run of series adapters at the thesis's 64x64 ResNet-26 width,
through the engine's bf16 autocast and channels_last, leaves the source domain untouched."""

from __future__ import annotations

import pytest
import torch

from thesislib.methods.residual_adapters.config import adapters_config
from thesislib.methods.residual_adapters.data import Domain
from thesislib.methods.residual_adapters.model import build_network
from thesislib.methods.residual_adapters.train import train_target


@pytest.mark.gpu
def test_series_adapters_train_on_cuda_without_touching_the_source():
    device = torch.device("cuda")
    params = adapters_config(image_size=64, width=1.0, blocks=(4, 4, 4), target_steps=5, batch_size=32,
                             progress="none")
    source = build_network(params, 11, adapter="series").to(device)
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 3, 64, 64, generator=g),
                                          torch.randint(0, 5, (64,), generator=g))
    before = {k: v.clone() for k, v in source.state_dict().items()}
    run = train_target(params, "series", Domain("toy", data, data, 5), {"series": source, "plain": source}, device)
    after = run.net.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    assert run.net(torch.randn(2, 3, 64, 64, device=device), run.domain).shape == (2, 5)

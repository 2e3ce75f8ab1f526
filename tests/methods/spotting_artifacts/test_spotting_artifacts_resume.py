"""Exact resume of damage & repair: the drop masks' generator is checkpointed with the networks.

Under torchrun each rank draws its masks and history picks from its own ``torch.Generator``
(:func:`rank_generator`); a checkpoint that kept only the global RNGs would restart that stream on
resume and train on other masks than an uninterrupted run. One process uses the global RNG, so the
test gives the single process such a generator (as a rank would have) and kills the run mid-way."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import thesislib.methods.spotting_artifacts.train as train_mod
from thesislib.engine import Trainer
from thesislib.methods.spotting_artifacts.config import spotting_artifacts_config
from thesislib.methods.spotting_artifacts.data import chapter_data
from thesislib.methods.spotting_artifacts.model import drop_mask
from thesislib.methods.spotting_artifacts.train import build_autoencoder, train_damage_repair

CONFIG = dict(image_size=16, encoder_channels=(4, 8, 8), disc_width=0.0625, disc_hidden=8, iterations=12,
              batch_size=8, n_unlabelled=32, history_size=8, progress="none")  # 4 steps per epoch


class Killed(Exception):
    pass


def _run(monkeypatch: pytest.MonkeyPatch, params, images, ae_state, kill_at: int | None = None,
         keep_generator_state: bool = True) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    masks: list[torch.Tensor] = []
    def logged(*args, **kwargs):
        out = drop_mask(*args, **kwargs)
        masks.append(out.clone())
        return out

    def seeded(seed: int, device: torch.device) -> torch.Generator:
        return torch.Generator(device=device).manual_seed(1_000_003 * (seed + 1) + 7_919)  # "rank 1"

    class KillingTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            if not keep_generator_state:
                kwargs["generators"] = None
            if kill_at is not None:
                def on_step(trainer):
                    if trainer.step == kill_at:
                        raise Killed
                kwargs["on_step"] = on_step
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(train_mod, "drop_mask", logged)
    monkeypatch.setattr(train_mod, "rank_generator", seeded)
    monkeypatch.setattr(train_mod, "Trainer", KillingTrainer)
    ae = build_autoencoder(params)
    ae.load_state_dict(ae_state)
    gen, disc, _ = train_damage_repair(params, ae, images, torch.device("cpu"))
    weights = {f"disc.{k}": v.clone() for k, v in disc.state_dict().items()}
    weights.update({f"gen.{k}": v.clone() for k, v in gen.state_dict().items()})
    return masks, weights


def test_kill_and_resume_draws_the_same_masks_and_ends_with_the_same_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    base = spotting_artifacts_config(CONFIG)
    images = chapter_data(base, 0).unlabelled
    torch.manual_seed(0)
    ae_state = build_autoencoder(base).state_dict()
    ref_masks, ref_weights = _run(monkeypatch, base, images, ae_state)
    assert len(ref_masks) == 12

    ckpt = spotting_artifacts_config({**CONFIG, "checkpoint_dir": str(tmp_path / "a")})
    with pytest.raises(Killed):
        _run(monkeypatch, ckpt, images, ae_state, kill_at=6)  # the last checkpoint: step 4 (end of epoch 1)
    masks, weights = _run(monkeypatch, ckpt, images, ae_state)
    assert len(masks) == 8  # steps 5..12
    for a, b in zip(masks, ref_masks[4:], strict=True):
        assert torch.equal(a, b)
    for key, value in ref_weights.items():
        assert torch.equal(weights[key], value), key

    # control: a checkpoint without the generator's state resumes onto other masks (the test can fail)
    ctrl = spotting_artifacts_config({**CONFIG, "checkpoint_dir": str(tmp_path / "b")})
    with pytest.raises(Killed):
        _run(monkeypatch, ctrl, images, ae_state, kill_at=6, keep_generator_state=False)
    masks, _ = _run(monkeypatch, ctrl, images, ae_state, keep_generator_state=False)
    assert not all(torch.equal(a, b) for a, b in zip(masks, ref_masks[4:]))

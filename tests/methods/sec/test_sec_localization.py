"""SEC's localization networks and the cue computation."""

from __future__ import annotations

import pytest
import torch

from thesislib.methods.sec.cues import saliency_map
from thesislib.methods.sec.data import load_scenes
from thesislib.methods.sec.localization import CueConfig, compute_cues, sec_cam_vgg16
from thesislib.methods.sec.losses import NO_CUE
from thesislib.nn.cam import cam_smallnet
from thesislib.nn.cam_training import CAMTrainConfig, train_cam_classifier
from thesislib.nn.vgg import VGG16_CONVS


def test_released_localization_net_gives_41x41_cams_at_321():
    with torch.device("meta"):
        model = sec_cam_vgg16(20)
        logits, cams = model.forward_with_cams(torch.empty(2, 3, 321, 321))
    assert logits.shape == (2, 20) and cams.shape == (2, 20, 41, 41)
    names = [n for n, _ in model.trunk.named_children()]
    assert "pool3" in names and "pool4" not in names and "pool5" not in names
    assert isinstance(model.trunk.fc7_CAM, torch.nn.Conv2d)
    assert names[names.index("fc7_CAM") + 1] == "drop7"          # no ReLU after fc7_CAM
    assert model.fc.bias is None                                  # bias-free "scores" layer


def test_cams_are_the_pooled_logits():
    torch.manual_seed(0)
    model = sec_cam_vgg16(3, dropout=0.0).eval()
    x = torch.randn(1, 3, 33, 33)
    logits, cams = model.forward_with_cams(x)
    assert torch.allclose(cams.mean(dim=(2, 3)), logits, atol=1e-5)  # GAP of the CAM = the score


def test_vgg_weights_fill_the_convolutions(tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {}
    for _, index, c_in, c_out in VGG16_CONVS:
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g)
        state[f"features.{index}.bias"] = torch.randn(c_out, generator=g)
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    model = sec_cam_vgg16(20, weights_path=path)
    assert torch.equal(model.trunk.conv4_1.weight, state["features.17.weight"])
    assert torch.equal(model.trunk.conv5_3.bias, state["features.28.bias"])
    from thesislib.nn import WeightsNotFoundError
    with pytest.raises(WeightsNotFoundError):
        sec_cam_vgg16(20, weights_path=tmp_path / "missing.pth")


def test_localizer_training_and_cues_on_scenes():
    data = load_scenes(64, 4, seed=0)
    torch.manual_seed(0)
    model = cam_smallnet(4)
    history = train_cam_classifier(model, data.train, CAMTrainConfig(iterations=40, batch_size=32, lr=1e-2),
                                   torch.device("cpu"))
    assert history.train[-1]["loss"] < history.train[0]["loss"]
    seen = []
    cues = compute_cues(model, data.train, (16, 16), CueConfig(tau=0.5), torch.device("cpu"), batch_size=20,
                        on_batch=lambda start, parts: seen.append((start, parts["cams"].shape, parts["bg"].shape)))
    assert cues.cues.shape == (64, 16, 16) and cues.conflicts.shape == (64,)
    assert [s[0] for s in seen] == [0, 20, 40, 60] and seen[0][1] == (20, 4, 16, 16)
    bg_share = (cues.cues == 0).flatten(1).float().mean(1)
    assert (bg_share <= 0.1 + 1e-6).all() and bg_share.mean() > 0.05     # the least salient 10%, minus conflicts
    labels = data.scenes_train.labels
    fg = cues.cues.long()
    for i in range(64):  # foreground cues only for present classes
        classes = set((fg[i][(fg[i] > 0) & (fg[i] != NO_CUE)] - 1).tolist())
        assert classes <= set(torch.nonzero(labels[i]).flatten().tolist())


def test_saliency_layer_by_name_on_the_vgg_net():
    torch.manual_seed(0)
    model = sec_cam_vgg16(2, dropout=0.0)
    x = torch.randn(1, 3, 33, 33)
    sal = saliency_map(model, x, layer="trunk.conv4_1", median=True)
    assert sal.shape == (1, 5, 5) and (sal >= 0).all()

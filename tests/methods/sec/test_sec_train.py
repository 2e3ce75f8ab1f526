"""SEC's configuration, training, prediction and evaluation entry points (CPU, seconds)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from thesislib.config import ConfigError, to_dict
from thesislib.crf import DenseCRFParams
from thesislib.data import DatasetNotFoundError, write_sbd_fixture, write_voc_fixture
from thesislib.methods.sec.config import sec_config
from thesislib.methods.sec.cue_file import write_cue_file, write_input_list
from thesislib.methods.sec.data import check_inputs, load_data
from thesislib.methods.sec.evaluate import evaluate, evaluate_config, flat_metrics, predict, predict_probs
from thesislib.methods.sec.losses import NO_CUE
from thesislib.methods.sec.model import build_network
from thesislib.methods.sec.train import get_cues, main, run, train_localizer_for, train_sec

DEVICE = torch.device("cpu")


def test_config_rejects_unknown_keys_and_derives_the_thesis_values():
    with pytest.raises(ConfigError, match="'nosuch'.*valid names"):
        sec_config(nosuch=1)
    full = sec_config(data="voc", network="deeplab_largefov", image_size=321)
    assert full.mask_side == 41 and full.train_crf_scale() == 12.0
    d_plus, d_minus, d_bg = full.decays()
    assert (round(d_plus, 3), d_minus, round(d_bg, 3)) == (0.996, 0.0, 0.999)
    assert full.loss_config().crf.theta_alpha_px == pytest.approx(80 / 12)
    assert full.test_crf_params() == DenseCRFParams.sec_test()
    smoke = sec_config()
    assert smoke.mask_side == 16 and smoke.train_crf_scale() == 2.0
    assert sec_config(d_plus=0.5).decays()[0] == 0.5
    with pytest.raises(ConfigError):
        sec_config(seed_loss=False, expand_loss=False, constrain_loss=False)
    with pytest.raises(ConfigError, match="cue_path"):
        sec_config(cue_source="file")


@pytest.fixture(scope="module")
def tiny_scenes():
    config = sec_config(n_train=24, n_test=8, iterations=3, batch_size=8, localizer_iterations=3,
                        localizer_batch_size=8, optimizer="adam", lr=1e-2, crf_method="hybrid", eval_batch_size=4)
    data = load_data(config)
    cues = get_cues(config, data, DEVICE)
    return config, data, cues


def test_cues_and_training_on_scenes(tiny_scenes):
    config, data, cues = tiny_scenes
    assert cues.cues.shape == (24, 16, 16) and cues.cues.dtype == torch.uint8
    values = set(cues.cues.unique().tolist())
    assert values <= {0, 1, 2, 3, 4, NO_CUE} and 0 in values
    fg = cues.cues.long()
    present = data.scenes_train.labels.bool()
    for i in range(24):  # a foreground cue only ever names a present class
        classes = set((fg[i][(fg[i] > 0) & (fg[i] != NO_CUE)] - 1).tolist())
        assert classes <= set(torch.nonzero(present[i]).flatten().tolist())
    model, history = train_sec(config, cues, DEVICE, data)
    record = history.last()
    assert record["step"] == 3 and {"seed", "expand", "constrain"} <= set(record)
    assert np.isclose(record["loss"], record["seed"] + record["expand"] + record["constrain"], rtol=1e-5)
    no_constrain = sec_config(**{**config.__dict__, "constrain_loss": False})
    _, h2 = train_sec(no_constrain, cues, DEVICE, data)
    assert "constrain" not in h2.last()


def test_training_is_deterministic(tiny_scenes):
    config, data, cues = tiny_scenes
    a, _ = train_sec(config, cues, DEVICE, data)
    b, _ = train_sec(config, cues, DEVICE, data)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_predict_and_evaluate(tiny_scenes):
    config, data, cues = tiny_scenes
    model, _ = train_sec(config, cues, DEVICE, data)
    batch = next(iter(torch.utils.data.DataLoader(data.test, batch_size=4)))
    probs = predict_probs(model, batch["image"], DEVICE, (32, 32))
    assert probs.shape == (4, 5, 32, 32) and torch.allclose(probs.sum(1), torch.ones(4, 32, 32), atol=1e-5)
    plain = predict(model, batch["image"], DEVICE, out_size=(32, 32))
    refined = predict(model, batch["image"], DEVICE, DenseCRFParams.sec_test(), rgb=batch["rgb"])
    assert plain.shape == refined.shape == (4, 32, 32) and plain.dtype == torch.int64
    assert torch.equal(plain, probs.argmax(1))
    result = evaluate_config(model, data, config, DEVICE)
    assert {"miou", "miou_crf", "fg_fraction", "fg_fraction_crf", "iou", "iou_crf"} <= set(result)
    assert 0 <= result["miou"] <= 100 and len(result["iou"]) == 5
    perfect = evaluate(_Oracle(data), data.test, DEVICE, num_labels=5)
    assert perfect["miou"] == pytest.approx(100.0)


class _Oracle(torch.nn.Module):
    """Returns one-hot logits of the ground truth of the test item whose image it receives."""

    def __init__(self, data):
        super().__init__()
        self.images = data.test.tensors["image"]
        self.masks = data.test.tensors["mask"]

    def forward(self, x):
        index = [int((self.images - xi).abs().flatten(1).sum(1).argmin()) for xi in x]
        return 20.0 * torch.nn.functional.one_hot(self.masks[index], 5).permute(0, 3, 1, 2).float()


# --------------------------------------------------------------------------------------------
# the full-scale path: VOC 2012 + SBD in their real formats

def test_missing_voc_is_a_clear_error_before_anything_heavy(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    config = sec_config(data="voc", network="deeplab_largefov", image_size=321)
    with pytest.raises(DatasetNotFoundError) as err:
        load_data(config)
    text = str(err.value)
    assert "THESISLIB_DATA" in text and "VOCdevkit/VOC2012" in text and "benchmark_RELEASE" in text
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"data": "voc", "network": "deeplab_largefov", "image_size": 321}))
    assert main(["--config", str(cfg), "--device", "cpu"]) == 2
    assert "THESISLIB_DATA" in capsys.readouterr().err


def test_missing_sbd_is_named(tmp_path, monkeypatch):
    write_voc_fixture(tmp_path, 3, 2)
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="SBD"):
        load_data(sec_config(data="voc", network="deeplab_largefov", image_size=65))


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc_data")
    write_voc_fixture(root, 6, 4)
    write_sbd_fixture(root, 6, 4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THESISLIB_DATA", str(root))
        patch.setenv("THESISLIB_CACHE", str(root / "cache"))
        yield root


def test_full_path_runs_on_the_fixture_with_a_cue_file(voc_root):
    """DeepLab-LargeFOV from random weights (with a warning), cues from a file in the released
    format, a few iterations, val mIoU with and without the test-time CRF."""
    base = dict(data="voc", network="deeplab_largefov", image_size=49, iterations=2, batch_size=2,
                max_eval_images=2, crf_method="permutohedral")
    probe = load_data(sec_config(**base))
    ids = probe.train_ids
    side = sec_config(**base).mask_side
    assert side == 7
    rng = np.random.default_rng(0)
    entries = []
    for i in range(len(ids)):
        labels = np.flatnonzero(probe.train.base.labels[i]) + 1
        cue_map = np.full((side, side), NO_CUE, dtype=np.uint8)
        cue_map[0, :] = 0
        cue_map[side // 2, side // 2] = labels[0]
        cue_map[rng.random((side, side)) < 0.05] = NO_CUE
        entries.append((labels.tolist(), cue_map))
    cue_path = write_cue_file(voc_root / "localization_cues.pickle.gz", entries[::-1])
    list_path = write_input_list(voc_root / "input_list.txt", ids[::-1])   # file order != dataset order
    config = sec_config(**base, cue_source="file", cue_path=str(cue_path), cue_list=str(list_path))
    data = load_data(config)
    cues = get_cues(config, data, DEVICE)
    np.testing.assert_array_equal(cues.cues.numpy(), np.stack([e[1] for e in entries]))
    with pytest.warns(UserWarning, match="NOT a replication"):
        model, history = train_sec(config, cues, DEVICE, data)
    assert history.last()["step"] == 2
    result = evaluate_config(model, data, config, DEVICE)
    assert len(result["iou"]) == 21 and 0 <= result["miou_crf"] <= 100


def test_full_path_cam_cues_with_the_vgg_localizer(voc_root):
    config = sec_config(data="voc", network="deeplab_largefov", image_size=49, iterations=1, batch_size=2,
                        localizer="vgg16", localizer_iterations=1, localizer_batch_size=2,
                        saliency_layer="trunk.conv4_1", max_eval_images=1, test_crf=False)
    data = load_data(config)
    localizer, _ = train_localizer_for(config, data, DEVICE)
    cues = get_cues(config, data, DEVICE, localizer)
    assert cues.cues.shape == (len(data.train), 7, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = train_sec(config, cues, DEVICE, data)
    assert "miou_crf" not in evaluate_config(model, data, config, DEVICE)


def test_foreground_cue_file_replaces_the_foreground_and_names_the_run(voc_root, tmp_path):
    """The chapter 3 chain: foreground cues from micro-annotation's .npz (41 x 41, resized to the
    7 x 7 masks here), background from the released-format cue file; the experiment id says so."""
    from thesislib.methods.sec.config import experiment_id

    base = dict(data="voc", network="deeplab_largefov", image_size=49, iterations=1, batch_size=2,
                max_eval_images=1, test_crf=False)
    data = load_data(sec_config(**base))
    ids, side = data.train_ids, 7
    entries = []
    for _i in range(len(ids)):
        cue_map = np.full((side, side), NO_CUE, dtype=np.uint8)
        cue_map[0, :] = 0                   # background row
        cue_map[3, 3] = 1                   # foreground the file's cues would give
        entries.append(([1], cue_map))
    cue_path = write_cue_file(tmp_path / "cues.pickle.gz", entries)
    list_path = write_input_list(tmp_path / "input_list.txt", ids)
    fg = np.zeros((41, 41), np.uint8)
    fg[-6:, -6:] = 5                        # bottom-right corner, class 5
    fg[:6, :6] = 9                          # top-left corner, on the background row: conflict
    npz = tmp_path / "cues_after.npz"
    np.savez_compressed(npz, **{i: fg for i in ids})
    config = sec_config(**base, cue_source="file", cue_path=str(cue_path), cue_list=str(list_path),
                        foreground_cue_file=str(npz))
    cues = get_cues(config, data, DEVICE).cues
    assert cues.shape == (len(ids), side, side)
    assert (cues[:, 3, 3] == NO_CUE).all() and (cues[:, -1, -1] == 5).all()
    assert (cues[:, 0, 0] == NO_CUE).all() and (cues[:, 0, -1] == 0).all()
    assert experiment_id(config, "sec").endswith(",foreground=cues_after]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, history = train_sec(config, cues, DEVICE, data)
    assert history.last()["step"] == 1
    with pytest.raises(FileNotFoundError, match="full_voc"):
        check_inputs(sec_config(**base, foreground_cue_file=str(tmp_path / "nosuch.npz")))
    with pytest.raises(ConfigError, match="data='voc'"):
        sec_config(foreground_cue_file=str(npz))


def test_library_entry_point_writes_a_recordable_run(voc_root, tmp_path, capsys):
    """``python -m thesislib.methods.sec.train``: one configuration, metrics.json in the results
    schema under the deviation-naming id (so ``thesislib record`` accepts it)."""
    from thesislib.methods.sec.config import ablation_name

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(dict(data="voc", network="deeplab_largefov", image_size=49, iterations=1, batch_size=2,
                                   localizer="vgg16", localizer_iterations=1, localizer_batch_size=2,
                                   saliency_layer="trunk.conv4_1", max_eval_images=1, test_crf=False,
                                   expand_loss=False)))
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["--config", str(cfg), "--device", "cpu", "--output", str(out)]) == 0
    record = json.loads((out / "metrics.json").read_text())
    assert record["chapter"] == "sec" and record["scale"] == "full"
    (eid, metrics), = record["experiments"].items()
    assert eid.startswith("voc12-val/deeplab-largefov/seed+constrain[") and "random-init" in eid
    assert 0.0 <= metrics["miou"] <= 100.0 and (out / "provenance.json").is_file() and (out / "model.pt").is_file()
    assert eid in capsys.readouterr().out
    assert ablation_name(sec_config(pooling="gmp")) == "sec-gmp" and ablation_name(sec_config(pooling="gmp",
                                                                                          seed_loss=False)) == "custom"


# --------------------------------------------------------------------------------------------
# several processes: the torchrun entry point, 2 gloo processes on the CPU

def _ddp_params():
    # no dropout: the ranks draw different masks; 7 test images: the shards have unequal sizes
    return sec_config(n_train=16, n_test=7, iterations=3, batch_size=8, dropout=0.0, localizer_iterations=2,
                      localizer_batch_size=8, crf_method="hybrid", eval_batch_size=3, progress="none")


def test_two_process_ddp_trains_and_evaluates_like_one_process(tmp_path, torchrun_gloo):
    """Two gloo processes train one configuration from the same start (global batches of 8, 4 per
    rank) and evaluate 4 + 3 images, gathered. The small FCN has BatchNorm, whose statistics are
    per rank on the CPU (SyncBatchNorm needs CUDA), so the weights are not those of one process;
    what must hold: training ran, and the sharded evaluation equals a one-process evaluation of
    the model the processes trained."""
    params = _ddp_params()
    data = load_data(params)
    cues = get_cues(params, data, DEVICE)
    single, model, _ = run(params, DEVICE, nproc=1, data=data, cues=cues)   # first: forked workers inherit imports
    torch.save({"cues": cues.cues, "conflicts": cues.conflicts}, tmp_path / "cues.pt")
    (tmp_path / "params.json").write_text(json.dumps(to_dict(params)))
    torchrun_gloo(main, ["--params", tmp_path / "params.json", "--cues", tmp_path / "cues.pt",
                         "--output", tmp_path / "out", "--device", "cpu"])
    ddp = json.loads((tmp_path / "out" / "metrics.json").read_text())
    (eid, metrics), = ddp["experiments"].items()
    assert eid == "scenes/small-fcn/sec" and ddp["history"]["train"][-1]["step"] == 3
    assert np.isfinite(ddp["final_loss"])
    trained = build_network(params, data.num_labels)
    start = {k: v.clone() for k, v in trained.state_dict().items()}
    trained.load_state_dict(torch.load(tmp_path / "out" / "model.pt", weights_only=True))
    assert any(not torch.equal(start[k], v) for k, v in trained.state_dict().items())
    one = flat_metrics(evaluate_config(trained, data, params, DEVICE), data.class_names)
    for key in ("miou", "miou_nocrf", "fg_fraction", "fg_fraction_nocrf", "pixel_acc"):
        assert metrics[key] == pytest.approx(one[key], abs=1e-9), key
    assert set(metrics) == set(single["experiments"][eid])


def test_run_launches_torchrun_with_the_params_and_cues(tmp_path, monkeypatch):
    from thesislib.methods.sec import train as strain

    params = _ddp_params()
    data = load_data(params)
    cues = get_cues(params, data, DEVICE)
    calls = []

    def fake_launch(module, args, nproc, **kwargs):          # what torchrun would run, here in one process
        calls.append((module, nproc))
        assert main(list(args)) == 0
        return ""

    monkeypatch.setattr(strain, "launch", fake_launch)
    direct, _, _ = run(params, DEVICE, nproc=1, data=data, cues=cues)
    via, model, history = run(sec_config({**to_dict(params), "nproc": 2}), DEVICE, data=data, cues=cues,
                              output=tmp_path / "via")
    assert calls == [("thesislib.methods.sec.train", 2)]
    assert via["experiments"] == direct["experiments"] and history.last()["step"] == 3
    assert isinstance(model, torch.nn.Module) and (tmp_path / "via" / "cues.pt").is_file()
    with pytest.raises(ValueError, match="nproc"):
        run(params, DEVICE, nproc=0)

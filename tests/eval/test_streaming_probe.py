"""The streaming multi-layer linear probe (thesislib.eval.streaming_probe)."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from thesislib.eval.probe import layer_probes
from thesislib.eval.streaming_probe import (
    StreamingProbeConfig,
    average_crop_probs,
    probe_features,
    streaming_probe,
    ten_crops,
)

torch.set_num_threads(1)


class Trunk(nn.Module):
    """A two-layer conv net with ``conv_layers`` (a BN in conv1, to check its statistics stay put); counts calls."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU())
        self.calls = 0
        self.fail_at: int | None = None

    def conv_layers(self, x, upto="conv2"):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("interrupted")
        out = {"conv1": self.conv1(x)}
        if upto == "conv2":
            out["conv2"] = self.conv2(out["conv1"])
        return out


def _data(n, seed, classes=3, side=8):
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 3, side, side, generator=gen) + y.view(-1, 1, 1, 1).float() * 0.7
    return TensorDataset(x, y)


CFG = dict(epochs=3, lr=0.1, weight_decay=5e-4, batch_size=8, eval_batch_size=16, seed=3, dims=32, amp=False,
           channels_last=False)


def test_matches_linear_probe_on_fixed_views():
    train, test = _data(40, 0), _data(24, 1)
    trunk = Trunk()
    cached = layer_probes(trunk, ["conv1", "conv2"], train, test, "cpu", dims=32, batch_size=8, epochs=3, lr=0.1,
                          weight_decay=5e-4, seed=3, num_classes=3)
    out = streaming_probe(trunk, ["conv1", "conv2"], train, test, "cpu", StreamingProbeConfig(**CFG), num_classes=3)
    for layer in ("conv1", "conv2"):
        ref = cached[layer]["model"]
        head = out["heads"].heads[layer]
        assert out["layers"][layer]["dims"] == cached[layer]["dims"]
        torch.testing.assert_close(head[0].mean, ref[0].mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(head[0].std, ref[0].std, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(head[1].weight, ref[1].weight, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(head[1].bias, ref[1].bias, rtol=1e-4, atol=1e-5)
        assert out["layers"][layer]["test_acc"] == pytest.approx(cached[layer]["test_acc"])
    assert out["heads"].heads["conv1"][1].weight.abs().sum() > 0  # it trained


def test_heads_run_in_float32_under_autocast():
    """Review #5: under an autocast region (bf16 on CUDA with amp; a CPU bf16 region stands in here) the trunk may run
    in bf16, but the heads' linear layers see and return float32, in training and in scoring."""
    train, test = _data(16, 0), _data(8, 1)
    seen = []
    heads_seen = []

    class Spy(Trunk):
        def conv_layers(self, x, upto="conv2"):
            out = super().conv_layers(x, upto)
            seen.append(out["conv1"].dtype)
            return out

    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda m, inp, out: heads_seen.append((inp[0].dtype, out.dtype)) if isinstance(m, nn.Linear) else None)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = streaming_probe(Spy(), ["conv1"], train, test, "cpu", StreamingProbeConfig(**CFG), num_classes=3)
    finally:
        hook.remove()
    assert torch.bfloat16 in seen  # the trunk did run under autocast
    assert heads_seen and all(d == (torch.float32, torch.float32) for d in heads_seen)
    assert out["heads"].heads["conv1"][1].weight.dtype == torch.float32


def test_one_trunk_forward_per_batch_for_all_layers():
    train, test = _data(20, 0), _data(12, 1)
    trunk = Trunk()
    streaming_probe(trunk, ["conv1", "conv2"], train, test, "cpu", StreamingProbeConfig(**CFG), num_classes=3)
    shape_probe = 1
    stats = math.ceil(20 / CFG["eval_batch_size"])
    training = CFG["epochs"] * math.ceil(20 / CFG["batch_size"])
    scoring = math.ceil(12 / CFG["eval_batch_size"])
    assert trunk.calls == shape_probe + stats + training + scoring


def test_trunk_is_frozen_and_its_batchnorm_does_not_move():
    train, test = _data(20, 0), _data(12, 1)
    trunk = Trunk()
    trunk.train()
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    streaming_probe(trunk, ["conv1", "conv2"], train, test, "cpu", StreamingProbeConfig(**CFG), num_classes=3)
    after = trunk.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running mean / var / num_batches_tracked too
    assert all(p.grad is None for p in trunk.parameters())
    assert trunk.training and all(p.requires_grad for p in trunk.parameters())  # restored


class RandomCrops(Dataset):
    """Items of a TensorDataset cut to a random 6x6 crop from torch's global generator (seeded by the engine)."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        t, c = (int(v) for v in torch.randint(0, 3, (2,)))
        return x[:, t:t + 6, c:c + 6], y


def test_resume_after_interruption_is_bit_identical(tmp_path):
    train, test = RandomCrops(_data(20, 0)), _data(12, 1)
    cfg = dict(CFG, checkpoint_every=2)
    full = streaming_probe(Trunk(), ["conv1", "conv2"], train, test, "cpu",
                           StreamingProbeConfig(**cfg, checkpoint_dir=str(tmp_path / "a")), num_classes=3)
    trunk = Trunk()
    trunk.fail_at = 1 + 2 + 6  # shape probe, statistics pass, then the 6th training step (epoch 2)
    with pytest.raises(KeyboardInterrupt):
        streaming_probe(trunk, ["conv1", "conv2"], train, test, "cpu",
                        StreamingProbeConfig(**cfg, checkpoint_dir=str(tmp_path / "b")), num_classes=3)
    resumed_trunk = Trunk()
    resumed = streaming_probe(resumed_trunk, ["conv1", "conv2"], train, test, "cpu",
                              StreamingProbeConfig(**cfg, checkpoint_dir=str(tmp_path / "b")), num_classes=3)
    assert resumed_trunk.calls == 1 + (9 - 4) + 1  # no statistics pass; steps 5..9 only; the test batch
    for a, b in zip(full["heads"].state_dict().values(), resumed["heads"].state_dict().values()):
        assert torch.equal(a, b)
    assert resumed["layers"] == full["layers"]


def test_fresh_random_crop_every_epoch():
    train = RandomCrops(_data(4, 0))
    seen = []

    class Spy(Trunk):
        def conv_layers(self, x, upto="conv2"):
            seen.append(x.clone())
            return super().conv_layers(x, upto)

    streaming_probe(Spy(), ["conv1"], train, _data(4, 1), "cpu",
                    StreamingProbeConfig(**dict(CFG, batch_size=4, epochs=2)), num_classes=3)
    epoch1, epoch2 = seen[2], seen[3]  # after the shape probe and the statistics pass
    assert not torch.equal(epoch1.sum(0), epoch2.sum(0))  # other crops (the order differs too: compare sums)


def test_multilabel_ap_matches_the_cached_probe():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, 8, 8, generator=gen)
    y = torch.stack([(x[:, 0].mean((1, 2)) > 0), (x[:, 1].mean((1, 2)) > 0), (x[:, 2].mean((1, 2)) > 0.3)], 1).float()
    train, test = TensorDataset(x[:32], y[:32]), TensorDataset(x[32:], y[32:])
    cached = layer_probes(Trunk(), ["conv1"], train, test, "cpu", dims=32, batch_size=8, epochs=3, lr=0.1,
                          weight_decay=5e-4, seed=3, multilabel=True)
    out = streaming_probe(Trunk(), ["conv1"], train, test, "cpu", StreamingProbeConfig(**CFG, multilabel=True))
    row = out["layers"]["conv1"]
    assert row["test_ap"] == pytest.approx(cached["conv1"]["test_ap"], abs=1e-6)
    assert row["test_ap"] > 0.6 and len(row["test_ap_per_class"]) == 3


def test_ten_crops_positions_and_flips():
    img = torch.arange(16.0).view(1, 1, 4, 4)
    crops = ten_crops(img, 2)
    assert crops.shape == (1, 10, 1, 2, 2)
    assert crops[0, 0, 0].tolist() == [[5.0, 6.0], [9.0, 10.0]]        # centre
    assert crops[0, 1, 0].tolist() == [[0.0, 1.0], [4.0, 5.0]]         # top-left
    assert crops[0, 4, 0].tolist() == [[10.0, 11.0], [14.0, 15.0]]     # bottom-right
    assert crops[0, 5, 0].tolist() == [[6.0, 5.0], [10.0, 9.0]]        # centre mirrored
    with pytest.raises(ValueError, match="smaller"):
        ten_crops(img, 5)


def test_multicrop_averages_softmax_not_logits():
    # crops 1-2 say class 0 with p 0.9; crop 3 says class 1 with p 0.9999: mean p0 = 0.6 -> class 0, while the mean
    # logit difference (2 log 9 - log 9999) / 3 < 0 would pick class 1
    logits = torch.tensor([[math.log(9.0), 0.0], [math.log(9.0), 0.0], [0.0, math.log(9999.0)]])
    probs = average_crop_probs(logits, 3)
    torch.testing.assert_close(probs, torch.tensor([[0.6, 0.4]]), atol=1e-4, rtol=0)
    assert probs.argmax(1).item() == 0 and logits.mean(0).argmax().item() == 1
    sig = average_crop_probs(torch.tensor([[0.0], [math.log(3.0)]]), 2, multilabel=True)
    torch.testing.assert_close(sig, torch.tensor([[0.625]]))


def _spy_evaluate(monkeypatch):
    """Record every result of the streaming probe module's ``evaluate`` calls (the last one is the test pass)."""
    import importlib

    sp = importlib.import_module("thesislib.eval.streaming_probe")  # the package exports a function of that name
    gathered, real = [], sp.evaluate

    def spy(*args, **kwargs):
        gathered.append(real(*args, **kwargs))
        return gathered[-1]

    monkeypatch.setattr(sp, "evaluate", spy)
    return gathered


def test_multicrop_scores_through_the_probe(monkeypatch):
    """Review #9: per image, the single score is the centre window's argmax and the ten-crop score the argmax of
    the softmax averaged over that image's ten crops, recomputed by hand from the trained heads."""
    gathered = _spy_evaluate(monkeypatch)
    train, test = _data(24, 0, side=6), _data(13, 1, side=9)
    trunk = Trunk()
    cfg = dict(CFG, eval_batch_size=80)  # 8 images (80 crops) per test batch: the crops of several images
    out = streaming_probe(trunk, ["conv1", "conv2"], train, test, "cpu",
                          StreamingProbeConfig(**cfg, crop=6, test_crops=10), num_classes=3)
    x, y = test.tensors
    trunk.eval()
    with torch.no_grad():
        for layer in ("conv1", "conv2"):
            head = out["heads"].heads[layer]
            single, multi = [], []
            for i in range(len(x)):
                crops = ten_crops(x[i:i + 1], 6)[0]                                     # (10, 3, 6, 6)
                logits = head(probe_features(trunk, ["conv1", "conv2"], crops, 32)[layer])  # (10, 3)
                single.append(int(logits[0].argmax()))                              # the centre window
                multi.append(int(torch.softmax(logits, 1).mean(0).argmax()))
            assert gathered[-1][f"single_{layer}"].tolist() == single
            assert gathered[-1][f"multi_{layer}"].tolist() == multi
            row = out["layers"][layer]
            assert row["test_acc"] == pytest.approx(float((torch.tensor(single) == y).double().mean()))
            assert row["test_acc_10crop"] == pytest.approx(float((torch.tensor(multi) == y).double().mean()))


def test_single_label_scoring_gathers_predictions_not_logits(monkeypatch):
    """Review #6: for single-label probes the test pass returns one int64 class per image and mode (not (N, K)
    floats); multi-label keeps the (N, K) scores."""
    gathered = _spy_evaluate(monkeypatch)
    train, test = _data(24, 0, side=6), _data(12, 1, side=8)
    streaming_probe(Trunk(), ["conv1", "conv2"], train, test, "cpu", StreamingProbeConfig(**CFG, crop=6, test_crops=10),
                    num_classes=3)
    scores = gathered[-1]
    for key in ("single_conv1", "multi_conv1", "single_conv2", "multi_conv2"):
        assert scores[key].dtype == torch.int64 and scores[key].shape == (12,), key


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="test_crops"):
        StreamingProbeConfig(test_crops=5)
    with pytest.raises(ValueError, match="crop"):
        StreamingProbeConfig(test_crops=10)
    with pytest.raises(ValueError, match="num_classes"):
        streaming_probe(Trunk(), ["conv1"], _data(4, 0), _data(4, 1), "cpu", StreamingProbeConfig(**CFG))
    with pytest.raises(ValueError, match="network order"):
        probe_features(Trunk(), ["conv2", "conv1"], torch.zeros(1, 3, 8, 8), 32)


def test_official_schedule_on_a_two_step_run_ends_at_the_last_factor():
    """Review #10: with 2 steps all drops fall on step 1; the last factor (0.0008) holds there, not the first."""
    out = streaming_probe(Trunk(), ["conv1"], _data(2, 0), _data(4, 1), "cpu",
                          StreamingProbeConfig(**dict(CFG, batch_size=1, epochs=1, schedule="official")),
                          num_classes=3)
    lrs = {r["step"]: r["lr"] for r in out["history"].train}
    assert lrs[1] == pytest.approx(0.1) and lrs[2] == pytest.approx(0.1 * 0.0008)


def test_the_callers_random_streams_are_left_alone():
    """Review #10: a random-crop training set's first item (read for the heads' shapes) and the passes draw nothing
    from the caller's generators."""
    trunk = Trunk()  # (seeds torch itself)
    torch.manual_seed(11)
    state = torch.get_rng_state()
    streaming_probe(trunk, ["conv1", "conv2"], RandomCrops(_data(12, 0)), _data(4, 1), "cpu",
                    StreamingProbeConfig(**CFG), num_classes=3)
    assert torch.equal(torch.get_rng_state(), state)


def test_official_schedule_is_the_lci_codes_staircase():
    train, test = _data(100, 0), _data(8, 1)
    out = streaming_probe(Trunk(), ["conv1"], train, test, "cpu",
                          StreamingProbeConfig(**dict(CFG, batch_size=1, epochs=1, schedule="official")),
                          num_classes=3)
    lrs = {r["step"]: r["lr"] for r in out["history"].train}
    assert lrs[5] == pytest.approx(0.1) and lrs[35] == pytest.approx(0.01) and lrs[65] == pytest.approx(0.002)
    assert lrs[85] == pytest.approx(0.0004) and lrs[100] == pytest.approx(0.00008)
    with pytest.raises(ValueError, match="schedule"):
        StreamingProbeConfig(schedule="step")


def _ddp_main(argv):
    from thesislib.engine import distributed_session, get_rank

    with distributed_session("cpu") as device:
        out = streaming_probe(Trunk(), ["conv1", "conv2"], RandomCrops(_data(40, 0)), _data(24, 1), device,
                              StreamingProbeConfig(**CFG), num_classes=3)
        if get_rank() == 0:
            torch.save({"heads": out["heads"].state_dict(), "layers": out["layers"]}, argv[0])
    return 0


def test_two_gloo_processes_match_one_process(tmp_path, torchrun_gloo):
    """Under DDP each rank reads half of every global batch and of the statistics pass; with full batches the
    averaged gradients and the gathered statistics are those of one process, random crops included (each sample's
    view in the statistics pass is drawn from (seed, index), not from the rank's position: review #3)."""
    one = streaming_probe(Trunk(), ["conv1", "conv2"], RandomCrops(_data(40, 0)), _data(24, 1), "cpu",
                          StreamingProbeConfig(**CFG), num_classes=3)
    torchrun_gloo(_ddp_main, [tmp_path / "ddp.pt"])
    two = torch.load(tmp_path / "ddp.pt")
    for name, value in one["heads"].state_dict().items():
        torch.testing.assert_close(two["heads"][name], value, rtol=1e-4, atol=1e-5)
    assert two["layers"] == one["layers"]

"""Training through the engine and the claims' verdicts."""

import torch

from thesislib.methods.pic.config import PICParams
from thesislib.methods.pic.data import load_data
from thesislib.methods.pic.experiments import CLAIMS, ReplicateResult, claim_verdicts, measure
from thesislib.methods.pic.train import run

TINY = dict(gw_widths=(4, 8), gw_blocks=(1, 1), gw_strides=(1, 2), gw_dilations=(1, 1), gw_out=12,
            nr_resnet=1, nr_filters=8, n_mix=2, n_train=16, n_test=8, iterations=3, batch_size=8,
            n_sample_images=2, n_repeats=2, n_seeds=1)


def test_one_replicate_trains_and_measures():
    device = torch.device("cpu")
    params = PICParams(**TINY)
    data = load_data(params)
    pic, gw, histories = run(params, device, data=data)
    assert set(histories) == {"pic", "gw_only"} and histories["pic"].last()["step"] == 3
    metrics, samples = measure(params, pic, gw, data, device, 0)
    assert samples["pic"].shape == (2, 2, 2, 8, 8)
    for key in ("bpd_pic", "bpd_gw", "sat_pic", "sat_gw_map", "purity_pic", "coloured_pic", "diversity_pic",
                "consistency_pic"):
        assert key in metrics and metrics[key] == metrics[key]
    aux = PICParams(**TINY, baseline="aux", gw_aux_weight=1.0)
    _, gw_aux, h_aux = run(aux, device, data=data)
    assert set(h_aux) == {"pic"} and "bpd_gw_aux" in h_aux["pic"].last()


def _result(seed: int, **m: float) -> ReplicateResult:
    return ReplicateResult(seed, m, 0.0, {})


def test_verdicts_follow_the_numbers():
    keys = {"bpd_pic": 3.0, "bpd_gw": 4.0, "coloured_pic": 0.98, "purity_pic": 0.97, "purity_gw_sample": 0.7,
            "blue_rate_pic": 0.5, "diversity_pic": 0.8, "consistency_pic": 0.97, "disk_chroma_pic": 55.0,
            "disk_chroma_gw_mean": 20.0,
            "sat_pic": 40.0, "sat_gw_map": 35.0}
    results = [_result(s, **{k: v + 0.01 * ((-1) ** s) * (s % 3) for k, v in keys.items()}) for s in range(5)]
    verdicts = {v.id: v for v in claim_verdicts(results)}
    assert set(verdicts) == {c[0] for c in CLAIMS}
    assert all(v.holds for v in verdicts.values()), {k: v.label for k, v in verdicts.items()}
    worse = [_result(s, **{**keys, "bpd_pic": 5.0 + 0.1 * s, "blue_rate_pic": 0.1 + 0.01 * s}) for s in range(5)]
    verdicts = {v.id: v for v in claim_verdicts(worse)}
    assert verdicts["nll"].label == "lower" and not verdicts["half-blue"].holds
    no_labels = [_result(s, bpd_pic=3.0 + 0.1 * s, bpd_gw=4.0, sat_pic=40.0, sat_gw_map=35.0 - s) for s in range(3)]
    assert {v.id for v in claim_verdicts(no_labels)} == {"nll", "saturation"}

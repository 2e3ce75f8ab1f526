"""The torchrun entry point of both stages runs as two gloo processes and writes usable weights.

E, D and C use BatchNorm (per-rank statistics without SyncBatchNorm on CPU), so this checks the wiring
(DDP over the alternating update, the frozen autoencoder, the history buffer, rank 0's outputs), not
weight equality with one process."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from thesislib.config import to_dict
from thesislib.methods.spotting_artifacts.config import spotting_artifacts_config
from thesislib.methods.spotting_artifacts.train import _load_outputs, main

FIELDS = dict(image_size=16, encoder_channels=[4, 8, 8], disc_width=0.0625, disc_hidden=8, ae_iterations=2,
              iterations=2, batch_size=8, n_unlabelled=32, history_size=8, progress="none", seed=1)


def test_two_gloo_processes_run_both_stages(tmp_path: Path, torchrun_gloo) -> None:
    params = spotting_artifacts_config(FIELDS)
    path = tmp_path / "params.json"
    path.write_text(json.dumps(to_dict(params)))
    torchrun_gloo(main, ["--params", path, "--stage", "ae", "--output", tmp_path / "ae", "--device", "cpu"])
    ae = _load_outputs(params, "ae", tmp_path / "ae", None)["ae"]
    torchrun_gloo(main, ["--params", path, "--stage", "dr", "--autoencoder", tmp_path / "ae" / "ae.pt",
                         "--output", tmp_path / "dr", "--device", "cpu"])
    models = _load_outputs(params, "dr", tmp_path / "dr", ae)
    assert int(models["gen"].history.filled) == 8  # 2 steps x 8 images, capacity 8
    for module in models.values():
        assert all(torch.isfinite(v).all() for v in module.state_dict().values() if v.is_floating_point())
    history = json.loads((tmp_path / "dr" / "history.json").read_text())
    assert history


def test_stage_dr_without_autoencoder_is_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "params.json"
    path.write_text(json.dumps(to_dict(spotting_artifacts_config(FIELDS))))
    assert main(["--params", str(path), "--stage", "dr"]) == 2
    assert "--autoencoder" in capsys.readouterr().err


def _per_rank_worker(argv: list[str]) -> int:
    """Stage dr on this rank; writes this rank's history buffer and the wrapping of gen and disc."""
    from thesislib.engine.distributed import distributed_session, get_rank, wrap_ddp
    from thesislib.methods.spotting_artifacts.data import chapter_data
    from thesislib.methods.spotting_artifacts.train import build_autoencoder, build_generator, train_damage_repair

    out, repair = Path(argv[0]), argv[1]
    params = spotting_artifacts_config({**FIELDS, "repair": repair})
    with distributed_session("cpu") as device:
        gen_probe = build_generator(params, build_autoencoder(params))
        wrapped = wrap_ddp(gen_probe, device)
        info = {"gen_is_ddp": isinstance(wrapped, torch.nn.parallel.DistributedDataParallel),
                "broadcast_buffers": getattr(wrapped, "broadcast_buffers", None)}
        gen, _, _ = train_damage_repair(params, build_autoencoder(params), chapter_data(params, params.seed).unlabelled,
                                        device)
        torch.save({"images": gen.history.images, "masks": gen.history.masks, **info},
                   out / f"rank{get_rank()}.pt")
    return 0


def test_ranks_draw_their_own_masks_and_keep_their_own_history(tmp_path: Path, torchrun_gloo) -> None:
    """Ω and the history picks come from a per-rank generator, and DDP does not overwrite the history
    buffer with rank 0's (regression: identical masks on all ranks, history = rank 0's copy)."""
    torchrun_gloo(_per_rank_worker, [tmp_path, "distributed"])
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["gen_is_ddp"] and r0["broadcast_buffers"] is False
    assert not torch.equal(r0["masks"], r1["masks"])
    assert not torch.equal(r0["images"], r1["images"])


def test_repair_none_trains_under_two_processes(tmp_path: Path, torchrun_gloo) -> None:
    """repair=none leaves gen without trainable parameters: it is not DDP-wrapped (DDP would refuse it)."""
    torchrun_gloo(_per_rank_worker, [tmp_path, "none"])
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    assert r0["gen_is_ddp"] is False

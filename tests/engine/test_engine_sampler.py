"""Data order: seeded per-epoch permutations, global batches split across ranks, resume by slicing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thesislib.config import ConfigError, from_mapping
from thesislib.engine import GlobalBatchSampler, TrainConfig, epoch_order, steps_per_epoch, to_device


def flat(plan: list[list[np.ndarray]]) -> list[list[int]]:
    return [np.concatenate(step).tolist() for step in plan]


def test_epoch_order_is_seeded_per_epoch() -> None:
    a = epoch_order(50, seed=3, epoch=0)
    assert sorted(a.tolist()) == list(range(50))
    assert np.array_equal(a, epoch_order(50, seed=3, epoch=0))
    assert not np.array_equal(a, epoch_order(50, seed=3, epoch=1))
    assert not np.array_equal(a, epoch_order(50, seed=4, epoch=0))
    assert epoch_order(5, seed=3, epoch=0, shuffle=False).tolist() == [0, 1, 2, 3, 4]


def test_ranks_split_each_global_batch() -> None:
    single = GlobalBatchSampler(30, 8, seed=1).set_epoch(2)
    ranks = [GlobalBatchSampler(30, 8, seed=1, rank=r, world_size=2).set_epoch(2) for r in range(2)]
    assert steps_per_epoch(30, 8, drop_last=False) == 4 == len(single)
    for s, step in enumerate(flat(single)):
        assert flat(ranks[0])[s] + flat(ranks[1])[s] == step
    # last global batch: 6 samples, 3 per rank
    assert [len(flat(r)[-1]) for r in ranks] == [3, 3]


def test_partial_last_batch_is_trimmed_to_the_world_size() -> None:
    assert steps_per_epoch(33, 8, drop_last=False, world_size=4) == 4  # last batch of 1 < 4 ranks: dropped
    assert steps_per_epoch(35, 8, drop_last=False, world_size=2) == 5
    plan = GlobalBatchSampler(35, 8, seed=0, rank=1, world_size=2).set_epoch(0)
    assert len(plan[-1][0]) == 1  # 3 left over -> 2 used, one per rank
    assert steps_per_epoch(35, 8, drop_last=True) == 4


def test_resume_slices_the_index_list() -> None:
    sampler = GlobalBatchSampler(37, 8, seed=0, grad_accum=2)
    full = sampler.set_epoch(1)
    assert [len(m) for m in full[0]] == [4, 4] and [len(m) for m in full[-1]] == [3, 2]
    tail = sampler.set_epoch(1, start_step=3)
    assert flat(tail) == flat(full)[3:]
    assert list(sampler) == [m.tolist() for step in tail for m in step] and len(sampler) == 4


def test_bad_splits_are_rejected() -> None:
    with pytest.raises(ValueError, match="not divisible by the world size 3"):
        GlobalBatchSampler(30, 8, seed=0, world_size=3)
    with pytest.raises(ValueError, match="not divisible by grad_accum 3"):
        GlobalBatchSampler(30, 8, seed=0, grad_accum=3)


def test_train_config_validation() -> None:
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="resume=True needs a checkpoint_dir"):
        TrainConfig(resume=True)
    with pytest.raises(ConfigError, match="progress"):
        TrainConfig(progress="fancy")
    assert from_mapping(TrainConfig, {"epochs": "3", "amp": "false"}) == TrainConfig(epochs=3, amp=False)
    with pytest.raises(ConfigError, match="'epoch'.*epochs"):
        from_mapping(TrainConfig, {"epoch": 3})


def test_to_device_walks_nested_batches() -> None:
    batch = {"x": torch.ones(2, 3, 4, 5), "pair": (torch.zeros(2), [torch.ones(1)]), "name": "a"}
    out = to_device(batch, torch.device("cpu"), channels_last=True)
    assert out["name"] == "a" and isinstance(out["pair"], tuple) and isinstance(out["pair"][1], list)
    assert out["x"].is_contiguous(memory_format=torch.channels_last)


class RandomAugment(torch.utils.data.Dataset):
    """Each sample draws from all three global RNGs, as augmentation code does."""

    def __len__(self) -> int:
        return 24

    def __getitem__(self, i: int) -> torch.Tensor:
        import random

        return torch.tensor([float(i), random.random(), float(np.random.rand()), torch.rand(()).item()])


def augmented_by_index(batch_size: int, num_workers: int, rank: int = 0, world: int = 1) -> dict[int, list]:
    from torch.utils.data import DataLoader

    from thesislib.engine.sampler import SeededDataset

    sampler = GlobalBatchSampler(24, batch_size, seed=7, rank=rank, world_size=world)
    sampler.set_epoch(3)
    loader = DataLoader(SeededDataset(RandomAugment()), batch_sampler=sampler, num_workers=num_workers,
                        generator=torch.Generator().manual_seed(0))
    return {int(row[0]): row[1:].tolist() for batch in loader for row in batch}


def test_data_randomness_depends_on_seed_epoch_and_index_only() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    reference = augmented_by_index(8, 0)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's stream is untouched
    assert sorted(reference) == list(range(24))
    assert augmented_by_index(4, 2) == reference  # batch size and worker processes do not matter
    split = {**augmented_by_index(8, 0, rank=0, world=2), **augmented_by_index(8, 0, rank=1, world=2)}
    assert split == reference  # nor the number of ranks
    values = np.array(list(reference.values()))
    assert len(np.unique(values[:, 2])) == 24  # but samples differ from each other


def test_deterministic_datasets_skip_per_sample_seeding():
    import random

    from torch.utils.data import TensorDataset

    from thesislib.engine.sampler import IndexBatch, SeededDataset, is_deterministic

    class Draws(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return random.random()

    class Flagged(Draws):
        deterministic = True

    assert is_deterministic(TensorDataset(torch.zeros(3))) and is_deterministic(Flagged())
    assert not is_deterministic(Draws())
    batch = IndexBatch([0, 1], epoch_seed=5)
    seeded = SeededDataset(Draws()).__getitems__(batch)
    assert seeded == SeededDataset(Draws()).__getitems__(IndexBatch([0, 1], epoch_seed=5))
    random.seed(0)
    first = SeededDataset(Flagged()).__getitems__(batch)
    random.seed(0)
    assert first == [random.random(), random.random()]  # drawn from the caller's stream, unseeded

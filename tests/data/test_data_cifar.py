import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from thesislib.data import DatasetCorruptError, DatasetNotFoundError
from thesislib.data.cifar import (
    cifar_class_names,
    cifar_dataset,
    crop_flip,
    load_cifar_tensors,
    random_crop_flip,
    verify_cifar,
)
from thesislib.data.fixtures import write_cifar_fixture
from thesislib.data.names import CIFAR100_COARSE_OF_FINE


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar_fixture(root, "cifar10", n_train=23, n_test=7, seed=0)
    write_cifar_fixture(root, "cifar100", n_train=30, n_test=12, seed=1)
    return root


def _read(path, encoding="latin1"):
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding=encoding)


def test_cifar10_counts_shapes_dtypes(data_root):
    x, y = load_cifar_tensors("cifar10", train=True, root=data_root / "cifar10")
    assert x.shape == (23, 3, 32, 32) and x.dtype == torch.uint8
    assert y.shape == (23,) and y.dtype == torch.int64
    xt, yt = load_cifar_tensors("cifar10", train=False, root=data_root / "cifar10")
    assert xt.shape == (7, 3, 32, 32)
    # train labels are the five batches in order
    folder = data_root / "cifar10" / "cifar-10-batches-py"
    labels = sum((_read(folder / f"data_batch_{i}")["labels"] for i in range(1, 6)), [])
    assert y.tolist() == labels
    assert set(yt.tolist()) <= set(range(10))


def test_pixel_round_trip_follows_the_official_row_layout(data_root):
    folder = data_root / "cifar10" / "cifar-10-batches-py"
    row = _read(folder / "test_batch")["data"][3]  # 3072 values: R plane, G plane, B plane
    x, _ = load_cifar_tensors("cifar10", train=False, root=data_root / "cifar10")
    for c, i, j in [(0, 0, 0), (1, 5, 17), (2, 31, 30), (0, 12, 3)]:
        assert x[3, c, i, j].item() == row[c * 1024 + i * 32 + j]
    image, label = cifar_dataset("cifar10", train=False, root=data_root / "cifar10")[3]
    assert np.array_equal(np.asarray(image), x[3].permute(1, 2, 0).numpy())


def test_fixture_is_the_real_pickle_format(data_root):
    folder = data_root / "cifar10" / "cifar-10-batches-py"
    raw = _read(folder / "data_batch_1", encoding="bytes")
    assert set(raw) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert raw[b"data"].dtype == np.uint8 and raw[b"data"].shape[1] == 3072
    meta = _read(folder / "batches.meta")
    assert meta["label_names"] == list(cifar_class_names("cifar10")) and meta["num_vis"] == 3072
    meta100 = _read(data_root / "cifar100" / "cifar-100-python" / "meta")
    assert len(meta100["fine_label_names"]) == 100 and len(meta100["coarse_label_names"]) == 20
    train100 = _read(data_root / "cifar100" / "cifar-100-python" / "train")
    assert [CIFAR100_COARSE_OF_FINE[f] for f in train100["fine_labels"]] == train100["coarse_labels"]


def test_cifar100_through_torchvision(data_root):
    ds = cifar_dataset("cifar100", train=True, root=data_root / "cifar100")
    assert len(ds) == 30 and ds.classes == list(cifar_class_names("cifar100"))
    x, y = load_cifar_tensors("cifar100", train=True, root=data_root / "cifar100")
    assert y.tolist() == _read(data_root / "cifar100" / "cifar-100-python" / "train")["fine_labels"]
    assert x.shape == (30, 3, 32, 32)


def test_default_root_comes_from_env(data_root, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(data_root))
    x, _ = load_cifar_tensors("cifar10", train=False)
    assert x.shape[0] == 7


def test_missing_dataset_message(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        load_cifar_tensors("cifar10", train=True)
    text = str(err.value)
    assert "THESISLIB_DATA" in text and str(tmp_path) in text
    assert "cifar10/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}" in text
    with pytest.raises(DatasetNotFoundError, match=r"cifar100/cifar-100-python/\{train, test, meta\}"):
        cifar_dataset("cifar100", train=False)


def test_fewer_train_images_than_batches(tmp_path):
    base = write_cifar_fixture(tmp_path, "cifar10", n_train=3, n_test=1, seed=2)
    x, y = load_cifar_tensors("cifar10", train=True, root=base)
    assert x.shape == (3, 3, 32, 32) and y.shape == (3,)


def test_missing_single_file_is_named(tmp_path):
    base = write_cifar_fixture(tmp_path, "cifar10", 10, 5)
    (base / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing: data_batch_4"):
        cifar_dataset("cifar10", root=base)
    with pytest.raises(DatasetNotFoundError, match="did you mean root="):
        cifar_dataset("cifar10", root=tmp_path)


def test_corrupt_file_is_reported(tmp_path):
    base = write_cifar_fixture(tmp_path, "cifar10", 10, 5)
    path = base / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetCorruptError, match="test_batch") as err:
        load_cifar_tensors("cifar10", train=False, root=base)
    assert err.value.path == path
    with pytest.raises(DatasetCorruptError, match="MD5") as err:
        verify_cifar("cifar10", root=base)  # fixtures never match the official checksums
    assert err.value.path == base / "cifar-10-batches-py" / "data_batch_1"  # the first bad file, alone


def test_the_one_corrupt_batch_is_named_not_the_split(tmp_path):
    base = write_cifar_fixture(tmp_path, "cifar10", 10, 5)
    folder = base / "cifar-10-batches-py"
    bad = folder / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:200])                               # truncated pickle
    with pytest.raises(DatasetCorruptError) as err:
        cifar_dataset("cifar10", train=True, root=base)
    assert err.value.path == bad
    text = str(err.value)
    assert str(bad) in text and "data_batch_1" not in text and "data_batch_5" not in text
    write_cifar_fixture(tmp_path, "cifar10", 10, 5)                         # repair, then bad labels
    with (folder / "data_batch_2").open("rb") as fh:
        batch = pickle.load(fh, encoding="latin1")
    batch["labels"] = [99] * len(batch["labels"])
    with (folder / "data_batch_2").open("wb") as fh:
        pickle.dump(batch, fh)
    with pytest.raises(DatasetCorruptError, match="labels outside 0..9") as err:
        load_cifar_tensors("cifar10", train=True, root=base)
    assert err.value.path == folder / "data_batch_2"


# ----------------------------------------------------------------------------- augmentation

def test_crop_flip_hand_built_case():
    x = torch.arange(1, 10, dtype=torch.uint8).view(1, 1, 3, 3)  # [[1,2,3],[4,5,6],[7,8,9]]
    x = x.repeat(3, 1, 1, 1)
    top, left = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1])
    flip = torch.tensor([False, False, True])
    out = crop_flip(x, top, left, flip, padding=1)
    # image 0: window shifted up-left by one -> zero row/column enter at the top and left
    assert out[0, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    # image 1: centred window = identity
    assert out[1, 0].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    # image 2: window moved down one row, then mirrored left-right
    assert out[2, 0].tolist() == [[6, 5, 4], [9, 8, 7], [0, 0, 0]]


def _reference(x, padding, generator):
    n = x.shape[0]
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = []
    for k in range(n):
        padded = F.pad(x[k], (padding,) * 4)
        crop = padded[:, top[k]:top[k] + x.shape[2], left[k]:left[k] + x.shape[3]]
        out.append(torch.flip(crop, dims=[2]) if flip[k] else crop)
    return torch.stack(out)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_crop_flip_equals_reference_loop(dtype):
    x = (torch.rand(16, 3, 8, 10, generator=torch.Generator().manual_seed(0)) * 255).to(dtype)
    got = random_crop_flip(x, padding=2, generator=torch.Generator().manual_seed(5))
    ref = _reference(x, 2, torch.Generator().manual_seed(5))
    assert got.shape == x.shape and got.dtype == dtype
    assert torch.equal(got, ref)
    other = random_crop_flip(x, padding=2, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(got, other)


def test_random_crop_flip_keeps_channels_last():
    x = torch.rand(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    out = random_crop_flip(x, generator=torch.Generator().manual_seed(0))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, random_crop_flip(x.contiguous(), generator=torch.Generator().manual_seed(0)))


@pytest.mark.gpu
def test_random_crop_flip_on_cuda_matches_cpu():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    cpu = random_crop_flip(x, generator=torch.Generator().manual_seed(1))
    gpu = random_crop_flip(x.cuda(), generator=torch.Generator().manual_seed(1))
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
    gen = torch.Generator(device="cuda").manual_seed(1)
    on_device = random_crop_flip(x.cuda(), generator=gen)
    assert on_device.shape == x.shape

"""One dataset-root rule and one not-found message for every loader; a corrupt file is named alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from thesislib.data import DatasetCorruptError, DatasetNotFoundError, dataset_dir, not_found_message
from thesislib.data.cifar import check_cifar_layout, load_cifar_tensors
from thesislib.data.coco import CocoMultiLabel
from thesislib.data.fixtures import write_cifar_fixture, write_coco_fixture
from thesislib.data.imagenet import ImageNetLocalization
from thesislib.data.imagenet_fixtures import write_imagenet_fixture
from thesislib.data.mnist import mnist_files, write_mnist_fixture
from thesislib.data.reuters import reuters10k_file, write_reuters10k_fixture
from thesislib.data.roots import DATASET_DIRS, suggest_root
from thesislib.data.seg_fixtures import write_sbd_fixture, write_voc_fixture
from thesislib.data.voc import VOCSegmentation


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """One data root holding every loader's fixture in its real layout."""
    root = tmp_path_factory.mktemp("all")
    write_cifar_fixture(root, "cifar10", n_train=6, n_test=3, seed=0)
    write_cifar_fixture(root, "cifar100", n_train=6, n_test=3, seed=1)
    write_coco_fixture(root, n_train=3, n_test=2)
    write_imagenet_fixture(root, n_classes=2, n_train=2, n_val=2)
    write_voc_fixture(root, n_train=3, n_val=2)
    write_sbd_fixture(root, n_train=3, n_val=2, overlap_with_voc=0)
    write_mnist_fixture(root, n_train=4, n_test=2)
    write_reuters10k_fixture(root, n=8, dim=12)
    return root


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_CACHE", str(tmp_path / "cache"))


# Each loader as "(root, fixture data root) -> the dataset directory it resolved", for one dataset
# key (SBD is read with the fixture's VOC, which trainaug needs too).
RESOLVERS = {
    "cifar10": lambda root, data: check_cifar_layout("cifar10", root),
    "cifar100": lambda root, data: check_cifar_layout("cifar100", root),
    "coco": lambda root, data: CocoMultiLabel(root, "val2014").root,
    "imagenet": lambda root, data: ImageNetLocalization("val", root).root,
    "voc": lambda root, data: VOCSegmentation("val", voc_root=root).voc_dir.parents[1],
    "sbd": lambda root, data: VOCSegmentation("trainaug", data / "voc", sbd_root=root).sbd_dir.parents[1],
    "mnist": lambda root, data: mnist_files("test", root)[0].parent,
    "reuters10k": lambda root, data: reuters10k_file(root).parent,
}


def test_the_rule_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "env"))
    for empty in ("", None, "  "):
        assert dataset_dir("coco", empty) == tmp_path / "env" / "coco"
        assert dataset_dir("coco", empty, data_root=empty) == tmp_path / "env" / "coco"
    assert dataset_dir("coco", "", data_root=tmp_path / "d") == tmp_path / "d" / "coco"
    assert dataset_dir("coco", tmp_path / "mine", data_root=tmp_path / "d") == tmp_path / "mine"
    assert dataset_dir("voc", "~/v") == Path.home() / "v"
    monkeypatch.delenv("THESISLIB_DATA")
    assert dataset_dir("sbd") == Path.home() / "thesislib-data" / "sbd"
    with pytest.raises(ValueError, match="known: cifar10"):
        dataset_dir("nosuchset")


@pytest.mark.parametrize("name", sorted(RESOLVERS))
def test_every_loader_resolves_root_by_the_rule(name, data, tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(data))
    expected = data / DATASET_DIRS[name]
    assert RESOLVERS[name]("", data) == expected                     # empty: $THESISLIB_DATA/<dir>
    assert RESOLVERS[name](None, data) == expected
    moved = tmp_path / "elsewhere" / "anything"                # explicit: that directory itself
    shutil.copytree(expected, moved)
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "empty"))
    assert RESOLVERS[name](str(moved), data) == moved
    assert RESOLVERS[name](moved, data) == moved
    with pytest.raises(DatasetNotFoundError) as err:
        RESOLVERS[name]("", data)                                    # $THESISLIB_DATA is empty now
    assert err.value.root.is_relative_to(tmp_path / "empty" / DATASET_DIRS[name])


@pytest.mark.parametrize("name", sorted(RESOLVERS))
def test_not_found_message_names_the_variable_the_layout_and_the_download(name, data, tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as err:
        RESOLVERS[name]("", data)
    text = str(err.value)
    assert f"THESISLIB_DATA={tmp_path}" in text
    assert str(tmp_path / DATASET_DIRS[name]) in text                       # the directory looked in
    assert f"    {DATASET_DIRS[name]}/" in text                            # the layout tree, indented
    assert "Download: " in text and "http" in text
    monkeypatch.delenv("THESISLIB_DATA")
    with pytest.raises(DatasetNotFoundError, match="THESISLIB_DATA is not set"):
        RESOLVERS[name](tmp_path / "nothing", data)


@pytest.mark.parametrize("name, inner", [("voc", "VOCdevkit/VOC2012"), ("coco", "annotations"),
                                         ("imagenet", "ILSVRC"), ("cifar10", "cifar-10-batches-py")])
def test_a_slipped_root_gets_a_did_you_mean(name, inner, data):
    # the data root passed where the dataset directory belongs, and a folder inside it
    assert suggest_root(name, data, inner) == data / DATASET_DIRS[name]
    inside = data / DATASET_DIRS[name] / Path(inner).parts[0]
    assert suggest_root(name, inside, inner) == data / DATASET_DIRS[name]
    with pytest.raises(DatasetNotFoundError, match=f"did you mean root={data / DATASET_DIRS[name]}"):
        RESOLVERS[name](inside, data)
    assert suggest_root(name, data / "unrelated", inner) is None


def test_message_builder_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", "/data/root")
    text = not_found_message("Toy", tmp_path / "toy", "toy/a.txt\ntoy/b/<id>.png", missing=list("abcdefg"),
                             download="https://example.org/toy.zip", hint="extra")
    lines = text.splitlines()
    assert lines[0] == f"Toy was not found in {tmp_path / 'toy'} (missing: a, b, c, d, e (+2 more))."
    assert "THESISLIB_DATA=/data/root" in lines[1]
    assert "    toy/a.txt" in lines and "    toy/b/<id>.png" in lines
    assert "Download: https://example.org/toy.zip" in lines and lines[-1] == "extra"


# ----------------------------------------------------------------------------- corrupt files

def _truncate(path: Path, keep: int = 40) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_corrupt_files_are_reported_by_their_own_path(data, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(data, root)

    cifar_bad = root / "cifar10" / "cifar-10-batches-py" / "data_batch_2"
    _truncate(cifar_bad)
    with pytest.raises(DatasetCorruptError) as err:
        load_cifar_tensors("cifar10", train=True, root=root / "cifar10")
    assert err.value.path == cifar_bad and str(err.value).count("data_batch") == 1

    coco_json = root / "coco" / "annotations" / "instances_val2014.json"
    _truncate(coco_json)
    with pytest.raises(DatasetCorruptError) as err:
        CocoMultiLabel(root / "coco", "val2014")
    assert err.value.path == coco_json
    coco = CocoMultiLabel(root / "coco", "train2014")
    _truncate(coco.image_path(1))
    with pytest.raises(DatasetCorruptError, match="unreadable image") as err:
        coco[1]
    assert err.value.path == coco.image_path(1)

    val = ImageNetLocalization("val", root / "imagenet")
    _truncate(val.paths[0])
    with pytest.raises(DatasetCorruptError) as err:
        val[0]
    assert err.value.path == val.paths[0]
    synsets = root / "imagenet" / "LOC_synset_mapping.txt"
    synsets.write_text("not a wnid line\n")
    with pytest.raises(DatasetCorruptError) as err:
        ImageNetLocalization("train", root / "imagenet")
    assert err.value.path == synsets

    voc = VOCSegmentation("val", voc_root=root / "voc", use_cache=False)
    _truncate(voc.mask_paths[1])
    with pytest.raises(DatasetCorruptError) as err:
        VOCSegmentation("val", voc_root=root / "voc", use_cache=False)
    assert err.value.path == voc.mask_paths[1] and str(voc.mask_paths[0]) not in str(err.value)

    aug = VOCSegmentation("trainaug", voc_root=data / "voc", sbd_root=root / "sbd", use_cache=False)
    mat = next(p for p in aug.mask_paths if p.suffix == ".mat")
    _truncate(mat, keep=130)
    with pytest.raises(DatasetCorruptError) as err:
        VOCSegmentation("trainaug", voc_root=data / "voc", sbd_root=root / "sbd", use_cache=False)
    assert err.value.path == mat


def test_the_corrupt_error_takes_one_file():
    with pytest.raises(TypeError, match="one file"):
        DatasetCorruptError("Toy", [Path("a"), Path("b")], "bad")
    err = DatasetCorruptError("Toy", "a/b.json", "invalid JSON")
    assert err.path == Path("a/b.json") and "a/b.json" in str(err) and "invalid JSON" in str(err)

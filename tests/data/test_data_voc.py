"""PASCAL VOC 2012 + SBD loader on fixtures in the real formats: splits, masks, labels, cache, errors,
SEC's input transform."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from thesislib.data import (
    VOC_CLASSES,
    VOC_PALETTE,
    DatasetCorruptError,
    DatasetNotFoundError,
    SegInputTransform,
    VOCSegmentation,
    colorize,
)
from thesislib.data.seg_fixtures import render_fixture_image, write_sbd_fixture, write_voc_fixture
from thesislib.data.transforms import denormalize
from thesislib.data.voc import labels_cache_path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_voc_fixture(root, n_train=8, n_val=6, seed=0)
    write_sbd_fixture(root, n_train=10, n_val=6, seed=0, overlap_with_voc=0.5)
    return root


@pytest.fixture(autouse=True)
def env(data, tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(data))
    monkeypatch.setenv("THESISLIB_CACHE", str(tmp_path / "cache"))


def _lines(path):
    return path.read_text().split()


def _lists(data):
    voc = data / "voc" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation"
    sbd = data / "sbd" / "benchmark_RELEASE" / "dataset"
    return ({s: _lines(voc / f"{s}.txt") for s in ("train", "val", "trainval")},
            {s: _lines(sbd / f"{s}.txt") for s in ("train", "val")})


def test_splits_follow_the_lists_and_the_trainaug_rule(data):
    voc, sbd = _lists(data)
    assert sorted(voc["trainval"]) == sorted(voc["train"] + voc["val"])
    for split in ("train", "val", "trainval"):
        assert VOCSegmentation(split).ids == voc[split]
    aug = VOCSegmentation("trainaug").ids
    expected = (set(sbd["train"]) | set(sbd["val"]) | set(voc["train"])) - set(voc["val"])
    assert aug == sorted(expected)
    dropped = set(sbd["train"] + sbd["val"]) & set(voc["val"])
    assert len(dropped) == 3 and not dropped & set(aug)           # SBD lists VOC val images
    assert len(aug) == 10 + 6 - 3 + 8 - 4                         # 4 VOC train ids are also in SBD


@pytest.mark.parametrize("split", ["train", "val", "trainaug"])
def test_items_and_labels_agree_with_the_masks(split):
    ds = VOCSegmentation(split)
    assert ds.labels.shape == (len(ds), 20) and ds.labels.dtype == np.uint8
    for i in range(len(ds)):
        item = ds[i]
        image, mask, labels = item["image"], item["mask"], item["labels"]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert mask.dtype == np.int64 and mask.shape == image.shape[:2]
        assert set(np.unique(mask).tolist()) <= set(range(21)) | {255}
        expected = [float((mask == c).any()) for c in range(1, 21)]     # reference: one class at a time
        assert labels.dtype == np.float32 and labels.tolist() == expected
        assert labels.sum() >= 1 and item["id"] == ds.ids[i]


def test_trainaug_masks_come_from_voc_png_else_sbd_mat(data):
    voc, _ = _lists(data)
    ds = VOCSegmentation("trainaug")
    sources = [ds.mask_source(i) for i in range(len(ds))]
    assert sources.count("voc") == 8 and sources.count("sbd") == len(ds) - 8
    for i, image_id in enumerate(ds.ids):
        item = ds[i]
        _, full = render_fixture_image(image_id)
        if image_id in voc["train"]:
            assert sources[i] == "voc" and (item["mask"] == 255).any()       # VOC void band
            keep = item["mask"] != 255
            assert np.array_equal(item["mask"][keep], full[keep])
        else:
            assert sources[i] == "sbd" and np.array_equal(item["mask"], full)  # no void in SBD
            assert "sbd" in str(ds.image_paths[i])                         # image only in SBD img/


def test_png_masks_are_palette_images_and_colorize():
    ds = VOCSegmentation("val")
    with Image.open(ds.mask_paths[0]) as img:
        assert img.mode == "P"
        assert np.array_equal(np.asarray(img.getpalette()[:768]).reshape(256, 3), VOC_PALETTE)
    assert len(VOC_CLASSES) == 21 and VOC_CLASSES[15] == "person"
    assert VOC_PALETTE[1].tolist() == [128, 0, 0] and VOC_PALETTE[15].tolist() == [192, 128, 128]
    assert VOC_PALETTE[255].tolist() == [224, 224, 192]
    rgb = colorize(torch.tensor([[0, 1], [15, 255]]))
    assert rgb.dtype == np.uint8 and rgb.tolist() == [[[0, 0, 0], [128, 0, 0]],
                                                      [[192, 128, 128], [224, 224, 192]]]
    with pytest.raises(ValueError):
        colorize(np.array([[256]]))


def test_sbd_mat_files_read_like_the_release():
    ds = VOCSegmentation("trainaug")
    path = next(p for p in ds.mask_paths if p.suffix == ".mat")
    mat = scipy.io.loadmat(path)
    assert mat["GTcls"].dtype.names == ("Boundaries", "Segmentation", "CategoriesPresent")
    boundaries, segmentation, present = mat["GTcls"][0, 0]
    assert segmentation.dtype == np.uint8 and boundaries.shape == (20, 1)
    via_field = mat["GTcls"][0]["Segmentation"][0]                      # torchvision SBDataset's access
    assert np.array_equal(via_field, segmentation)
    classes = np.unique(segmentation[segmentation > 0])
    assert present.ravel().tolist() == classes.tolist()
    for c in range(1, 21):
        edge = mat["GTcls"][0]["Boundaries"][0][c - 1][0].toarray().astype(bool)
        assert edge.shape == segmentation.shape
        assert edge.any() == (c in classes) and not (edge & (segmentation != c)).any()


def test_label_cache_is_written_reused_and_never_silently_replaced(tmp_path):
    ds = VOCSegmentation("val")
    caches = list((tmp_path / "cache" / "voc").glob("labels_val_*.npz"))
    assert len(caches) == 1
    path = caches[0]
    with np.load(path) as cached:
        assert cached["ids"].tolist() == ds.ids
        forged = 1 - cached["labels"]
    np.savez(path, version=np.int64(1), ids=np.asarray(ds.ids), labels=forged)
    assert np.array_equal(VOCSegmentation("val").labels, forged)        # the cache is what was read
    assert np.array_equal(VOCSegmentation("val", use_cache=False).labels, ds.labels)
    path.write_bytes(b"not a zip file")
    with pytest.raises(DatasetCorruptError, match="Delete this file") as err:
        VOCSegmentation("val")
    assert str(path) in str(err.value)
    np.savez(path, version=np.int64(1), ids=np.asarray(ds.ids[::-1]), labels=ds.labels)
    with pytest.raises(DatasetCorruptError, match="ids differ"):
        VOCSegmentation("val")
    assert labels_cache_path("train", "x") != labels_cache_path("val", "x")


def test_missing_dataset_names_the_variable_and_both_layouts(tmp_path, monkeypatch, data):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetNotFoundError) as err:
        VOCSegmentation("train")
    message = str(err.value)
    for text in ("THESISLIB_DATA", "VOCdevkit/VOC2012/SegmentationClass", "benchmark_RELEASE/dataset/cls",
                 "GTcls"):
        assert text in message
    with pytest.raises(DatasetNotFoundError, match="SBD"):
        VOCSegmentation("trainaug", voc_root=data / "voc", sbd_root=tmp_path / "nosbd")
    with pytest.raises(ValueError, match="split"):
        VOCSegmentation("test", voc_root=data / "voc")


def test_missing_and_corrupt_files_are_reported(tmp_path, data):
    import shutil

    voc = tmp_path / "voc"
    shutil.copytree(data / "voc", voc)
    root = voc / "VOCdevkit" / "VOC2012"
    first = _lines(root / "ImageSets" / "Segmentation" / "train.txt")[0]
    (root / "JPEGImages" / f"{first}.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match=first):
        VOCSegmentation("train", voc_root=voc)
    second = _lines(root / "ImageSets" / "Segmentation" / "val.txt")[0]
    png = root / "SegmentationClass" / f"{second}.png"
    with Image.open(png) as img:
        img.convert("RGB").save(png)                                    # a colour rendering, not indices
    with pytest.raises(DatasetCorruptError, match="palette"):
        VOCSegmentation("val", voc_root=voc, use_cache=False)
    Image.fromarray(np.full((5, 5), 30, np.uint8), mode="L").save(png)
    with pytest.raises(DatasetCorruptError, match="outside 0..20"):
        VOCSegmentation("val", voc_root=voc, use_cache=False)


def test_sec_transform_resizes_and_normalises():
    ds = VOCSegmentation("trainaug", transform=SegInputTransform())
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 321, 321) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 321, 321) and batch["mask"].dtype == torch.int64
    assert batch["labels"].shape == (4, 20) and len(batch["id"]) == 4
    raw = ds.read(0)
    assert batch["orig_size"][0].tolist() == list(raw["mask"].shape)
    assert set(batch["mask"][0].unique().tolist()) <= set(np.unique(raw["mask"]).tolist())
    back = denormalize(batch["image"][0], "imagenet")
    assert back.min() > -1e-3 and back.max() < 1 + 1e-3
    full = SegInputTransform(size=65, resize_mask=False)(raw)
    assert full["image"].shape == (3, 65, 65) and torch.equal(full["mask"], torch.from_numpy(raw["mask"]))


def test_full_scale_code_path_runs_on_the_fixture():
    """trainaug -> SEC transform -> DeepLab-LargeFOV -> upsampled argmax -> VOC mIoU accumulator."""
    from thesislib.eval.segmentation import SegmentationConfusion
    from thesislib.nn import DeepLabLargeFOV

    torch.manual_seed(0)
    ds = VOCSegmentation("trainaug", transform=SegInputTransform(size=81))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    model = DeepLabLargeFOV(num_classes=21).eval()
    with torch.no_grad():
        scores = model(batch["image"])
    assert scores.shape == (2, 21, 11, 11)
    pred = torch.nn.functional.interpolate(scores, size=(81, 81), mode="bilinear").argmax(dim=1)
    confusion = SegmentationConfusion(21)
    confusion.update(pred, batch["mask"])
    assert confusion.matrix.sum() == int((batch["mask"] != 255).sum())

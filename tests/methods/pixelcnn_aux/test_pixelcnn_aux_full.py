"""The full-scale configs: valid, the thesis's hyperparameters, and a clear error without the data."""

from __future__ import annotations

import pytest

from thesislib.chapters import get_chapter
from thesislib.cli import main
from thesislib.data.errors import DatasetNotFoundError
from thesislib.methods.pixelcnn_aux.data import gray_images, pyramid_images
from thesislib.runner import resolve_parameters, validate_parameters

CHAPTER = get_chapter("pixelcnn_aux")


def _params(scale):
    return validate_parameters(CHAPTER, resolve_parameters(CHAPTER, scale, []), scale)


def test_full_configs_carry_the_thesis_hyperparameters():
    cifar = _params("full")
    assert (cifar.data, cifar.lr, cifar.batch_size, cifar.lr_decay, cifar.epochs, cifar.gray_epochs) == \
        ("cifar10", 1e-3, 64, 0.99999, 200, 30)
    assert cifar.n_mix == 10 and cifar.updown and cifar.nproc == 1
    celeba = _params("full_celeba")
    assert celeba.pyramid_sides == [8, 16, 32, 64, 128] and celeba.pyramid_resnet == 3
    assert (celeba.lr, celeba.batch_size, celeba.lr_decay, celeba.epochs, celeba.nr_filters) == \
        (1e-3, 16, 0.999995, 60, 100)


def test_missing_datasets_name_their_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        gray_images(_params("full"), 0)
    with pytest.raises(DatasetNotFoundError, match="img_align_celeba"):
        pyramid_images(_params("full_celeba"), 0)


@pytest.mark.slow
def test_full_scale_run_without_data_fails_naming_the_layout(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("THESISLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("THESISLIB_DATA", str(tmp_path / "data"))
    assert main(["run", "pixelcnn_aux", "--scale", "full"]) == 2
    err = capsys.readouterr().err
    assert "DatasetNotFoundError" in err and "THESISLIB_DATA" in err and "cifar-10-batches-py" in err

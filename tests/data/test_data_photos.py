import numpy as np
import pytest

from thesislib.data import photos
from thesislib.data.photos import (
    COLOR_PHOTOS,
    GRAY_PHOTOS,
    load_photo,
    photo_names,
    random_crop,
    random_crops,
    textures,
)


@pytest.fixture
def no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", photo_names())
def test_every_listed_photo_loads_offline(name, no_network):
    photos._raw.cache_clear()  # really read the file, with the network blocked
    image = load_photo(name)
    assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
    if name in COLOR_PHOTOS:
        assert image.ndim == 3 and image.shape[2] == 3
    else:
        assert image.ndim == 2
    assert image.std() > 0.01  # a real picture, not a blank


def test_lists_and_kinds():
    assert set(photo_names("color")) == set(COLOR_PHOTOS)
    assert set(photo_names("gray")) == set(GRAY_PHOTOS)
    assert {"china", "flower", "astronaut"} <= set(photo_names())
    with pytest.raises(KeyError, match="available"):
        load_photo("lena")
    with pytest.raises(ValueError):
        photo_names("infrared")


def test_gray_to_rgb_uint8_and_round_trip():
    import skimage.data

    raw = skimage.data.camera()
    as_uint8 = load_photo("camera", as_float=False)
    assert as_uint8.dtype == np.uint8 and np.array_equal(as_uint8, raw)
    rgb = load_photo("camera", rgb=True)
    assert rgb.shape == raw.shape + (3,)
    assert np.array_equal(rgb[..., 0], rgb[..., 2])
    assert np.allclose(rgb[..., 1], raw / 255.0)
    # the cached original is not modified through a returned array
    as_uint8[:] = 0
    assert np.array_equal(load_photo("camera", as_float=False), raw)


def test_logo_alpha_composited_and_horse_binary():
    logo = load_photo("logo", as_float=False)
    assert logo.shape[2] == 3
    horse = load_photo("horse", as_float=False)
    assert set(np.unique(horse)) == {0, 255}


def test_resize_shorter_side_and_exact():
    image = load_photo("chelsea", size=64)  # 300 x 451
    assert image.shape == (64, 96, 3)
    assert load_photo("chelsea", size=(20, 30)).shape == (20, 30, 3)
    assert load_photo("chelsea", size=(20, 30), as_float=False).dtype == np.uint8


def test_textures():
    tex = textures(size=128)
    assert set(tex) == {"grass", "gravel", "brick"}
    assert all(t.shape == (128, 128) and t.dtype == np.float32 for t in tex.values())


def test_random_crops_reproducible_and_correct():
    image = np.arange(10 * 12 * 3).reshape(10, 12, 3)
    crops = random_crops(image, (4, 5), 6, np.random.default_rng(0))
    again = random_crops(image, (4, 5), 6, np.random.default_rng(0))
    assert crops.shape == (6, 4, 5, 3) and np.array_equal(crops, again)
    rng = np.random.default_rng(0)
    top, left = rng.integers(0, 7, size=6), rng.integers(0, 8, size=6)
    for k in range(6):
        assert np.array_equal(crops[k], image[top[k]:top[k] + 4, left[k]:left[k] + 5])
    single = random_crop(image[..., 0], 3, np.random.default_rng(1))
    assert single.shape == (3, 3)
    with pytest.raises(ValueError, match="does not fit"):
        random_crop(image, 11, np.random.default_rng(0))


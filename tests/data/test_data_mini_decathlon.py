"""The mini-decathlon's glyph source domain (issue 11): determinism, balance, shapes, rendering."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from thesislib.data.mini_decathlon import (
    GLYPH_CLASSES,
    MINI_DOMAINS,
    SOURCE_DOMAINS,
    TARGET_DOMAINS,
    glyph_alphabet,
    glyph_images,
    mini_domain,
    segment_distance,
)


def test_segment_distance_hand_computed():
    a, b = np.array([[0.0, 0.0]]), np.array([[0.0, 4.0]])          # a horizontal segment (y, x)
    pts = np.array([[0.0, 2.0], [3.0, 2.0], [0.0, -1.0], [3.0, 8.0]])
    d = segment_distance(pts, a, b)
    assert d.shape == (1, 4)
    np.testing.assert_allclose(d[0], [0.0, 3.0, 1.0, 5.0])          # on, above, before the end, 3-4-5
    # a degenerate segment is a point
    np.testing.assert_allclose(segment_distance(pts[:1], a, a)[0], [2.0])


def test_alphabet_fixed_distinct_and_long_strokes():
    alpha = glyph_alphabet()
    assert alpha.shape == (GLYPH_CLASSES, 3, 2, 2) and not alpha.flags.writeable
    assert np.array_equal(alpha, glyph_alphabet.__wrapped__())       # independent of any data seed
    assert np.abs(alpha).max() <= 1.0
    assert np.linalg.norm(alpha[:, :, 0] - alpha[:, :, 1], axis=-1).min() >= 0.6
    flat = alpha.reshape(GLYPH_CLASSES, -1)
    assert len(np.unique(flat.round(6), axis=0)) == GLYPH_CLASSES


def test_glyph_images_deterministic_per_seed_and_balanced():
    x, y = glyph_images(250, 16, np.random.default_rng(3))
    x2, y2 = glyph_images(250, 16, np.random.default_rng(3))
    x3, _ = glyph_images(250, 16, np.random.default_rng(4))
    assert x.shape == (250, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, x3)
    counts = np.bincount(y.numpy(), minlength=GLYPH_CLASSES)
    assert counts.min() == 2 and counts.max() == 3 and counts.sum() == 250   # 2 each + 50 extra, no class twice
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_glyph_is_drawn_and_differs_between_classes():
    """Ink covers part of the image (not all of it), and two classes' mean images differ where
    their strokes differ: the label is in the strokes, not in the background."""
    x, y = glyph_images(2000, 16, np.random.default_rng(0), n_classes=2)
    gray = x.mean(1)
    m0, m1 = gray[y == 0].mean(0), gray[y == 1].mean(0)
    assert (m0 - m1).abs().max() > 0.05
    # backgrounds are drawn independently of the class: the mean corner brightness matches
    corner = gray[:, :2, :2].mean((1, 2))
    assert abs(float(corner[y == 0].mean() - corner[y == 1].mean())) < 0.03


def test_glyph_domain_through_mini_domain():
    d = mini_domain("glyphs", seed=1, size=16, n_source=300, n_test=120)
    assert d.num_classes == GLYPH_CLASSES and d.class_names[0] == "glyph000"
    assert d.x_train.shape == (300, 3, 16, 16) and d.x_test.shape == (120, 3, 16, 16)
    torch.testing.assert_close(d.x_train.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    again = mini_domain("glyphs", seed=1, size=16, n_source=300, n_test=120)
    assert torch.equal(d.x_train, again.x_train) and torch.equal(d.y_test, again.y_test)


def test_domain_lists_and_target_streams_unchanged():
    assert set(SOURCE_DOMAINS) | set(TARGET_DOMAINS) == set(MINI_DOMAINS)
    assert not set(SOURCE_DOMAINS) & set(TARGET_DOMAINS)
    # the targets keep the index (hence the random stream) they had before glyphs was appended
    assert MINI_DOMAINS[:5] == ("photos", "digits", "faces", "shapes", "textures")
    with pytest.raises(ValueError, match="unknown mini-decathlon domain 'imagenet'"):
        mini_domain("imagenet")

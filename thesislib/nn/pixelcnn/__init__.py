"""PixelCNN++ library shared by the Grayscale/Pyramid PixelCNN (thesis ch. 4) and PIC (ch. 5) chapters.

Modules and public API (torch; shapes (B, C, H, W); images scaled to [-1, 1]):

``layers``
    ``concat_elu(x)``, ``down_shift(x)``, ``right_shift(x)``, ``wn_conv2d(in, out, k, **kw)``;
    ``DownShiftedConv2d(in, out, filter_size=(2, 3), stride=1, shift_output_down=False)``,
    ``DownRightShiftedConv2d(in, out, filter_size=(2, 2), stride=1, shift_output_right=False)``,
    ``DownShiftedConvTranspose2d(in, out, filter_size=(2, 3), stride=2)``,
    ``DownRightShiftedConvTranspose2d(in, out, filter_size=(2, 2), stride=2)``;
    ``GatedResnet(channels, conv, cond_channels=0, dropout=0.0, skip_channels=0, out_conv=None)`` with
    ``forward(x, a=None, h=None)`` (``a`` skip input (B, skip_channels, H, W), ``h`` conditioning
    (B, cond_channels, H, W) added to the first conv through a 1x1 conv); ``plain_conv(k, dilation)``;
    ``EmbeddingStage(width, blocks, stride=1, dilation=1, up=False)`` and
    ``Embedding(in_channels, out_channels, stages, dropout=0.0)`` (non-causal f_w / g^w).
``model``
    ``PixelCNNpp(in_channels, out_channels, nr_resnet=5, nr_filters=160, cond_channels=0, updown=True,
    dropout=0.5)``, ``forward(x, h=None) -> (B, out_channels, H, W)``; ``receptive_field()`` for
    ``updown=False``.
``likelihood``
    ``dmol_params_count(channels, n_mix)``, ``split_dmol``, ``dmol_log_prob(x, out, channels, n_mix,
    bins=256) -> (B, H, W)`` nats, ``dmol_sample(out, channels, n_mix, generator=None,
    variance_reduction=0.0, map=False, bins=256) -> (B, C, H, W)``, ``log_logistic_bin``,
    ``categorical_log_prob(x, logits) -> (B, H, W)``, ``categorical_sample(logits, generator=None,
    map=False, temperature=1.0) -> (B, 1, H, W)``, ``bin_centres``, ``to_unit``, ``to_index``.
``sampling``
    ``sample_naive(model, shape, step_fn, generator=None, h=None, canvas=None, target_channels=None)``,
    ``sample_fast(...)`` (same signature, exact, ``PixelCNNpp(updown=False)`` only),
    ``dmol_step(channels, n_mix, bins=256, variance_reduction=0.0, map=False)``,
    ``categorical_step(map=False, temperature=1.0)``; ``time_naive_rows(model, shape, step_fn, rows,
    generator=None, h=None)`` (the naive sampler timed on its first rows, extrapolated).
``cached``
    ``sample_cached(...)`` (same signature as ``sample_naive``, exact, both ``PixelCNNpp`` variants, with
    ``h`` and given channels; activations cached between steps after Ramachandran et al. 2017) and the
    cache itself, ``CachedPixelCNNpp(model, canvas, h=None)`` with ``step(i, j)`` and ``write(i, j, canvas)``.

Bits per dimension and the two-part bound of Eq. 4.5 are in :mod:`thesislib.eval.likelihood`.
"""

from thesislib.nn.pixelcnn.cached import CachedPixelCNNpp, sample_cached
from thesislib.nn.pixelcnn.layers import (
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
    Embedding,
    EmbeddingStage,
    GatedResnet,
    concat_elu,
    down_shift,
    plain_conv,
    right_shift,
    wn_conv2d,
)
from thesislib.nn.pixelcnn.likelihood import (
    bin_centres,
    categorical_log_prob,
    categorical_sample,
    dmol_log_prob,
    dmol_params_count,
    dmol_sample,
    log_logistic_bin,
    split_dmol,
    to_index,
    to_unit,
)
from thesislib.nn.pixelcnn.model import PixelCNNpp
from thesislib.nn.pixelcnn.sampling import categorical_step, dmol_step, sample_fast, sample_naive, time_naive_rows

__all__ = [
    "DownRightShiftedConv2d", "DownRightShiftedConvTranspose2d", "DownShiftedConv2d", "DownShiftedConvTranspose2d",
    "Embedding", "EmbeddingStage", "GatedResnet", "PixelCNNpp", "bin_centres", "categorical_log_prob",
    "categorical_sample", "categorical_step", "concat_elu", "dmol_log_prob", "dmol_params_count", "dmol_sample",
    "dmol_step", "down_shift", "log_logistic_bin", "plain_conv", "right_shift", "sample_fast", "sample_naive",
    "split_dmol", "to_index", "to_unit", "wn_conv2d",
    "CachedPixelCNNpp", "sample_cached", "time_naive_rows",
]

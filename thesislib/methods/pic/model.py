"""PIC's networks (thesis §5.3.2, Fig. 5.2): the embedding g^w, the conditional PixelCNN f^θ, and
the feed-forward g^w-only baseline. Built from :mod:`thesislib.nn.pixelcnn`.

* :class:`PIC`: ``h = g^w(L)`` (:class:`~thesislib.nn.pixelcnn.Embedding`, Table 5.1) maps the
  full-resolution L (B, 1, H, W) to (B, gw_out, H/s, W/s); f^θ is a
  :class:`~thesislib.nn.pixelcnn.PixelCNNpp` without down/up-sampling over the low-resolution Lab
  canvas (B, 3, H/s, W/s) whose every gated block is biased by h (Eq. 5.2), returning the DMOL
  parameters of p(ab_i | ab_<i, L) (B, 6 K, H/s, W/s). ``forward(canvas, h)`` has the signature the
  library's samplers call; :meth:`PIC.embed` computes h once per gray input.
* :class:`GwOnly`: an embedding read as ``6 K`` outputs: one DMOL per chroma pixel,
  independent across pixels given L (the thesis's feed-forward ablation, §5.4.3, Fig. 5.1).
"""

from __future__ import annotations

from torch import Tensor, nn

from thesislib.methods.pic.config import PICParams
from thesislib.nn.pixelcnn import Embedding, PixelCNNpp

__all__ = ["GwOnly", "PIC", "build_gw_only", "build_pic", "gw_head"]


class PIC(nn.Module):
    """g^w and f^θ together; see the module docstring."""

    def __init__(self, embedding: Embedding, pixelcnn: PixelCNNpp) -> None:
        super().__init__()
        if pixelcnn.in_channels != 3 or pixelcnn.cond_channels != embedding.out_channels:
            raise ValueError("PIC needs a PixelCNNpp over the 3-channel Lab canvas conditioned on g^w's "
                             f"{embedding.out_channels} channels, got in={pixelcnn.in_channels}, "
                             f"cond={pixelcnn.cond_channels}")
        self.embedding, self.pixelcnn = embedding, pixelcnn

    def embed(self, big_l: Tensor) -> Tensor:
        """h = g^w(L): (B, 1, H, W) -> (B, gw_out, H/s, W/s)."""
        return self.embedding(big_l)

    def forward(self, canvas: Tensor, h: Tensor | None = None, big_l: Tensor | None = None,
                return_h: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """f^θ(canvas; h): (B, 3, h, w) Lab canvas in [-1, 1], h (B, gw_out, h, w) -> DMOL parameters
        (B, 6 K, h, w); the output at pixel i sees the canvas at pixels < i only (raster order).

        The samplers call ``model(canvas, h)`` with h computed once; training passes ``big_l``
        (B, 1, H, W) instead (h = g^w(L) inside the forward, so DDP sees one forward) and may ask
        for ``(out, h)`` with ``return_h``."""
        if (h is None) == (big_l is None):
            raise ValueError("PIC.forward needs exactly one of h (g^w's output) or big_l (the L image)")
        if h is None:
            h = self.embed(big_l)
        out = self.pixelcnn(canvas, h)
        return (out, h) if return_h else out


class GwOnly(nn.Module):
    """The feed-forward baseline: L (B, 1, H, W) -> DMOL parameters (B, 6 K, H/s, W/s): the first
    ``outputs`` channels of ``embedding(L)`` (all of them when None). With PIC's own embedding and
    ``outputs`` = 6 K it is the released code's baseline, trained by PIC's auxiliary term."""

    def __init__(self, embedding: Embedding, outputs: int | None = None) -> None:
        super().__init__()
        if outputs is not None and not 0 < outputs <= embedding.out_channels:
            raise ValueError(f"outputs must be in 1..{embedding.out_channels}, got {outputs}")
        self.embedding, self.outputs = embedding, outputs

    def forward(self, big_l: Tensor) -> Tensor:
        out = self.embedding(big_l)
        return out if self.outputs is None else out[:, : self.outputs]


def build_pic(params: PICParams) -> PIC:
    """PIC with g^w from ``params.embedding_stages()`` and f^θ with ``nr_resnet`` blocks of
    ``nr_filters`` channels, ``updown=False`` (the thesis: 4 blocks, 160 channels)."""
    embedding = Embedding(1, params.gw_out, params.embedding_stages(), dropout=params.dropout)
    pixelcnn = PixelCNNpp(3, params.dmol_outputs, nr_resnet=params.nr_resnet, nr_filters=params.nr_filters,
                          cond_channels=params.gw_out, updown=False, dropout=params.dropout)
    return PIC(embedding, pixelcnn)


def build_gw_only(params: PICParams) -> GwOnly:
    """The separately trained g^w-only baseline: the same embedding stages, ``dmol_outputs`` output channels."""
    return GwOnly(Embedding(1, params.dmol_outputs, params.embedding_stages(), dropout=params.dropout))


def gw_head(pic: PIC, params: PICParams) -> GwOnly:
    """The code's g^w-only baseline inside a trained PIC: its embedding's first ``dmol_outputs`` channels
    (meaningful when PIC was trained with ``gw_aux_weight`` > 0; shares PIC's weights)."""
    return GwOnly(pic.embedding, params.dmol_outputs)

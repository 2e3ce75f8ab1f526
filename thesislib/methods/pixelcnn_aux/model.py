"""The networks of one part: a PixelCNN++ (:class:`~thesislib.nn.pixelcnn.PixelCNNpp`) and, for a
conditional part, its non-causal conditioning network f_w (:class:`~thesislib.nn.pixelcnn.Embedding`,
"one flow of residual blocks and no shifting", thesis §4.3.3), whose output map is added into every
gated block (Eq. 4.3: p_θ(x_j | x_<j; f_w(X̂))).

* ``color`` (p(X | X̂)): f_w on the 4-bit X̂ at the image's resolution;
* ``level<s>`` (pyramid): f_w on the half-resolution image, ending in a x2 up stage (``small``),
  or the thesis's 15 blocks with a downsampling after block 3 and upsamplings after 9 and 12
  (``pyramid_embed="thesis"``, net x2 up).
"""

from __future__ import annotations

from torch import Tensor, nn

from thesislib.methods.pixelcnn_aux.config import GRAY_LEVELS, PartSpec, PixelCNNAuxParams, part_spec
from thesislib.nn.pixelcnn import Embedding, EmbeddingStage, PixelCNNpp, dmol_params_count, to_unit

__all__ = ["PartModel", "build_part", "to_model_input"]


def _embedding(params: PixelCNNAuxParams, spec: PartSpec) -> Embedding:
    w, b = params.embed_width, params.embed_blocks
    if spec.cond == "gray":
        return Embedding(1, params.embed_channels, [EmbeddingStage(w, b)], dropout=params.dropout)
    if params.pyramid_embed == "thesis":
        stages = [EmbeddingStage(w, 3), EmbeddingStage(w, 6, stride=2), EmbeddingStage(w, 3, up=True),
                  EmbeddingStage(w, 3, up=True)]
    else:
        stages = [EmbeddingStage(w, b), EmbeddingStage(w, b, up=True)]
    return Embedding(3, params.embed_channels, stages, dropout=params.dropout)


def to_model_input(x: Tensor, channels: int) -> Tensor:
    """uint8 image -> [-1, 1] bin centres: 256 levels for RGB (C = 3), 16 for the 4-bit X̂ (C = 1)."""
    return to_unit(x.long(), 256 if channels == 3 else GRAY_LEVELS)


class PartModel(nn.Module):
    """One factor of Eq. 4.2. ``forward(x, aux=None)``: x (B, C, H, W) in [-1, 1], aux the
    conditioning image in [-1, 1] (X̂ (B, 1, H, W) or the coarse image (B, 3, H/2, W/2)) ->
    the raw output map (B, P, H, W) (DMOL parameters or 16 logits)."""

    def __init__(self, params: PixelCNNAuxParams, spec: PartSpec) -> None:
        super().__init__()
        self.spec = spec
        self.n_mix = params.n_mix
        out = dmol_params_count(3, params.n_mix) if spec.out_kind == "dmol" else GRAY_LEVELS
        self.embed = _embedding(params, spec) if spec.cond else None
        cond = params.embed_channels if spec.cond else 0
        self.pixelcnn = PixelCNNpp(spec.in_channels, out, nr_resnet=spec.nr_resnet, nr_filters=spec.nr_filters,
                                   cond_channels=cond, updown=spec.updown, dropout=params.dropout)

    def condition(self, aux: Tensor | None) -> Tensor | None:
        """f_w(aux) (B, embed_channels, H, W), or None for an unconditional part."""
        if self.embed is None:
            if aux is not None:
                raise ValueError(f"part {self.spec.name} is unconditional but got an aux image")
            return None
        if aux is None:
            raise ValueError(f"part {self.spec.name} needs its conditioning image (aux)")
        return self.embed(aux)

    def forward(self, x: Tensor, aux: Tensor | None = None) -> Tensor:
        return self.pixelcnn(x, self.condition(aux))


def build_part(params: PixelCNNAuxParams, name: str) -> PartModel:
    """The networks of part ``name`` (:func:`~thesislib.methods.pixelcnn_aux.config.part_spec`)."""
    return PartModel(params, part_spec(params, name))

"""Fig. 4.1's transformation: a 4x4 tile shuffle whose tile borders are inpainted (Jenni §4.1, footnote 2).

The thesis builds images that keep local statistics but not global ones by "partitioning an image into a 4x4 grid,
randomly permuting the tiles, and training a network to inpaint a band of pixels across the tiles through
adversarial training". Here, for images x (B, C, S, S) with S a multiple of the grid g and of 4:

* :func:`tile_permutations`: one uniformly drawn *non-identity* permutation π of the g·g tiles per image (B, g·g)
  (rejection: identity draws are redrawn), from a seeded generator;
* :func:`shuffle_tiles`: tile j (row-major) of the output is tile π[j] of the input (a bijection of tiles:
  every pixel is moved, none is lost or duplicated);
* :func:`band_mask`: M (1, 1, S, S), 1 on a band ``band`` pixels wide centred on every internal tile border
  (rows and columns k·t, k = 1..g−1, t = S/g; ``band // 2`` pixels before the border, the rest after), 0 in the
  tile interiors;
* :func:`band_inpaint`: an inpainter F_b (:mod:`thesislib.methods.lci.band`: the chapter's F architecture trained
  adversarially on this band task alone, as the thesis's "network [trained] to inpaint a band of pixels across the
  tiles through adversarial training") run fully convolutionally on the whole shuffled image with its bands
  erased and filled with noise, ê = s ⊙ (1 − M) + z ⊙ M, z ~ N(0, noise_std²) (Eq. 4.3's input with M in place
  of m), and its output pasted into the bands only: out = s ⊙ (1 − M) + F(ê) ⊙ M (Eq. 4.4's paste). Outside the
  bands ``out`` equals the shuffled image exactly.

The band width is this repository's decision (the thesis does not state it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from thesislib.methods.lci.transforms import erase

__all__ = ["TileDraws", "band_inpaint", "band_mask", "check_tile_geometry", "draw_tiles", "shuffle_tiles",
           "tile_permutations", "tile_shuffle_inpaint", "tile_shuffle_steps"]


def check_tile_geometry(side: int, grid: int, band: int) -> int:
    """The tile side t = ``side`` / ``grid``; raises ValueError naming the sizes when ``side`` is not a multiple of
    ``grid`` or the band (``band`` px) would leave a tile no interior (``band`` >= t) or is not positive."""
    if grid < 2:
        raise ValueError(f"tiles: grid {grid} must be at least 2 (one tile has nothing to permute)")
    if side % grid:
        raise ValueError(f"tiles: image side {side} is not a multiple of the grid {grid}")
    tile = side // grid
    if not 0 < band < tile:
        raise ValueError(f"tiles: band {band} px must be positive and narrower than a tile ({tile} px)")
    return tile


def tile_permutations(n: int, grid: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> Tensor:
    """(n, grid²) int64: row i a uniform random permutation of 0..grid²−1 other than the identity (identity draws
    are redrawn, so each row is uniform over the grid²! − 1 others)."""
    k = grid * grid
    if k < 2:
        raise ValueError(f"tile_permutations: a {grid}x{grid} grid has no non-identity permutation")
    ident = torch.arange(k, device=device)
    perms = torch.rand(n, k, generator=generator, device=device).argsort(dim=1)
    redo = (perms == ident).all(dim=1)
    while bool(redo.any()):
        fresh = torch.rand(n, k, generator=generator, device=device).argsort(dim=1)
        perms = torch.where(redo[:, None], fresh, perms)
        redo = (perms == ident).all(dim=1)
    return perms


def shuffle_tiles(x: Tensor, perms: Tensor, grid: int) -> Tensor:
    """``x`` (B, C, S, S) with its ``grid`` x ``grid`` tiles rearranged by ``perms`` (B, grid²): output tile j
    (row-major) is input tile ``perms[b, j]``."""
    b, c, h, w = x.shape
    if h % grid or w % grid:
        raise ValueError(f"shuffle_tiles: image {h}x{w} is not a multiple of the grid {grid}")
    if perms.shape != (b, grid * grid):
        raise ValueError(f"shuffle_tiles: perms must be ({b}, {grid * grid}), got {tuple(perms.shape)}")
    th, tw = h // grid, w // grid
    tiles = x.reshape(b, c, grid, th, grid, tw).permute(0, 2, 4, 1, 3, 5).reshape(b, grid * grid, c, th, tw)
    idx = perms.to(x.device).view(b, grid * grid, 1, 1, 1).expand_as(tiles)
    out = tiles.gather(1, idx)
    return out.reshape(b, grid, grid, c, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def band_mask(side: int, grid: int, band: int, device: torch.device | str = "cpu") -> Tensor:
    """M (1, 1, side, side) float: 1 on the rows and the columns within the band of every internal tile border
    (positions k·t − band//2 .. k·t + band − band//2 − 1, k = 1..grid−1), 0 elsewhere."""
    tile = check_tile_geometry(side, grid, band)
    line = torch.zeros(side, dtype=torch.bool, device=device)
    for k in range(1, grid):
        line[k * tile - band // 2: k * tile + band - band // 2] = True
    return (line[:, None] | line[None, :]).to(torch.float32).view(1, 1, side, side)


@dataclass(frozen=True)
class TileDraws:
    """The random choices for B images: ``perms`` (B, grid²) the non-identity tile permutations, ``noise``
    (B, C, S, S) z for the erased bands (only its values on the bands matter)."""

    perms: Tensor
    noise: Tensor


def draw_tiles(x: Tensor, grid: int, noise_std: float, generator: torch.Generator | None = None) -> TileDraws:
    """:class:`TileDraws` for the images ``x`` (B, C, S, S) (on their device)."""
    perms = tile_permutations(x.shape[0], grid, generator, x.device)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype) * noise_std
    return TileDraws(perms, noise)


def band_inpaint(s: Tensor, mask: Tensor, noise: Tensor, inpainter: Callable[[Tensor], Tensor]) -> Tensor:
    """s ⊙ (1 − M) + F(s ⊙ (1 − M) + z ⊙ M) ⊙ M for ``s`` (B, C, S, S), ``mask`` M (1, 1, S, S), ``noise`` z like
    ``s``: F fills the bands (Eq. 4.3 on the whole image), everything off the bands is ``s`` exactly (Eq. 4.4)."""
    mask = mask.to(s.dtype)
    filled = inpainter(erase(s, mask, noise))
    if filled.shape != s.shape:
        raise ValueError(f"band_inpaint: the inpainter returned {tuple(filled.shape)} for {tuple(s.shape)}")
    return s * (1.0 - mask) + filled * mask


def tile_shuffle_steps(x: Tensor, inpainter: Callable[[Tensor], Tensor] | None, grid: int, band: int,
                       noise_std: float, generator: torch.Generator | None = None
                       ) -> tuple[dict[str, Tensor], TileDraws]:
    """Every step of Fig. 4.1's transformation of ``x`` (B, C, S, S), as (images, draws): ``natural`` (``x``),
    ``tiles shuffled`` (:func:`shuffle_tiles` with :func:`draw_tiles`' non-identity permutations), ``bands erased``
    (the inpainter's input: noise on the bands) and, unless ``inpainter`` is None, ``bands inpainted``
    (:func:`band_inpaint`), each (B, C, S, S). Deterministic for a seeded ``generator``."""
    draws = draw_tiles(x, grid, noise_std, generator)
    mask = band_mask(x.shape[-1], grid, band, x.device)
    shuffled = shuffle_tiles(x, draws.perms, grid)
    steps = {"natural": x, "tiles shuffled": shuffled, "bands erased": erase(shuffled, mask.to(x.dtype), draws.noise)}
    if inpainter is not None:
        steps["bands inpainted"] = band_inpaint(shuffled, mask, draws.noise, inpainter)
    return steps, draws


def tile_shuffle_inpaint(x: Tensor, inpainter: Callable[[Tensor], Tensor] | None, grid: int, band: int,
                         noise_std: float, generator: torch.Generator | None = None) -> tuple[Tensor, TileDraws]:
    """Fig. 4.1's bottom row for ``x`` (B, C, S, S): tiles permuted (:func:`shuffle_tiles` with
    :func:`draw_tiles`' non-identity permutations), bands across the tile borders inpainted by ``inpainter``
    (:func:`band_inpaint`); ``inpainter`` None: the shuffled tiles only, with the same draws (the control without
    an inpainter). Returns (images (B, C, S, S), the draws). Deterministic for a seeded ``generator``."""
    steps, draws = tile_shuffle_steps(x, inpainter, grid, band, noise_std, generator)
    return steps["bands inpainted" if inpainter is not None else "tiles shuffled"], draws

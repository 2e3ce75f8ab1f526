"""Colour pieces of the PixelCNN chapters: sRGB <-> CIE Lab, the ab grid of the chroma DMOL,
perceptual saturation, the 4-bit grayscale auxiliary image and the resolution pyramid.

**sRGB (D65) <-> CIE L*a*b*** (Eqs. 1-4), in torch, batched (B, 3, H, W) or single (3, H, W),
differentiable, on the input's device and dtype. The constants are scikit-image's
(``skimage.color.rgb2lab`` / ``lab2rgb``, CIE 2-degree observer, D65 white), which is what the
PIC reference code converts with, so the two agree to float rounding::

    c_lin = ((c + 0.055) / 1.055) ** 2.4  if c > 0.04045  else c / 12.92            (1, sRGB decode)
    (X, Y, Z) = M (R_lin, G_lin, B_lin),  M = XYZ_FROM_RGB                           (2)
    f(t) = t ** (1/3)  if t > 0.008856  else 7.787 t + 16/116                        (3)
    L = 116 f(Y/Yn) - 16,  a = 500 (f(X/Xn) - f(Y/Yn)),  b = 200 (f(Y/Yn) - f(Z/Zn))  (4)

with (Xn, Yn, Zn) = :data:`D65_WHITE`. :func:`lab_to_rgb` inverts (4), (3), (2), (1) exactly
(``f^-1(u) = u**3 if u > 0.2068966 else (u - 16/116) / 7.787``; a negative ``f(Z/Zn)`` is set
to 0 as scikit-image does) and clips to [0, 1] unless ``clip=False``. L lies in [0, 100]; over
the sRGB gamut a lies in about [-86.2, 98.3] and b in [-107.9, 94.5].

**ab grid of the chroma DMOL** (Eq. 5). PIC models a and b with a discretized mixture of
logistics over 256 bins per channel, exactly as PixelCNN++ models an 8-bit sub-pixel. Decision
(the thesis gives the range a, b in [-128, 127], 256 x 256 values, but not the map): bin
``k = clamp(round(v), -128, 127) + 128`` in 0..255, and the DMOL coordinate of bin k is
``u = k / 127.5 - 1`` in [-1, 1] -- the RGB convention of PixelCNN++ (bin centres 2/255 apart,
half-width 1/255), so the same DMOL code serves both. The continuous map is affine::

    u = (v + 0.5) / 127.5,   v = 127.5 u - 0.5                                        (5)

(v = -128 -> u = -1, v = 127 -> u = 1; every sRGB colour lies well inside the grid).

**Perceptual saturation** (Eq. 6), Lübbe's formula as quoted for CIELAB in the colorimetry
literature (Wikipedia "Colorfulness", CIELAB section, after E. Lübbe, *Colours in the Mind*,
2010); the thesis cites Lübbe [87] without the formula and the study note says "verify": the
retrieved copies of that article show the section but cut off before the formula, so its exact
form is a decision recorded here::

    C*_ab = sqrt(a^2 + b^2),    S = C*_ab / sqrt(C*_ab^2 + L^2)   (0 where C*_ab = L = 0)   (6)

S is in [0, 1] (x 100 for the thesis's percentages, 36.4 % vs 32.7 %);
:func:`perceptual_saturation` averages it over the pixels of each image.

**4-bit grayscale** (Eq. 7), the auxiliary image X̂ of the Grayscale PixelCNN. The thesis does
not state it; the study note suggests BT.601 luma on the 0..255 scale, quantised to 16 levels::

    Y = 0.299 R + 0.587 G + 0.114 B,    X̂ = floor(Y / 16) in 0..15                    (7)

computed in integers (``(299 R + 587 G + 114 B) // 16000``), so no rounding of 0.299 etc. can
move a pixel across a level boundary.

**Pyramid downsampling** (Eq. 8), the auxiliary image of the Pyramid PixelCNN: 2x2 average
pooling, then rounding back onto the 8-bit grid, as FaceGeneration's ``get_pyramid`` +
``quantize`` do. Ties (a block mean ending in .5) round half up (a decision; the demo's rounding
of ties is not documented)::

    x'_{ij} = floor((x_{2i,2j} + x_{2i,2j+1} + x_{2i+1,2j} + x_{2i+1,2j+1} + 2) / 4)    (8)
"""

from __future__ import annotations

import torch
from torch import Tensor

# sRGB (linear) -> XYZ, D65 (skimage.color.colorconv.xyz_from_rgb).
XYZ_FROM_RGB: tuple[tuple[float, float, float], ...] = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# Reference white (Xn, Yn, Zn): D65, CIE 1931 2-degree observer.
D65_WHITE: tuple[float, float, float] = (0.95047, 1.0, 1.08883)
_EPS_F = 0.008856
_KAPPA = 7.787
_F_INV_KNEE = 0.2068966

AB_MIN, AB_MAX = -128, 127
AB_BINS = AB_MAX - AB_MIN + 1  # 256 bins per chroma channel
GRAY4_LEVELS = 16
LUMA_601: tuple[float, float, float] = (0.299, 0.587, 0.114)


def _channels_first(x: Tensor, name: str) -> tuple[Tensor, bool]:
    """(B, 3, H, W) view of ``x`` (a single (3, H, W) image gets a batch axis), and whether it had one."""
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"{name} must be (3, H, W) or (B, 3, H, W), got shape {tuple(x.shape)}")
    return (x, True) if x.ndim == 4 else (x[None], False)


def _as_float_rgb(rgb: Tensor) -> Tensor:
    if rgb.dtype == torch.uint8:
        return rgb.to(torch.float32) / 255.0
    if not torch.is_floating_point(rgb):
        raise TypeError(f"rgb must be uint8 (0..255) or floating ([0, 1]), got {rgb.dtype}")
    return rgb


def _matrix(rows: tuple[tuple[float, ...], ...], like: Tensor) -> Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def srgb_to_linear(c: Tensor) -> Tensor:
    """Eq. (1): the sRGB transfer function undone, elementwise (values in [0, 1])."""
    high = ((c.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(c > 0.04045, high, c / 12.92)


def linear_to_srgb(c: Tensor) -> Tensor:
    """Inverse of Eq. (1), elementwise, not clipped."""
    high = 1.055 * c.clamp(min=0.0031308) ** (1.0 / 2.4) - 0.055
    return torch.where(c > 0.0031308, high, c * 12.92)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB images -> CIE Lab, Eqs. (1)-(4).

    ``rgb``: (B, 3, H, W) or (3, H, W), floating in [0, 1] (dtype kept) or uint8 0..255
    (float32 out). Returns the same shape with channels (L, a, b): L in [0, 100].
    Matches ``skimage.color.rgb2lab`` (channels last there) to float rounding.
    """
    x, batched = _channels_first(_as_float_rgb(rgb), "rgb")
    lin = srgb_to_linear(x)
    xyz = torch.einsum("ij,bjhw->bihw", _matrix(XYZ_FROM_RGB, lin), lin)
    t = xyz / torch.tensor(D65_WHITE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    f = torch.where(t > _EPS_F, t.clamp(min=_EPS_F).pow(1.0 / 3.0), _KAPPA * t + 16.0 / 116.0)
    fx, fy, fz = f.unbind(1)
    lab = torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)
    return lab if batched else lab[0]


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    """CIE Lab -> sRGB in [0, 1]: Eqs. (4), (3), (2), (1) inverted (``skimage.color.lab2rgb``).

    ``lab``: floating (B, 3, H, W) or (3, H, W) with channels (L, a, b). A negative
    ``f(Z/Zn) = (L + 16)/116 - b/200`` is set to 0, as scikit-image does. ``clip=False`` keeps
    out-of-gamut values outside [0, 1].
    """
    if not torch.is_floating_point(lab):
        raise TypeError(f"lab must be floating, got {lab.dtype}")
    x, batched = _channels_first(lab, "lab")
    big_l, a, b = x.unbind(1)
    fy = (big_l + 16.0) / 116.0
    f = torch.stack((a / 500.0 + fy, fy, (fy - b / 200.0).clamp(min=0.0)), dim=1)
    t = torch.where(f > _F_INV_KNEE, f ** 3, (f - 16.0 / 116.0) / _KAPPA)
    xyz = t * torch.tensor(D65_WHITE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    rgb_from_xyz = torch.linalg.inv(_matrix(XYZ_FROM_RGB, x).to(torch.float64)).to(x.dtype)
    rgb = linear_to_srgb(torch.einsum("ij,bjhw->bihw", rgb_from_xyz, xyz))
    if clip:
        rgb = rgb.clamp(0.0, 1.0)
    return rgb if batched else rgb[0]


# --------------------------------------------------------------------------------------------
# The ab grid of the chroma DMOL, Eq. (5)
# --------------------------------------------------------------------------------------------

def ab_to_unit(ab: Tensor) -> Tensor:
    """Eq. (5): a or b values -> DMOL coordinates, ``(v + 0.5) / 127.5`` (-128 -> -1, 127 -> 1)."""
    return (ab + 0.5) / 127.5


def unit_to_ab(u: Tensor) -> Tensor:
    """Inverse of :func:`ab_to_unit`: ``127.5 u - 0.5``."""
    return u * 127.5 - 0.5


def ab_to_bins(ab: Tensor) -> Tensor:
    """a or b values -> bin indices int64 in 0..255: ``clamp(round(v), -128, 127) + 128``."""
    return torch.round(ab).clamp(AB_MIN, AB_MAX).to(torch.int64) - AB_MIN


def bins_to_unit(k: Tensor) -> Tensor:
    """Bin indices 0..255 -> their DMOL coordinates ``k / 127.5 - 1`` (float32)."""
    return k.to(torch.float32) / 127.5 - 1.0


def bins_to_ab(k: Tensor) -> Tensor:
    """Bin indices 0..255 -> the a or b value of the bin centre, ``k - 128`` (float32)."""
    return k.to(torch.float32) + AB_MIN


def quantize_ab(ab: Tensor) -> Tensor:
    """ab values snapped onto the DMOL grid and mapped to [-1, 1] (= bins_to_unit(ab_to_bins(ab)))."""
    return bins_to_unit(ab_to_bins(ab)).to(ab.dtype if torch.is_floating_point(ab) else torch.float32)


# --------------------------------------------------------------------------------------------
# Perceptual saturation, Eq. (6)
# --------------------------------------------------------------------------------------------

def chroma(lab: Tensor) -> Tensor:
    """C*_ab = sqrt(a^2 + b^2): (B, H, W) from Lab (B, 3, H, W), or (H, W) from (3, H, W)."""
    x, batched = _channels_first(lab, "lab")
    c = torch.sqrt(x[:, 1] ** 2 + x[:, 2] ** 2)
    return c if batched else c[0]


def saturation_map(lab: Tensor) -> Tensor:
    """Eq. (6) per pixel: S = C*_ab / sqrt(C*_ab^2 + L^2) in [0, 1] (0 for L = C*_ab = 0).

    (B, H, W) from Lab (B, 3, H, W), or (H, W) from (3, H, W).
    """
    x, batched = _channels_first(lab, "lab")
    c = torch.sqrt(x[:, 1] ** 2 + x[:, 2] ** 2)
    denom = torch.sqrt(c ** 2 + x[:, 0] ** 2)
    s = torch.where(denom > 0, c / denom.clamp(min=torch.finfo(x.dtype).tiny), torch.zeros_like(c))
    return s if batched else s[0]


def perceptual_saturation(lab: Tensor) -> Tensor:
    """Average perceptual saturation of each image, Eq. (6) averaged over its pixels.

    Lab (B, 3, H, W) -> (B,); (3, H, W) -> a scalar. A fraction in [0, 1] (the thesis reports
    percentages: multiply by 100). For RGB input use ``perceptual_saturation(rgb_to_lab(rgb))``.
    """
    return saturation_map(lab).flatten(-2).mean(-1)


# --------------------------------------------------------------------------------------------
# 4-bit grayscale, Eq. (7), and pyramid downsampling, Eq. (8)
# --------------------------------------------------------------------------------------------

def _as_uint8_grid(x: Tensor, name: str) -> Tensor:
    if torch.is_floating_point(x) or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer image on the 8-bit grid (uint8 0..255), got {x.dtype}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) > 255):
        raise ValueError(f"{name} must hold values in 0..255, got [{int(x.min())}, {int(x.max())}]")
    return x.to(torch.int64)


def luma(rgb: Tensor) -> Tensor:
    """Eq. (7), first part: BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B on the 0..255 scale.

    ``rgb`` uint8 (B, 3, H, W) or (3, H, W) -> float32 (B, 1, H, W) or (1, H, W).
    """
    x, batched = _channels_first(_as_uint8_grid(rgb, "rgb"), "rgb")
    y = (299 * x[:, 0:1] + 587 * x[:, 1:2] + 114 * x[:, 2:3]).to(torch.float32) / 1000.0
    return y if batched else y[0]


def gray4(rgb: Tensor) -> Tensor:
    """Eq. (7): the 4-bit grayscale image X̂ = floor(Y / 16), exact integer arithmetic.

    ``rgb`` uint8 (B, 3, H, W) or (3, H, W) -> uint8 (B, 1, H, W) or (1, H, W) in 0..15.
    """
    x, batched = _channels_first(_as_uint8_grid(rgb, "rgb"), "rgb")
    q = ((299 * x[:, 0:1] + 587 * x[:, 1:2] + 114 * x[:, 2:3]) // 16000).to(torch.uint8)
    return q if batched else q[0]


def gray4_to_rgb(levels: Tensor) -> Tensor:
    """Display a 4-bit image: level q -> grey 16 q + 8 (the centre of its luma interval), uint8,
    repeated over 3 channels. (B, 1, H, W) -> (B, 3, H, W); (1, H, W) -> (3, H, W)."""
    q = _as_uint8_grid(levels, "levels")
    if q.ndim not in (3, 4) or q.shape[-3] != 1:
        raise ValueError(f"levels must be (1, H, W) or (B, 1, H, W), got shape {tuple(q.shape)}")
    if q.numel() and int(q.max()) >= GRAY4_LEVELS:
        raise ValueError(f"levels must be in 0..{GRAY4_LEVELS - 1}, got max {int(q.max())}")
    g = (16 * q + 8).to(torch.uint8)
    return g.expand(*g.shape[:-3], 3, *g.shape[-2:]).contiguous()


def pyramid_down(x: Tensor) -> Tensor:
    """Eq. (8): 2x2 average pooling rounded (half up) back onto the 8-bit grid.

    ``x`` integer (uint8) (B, C, H, W) or (C, H, W) with even H and W -> uint8 at (H/2, W/2).
    """
    v = _as_uint8_grid(x, "x")
    if v.ndim not in (3, 4):
        raise ValueError(f"x must be (C, H, W) or (B, C, H, W), got shape {tuple(v.shape)}")
    h, w = v.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"pyramid_down needs even height and width, got {h}x{w}")
    blocks = v.reshape(*v.shape[:-2], h // 2, 2, w // 2, 2).sum(dim=(-3, -1))
    return torch.div(blocks + 2, 4, rounding_mode="floor").to(torch.uint8)


def image_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[x, down(x), down(down(x)), ...]`` with ``levels`` entries (entry i at resolution
    H / 2^i), by Eq. (8). ``levels=4`` on 32x32 gives 32, 16, 8, 4."""
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    out = [_as_uint8_grid(x, "x").to(torch.uint8)]
    for _ in range(levels - 1):
        out.append(pyramid_down(out[-1]))
    return out

"""Random image warps by polyharmonic-spline interpolation of shifted control points (Jenni ch. 4, LCI).

The warp transformation of the LCI classifier moves a few control points by a random offset and
interpolates the displacement over the image with a polyharmonic spline of order 2 (the thin-plate
spline, φ(r) = r² log r), then resamples the image (the official code uses TensorFlow Addons'
``sparse_image_warp``, whose convention is kept here: the pixel at a destination point is read from
its source point).

Spline (the standard form; the thesis names the method, not the equations): with centres
c_1..c_K (the destination points) and values f_i (the displacement src_i − dst_i),
s(x) = Σ_i w_i φ(‖x − c_i‖) + v_0 + vᵀx, where
[A P; Pᵀ 0][w; v] = [f; 0], A_ij = φ(‖c_i − c_j‖), P_i = (1, c_iᵀ). It reproduces affine
displacements exactly. The warped image is I'(x) = I(x + s(x)) (bilinear, border values repeated).

Coordinates are pixel (row, column) pairs. Shapes: images (B, C, H, W); points (B, K, 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _phi(r2: torch.Tensor) -> torch.Tensor:
    """Thin-plate kernel r² log r from squared distances (0 at r = 0)."""
    return 0.5 * r2 * torch.log(r2.clamp_min(1e-12))


def spline_coefficients(centres: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(w (B, K, D), v (B, 3, D)): the order-2 polyharmonic spline through ``values`` (B, K, D)
    at ``centres`` (B, K, 2)."""
    b, k, _ = centres.shape
    c = centres.double()
    a = _phi(torch.cdist(c, c) ** 2)                                             # (B, K, K)
    p = torch.cat([torch.ones(b, k, 1, dtype=c.dtype, device=c.device), c], dim=2)  # (B, K, 3)
    top = torch.cat([a, p], dim=2)
    bottom = torch.cat([p.transpose(1, 2), torch.zeros(b, 3, 3, dtype=c.dtype, device=c.device)], dim=2)
    lhs = torch.cat([top, bottom], dim=1)                                        # (B, K+3, K+3)
    rhs = torch.cat([values.double(), torch.zeros(b, 3, values.shape[2], dtype=c.dtype, device=c.device)], dim=1)
    sol = torch.linalg.solve(lhs, rhs)
    return sol[:, :k], sol[:, k:]


def evaluate_spline(centres: torch.Tensor, w: torch.Tensor, v: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """s(points): (B, N, D) for ``points`` (B, N, 2)."""
    q = points.double()
    kernel = _phi(torch.cdist(q, centres.double()) ** 2)                         # (B, N, K)
    affine = torch.cat([torch.ones(*q.shape[:2], 1, dtype=q.dtype, device=q.device), q], dim=2)
    return kernel @ w + affine @ v


def warp_coordinates(source: torch.Tensor, dest: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The read map of :func:`sparse_warp`: (B, H, W, 2) float64 pixel (row, column) from which each output pixel
    of an H x W image is read, for control points moved from ``source`` to ``dest`` (B, K, 2)."""
    b = source.shape[0]
    wts, aff = spline_coefficients(dest, source - dest)
    rows, cols = torch.meshgrid(torch.arange(h, device=source.device, dtype=torch.float64),
                                torch.arange(w, device=source.device, dtype=torch.float64), indexing="ij")
    grid = torch.stack([rows, cols], dim=-1).reshape(1, h * w, 2).expand(b, -1, -1)
    return (grid + evaluate_spline(dest, wts, aff, grid)).reshape(b, h, w, 2)


def jacobian_determinant(read: torch.Tensor) -> torch.Tensor:
    """det ∂read/∂x (B, H−1, W−1) of a read map (B, H, W, 2) by forward differences. Positive everywhere: the
    warp is one-to-one and keeps orientation; ≤ 0 somewhere: it folds (mirrored or duplicated content)."""
    dr = read[:, 1:, :-1] - read[:, :-1, :-1]                                    # ∂/∂row
    dc = read[:, :-1, 1:] - read[:, :-1, :-1]                                    # ∂/∂column
    return dr[..., 0] * dc[..., 1] - dr[..., 1] * dc[..., 0]


def sparse_warp(images: torch.Tensor, source: torch.Tensor, dest: torch.Tensor) -> torch.Tensor:
    """Warp ``images`` so that the content at ``source`` points moves to ``dest`` points (B, K, 2)."""
    b, _, h, w = images.shape
    read = warp_coordinates(source, dest, h, w)                                  # (B, H, W, 2) pixel coords
    norm = torch.stack([read[..., 1] / max(w - 1, 1), read[..., 0] / max(h - 1, 1)], dim=-1) * 2 - 1
    return F.grid_sample(images, norm.to(images.dtype), mode="bilinear",
                         padding_mode="border", align_corners=True)


def random_warp(images: torch.Tensor, n_points: int = 16, max_shift: float = 1 / 10,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """LCI's warp: ``n_points`` random control points, each moved by up to ``max_shift`` x side in each axis.

    The thesis places the points on a grid and shifts them by d = 1/10 of the side; the official code
    draws them at random with d = 1/16 (study note 004: an ambiguity). Points are drawn uniformly inside
    the image, shifts uniformly in [−d·side, d·side]; a shifted point that leaves the image is reflected
    back in at the border; the four corners are pinned so the border stays.
    """
    b, _, h, w = images.shape
    dev = images.device
    size = torch.tensor([h - 1, w - 1], dtype=torch.float64, device=dev)
    pts = torch.rand(b, n_points, 2, generator=generator, device=dev, dtype=torch.float64) * size
    shift = (torch.rand(b, n_points, 2, generator=generator, device=dev, dtype=torch.float64) * 2 - 1)
    return _shift_points(images, pts, shift * max_shift * size)


def grid_warp(images: torch.Tensor, grid: int = 4, max_shift: float = 1 / 10,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """LCI's warp as the thesis states it (Jenni §4.2, T_4): control points on a uniform ``grid`` x ``grid``
    lattice, each shifted by an offset drawn uniformly from [−d, d]² with d = ``max_shift`` x side
    ("typically 1/10-th of the image size"), the dense flow interpolated by the polyharmonic spline.

    The lattice is interior: point (i, j) sits at ((i + 1) / (grid + 1), (j + 1) / (grid + 1)) x (side − 1),
    so no control point lies on the border; the four corners are pinned (as in :func:`random_warp`) and a
    shifted point that leaves the image is reflected back in. ``max_shift = 0`` is the identity.
    images (B, C, H, W) -> (B, C, H, W). (The official code instead draws 16 random points with
    d = side / 16: :func:`random_warp`.)
    """
    b, _, h, w = images.shape
    return sparse_warp(images, *grid_control_points(b, h, w, grid, max_shift, generator, images.device))


def grid_control_points(b: int, h: int, w: int, grid: int = 4, max_shift: float = 1 / 10,
                        generator: torch.Generator | None = None, device: torch.device | str = "cpu"
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(source, dest) (B, grid² + 4, 2) of :func:`grid_warp` for B images of H x W: the interior lattice and its
    shifted copy (reflected into the image), then the four pinned corners. The same draws as :func:`grid_warp`
    with the same generator; ``warp_coordinates(*grid_control_points(...), h, w)`` is its read map.

    Folding: neighbouring lattice points lie side/(grid + 1) apart and each moves by up to d·side per axis, so
    the map stays one-to-one only while 2·d is well below 1/(grid + 1) (d = 1/10: grid 2; grid 4 folds in about a
    third of the draws)."""
    if grid < 1:
        raise ValueError(f"grid_warp: grid must be >= 1, got {grid}")
    if max_shift < 0:
        raise ValueError(f"grid_warp: max_shift must be >= 0, got {max_shift}")
    size = torch.tensor([h - 1, w - 1], dtype=torch.float64, device=device)
    frac = torch.arange(1, grid + 1, dtype=torch.float64, device=device) / (grid + 1)
    rows, cols = torch.meshgrid(frac, frac, indexing="ij")
    pts = (torch.stack([rows, cols], dim=-1).reshape(1, grid * grid, 2) * size).expand(b, -1, -1)
    shift = torch.rand(b, grid * grid, 2, generator=generator, device=device, dtype=torch.float64) * 2 - 1
    return _control_points(pts, shift * max_shift * size, h, w)


def _shift_points(images: torch.Tensor, points: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Warp ``images`` (B, C, H, W) moving ``points`` (B, K, 2) by ``shift`` (B, K, 2) pixels (reflected back
    into the image), with the four corners pinned."""
    return sparse_warp(images, *_control_points(points, shift, *images.shape[-2:]))


def _control_points(points: torch.Tensor, shift: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(source, dest) (B, K + 4, 2): ``points`` and ``points + shift`` reflected into the image, then the corners."""
    b = points.shape[0]
    size = torch.tensor([h - 1, w - 1], dtype=torch.float64, device=points.device)
    corners = torch.tensor([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1]], dtype=torch.float64,
                           device=points.device).expand(b, -1, -1)
    src = torch.cat([points, corners], dim=1)
    dst = torch.cat([_reflect_into(points + shift, size), corners], dim=1)
    return src, dst


def _reflect_into(points: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Fold points lying outside [0, size] back inside by reflection at the border.

    Clamping (the earlier rule) mapped every point pushed past a corner onto that corner, a pinned
    control point, and any two points pushed past the same corner onto one place: duplicate spline
    centres make the system of :func:`spline_coefficients` singular. Reflection is one-to-one on
    [−size, 2·size] (shifts are at most a fraction of the side), so distinct points stay distinct.
    """
    low = points.abs()
    return size - (size - low).abs()

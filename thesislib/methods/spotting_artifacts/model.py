"""The networks of *learning to spot artifacts* (Jenni thesis ch. 3, Jenni & Favaro CVPR 2018).

* :class:`Encoder` E: ``(c0)3c1`` then ``(c_i)kc2`` layers (k = 2 in the thesis), each conv followed by
  BatchNorm and leaky ReLU max(x, 0.1x). With k = 2 and stride 2 the receptive field of a latent
  entry is RF = 3 + sum_i 2^(i-1) = stride + 2: 18 px at stride 16 for the thesis's four stride-2
  layers (a dropped entry = an 18x18 patch overlapping its neighbours by 1 px on each side), 6 px at
  stride 4 for the two-layer smoke encoder (:func:`receptive_field`).
* :class:`Decoder` D: one resize-conv x2 stage per stride-2 encoder layer (``D_1 .. D_n``, BN + leaky
  ReLU), then a 3x3 conv with tanh (``D_{n+1}``): images in [-1, 1].
* :func:`drop_mask` and :func:`damage`: Ω ∈ {0,1}^{M x N} with P(Ω_ij = 0) = θ (all L channels of a
  position together), φ̂ = Ω ⊙ φ + (1 − Ω) ⊙ (u ∗ φ), u a 3x3 box filter (stride 1, SAME padding
  that averages only inside the map; [code]).
* :class:`RepairBlock` R_i: shortcut + (1 − U(Ω)) ⊙ conv3x3(ReLU(BN(conv3x3([h, U(Ω)])))) (Eqs. 3.1-3.2,
  Fig. 3.5): it can change only the dropped positions. :class:`DamageRepair` threads R_1 .. R_{n+1}
  through the frozen decoder: the input of D_i is D_{i−1} + (1 − U_{i−1}(Ω)) ⊙ R_i(D_{i−1}).
* :class:`Discriminator` C: the ch. 3 AlexNet (LRN, two groups, BN after conv5 only, no pool5), a
  hidden fc layer and a real/corrupt logit (C^class), and a 3x3 conv on conv5 giving the M x N mask
  logits (C^mask). The conv5 grid must equal the latent grid.
* :class:`HistoryBuffer`: past corrupted images and their masks (Shrivastava et al. 2017); half of
  each batch's corrupted examples are replaced by stored ones once the buffer holds any.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from thesislib.config import ConfigError
from thesislib.nn.alexnet import SamePad2d, spot_artifacts_discriminator_trunk
from thesislib.nn.resize_conv import resize_conv_decoder

RepairMode = Literal["distributed", "local", "none"]
LEAK = 0.1


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> tuple[int, int]:
    """(receptive field, total stride) of a chain of convolutions: RF = 1 + sum_l (k_l − 1) prod_{j<l} s_j."""
    rf, jump = 1, 1
    for k, s in zip(kernels, strides):
        rf += (k - 1) * jump
        jump *= s
    return rf, jump


def _conv_bn_act(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(SamePad2d(kernel, stride), nn.Conv2d(cin, cout, kernel, stride, bias=False),
                         nn.BatchNorm2d(cout), nn.LeakyReLU(LEAK))


class Encoder(nn.Module):
    """E: (B, C, H, W) in [-1, 1] -> φ (B, channels[-1], H / 2^n, W / 2^n), n = len(channels) − 1."""

    def __init__(self, in_channels: int, channels: Sequence[int], kernel: int = 2) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError("the encoder needs a 3c1 layer and at least one stride-2 layer")
        layers = [_conv_bn_act(in_channels, channels[0], 3, 1)]
        layers += [_conv_bn_act(a, b, kernel, 2) for a, b in zip(channels[:-1], channels[1:])]
        self.layers = nn.Sequential(*layers)
        self.kernels = [3] + [kernel] * (len(channels) - 1)
        self.strides = [1] + [2] * (len(channels) - 1)

    @property
    def receptive_field(self) -> tuple[int, int]:
        return receptive_field(self.kernels, self.strides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Decoder(nn.Module):
    """D: φ (B, channels[-1], M, N) -> image (B, out_channels, 2^n M, 2^n N) in [-1, 1].

    ``stages[i]`` is D_{i+1} (resize-conv x2 to ``channels[-2-i]``, BN, leaky ReLU); ``out`` is the last
    layer (3x3 conv, tanh).
    """

    def __init__(self, out_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        rev = list(channels)[::-1]
        net = resize_conv_decoder(rev[0], rev[1:], out_channels, negative_slope=LEAK)  # the shared stack
        self.stages = nn.ModuleList(getattr(net, f"stage{i}") for i in range(len(rev) - 1))
        self.out = net.out
        self.widths = rev  # channels entering D_1 .. D_{n+1}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            z = stage(z)
        return self.out(z)


class AutoEncoder(nn.Module):
    """{E, D}, pre-trained for reconstruction (Eq. 3.3) before damage & repair."""

    def __init__(self, in_channels: int, channels: Sequence[int], kernel: int = 2) -> None:
        super().__init__()
        self.encoder = Encoder(in_channels, channels, kernel)
        self.decoder = Decoder(in_channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def drop_mask(batch: int, grid: tuple[int, int], drop_rate: float, device: torch.device | str,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Ω, float (B, 1, M, N): 0 (dropped) with probability ``drop_rate`` θ, else 1, independently per position."""
    u = torch.rand(batch, 1, *grid, device=device, generator=generator)
    return (u >= drop_rate).float()


def local_average(phi: torch.Tensor) -> torch.Tensor:
    """u ∗ φ: 3x3 box average, stride 1, over the positions inside the map (TensorFlow's SAME avg-pool)."""
    return F.avg_pool2d(phi, 3, 1, 1, count_include_pad=False)


def damage(phi: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """φ̂ = Ω ⊙ φ + (1 − Ω) ⊙ (u ∗ φ); φ (B, L, M, N), Ω (B, 1, M, N)."""
    return omega * phi + (1.0 - omega) * local_average(phi)


def upsample_mask(omega: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """U(Ω): nearest-neighbour upsampling of (B, 1, M, N) to (B, 1, *size)."""
    return F.interpolate(omega, size=size, mode="nearest")


class RepairBlock(nn.Module):
    """R: h + (1 − m) ⊙ conv2(ReLU(BN(conv1([h, m])))), m the mask at h's resolution.

    ``gated=False`` is ablation (e) of Table 3.1: h + conv2(...), which can also change kept positions.
    """

    def __init__(self, channels: int, hidden: int | None = None, gated: bool = True) -> None:
        super().__init__()
        hidden = hidden or channels
        self.conv1 = nn.Conv2d(channels + 1, hidden, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, channels, 3, 1, 1)
        self.gated = gated

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        residual = self.conv2(F.relu(self.bn(self.conv1(torch.cat([h, mask], dim=1)))))
        return h + ((1.0 - mask) * residual if self.gated else residual)


class DamageRepair(nn.Module):
    """The corruption generator: frozen {E, D} plus repair blocks R_1 .. R_{n+1} (trainable).

    ``repair="distributed"``: a block before every decoder layer (the thesis); ``"local"``: the same
    number of blocks, all of the latent code's width, applied consecutively before D_1 (ablation (c));
    ``"none"``: no repair (the Fig. 3.3 "without repair" images).
    The autoencoder stays in eval mode (its BatchNorm statistics frozen) whatever ``train()`` is called
    with, and its parameters are frozen.
    """

    ddp_broadcast_buffers = False
    """Under DDP each rank keeps its own buffers: the history buffer holds that rank's corruptions (rank 0's
    would otherwise overwrite the others' at every forward); the frozen autoencoder's statistics are
    equal on all ranks anyway, and R's BatchNorm statistics stay per rank (rank 0's are saved). A resume
    under torchrun therefore gives every rank rank 0's history and BN statistics: not exact (one process is)."""

    def __init__(self, autoencoder: AutoEncoder, repair: RepairMode = "distributed", gated: bool = True) -> None:
        super().__init__()
        if repair not in ("distributed", "local", "none"):
            raise ValueError(f"repair must be 'distributed', 'local' or 'none', got {repair!r}")
        self.ae = autoencoder
        for p in self.ae.parameters():
            p.requires_grad_(False)
        widths = autoencoder.decoder.widths
        # positions[j]: the decoder layer D_{positions[j]+1} that block j precedes. Distributed: one block
        # before every layer. Local (thesis §3.4.1 (c)): "the five repair layers consecutively before the
        # first decoder layer", i.e. as many blocks as the distributed case, all on the latent code.
        positions = {"distributed": list(range(len(widths))), "local": [0] * len(widths), "none": []}[repair]
        self.repairs = nn.ModuleList(RepairBlock(widths[i], gated=gated) for i in positions)
        self.positions = positions
        self.repair_mode = repair

    def train(self, mode: bool = True) -> DamageRepair:
        super().train(mode)
        self.ae.eval()
        return self

    def _repair(self, i: int, h: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """The blocks placed before decoder layer D_{i+1}, applied one after another."""
        blocks = [block for block, at in zip(self.repairs, self.positions) if at == i]
        if not blocks:
            return h
        mask = upsample_mask(omega, tuple(h.shape[-2:]))
        for block in blocks:
            h = block(h, mask)
        return h

    def decode(self, phi_hat: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """D̂(φ̂): the decoder with the repair blocks threaded in (Eqs. 3.1, 3.2)."""
        h = self._repair(0, phi_hat, omega)
        for i, stage in enumerate(self.ae.decoder.stages, start=1):
            h = self._repair(i, stage(h), omega)
        return self.ae.decoder.out(h)

    @torch.no_grad()
    def autoencode(self, x: torch.Tensor) -> torch.Tensor:
        """D(E(x)): the "real" images the discriminator sees (replication through the decoder)."""
        return self.ae(x)

    @torch.no_grad()
    def damaged(self, x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """D(damage(E(x), Ω)): the same damage decoded without repair (Fig. 3.3's "without repair")."""
        return self.ae.decoder(damage(self.ae.encoder(x), omega))

    def forward(self, x: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        """x̂ = D̂(damage(E(x), Ω)), (B, C, H, W)."""
        with torch.no_grad():
            phi = self.ae.encoder(x)
        return self.decode(damage(phi, omega), omega)


class Discriminator(nn.Module):
    """C: AlexNet conv1-5 (ch. 3 variant), fc + real/corrupt logit, and the 3x3-conv mask head.

    ``forward(x)`` -> (class logits (B,) (positive = real), mask logits (B, M, N) (positive = kept)).
    ``grid``: the latent grid M; when given, a dry pass checks that conv5 has it (:class:`ConfigError` if not).
    The paper's 2-way softmax is one logit here (the same model: softmax over (a, b) = sigmoid(a − b)).
    """

    def __init__(self, in_channels: int, image_size: int, width: float, hidden: int,
                 conv1_kernel: int, conv1_stride: int, mask_head: bool = True, grid: int | None = None) -> None:
        super().__init__()
        self.trunk = spot_artifacts_discriminator_trunk(width=width, conv1_kernel=conv1_kernel,
                                                        conv1_stride=conv1_stride, in_channels=in_channels,
                                                        input_size=image_size)
        if grid is not None:
            self.trunk.eval()  # the dry pass must not move BatchNorm's running statistics
            with torch.no_grad():
                side = self.trunk.conv_layers(torch.zeros(1, in_channels, image_size, image_size))["conv5"].shape[-1]
            self.trunk.train()
            if side != grid:
                raise ConfigError(
                    f"Discriminator: C's conv5 grid is {side}x{side} but the drop mask's latent grid is {grid}x{grid}; "
                    f"the mask head needs them equal (image_size={image_size}, conv1_kernel={conv1_kernel}, "
                    f"conv1_stride={conv1_stride}; the latent grid is image_size / 2^(len(encoder_channels) - 1))")
        self.fc = nn.Sequential(nn.Linear(self.trunk.trunk_features, hidden), nn.ReLU(inplace=True))
        self.cls = nn.Linear(hidden, 1)
        self.mask_head = nn.Conv2d(self.trunk.channels[-1], 1, 3, 1, 1) if mask_head else None

    def conv_layers(self, x: torch.Tensor, upto: str = "conv5") -> dict[str, torch.Tensor]:
        return self.trunk.conv_layers(x, upto)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        conv5 = self.trunk.conv_layers(x)["conv5"]
        logit = self.cls(self.fc(conv5.flatten(1)))[:, 0]
        mask = self.mask_head(conv5)[:, 0] if self.mask_head is not None else None
        return logit, mask


class HistoryBuffer(nn.Module):
    """A ring buffer of ``capacity`` corrupted images (and masks), stored as module buffers (checkpointed).

    :meth:`mix` replaces the first half of a batch by random stored examples when the buffer holds
    any (tensor arithmetic only: no host sync); :meth:`push` stores a batch.
    """

    def __init__(self, capacity: int, image_shape: Sequence[int], grid: Sequence[int]) -> None:
        super().__init__()
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.register_buffer("images", torch.zeros(capacity, *image_shape))
        self.register_buffer("masks", torch.ones(capacity, 1, *grid))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @property
    def capacity(self) -> int:
        return self.images.shape[0]

    def mix(self, images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
        half = images.shape[0] // 2
        if half == 0:
            return images, masks
        pick = (torch.rand(half, device=images.device, generator=generator) * self.filled.clamp_min(1)).long()
        use = (self.filled > 0).view(1, 1, 1, 1)
        out_i = torch.cat([torch.where(use, self.images[pick].to(images.dtype), images[:half]), images[half:]])
        out_m = torch.cat([torch.where(use, self.masks[pick], masks[:half]), masks[half:]])
        return out_i, out_m

    @torch.no_grad()
    def push(self, images: torch.Tensor, masks: torch.Tensor) -> None:
        n = min(images.shape[0], self.capacity)
        slots = (self.pointer + torch.arange(n, device=self.pointer.device)) % self.capacity
        self.images.index_copy_(0, slots, images[:n].detach().to(self.images.dtype))
        self.masks.index_copy_(0, slots, masks[:n].detach().to(self.masks.dtype))
        self.pointer.copy_((self.pointer + n) % self.capacity)
        self.filled.copy_((self.filled + n).clamp_max(self.capacity))

"""Krähenbühl et al.'s data-dependent initialisation and rescaling of a conv net (ICLR 2016), and BN folding.

The transfer protocol of the self-supervised chapters (Jenni ch. 3-4, study note 004 §0) rescales
the transferred network before fine-tuning so that every layer trains at a similar rate; ch. 4
first absorbs each BatchNorm into the preceding convolution. Three steps, each a function here:

1. :func:`fold_batchnorm`: a conv / linear layer followed by BatchNorm (eval mode) is the affine map
   ``y = γ (W x + b − μ) / sqrt(σ² + ε) + β``; with ``s = γ / sqrt(σ² + ε)`` per output channel it is
   the single layer ``W' = s W``, ``b' = s (b − μ) + β``, and the BN becomes the identity. Exact in
   eval mode (up to float rounding).
2. :func:`within_layer_init` (the paper's Algorithm 1, "within-layer initialisation"): for each given
   layer k in network order, its pre-activation ``z_k = W_k x + b_k`` is measured on a batch of
   data (with the earlier layers already treated); every output channel i gets mean ``β`` and
   standard deviation ``σ_target`` (the paper: β = 0, 1) by ``W_k(i,:) ← σ_target W_k(i,:) / σ_i``,
   ``b_k(i) ← σ_target (b_k(i) − μ_i) / σ_i + β``, where μ_i, σ_i are the channel's mean and standard
   deviation over the batch (and, for a conv, over positions).
3. :func:`between_layer_rescale` (Algorithm 2, "between-layer normalisation"): the change rate of
   layer k, ``C_k = E ||∇_{W_k} ℓ||² / ||W_k||²``, is estimated with random unit-Gaussian gradients
   at the output (``ℓ = <f(x), η>``, η ~ N(0, I)); each layer's weights are scaled by
   ``α_k = (sqrt(C_k) / r̄)^{1/2}`` with ``r̄`` the geometric mean of the ``sqrt(C_k)``, so that all
   layers reach the common rate r̄, and its bias by ``α_k`` times the factor by which its input's
   mean absolute value changed (the scaling of the earlier layers, measured on the batch). For a
   positively homogeneous network (conv, linear, ReLU, max / average pooling; not LRN or BN), the
   input of layer k is scaled by exactly ``∏_{j<k} α_j`` and the output by ``∏_k α_k``, which is 1
   because r̄ is the geometric mean: **the network's function is unchanged** and only the
   relative speed of the layers under gradient descent moves. Iterated (``iterations``, stopping
   when every ``log r_k`` is within ``tol`` of ``log r̄``) for non-homogeneous layers and the noise
   of the estimate.

:func:`krahenbuhl_rescale` chains them the way the transfer protocol uses them: fold BN, initialise
the *new* layers (the fc head) within-layer, rescale all layers between-layer.

Differences to the reference implementation (``philkr/magic_init``, Caffe), decisions here: its
target rate also multiplies r̄ by ``output_std^{1/K}`` (pulling the output's scale towards 1);
here r̄ is the plain geometric mean so the function is kept exactly; the within-layer statistics are
the paper's per-channel mean / standard deviation (its ``elwise`` type), not its PCA/ZCA/k-means
variants; the expectation over the output noise η is a mean over ``samples`` fixed draws (magic_init draws
one new η per iteration), on one batch (magic_init averages ``NIT`` = 10 batches: pass a larger batch
for the same effect). Two more, in the within-layer step: the target mean is β = 0 (magic_init's
command line defaults to ``-b 0.1``, i.e. every new unit's pre-activation has mean 0.1; the paper's
Algorithm 1 is stated for a free β, we take 0); and the new layers' weights are kept as PyTorch drew
them (uniform, Kaiming-style bounds) and only normalised, where magic_init's ``elwise`` type first
re-draws them N(0, 1): after the per-channel normalisation both are random directions with the same
per-channel statistics, so only the distribution of the direction differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

Layer = nn.Conv2d | nn.Linear
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def parameter_layers(model: nn.Module) -> list[Layer]:
    """Every ``nn.Conv2d`` and ``nn.Linear`` of ``model`` in ``modules()`` order (the network order for
    sequential nets)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@torch.no_grad()
def fold_into(layer: Layer, bn: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
    """Absorb the eval-mode ``bn`` into ``layer`` in place: ``W' = s W``, ``b' = s (b − μ) + β`` with
    ``s = γ / sqrt(σ² + ε)`` per output channel (``W`` (C_out, ...), ``b`` (C_out,)); a layer without
    bias gets one."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fold_into: the BatchNorm keeps no running statistics (track_running_stats=False)")
    if bn.num_features != layer.weight.shape[0]:
        raise ValueError(f"fold_into: BatchNorm has {bn.num_features} channels, the layer {layer.weight.shape[0]}")
    gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    scale = gamma / torch.sqrt(bn.running_var + bn.eps)
    bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    new_bias = scale * (bias - bn.running_mean) + beta
    layer.weight.mul_(scale.view(-1, *([1] * (layer.weight.dim() - 1))))
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias.detach().clone())
    else:
        layer.bias.copy_(new_bias)


def used_modules(model: nn.Module, batch: torch.Tensor) -> list[nn.Module]:
    """The conv / linear / BatchNorm modules of ``model`` that run when ``model(batch)`` does (eval mode, no
    gradient), in the order they finish (the network order). Parts of ``model`` that the forward pass skips
    (e.g. the unused fc layers and classifier of a network wrapped by
    :class:`thesislib.eval.transfer.ConvFeatures`) are not in it."""
    seen: dict[int, nn.Module] = {}

    def hook(mod: nn.Module, _inputs: Any, _output: Any) -> None:  # returns None: the output is kept
        seen.setdefault(id(mod), mod)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear, *_NORMS))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return list(seen.values())


def fold_batchnorm(model: nn.Module, only: Sequence[nn.Module] | None = None) -> int:
    """Fold every BatchNorm that directly follows a conv / linear layer inside an ``nn.Sequential`` of
    ``model`` into that layer and replace it by ``nn.Identity`` (in place). Returns how many were
    folded. A BatchNorm anywhere else (not after a conv / linear in the same Sequential) raises
    ValueError naming it: its statistics cannot be absorbed by a preceding layer. ``only``: fold (and
    check) just these BatchNorms, leaving the others as they are (:func:`krahenbuhl_rescale` passes the
    ones that run, :func:`used_modules`). Only the ``nn.Sequential`` layout is handled: a BatchNorm
    held as a plain attribute (ResNet-style blocks) is reported, not folded."""
    chosen = None if only is None else {id(m) for m in only}
    folded = 0
    for parent in model.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for i, name in enumerate(names):
            child = parent._modules[name]
            before = parent._modules[names[i - 1]] if i > 0 else None
            if (isinstance(child, _NORMS) and isinstance(before, (nn.Conv2d, nn.Linear))
                    and (chosen is None or id(child) in chosen)):
                fold_into(before, child)
                parent._modules[name] = nn.Identity()
                folded += 1
    left = [n for n, m in model.named_modules() if isinstance(m, _NORMS) and (chosen is None or id(m) in chosen)]
    if left:
        raise ValueError(f"fold_batchnorm: BatchNorm layer(s) {left} do not follow a conv / linear layer in a "
                         "Sequential and cannot be folded")
    return folded


def _channel_stats(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (biased) std of a pre-activation (B, C) or (B, C, H, W), in float64."""
    flat = z.detach().double().transpose(0, 1).reshape(z.shape[1], -1)
    return flat.mean(dim=1), flat.std(dim=1, unbiased=False)


def _capture(model: Callable[[torch.Tensor], Any], layer: nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    """The ``what`` ("input" or "output") of ``layer`` when ``model(x)`` runs."""
    seen: list[torch.Tensor] = []

    def hook(_: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        # a copy: a later in-place op (ReLU(inplace=True) after the layer) would otherwise overwrite it
        seen.append((inputs[0] if what == "input" else output).detach().clone())

    handle = layer.register_forward_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    if not seen:
        raise ValueError(f"layer {layer} is not used when the model runs")
    return seen[0]


@torch.no_grad()
def within_layer_init(model: nn.Module, layers: Sequence[Layer], batch: torch.Tensor, mean: float = 0.0,
                      std: float = 1.0, eps: float = 1e-8) -> None:
    """Algorithm 1 on ``layers`` (in network order; see the module docstring): afterwards each output
    channel of each layer's pre-activation has mean ``mean`` and standard deviation ``std`` over
    ``batch`` (B, ...) (and positions). A channel that is constant on the batch (σ_i < ``eps``) keeps
    its weights and only gets its mean moved. ``model`` is put in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        for layer in layers:
            mu, sigma = _channel_stats(_capture(model, layer, batch, "output"))
            keep = sigma < eps
            scale = torch.where(keep, torch.ones_like(sigma), std / sigma.clamp_min(eps))
            w = layer.weight
            w.mul_(scale.to(w.dtype).view(-1, *([1] * (w.dim() - 1))))
            bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(mu)
            new_bias = (scale * (bias - mu) + mean).to(w.dtype)
            if layer.bias is None:
                layer.bias = nn.Parameter(new_bias)
            else:
                layer.bias.copy_(new_bias)
    finally:
        model.train(was_training)


def change_rates(model: nn.Module, layers: Sequence[Layer], batch: torch.Tensor, seed: int = 0,
                 samples: int = 4) -> torch.Tensor:
    """r_k = sqrt(C_k) = sqrt(E_η ||∇_{W_k} ℓ||²) / ||W_k|| for ℓ = <model(batch), η>, η ~ N(0, I) (float64 (K,)).

    The expectation is the mean over ``samples`` draws of η taken from generators seeded ``seed``,
    ``seed + 1``, ...: the same draws at every call (common random numbers), so that rescaling a
    homogeneous network changes each r_k by exactly its factor and Algorithm 2 is a fixed point after one
    step. Gradients of the model's parameters are saved and restored."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    saved = {id(p): (p.grad.clone() if p.grad is not None else None) for p in model.parameters()}
    sq = torch.zeros(len(layers), dtype=torch.float64)
    try:
        for s in range(samples):
            for layer in layers:
                layer.weight.grad = None
            out = model(batch)
            if not isinstance(out, torch.Tensor):
                raise TypeError("between-layer rescaling needs a model returning one tensor")
            gen = torch.Generator().manual_seed(seed + s)
            noise = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
            (out * noise).sum().backward()
            for k, layer in enumerate(layers):
                g = layer.weight.grad
                if g is None:
                    raise ValueError(f"layer {layer} receives no gradient from the model's output")
                sq[k] += float(g.double().pow(2).sum())
    finally:
        for p in model.parameters():
            p.grad = saved[id(p)]
    norms = torch.tensor([float(layer.weight.detach().double().norm()) for layer in layers], dtype=torch.float64)
    return torch.sqrt(sq / samples) / norms.clamp_min(1e-30)


def _mean_abs_inputs(model: nn.Module, layers: Sequence[Layer], batch: torch.Tensor) -> list[float]:
    with torch.no_grad():
        return [float(_capture(model, layer, batch, "input").double().abs().mean()) for layer in layers]


def between_layer_rescale(model: nn.Module, layers: Sequence[Layer], batch: torch.Tensor, iterations: int = 10,
                          tol: float = 0.01, seed: int = 0, samples: int = 4) -> dict[str, Any]:
    """Algorithm 2 on ``layers`` (see the module docstring); ``model`` is run in eval mode (restored).

    Returns ``{"rates_before": (K,), "rates_after": (K,), "scales": (K,) (the product of the α_k of
    all iterations per layer), "iterations": int}`` (float64 tensors). ``tol``: stop when every
    ``|log r_k / log r̄ − 1|`` is below it (magic_init's criterion; with r̄ = 1 the absolute
    ``|log r_k|``); ``seed``, ``samples``: the gradient noise of :func:`change_rates`."""
    if not layers:
        raise ValueError("between_layer_rescale: no layers")
    was_training = model.training
    model.eval()
    total = torch.ones(len(layers), dtype=torch.float64)
    try:
        rates = change_rates(model, layers, batch, seed, samples)
        first = rates.clone()
        done = 0
        for done in range(1, iterations + 1):
            target = torch.exp(torch.log(rates).mean())
            log_t = float(torch.log(target))
            off = (torch.log(rates) / log_t - 1).abs() if abs(log_t) > 1e-12 else torch.log(rates).abs()
            if bool((off < tol).all()):
                done -= 1
                break
            alpha = torch.sqrt(rates / target)
            before = _mean_abs_inputs(model, layers, batch)
            with torch.no_grad():
                for k, layer in enumerate(layers):
                    # the input of layer k already carries the scaling of layers < k: move the bias with it
                    now = float(_capture(model, layer, batch, "input").double().abs().mean())
                    adj = now / before[k] if before[k] > 0 else 1.0
                    layer.weight.mul_(float(alpha[k]))
                    if layer.bias is not None:
                        layer.bias.mul_(float(alpha[k]) * adj)
            total *= alpha
            rates = change_rates(model, layers, batch, seed, samples)
    finally:
        model.train(was_training)
    return {"rates_before": first, "rates_after": rates, "scales": total, "iterations": done}


def krahenbuhl_rescale(model: nn.Module, batch: torch.Tensor, new_layers: Sequence[Layer] = (),
                       layers: Sequence[Layer] | None = None, iterations: int = 10, seed: int = 0) -> dict[str, Any]:
    """The transfer protocol's preparation of ``model`` (in place), on ``batch`` (B, ...) of training inputs:

    1. :func:`fold_batchnorm` (every BN that runs in ``model(batch)`` absorbed into its conv / linear layer);
    2. :func:`within_layer_init` on ``new_layers`` (the randomly initialised head; mean 0, std 1);
    3. :func:`between_layer_rescale` on ``layers`` (default: every conv / linear layer that runs in
       ``model(batch)``, in the order they run).

    Only the modules the forward pass uses are touched (:func:`used_modules`): a backbone that wraps a
    whole network but returns an inner feature map (:class:`thesislib.eval.transfer.ConvFeatures` around a
    classifier with fc layers and heads) keeps its unused layers, BN included, exactly as they were.
    Returns the between-layer result plus ``{"folded": number of BN layers, "layers": the layers
    rescaled}``. ``model(batch)`` must return one tensor (the logits)."""
    used = used_modules(model, batch)
    folded = fold_batchnorm(model, only=[m for m in used if isinstance(m, _NORMS)])
    if layers is None:
        layers = [m for m in used if isinstance(m, (nn.Conv2d, nn.Linear))]
    unused = [m for m in new_layers if all(m is not u for u in used)]
    if unused:
        raise ValueError(f"krahenbuhl_rescale: new layer(s) {unused} do not run in model(batch)")
    if new_layers:
        within_layer_init(model, new_layers, batch)
    out = between_layer_rescale(model, layers, batch, iterations=iterations, seed=seed)
    out["folded"] = folded
    out["layers"] = list(layers)
    return out

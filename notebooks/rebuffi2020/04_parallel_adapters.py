# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %%

# %% [markdown]
# # Parallel residual adapters and cross-domain compression
#
# Chapter 4 of Rebuffi's thesis {cite}`rebuffi2020thesis` (Rebuffi, Bilen and Vedaldi, CVPR 2018
# {cite}`rebuffi2018parallel`) revisits chapter 3's adapters. A **series** adapter transforms the output of
# a 3×3 filter bank $f$, $z=\rho(f*x;\alpha)=(\mathrm{diag}_1(I+\alpha)*f)*x$; a **parallel** adapter adds a
# 1×1 filter bank that reads the *same input*,
#
# $$y=f*x+\mathrm{diag}_1(\alpha)*x=(f+\mathrm{diag}_L(\alpha))*x\qquad(\text{Ch. 4 eq. 3}),$$
#
# an affine change of the filters' centre taps. With $\alpha=0$ it is the plain network, so it can be
# plugged into *any* pre-trained network, which the series adapter (pre-trained together with the network in
# chapter 3) does less well. The chapter also asks where adapters matter (early, middle or late stage, or only
# the second convolution of each unit), and compresses the adapters of all domains together: per layer the
# $T$ matrices $\alpha_t$ are stacked, $[\alpha_1\ldots\alpha_T]=U\Sigma V^\top$, and only the top $K$
# singular directions are kept, $\alpha_t\approx\beta\gamma_t^\top$ with $\beta=U_K\Sigma_K$ shared and frozen
# and $\gamma_t$ fine-tuned per domain (eq. 5; $K=C/2$ halves the adapter parameters). The thesis's Table 1
# (accuracy %, "mean" over the ten domains with ImageNet; S keeps chapter 3's fixed E^max = 2 × chapter 3's
# fine-tuning errors, which is why this chapter's better-augmented fine-tuning scores 3096 rather than 2500,
# and why every row, chapter 3's 2643 included, is on one scale):

# %%
from thesislib import notebook as tnb
from thesislib.replication import paper_numbers

_paper = {}
for _p in paper_numbers("parallel_adapters"):
    _paper.setdefault(_p.experiment, {})[_p.metric] = _p.value
_cols = ["imagenet12", "aircraft", "cifar100", "daimlerpedcls", "dtd", "gtsrb", "vgg-flowers", "omniglot", "svhn",
         "ucf101", "mean", "S"]
_heads = ["model", "ImNet", "Airc", "C100", "DPed", "DTD", "GTSR", "Flwr", "OGlt", "SVHN", "UCF", "mean", "S"]
tnb.show_table([[e.split("/", 1)[1], *[v.get(c, "") for c in _cols]] for e, v in _paper.items()], _heads,
               floatfmt=".2f")

# %% [markdown]
# **What the smoke run can show.** The same mini-decathlon and the same *plain* pre-trained network as the
# chapter-3 notebook (loaded from its cache, or re-created by the same library function): a 16×16 source of
# 100 procedural glyph classes over colour-photo crops and four few-shot targets (digits, faces vs non-faces,
# shapes, textures). Per target: fine-tuning,
# series adapters added to the plain network after the fact ("off the shelf"), parallel adapters in every
# stage and in one stage only (the stem convolution keeps its adapter in every placement, as the released
# code's `conv_task` does; the thesis's placements name the stages only); then the joint SVD of the parallel
# adapters with K = C/2 and a short fine-tuning of each target's own factor, beside the same uncompressed
# adapters fine-tuned as long (so the comparison is not one of training length); the accuracy right after the
# cut for several K; and the
# accuracy with 30% of the digits' few-shot training set (Fig. 4c). 40 steps per target, five replicates;
# every claim is a paired verdict over them.
#
# **Decision: the source task (issue 11; reasoning in the chapter-3 page, section 3).** The plug-and-play
# question only means something if the pre-trained filters carry features worth keeping. ImageNet's do
# because its 1000 classes force generic edge, stroke, texture and colour-contrast detectors; the earlier
# source (which of 11 photos a crop comes from) is solved by colour statistics and transferred nothing
# measurable. The glyph source needs strokes, orientations and junctions on cluttered backgrounds, shares no
# class with a target, and its size and pre-training budget were fixed before any verdict was seen.

# %% tags=["parameters"]
# Parameters: generated from thesislib.methods.parallel_adapters.config.ParallelAdaptersParams (thesislib notebooks --sync); edit the dataclass, not this cell.
seed = 0  # int; first replicate seed; replicates use seed, seed+1, ... (min 0)
n_seeds = 5  # int; replicates (seed .. seed + n_seeds - 1); paired verdicts need 2 or more (min 1)
scale = 'smoke'  # str; name of the configs/<chapter>/<scale>.yaml in use (set by thesislib run)
output_dir = ''  # str; run directory for metrics.json and provenance.json (empty: none)
device = 'auto'  # str; 'auto', 'cpu', 'cuda' or 'cuda:N'
threads = 1  # int; CPU threads (0: torch's default); $THESISLIB_THREADS overrides (min 0)
progress = 'none'  # 'auto' | 'bar' | 'log' | 'none'; training progress display
nproc = 1  # int; torchrun processes (DDP) per training run; 1: in this process (min 1)
data = 'mini'  # 'mini' | 'decathlon'; mini (bundled/procedural, note 1.6a) | decathlon
data_root = ''  # str; directory holding decathlon/ (empty: $THESISLIB_DATA)
source = 'glyphs'  # str; pre-training domain: glyphs | photos (mini) | imagenet12 (decathlon) | imagenet (decathlon data, ILSVRC CLS-LOC folders resized to 72 px)
targets = ['digits', 'faces', 'shapes', 'textures']  # list of str; target domains, in order
image_size = 16  # int; input side (decathlon: 64 crops of the 72-px images) (min 8)
shots = 10  # int; mini: training images per class of each target domain (min 1)
n_source = 6000  # int; mini: training images of the source domain (min 10)
n_test = 300  # int; mini: test images per domain (at most) (min 10)
tiny_domain = ''  # str; domain of chapter 3's adapter-decay study (empty: not run)
width = 0.25  # float; channel factor of ResNet-26 (32w, 64w, 128w, 256w; thesis 1) (min 0.05)
blocks = [1, 1, 1]  # list of int; residual units per stage (ResNet-26: 4, 4, 4)
pre_steps = 800  # int; pre-training optimiser steps (min 1)
pre_batch_size = 32  # int; pre-training batch size (global) (min 1)
pre_lr = 0.1  # float; pre-training SGD learning rate (x0.1 at 2/3 and 5/6 of the steps) (min 0.0)
pretrain_dir = ''  # str; cache of pre-trained checkpoints (empty: $THESISLIB_CACHE/residual_adapters)
methods = ['finetune', 'series_posthoc', 'parallel']  # list of str; methods compared on every target (finetune series_posthoc parallel ...)
target_steps = 40  # int; optimiser steps per target domain (x0.1 at 2/3 and 5/6) (min 1)
target_epochs = 0  # int; epochs per target domain (code: 120); 0: target_steps steps (min 0)
batch_size = 16  # int; target batch size (code: 128) (min 1)
lr = 0.1  # float; target SGD learning rate (code: 0.1) (min 0.0)
momentum = 0.9  # float; SGD momentum (min 0.0, max 1.0)
wd_conv = 0.0005  # float; weight decay of the shared 3x3 filters (when trained) (min 0.0)
wd_adapter = 0.0005  # float; weight decay of the 1x1 adapters (thesis default 0.0005) (min 0.0)
wd_head = 0.0005  # float; weight decay of the classifiers (min 0.0)
wd_adapter_high = 0.05  # float; the decay study's larger adapter decay on tiny_domain (min 0.0)
flip = False  # bool; decathlon: random horizontal flips (never on gtsrb, omniglot, svhn); mini: unused
wd_adapter_by_domain = []  # list of str; per-domain adapter decay 'domain:decay' (series_decay, finetune_all); unlisted domains keep wd_adapter
joint_steps = 0  # int; finetune_all round-robin steps; 0: (1 + targets) x the longest target run (min 0)
joint_final = True  # bool; finetune_all: the final adapters-only pass per target (target steps)
dompred_steps = 300  # int; dompred: domain-predictor optimiser steps (pre_batch_size, pre_lr) (min 1)
eval_batch_size = 512  # int; evaluation batch size (min 1)
amp = True  # bool; bf16 autocast on CUDA (CPU runs are fp32)
num_workers = 0  # int; data loader workers (min 0)
placements = ['early', 'mid', 'late', 'half']  # list of str; parallel adapters only in stage 1 / 2 / 3, or only the second conv
svd_fraction = 0.5  # float; K / C of the joint SVD compression (thesis: 1/2) (min 0.0, max 1.0)
svd_steps = 20  # int; fine-tuning steps of each target's own SVD factor (min 1)
svd_sweep = [0.125, 0.25, 0.5, 1.0]  # list of float; K / C values of the cut without fine-tuning
fraction_domain = 'digits'  # str; target of the accuracy-vs-training-data curve
fractions = [0.3]  # list of float; shares of its training set (the whole set is run anyway)
fraction_methods = ['finetune', 'parallel']  # list of str; methods of that curve
e_max = 'auto'  # 'auto' | 'ch3' | 'run'; E^max of S: ch3 (2 x the thesis's chapter-3 fine-tuning errors, as the thesis; decathlon only) | run (2 x this run's fine-tuning errors, a different construction) | auto (ch3 on the decathlon, run on mini)
# %%
import time

import matplotlib.pyplot as plt
import torch

from thesislib.methods.parallel_adapters import experiments as E
from thesislib.methods.parallel_adapters import plots as P
from thesislib.methods.parallel_adapters.config import ParallelAdaptersParams
from thesislib.methods.residual_adapters.data import load_domain
from thesislib.methods.residual_adapters.evaluate import domain_accuracy
from thesislib.methods.residual_adapters.train import checkpoint_path, pretrain_networks
from thesislib.nn.adapter_svd import joint_factors
from thesislib.nn.resnet26_adapters import resnet26
from thesislib.replication.verdicts import VERDICT_HEADERS, verdict_rows, verdicts_dict

params = tnb.parameters(ParallelAdaptersParams, globals())
device = tnb.setup(params.seed, params.device, params.threads)
started = time.perf_counter()
print(f"device {device}, {torch.get_num_threads()} torch threads, scale {params.scale!r}, data {params.data!r}: "
      f"source {params.source!r}, targets {list(params.targets)}")

# %% [markdown]
# ## 1. Parallel adapters on a toy tensor
#
# The parallel adapter of a convolution is a change of its centre taps: adding a 1×1 convolution of the
# input gives the same output as the 3×3 filters with the 1×1 weights added at their centre. And with
# $\alpha=0$ a network with parallel adapters computes exactly what the plain network computes.

# %%
toy = resnet26([3], adapter="parallel", width=params.width, blocks=params.blocks)
conv = toy.stages[0][0].conv1
with torch.no_grad():
    conv.adapters[0].weight.normal_()
    x_toy = torch.randn(2, conv.c_in, 12, 12)
    fused = conv.conv.weight.clone()
    fused[:, :, 1, 1] += conv.adapters[0].weight[:, :, 0, 0]
    y_fused = torch.nn.functional.conv2d(x_toy, fused, stride=conv.stride, padding=1)
    print("max |f*x + alpha*x - (f + diag(alpha))*x| =", float((conv.conv(x_toy) + conv.adapters[0](x_toy) - y_fused)
                                                           .abs().max()))
    stacked = torch.randn(6, 12, dtype=torch.float64)
    beta, gammas, s = joint_factors(stacked, 2, 6)
    print("full-rank joint SVD reproduces both domains' adapters:",
          bool(torch.allclose(torch.cat([beta @ g for g in gammas], 1), stacked)))

# %% [markdown]
# ## 2. The plain pre-trained network (shared with chapter 3, cached)

# %%
t0 = time.perf_counter()
was_cached = checkpoint_path(params, "none").is_file()
pretrained = pretrain_networks(params, device)   # nproc > 1: the pre-training runs as torchrun processes
source_test = load_domain(params, params.source, params.seed).test
print(f"plain network {'loaded from' if was_cached else 'trained and written to'} {checkpoint_path(params, 'none')}: "
      f"source accuracy {100 * domain_accuracy(pretrained['plain'], 0, source_test, device):.1f}% "
      f"({time.perf_counter() - t0:.0f} s)")

# %% [markdown]
# ## 3. Five replicates: methods, placements, compression, less data

# %%
results = []
for i, seed in enumerate(params.seeds):
    t0 = time.perf_counter()
    results.append(E.run_replicate(params, seed, pretrained, device))
    print(f"replicate {i + 1}/{params.n_seeds} (seed {seed}): {time.perf_counter() - t0:.0f} s")
rows, headers = E.table_rows(params, results)
tnb.show_table(rows, headers, floatfmt=".1f")

# %% [markdown]
# "mean" is over the source and the targets, as the thesis's column (every row here starts from the plain
# network and keeps its source accuracy); "mean (targets)" is what the verdicts compare. "Parallel (+ SVD
# steps)" is the SVD row's control: the same parallel adapters fine-tuned for the same `svd_steps` without
# compression. "trainable / target" counts what each target stores: for the SVD row its own factor, BNs and
# classifier plus its share of the shared factor. The S column is printed by the cell below with the E^max
# it uses.

# %%
if params.e_max_source() == "ch3":
    print("S (column 'S'): E^max = 2 x the thesis's chapter-3 fine-tuning errors, the thesis's construction; "
          "comparable with its 3096 (fine-tuning) and 3412 (parallel adapters).")
else:
    print("S (column 'S_run'): E^max = 2 x THIS run's fine-tuning errors over the domains it errs on in every "
          "replicate. This is a different construction from the thesis's (which keeps chapter 3's fixed E^max, so "
          "its fine-tuning scores 3096): our fine-tuning scores 250 per domain by definition, and S_run is "
          "comparable only between the rows of this table, never with the thesis's S.")

# %%
P.placement_bars(rows, headers, ["Parallel adapt.", "Parallel (early)", "Parallel (mid)", "Parallel (late)",
                                 "Parallel (half)"])
plt.show()

# %% [markdown]
# ## 4. The singular values of the stacked adapters, and accuracy against K
#
# The spectrum of every layer's stacked adapters (first replicate), normalised by its largest value: how much
# of the adapters lies in few directions. Then the mean target accuracy right after cutting to K directions,
# before any fine-tuning; the SVD row of the table above is K = C/2 after fine-tuning each target's factor.

# %%
P.spectrum(results[0].spectra, params.svd_fraction)
plt.show()
P.k_sweep(results, 100 * sum(E.mean_acc(params, r, "parallel") for r in results) / len(results))
plt.show()

# %% [markdown]
# ## 5. Less training data (Fig. 4c analogue)

# %%
if results[0].curve:
    P.data_curve(results, params.fraction_domain, E.LABELS)
    plt.show()

# %% [markdown]
# ## 6. Verdicts

# %%
verdicts = E.claim_verdicts(params, results)
tnb.show_table(verdict_rows(verdicts, "+.3f"), VERDICT_HEADERS)

# %% [markdown]
# ## 7. Seed stability
#
# `thesislib seeds parallel_adapters --base 101 202` reruns this notebook at two other base seeds and records
# the verdicts in `results/parallel_adapters/seeds/smoke.json`.

# %%
seed_record = tnb.show_seed_record("parallel_adapters")

# %% [markdown]
# **What this reproduces and what it does not** (generated from the verdicts of this run):

# %%
_thesis = {"parallel>series-posthoc": "Plug-and-play: parallel adapters beat series adapters added to a plain "
                                      "network (the README: 80.62 vs 70.97 on CIFAR-100)",
           "parallel>finetune": "Parallel adapters beat fine-tuning (S 3412 vs 3096; here S "
                                + ("with the thesis's E^max)" if params.e_max_source() == "ch3"
                                   else "with this run's E^max, another construction)"),
           "all>early": "All stages beat the early stage only (78.07 vs 75.32)",
           "all>mid": "All stages beat the middle stage only (78.07 vs 76.40)",
           "late>early": "The late stage matters most (77.40 vs 75.32)",
           "all>half": "Adapting both convolutions beats the second only (78.07 vs 77.40)",
           "svd>=parallel": "Halving the adapters by the joint SVD preserves or improves the accuracy (78.36 vs "
                            "78.07), here against the same adapters given the same extra fine-tuning",
           "small-data": "Adapters beat fine-tuning with little data (Fig. 4c)"}


def _outcome(v) -> str:
    if not v.holds:
        return "not reproduced"
    return {"no clear difference": "not shown different (not an equivalence test)",
            "not lower": "not shown lower (not an equivalence test)"}.get(v.expected, "reproduced")


tnb.show_findings([f"{_thesis.get(v.id, v.claim)}: {_outcome(v)} at {params.scale} scale "
                   f"(verdict '{v.label}', expected '{v.expected}', difference {v.interval_text('+.3f')}, n = {v.n})."
                   for v in verdicts])

# %% [markdown]
# Why the smoke scale can differ from the thesis: the targets have 10 training images per class and test sets
# of 180–300 images (one image is 0.3–0.6 points), the networks train for 40 steps, and the source is a
# 16×16 glyph task that 800 steps of a ResNet-8 learn only partly, far narrower than ImageNet, so differences
# of a point or two between rows can be replicate noise; the verdicts and the seed table say which survive it. The study note's CPU prototype did not show the
# plug-and-play effect either (§8.1). No thesis number is tested here.
#
# ## 8. Replication table and the full scale
#
# Every number of the thesis's Table 1 (chapter 4), "thesis / this repository" (recorded full-scale runs in
# `results/parallel_adapters/`, or "not run"). A recorded S cell is one computed with the thesis's E^max
# (`e_max` ch3, the full configuration's); a run with `e_max` run records `S_run` instead, which never
# fills these cells.

# %%
from thesislib.replication import replication_rows

_cells: dict[str, dict[str, str]] = {}
for _r in replication_rows("parallel_adapters"):
    _cells.setdefault(_r.paper.experiment, {})[_r.paper.metric] = f"{_r.paper.value:g} / {_r.ours_text}"
tnb.show_table([[e.split("/", 1)[1], *[c.get(k, "") for k in _cols]] for e, c in _cells.items()], _heads)

# %% [markdown]
# **Running the full scale.** With the Visual Decathlon under `$THESISLIB_DATA/decathlon/` (layout in the
# chapter-3 page):
#
# ```
# thesislib run parallel_adapters --scale full -p nproc=4
# thesislib record runs/parallel_adapters/<stamp>-full
# ```
#
# ## 9. Saving the run

# %%
tnb.save_run(params.output_dir, {"chapter": "parallel_adapters", "scale": params.scale,
                                 "experiments": E.aggregate(params, results), "verdicts": verdicts_dict(verdicts)},
             params, device)
print(f"notebook time since setup {time.perf_counter() - started:.0f} s")

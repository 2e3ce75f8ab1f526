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
# # Limited context inpainting, warping and rotation
#
# Chapter 4 of Jenni's thesis {cite}`jenni2021thesis` (Jenni, Jin & Favaro, CVPR 2020 {cite}`jenni2020steering`)
# asks which transformations a self-supervised classifier should learn to recognise. Its answer: transformations
# that keep *local* pixel statistics (a small patch of a transformed image looks like a patch of a real one) but
# change *global* ones (shape, layout), so that recognising them needs global features. A classifier $C$ is
# trained to tell six transformations apart (Eq. 4.1):
# $L_\text{SSL}=\frac{1}{6N}\sum_i\sum_{y=0}^{5}\ell_\text{cls}(C(T_y\circ x_i),y)$ with $T_0$ the identity,
# $T_1..T_3$ rotations by 90°, 180°, 270°, $T_4$ a random warp (control points on a grid shifted by up to $d$ =
# 1/10 of the side, interpolated by a polyharmonic spline) and $T_5$ *limited context inpainting* (LCI): a patch
# $e$ is erased except for a thin border, its centre filled with noise, and an inpainter $F$ fills it,
# $r=F(e\odot(1-m)+z\odot m)$ (Eq. 4.3), pasted back (Eq. 4.4). $F$ is trained against a patch discriminator $D$
# (hinge loss), to match the border ($\lambda_\text{border}=50$), to autoencode whole patches
# ($\lambda_\text{AE}=50$) and *against* $C$ ($-L_\text{SSL}$). $C$'s conv layers are the features. The thesis's
# headline numbers:

# %%
from thesislib import notebook as tnb
from thesislib.replication import paper_numbers

numbers = {(p.experiment, p.metric): p.value for p in paper_numbers("lci")}
layers5 = ("conv1", "conv2", "conv3", "conv4", "conv5")
rows42 = ("random", "warp", "lci", "rot", "warp+lci", "rot+warp", "rot+lci", "rot+warp+lci")
tnb.show_table([[row, *[numbers[(f"stl10/{row}", f"probe_{layer}")] for layer in layers5]] for row in rows42],
               ["Table 4.2: STL-10 linear probes (%)", *layers5], floatfmt=".1f")
tnb.show_table([[row, *[numbers[(f"celeba/{row}", f"celeba_ap_{layer}")] for layer in layers5]] for row in rows42],
               ["Table 4.3: CelebA attributes (AP %)", *layers5], floatfmt=".1f")
tnb.show_table([[label, numbers[(exp, "voc07_cls_map")], numbers[(exp, "voc07_det_map")],
                 numbers[(exp, "voc12_seg_miou")]]
                for label, exp in (("Ours", "voc/ours"), ("Random", "voc/random"),
                                   ("ImageNet labels", "voc/imagenet-labels"))],
               ["Table 4.4: PASCAL VOC transfer", "VOC07 cls mAP", "VOC07 det mAP", "VOC12 seg mIoU"], floatfmt=".1f")

# %% [markdown]
# **What to expect.** STL-10, CelebA, ImageNet and VOC are not available to the smoke run. It follows the
# study note's CPU recipe at a smaller size still: the 1,797 scikit-learn digits upscaled to 32×32, the
# transformations on the 32×32 image and $C$ on random 24×24 crops of it, LCI windows of 16 px with a 2 px
# border, the chapter's AlexNet at 1/16 of its width, 160 training steps of 8 images (each step one $C$, one
# $D$ and one $F$ step; $C$ sees the six transformations of each image). That is enough to test the chapter's
# *argument* about local and global statistics with small diagnostic networks, and the direction of the probe
# comparison, each over 5 replicates with paired verdicts; it cannot test the thesis's numbers.

# %% tags=["parameters"]
# Parameters: generated from thesislib.methods.lci.config.LCIParams (thesislib notebooks --sync); edit the dataclass, not this cell.
seed = 0  # int; first replicate seed; replicates use seed, seed+1, ... (min 0)
n_seeds = 5  # int; replicates (seed .. seed + n_seeds - 1); verdicts need 2 or more (min 1)
scale = 'smoke'  # str; name of the configs/<chapter>/<scale>.yaml in use (set by thesislib run)
output_dir = ''  # str; run directory for metrics.json and provenance.json (empty: none)
device = 'auto'  # str; 'auto', 'cpu', 'cuda' or 'cuda:N'
threads = 1  # int; CPU threads (0: torch's default); $THESISLIB_THREADS overrides (min 0)
progress = 'none'  # 'auto' | 'bar' | 'log' | 'none'; training progress display
transfer_rescale = True  # bool; Krähenbühl et al.'s data-dependent rescaling before fine-tuning (BN folded, new layers initialised from data, layers rescaled)
transfer_workers = 4  # int; data loader workers of the transfer fine-tuning (min 0)
voc_resize = 256  # int; VOC images are resized to this square side before the random crops (min 8)
voc_crop = 227  # int; side of the VOC07 classification crops (train: random, test: 10 random) (min 8)
voc_test_crops = 10  # int; random crops averaged per VOC07 test image (min 1)
voc_cls_iterations = 80000  # int; SGD steps of the VOC07 classification fine-tuning (min 1)
voc_cls_batch_size = 10  # int; batch of the VOC07 classification fine-tuning (min 1)
voc_cls_lr = 0.001  # float; learning rate (cosine-decayed) of the VOC07 classification fine-tuning (min 0.0)
voc_det_iterations = 150000  # int; SGD steps of the VOC07 detection fine-tuning (min 1)
voc_det_batch_size = 2  # int; images per step of the VOC07 detection fine-tuning (min 1)
voc_det_lr = 0.001  # float; learning rate (step-decayed x0.1 at 2/3) of the detection fine-tuning (min 0.0)
voc_det_scales = [480, 576, 688, 864, 1200]  # list of int; shorter image sides of multi-scale detection training (testing: voc_det_test_scale)
voc_det_test_scale = 600  # int; shorter image side at detection test time (min 32)
voc_seg_iterations = 100000  # int; SGD steps of the VOC12 segmentation fine-tuning (thesis 100k) (min 1)
voc_seg_batch_size = 1  # int; images per step of the segmentation fine-tuning (FCN: 1) (min 1)
voc_seg_lr = 0.0001  # float; fixed learning rate of the segmentation fine-tuning (thesis 1e-4) (min 0.0)
voc_seg_train_split = 'train'  # 'train' | 'trainaug'; VOC12 segmentation training split: train (1,464, the FCN transfer protocol's) | trainaug (10,582 with SBD)
voc_seg_size = 320  # int; side of the square segmentation training / test inputs (min 32)
nproc = 1  # int; torchrun processes (DDP) for the self-supervised training; 1: in this process (min 1)
data = 'smoke'  # 'smoke' | 'stl10' | 'celeba' | 'imagenet'; smoke (scikit-learn digits upscaled) | stl10 (unlabelled + train) | celeba | imagenet
data_root = ''  # str; directory holding stl10/, celeba/ or imagenet/ (empty: $THESISLIB_DATA)
load_size = 32  # int; side of the images the transformations act on ([code] 80 for 64 crops) (min 8)
image_size = 24  # int; side of C's input, a random crop of the transformed image (thesis 64 STL-10, 96 CelebA, 128 ImageNet) (min 8)
n_unlabelled = 0  # int; images for self-supervised training (0: the whole split) (min 0)
transforms = ['rot', 'warp', 'lci']  # list of str; transformation groups besides identity: rot (3 classes), warp, lci
warp_grid = 2  # int; control points per side of the warp's lattice (the thesis: a uniform grid, size not stated; 2 keeps the map one-to-one at d 1/10, 4 folds ~1/3 of draws) (min 1)
warp_shift = 0.1  # float; d: the largest control-point shift as a fraction of the side (thesis 1/10, [code] 1/16 with random points) (min 0.0, max 0.5)
patch_size = 16  # int; side of the LCI window (thesis 48 on STL-10; Table 4.1 a-c: 32, 40, 56); a multiple of 4 (min 8)
border = 2  # int; m's border width in pixels, the context F keeps (STL-10 and CelebA 2, ImageNet 4) (min 1)
noise_std = 1.0  # float; std of z, the noise filling the erased centre (thesis N(0, I), [code] 0.1) (min 0.0)
small_rotation = 0.07  # float; extra augmentation: largest small rotation, in units of pi ([code] 0.07) (min 0.0, max 0.5)
augment_fraction = 0.5  # float; share of every group that gets the small rotation ([code] half) (min 0.0, max 1.0)
replace_fraction = 0.5  # float; share of the untransformed and pre-rotation images whose random patch is replaced by its autoencoded version (thesis half) (min 0.0, max 1.0)
classifier_width = 0.0625  # float; AlexNet channel multiplier of C (1: the paper's widths) (min 0.01)
fc_dim = 4096  # int; C's two hidden fc layers at width 1 (scaled by classifier_width) (min 1)
conv1_kernel = 5  # int; C's conv1 kernel (paper 11) (min 1)
conv1_stride = 2  # int; C's conv1 stride (paper 4) (min 1)
inpainter_width = 12  # int; F's base channels ([code] 48); D's too (min 1)
lambda_border = 50.0  # float; weight of F's border reconstruction term (thesis 50) (min 0.0)
lambda_ae = 50.0  # float; weight of F's patch autoencoding term (thesis 50) (min 0.0)
adversarial_c = True  # bool; F maximises L_SSL, adversarial to C (False: Table 4.1 e)
autoencode = True  # bool; patch autoencoding and the replaced untransformed images (False: Table 4.1 f)
frozen_inpainter = False  # bool; train F and D first (no feedback from C), then C with F frozen (Table 4.1 d)
iterations = 160  # int; training steps (each: one C, one D and one F step) (min 1)
batch_size = 8  # int; images per step before the transformations (global over processes) (min 2)
lr = 0.002  # float; C's initial AdamW learning rate (thesis 3e-4) (min 0.0)
lr_end = 2e-06  # float; C's learning rate at the end of the cosine annealing (thesis 3e-7) (min 0.0)
beta1 = 0.5  # float; C's AdamW beta1 (thesis 0.5) (min 0.0, max 1.0)
beta2 = 0.99  # float; C's AdamW beta2 (thesis 0.99) (min 0.0, max 1.0)
weight_decay = 0.0001  # float; C's AdamW weight decay (thesis 1e-4) (min 0.0)
gan_lr = 0.001  # float; F's and D's Adam learning rate, fixed (thesis 2e-4) (min 0.0)
gan_beta1 = 0.5  # float; F's and D's Adam beta1 (thesis 0.5) (min 0.0, max 1.0)
num_workers = 0  # int; data loader workers (min 0)
amp = True  # bool; bf16 autocast on CUDA
checkpoint_dir = ''  # str; resumable checkpoints under this directory (empty: none)
probe_layers = ['conv1', 'conv2', 'conv3', 'conv4', 'conv5']  # list of str; conv layers of C read by the linear probes (alexnet: conv1..conv5; resnet34: layer1..layer4)
probe_dims = 1024  # int; features per probed layer after average pooling (ImageNet protocol 9216; Table 4.2 reads STL-10's maps unresized) (min 1)
probe_per_class = 3  # int; labelled training images per class for the probes (smoke; ImageNet with probe_mode cached); STL-10 and streaming probes use all of train (min 1)
probe_epochs = 60  # int; epochs of each linear probe (min 1)
probe_weight_decay = 0.0005  # float; the probes' weight decay ([code] 5e-4) (min 0.0)
probe_size = 0  # int; STL-10 probes: side of the probe images, read at STL-10's native 96 px (0: image_size centre crops of load_size images, Table 4.2; 96: Table 4.1) (min 0)
probe_views = 1  # int; STL-10 probes with probe_size: random crops (random resize to at most 1.15x, crop, flip) per training image, features stacked (1: the whole image; Table 4.1 trains on random 96x96 crops) (min 1)
probe_mode = 'cached'  # 'cached' | 'streaming'; cached (each layer's features extracted once into memory, one fixed view per training image, smoke) | streaming (thesislib.eval.streaming_probe: one trunk forward per batch for all layers, a fresh random crop of every training image each epoch, all of ImageNet / Places train; the full configs)
probe_data = 'same'  # 'same' | 'places205'; the probes' labelled data: same (the data set C trained on) | places205 (all of Places205, Table 4.6: probes of the ImageNet-trained C; data imagenet, probe_mode streaming)
probe_schedule = 'cosine'  # 'cosine' | 'official'; streaming probes' learning rate: cosine (0.1 to 0 per step, as the cached probe) | official (the LCI code's staircase 0.1, 0.01, 0.002, 4e-4, 8e-5 after 8/40/70/90 percent of the steps, Nesterov)
probe_test_crops = 0  # int; streaming ImageNet / Places probes: 10 adds the multi-crop score (the dagger rows: softmax averaged over the ten standard crops); 0: single centre crop only
probe_batch_size = 0  # int; the linear probes' training batch (0: eval_batch_size, the smoke setting); the full configs use the protocol's 64 (official LCI code --batch_size_ftune 64, Zhang et al.'s prototxt batch_size 64) (min 0)
eval_batch_size = 256  # int; evaluation batch size (min 1)
transfer = []  # list of str; transfer evaluations of C's conv1-5 after training (Table 4.4; full_voc*.yaml): voc07_cls (VOC07 classification mAP) | voc07_det (VOC07 detection mAP, torchvision Faster R-CNN) | voc12_seg (VOC12 mIoU, FCN head); fc6 / fc7 of the new heads are fc_dim wide
diagnostics = True  # bool; run the local-vs-global and rotation-shortcut diagnostics
diag_width = 8  # int; channels of the diagnostic networks (local and global) (min 1)
local_rf = 5  # int; receptive field of the bag-of-local-patches net in pixels (odd; at most 7) (min 3, max 7)
diag_iterations = 60  # int; Adam steps of each diagnostic network (min 1)
diag_train = 320  # int; training images of each diagnostic task (min 8)
diag_test = 256  # int; held-out images of each diagnostic task (min 8)
face_size = 32  # int; side of the procedural face images (rotation-shortcut diagnostic) (min 16)
classifier = 'alexnet'  # 'alexnet' | 'resnet34'; C's architecture: alexnet (the ch. 4 AlexNet) | resnet34 (torchvision's ResNet-34 with a 3x3 stride-1 stem and no max-pool, IIC's STL-10 setting; Table 4.7)
finetune_epochs = 0  # int; STL-10 only: epochs fine-tuning the whole C with a new 10-way head on the 5,000 labelled train images, then the 8,000 test images with multi-crop averaging (Table 4.7: 300; 0: none) (min 0)
finetune_lr = 0.0001  # float; the fine-tune's Adam learning rate (cosine-decayed; not in the thesis) (min 0.0)
finetune_weight_decay = 0.0005  # float; the fine-tune's Adam weight decay (not in the thesis) (min 0.0)
finetune_batch_size = 64  # int; the fine-tune's batch size (min 1)
finetune_test_crops = 10  # int; random image_size crops per test image whose softmax is averaged (the multi-crop test 'similar to IIC') (min 1)
tiles_test = True  # bool; Fig. 4.1's test: a linear probe on frozen conv5 (layer4 for resnet34) tells natural from tile-shuffled + band-inpainted held-out images, for the self-supervised C, a supervised C and a random C (runs only on single-label data, not celeba)
tiles_grid = 4  # int; tiles per side of the shuffled grid (thesis 4) (min 2)
tiles_band = 2  # int; width in pixels of the band across every tile border that the band inpainter fills (not stated in the thesis) (min 1)
tiles_inpainter_iterations = 160  # int; steps of the band inpainter F_b (the chapter's F and D architectures trained adversarially on the band task alone, once per run; not in the thesis) (min 1)
tiles_images = 256  # int; held-out probe images of the test, split in halves for the binary probe's training and test; each image enters natural and transformed (min 4)
tiles_supervised_epochs = 4  # int; epochs of the supervised C on the labelled training images (the thesis's ImageNet-supervised AlexNet: ~90) (min 1)
tiles_supervised_batch_size = 32  # int; batch size of the supervised C (min 1)
tiles_supervised_lr = 0.002  # float; Adam learning rate (cosine-decayed) of the supervised C (not in the thesis) (min 0.0)
tiles_supervised_weight_decay = 0.0005  # float; Adam weight decay of the supervised C (not in the thesis) (min 0.0)

# %%
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from thesislib.data.warp import grid_warp
from thesislib.methods.lci import experiments as E
from thesislib.methods.lci import plots as P
from thesislib.methods.lci.config import LCIParams, class_names
from thesislib.methods.lci.data import chapter_data, procedural_faces
from thesislib.methods.lci.model import GlobalNet, LocalNet
from thesislib.methods.lci.transforms import erase_mask, rotate

params = tnb.parameters(LCIParams, globals())
device = tnb.setup(params.seed, params.device, params.threads)
started = time.perf_counter()
data0 = chapter_data(params, params.seed)   # a missing dataset fails here, naming its layout
print(f"{len(data0.unlabelled)} unlabelled training images of {params.load_size}x{params.load_size}, "
      f"C's crops {params.image_size}x{params.image_size}; classes: {', '.join(class_names(params.transforms))}")
print(f"device {device}, {torch.get_num_threads()} torch threads, scale {params.scale!r}, data {params.data!r}")

# %% [markdown]
# ## 1. The pieces on a toy tensor
#
# **Rotations are exact and invertible**, the **warp is the identity at $d=0$**, and the **mask** $m$ is 1 in
# the centre and 0 on a border of `border` pixels (the context $F$ keeps):

# %%
x = torch.arange(16.0).reshape(1, 1, 4, 4)
print("T_1 x =\n", rotate(x, 1)[0, 0].numpy(), "\nT_3 T_1 x == x:", torch.equal(rotate(rotate(x, 1), 3), x))
img = data0.test_images[:2]
print("max |grid_warp(x, d=0) - x| =", float((grid_warp(img, params.warp_grid, 0.0) - img).abs().max()))
print("m (8x8, border 2) =\n", erase_mask(8, 2)[0, 0].numpy().astype(int))

# %% [markdown]
# ## 2. Training and evaluation: five replicates
#
# Per replicate: $C$, $F$ and $D$ alternate through the engine's multi-optimiser update (`thesislib.engine`):
# one AdamW step of $C$ on Eq. 4.1, one Adam step of $D$ on the hinge loss (real pair $(e,\hat e)$, fake
# $(r,\hat e)$), one Adam step of $F$ on hinge + border + autoencoding $- L_\text{SSL}$. Half of the identity
# and pre-rotation images carry a patch autoencoded by $F$ (so an $F$ artifact does not mark LCI), and half of
# every class gets a small rotation of up to ±0.07π before the crop ([code]). Then: $C$'s accuracy per
# transformation on held-out digits; linear probes on each conv layer of $C$ and of a random $C$; and the
# diagnostics of § 4-5.

# %%
results = [E.run_replicate(params, seed, device) for seed in params.seeds]
print(f"{len(results)} replicates trained and evaluated in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## 3. The transformations (Figs. 4.3, 4.4)
#
# Held-out digits under every transformation (replicate 0's $F$ for LCI), each as the full image and as a
# 10×10 window from its centre (the local view). Then the LCI pipeline: the patch, its erased form with
# noise in the centre, $F$'s output and the image with the output pasted back.

# %%
r0 = results[0]
rows = P.transformation_rows(params, r0.nets.get("inp"), r0.data.test_images[:8], seed=1)
P.image_grid(list(rows.values()), list(rows), "Fig. 4.3 analogue: full images and local windows")
plt.show()
if "inp" in r0.nets:
    pipe = P.lci_pipeline_rows(params, r0.nets["inp"], r0.data.test_images[:8], seed=2)
    P.image_grid(list(pipe.values()), list(pipe), "Fig. 4.4 analogue: limited context inpainting")
    plt.show()

# %% [markdown]
# Training curves (replicate by replicate): $C$'s accuracy on its training batches, and on the LCI class.

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 2.6))
for r in results:
    axes[0].plot(r.history.steps(), r.history.get("ssl_acc"), alpha=0.7)
    if "lci_acc" in r.history.last():
        axes[1].plot(r.history.steps(), r.history.get("lci_acc"), alpha=0.7)
axes[0].set_title("C accuracy, all classes", fontsize=9)
axes[1].set_title("C accuracy on LCI images", fontsize=9)
for ax in axes:
    ax.set_xlabel("step")
fig.tight_layout()
plt.show()

# %%
from thesislib.replication import format_mean_sd

names = class_names(params.transforms)
tnb.show_table([[name, format_mean_sd([100 * r.transform_acc[name] for r in results], ".1f")]
                for name in (*names, "all")],
               ["class", "C's held-out accuracy (%, mean ± sd)"])

# %% [markdown]
# ## 4. Local versus global statistics (the chapter's principle)
#
# Two small networks are trained from scratch on each task, with the same data: a *bag of local patches*
# (3×3 convolutions up to a receptive field of `local_rf` pixels, then a global average: every decision is an
# average over small windows) and a *global* CNN (receptive field 38 px). The tasks: untransformed vs warped
# digits, untransformed vs LCI digits (replicate's own $F$), each image once, balanced. Both tasks are built
# as $C$'s batch, with the thesis's shortcut guards on: random crops and the small rotation on half of each
# class, and in the LCI task half of the identity images carry a patch autoencoded by $F$ (so an $F$ artifact
# alone does not mark LCI). If a transformation
# keeps local statistics, the local net should sit near chance (50 %) and the global one clearly above it.
#
# ## 5. The rotation shortcut on aligned content (Fig. 4.5, Table 4.3)
#
# The thesis finds rotation a poor task on CelebA: the faces are aligned, so an eye, an eyebrow or the mouth
# always appears upright at the same place, and a small window on it already tells which way is up; rotation
# is then solvable from local cues and need not teach global features. The analogue is built so that only
# that difference separates two sets of procedural faces, both aligned (the parts at fixed places, ±1 px):
#
# * **upright parts**: two eyes, each a dark disk under a dark eyebrow bar, and a mouth, a horizontal band
#   shaded from dark (top) to grey (bottom), on isotropic noise. Every part has a local up direction.
# * **scrambled parts**: the *same* parts at the *same* places, each turned by its own random multiple of 90°.
#   The content is identical in amount and kind; a part's orientation no longer depends on the face's, so the
#   local windows of a face turned by $k\times 90°$ have the same distribution for every $k$ (a unit test
#   checks this with a fixed eyebrow detector), and the up direction is only in the arrangement (the mouth
#   below the two eyes).
#
# Every part lies at least 4 px inside the frame, so the local net's windows that touch its zero padding see
# only noise (a part cut by the frame, e.g. a hair line at the top, would be a local cue that the scrambled set
# could not remove; it is left out). Expected: the local net solves rotation with upright parts and sits at
# chance with scrambled ones, while the global net solves both. Four-way rotation prediction, chance 25 %:

# %%
faces = torch.cat([procedural_faces(6, params.face_size, "upright", 0),
                   procedural_faces(6, params.face_size, "scrambled", 0)])
P.image_grid([faces[:6], faces[6:]], ["upright parts", "scrambled parts"], "procedural faces (upright)")
plt.show()
print(f"local net: receptive field {LocalNet(1, 4, 2, params.local_rf).receptive_field} px; "
      f"global net: {GlobalNet.receptive_field} px")
P.diagnostic_plot([r.diagnostics for r in results], E.CHANCE,
                  f"held-out accuracy, {len(results)} replicates (dots), mean (bar), chance (dashed)")
plt.show()
tnb.show_table([[task, kind, format_mean_sd([100 * r.diagnostics[task][kind] for r in results], ".1f")]
                for task in results[0].diagnostics for kind in ("local", "global")],
               ["task", "network", "held-out accuracy (%, mean ± sd)"])

# %% [markdown]
# ## 6. Linear probes per layer: self-supervised $C$ against a random $C$ (Table 4.2 shape)

# %%
if results[0].probe_ssl:
    ssl = {layer: [r.probe_ssl[layer] for r in results] for layer in params.probe_layers}
    rnd = {layer: [r.probe_random[layer] for r in results] for layer in params.probe_layers}
    P.probe_plot(ssl, rnd, f"digit probes, {params.probe_per_class} labels per class, {len(results)} replicates")
    plt.show()
    tnb.show_table([[layer, format_mean_sd([100 * v for v in ssl[layer]], ".1f"),
                     format_mean_sd([100 * v for v in rnd[layer]], ".1f"),
                     numbers[("stl10/rot+warp+lci", f"probe_{layer}")], numbers[("stl10/random", f"probe_{layer}")]]
                    for layer in params.probe_layers],
                   ["layer", "self-supervised C (this run, %)", "random C (this run, %)",
                    "thesis: Rot+Warp+LCI (STL-10)", "thesis: random (STL-10)"], floatfmt=".1f")

# %% [markdown]
# **Nearest neighbours in conv5 (Figs. 4.6, 4.7 analogues).** The thesis classifies every Places validation
# image by its k nearest other images (leave-one-out: the (k+1)-NN of the whole set less the query), in conv5
# features (five crops concatenated, standardised, cosine similarity), and plots the accuracy against k for its
# self-supervised AlexNet and an ImageNet-supervised one (Fig. 4.6); Fig. 4.7 shows conv5 retrievals of both.
# Here the set is the probes' held-out labelled digits, the features replicate 0's flattened conv5 map of the
# centre crop, standardised over the set, and the comparison is its self-supervised $C$ against the random $C$
# of the probes (no supervised $C$ is trained at this scale). This is **one replicate, descriptive only**: no
# claim and no verdict rest on it. In the retrievals each row is a query (framed black) and its five nearest
# other digits, best first; a neighbour of another class is framed red.

# %%
from thesislib.eval.knn import precision_at_k

knn = E.knn_neighbours(params, r0, device)
nets_shown = {"self-supervised C": "ssl", "random C": "random"}
majority = float(torch.bincount(knn.labels).max()) / len(knn.labels)
P.knn_plot({label: knn.accuracy[key] for label, key in nets_shown.items()}, majority,
           f"Fig. 4.6 analogue: LOO kNN on {len(knn.labels)} held-out digits, conv5, replicate 0 only")
plt.show()
tnb.show_table([[k, *[100 * knn.accuracy[key][k] for key in nets_shown.values()]] for k in E.KNN_KS],
               ["k", *[f"LOO kNN accuracy (%), {label}, replicate 0" for label in nets_shown]], floatfmt=".1f")
print("share of the 5 nearest digits with the query's label (mean over all queries): " + ", ".join(
    f"{label} {float(precision_at_k(knn.labels, knn.labels, knn.neighbours[key]).mean()):.3f}"
    for label, key in nets_shown.items()) + f"; largest class share (dashed line) {majority:.3f}")
P.retrieval_plot(knn.dataset, knn.labels, range(4),
                 {label: knn.neighbours[key] for label, key in nets_shown.items()},
                 "Fig. 4.7 analogue: the first 4 held-out digits and their 5 nearest (conv5, cosine), replicate 0")
plt.show()

# %% [markdown]
# ## 7. Natural versus tile-shuffled images (Fig. 4.1)
#
# The thesis opens the chapter with a test on a transformation that none of its networks was trained on: each
# image is cut into a 4×4 grid, the tiles are permuted at random, and a band of pixels across the tile borders is
# inpainted by an adversarially trained network, so that small windows look natural while the layout is destroyed.
# A linear binary classifier on frozen conv5 features tells such images from natural ones at 78 % with features
# trained on ImageNet labels and at 85 % with the self-supervised features. Here, per replicate, the first
# `tiles_images` held-out digits (C's 24-px crops) are transformed with a random non-identity permutation of 6-px
# tiles, and the `tiles_band`-pixel bands across the borders are erased, filled with noise and inpainted by a band
# inpainter $F_b$ run on the whole image. As in the thesis, $F_b$ is trained adversarially on the band task alone,
# apart from any $C$: the chapter's $F$ and $D$ architectures and hinge loss, through the engine's multi-optimiser
# step, with natural digits as $D$'s real examples and no $-L_\text{SSL}$ term (`thesislib.methods.lci.band`;
# `tiles_inpainter_iterations` steps, once per run from seed + 1000, shared by the replicates). Half of the images, each natural and transformed, train a linear probe on conv5 (pooled and
# standardised as the probes of § 6), the other half test it. The probe is trained on three networks: the
# self-supervised $C$, a $C$ of the same architecture trained for `tiles_supervised_epochs` epochs on the labels of
# the replicate's training digits (the stand-in for "ImageNet labels"), and the random $C$ of § 6.
#
# A secondary test repeats the three probes with the bands filled by the replicate's own chapter $F$ instead: those
# images are not "built independently of either feature" (the self-supervised $C$ was trained to spot $F$'s
# output), so they are reported beside the main test and recorded off the figure's row (`…+chapterF`).

# %%
from thesislib.methods.lci.evaluate import labelled_images
from thesislib.replication.verdicts import VERDICT_HEADERS, verdict_rows

tiles_vs = E.tiles_verdicts(results)
if results[0].tiles:
    fig41 = P.tiles_rows(params, r0.nets["band"], labelled_images(r0.data.probe_test, 8).to(device), seed=3)
    P.image_grid(list(fig41.values()), list(fig41), "Fig. 4.1 analogue: natural vs tile-shuffled + band-inpainted "
                 "(the band inpainter F_b)")
    plt.show()
    paper41 = {"ssl": numbers[("imagenet/tiles", "tiles_probe_acc_ssl")],
               "supervised": numbers[("imagenet/tiles", "tiles_probe_acc_supervised")], "random": "not reported"}
    tnb.show_table([[label, format_mean_sd([100 * r.tiles[key] for r in results], ".1f"),
                     format_mean_sd([100 * r.tiles.get(key + E.CHAPTER_F, float("nan")) for r in results], ".1f"),
                     paper41[key]]
                    for label, key in (("self-supervised C", "ssl"), ("supervised C", "supervised"),
                                       ("random C", "random"))],
                   ["conv5 features of", f"probe accuracy (%, this run, {len(results)} replicates)",
                    "bands by the chapter's F instead (%, this run)", "thesis (ImageNet, %)"], floatfmt=".1f")
    print("supervised C's top-1 on the held-out digits (%): "
          + format_mean_sd([100 * r.tiles["supervised_top1"] for r in results], ".1f"))
    tnb.show_table(verdict_rows(tiles_vs, "+.3f"), list(VERDICT_HEADERS))
    display(Markdown("\n".join(["* " + E.verdict_sentence(v) for v in tiles_vs] + E.tiles_sentences(tiles_vs, results))))
else:
    print("Fig. 4.1's test did not run here (tiles_test off, or CelebA).")

# %% [markdown]
# ## 8. Which of the thesis's effects hold here?
#
# Each row compares paired quantities within every replicate (or one quantity against chance): the mean
# difference with its 95 % t interval. A claim *holds* when the verdict is the expected one. For the claims
# that expect *no clear difference* from chance, holding means "not shown above chance", not "shown at chance".

# %%
from thesislib.replication.verdicts import verdicts_dict

verdicts = E.claim_verdicts(params, results)
tnb.show_table(verdict_rows(verdicts, "+.3f"), list(VERDICT_HEADERS))
display(Markdown("\n".join("* " + E.verdict_sentence(v) for v in verdicts)))

# %% [markdown]
# **Do the verdicts survive a change of seed?** `thesislib seeds lci --base 101 202` reruns this smoke
# notebook at base seeds 101 and 202 beside the default 0 and records every verdict in
# `results/lci/seeds/smoke.json` (read here, not recomputed):

# %%
seed_record = tnb.show_seed_record("lci")

# %%
display(Markdown(" ".join(["At this base seed:"] + E.diagnostic_sentences(verdicts) + E.probe_sentences(verdicts))))

# %% [markdown]
# **Reading the results.** The diagnostics test the chapter's argument on the transformations themselves,
# independent of how well $C$ trained: whether the warp and the inpainting can be seen from small windows,
# and whether alignment lets a local network solve rotation. An LCI image that a local net still spots means
# $F$ leaves local traces after 160 steps (the thesis trains it for 200 epochs). The probe verdicts say
# whether $C$'s pre-text training shows in its features at this scale; the generated sentences say what
# held at this seed, the seed table how often across seeds.
#
# ## Decisions where the thesis is silent, ambiguous or differs from the code
#
# * **Warp.** The thesis: control points on a uniform grid, shifted by up to $d$ = 1/10 of the side. The
#   official code: 16 random points, $d$ = 1/16. The thesis is followed (`thesislib.data.grid_warp`): a
#   `warp_grid`×`warp_grid` interior lattice, the four corners pinned, shifts
#   uniform in $[-d,d]^2$, points pushed out of the image reflected back in; thin-plate spline (order-2
#   polyharmonic), bilinear resampling with border values. The grid size is not stated; it is **2×2**, chosen
#   so that the map stays one-to-one, as "affects local image statistics only minimally" requires: lattice
#   points lie side/(grid+1) apart and each moves up to $d$·side per axis, so at $d$ = 1/10 a 4×4 lattice
#   folds the image (Jacobian ≤ 0: mirrored or duplicated content) in about a third of the draws, 3×3 in ~3 %,
#   2×2 never (min Jacobian determinant ≥ 0.4 over 64 draws at 32-160 px; tested for every config).
# * **LCI noise.** $z\sim\mathcal N(0, I)$ as the thesis writes (`noise_std` 1; the code uses 0.1).
# * **Loss normalisation.** The border and autoencoding terms are means over the entries they cover (the
#   code's MSE); the thesis's per-image squared norm differs by a constant absorbed in λ.
# * **$-L_\text{SSL}$.** $F$'s term is $C$'s full Eq. 4.1 loss on the batch holding $F$'s patches,
#   recomputed after $C$'s step. The autoencoded patches in the identity and rotation groups are detached: $F$
#   learns to autoencode from $\lambda_\text{AE}$, not from $C$.
# * **Step order.** Per step $C$, then $D$, then $F$ (not stated). The "half of the untransformed images" and
#   "half before rotation" replacement uses the same autoencoded half for identity and the three rotations;
#   the warp group uses the original images (the thesis names only identity and rotation).
# * **Extra augmentation** ([code]): half of every class gets a rotation uniform in ±0.07π (zeros outside),
#   then every image a random crop from `load_size` to `image_size` (80 → 64 in the code).
# * **Table 4.1 (d)**, "pre-trained and frozen F": $F$ and $D$ are trained first for `iterations` steps
#   without $C$, then $C$ alone with $F$ frozen (eval mode).
# * **Diagnostic networks.** The local net's only access to where a window lies is the zero padding at the
#   frame, as for any padded CNN; the faces' parts are kept away from it. Its receptive field is 5 px
#   (`local_rf`; the note allows ≤ 7), smaller than a part (9 px), and the parts are 4 px apart, so a window sees a piece of one part,
#   never two (their relative place would be a global cue). A local net that learned nothing would also pass the "not above chance" claims; the
#   upright-parts claim (local net *above* chance) is the control that it can learn a local cue in this budget.
#   An earlier version of this chapter used isotropic disks as parts: on those the local net stayed at chance
#   even for aligned faces (no part has a local orientation), so the control failed; the parts are now
#   oriented, and the contrast set scrambles their orientation instead of moving the face.
# * **Smoke scale.** $C$ AdamW 2e-3 → 2e-6 and $F$/$D$ Adam 1e-3 instead of 3e-4 → 3e-7 and 2e-4 (160 steps);
#   a 5×5 stride-2 stem instead of 11×11/4; probes on 3 labelled digits per class (as in chapter 3, so that
#   random features do not already solve the probe).
# * **Probes (`probe_mode`).** This page (smoke) uses the *cached* probe: each layer's features are extracted
#   once, one fixed view per training digit, and the linear classifier trains on them (cheap at this size, and
#   the seed records stay as they were). The full configs use the *streaming* probe
#   (`thesislib.eval.streaming_probe`): one frozen forward per batch feeds every layer's head, the features are
#   never cached, and the training set's transform runs every epoch, so each epoch sees a fresh random crop and
#   flip of every image, as the thesis's protocols: Table 4.1's random 96×96 crops (500 epochs), Table 4.2's
#   random 64×64 crops of the native 96-px images (700 epochs), Table 4.3's random 96×96 crops of CelebA (100
#   epochs, one JPEG decode per image per epoch for all layers and attributes), and Tables 4.5 / 4.6 on *all* of
#   ImageNet / Places205 train with random 224 crops (30 epochs: the thesis gives no length, a decision), tested on
#   the centre 224 crop and on the softmax averaged over the ten standard crops (four corners and the centre, each
#   mirrored: the † rows; the thesis names no crop set, a decision). The ImageNet / Places images are resized whole
#   to 258 = 1.15 × 224 before cropping, the margin $C$ itself trained with, where Zhang et al. load 256 (a
#   decision). The streaming heads standardise each feature by the mean and std of a first pass over the training
#   set (each image's view drawn from its index, so the statistics do not depend on the number of GPUs) rather than
#   the official code's affine-free BatchNorm (running statistics); with that choice the two modes agree on fixed
#   views (tested in float32; at full scale the trunk runs under bf16 autocast, the heads stay in float32). At full
#   scale the heads train at the official batch 64 (`probe_batch_size`) with the official code's staircase
#   learning rate (`probe_schedule: official`). A cached run on
#   full-scale data records under a protocol tag (`+reduced-probe` on ImageNet: `probe_per_class` images per
#   class; `+fixed-views` on STL-10 / CelebA), never beside the thesis's rows; the random $C$'s probes record as
#   the Random rows (`<data>/random`).
# * **Full-scale sizes not stated for CelebA and ImageNet.** LCI windows and load sizes follow STL-10's ratios
#   (48-px windows on 64-px crops of 80-px images): CelebA 72-px windows on 96 crops of 112, ImageNet 96-px
#   windows on 128 crops of 160 (`configs/lci/full_celeba.yaml`, `full_imagenet.yaml`).
#
# * **Steps against batch size.** The smoke run takes 160 steps of 8 images rather than 80 of 16: the same
#   images at about the same cost, but twice the updates of $F$ and $D$, whose patches must become locally
#   plausible for the LCI diagnostic to mean anything. Longer schedules were tried once while the chapter was
#   built, with an earlier warp and diagnostic than the ones above; they cost several times the 2-minute
#   budget, and nothing computed on this page rests on them.
# * **Probe protocol.** Each conv map is average-pooled to about `probe_dims` (1024) features, standardised, and
#   fitted with 3 labelled digits per class (30 images), as in chapter 3: with many labels the random C's pooled
#   pixels already solve digits. A longer C schedule was tried once while building the chapter and did not
#   change the comparison clearly; it was not pursued (the spotting-artifacts chapter shows the same at this
#   scale), and this page's probe verdicts come only from the runs above.
# * **kNN and retrievals (Figs. 4.6, 4.7).** The thesis lists no k; the smoke curve reads k = 1, 3, 5, 10, 20,
#   50 (`KNN_KS`). The query is left out by masking its own index rather than dropping the first of its k+1
#   neighbours (the same unless the set holds an exact duplicate, where masking stays leave-one-out); votes are
#   majority votes, ties to the smaller digit. The random $C$ stands in for the thesis's supervised network, and
#   one centre crop for its five crops. Only replicate 0 is shown and nothing is recorded; there is no
#   full-scale path (the thesis's set, Places validation, with a supervised network beside it).
# * **Fig. 4.1's test.** The thesis gives neither the band width nor the inpainting network: the bands are
#   `tiles_band` pixels wide (2 px on 6-px tiles here, 8 px on ImageNet's 32-px tiles in
#   `full_imagenet_tiles.yaml`), `band // 2` before each internal border and the rest after, and they are filled
#   by $F_b$, the chapter's $F$ architecture trained adversarially with its own $D$ on the band task alone (random
#   `image_size` windows of the unlabelled images, tiles shuffled, bands erased; $D$'s real pairs are the natural
#   windows, its fake ones the inpainted shuffles; loss: hinge + `lambda_border` · context MSE, no autoencoding, no
#   $C$; `tiles_inpainter_iterations` steps: 160 here, 50,000 at full scale, not in the thesis), run on the whole
#   image with the noise $z$ in the bands as in Eq. 4.3 and its output pasted into the bands only. $F_b$ is trained
#   once per run (from seed + 1000, on that seed's split, so it may have seen some replicates' held-out digits) and
#   cached under the run directory. The permutation is uniform over the non-identity ones. Each held-out image
#   enters natural and transformed (the classes are balanced and share their content), the probe trains on one half
#   of the images and is tested on the other. The "ImageNet labels" network is, at smoke scale, the chapter's $C$
#   trained on the digits' labels through the engine (Adam, 4 epochs); at full scale the same $C$ architecture with a
#   1000-way head trained on ILSVRC labels for 90 epochs (Adam, not Krizhevsky's SGD: a decision;
#   `full_imagenet_tiles.yaml`), and only that setting records under Fig. 4.1's row (`imagenet/tiles`). The same
#   probes with the chapter's $F$ in the bands (which the self-supervised $C$ learned to spot) record under
#   `…+chapterF`. At smoke scale the supervised stand-in trains for only a few epochs, so its top-1 is printed
#   and named in the verdict prose, and the gains are reported in points beside the random $C$'s probe accuracy;
#   the generated prose flags the ceiling when a random $C$'s probe already reaches 90 %. The supervised $C$ trains on random crops *and flips* of the digits (the
#   shared fine-tuning's augmentation).
#
# ## 9. Replication table and the full scale

# %%
tnb.show_replication("lci")

# %% [markdown]
# Put STL-10 (`$THESISLIB_DATA/stl10/stl10_binary/`), CelebA (`$THESISLIB_DATA/celeba/`) or ImageNet
# (`$THESISLIB_DATA/imagenet/ILSVRC/...`) in place (nothing is downloaded), then
#
# ```
# thesislib run lci --scale full_stl10 -p nproc=4                          # Table 4.2, Rot+Warp+LCI
# thesislib run lci --scale full_stl10 -p nproc=4 -p transforms=[rot,lci]  # another Table 4.2 row
# thesislib run lci --scale full_stl10_lci -p nproc=4 -p patch_size=32     # Table 4.1 (a)
# thesislib run lci --scale full_celeba -p nproc=4                         # Table 4.3 (40-attribute AP probes)
# thesislib run lci --scale full                                           # Table 4.5 (ImageNet, nproc 4)
# thesislib run lci --scale full_places                                    # Table 4.6 (Places205 probes)
# thesislib run lci --scale full_voc07                                     # Table 4.4: ImageNet run + VOC07 cls
# thesislib run lci --scale full_imagenet_tiles                           # Fig. 4.1: ImageNet run + tile test
# thesislib record runs/lci/<stamp>-full_stl10
# ```
#
# `full_voc07_det` and `full_voc12_seg` are the same ImageNet pre-training followed by the VOC07 detection
# (torchvision Faster R-CNN, not the thesis's Fast R-CNN) and VOC12 segmentation (an FCN-style head) transfers,
# each after Krähenbühl et al.'s rescaling with C's BN absorbed into its convolutions. `full_stl10_lci` evaluates
# with Table 4.1's protocol (a linear classifier on frozen conv5, 500 epochs on a fresh random 96×96 crop of every
# image each epoch: the streaming probe). `full_celeba` probes the 40 attributes (one logistic regression per
# attribute on each frozen layer, official train / test partition, mean attribute AP: Table 4.3's metric).
# `full_stl10_resnet34` is Table 4.7: C is a ResNet-34 (torchvision's layout with a 3×3 stride-1 stem and no
# max-pool, IIC's small-input setting, a decision), trained with Rot+Warp+LCI for 200 epochs, then fine-tuned whole
# with a new 10-way head for 300 epochs on the 5,000 labelled images and tested on the 8,000 test images with the
# softmax averaged over 10 random crops (the fine-tune's Adam settings are not in the thesis: a decision); only that
# setting is recorded under Table 4.7's "Ours" row. `full` / `full_imagenet` probe conv1-5 on all of ImageNet
# train (Table 4.5: `imagenet/rot+warp+lci` single crop, `imagenet/rot+warp+lci-multicrop` for "Ours†");
# `full_places` probes the same ImageNet-trained C on all of Places205 (Table 4.6: `places/rot+warp+lci` and
# `-multicrop`; give it the ImageNet run's `-p checkpoint_dir=...` and the training resumes finished instead of
# running again). `full_imagenet_tiles` is `full_imagenet`'s run followed by Fig. 4.1's test (10,000 ILSVRC
# validation images, bands by $F_b$ trained for 50,000 steps, a supervised AlexNet-style $C$ trained on ILSVRC labels
# for 90 epochs in one process on one GPU after the self-supervised run: its cost is stated in the yaml), recorded
# as `imagenet/tiles`; the other full configs switch the test off. The full configs run one replicate
# (`n_seeds: 1`): their verdicts read *undetermined*.
#
# ## 10. Saving the run

# %%
experiments = E.aggregate(params, results)
tnb.save_run(params.output_dir, {"chapter": "lci", "scale": params.scale, "experiments": experiments,
                                 "verdicts": verdicts_dict(verdicts + tiles_vs)}, params, device)
print(f"{len(experiments)} experiment ids; notebook time since setup {time.perf_counter() - started:.0f} s")

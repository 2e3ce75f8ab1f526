"""Before/after measurement of the distractor-scene preset (see README.md in this folder).

Usage: ``PYTHONPATH=$PWD python results/micro_annotation/preset/measure.py P SEEDS [JSON]``, e.g.
``... measure.py 0.3 0,1,2 '{"pattern_layer": "features"}'``: one smoke replicate per seed
(oracle annotator, no SEC chain) on ``distractor_scenes(p_distractor_without_object=P)``; per class
CorLoc, cue recall, cue precision and share on the band, each before / after / deletion bound (%).
"""

import json
import sys
import time

import torch

from thesislib.data import scenes
from thesislib.methods.micro_annotation import data as micro_data
from thesislib.methods.micro_annotation import experiments
from thesislib.methods.micro_annotation.config import micro_params

torch.set_num_threads(1)
p = float(sys.argv[1])
seeds = [int(s) for s in sys.argv[2].split(",")]
extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
preset = scenes.distractor_scenes
micro_data.distractor_scenes = lambda **kw: preset(**{"p_distractor_without_object": p, **kw})
params = micro_params(sec_retrain=False, **extra)
device = torch.device("cpu")
for s in seeds:
    start = time.perf_counter()
    prep, annotation, ev = experiments.run_scene_seed(params, s, device)
    for name in ("boat", "train", "car", "ball"):
        m = ev.metrics[name]
        print(f"p={p} seed={s} {name:5s} acc={prep.accuracy:.2f} k={prep.clusterings[name].k} "
              f"distr={annotation.classes[name].distractors} "
              + " ".join(f"{k}={100 * m[k + '_' + t]:.0f}" for k in ("corloc", "recall", "precision", "on_distractor")
                         for t in ("before", "after", "bound") if k + "_" + t in m), flush=True)
    print(f"  {time.perf_counter() - start:.1f}s", flush=True)

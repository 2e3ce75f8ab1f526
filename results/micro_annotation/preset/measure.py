"""Before/after measurement of the distractor-scene preset: boat/train CorLoc, recall, bound."""
import sys, time, json
import torch
from thesislib.data import scenes as sc
from thesislib.methods.micro_annotation import data as mdata
from thesislib.methods.micro_annotation import experiments as ex
from thesislib.methods.micro_annotation.config import micro_params

torch.set_num_threads(1)
p = float(sys.argv[1]); seeds = [int(s) for s in sys.argv[2].split(",")]
extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
orig = sc.distractor_scenes
mdata.distractor_scenes = lambda **kw: orig(p_distractor_without_object=p, **kw)
params = micro_params(sec_retrain=False, **extra)
dev = torch.device("cpu")
rows = []
for s in seeds:
    t = time.perf_counter()
    prep, ann, ev = ex.run_scene_seed(params, s, dev)
    for name in ("boat", "train", "car", "ball"):
        m = ev.metrics[name]
        print(f"p={p} seed={s} {name:5s} acc={prep.accuracy:.2f} k={prep.clusterings[name].k} "
              f"distr={ann.classes[name].distractors} "
              + " ".join(f"{k}={100*m[k+'_'+t]:.0f}" for k in ("corloc", "recall", "precision", "on_distractor")
                         for t in ("before", "after", "bound") if k + '_' + t in m), flush=True)
    print(f"  {time.perf_counter()-t:.1f}s", flush=True)

"""SEC: seed, expand and constrain (Kolesnikov & Lampert, ECCV 2016; Kolesnikov thesis, chapter 2).

Weakly-supervised semantic segmentation from image-level labels. Modules:

* :mod:`~thesislib.methods.sec.config` — :class:`SECParams`, the chapter's one parameter
  declaration, the ablation switches and everything derived from them (loss, CRF, engine and
  localizer configs, experiment ids);
* :mod:`~thesislib.methods.sec.data` — scenes (smoke) and VOC 2012 + SBD (full);
* :mod:`~thesislib.methods.sec.model` — the segmentation networks and their lr groups;
* :mod:`~thesislib.methods.sec.losses` — Eqs. 2.2-2.5: seeding loss, GWRP, expansion loss and
  its decay rule, the CRF target Q and the constrain-to-boundary loss;
* :mod:`~thesislib.methods.sec.objective` — :class:`SECLoss` (Eq. 2.1) with switches;
* :mod:`~thesislib.methods.sec.cues` — weak localization (CAM foreground, saliency background),
  conflict resolution and cue statistics; :mod:`~thesislib.methods.sec.cue_file` — the released
  code's precomputed cue file;
* :mod:`~thesislib.methods.sec.localization` — the localization networks and cue computation;
* :mod:`~thesislib.methods.sec.train` — cues, training, one run in-process or under torchrun, CLI;
* :mod:`~thesislib.methods.sec.evaluate` — test-time prediction, mIoU (through the engine's
  sharded evaluation), cue statistics;
* :mod:`~thesislib.methods.sec.experiments` — replicates, ablations, verdicts, CRF benchmarks;
* :mod:`~thesislib.methods.sec.plots` — the chapter's figures.
"""

from thesislib.methods.sec.config import ABLATIONS, SECParams, config_for, sec_config
from thesislib.methods.sec.cue_file import (
                                            CueSet,
                                            cues_for_ids,
                                            load_cues,
                                            read_cue_file,
                                            read_input_list,
                                            write_cue_file,
                                            write_input_list,
)
from thesislib.methods.sec.cues import (
                                            background_cues,
                                            combine_cues,
                                            cue_statistics,
                                            downsample_masks,
                                            foreground_cues,
                                            median_filter3,
                                            saliency_map,
)
from thesislib.methods.sec.data import load_data
from thesislib.methods.sec.evaluate import evaluate, evaluate_config, predict, predict_probs
from thesislib.methods.sec.localization import CueConfig, CueMaps, compute_cues, sec_cam_vgg16
from thesislib.methods.sec.losses import (
                                            NO_CUE,
                                            constrain_loss,
                                            constrain_targets,
                                            cue_onehot,
                                            decay_for_mass,
                                            downscale_image,
                                            expansion_decays,
                                            expansion_loss,
                                            gwrp,
                                            sec_probabilities,
                                            seeding_loss,
                                            training_crf_scale,
)
from thesislib.methods.sec.objective import SECLoss, SECLossConfig, SECLossOutput
from thesislib.methods.sec.train import get_cues, train_localizer_for, train_sec

__all__ = [
    "ABLATIONS", "CueConfig", "CueMaps", "CueSet", "NO_CUE", "SECLoss", "SECLossConfig", "SECLossOutput",
    "SECParams", "background_cues", "combine_cues", "compute_cues", "config_for", "constrain_loss",
    "constrain_targets", "cue_onehot", "cue_statistics", "cues_for_ids", "decay_for_mass", "downsample_masks",
    "downscale_image", "evaluate", "evaluate_config", "expansion_decays", "expansion_loss", "foreground_cues",
    "get_cues", "gwrp", "load_cues", "load_data", "median_filter3", "predict", "predict_probs", "read_cue_file",
    "read_input_list", "saliency_map", "sec_cam_vgg16", "sec_config", "sec_probabilities", "seeding_loss",
    "train_localizer_for", "train_sec", "training_crf_scale", "write_cue_file", "write_input_list",
]

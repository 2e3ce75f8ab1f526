"""Run by test_engine_multinode.py under torchrun (one process per "node"): trains the testkit MLP
through DDP and, on global rank 0, saves the final parameters to ``argv[1]``."""

import sys

import torch
from engine_ddp_worker import DDP_CONFIG, build
from engine_testkit import RegressionSet, regression_step

from thesislib.engine import TrainConfig, cleanup, fit, get_world_size, init_distributed, is_main_process

torch.set_num_threads(1)
device = init_distributed("cpu")
model, optimizer = build()
fit(model, optimizer, RegressionSet(36, noise=0.05), regression_step, TrainConfig(**{**DDP_CONFIG, "progress": "none"}),
    device)
if is_main_process():
    torch.save({"state": model.state_dict(), "world": get_world_size()}, sys.argv[1])
cleanup()

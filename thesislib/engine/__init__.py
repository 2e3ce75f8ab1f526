"""The shared training engine: loop, schedules, EMA, checkpoints with exact resume, DDP.

Typical use in a chapter::

    from thesislib.engine import TrainConfig, fit, build_schedule, make_scheduler

    def step_fn(model, batch):
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"acc": (logits.argmax(1) == y).float().mean()}

    config = TrainConfig(epochs=10, batch_size=128, checkpoint_dir="runs/x/ckpt", resume=True)
    history = fit(model, optimizer, train_set, step_fn, config, device,
                  scheduler=make_scheduler(optimizer, build_schedule("cosine", total_steps=...)))
    history.get("acc")
"""

from thesislib.engine.checkpoint import (
                                         CheckpointError,
                                         ConfigMismatchError,
                                         latest_checkpoint,
                                         list_checkpoints,
                                         load_checkpoint,
                                         save_checkpoint,
)
from thesislib.engine.config import OPTIMISATION_FIELDS, RUN_FIELDS, TrainConfig, fingerprint, train_config
from thesislib.engine.distributed import (
                                         LaunchError,
                                         all_gather_object,
                                         all_reduce_mean,
                                         barrier,
                                         cleanup,
                                         distributed_session,
                                         get_local_rank,
                                         get_rank,
                                         get_world_size,
                                         init_distributed,
                                         is_distributed,
                                         is_main_process,
                                         launch,
                                         reduce_metrics,
                                         torchrun_command,
                                         unwrap,
                                         wrap_ddp,
)
from thesislib.engine.ema import ModelEMA
from thesislib.engine.evaluate import evaluate
from thesislib.engine.history import History
from thesislib.engine.loop import NonFiniteLossError, Trainer, fit, to_device
from thesislib.engine.progress import resolve_progress
from thesislib.engine.sampler import (
                                         GlobalBatchSampler,
                                         IndexDataset,
                                         SeededDataset,
                                         collate_indices,
                                         cycling_rows,
                                         epoch_order,
                                         steps_per_epoch,
)
from thesislib.engine.schedules import (
                                         SCHEDULES,
                                         Constant,
                                         Cosine,
                                         Exponential,
                                         Linear,
                                         Malleable,
                                         MultiStep,
                                         Poly,
                                         Schedule,
                                         Staircase,
                                         StepDecay,
                                         build_schedule,
                                         epochs_to_steps,
                                         make_scheduler,
)
from thesislib.engine.update import OptimizerSlot, Update, UpdateFn, single_model_update

__all__ = [
    "CheckpointError", "ConfigMismatchError", "latest_checkpoint", "list_checkpoints", "load_checkpoint",
    "save_checkpoint", "OPTIMISATION_FIELDS", "RUN_FIELDS", "TrainConfig", "fingerprint", "train_config",
    "LaunchError", "all_gather_object",
    "all_reduce_mean", "barrier", "cleanup", "distributed_session", "get_local_rank", "get_rank", "get_world_size",
    "init_distributed",
    "is_distributed", "is_main_process", "launch", "torchrun_command", "reduce_metrics", "unwrap", "wrap_ddp",
    "ModelEMA", "evaluate",
    "History", "NonFiniteLossError", "Trainer", "fit", "to_device", "OptimizerSlot", "Update", "UpdateFn",
    "single_model_update", "resolve_progress", "GlobalBatchSampler",
    "SeededDataset", "IndexDataset", "collate_indices", "cycling_rows", "epoch_order", "steps_per_epoch",
    "SCHEDULES", "Constant", "Cosine", "Exponential", "Linear",
    "Malleable", "MultiStep", "Poly", "Schedule", "Staircase", "StepDecay", "build_schedule", "epochs_to_steps",
    "make_scheduler",
]

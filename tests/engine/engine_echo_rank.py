"""Run by test_engine_ddp.py through ``launch`` (torchrun): prints the rank; imports nothing heavy."""

import os

print(f"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}", flush=True)

"""Shared pytest settings: CPU tests use one torch thread (2-core CI machines), GPU tests skip."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("THESISLIB_TEST_THREADS", "1")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)

"""torchvision's CIFAR readers without the MD5 gate (imported lazily: torchvision is slow to import).

torchvision's ``CIFAR10``/``CIFAR100`` refuse any file whose MD5 differs from the official
archive, which would also refuse the small real-format fixtures written by
:mod:`thesislib.data.fixtures`. These subclasses only require the files to exist; the
official checksums are checked on request by :func:`thesislib.data.cifar.verify_cifar`.
The classes live at module level so datasets pickle into spawned DataLoader workers.
"""

from __future__ import annotations

from torchvision.datasets import CIFAR10, CIFAR100


class LocalCIFAR10(CIFAR10):
    """``torchvision.datasets.CIFAR10`` reading ``cifar-10-batches-py`` without MD5 checks."""

    train_list = [[name, None] for name, _ in CIFAR10.train_list]
    test_list = [[name, None] for name, _ in CIFAR10.test_list]
    meta = {**CIFAR10.meta, "md5": None}


class LocalCIFAR100(CIFAR100):
    """``torchvision.datasets.CIFAR100`` reading ``cifar-100-python`` without MD5 checks."""

    train_list = [[name, None] for name, _ in CIFAR100.train_list]
    test_list = [[name, None] for name, _ in CIFAR100.test_list]
    meta = {**CIFAR100.meta, "md5": None}


OFFICIAL_MD5: dict[str, dict[str, str]] = {
    "cifar10": {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}
    | {CIFAR10.meta["filename"]: CIFAR10.meta["md5"]},
    "cifar100": {name: md5 for name, md5 in CIFAR100.train_list + CIFAR100.test_list}
    | {CIFAR100.meta["filename"]: CIFAR100.meta["md5"]},
}

"""The released code's precomputed localization cues (``localization_cues.pickle[.gz]``).

Format (read from the file shipped with kolesman/SEC, ``training/localization_cues/``): a
Python 2 ``cPickle`` (protocol 2) of one dict with two entries per training image i::

    "%i_labels"  int64 (m,)      VOC indices 1..20 of the image's foreground classes
    "%i_cues"    int64 (3, M)    (class 0..20, row, col) of every seeded location on 41 x 41

i is the image's position in ``training/input_list.txt``, whose lines read ``2008_007028.jpg 0``
(file name, index). The shipped file holds 10,582 images (*trainaug*); its seeds cover 24.0% of
the locations (9.8% background, 14.2% foreground) and no location carries two classes.

:func:`read_cue_file` loads it with a restricted unpickler (only numpy's array reconstruction is
allowed, so a tampered file cannot run code) and :func:`cues_for_ids` turns it into cue label
maps (N, 41, 41) aligned with a dataset's ids. :func:`write_cue_file` writes the same byte-level
layout as the Python 2 original (fixtures, or cues computed here for the released Caffe code).

:func:`read_foreground_cues` reads foreground cue maps keyed by image id from an ``.npz`` (the
micro-annotated cues of thesis chapter 3), which :class:`~thesislib.methods.sec.train.SECConfig`
puts in place of its cues' foreground (``foreground_cue_file``).
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thesislib.data.integrity import DatasetCorruptError
from thesislib.data.transforms import resize_mask
from thesislib.methods.sec.losses import NO_CUE

DATASET = "SEC localization cues"
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a cue file")
        if name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        if module == "_codecs":
            import codecs

            return codecs.encode
        return getattr(np, name)


def _open(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def read_cue_file(path: str | Path) -> dict[str, np.ndarray]:
    """The raw dict of a cue file (gzip or plain): ``{"%i_labels": ..., "%i_cues": ...}``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"cue file {path} does not exist (the released code ships it as "
                                "training/localization_cues/localization_cues.pickle.gz)")
    try:
        data = _ArrayUnpickler(io.BytesIO(_open(path)), encoding="latin1").load()
    except Exception as err:  # noqa: BLE001 (gzip, pickle and numpy errors all mean "corrupt")
        raise DatasetCorruptError(DATASET, path, f"{type(err).__name__}: {err}") from err
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise DatasetCorruptError(DATASET, path, "expected a dict with string keys")
    return data


def read_input_list(path: str | Path) -> list[str]:
    """Image ids by index from ``input_list.txt`` (``<name>.jpg <index>`` per line): the id of
    index i is entry i. Indices must be 0..N-1, each once."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"input list {path} does not exist (training/input_list.txt of the "
                                "released code)")
    entries: dict[int, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DatasetCorruptError(DATASET, path, f"line {number} is not '<file> <index>': {line!r}")
        index = int(parts[1])
        if index in entries:
            raise DatasetCorruptError(DATASET, path, f"index {index} appears twice")
        entries[index] = Path(parts[0]).stem
    if sorted(entries) != list(range(len(entries))):
        raise DatasetCorruptError(DATASET, path, "indices are not 0..N-1")
    return [entries[i] for i in range(len(entries))]


@dataclass(frozen=True)
class CueSet:
    """Cues of a list of images: ``ids``, ``labels`` uint8 (N, 20) (foreground classes),
    ``cues`` uint8 (N, h, w) label maps (255 = no cue), ``conflicts`` (locations listed with
    two classes, dropped; 0 for the shipped file)."""

    ids: list[str]
    labels: np.ndarray
    cues: np.ndarray
    conflicts: int


def cues_for_ids(data: Mapping[str, np.ndarray], index_ids: Sequence[str], ids: Sequence[str] | None = None,
                 size: int = 41, num_labels: int = 21, path: str | Path = "<cue file>") -> CueSet:
    """Cue label maps for ``ids`` (default: every id of ``index_ids``, in that order).

    ``index_ids`` maps a file index to an image id (:func:`read_input_list`). An id missing from
    the list, or an index missing from the file, is an error naming it.
    """
    position = {image_id: i for i, image_id in enumerate(index_ids)}
    wanted = list(index_ids) if ids is None else list(ids)
    unknown = [i for i in wanted if i not in position]
    if unknown:
        raise KeyError(f"{len(unknown)} image id(s) are not in the input list, e.g. {unknown[:3]}")
    labels = np.zeros((len(wanted), num_labels - 1), dtype=np.uint8)
    cues = np.full((len(wanted), size, size), NO_CUE, dtype=np.uint8)
    conflicts = 0
    for row, image_id in enumerate(wanted):
        index = position[image_id]
        try:
            present = np.asarray(data[f"{index}_labels"], dtype=np.int64).reshape(-1)
            triples = np.asarray(data[f"{index}_cues"], dtype=np.int64)
        except KeyError as err:
            raise DatasetCorruptError(DATASET, Path(path), f"no entry {err.args[0]!r} (image {image_id})") from err
        if triples.ndim != 2 or triples.shape[0] != 3:
            raise DatasetCorruptError(DATASET, Path(path), f"{index}_cues has shape {triples.shape}, "
                                      "expected (3, M)")
        cls, r, c = triples
        if present.size and (present.min() < 1 or present.max() >= num_labels):
            raise DatasetCorruptError(DATASET, Path(path), f"{index}_labels outside 1..{num_labels - 1}")
        if triples.size and (cls.min() < 0 or cls.max() >= num_labels or min(r.min(), c.min()) < 0
                             or max(r.max(), c.max()) >= size):
            raise DatasetCorruptError(DATASET, Path(path), f"{index}_cues outside {num_labels} classes "
                                      f"x {size} x {size}")
        labels[row, present - 1] = 1
        count = np.zeros((size, size), dtype=np.int64)
        np.add.at(count, (r, c), 1)
        cues[row, r, c] = cls.astype(np.uint8)
        clash = count > 1
        conflicts += int(clash.sum())
        cues[row][clash] = NO_CUE
    return CueSet(wanted, labels, cues, conflicts)


def load_cues(path: str | Path, input_list: str | Path, ids: Sequence[str] | None = None,
              size: int = 41) -> CueSet:
    """:func:`read_cue_file` + :func:`read_input_list` + :func:`cues_for_ids` in one call."""
    return cues_for_ids(read_cue_file(path), read_input_list(input_list), ids, size=size, path=path)


# ---------------------------------------------------------------------------------------------
# foreground cue maps keyed by image id (micro-annotation's cues_before.npz / cues_after.npz)
# ---------------------------------------------------------------------------------------------

FOREGROUND_DATASET = "foreground cue maps"


def read_foreground_cues(path: str | Path, ids: Sequence[str], size: int = 41,
                         num_labels: int = 21) -> np.ndarray:
    """Foreground cue maps uint8 (N, size, size) for ``ids`` from an ``.npz`` of one map per image id.

    Each entry ``<image id>`` is an integer (h, w) map with 0 = no foreground cue and c = VOC
    class c (1 .. ``num_labels`` - 1): the files :mod:`thesislib.methods.micro_annotation.voc`
    writes (41 x 41). Maps of another side are resized to ``size`` by nearest neighbour. A missing
    file, an id without a map, or a map that is not such a label map is an error naming it.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"foreground cue file {path} does not exist (an .npz with one (h, w) uint8 map per "
                                "image id, 0 = none, c = class c: cues_after.npz of the micro-annotation VOC run)")
    try:
        archive = np.load(path, allow_pickle=False)
        keys = set(archive.files)
    except Exception as err:  # noqa: BLE001 (zip and format errors all mean "corrupt")
        raise DatasetCorruptError(FOREGROUND_DATASET, path, f"{type(err).__name__}: {err}") from err
    missing = [i for i in ids if i not in keys]
    if missing:
        raise KeyError(f"{path}: {len(missing)} of {len(ids)} training image(s) have no foreground cue map, "
                       f"e.g. {missing[:3]} (was it written for the same split?)")
    out = np.zeros((len(ids), size, size), dtype=np.uint8)
    with archive:
        for row, image_id in enumerate(ids):
            try:
                cue = archive[image_id]
            except Exception as err:  # noqa: BLE001
                raise DatasetCorruptError(FOREGROUND_DATASET, path, f"entry {image_id!r}: {err}") from err
            if cue.ndim != 2 or not np.issubdtype(cue.dtype, np.integer):
                raise DatasetCorruptError(FOREGROUND_DATASET, path, f"entry {image_id!r} is {cue.dtype} "
                                          f"{cue.shape}, expected an integer (h, w) map")
            if cue.size and (cue.min() < 0 or cue.max() >= num_labels):
                raise DatasetCorruptError(FOREGROUND_DATASET, path, f"entry {image_id!r} has values outside "
                                          f"0..{num_labels - 1}")
            if cue.shape != (size, size):
                cue = resize_mask(cue.astype(np.int64), size).numpy()
            out[row] = cue
    return out


# ---------------------------------------------------------------------------------------------
# writing, in the Python 2 byte layout of the shipped file
# ---------------------------------------------------------------------------------------------

def _int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    return b"J" + struct.pack("<i", value)


def _bytes(data: bytes) -> bytes:
    return (b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<I", len(data))) + data


def _array(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype="<i8")
    shape = b"".join(_int(int(s)) for s in arr.shape)
    shape = (b"(" + shape + b"t") if arr.ndim > 3 else shape + {0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}[arr.ndim]
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _bytes(b"b") + b"\x87R"
            + b"(K\x01" + shape
            + b"cnumpy\ndtype\n" + _bytes(b"i8") + b"K\x00K\x01\x87R"
            + b"(K\x03" + _bytes(b"<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
            + b"\x89" + _bytes(arr.tobytes()) + b"tb")


def write_cue_file(path: str | Path, entries: Sequence[tuple[Sequence[int], np.ndarray]],
                   compress: bool = True) -> Path:
    """Write cues in the released format; entry i = (foreground VOC classes 1..20, cue label
    map (h, w) with 255 = no cue) becomes ``"%i_labels"`` and ``"%i_cues"`` (class, row, col).

    The bytes follow the shipped Python 2 file (protocol 2, ``numpy.core.multiarray``
    globals, byte strings), so Python 2's ``cPickle`` reads them too.
    """
    body = bytearray(b"\x80\x02}(")
    for i, (present, cue_map) in enumerate(entries):
        cue_map = np.asarray(cue_map)
        rows, cols = np.nonzero(cue_map != NO_CUE)
        triples = np.stack([cue_map[rows, cols].astype(np.int64), rows, cols])
        for key, value in ((f"{i}_labels", np.asarray(list(present), dtype=np.int64)), (f"{i}_cues", triples)):
            encoded = key.encode()
            body += b"X" + struct.pack("<I", len(encoded)) + encoded + _array(value)
    body += b"u."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(bytes(body)) if compress else bytes(body))
    return path


def write_input_list(path: str | Path, ids: Sequence[str]) -> Path:
    """``input_list.txt``: ``<id>.jpg <index>`` per line."""
    path = Path(path)
    path.write_text("".join(f"{image_id}.jpg {i}\n" for i, image_id in enumerate(ids)))
    return path

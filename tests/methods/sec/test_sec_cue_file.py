"""The released code's cue file (``localization_cues.pickle``) and input list."""

from __future__ import annotations

import gzip
import os
import pickle
import pickletools

import numpy as np
import pytest

from thesislib.data.integrity import DatasetCorruptError
from thesislib.methods.sec.cue_file import (
    cues_for_ids,
    load_cues,
    read_cue_file,
    read_foreground_cues,
    read_input_list,
    write_cue_file,
    write_input_list,
)
from thesislib.methods.sec.losses import NO_CUE


def _maps(rng, n, size=41):
    maps = np.full((n, size, size), NO_CUE, dtype=np.uint8)
    labels = []
    for i in range(n):
        classes = sorted(rng.choice(np.arange(1, 21), size=int(rng.integers(1, 3)), replace=False).tolist())
        labels.append(classes)
        maps[i][rng.random((size, size)) < 0.1] = 0
        for c in classes:
            maps[i][rng.random((size, size)) < 0.07] = c
    return labels, maps


def test_written_file_has_the_python2_layout(tmp_path):
    labels, maps = _maps(np.random.default_rng(0), 2)
    path = write_cue_file(tmp_path / "localization_cues.pickle.gz", list(zip(labels, maps)))
    raw = gzip.decompress(path.read_bytes())
    ops = list(pickletools.genops(raw))
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    globals_ = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
    assert globals_ == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}  # as the shipped file
    plain = pickle.loads(raw, encoding="latin1")  # the standard unpickler agrees
    assert sorted(plain) == ["0_cues", "0_labels", "1_cues", "1_labels"]
    assert plain["0_cues"].dtype == np.int64 and plain["0_cues"].shape[0] == 3


def test_roundtrip_through_the_input_list(tmp_path):
    rng = np.random.default_rng(1)
    labels, maps = _maps(rng, 5)
    ids = [f"2008_{i:06d}" for i in range(5)]
    cue_path = write_cue_file(tmp_path / "cues.pickle", list(zip(labels, maps)), compress=False)
    list_path = write_input_list(tmp_path / "input_list.txt", ids)
    assert list_path.read_text().splitlines()[1] == "2008_000001.jpg 1"
    cue_set = load_cues(cue_path, list_path, ids=[ids[3], ids[0]])
    assert cue_set.ids == [ids[3], ids[0]] and cue_set.conflicts == 0
    np.testing.assert_array_equal(cue_set.cues, maps[[3, 0]])
    for row, i in enumerate((3, 0)):
        assert np.flatnonzero(cue_set.labels[row]).tolist() == [c - 1 for c in labels[i]]
    with pytest.raises(KeyError, match="not in the input list"):
        load_cues(cue_path, list_path, ids=["2012_999999"])


def test_shuffled_input_list_maps_indices_to_ids(tmp_path):
    (tmp_path / "list.txt").write_text("b.jpg 1\na.jpg 0\n\nc.jpg 2\n")
    assert read_input_list(tmp_path / "list.txt") == ["a", "b", "c"]
    (tmp_path / "bad.txt").write_text("a.jpg 0\nb.jpg 2\n")
    with pytest.raises(DatasetCorruptError, match="0..N-1"):
        read_input_list(tmp_path / "bad.txt")


def test_conflicting_locations_are_dropped():
    data = {"0_labels": np.array([3]), "0_cues": np.array([[0, 3, 3], [1, 1, 2], [1, 1, 2]])}
    cue_set = cues_for_ids(data, ["x"], size=4)
    assert cue_set.conflicts == 1
    assert cue_set.cues[0, 1, 1] == NO_CUE and cue_set.cues[0, 2, 2] == 3


def test_malicious_and_corrupt_files_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pickle"
    evil.write_bytes(pickle.dumps({"0_labels": Evil()}, protocol=2))
    with pytest.raises(DatasetCorruptError, match="not allowed"):
        read_cue_file(evil)
    truncated = tmp_path / "trunc.pickle"
    good = write_cue_file(tmp_path / "ok.gz", [([1], np.zeros((4, 4), np.uint8))])
    truncated.write_bytes(gzip.decompress(good.read_bytes())[:30])
    with pytest.raises(DatasetCorruptError):
        read_cue_file(truncated)
    with pytest.raises(FileNotFoundError, match="localization_cues"):
        read_cue_file(tmp_path / "missing.pickle")
    out_of_range = {"0_labels": np.array([3]), "0_cues": np.array([[0], [41], [0]])}
    with pytest.raises(DatasetCorruptError, match="outside"):
        cues_for_ids(out_of_range, ["x"])
    with pytest.raises(DatasetCorruptError, match="no entry"):
        cues_for_ids({}, ["x"])


def test_foreground_cue_maps_are_read_by_id_and_resized(tmp_path):
    rng = np.random.default_rng(0)
    maps = {f"2008_00000{i}": rng.integers(0, 21, size=(41, 41)).astype(np.uint8) for i in range(3)}
    path = tmp_path / "cues_after.npz"
    np.savez_compressed(path, **maps)
    ids = ["2008_000002", "2008_000000"]
    got = read_foreground_cues(path, ids)
    assert got.dtype == np.uint8 and got.shape == (2, 41, 41)
    np.testing.assert_array_equal(got[0], maps["2008_000002"])
    np.testing.assert_array_equal(got[1], maps["2008_000000"])
    small = read_foreground_cues(path, ids, size=21)   # nearest neighbour: every value is one of the map's
    assert small.shape == (2, 21, 21) and set(np.unique(small[0])) <= set(np.unique(maps["2008_000002"]))
    np.testing.assert_array_equal(small[0, 0, 0], maps["2008_000002"][0, 0])


def test_foreground_cue_file_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="cues_after.npz"):
        read_foreground_cues(tmp_path / "missing.npz", ["a"])
    path = tmp_path / "c.npz"
    np.savez(path, a=np.zeros((4, 4), np.uint8), b=np.full((4, 4), 21, np.uint8), c=np.zeros((2, 4, 4), np.uint8),
             d=np.zeros((4, 4), np.float32))
    with pytest.raises(KeyError, match="1 of 2 .*'zz'"):
        read_foreground_cues(path, ["a", "zz"], size=4)
    with pytest.raises(DatasetCorruptError, match="outside 0..20"):
        read_foreground_cues(path, ["b"], size=4)
    for bad in ("c", "d"):
        with pytest.raises(DatasetCorruptError, match="expected an integer"):
            read_foreground_cues(path, [bad], size=4)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetCorruptError):
        read_foreground_cues(broken, ["a"], size=4)

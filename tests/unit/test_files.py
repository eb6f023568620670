import os

import pytest

from metamon.files import atomic_path, atomic_write


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic_write(target, "first")
    atomic_write(target, b"\x00second")
    assert target.read_bytes() == b"\x00second"
    assert os.listdir(target.parent) == ["a.json"]


def test_failed_write_keeps_old_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]

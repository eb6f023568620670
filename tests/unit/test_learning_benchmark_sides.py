"""``benchmarks/learning.py --eps_side_only``: the eps player's side of the ε data, chosen by file name."""

import importlib.util
import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
FMT = "gen1ou"


@pytest.fixture
def learning(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # learning.py imports its sibling learning_report
    spec = importlib.util.spec_from_file_location("learning_bench", BENCH / "learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _touch(folder: Path, player: str, opponent: str, battle: int, result: str) -> Path:
    path = folder / f"metamon-{FMT}-{battle:010d}_Unrated_{player}_vs_{opponent}_12-06-2026-16:27:46_{result}.json.lz4"
    path.write_bytes(b"x")
    return path


def test_links_only_the_side_that_is_not_the_demonstrators(tmp_path, learning):
    source = tmp_path / "eps" / FMT
    source.mkdir(parents=True)
    eps_files = []
    for battle in range(3):  # each battle from both sides, as generate records it
        eps_files.append(_touch(source, "5GymLead2914177763", "GymLeade1706690743", battle, "LOSS"))
        _touch(source, "GymLeade1706690743", "5GymLead2914177763", battle, "WIN")

    dest = learning.link_learner_side(tmp_path / "eps", tmp_path / "eps_side", FMT, "GymLeader")
    linked = sorted((dest / FMT).iterdir())
    assert [p.name for p in linked] == sorted(p.name for p in eps_files)
    assert all(os.path.samefile(p, source / p.name) for p in linked)  # hard links, no copies
    # a second call (the benchmark re-run) keeps the links and adds none
    learning.link_learner_side(tmp_path / "eps", tmp_path / "eps_side", FMT, "GymLeader")
    assert len(list((dest / FMT).iterdir())) == 3


def test_a_folder_with_only_the_demonstrators_side_is_refused(tmp_path, learning):
    source = tmp_path / "mirror" / FMT
    source.mkdir(parents=True)
    _touch(source, "GymLeade1706690743", "GymLeade0000000001", 0, "WIN")
    with pytest.raises(SystemExit, match="no file in .* side other than GymLeader's"):
        learning.link_learner_side(tmp_path / "mirror", tmp_path / "out", FMT, "GymLeader")


def test_eps_side_only_without_mixed_is_refused(tmp_path, learning):
    with pytest.raises(SystemExit, match="--eps_side_only needs --mixed"):
        learning.main(["--eps_side_only", "--out", str(tmp_path)])

"""metamon.data.filter and scripts/filter_selfplay_data.py on files written with write_trajectory."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import lz4.frame
import pytest

from metamon.data.filter import FilterCriteria, filter_trajectories, judge_trajectory, main
from metamon.data.trajectory_file import parse_trajectory_filename, trajectory_filename, write_trajectory
from metamon.errors import MetamonError

REPO = Path(__file__).resolve().parents[2]
_counter = iter(range(10**6))


def traj(root, fmt="gen1ou", decisions=20, invalid=0, won=True, turns="auto", result=None, flags=True):
    """Write one file with ``decisions`` actions (+ the final -1), the first ``invalid`` flagged."""
    n = next(_counter)
    name = trajectory_filename(f"metamon-{fmt}-{n:010d}", f"p{n}", f"o{n}", won=won)
    extra = {"result": result or ("win" if won else "loss")}
    if turns is not None:
        extra["turns"] = decisions if turns == "auto" else turns
    if flags:
        extra["invalid_actions"] = [i < invalid for i in range(decisions)] + [False]
    actions = [i % 13 for i in range(decisions)] + [-1]
    write_trajectory(root, fmt, name, [{"t": i} for i in range(decisions + 1)], actions, **extra)
    return name


def names(folder):
    return sorted(p.name for p in Path(folder).iterdir()) if Path(folder).is_dir() else []


def test_invalid_rate_uses_recorded_flags_not_minus_ones(tmp_path):
    src = tmp_path / "in"
    crit = FilterCriteria(max_invalid_rate=0.05, min_turns=5, max_turns=100)
    ok = traj(src, decisions=10)  # trailing -1 alone would be 1/11 > 5% under the old rule (B13)
    one_in_20 = traj(src, decisions=20, invalid=1)  # exactly 5%: kept (rate must exceed the max)
    two_in_20 = traj(src, decisions=20, invalid=2)  # 10%
    report = filter_trajectories(src, tmp_path / "out", crit)
    assert names(tmp_path / "out" / "gen1ou") == sorted([ok, one_in_20])
    assert report.kept == {"gen1ou": 2}
    assert report.dropped == Counter({"invalid_rate": 1})
    assert two_in_20 not in names(tmp_path / "out" / "gen1ou")


def test_files_without_flags_count_as_rate_zero_with_a_warning(tmp_path):
    src = tmp_path / "in"
    name = traj(src, decisions=12, flags=False)
    report = filter_trajectories(src, tmp_path / "out", FilterCriteria(max_invalid_rate=0.0, min_turns=1))
    assert names(tmp_path / "out" / "gen1ou") == [name]
    assert report.warnings == Counter({"no_invalid_flags": 1})
    assert "warning: 1 files no invalid flags (treated as invalid rate 0)" in report.summary()


def test_turn_limits_use_recorded_turns_then_decisions(tmp_path):
    src = tmp_path / "in"
    crit = FilterCriteria(min_turns=10, max_turns=30)
    traj(src, decisions=40, turns=9)  # too short although 40 decisions
    low_edge = traj(src, decisions=5, turns=10)
    high_edge = traj(src, decisions=5, turns=30)
    traj(src, decisions=5, turns=31)
    no_turns_key = traj(src, decisions=12, turns=None)  # falls back to 12 decisions
    traj(src, decisions=8, turns=None)  # 8 decisions: too short
    report = filter_trajectories(src, tmp_path / "out", crit)
    assert names(tmp_path / "out" / "gen1ou") == sorted([low_edge, high_edge, no_turns_key])
    assert report.dropped == Counter({"too_short": 2, "too_long": 1})


def test_bad_names_unreadable_and_empty_files(tmp_path):
    src = tmp_path / "in"
    traj(src, decisions=12)
    folder = src / "gen1ou"
    (folder / "id_Unrated_SelfPlay_A0_vs_y_01-01-2025_WIN.json.lz4").write_bytes(b"")  # 8 fields (B3)
    garbage = trajectory_filename("metamon-gen1ou-9999999999", "a", "b", won=True)
    (folder / garbage).write_bytes(b"not lz4")
    empty = trajectory_filename("metamon-gen1ou-9999999998", "a", "b", won=False)
    (folder / empty).write_bytes(lz4.frame.compress(b'{"states": [{}], "actions": [-1]}'))
    report = filter_trajectories(src, tmp_path / "out", FilterCriteria(min_turns=1))
    assert report.kept == {"gen1ou": 1}
    assert report.dropped == Counter({"bad_name": 1, "unreadable": 1, "no_decisions": 1})


def test_balance_outcomes_is_equal_per_format_seeded_and_keeps_ties(tmp_path):
    src = tmp_path / "in"
    for _ in range(7):
        traj(src, won=True)
    for _ in range(3):
        traj(src, won=False)
    tie = traj(src, won=False, result="tie")
    for _ in range(2):
        traj(src, fmt="gen2ou", won=True)
    crit = FilterCriteria(min_turns=1, balance_outcomes=True, seed=3)
    report = filter_trajectories(src, tmp_path / "out", crit)
    kept = names(tmp_path / "out" / "gen1ou")
    results = Counter(parse_trajectory_filename(n).result for n in kept if n != tie)
    assert results == Counter({"WIN": 3, "LOSS": 3}) and tie in kept
    assert names(tmp_path / "out" / "gen2ou") == []  # 2 wins, 0 losses -> nothing balanced
    assert report.kept == {"gen1ou": 7, "gen2ou": 0}
    assert report.dropped == Counter({"balance": 4 + 2})
    again = filter_trajectories(src, tmp_path / "out2", crit)
    assert names(tmp_path / "out2" / "gen1ou") == kept and again.kept == report.kept
    selections = set()
    for seed in range(6):
        filter_trajectories(src, tmp_path / f"o{seed}", FilterCriteria(min_turns=1, balance_outcomes=True, seed=seed))
        selections.add(tuple(names(tmp_path / f"o{seed}" / "gen1ou")))
    assert len(selections) > 1  # the seed matters (7 choose 3 = 35 possible win subsets)


def test_formats_selection_hard_links_and_copy(tmp_path):
    src = tmp_path / "in"
    a = traj(src, fmt="gen1ou")
    b = traj(src, fmt="gen3ou")
    report = filter_trajectories(src, tmp_path / "out", FilterCriteria(min_turns=1), formats=["gen3ou"])
    assert report.kept == {"gen3ou": 1}
    assert names(tmp_path / "out") == ["gen3ou"] and names(tmp_path / "out" / "gen3ou") == [b]
    assert os.path.samefile(src / "gen3ou" / b, tmp_path / "out" / "gen3ou" / b)
    filter_trajectories(src, tmp_path / "copy", FilterCriteria(min_turns=1), copy=True)
    copied = tmp_path / "copy" / "gen1ou" / a
    assert copied.read_bytes() == (src / "gen1ou" / a).read_bytes()
    assert not os.path.samefile(copied, src / "gen1ou" / a)
    assert not [p for p in (tmp_path / "copy" / "gen1ou").iterdir() if p.name.startswith(".")]


def test_bad_inputs_are_clear_errors(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "x.json.lz4").write_bytes(b"")
    with pytest.raises(MetamonError, match="no <format>/ subfolders .*lie directly in it"):
        filter_trajectories(flat, tmp_path / "out")
    with pytest.raises(MetamonError, match="does not exist"):
        filter_trajectories(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(MetamonError, match="must differ"):
        filter_trajectories(flat, flat)
    with pytest.raises(MetamonError, match="max_invalid_rate"):
        FilterCriteria(max_invalid_rate=1.5)
    with pytest.raises(MetamonError, match="min_turns"):
        FilterCriteria(min_turns=10, max_turns=5)
    assert judge_trajectory(flat / "x.json.lz4", FilterCriteria()).reason == "bad_name"


def test_main_and_script(tmp_path, capsys):
    src = tmp_path / "in"
    traj(src, decisions=20, invalid=5)
    traj(src, decisions=20)
    assert main(["--input_dir", str(src), "--output_dir", str(tmp_path / "out"), "--min_turns", "1"]) == 0
    out = capsys.readouterr().out
    assert "kept 1 files: gen1ou 1" in out and "dropped 1 files: invalid_rate 1" in out
    assert main(["--input_dir", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "o")]) == 2
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "filter_selfplay_data.py"), "--input_dir", str(src),
         "--output_dir", str(tmp_path / "script_out"), "--max_invalid_rate", "0.3", "--min_turns", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "kept 2 files: gen1ou 2" in proc.stdout

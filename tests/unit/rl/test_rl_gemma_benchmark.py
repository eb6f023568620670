"""benchmarks/gemma_encoder.py end to end on the tiny model: a training-window batch, both paths."""

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from metamon.data.trajectory_file import trajectory_filename, write_trajectory

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "gemma_encoder.py"
FMT = "gen9ou"
LENGTHS = (3, 4, 9, 12)  # states per battle: two battles shorter than the windows, two longer


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script(SCRIPT, "gemma_encoder_bench")


def write_battles(bench, root):
    states = bench._generated_states(sum(LENGTHS), seed=1)
    start = 0
    for i, n in enumerate(LENGTHS):
        battle = [s.to_dict() for s in states[start:start + n]]
        battle[3 % n] = battle[0]  # a repeated text (and numbers) inside the battle
        start += n
        name = trajectory_filename(f"{FMT}-{i:03d}", "alice", "bob", True, date=datetime(2025, 10, 27))
        write_trajectory(root, FMT, name, battle, [0] * (n - 1) + [-1])


def run(*args):
    """The script as users run it (its cases run in spawned worker processes)."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_training_windows(bench, tmp_path):
    write_battles(bench, tmp_path / "data")
    out = tmp_path / "rows.json"
    done = run("--size", "tiny", "--dtype", "fp32", "--data", str(tmp_path / "data"), "--windows",
               "--batch", "4", "--seq_len", "6", "--repeats", "1", "--json_out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    meta, rows = json.loads(out.read_text()).values()
    assert [r["path"] for r in rows] == ["ours", "seeds"]
    ours, seeds = rows
    assert "error" not in ours and "error" not in seeds
    # windows of <= 6 transitions (T <= 7 observations) from battles of 3..12 states
    assert ours["timesteps"] == seeds["timesteps"] and ours["timesteps"] % 4 == 0 and ours["timesteps"] <= 28
    # same LoRA + numeric branch; ours adds the text LayerNorm (2 x hidden 64)
    assert ours["trainable"] == seeds["trainable"] + 2 * 64
    # ours skips padding steps and repeated texts, the seeds embed every step
    assert ours["tokens_real"] < seeds["tokens_real"]
    assert "training windows" in meta["observations"][0] and "distinct texts" in meta["observations"][0]
    assert "speed-up" in done.stdout

    with pytest.raises(SystemExit, match="--windows needs --data"):
        bench.main(["--size", "tiny", "--windows"])

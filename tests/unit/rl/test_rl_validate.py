"""python -m metamon.rl.validate: the checklist passes on a tiny config and tiny data, and each
kind of problem fails its check with the reason (and skips what depends on it)."""

import re

import pytest
from _tiny_replays import FMT, write_replays

from metamon.rl import validate as preflight


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_replays(tmp_path_factory.mktemp("replays"))


def flags(data, save_dir, *extra):
    return ["--run_name", "r", "--save_dir", str(save_dir), "--model_gin_config", "tiny_agent.gin",
            "--train_gin_config", "il.gin", "--parsed_replay_dir", str(data), "--formats", FMT,
            "--eval_gens", "--dloader_workers", "0", "--batch_size_per_gpu", "3", *extra]


def checklist(capsys) -> dict:
    """{check name: (status, detail)} from the printed checklist."""
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("["):
            status, rest = line[1:].split("]", 1)
            name, detail = rest.strip().split(": ", 1)
            rows[name] = (status.strip(), detail)
    return rows


def test_tiny_config_passes_every_check(data, tmp_path, capsys):
    assert preflight.main(flags(data, tmp_path, "--batch_sizes", "1", "8")) == 0
    rows = checklist(capsys)
    assert list(rows) == ["flags", "run directory", "server", "gin", "spaces", "data", "model",
                          "forward/backward", "memory"]
    assert {name: status for name, (status, _) in rows.items()} == {
        **{name: "ok" for name in rows}, "server": "skip"}
    assert "new run" in rows["run directory"][1]
    assert "tiny_agent.gin + il.gin" in rows["gin"][1]
    assert "6 files (gen9ou); 6 sampled files load" in rows["data"][1]
    assert "batch 3 x " in rows["forward/backward"][1] and "gradients finite" in rows["forward/backward"][1]
    assert "b=1: " in rows["memory"][1] and "b=8: " in rows["memory"][1]
    assert not (tmp_path / "r").exists()  # validation writes nothing into the run folder


def test_missing_data_fails_clearly(tmp_path, capsys):
    missing = tmp_path / "no_such_data"
    assert preflight.main(flags(missing, tmp_path)) == 1
    rows = checklist(capsys)
    assert rows["data"][0] == "FAIL" and str(missing) in rows["data"][1]
    assert rows["gin"][0] == "ok"
    assert all(rows[name][0] == "skip" for name in ("model", "forward/backward", "memory"))


def test_a_bad_file_is_named(data, tmp_path, capsys):
    bad = tmp_path / "data"
    write_replays(bad, n_battles=2)
    broken = sorted((bad / FMT).iterdir())[0]
    broken.write_bytes(b"not lz4")
    assert preflight.main(flags(bad, tmp_path)) == 0  # one good file of two: a warning
    rows = checklist(capsys)
    assert rows["data"][0] == "warn" and broken.name in rows["data"][1] and "1 of 2" in rows["data"][1]


@pytest.mark.parametrize("extra, check, message", [
    (["--gin_bindings", "MetamonAMAGOExperiment.learning_rat = 1e-3"], "gin", "learning_rat"),
    (["--model_gin_config", "no_such_model"], "gin", "no_such_model"),
    (["--ckpt", "3"], "run directory", "--ckpt 3: .* has complete checkpoints none"),
    (["--eval_gens", "1", "--eval_server_url", "127.0.0.1:9"], "server",
     "No Pokémon Showdown server answers at 127.0.0.1:9"),
    (["--obs_space", "NoSuchSpace"], "spaces", "NoSuchSpace"),
])
def test_each_problem_fails_its_check(data, tmp_path, capsys, extra, check, message):
    assert preflight.main(flags(data, tmp_path, *extra)) == 1
    rows = checklist(capsys)
    status, detail = rows[check]
    assert status == "FAIL"
    assert re.search(message, detail), detail


def test_bad_flag_values_fail_before_anything(data, tmp_path, capsys):
    assert preflight.main(flags(data, tmp_path, "--grad_accum", "0")) == 1
    rows = checklist(capsys)
    assert list(rows) == ["flags"] and "grad_accum" in rows["flags"][1]

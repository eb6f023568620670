"""``benchmarks/learning.py --eps_side_only``: the eps player's side of the ε data, chosen by file name."""

import os
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
FMT = "gen1ou"


@pytest.fixture
def learning(monkeypatch, load_script):
    monkeypatch.syspath_prepend(str(BENCH))  # learning.py imports its sibling learning_report
    return load_script(BENCH / "learning.py", "learning_bench")


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


def _args(**overrides):
    import argparse

    base = dict(model_gin_config="tiny_agent.gin", battle_format=FMT, epochs=2, steps_per_epoch=500, batch_size=12,
                dloader_workers=0, log_interval=50, seed=0, gin_bindings=["X.a = 1"], run_bindings=[], run_init=[])
    return argparse.Namespace(**{**base, **overrides})


def test_run_bindings_and_run_init_reach_only_their_run(tmp_path, learning):
    args = _args(run_bindings=[["rl", "agent.Agent.separate_critic_encoder = True"]],
                 run_init=[["rl", "run:/runs/critic@5"]])
    data = ["--parsed_replay_dir", "D"]
    rl = learning.train_command("py", args, "rl", "exp_rl.gin", "tiny_agent_rl_s0", tmp_path, data)
    il = learning.train_command("py", args, "il", "il.gin", "tiny_agent_il_s0", tmp_path, data)
    assert rl[rl.index("--init_from_checkpoint") + 1] == "run:/runs/critic@5"
    assert "--init_from_checkpoint" not in il
    def bindings(cmd):
        return [cmd[i + 1] for i, a in enumerate(cmd) if a == "--gin_bindings"]

    assert bindings(rl) == ["X.a = 1", "agent.Agent.separate_critic_encoder = True"]
    assert bindings(il) == ["X.a = 1"]
    assert il[il.index("--train_gin_config") + 1] == "il.gin" and il[il.index("--formats") + 1] == FMT


def test_run_init_for_an_unknown_run_is_refused(tmp_path, learning):
    with pytest.raises(SystemExit, match="--run_init names runs that --train_configs does not: \\['x'\\]"):
        learning.main(["--out", str(tmp_path), "--train_configs", "il.gin", "--run_init", "x", "run:D@1"])

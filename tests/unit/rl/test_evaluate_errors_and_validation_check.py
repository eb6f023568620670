"""evaluate's table shows the battles that errored (issue 15, item 9), and training validation
checks its server up front instead of hanging on an unreachable one."""

from __future__ import annotations

import time

import pytest

from metamon.errors import ServerError
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR
from metamon.rl.evaluate import format_table
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, build_agent, write_run_files
from metamon.rl.validation import BattleValidation
from metamon.server import find_free_port


def _row(opponent, battles, error, win):
    return {"format": "gen1ou", "opponent": opponent, "battles": battles, "error": error, "win_rate": win,
            "ci_low": 0.1, "ci_high": 0.6, "valid_action_pct": 100.0, "mean_turns": 30.0,
            "latency_p50_ms": 5.0, "latency_p95_ms": 9.0}


def test_the_table_has_an_errors_column():
    lines = format_table([_row("Grunt", 30, 15, 0.4), _row("GymLeader", 30, 0, 0.2)]).splitlines()
    header = lines[0].split()
    assert header[:4] == ["format", "opponent", "battles", "errors"]
    assert lines[2].split()[:4] == ["gen1ou", "Grunt", "30", "15"]
    assert lines[3].split()[:4] == ["gen1ou", "GymLeader", "30", "0"]


def test_validation_check_fails_fast_on_an_unreachable_server():
    url = f"127.0.0.1:{find_free_port()}"  # nothing listens there
    validation = BattleValidation("info", ["gen1ou"], ["Grunt"], battles=3, server_url=url)
    start = time.monotonic()
    with pytest.raises(ServerError, match=rf"validation battles \(--eval_server_url {url}\): No Pokémon Showdown"):
        validation.check()
    assert time.monotonic() - start < 5


def test_validation_check_has_nothing_to_check_when_disabled_or_local():
    BattleValidation("info", [], ["Grunt"], battles=3, server_url="127.0.0.1:1").check()  # disabled
    BattleValidation("info", ["gen1ou"], ["Grunt"], battles=0, server_url="127.0.0.1:1").check()
    BattleValidation("info", ["gen1ou"], ["Grunt"], battles=3).check()  # a local server is started on use


def test_a_validation_round_against_a_dead_server_fails_in_seconds(tmp_path):
    """No server listens at --eval_server_url: the round reports the format as failed at once
    (the players' connections close, the engine notices) instead of after the stall timeout."""
    info = RunInfo(observation_space="DefaultObservationSpace", action_space="DefaultActionSpace",
                   reward_function="DefaultShapedReward", tokenizer="metamon-gemma-v1", formats=["gen1ou"],
                   max_seq_len=32)
    text = "\n".join([(MODEL_CONFIG_DIR / "tiny_agent.gin").read_text(),
                      (TRAINING_CONFIG_DIR / "il.gin").read_text(), "MetamonAMAGOExperiment.max_seq_len = 32\n"])
    write_run_files(tmp_path, info, text)
    agent = build_agent(info, [tmp_path / CONFIG_FILE])
    validation = BattleValidation(info, ["gen1ou"], ["GymLeader"], battles=2,
                                  server_url=f"127.0.0.1:{find_free_port()}")
    start = time.monotonic()
    with pytest.warns(UserWarning, match=r"validation battles in gen1ou failed: ConnectionLostError"):
        metrics = validation(agent)
    assert metrics == {"Validation Errors in gen1ou": 1.0}
    assert time.monotonic() - start < 30  # the stall timeout is 120 s

"""metamon.selfplay.round_robin (scripts/self_play_tournament.py) with a fake battle runner:
results and summary files, resume, exit codes, the printed ratings."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json

import pytest

from metamon.battles import tournament
from metamon.battles.tournament import ChunkResult
from metamon.battles.tournament_file import ResultsFile
from metamon.selfplay import round_robin

URL = "127.0.0.1:1"  # never contacted by the fake runner
RANK = {"GymLeader": 2, "Grunt": 1, "RandomBaseline": 0}
_ids = itertools.count()


@pytest.fixture
def fake_battles(monkeypatch):
    """Every chunk "ends" at once: the higher RANK wins, except that battle 0 of a chunk is a
    draw and, when ``errors[0]`` is set, battle 1 errors. Returns (calls, errors)."""
    calls, errors = [], [False]

    def play(chunk, progress):
        calls.append(chunk)
        records = []
        for k in range(chunk.n_battles):
            if errors[0] and k == 1:
                continue
            won = RANK[chunk.player] > RANK[chunk.opponent]
            records.append({"battle_id": f"fake-{next(_ids)}", "player": chunk.player, "opponent": chunk.opponent,
                            "result": "draw" if k == 0 else "win" if won else "loss", "turns": 4, "format": "gen1ou"})
        return ChunkResult(tuple(records), chunk.n_battles - len(records))

    monkeypatch.setattr(round_robin, "play_tournament", functools.partial(
        tournament.play_tournament, open_worker=lambda url: contextlib.nullcontext(play)))
    return calls, errors


def cli(out, *extra):
    return round_robin.main(["--models", "GymLeader", "baseline:Grunt", "RandomBaseline", "--battles_per_matchup",
                             "4", "--output_dir", str(out), "--server_url", URL, "--bootstrap", "50", "--no_progress",
                             *extra])


def test_round_robin_writes_results_and_summary_and_prints_ratings(tmp_path, fake_battles, capsys):
    calls, _ = fake_battles
    assert cli(tmp_path, "--anchor", "RandomBaseline", "--initial_rating", "1000") == 0
    out = capsys.readouterr().out
    assert "12 of 12 missing battles played" in out and "(anchor)" in out
    lines = out.splitlines()
    header = next(k for k, line in enumerate(lines) if line.split()[:2] == ["rank", "player"])
    assert [line.split()[1] for line in lines[header + 1: header + 4]] == ["GymLeader", "Grunt", "RandomBaseline"]

    records = ResultsFile(tmp_path / "tournament_results.jsonl").read()
    assert len(records) == 12
    summary = json.loads((tmp_path / "tournament_summary.json").read_text())
    assert summary["players"] == ["GymLeader", "Grunt", "RandomBaseline"]
    assert summary["battles_per_matchup"] == 4 and summary["last_run"]["played"] == 12
    gym_grunt = summary["pairs"][0]
    assert (gym_grunt["player"], gym_grunt["opponent"]) == ("GymLeader", "Grunt")
    # one chunk of 4 (default chunk_size = 2 x max_concurrent = 20): a draw, then 3 GymLeader wins
    assert {k: gym_grunt[k] for k in ("battles", "wins", "losses", "draws", "errors")} == \
        {"battles": 4, "wins": 3, "losses": 0, "draws": 1, "errors": 0}

    calls.clear()
    assert cli(tmp_path) == 0  # resume: nothing is missing
    assert calls == [] and "0 of 0 missing battles played" in capsys.readouterr().out
    assert len(ResultsFile(tmp_path / "tournament_results.jsonl").read()) == 12


def test_errors_leave_pairs_short_and_exit_1(tmp_path, fake_battles, capsys):
    _, errors = fake_battles
    errors[0] = True
    assert cli(tmp_path) == 1
    summary = json.loads((tmp_path / "tournament_summary.json").read_text())
    assert [(p["battles"], p["errors"]) for p in summary["pairs"]] == [(3, 1)] * 3
    assert "errored battles were not written" in capsys.readouterr().out
    errors[0] = False
    assert cli(tmp_path) == 0
    assert len(ResultsFile(tmp_path / "tournament_results.jsonl").read()) == 12


@pytest.mark.parametrize("args, message", [
    (["--models", "GymLeader", "NoSuchPlayer"], "Unknown baseline"),
    (["--models", "GymLeader"], "at least two players"),
    (["--models", "GymLeader", "Grunt", "--anchor", "RandomBaseline"], "--anchor 'RandomBaseline' is not one of"),
])
def test_bad_input_exits_2(tmp_path, fake_battles, capsys, args, message):
    assert round_robin.main([*args, "--output_dir", str(tmp_path), "--server_url", URL, "--no_progress"]) == 2
    assert message in capsys.readouterr().err


def test_seeds_flag_aliases():
    parser = round_robin.build_parser(output_dir="~/x")
    args = parser.parse_args(["--players", "A", "B", "--battles_per_pair", "7"])
    assert args.models == ["A", "B"] and args.battles_per_matchup == 7 and args.output_dir == "~/x"

"""Tournaments on a real local Showdown server: a round robin of three baselines through
scripts/self_play_tournament.py, a re-run that adds nothing, scripts/calculate_elo.py on the
result, and the PSRO ShowdownEvaluator filling a payoff table from two worker processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from metamon.battles.tournament_file import RECORD_KEYS, ResultsFile, pair_counts
from metamon.nash import Population
from metamon.nash.payoff import PayoffTable
from metamon.nash.population import Member
from metamon.nash.showdown import ShowdownEvaluator

REPO = Path(__file__).resolve().parents[2]
FMT = "gen1ou"
PLAYERS = ["RandomBaseline", "GymLeader", "Grunt"]
PER_PAIR = 4


def url(server):
    return f"{server.host}:{server.port}"


def script(name, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def test_round_robin_resume_and_ratings(showdown_server, tmp_path):
    args = ["--models", *PLAYERS, "--battles_per_matchup", str(PER_PAIR), "--output_dir", str(tmp_path),
            "--battle_format", FMT, "--team_set", "builtin", "--server_url", url(showdown_server),
            "--bootstrap", "200", "--no_progress"]
    first = script("self_play_tournament.py", *args)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    results = tmp_path / "tournament_results.jsonl"
    records = ResultsFile(results).read()
    assert len(records) == 3 * PER_PAIR == len({r["battle_id"] for r in records})
    assert all(set(r) == set(RECORD_KEYS) and r["format"] == FMT and r["result"] in ("win", "loss", "draw")
               and r["turns"] > 0 for r in records)
    assert set(pair_counts(records).values()) == {PER_PAIR}
    summary = json.loads((tmp_path / "tournament_summary.json").read_text())
    assert [p["battles"] for p in summary["pairs"]] == [PER_PAIR] * 3
    assert all(p["wins"] + p["losses"] + p["draws"] == PER_PAIR and p["errors"] == 0 for p in summary["pairs"])
    assert "rank" in first.stdout and "GymLeader" in first.stdout

    before = results.read_bytes()
    again = script("self_play_tournament.py", *args)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "0 of 0 missing battles played" in again.stdout and results.read_bytes() == before

    elo = script("calculate_elo.py", "--tournament_dir", str(tmp_path), "--anchor", "RandomBaseline",
                 "--bootstrap", "200", "--k_factor", "32")
    assert elo.returncode == 0, elo.stdout + elo.stderr[-3000:]
    assert "is ignored" in elo.stdout
    for suffix in (".json", ".csv", "_ratings.png", "_winrates.png"):
        assert (tmp_path / f"elo_results{suffix}").stat().st_size > 0
    ratings = json.loads((tmp_path / "elo_results.json").read_text())
    assert ratings["num_games"] == 3 * PER_PAIR and set(ratings["players"]) == set(PLAYERS)
    for row in ratings["players"].values():
        assert all(math.isfinite(row[k]) for k in ("elo", "low", "high")) and row["low"] <= row["high"]
    # GymLeader beats a random player nearly always; at 4 battles a pair its rating is above it.
    assert ratings["players"]["GymLeader"]["elo"] > ratings["players"]["RandomBaseline"]["elo"]


def test_showdown_evaluator_fills_a_payoff_table(showdown_server, tmp_path):
    population = Population([Member("gym", "GymLeader"), Member("random", "RandomBaseline")])
    table = PayoffTable(population.names)
    evaluator = ShowdownEvaluator(FMT, team_set="builtin", server_url=url(showdown_server), parallel=2,
                                  max_concurrent=2, chunk_size=2, results_path=tmp_path / "tournament_results.jsonl")
    for chunk in evaluator.play(population, table.pairs_needed(battles_per_pair=PER_PAIR)):
        assert all(r["player"] in ("gym", "random") for r in chunk)
        table.add_records(chunk)
    assert table.n_battles("gym", "random") == PER_PAIR == table.n_unique_battles
    m = table.win_rate_matrix()
    assert m.shape == (2, 2) and m[0, 1] + m[1, 0] == 1.0
    nonces = {r["battle_id"].split("-")[0] for r in ResultsFile(tmp_path / "tournament_results.jsonl").read()}
    assert 1 <= len(nonces) <= 2  # one per worker process
    assert table.pairs_needed(battles_per_pair=PER_PAIR) == []

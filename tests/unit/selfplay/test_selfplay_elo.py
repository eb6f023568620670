"""metamon.selfplay.elo (scripts/calculate_elo.py): results file -> unique games -> Bradley–Terry
ratings with intervals, checked against a synthetic ground truth; json/csv/png outputs; CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from metamon.battles.tournament_file import ResultsFile
from metamon.selfplay.elo import RESULTS_FILE, build_parser, games_from_records, main, rate_records, ratings_table
from metamon.selfplay.ratings import Game

TRUE_ELO = {"p0": 1000.0, "p1": 1150.0, "p2": 1300.0, "p3": 1500.0}


def rec(battle_id, player, opponent, result):
    return {"battle_id": battle_id, "player": player, "opponent": opponent, "result": result, "turns": 9,
            "format": "gen1ou"}


def simulated_tournament(folder, games_per_pair=150, seed=3):
    """Round robin among TRUE_ELO with Elo win probabilities and 10% draws; every third battle is
    written from both sides (same id), as if merged from two players' logs."""
    rng = np.random.default_rng(seed)
    names, records = list(TRUE_ELO), []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            expected = 1.0 / (1.0 + 10 ** ((TRUE_ELO[b] - TRUE_ELO[a]) / 400.0))
            p_win = (expected - 0.05) / 0.9
            for k in range(games_per_pair):
                result = "draw" if rng.random() < 0.1 else "win" if rng.random() < p_win else "loss"
                records.append(rec(f"{a}-{b}-{k}", a, b, result))
                if k % 3 == 0:
                    records.append(rec(f"{a}-{b}-{k}", b, a, {"win": "loss", "loss": "win", "draw": "draw"}[result]))
    ResultsFile(Path(folder) / RESULTS_FILE).append(records)
    return records


def test_games_count_each_battle_once_and_draws_half():
    games = games_from_records([rec("b1", "Grunt", "GymLeader", "loss"), rec("b1", "GymLeader", "Grunt", "win"),
                                rec("b2", "GymLeader", "Grunt", "draw")])
    assert games == [Game("b1", "Grunt", "GymLeader", 0.0), Game("b2", "Grunt", "GymLeader", 0.5)]


def test_cli_recovers_a_synthetic_ground_truth_and_writes_every_output(tmp_path, capsys):
    records = simulated_tournament(tmp_path)
    code = main(["--tournament_dir", str(tmp_path), "--anchor", "baseline:p0", "--initial_rating", "1000",
                 "--bootstrap", "300", "--k_factor", "32"])
    out = capsys.readouterr().out
    assert code == 0 and "--k_factor 32 is ignored" in out and "(anchor)" in out

    summary = json.loads((tmp_path / "elo_results.json").read_text())
    assert summary["anchor"] == "p0" and summary["num_games"] == 6 * 150 < len(records)
    players = summary["players"]
    assert players["p0"]["elo"] == pytest.approx(1000.0)
    for name, truth in TRUE_ELO.items():  # within twice the 95% half-width (~4 standard errors)
        row = players[name]
        assert row["low"] <= row["elo"] <= row["high"] and row["games"] == 450
        assert abs(row["elo"] - truth) <= (row["high"] - row["low"]) + 1e-9, (name, row)
    assert [name for name, _ in sorted(players.items(), key=lambda kv: kv[1]["elo"])] == list(TRUE_ELO)
    assert len(summary["pairs"]) == 6 and all(p["games"] == 150 for p in summary["pairs"])

    rows = list(csv.DictReader((tmp_path / "elo_results.csv").open()))
    assert [r["player"] for r in rows] == ["p3", "p2", "p1", "p0"] and rows[0]["rank"] == "1"
    assert int(rows[0]["wins"]) + int(rows[0]["losses"]) + int(rows[0]["draws"]) == 450
    for suffix in ("_ratings.png", "_winrates.png"):
        assert (tmp_path / f"elo_results{suffix}").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_output_prefix_is_relative_to_the_tournament_dir(tmp_path, capsys):
    simulated_tournament(tmp_path, games_per_pair=20)
    assert main(["--tournament_dir", str(tmp_path), "--output_prefix", "ratings/run1", "--bootstrap", "0"]) == 0
    assert (tmp_path / "ratings" / "run1.json").exists() and (tmp_path / "ratings" / "run1_winrates.png").exists()
    summary = json.loads((tmp_path / "ratings" / "run1.json").read_text())
    assert summary["anchor"] is None and summary["players"]["p0"]["low"] is None
    assert np.mean([p["elo"] for p in summary["players"].values()]) == pytest.approx(1500.0)


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["--tournament_dir", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    simulated_tournament(tmp_path, games_per_pair=5)
    assert main(["--tournament_dir", str(tmp_path), "--anchor", "GymLeader"]) == 2
    assert "anchor 'GymLeader' is not one of the players" in capsys.readouterr().err
    (tmp_path / RESULTS_FILE).write_text('{"battle_id": "x"}\n')
    assert main(["--tournament_dir", str(tmp_path)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_table_lists_best_first():
    ratings, games = rate_records([rec(f"b{k}", "GymLeader", "Grunt", "win" if k % 4 else "loss") for k in range(12)],
                                  bootstrap=50)
    table = ratings_table(ratings, games).splitlines()
    assert table[1].split()[:2] == ["1", "GymLeader"] and table[2].split()[:2] == ["2", "Grunt"]
    assert "75.0%" in table[1] and "12 unique battles" in table[-1]


def test_help_explains_the_fit():
    text = " ".join(build_parser("scripts/calculate_elo.py").format_help().split())
    assert "maximum-likelihood" in text and "--k_factor" in text and "no K-factor" in text

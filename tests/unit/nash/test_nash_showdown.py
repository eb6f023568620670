"""ShowdownEvaluator on the tournament engine with a fake battle runner (no Showdown): member
names in the records, globally unique battle ids, the payoff table filled, run_psro_loop driving it."""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest

from metamon.battles.tournament import ChunkResult
from metamon.battles.tournament_file import ResultsFile
from metamon.nash import NashError, Population, run_psro_loop
from metamon.nash.payoff import PayoffTable
from metamon.nash.population import Member
from metamon.nash.showdown import ShowdownEvaluator

FMT = "gen1ou"
URL = "127.0.0.1:1"  # never contacted by the fake runner
_ids = itertools.count()


def fake_runner(calls):
    """open_worker whose chunks end at once: GymLeader wins, any other pair draws."""

    def play(chunk, progress):
        calls.append(chunk)
        records = tuple(
            {"battle_id": f"fake-{next(_ids)}", "player": chunk.player, "opponent": chunk.opponent,
             "result": "win" if chunk.player == "GymLeader" else "loss" if chunk.opponent == "GymLeader" else "draw",
             "turns": 5, "format": FMT}
            for _ in range(chunk.n_battles))
        progress(chunk.n_battles)
        return ChunkResult(records, 0)

    return lambda url: contextlib.nullcontext(play)


def population():
    return Population([Member("gym", "GymLeader"), Member("random", "baseline:RandomBaseline"),
                       Member("grunt", "Grunt")])


def test_records_name_members_and_fill_the_payoff_table(tmp_path):
    calls = []
    evaluator = ShowdownEvaluator(FMT, server_url=URL, chunk_size=3, open_worker=fake_runner(calls),
                                  results_path=tmp_path / "tournament_results.jsonl")
    pop = population()
    table = PayoffTable(pop.names)
    chunks = list(evaluator.play(pop, table.pairs_needed(battles_per_pair=4)))
    for chunk in chunks:
        assert table.add_records(chunk) == len(chunk)
    assert all(r["player"] in pop.names and r["opponent"] in pop.names for c in chunks for r in c)
    assert {(r["player"], r["player_spec"]) for c in chunks for r in c} <= {
        ("gym", "GymLeader"), ("random", "RandomBaseline"), ("grunt", "Grunt")}
    assert table.pair_counts("gym", "random") == (4, 0, 0)
    assert table.pair_counts("grunt", "random") == (0, 4, 0)
    m = table.win_rate_matrix()
    np.testing.assert_allclose(m, [[0.5, 1.0, 1.0], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
    assert sum(c.n_battles for c in calls) == 12

    on_disk = ResultsFile(tmp_path / "tournament_results.jsonl").read()  # players as specs, for the Elo tools
    assert len(on_disk) == 12 and {r["player"] for r in on_disk} <= {"GymLeader", "RandomBaseline", "Grunt"}

    assert list(evaluator.play(pop, table.pairs_needed(battles_per_pair=4))) == []
    assert len(calls) == 6


def test_two_members_with_one_spec_cannot_battle():
    pop = Population([Member("a", "Grunt"), Member("b", "baseline:Grunt")])
    evaluator = ShowdownEvaluator(FMT, server_url=URL, open_worker=fake_runner([]))
    with pytest.raises(NashError, match="'a' and 'b' cannot battle"):
        list(evaluator.play(pop, PayoffTable(pop.names).pairs_needed()))


class KeepFirst:
    """An oracle that finds nothing new: PSRO stops after one iteration."""

    def best_response(self, pop, sigma, iteration):
        return pop[0]


def test_run_psro_with_the_showdown_evaluator(tmp_path):
    calls = []
    evaluator = ShowdownEvaluator(FMT, server_url=URL, open_worker=fake_runner(calls))
    result = run_psro_loop(tmp_path, evaluator, KeepFirst(), 3, initial=population(), battles_per_pair=6, n_boot=50)
    assert result.converged and len(result.iterations) == 1
    assert result.final.sigma[0] == pytest.approx(1.0)
    table = PayoffTable.load(tmp_path / "payoffs.json")
    assert table.n_unique_battles == 18 and sum(c.n_battles for c in calls) == 18

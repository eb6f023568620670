import json

import numpy as np
import pytest

from metamon.nash import NashError, Population, run_psro_loop
from metamon.nash.matrix_game import (
    ExactBestResponseOracle,
    ExactEvaluator,
    SymmetricMatrixGame,
    biased_rock_paper_scissors,
    random_symmetric_game,
    rock_paper_scissors,
)
from metamon.nash.meta_solvers import nash
from metamon.nash.payoff import PayoffTable
from metamon.nash.psro import LOG_FILE, PAYOFF_FILE, POPULATION_FILE


class CountingEvaluator(ExactEvaluator):
    """The exact evaluator, counting the battles it plays; can be told to die after some pairs."""

    def __init__(self, game, die_after_pairs=None):
        super().__init__(game)
        self.pairs_played = 0
        self.die_after_pairs = die_after_pairs

    def play(self, population, requests):
        for chunk in super().play(population, requests):
            if self.die_after_pairs is not None and self.pairs_played >= self.die_after_pairs:
                raise KeyboardInterrupt("killed")
            self.pairs_played += 1
            yield chunk


class CountingOracle(ExactBestResponseOracle):
    def __init__(self, game):
        super().__init__(game)
        self.calls = 0

    def best_response(self, population, sigma, iteration):
        self.calls += 1
        return super().best_response(population, sigma, iteration)


def _run(tmp_path, game, start=0, num_iterations=50, **kwargs):
    evaluator = ExactEvaluator(game)
    return run_psro_loop(tmp_path, evaluator, ExactBestResponseOracle(game), num_iterations,
                    initial=Population([game.member(start)]), battles_per_pair=evaluator.battles_per_pair,
                    n_boot=200, **kwargs)


def _full_game_exploitability(tmp_path, game, result):
    population = Population.load(tmp_path / POPULATION_FILE)
    return game.exploitability(game.full_mixture(population, result.final.sigma))


@pytest.mark.parametrize("start", [0, 1, 2])
def test_psro_reaches_the_nash_of_biased_rps(tmp_path, start):
    game = biased_rock_paper_scissors()
    result = _run(tmp_path, game, start)
    assert result.converged and len(result.iterations) <= game.size
    sigma = dict(zip(result.final.members, result.final.sigma))
    assert [sigma["rock"], sigma["paper"], sigma["scissors"]] == pytest.approx([3 / 7, 3 / 7, 1 / 7], abs=1e-12)
    assert _full_game_exploitability(tmp_path, game, result) <= 1e-12
    for it in result.iterations[:-1]:  # every added best response beats the mixture it answered
        assert it.added and it.br_win_rate.value > 0.5
    assert not result.iterations[-1].added


def test_psro_reaches_the_nash_of_rps(tmp_path):
    result = _run(tmp_path, rock_paper_scissors())
    assert result.converged and len(result.iterations) == 3
    np.testing.assert_allclose(result.final.sigma, [1 / 3] * 3, atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_psro_reaches_the_nash_of_random_10x10_games(tmp_path, seed):
    game = random_symmetric_game(10, seed=seed)
    result = _run(tmp_path, game)
    assert result.converged and len(result.iterations) <= game.size
    assert _full_game_exploitability(tmp_path, game, result) <= 1e-9
    full = nash(game.win_probabilities())  # same value as the full-game LP: 0 exploitability
    assert game.exploitability(full) <= 1e-12
    assert result.final.exploitability.value <= 1e-9


def test_log_file_holds_what_a_researcher_reads(tmp_path):
    game = biased_rock_paper_scissors()
    result = _run(tmp_path, game)
    log = json.loads((tmp_path / LOG_FILE).read_text())
    assert log["initial_members"] == ["rock"] and log["meta_solver"] == "nash"
    assert len(log["iterations"]) == len(result.iterations)
    first = log["iterations"][0]
    assert first["members"] == ["rock"] and first["sigma"] == [1.0] and first["support_size"] == 1
    assert set(first["exploitability"]) == {"value", "low", "high", "level", "n_boot"}
    assert first["best_response"] == "paper" and first["added"] is True
    assert first["br_win_rate"]["value"] == pytest.approx(4 / 6)  # P(paper beats rock) = 1/2 + 1/6
    assert log["final"]["sigma"] == pytest.approx([3 / 7, 3 / 7, 1 / 7], abs=1e-12)
    table = PayoffTable.load(tmp_path / PAYOFF_FILE)
    assert table.members == ["rock", "paper", "scissors"] and table.n_unique_battles == 3 * 6


def test_resume_after_kill_replays_nothing(tmp_path):
    game = random_symmetric_game(10, seed=3)
    straight = _run(tmp_path / "straight", game)

    evaluator = CountingEvaluator(game, die_after_pairs=4)
    oracle = CountingOracle(game)
    with pytest.raises(KeyboardInterrupt):
        run_psro_loop(tmp_path / "killed", evaluator, oracle, 50, initial=Population([game.member(0)]),
                 battles_per_pair=evaluator.battles_per_pair, n_boot=200)
    # killed while battling the third best response: it is in the population, partly played
    population = Population.load(tmp_path / "killed" / POPULATION_FILE)
    assert len(population) == 4 and oracle.calls == 3
    played_before = evaluator.pairs_played

    evaluator.die_after_pairs = None
    oracle2 = CountingOracle(game)
    resumed = run_psro_loop(tmp_path / "killed", evaluator, oracle2, 50,
                       battles_per_pair=evaluator.battles_per_pair, n_boot=200)
    assert oracle2.calls == len(straight.iterations) - 3  # the third best response is not asked for again
    total_pairs = len(resumed.final.members) * (len(resumed.final.members) - 1) // 2
    assert evaluator.pairs_played == total_pairs and played_before < total_pairs  # every pair played once
    assert [it.to_dict() for it in resumed.iterations] == [it.to_dict() for it in straight.iterations]
    assert resumed.final == straight.final


def test_resume_continues_to_more_iterations(tmp_path):
    game = random_symmetric_game(10, seed=4)
    straight = _run(tmp_path / "straight", game)
    part = _run(tmp_path / "parts", game, num_iterations=2)
    assert len(part.iterations) == 2 and not part.converged
    assert len(part.final.members) == 3  # the final solve covers the last best response too
    evaluator = ExactEvaluator(game)
    rest = run_psro_loop(tmp_path / "parts", evaluator, ExactBestResponseOracle(game), 50,
                    battles_per_pair=evaluator.battles_per_pair, n_boot=200)
    assert [it.to_dict() for it in rest.iterations] == [it.to_dict() for it in straight.iterations]


def test_other_meta_solvers_plug_in(tmp_path):
    game = biased_rock_paper_scissors()
    with_prd = _run(tmp_path / "prd", game, meta_solver="prd")
    assert _full_game_exploitability(tmp_path / "prd", game, with_prd) < 5e-3
    uniform_fp = _run(tmp_path / "mine", game, num_iterations=4, meta_solver=lambda m: np.full(len(m), 1 / len(m)))
    assert json.loads((tmp_path / "mine" / LOG_FILE).read_text())["meta_solver"] == "<lambda>"
    assert len(uniform_fp.iterations) <= 4


def test_start_and_resume_errors(tmp_path):
    game = rock_paper_scissors()
    evaluator, oracle = ExactEvaluator(game), ExactBestResponseOracle(game)
    with pytest.raises(NashError, match="pass the initial population"):
        run_psro_loop(tmp_path, evaluator, oracle, 3)
    run_psro_loop(tmp_path, evaluator, oracle, 1, initial=Population([game.member(0)]), battles_per_pair=2)
    with pytest.raises(NashError, match="started from \\['rock'\\]"):
        run_psro_loop(tmp_path, evaluator, oracle, 3, initial=Population([game.member(1)]), battles_per_pair=2)


def test_exact_evaluator_needs_integer_counts():
    with pytest.raises(NashError, match="integer"):
        ExactEvaluator(SymmetricMatrixGame([[0, 0.3], [-0.3, 0]]), battles_per_pair=3)
    with pytest.raises(NashError, match="antisymmetric"):
        SymmetricMatrixGame([[0, 1], [1, 0]])


def test_member_added_before_a_kill_is_taken_as_the_best_response(tmp_path):
    # killed right after the population was saved with the new best response, before the payoff
    # table knew it: the resumed loop adopts it without asking the oracle again
    game = rock_paper_scissors()
    _run(tmp_path, game, num_iterations=1)
    population = Population.load(tmp_path / POPULATION_FILE)
    population.add(game.member(2))  # scissors, which the oracle would also have proposed at t = 1
    population.save(tmp_path / POPULATION_FILE)
    oracle = CountingOracle(game)
    evaluator = ExactEvaluator(game)
    result = run_psro_loop(tmp_path, evaluator, oracle, 50, battles_per_pair=evaluator.battles_per_pair, n_boot=200)
    assert result.iterations[1].best_response == "scissors" and result.iterations[1].added
    assert oracle.calls == len(result.iterations) - 2
    assert PayoffTable.load(tmp_path / PAYOFF_FILE).members == ["rock", "paper", "scissors"]
    np.testing.assert_allclose(result.final.sigma, [1 / 3] * 3, atol=1e-12)


def test_oracle_reusing_a_name_for_another_policy_is_an_error(tmp_path):
    game = rock_paper_scissors()

    class Clumsy(ExactBestResponseOracle):
        def best_response(self, population, sigma, iteration):
            member = super().best_response(population, sigma, iteration)
            return type(member)("rock", member.spec)  # paper, but named "rock"

    with pytest.raises(NashError, match="spec 'pure:1' under the name 'rock'"):
        run_psro_loop(tmp_path, ExactEvaluator(game), Clumsy(game), 3, initial=Population([game.member(0)]),
                 battles_per_pair=2)

"""Bradley–Terry ratings: unique games, ties as half wins, the fit against an independent
optimiser, Elo anchoring, bootstrap intervals against a synthetic ground truth, plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from metamon.errors import MetamonError
from metamon.selfplay.ratings import (
    ELO_PER_NAT,
    Game,
    RatingError,
    fit_bradley_terry,
    plot_ratings,
    plot_win_rates,
    rate,
    score_matrix,
    unique_games,
)

TRUE_ELO = {"p0": 1000.0, "p1": 1100.0, "p2": 1200.0, "p3": 1350.0, "p4": 1500.0}


def simulate_tournament(seed: int, games_per_pair: int = 120, tie_rate: float = 0.1, both_sides: bool = True):
    """Round robin among TRUE_ELO's players: expected score σ(Δθ) with a fraction of ties
    (P(tie) = tie_rate, P(win) = (σ − tie_rate/2)/(1 − tie_rate) otherwise), each battle
    recorded from both perspectives (same battle id) when ``both_sides``."""
    rng = np.random.default_rng(seed)
    names = list(TRUE_ELO)
    records = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            expected = 1.0 / (1.0 + 10 ** ((TRUE_ELO[b] - TRUE_ELO[a]) / 400.0))
            p_win = (expected - tie_rate / 2) / (1 - tie_rate)
            for k in range(games_per_pair):
                u = rng.random()
                result = "TIE" if u < tie_rate else ("WIN" if rng.random() < p_win else "LOSS")
                battle = f"battle-{a}-{b}-{k}"
                records.append(Game.from_perspective(battle, a, b, result))
                if both_sides:
                    flipped = {"WIN": "LOSS", "LOSS": "WIN", "TIE": "TIE"}[result]
                    records.append(Game.from_perspective(battle, b, a, flipped))
    return records


# ------------------------------------------------------------------------------ unique games


def test_both_perspectives_of_a_battle_are_one_game():
    mine = Game.from_perspective("b1", "zeta", "alpha", "WIN")
    theirs = Game.from_perspective("b1", "alpha", "zeta", "LOSS")
    assert mine == theirs == Game("b1", "alpha", "zeta", 0.0)
    assert Game.from_perspective("b2", "x", "y", "TIE").score_a == 0.5
    games = unique_games([mine, theirs, Game.from_perspective("b2", "x", "y", "TIE")])
    assert [g.battle_id for g in games] == ["b1", "b2"]


def test_conflicting_duplicates_and_self_matches_are_errors():
    with pytest.raises(RatingError, match="b1"):
        unique_games([Game.from_perspective("b1", "a", "b", "WIN"), Game.from_perspective("b1", "b", "a", "WIN")])
    with pytest.raises(RatingError, match="itself"):
        Game.from_perspective("b1", "same", "same", "WIN")
    with pytest.raises(RatingError):
        Game.from_perspective("b1", "a", "b", "DRAW")
    assert issubclass(RatingError, MetamonError)


def test_score_matrix_counts_ties_as_half():
    games = [Game.from_perspective(f"g{k}", "a", "b", r) for k, r in enumerate(["WIN", "WIN", "TIE", "LOSS"])]
    games.append(Game.from_perspective("g9", "c", "a", "WIN"))
    scores, counts = score_matrix(games, ["a", "b", "c"])
    np.testing.assert_array_equal(scores, [[0, 2.5, 0], [1.5, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(counts, [[0, 4, 1], [4, 0, 0], [1, 0, 0]])


# -------------------------------------------------------------------------------------- fit


def test_two_players_closed_form_with_ties():
    # a: 3 wins, 2 ties, 1 loss -> scores 4 : 2 -> θ_a − θ_b = ln 2 -> 400·log10(2) = 120.41 Elo
    games = [Game.from_perspective(f"g{k}", "a", "b", r) for k, r in enumerate(["WIN"] * 3 + ["TIE"] * 2 + ["LOSS"])]
    anchored = rate(games, anchor="b", anchor_rating=1500.0, alpha=0.0, bootstrap=0)
    assert anchored.rating("b") == 1500.0
    assert anchored.rating("a") == pytest.approx(1500.0 + 400 * math.log10(2), abs=1e-6)
    centred = rate(games, alpha=0.0, bootstrap=0, anchor_rating=0.0)
    assert centred.elo == pytest.approx((200 * math.log10(2), -200 * math.log10(2)), abs=1e-6)
    assert ELO_PER_NAT * math.log(2) == pytest.approx(400 * math.log10(2))
    # the default regulariser moves this 6-game record by < 0.1 Elo
    assert rate(games, anchor="b", bootstrap=0).rating("a") == pytest.approx(1120.41, abs=0.1)


def test_fit_is_the_maximum_likelihood_of_an_independent_optimiser():
    rng = np.random.default_rng(7)
    scores = rng.integers(1, 15, size=(5, 5)).astype(float) + 0.5 * rng.integers(0, 3, size=(5, 5))
    np.fill_diagonal(scores, 0.0)
    theta = fit_bradley_terry(scores, alpha=0.0)

    def negative_log_likelihood(t):
        diff = t[:, None] - t[None, :]
        return float((scores * np.logaddexp(0.0, -diff)).sum())

    best = minimize(negative_log_likelihood, np.zeros(5), method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(theta, best - best.mean(), atol=1e-6)
    assert theta.mean() == pytest.approx(0.0, abs=1e-12)


def test_unidentifiable_data_is_an_error_unless_regularised():
    games = [Game.from_perspective(f"g{k}", "strong", "weak", "WIN") for k in range(10)]
    games += [Game.from_perspective(f"h{k}", "strong", "mid", r) for k, r in enumerate(["WIN", "LOSS", "WIN"])]
    games += [Game.from_perspective(f"i{k}", "mid", "weak", "WIN") for k in range(5)]  # weak never scores
    with pytest.raises(RatingError, match="alpha > 0"):
        rate(games, alpha=0.0, bootstrap=0)
    ratings = rate(games, anchor="mid", bootstrap=0)
    assert ratings.rating("weak") < ratings.rating("mid") - 400 and math.isfinite(ratings.rating("weak"))
    apart = [Game.from_perspective("x", "a", "b", "WIN"), Game.from_perspective("y", "c", "d", "TIE")]
    with pytest.raises(RatingError, match="separate groups"):
        rate(apart, bootstrap=0)
    with pytest.raises(RatingError, match="no games"):
        rate(games, players=["strong", "mid", "weak", "idle"], bootstrap=0)
    with pytest.raises(RatingError, match="anchor"):
        rate(games, anchor="nobody", bootstrap=0)


# ------------------------------------------------------------------ synthetic ground truth


def test_recovered_ratings_lie_inside_their_intervals():
    records = simulate_tournament(seed=0)
    ratings = rate(records, anchor="p0", anchor_rating=1000.0, bootstrap=300, seed=0)
    assert ratings.num_games == len(records) // 2 == 10 * 120  # each battle counted once
    assert ratings.players == tuple(TRUE_ELO)
    assert ratings.low[0] == ratings.high[0] == ratings.elo[0] == 1000.0
    for k, player in enumerate(ratings.players):
        assert ratings.low[k] <= TRUE_ELO[player] <= ratings.high[k], player
        assert ratings.low[k] <= ratings.elo[k] <= ratings.high[k]
        assert abs(ratings.elo[k] - TRUE_ELO[player]) < 60.0
    widths = [h - lo for lo, h in zip(ratings.low[1:], ratings.high[1:])]
    assert all(40.0 < w < 200.0 for w in widths)  # about ±2 standard errors of ~25 Elo


def test_interval_coverage_over_repeated_tournaments():
    """Nominal 95 %: over 12 fixed-seed tournaments × 5 mean-anchored players, ≥ 85 % covered."""
    true_mean = np.mean(list(TRUE_ELO.values()))
    covered = total = 0
    for seed in range(1, 13):
        ratings = rate(simulate_tournament(seed, games_per_pair=60, both_sides=False),
                       anchor_rating=true_mean, bootstrap=100, seed=seed)
        for k, player in enumerate(ratings.players):
            covered += ratings.low[k] <= TRUE_ELO[player] <= ratings.high[k]
            total += 1
    assert total == 60
    assert covered / total >= 0.85


def test_bootstrap_is_seedable():
    records = simulate_tournament(seed=3, games_per_pair=30)
    first = rate(records, anchor="p2", bootstrap=50, seed=11)
    again = rate(records, anchor="p2", bootstrap=50, seed=11)
    other = rate(records, anchor="p2", bootstrap=50, seed=12)
    assert first == again
    assert first.low != other.low
    assert first.elo == other.elo


def test_as_dict_is_json_ready():
    ratings = rate(simulate_tournament(seed=4, games_per_pair=20), anchor="p0", bootstrap=20)
    data = json.loads(json.dumps(ratings.as_dict()))
    assert data["anchor"] == "p0" and data["num_games"] == 200 and data["num_bootstrap"] == 20
    assert data["players"]["p0"] == {"elo": 1000.0, "low": 1000.0, "high": 1000.0}
    assert rate(simulate_tournament(seed=4, games_per_pair=20), bootstrap=0).as_dict()["players"]["p1"]["low"] is None


# ------------------------------------------------------------------------------------ plots


def test_plots_are_written(tmp_path):
    records = simulate_tournament(seed=5, games_per_pair=20)
    ratings = rate(records, anchor="p0", bootstrap=30)
    plot_ratings(ratings, tmp_path / "ratings.png")
    plot_ratings(rate(records, bootstrap=0), tmp_path / "no_intervals.png")
    # a pair that never met stays blank
    plot_win_rates(records + [Game.from_perspective("extra", "p0", "newcomer", "WIN")], tmp_path / "sub" / "wins.png")
    for name in ("ratings.png", "no_intervals.png", "sub/wins.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

import numpy as np
import pytest

from metamon.errors import UnknownNameError
from metamon.nash import NashError, exploitability, get_meta_solver
from metamon.nash.matrix_game import biased_rock_paper_scissors, rock_paper_scissors
from metamon.nash.meta_solvers import alpharank, nash, prd, solve_zero_sum, uniform

RPS = rock_paper_scissors().win_probabilities()
BIASED = biased_rock_paper_scissors().win_probabilities()


def _zero_sum_nash_conv(a, x, y):
    """NashConv of (x, y) in the zero-sum game with row payoffs a, from the definition."""
    v = x @ a @ y
    return ((a @ y).max() - v) + ((-(x @ a)).max() + v)


def _random_antisymmetric(rng, n):
    upper = np.triu(rng.uniform(-0.5, 0.5, size=(n, n)), 1)
    return upper - upper.T


def test_lp_against_nashpy_on_50_random_zero_sum_games():
    nashpy = pytest.importorskip("nashpy", reason="nashpy is a test-only dependency (the dev extra)")
    rng = np.random.default_rng(2024)
    worst_conv, worst_value, worst_sigma = 0.0, 0.0, 0.0
    for game in range(50):
        if game % 2 == 0:  # a general (rectangular, non-symmetric) zero-sum game: compare values
            m, n = rng.integers(1, 21, size=2)
            a = rng.uniform(-1, 1, size=(m, n))
            ours = solve_zero_sum(a)
            x, y = nashpy.Game(a).linear_program()
            worst_value = max(worst_value, abs(ours.value - x @ a @ y))
            worst_conv = max(worst_conv, _zero_sum_nash_conv(a, ours.row, ours.col))
        else:  # a symmetric zero-sum game: compare sigma (unique for generic payoffs)
            n = int(rng.integers(2, 21))
            a = _random_antisymmetric(rng, n)
            sigma = nash(a + 0.5)
            x, y = nashpy.Game(a).linear_program()
            worst_sigma = max(worst_sigma, np.abs(sigma - x).max())
            worst_conv = max(worst_conv, _zero_sum_nash_conv(a, sigma, sigma), 2 * exploitability(a + 0.5, sigma))
    assert worst_conv <= 1e-9
    assert worst_value <= 1e-9
    assert worst_sigma <= 1e-6


def test_lp_is_one_of_the_equilibria_found_by_support_enumeration():
    nashpy = pytest.importorskip("nashpy", reason="nashpy is a test-only dependency (the dev extra)")
    rng = np.random.default_rng(7)
    for n in (2, 3, 4, 5):
        a = _random_antisymmetric(rng, n)
        sigma = nash(a + 0.5)
        equilibria = list(nashpy.Game(a).support_enumeration())
        assert any(np.abs(sigma - x).max() < 1e-9 for x, _ in equilibria)


def test_known_equilibria():
    np.testing.assert_allclose(nash(RPS), [1 / 3] * 3, atol=1e-12)
    np.testing.assert_allclose(nash(BIASED), [3 / 7, 3 / 7, 1 / 7], atol=1e-12)
    np.testing.assert_allclose(nash([[0.5, 0.7], [0.3, 0.5]]), [1.0, 0.0], atol=1e-12)


def test_dominated_strategy_gets_zero():
    # RPS plus "weak rock": rock's payoffs minus 1/2 against everything (strictly dominated by rock)
    a = np.zeros((4, 4))
    a[:3, :3] = rock_paper_scissors().payoffs
    a[3, :3] = a[0, :3] - 0.5
    a[:3, 3] = -a[3, :3]
    a[0, 3], a[3, 0] = 0.5, -0.5
    m = 0.5 + a / (2 * np.abs(a).max())
    sigma = nash(m)
    assert sigma[3] == 0.0
    np.testing.assert_allclose(sigma, [1 / 3, 1 / 3, 1 / 3, 0.0], atol=1e-12)
    assert prd(m)[3] < 5e-3  # approximate: the time-average keeps a trace of the early iterates


def test_seeds_phase0_matrix_has_a_pure_equilibrium():
    # The seeds' reported 5x5 matrix (their "exploitability 0.44" was a wrong formula): the pure
    # V1_SelfPlay mixture is an exact equilibrium of that empirical game.
    m = np.array([[.50, .62, .48, .96, 1.0], [.38, .50, .38, .90, .88], [.52, .62, .50, .86, .94],
                  [.04, .10, .14, .50, .50], [.00, .12, .06, .50, .50]])
    sigma = nash(m)
    np.testing.assert_allclose(sigma, [0, 0, 1, 0, 0], atol=1e-12)
    assert exploitability(m, sigma) == pytest.approx(0.0, abs=1e-12)


def test_solve_zero_sum_hand_computed():
    # row payoffs [[2, -1], [-1, 1]]: x = (2/5, 3/5), y = (2/5, 3/5), value 1/5
    sol = solve_zero_sum(np.array([[2.0, -1.0], [-1.0, 1.0]]))
    np.testing.assert_allclose(sol.row, [0.4, 0.6], atol=1e-12)
    np.testing.assert_allclose(sol.col, [0.4, 0.6], atol=1e-12)
    assert sol.value == pytest.approx(0.2, abs=1e-12)


def test_uniform_and_prd():
    np.testing.assert_allclose(uniform(BIASED), [1 / 3] * 3)
    np.testing.assert_allclose(prd(RPS), [1 / 3] * 3, atol=1e-9)
    sigma = prd(BIASED)
    assert exploitability(BIASED, sigma) < 3e-3
    np.testing.assert_allclose(sigma, [3 / 7, 3 / 7, 1 / 7], atol=0.02)
    floored = prd([[0.5, 1.0], [0.0, 0.5]], iterations=2000, floor=0.01)
    assert floored[1] >= 0.01 - 1e-12 and floored[0] > 0.98
    with pytest.raises(NashError, match="floor"):
        prd(RPS, floor=0.5)


def test_alpharank_is_a_ranking_not_a_nash():
    np.testing.assert_allclose(alpharank(RPS), [1 / 3] * 3, atol=1e-9)
    # two policies, M[0,1] = p: stationary odds pi0/pi1 = exp(alpha * m * (p - 1/2))
    pi = alpharank([[0.5, 0.6], [0.4, 0.5]], alpha=1.0, population_size=10)
    assert pi[0] / pi[1] == pytest.approx(np.exp(1.0), rel=1e-9)
    assert alpharank([[0.5, 0.6], [0.4, 0.5]], alpha=1000.0)[0] == pytest.approx(1.0)
    # on biased RPS it is about uniform, far from the Nash (3/7, 3/7, 1/7)
    assert exploitability(BIASED, alpharank(BIASED)) > 0.1


def test_get_meta_solver():
    assert get_meta_solver("nash") is nash
    fast = get_meta_solver("prd", iterations=10)
    assert fast(RPS).shape == (3,)

    def mine(m):
        return np.eye(len(m))[0]

    assert get_meta_solver(mine) is mine
    with pytest.raises(UnknownNameError, match="meta-solver 'nsah'.*alpharank, nash, prd, uniform"):
        get_meta_solver("nsah")
    with pytest.raises(NashError, match="Options"):
        get_meta_solver(mine, iterations=3)


@pytest.mark.parametrize("m,match", [
    ([[0.5, 0.7], [0.4, 0.5]], "not constant-sum"),
    ([[0.5, 1.2], [-0.2, 0.5]], r"\[0, 1\]"),
    ([[0.5, 0.5, 0.5]], "square"),
    ([[0.6, 0.5], [0.5, 0.4]], "not constant-sum"),
])
def test_bad_matrices_rejected(m, match):
    for solver in (nash, uniform, prd, alpharank):
        with pytest.raises(NashError, match=match):
            solver(m)

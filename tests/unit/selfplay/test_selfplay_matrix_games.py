"""Tabular self-play with the damping functions: games, exploitability, the update rule checked
against a hand-written reference, the convergence targets at 10⁴ iterations, the CLI and plot."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import torch

from metamon.errors import UnknownNameError
from metamon.selfplay.matrix_games import (
    METHODS,
    biased_rps,
    exploitability,
    main,
    make_game,
    random_game,
    rps,
    self_play,
)

TARGET_ITERATIONS = 10_000
TAIL = range(TARGET_ITERATIONS - 1000, TARGET_ITERATIONS + 1)


@pytest.fixture(scope="module")
def runs_at_10k():
    """damped and seeds_damped on the three games, 10⁴ iterations, seed 0, in one batch."""
    games = [("biased_rps", biased_rps()), ("rps", rps()), ("random", random_game(10, seed=0))]
    traces = self_play(games, [METHODS["damped"], METHODS["seeds_damped"]], TARGET_ITERATIONS, seed=0, checkpoints=TAIL)
    return {(t.game, t.method): t for t in traces}


# -------------------------------------------------------------------------------- games


def test_games_are_antisymmetric_and_biased_rps_has_the_known_nash():
    for a in (biased_rps(), rps(), random_game(10, seed=3)):
        assert torch.equal(a, -a.T)
    nash = torch.tensor([3 / 7, 3 / 7, 1 / 7], dtype=torch.float64)
    assert exploitability(biased_rps(), nash).item() == pytest.approx(0.0, abs=1e-15)
    assert exploitability(rps(), torch.full((3,), 1 / 3, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-15)
    # pure rock: paper wins 1 against it; in biased RPS pure scissors loses 3 to rock
    assert exploitability(rps(), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)).item() == 1.0
    assert exploitability(biased_rps(), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).item() == 3.0
    assert torch.equal(random_game(10, seed=5), random_game(10, seed=5))
    assert not torch.equal(random_game(10, seed=5), random_game(10, seed=6))
    assert torch.equal(make_game("random", 5), random_game(10, seed=5))
    with pytest.raises(UnknownNameError):
        make_game("chess")


def test_exploitability_is_batched():
    policies = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    out = exploitability(biased_rps().expand(2, 3, 3), policies)
    assert out.tolist() == [1.0, 3.0]


# ----------------------------------------------------------------------- the update rule


def _reference_md(a: np.ndarray, z0: np.ndarray, lr: float, beta: float, every: int | None, steps: int) -> np.ndarray:
    """The documented update written out by hand: z += lr (q − β (log π − log π_ref) − const)."""
    z, ref = z0.copy(), z0.copy()
    for t in range(steps):
        p = np.exp(z - z.max())
        p /= p.sum()
        logp = np.log(p)
        log_ref = ref - np.log(np.exp(ref - ref.max()).sum()) - ref.max()
        g = a @ p - beta * (logp - log_ref)
        z = z + lr * (g - p @ g)
        if every is not None and (t + 1) % every == 0:
            ref = z.copy()
    p = np.exp(z - z.max())
    return p / p.sum()


@pytest.mark.parametrize("method,beta,every", [("hedge", 0.0, None), ("damped", 0.2, 50), ("fixed_ref", 0.2, None)])
def test_update_matches_the_hand_written_mirror_descent(method, beta, every):
    a = biased_rps()
    z0 = torch.randn(3, generator=torch.Generator().manual_seed(4), dtype=torch.float64).numpy()
    [trace] = self_play([("biased_rps", a)], [METHODS[method]], 120, seed=4)
    expected = _reference_md(a.numpy(), z0, METHODS[method].step_size, beta, every, 120)
    np.testing.assert_allclose(trace.policy, expected, rtol=0, atol=1e-12)


def test_padding_a_small_game_with_illegal_actions_changes_nothing():
    alone = self_play([("rps", rps())], [METHODS["damped"]], 300, seed=1)[0]
    batched = self_play([("rps", rps()), ("random", random_game(10, 0))], [METHODS["damped"]], 300, seed=1)[0]
    assert batched.game == "rps"
    np.testing.assert_allclose(batched.policy, alone.policy, rtol=0, atol=1e-13)
    np.testing.assert_allclose(batched.last, alone.last, rtol=0, atol=1e-13)


def test_average_exploitability_is_that_of_the_mean_policy():
    [trace] = self_play([("rps", rps())], [METHODS["hedge"]], 3, seed=2, checkpoints=[0, 1, 2, 3])
    assert trace.iterations == [0, 1, 2, 3]
    assert trace.average[0] == trace.last[0]  # at t = 0 the average is π_0
    assert trace.average[1] == pytest.approx(trace.last[0])  # (1/1) Σ_{s<1} π_s = π_0


# ------------------------------------------------------------------- the 10⁴ targets


def test_damped_converges_on_biased_rps(runs_at_10k):
    trace = runs_at_10k[("biased_rps", "damped")]
    assert trace.last[-1] <= 1e-6
    np.testing.assert_allclose(trace.policy, [3 / 7, 3 / 7, 1 / 7], atol=1e-6)


def test_seeds_damped_does_not_converge_on_biased_rps(runs_at_10k):
    trace = runs_at_10k[("biased_rps", "seeds_damped")]
    assert trace.last[-1] > 0.5
    assert statistics.median(trace.last) > 0.5  # over the last 1000 iterations, not one lucky point


def test_damped_converges_on_rps_and_on_a_random_game(runs_at_10k):
    assert runs_at_10k[("rps", "damped")].last[-1] <= 1e-6
    random_trace = runs_at_10k[("random", "damped")]
    assert random_trace.last[-1] <= 1e-6
    assert max(random_trace.last[-100:]) <= 1e-5  # settled, not passing through
    # the seeds' damping stalls at a biased point on the same games
    assert runs_at_10k[("rps", "seeds_damped")].last[-1] > 1e-2
    assert runs_at_10k[("random", "seeds_damped")].last[-1] > 1e-2


# ------------------------------------------------------------------------------------- CLI


def test_cli_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    out = tmp_path / "plots" / "expl.png"
    traces = main(["--game", "rps", "biased_rps", "--method", "hedge", "damped", "--iterations", "200",
                   "--seed", "3", "--plot", str(out)])
    text = capsys.readouterr().out
    assert "game rps" in text and "game biased_rps" in text
    assert "t=1" in text and "t=10" in text and "t=100" in text and "t=200" in text
    assert text.count("damped         last") == 2
    assert len(traces) == 4
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {(t.game, t.method): t for t in traces}
    assert math.isclose(rows[("rps", "hedge")].last[0], rows[("rps", "damped")].last[0])  # same z_0


def test_cli_rejects_unknown_choices():
    with pytest.raises(SystemExit):
        main(["--method", "nope"])
    with pytest.raises(SystemExit):
        main(["--iterations", "0"])

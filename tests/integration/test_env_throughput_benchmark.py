"""``benchmarks/env_throughput.py`` on a few real battles: each of its three players (raw poke-env,
poke-env's own gymnasium env, ours) plays every battle it is asked for, one or two at a time, and
reports its turns and CPU time."""

from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "env_throughput.py"
FMT = "gen9randombattle"


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script(SCRIPT, "env_throughput")


@pytest.mark.parametrize("name", ["raw", "poke-env gym", "ours"])
@pytest.mark.parametrize("concurrency", [1, 2])
def test_each_runner_plays_every_battle(showdown_server, bench, name, concurrency):
    seconds, turns, cpu = bench.RUNNERS[name](showdown_server.port, FMT, 3, concurrency)
    assert seconds > 0 and cpu > 0
    assert turns >= 3 * 2  # three battles, none of which ends before its second turn


def test_the_minimal_gym_env_observes_a_constant_in_its_space_and_pays_nothing(bench):
    env = bench.MinimalSinglesEnv(battle_format=FMT, start_listening=False)
    obs = env.embed_battle(None)
    assert obs.tolist() == [0.0] and env.calc_reward(None) == 0.0
    assert all(space["observation"].contains(obs) for space in env.observation_spaces.values())

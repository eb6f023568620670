"""Every word our observation spaces emit on real battles has an id in the default vocabulary."""

import threading
from collections import Counter

import pytest

from metamon.data.trajectory_file import read_trajectory
from metamon.env import BattleAgainstBaseline
from metamon.env.rollout import play_episodes, random_policy
from metamon.interface import UniversalState, get_observation_space, get_observation_space_names
from metamon.tokenizer import DEFAULT_TOKENIZER, get_tokenizer

MATCHUPS = [("gen1ou", "GymLeader"), ("gen2ou", "Grunt"), ("gen3ou", "EmeraldKaizo"), ("gen4ou", "GymLeader"),
            ("gen9ou", "PokeEnvHeuristic"), ("gen9randombattle", "Grunt"), ("gen1randombattle", "MaxBPBaseline")]


@pytest.fixture(scope="module")
def battle_states(showdown_server, tmp_path_factory):
    out = tmp_path_factory.mktemp("coverage")
    envs = [BattleAgainstBaseline(fmt, "DefaultObservationSpace", "DefaultActionSpace", "BinaryReward",
                                  team_set=None if "random" in fmt else "builtin", opponent_type=opp,
                                  server_url=showdown_server.port, save_trajectories_to=out)
            for fmt, opp in MATCHUPS]
    threads = [threading.Thread(target=play_episodes, args=(env, random_policy(13, seed=i), 3),
                                kwargs={"progress": False}) for i, env in enumerate(envs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    for env in envs:
        env.close()
    trajectories = [[UniversalState.from_dict(s) for s in read_trajectory(p)["states"]]
                    for p in sorted(out.rglob("*.json.lz4"))]
    assert len(trajectories) == 3 * len(MATCHUPS)
    return trajectories


@pytest.mark.parametrize("obs_space_name", get_observation_space_names())
def test_no_unknown_words(battle_states, obs_space_name):
    tokenizer = get_tokenizer(DEFAULT_TOKENIZER)
    space = get_observation_space(obs_space_name)
    unknown, words = Counter(), 0
    for states in battle_states:
        space.reset()
        for state in states:
            text = str(space.state_to_obs(state)["text"])
            tokens = tokenizer.tokenize(text)
            words += len(tokens)
            unknown.update(w for w, t in zip(text.split(" "), tokens) if t == -1)
    assert words > 1000
    assert not unknown, f"{obs_space_name}: words missing from {DEFAULT_TOKENIZER}: {unknown.most_common(20)}"

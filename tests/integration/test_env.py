"""Our gymnasium envs on a real local Showdown server with real poke-env players."""

import threading

import numpy as np
import pytest
from poke_env.player import SimpleHeuristicsPlayer

from metamon.data.trajectory_file import parse_trajectory_filename, read_trajectory
from metamon.env import BattleAgainstBaseline, QueueOnLocalLadder, SelfPlayPair
from metamon.env.rollout import play_episodes, random_policy
from metamon.errors import BattleError, ServerError, TeamError, UnknownNameError
from metamon.interface import UniversalState, get_observation_space
from metamon.server import find_free_port
from metamon.teams import BUILTIN_TEAMS_DIR, TeamSet

REQUIRED_BASELINES = ["RandomBaseline", "MaxBPBaseline", "PokeEnvHeuristic", "Gen1BossAI", "Grunt",
                      "GymLeader", "EmeraldKaizo", "BugCatcher"]
FORMATS = {"gen1ou": "builtin", "gen9ou": "builtin", "gen9randombattle": None}


def make_env(server, battle_format="gen1ou", opponent="RandomBaseline", **kw):
    kw.setdefault("team_set", FORMATS.get(battle_format, "builtin"))
    return BattleAgainstBaseline(battle_format, kw.pop("obs", "DefaultObservationSpace"), "DefaultActionSpace",
                                 kw.pop("reward", "BinaryReward"), opponent_type=opponent,
                                 server_url=server.port, **kw)


@pytest.mark.parametrize("battle_format", list(FORMATS))
@pytest.mark.parametrize("opponent", REQUIRED_BASELINES)
def test_env_vs_each_baseline(showdown_server, battle_format, opponent):
    env = make_env(showdown_server, battle_format, opponent)
    try:
        obs, info = env.reset(seed=0)
        assert obs["numbers"].shape == (48,) and obs["numbers"].dtype == np.float32
        assert len(str(obs["text"]).split(" ")) == 87
        assert info["legal_actions"] and set(info["legal_actions"]) <= set(range(13))
        policy = random_policy(13, legal_only=True, seed=1)
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs, info))
            total += reward
            steps += 1
            done = terminated or truncated
            if not done:
                assert info["legal_actions"] and not info["invalid_action"]
        # BinaryReward: +-100 at the end, 0 before; a tie gives 0.
        assert total == {"win": 100.0, "loss": -100.0, "tie": 0.0}[info["result"]]
        assert info["valid_action_count"] == steps and info["invalid_action_count"] == 0
        assert info["turns"] >= 1
    finally:
        env.close()


def test_trajectories_load_back_into_equal_states_and_observations(showdown_server, tmp_path):
    obs_space = get_observation_space("TeamPreviewObservationSpace")
    env = make_env(showdown_server, "gen9ou", "Grunt", obs="TeamPreviewObservationSpace", save_trajectories_to=tmp_path)
    seen_obs = []
    try:
        for _ in range(2):
            obs, info = env.reset()
            episode_obs, actions = [obs], []
            done = False
            while not done:
                action = int(np.random.default_rng(len(actions)).choice(info["legal_actions"]))
                actions.append(action)
                obs, r, term, trunc, info = env.step(action)
                episode_obs.append(obs)
                done = term or trunc
            seen_obs.append((info["trajectory_path"], episode_obs, actions, info["result"]))
    finally:
        env.close()
    for path, episode_obs, actions, result in seen_obs:
        name = parse_trajectory_filename(path)
        assert name.battle_id.startswith("metamon-gen9ou-") and name.opponent == "Grunt"
        assert name.won == (result == "win")
        data = read_trajectory(path)
        assert data["actions"] == actions + [-1]
        assert data["invalid_actions"] == [False] * (len(actions) + 1)
        assert data["result"] == result
        states = [UniversalState.from_dict(s) for s in data["states"]]
        assert [s.to_dict() for s in states] == data["states"]
        assert len(states) == len(episode_obs)
        obs_space.reset()
        for state, online in zip(states, episode_obs):
            offline = obs_space.state_to_obs(state)
            assert str(offline["text"]) == str(online["text"])
            np.testing.assert_array_equal(offline["numbers"], online["numbers"])
        assert states[-1].battle_won == (result == "win")


def test_invalid_actions_fall_back_and_are_recorded(showdown_server, tmp_path):
    # Slot 12 (tera move 4) is never legal in gen1: every step must fall back.
    env = make_env(showdown_server, "gen1ou", "RandomBaseline", save_trajectories_to=tmp_path)
    try:
        env.reset()
        done, steps = False, 0
        while not done:
            _, _, term, trunc, info = env.step(12)
            assert info["invalid_action"]
            steps += 1
            done = term or trunc
        assert info["invalid_action_count"] == steps and info["valid_action_count"] == 0
        assert env.invalid_action_count == steps
        data = read_trajectory(info["trajectory_path"])
        assert data["invalid_actions"] == [True] * steps + [False]
        assert all(0 <= a <= 8 for a in data["actions"][:-1])  # the fallbacks actually played
    finally:
        env.close()


def test_turn_limit_forfeits_and_truncates(showdown_server, tmp_path):
    env = make_env(showdown_server, "gen1ou", "RandomBaseline", turn_limit=3, save_trajectories_to=tmp_path)
    try:
        obs, info = env.reset()
        results = [env.step(info["legal_actions"][0]) for _ in range(3)]
        *_, (obs, reward, terminated, truncated, info) = results
        assert terminated and truncated and info["turn_limit_reached"]
        assert info["result"] == "loss" and reward == -100.0
        assert parse_trajectory_filename(info["trajectory_path"]).result == "LOSS"
        # the env is reusable after a forfeit
        obs, info = env.reset()
        assert info["legal_actions"]
    finally:
        env.close()


def test_reset_mid_battle_forfeits_and_starts_a_new_battle(showdown_server):
    env = make_env(showdown_server, "gen9randombattle", "RandomBaseline")
    try:
        obs, info = env.reset()
        env.step(info["legal_actions"][0])
        results = play_episodes(env, random_policy(13), 1, progress=False)
        assert results[0].result in {"win", "loss", "tie"} and results[0].steps >= 1
        assert env.opponent.n_won_battles >= 1  # our forfeited first battle counts for the opponent
    finally:
        env.close()


def test_sixteen_concurrent_battles_finish(showdown_server):
    envs = [make_env(showdown_server, "gen9randombattle", "MaxBPBaseline") for _ in range(16)]
    outcomes = [None] * 16

    def run(i):
        outcomes[i] = play_episodes(envs[i], random_policy(13, seed=i), 1, progress=False)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert all(o is not None and o.result in {"win", "loss", "tie"} for o in outcomes)
    finally:
        for env in envs:
            env.close()


def _play_in_threads(envs, n_battles=1):
    outcomes = [None] * len(envs)

    def run(i):
        outcomes[i] = play_episodes(envs[i], random_policy(13, seed=i), n_battles, progress=False)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(envs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return outcomes


def test_self_play_pair_by_direct_challenge(showdown_server, tmp_path):
    pair = SelfPlayPair("gen1ou", "DefaultObservationSpace", "DefaultActionSpace", "BinaryReward",
                        team_set="builtin", server_url=showdown_server.port, save_trajectories_to=tmp_path)
    try:
        outcomes = _play_in_threads(pair.envs, n_battles=2)
    finally:
        pair.close()
    for a, b in zip(*outcomes):
        assert {a.result, b.result} in ({"win", "loss"}, {"tie"})
        ids = {parse_trajectory_filename(p).battle_id for p in (a.trajectory_path, b.trajectory_path)}
        assert len(ids) == 1  # one shared battle id for both perspectives
        names = [parse_trajectory_filename(p) for p in (a.trajectory_path, b.trajectory_path)]
        assert names[0].player == names[1].opponent and names[1].player == names[0].opponent


def test_two_ladder_envs_get_matched(showdown_server):
    envs = [QueueOnLocalLadder("gen9randombattle", "DefaultObservationSpace", "DefaultActionSpace",
                               "BinaryReward", num_battles=1, server_url=showdown_server.port,
                               ladder_timeout=120) for _ in range(2)]
    try:
        outcomes = _play_in_threads(envs)
    finally:
        for env in envs:
            env.close()
    a, b = outcomes[0][0], outcomes[1][0]
    assert {a.result, b.result} in ({"win", "loss"}, {"tie"})


def test_bad_inputs_are_clear_errors(showdown_server):
    with pytest.raises(UnknownNameError, match="battle format 'gen9oo'"):
        make_env(showdown_server, "gen9oo")
    with pytest.raises(UnknownNameError, match="baseline 'NoSuchBot'"):
        make_env(showdown_server, "gen9randombattle", "NoSuchBot")
    with pytest.raises(UnknownNameError, match="observation space 'Nope'"):
        make_env(showdown_server, "gen9randombattle", obs="Nope")
    with pytest.raises(TeamError, match="gen1ou"):
        make_env(showdown_server, "gen1ou", team_set=None)
    with pytest.raises(ServerError, match="No Pokémon Showdown server answers"):
        BattleAgainstBaseline("gen9randombattle", "DefaultObservationSpace", "DefaultActionSpace",
                              "BinaryReward", server_url=find_free_port())


def test_any_poke_env_player_class_can_be_the_opponent(showdown_server):
    env = make_env(showdown_server, "gen9randombattle", SimpleHeuristicsPlayer)
    try:
        (result,) = play_episodes(env, random_policy(13), 1, progress=False)
        assert result.result in {"win", "loss", "tie"}
    finally:
        env.close()


def test_illegal_team_is_a_clear_error_not_a_hang(showdown_server, tmp_path):
    source = sorted((BUILTIN_TEAMS_DIR / "gen9ou").glob("*.gen9ou_team"))[0].read_text().splitlines()
    first_move = next(i for i, line in enumerate(source) if line.startswith("- "))
    source[first_move] = "- Spore"  # nothing in our gen9ou teams can learn Spore but Breloom-likes
    (tmp_path / "bad.gen9ou_team").write_text("\n".join(source) + "\n")
    env = make_env(showdown_server, "gen9ou", "RandomBaseline", team_set=TeamSet(tmp_path, "gen9ou"),
                   opponent_team_set="builtin", battle_timeout=60)
    try:
        with pytest.raises(BattleError, match="refused.*(Spore|team)"):
            env.reset()
    finally:
        env.close()

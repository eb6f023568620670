"""A trained policy as a poke-env Player: batched KV-cache inference, real battles, evaluate CLI."""

import json
import threading

import numpy as np
import pytest
import torch
from _tiny_gin import tiny_agent_gin
from poke_env.ps_client import AccountConfiguration

from metamon.amago.checkpoints import save_weights
from metamon.baselines import make_player
from metamon.baselines.compete import main as compete_main
from metamon.battles import close_players, play_battles
from metamon.data.generate import generate
from metamon.data.parsed_replay_dset import load_trajectory
from metamon.data.trajectory_file import parse_trajectory_filename
from metamon.rl.evaluate import evaluate_on_ladder
from metamon.rl.evaluate import main as evaluate_main
from metamon.rl.player import InferenceBatcher, PolicyPlayer
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, build_agent, build_spaces, policy_weights_path, write_run_files
from metamon.server import unique_username
from metamon.teams import get_metamon_teams

INFO = RunInfo(
    observation_space="DefaultObservationSpace",
    action_space="DefaultActionSpace",
    reward_function="DefaultShapedReward",
    tokenizer="metamon-gemma-v1",
    formats=["gen1ou", "gen9ou"],
    max_seq_len=8,
)


def _make_run(run_dir, traj_encoder="TformerTrajEncoder", epoch=0):
    """A tiny randomly initialised run saved at ``epoch``; returns the agent in eval mode."""
    torch.manual_seed(0)
    write_run_files(run_dir, INFO, tiny_agent_gin(traj_encoder=traj_encoder, traj_layers=2))
    agent = build_agent(INFO, [run_dir / CONFIG_FILE])
    save_weights(agent, policy_weights_path(run_dir, epoch))
    return agent.eval()


# ---------------------------------------------------------------------------------------------
# batching == per-battle inference
# ---------------------------------------------------------------------------------------------
def _random_steps(rng, battle: int, n_steps: int):
    """Random observations; ``numbers[0] = 100 * battle + step`` identifies each step."""
    space = build_spaces(INFO)[0].gym_space
    n_words, n_numbers = space["text_tokens"].shape[0], space["numbers"].shape[0]
    steps = []
    for step in range(n_steps):
        illegal = rng.random(13) < 0.5
        illegal[rng.integers(13)] = False  # at least one legal action
        obs = {
            "numbers": rng.normal(size=n_numbers).astype(np.float32),
            "text_tokens": rng.integers(-1, 500, size=n_words).astype(np.int32),
            "illegal_actions": illegal,
        }
        obs["numbers"][0] = 100 * battle + step
        rl2 = np.zeros(14, dtype=np.float32)
        rl2[0] = rng.normal()
        rl2[1 + rng.integers(13)] = 1.0
        steps.append((obs, rl2))
    return steps


def _spy_on_states(agent) -> dict:
    """Record the trajectory encoder's output row of every decision, keyed by ``numbers[0]``:
    actions of a randomly initialised agent hardly depend on the history, its states do."""
    states = {}
    get_actions, traj_forward = agent.get_actions, agent.traj_encoder.forward

    def spy(obs, rl2s, time_idxs, hidden_state=None, sample=True):
        keys = obs["numbers"][:, 0, 0].tolist()

        def traj_spy(seq, time_idxs, hidden_state=None, log_dict=None):
            out, hidden = traj_forward(seq, time_idxs, hidden_state=hidden_state, log_dict=log_dict)
            states.update({key: row.clone() for key, row in zip(keys, out[:, 0])})
            return out, hidden

        agent.traj_encoder.forward = traj_spy
        try:
            return get_actions(obs, rl2s, time_idxs, hidden_state=hidden_state, sample=sample)
        finally:
            del agent.traj_encoder.forward

    agent.get_actions = spy
    return states


def _sequential_actions(agent, steps):
    """Greedy actions of one battle, alone, with its own hidden state of batch size 1."""
    hidden = agent.traj_encoder.init_hidden_state(1, "cpu")
    actions = []
    with torch.no_grad():
        for t, (obs, rl2) in enumerate(steps):
            batch = {k: torch.from_numpy(np.asarray(v))[None, None] for k, v in obs.items()}
            batch["text_tokens"] = batch["text_tokens"].long()
            a, hidden = agent.get_actions(batch, torch.from_numpy(rl2)[None, None],
                                          torch.tensor([[[t]]]), hidden_state=hidden, sample=False)
            actions.append(int(a[0, 0, 0]))
    return actions


@pytest.mark.parametrize("traj_encoder", ["TformerTrajEncoder", "GRUTrajEncoder"])
def test_batched_inference_matches_per_battle(tmp_path, traj_encoder):
    agent = _make_run(tmp_path, traj_encoder)
    states = _spy_on_states(agent)
    rng = np.random.default_rng(0)
    # Battle lengths past max_seq_len (8) exercise the sliding cache; battle "d" starts when
    # "a" ends and reuses its slot, so its memory must start empty.
    lengths = {"a": 4, "b": 13, "c": 10, "d": 9}
    steps = {name: _random_steps(rng, i, n) for i, (name, n) in enumerate(lengths.items())}
    expected = {name: _sequential_actions(agent, s) for name, s in steps.items()}
    expected_states = dict(states)
    # The states can tell: "d" after "a"'s history (a slot that was not reset) differs.
    _sequential_actions(agent, steps["a"] + steps["d"])
    assert not torch.allclose(states[300.0], expected_states[300.0], atol=1e-3)
    states.clear()

    batcher = InferenceBatcher(agent, capacity=2, window_s=0.05)  # 3 battles at once: must grow
    assert batcher.batched == (traj_encoder == "TformerTrajEncoder")
    slots = {name: batcher.open_slot() for name in "abc"}
    got = {name: [] for name in lengths}
    t = {name: 0 for name in lengths}
    while any(t[n] < lengths[n] for n in slots):
        active = [n for n in slots if t[n] < lengths[n]]
        futures = {n: batcher.submit(slots[n], *steps[n][t[n]], t[n], sample=False) for n in active}
        for n, future in futures.items():
            got[n].append(future.result(timeout=30))
            t[n] += 1
            if t[n] == lengths[n]:
                batcher.close_slot(slots[n])
                if n == "a":
                    slots["d"] = batcher.open_slot()
                    assert slots["d"] == slots["a"]
    batcher.close()
    assert got == expected
    assert states.keys() == expected_states.keys()
    for key, state in states.items():
        torch.testing.assert_close(state, expected_states[key], atol=1e-5, rtol=1e-5, msg=f"step {key}")
    assert max(batcher.batch_sizes) == 3  # really batched (one get_actions call per size-3 round)


# ---------------------------------------------------------------------------------------------
# real battles
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("battle_format", ["gen1ou", "gen9ou"])
def test_policy_player_battles(tmp_path, showdown_server, battle_format):
    agent = _make_run(tmp_path)
    obs_space, action_space, reward_fn = build_spaces(INFO)
    config = showdown_server.server_configuration
    player = PolicyPlayer(
        agent, obs_space, action_space, reward_fn, battle_format=battle_format, max_concurrent_battles=2,
        team=get_metamon_teams(battle_format, "builtin"), server_configuration=config, seed=0,
        account_configuration=AccountConfiguration(unique_username("Policy"), None),
    )
    opponent = make_player("RandomBaseline", battle_format, server_configuration=config, max_concurrent_battles=2,
                           team=get_metamon_teams(battle_format, "builtin"), seed=1)
    try:
        results = play_battles(player, opponent, 4, timeout_s=180)
    finally:
        close_players(player, opponent)
        player.close()
    assert [r.outcome for r in results if r.outcome == "error"] == []
    stats = player.stats()
    assert stats["invalid_fallbacks"] == 0 and stats["inference_errors"] == 0 and stats["rejected_choices"] == 0
    assert stats["valid_action_pct"] == 100.0
    assert stats["decisions"] >= 4 and len(player.decision_latencies) == stats["decisions"]
    assert 0 < stats["latency_p50_ms"] <= stats["latency_p95_ms"]
    assert player.batcher.open_slots == 0  # every finished battle gave its KV-cache row back
    assert player._contexts == {}


def test_evaluate_cli_end_to_end(tmp_path, showdown_server, capsys):
    run_dir = tmp_path / "runs" / "tiny"
    _make_run(run_dir, epoch=2)
    out = tmp_path / "eval.json"
    trajs = tmp_path / "trajs"
    rc = evaluate_main([
        "--run_name", "tiny", "--ckpt_dir", str(tmp_path / "runs"), "--formats", "gen1ou",
        "--opponents", "RandomBaseline", "Grunt", "--battles", "2", "--max_concurrent", "2",
        "--server_url", str(showdown_server.port), "--seed", "0", "--device", "cpu",
        "--json_out", str(out), "--save_trajectories_to", str(trajs),
    ])
    assert rc == 0
    table = capsys.readouterr().out
    assert "RandomBaseline" in table and "p95 ms" in table
    payload = json.loads(out.read_text())
    assert payload["epoch"] == 2 and payload["sample"] is True
    assert [r["opponent"] for r in payload["rows"]] == ["RandomBaseline", "Grunt"]
    for row in payload["rows"]:
        assert row["format"] == "gen1ou" and row["battles"] == 2 and row["finished"] == 2
        assert row["win"] + row["loss"] + row["tie"] == 2 and row["error"] == 0
        assert row["ci_low"] <= row["win_rate"] <= row["ci_high"]
        assert row["valid_action_pct"] == 100.0 and row["valid_actions"] == 1.0
        assert row["mean_turns"] >= 1 and row["decisions"] >= 2
        assert 0 < row["latency_p50_ms"] <= row["latency_p95_ms"]
        assert row["trajectories_written"] == 2
    files = sorted((trajs / "gen1ou").iterdir())
    assert len(files) == 4
    states, actions = load_trajectory(files[0])
    assert len(states) == len(actions) and actions[-1] == -1


def test_evaluate_cli_bad_input(tmp_path, capsys):
    run_dir = tmp_path / "runs" / "tiny"
    _make_run(run_dir)
    base = ["--run_name", "tiny", "--ckpt_dir", str(tmp_path / "runs")]
    assert evaluate_main(base + ["--formats", "gen1oux"]) == 2
    assert "gen1oux" in capsys.readouterr().err
    assert evaluate_main(base + ["--ckpt", "7"]) == 2
    assert "available epochs: [0]" in capsys.readouterr().err
    assert evaluate_main(base + ["--eval_type", "ladder", "--username", "x"]) == 2
    assert "needs --server_url" in capsys.readouterr().err


def test_ladder_mode_pairs_two_agents(tmp_path, showdown_server):
    """Two agents queue ``evaluate_on_ladder`` at the same time and are matched with each other."""
    url = f"{showdown_server.host}:{showdown_server.port}"
    agents = [_make_run(tmp_path / f"run{i}") for i in range(2)]
    names = [unique_username("Ladder") for _ in agents]
    rows, errors = {}, []

    def queue(i):
        try:
            rows[i] = evaluate_on_ladder(agents[i], INFO, "gen1ou", battles=1, server_url=url, username=names[i],
                                         seed=i, timeout_s=120)[0]
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=queue, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(rows) == 2
    for i, row in rows.items():
        assert row["opponent"] == "ladder" and row["finished"] == 1
        assert row["opponents"] == [names[1 - i]]
        assert row["valid_action_pct"] == 100.0
    assert rows[0]["win"] + rows[1]["win"] + rows[0]["tie"] == 1


# ---------------------------------------------------------------------------------------------
# player specs: trained runs in generate, evaluate and compete
# ---------------------------------------------------------------------------------------------
def test_generate_evaluate_and_compete_play_run_specs(tmp_path, showdown_server, capsys):
    runs = tmp_path / "runs"
    _make_run(runs / "alpha", epoch=1)
    _make_run(runs / "beta", epoch=3)
    alpha, beta = f"run:{runs / 'alpha'}@1", f"run:{runs / 'beta'}"
    url = f"{showdown_server.host}:{showdown_server.port}"
    out = tmp_path / "data"
    vs_baseline = generate(alpha, "GymLeader", "gen1ou", 2, out, server_url=url, concurrent=2, seed=0,
                           show_progress=False)
    vs_run = generate(alpha, beta, "gen1ou", 2, out, server_url=url, concurrent=2, seed=1, show_progress=False)
    assert vs_baseline.finished == 2 and vs_run.finished == 2
    assert vs_baseline.files_written == vs_run.files_written == 4

    files = sorted((out / "gen1ou").iterdir())
    assert len(files) == 8
    by_battle = {}
    for path in files:
        name = parse_trajectory_filename(path.name)
        by_battle.setdefault(name.battle_id, []).append(name.player)
        states, actions = load_trajectory(path)
        assert len(states) == len(actions) >= 2 and actions[-1] == -1
    assert sorted(len(players) for players in by_battle.values()) == [2, 2, 2, 2]  # both perspectives
    players = [p.lower() for pair in by_battle.values() for p in pair]
    counts = {prefix: sum(p.startswith(prefix) for p in players) for prefix in ("alpha1", "beta", "gymleade")}
    assert counts == {"alpha1": 4, "beta": 2, "gymleade": 2}  # usernames come from the specs' labels

    rc = evaluate_main(["--player", alpha, "--opponents", "GymLeader", beta, "--formats", "gen1ou",
                        "--battles", "2", "--max_concurrent", "2", "--server_url", str(showdown_server.port),
                        "--device", "cpu", "--json_out", str(tmp_path / "eval.json")])
    assert rc == 0
    rows = json.loads((tmp_path / "eval.json").read_text())["rows"]
    assert [r["opponent"] for r in rows] == ["GymLeader", beta]
    assert all(r["finished"] == 2 and r["error"] == 0 for r in rows)
    assert json.loads((tmp_path / "eval.json").read_text())["epoch"] == 1

    capsys.readouterr()
    assert compete_main(["--battle_format", "gen1ou", "--player", beta, "--opponent", alpha, "--battles", "2",
                         "--concurrent", "2", "--server_url", url]) == 0
    assert f"{beta}: " in capsys.readouterr().out

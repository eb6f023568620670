"""The generational self-play loop on a tiny setup (random tiny agent, a few battles, 1 epoch of
2 updates, 2 iterations, damped with reference refresh) on a real local Showdown server: state,
ratings and progress files, and a resume after a failure that redoes no finished step."""

import json

import pytest
import torch
from _tiny_gin import tiny_agent_gin

import metamon.selfplay.train_vanilla_selfplay as loop
from metamon.amago.checkpoints import save_weights
from metamon.battles.tournament_file import ResultsFile
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, build_agent, policy_weights_path, write_run_files

INFO = RunInfo(observation_space="DefaultObservationSpace", action_space="DefaultActionSpace",
               reward_function="DefaultShapedReward", tokenizer="metamon-gemma-v1", formats=["gen1ou"],
               max_seq_len=8)


def loop_argv(tmp_path, server, run_name: str, train_gin: str) -> list[str]:
    """Flags of a tiny loop run (1 epoch of 2 updates, 4 battles per iteration, 2 evaluation
    battles vs RandomBaseline) starting from a random tiny agent saved in ``tmp_path/init``."""
    init = tmp_path / "init"
    torch.manual_seed(0)
    write_run_files(init, INFO, tiny_agent_gin())
    save_weights(build_agent(INFO, [init / CONFIG_FILE]), policy_weights_path(init, 0))
    return ["--run_name", run_name, "--save_dir", str(tmp_path), "--init_checkpoint", f"run:{init}@0",
            "--epochs_per_iteration", "1", "--steps_per_epoch", "2", "--episodes_per_iteration", "4",
            "--num_eval_battles", "2", "--eval_opponents", "RandomBaseline",
            "--train_gin_config", train_gin, "--battle_format", "gen1ou",
            "--team_set", "builtin", "--batch_size_per_gpu", "2", "--dloader_workers", "0", "--min_turns", "1",
            "--server_url", f"{server.host}:{server.port}", "--max_concurrent", "2",
            "--bootstrap", "20", "--no_progress"]


@pytest.mark.slow
def test_loop_runs_rates_and_resumes(tmp_path, showdown_server, monkeypatch):
    argv = loop_argv(tmp_path, showdown_server, "loop", "vanilla_selfplay_refresh.gin") + [
        "--gin_bindings", "DampingConfig.refresh_every_updates = 1"]
    calls = []
    real_generate, real_filter = loop.generate, loop.filter_trajectories

    def counting_generate(*args, **kwargs):
        calls.append(("generate", args[3]))
        return real_generate(*args, **kwargs)

    def failing_filter(input_dir, *args, **kwargs):
        if "iteration_1" in str(input_dir) and not any(c[0] == "failed" for c in calls):
            calls.append(("failed", 0))
            raise loop.MetamonError("simulated crash")
        return real_filter(input_dir, *args, **kwargs)

    monkeypatch.setattr(loop, "generate", counting_generate)
    monkeypatch.setattr(loop, "filter_trajectories", failing_filter)
    assert loop.main(argv + ["--num_iterations", "2"]) == 2             # crashed in iteration 1's filter
    root = tmp_path / "loop"
    state = json.loads((root / loop.STATE_FILE).read_text())
    assert state["done"] == ["evaluate_0", "rate_0", "generate_0", "filter_0", "train_0", "evaluate_1", "rate_1",
                             "generate_1"]
    assert loop.main(argv + ["--num_iterations", "2"]) == 0             # resumed
    assert [c for c in calls if c[0] == "generate"] == [("generate", 2), ("generate", 2)]  # nothing redone
    state = json.loads((root / loop.STATE_FILE).read_text())
    assert state["done"][-4:] == ["filter_1", "train_1", "evaluate_2", "rate_2"]
    gens = state["generations"]
    assert len(gens) == 3 and gens[2].endswith("gen_2@0")
    records = ResultsFile(root / loop.RESULTS_FILE).unique()
    assert len(records) == 2 * (1 + 2 + 3)                              # each gen vs Random and earlier gens
    progress = json.loads((root / "progress.json").read_text())["generations"]
    assert [r["generation"] for r in progress] == [0, 1, 2]
    assert all(r["win_rate_vs_RandomBaseline"] is not None for r in progress)
    assert "Damping/KL to Reference" in progress[1] and "Damping/Entropy" in progress[2]
    ratings = json.loads((root / "ratings.json").read_text())
    assert set(gens) | {"RandomBaseline"} == set(ratings["players"])
    for name in ("ratings_ratings.png", "ratings_winrates.png", "progress.png", "curves.png"):
        assert (root / name).stat().st_size > 0
    run = json.loads((root / "generations" / "gen_2" / "run.json").read_text())
    assert run["init_from"].endswith("policy_epoch_0.safetensors") and "gen_1" in run["init_from"]
    # a third run with the same flags has nothing left to do
    assert loop.main(argv + ["--num_iterations", "2"]) == 0
    assert len([c for c in calls if c[0] == "generate"]) == 2


@pytest.mark.slow
def test_generations_also_play_earlier_generations(tmp_path, showdown_server):
    argv = loop_argv(tmp_path, showdown_server, "mix", "vanilla_selfplay_baseline.gin") + [
        "--num_iterations", "2", "--earlier_generations_share", "0.5"]
    assert loop.main(argv) == 0
    it0, it1 = tmp_path / "mix" / "iteration_0", tmp_path / "mix" / "iteration_1"
    assert not (it0 / "earlier").exists()                       # generation 0 has no earlier generation
    assert loop.count_trajectory_files(it0 / "data", "gen1ou") == 4
    # iteration 1: of its 2 battles, 1 against itself and 1 against generation 0 (both sides recorded)
    assert loop.count_trajectory_files(it1 / "data", "gen1ou") == 2
    assert loop.count_trajectory_files(it1 / "earlier" / "gen_0", "gen1ou") == 2
    assert loop.count_trajectory_files(it1 / "filtered_earlier", "gen1ou") >= 1
    assert (tmp_path / "mix" / "generations" / "gen_2" / "ckpts").is_dir()

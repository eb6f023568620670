"""The self-play loop's generation 0 may be a published model, named as metamon's scripts name it."""

from __future__ import annotations

import pytest

from metamon.data.generate import build_parser as generate_parser
from metamon.errors import MetamonError
from metamon.rl.pretrained import get_pretrained_model
from metamon.selfplay import train_vanilla_selfplay as loop


def _args(tmp_path, init):
    return loop.build_parser().parse_args(["--run_name", "sp", "--save_dir", str(tmp_path), "--init_checkpoint", init])


def test_a_published_model_is_generation_zero_with_its_registry_spaces_and_gin(tmp_path):
    runner = loop._Loop(_args(tmp_path, "SmallRL@38"))
    assert runner.state["generations"] == ["pretrained:SmallRL@38"]
    config = runner._train_config(0)
    model = get_pretrained_model("SmallRL")
    assert config.init_from_checkpoint == "pretrained:SmallRL@38"
    assert config.model_gin_config == str(model.model_gin_config)
    assert (config.obs_space, config.action_space, config.reward_function, config.tokenizer) == (
        "DefaultObservationSpace", "MinimalActionSpace", "DefaultShapedReward", "allreplays-v3")
    assert runner._source()[2] == dict(model.gin_bindings())  # bound before the gin files, as finetune_from_hf


def test_init_checkpoint_must_be_a_run_or_a_published_model(tmp_path):
    with pytest.raises(MetamonError, match="published model"):
        loop.run_loop(["--run_name", "sp", "--save_dir", str(tmp_path), "--init_checkpoint", "GymLeader"])


def test_generate_takes_the_seeds_model_flag():
    args = generate_parser().parse_args(["--model", "SyntheticRLV2", "--output_dir", "out"])
    assert args.player == "SyntheticRLV2"


def _loop_with_generations(tmp_path, share, episodes, n_generations):
    args = loop.build_parser().parse_args([
        "--run_name", "sp", "--save_dir", str(tmp_path), "--init_checkpoint", "SmallRL",
        "--episodes_per_iteration", str(episodes), "--earlier_generations_share", str(share)])
    runner = loop._Loop(args)
    runner.state["generations"] += [f"run:{tmp_path}/gen_{k}@0" for k in range(1, n_generations)]
    return runner


def test_battles_against_earlier_generations_are_split_evenly(tmp_path):
    it = tmp_path / "sp" / "iteration_2"
    runner = _loop_with_generations(tmp_path, 0.25, 200, 3)  # 100 battles: 25 vs earlier ones (13 + 12)
    assert runner.battle_plan(2) == [(None, 75, it / "data"), (0, 13, it / "earlier" / "gen_0"),
                                     (1, 12, it / "earlier" / "gen_1")]
    assert runner.battle_plan(0) == [(None, 100, tmp_path / "sp" / "iteration_0" / "data")]  # generation 0: itself
    assert _loop_with_generations(tmp_path, 0.0, 200, 3).battle_plan(2) == [(None, 100, it / "data")]


def test_training_samples_the_earlier_battles_with_their_share(tmp_path):
    runner = _loop_with_generations(tmp_path, 0.25, 200, 2)
    with pytest.raises(MetamonError, match="kept no battle against earlier generations"):
        runner._train_config(1)
    kept = tmp_path / "sp" / "iteration_1" / "filtered_earlier" / "gen1ou"
    kept.mkdir(parents=True)
    (kept / "a.json.lz4").write_bytes(b"x")
    config = runner._train_config(1)
    assert config.custom_replay_dir == str(kept.parent) and config.custom_replay_sample_weight == 0.25
    assert runner._train_config(0).custom_replay_dir is None  # generation 0 has no earlier generation


def test_earlier_generations_share_must_be_a_share(tmp_path):
    with pytest.raises(MetamonError, match="earlier_generations_share"):
        loop.run_loop(["--run_name", "sp", "--save_dir", str(tmp_path), "--init_checkpoint", "SmallRL",
                       "--earlier_generations_share", "1.5"])

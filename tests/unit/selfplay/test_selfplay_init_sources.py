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

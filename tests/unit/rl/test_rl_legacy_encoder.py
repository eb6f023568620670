"""A run saved before the rename (config.gin binds MetamonTstepEncoder, weights are the scratch
encoder's) still loads, with ScratchTstepEncoder and one warning; metamon's encoder is untouched."""

import logging

import gin
import torch
from _tiny_gin import tiny_agent_gin
from gymnasium import spaces

from metamon.amago.build import build_agent as build_amago_agent
from metamon.amago.checkpoints import save_weights, tensor_shapes
from metamon.rl import train
from metamon.rl.agent_config import configure_agent
from metamon.rl.dataset import obs_gym_space
from metamon.rl.legacy_encoder import LEGACY_KEYS, adopt_legacy_encoder, holds_scratch_encoder
from metamon.rl.run_dir import (
    CONFIG_FILE,
    RunInfo,
    build_agent,
    build_spaces,
    load_agent,
    policy_weights_path,
    write_run_files,
)
from metamon.rl.scratch_tstep_encoder import ScratchTstepEncoder
from metamon.rl.tstep_encoders import MetamonTstepEncoder

INFO = dict(observation_space="DefaultObservationSpace", action_space="DefaultActionSpace",
            reward_function="DefaultShapedReward", tokenizer="metamon-gemma-v1", formats=["gen1ou"],
            max_seq_len=8)


def _legacy_run(run_dir, epoch=2):
    """A run as saved before the rename: config.gin names MetamonTstepEncoder, the weights come
    from the scratch encoder (built here under its new name with the same bindings)."""
    info = RunInfo(**INFO)
    write_run_files(run_dir, info, tiny_agent_gin("ScratchTstepEncoder"))
    torch.manual_seed(0)
    saved = build_agent(info, [run_dir / CONFIG_FILE])
    save_weights(saved, policy_weights_path(run_dir, epoch))
    (run_dir / CONFIG_FILE).write_text(tiny_agent_gin("MetamonTstepEncoder"))
    return saved


def test_the_scratch_encoder_keys_mark_a_legacy_checkpoint(tmp_path):
    saved = _legacy_run(tmp_path / "old")
    keys = set(saved.state_dict())
    assert LEGACY_KEYS <= keys and holds_scratch_encoder(keys)
    assert not holds_scratch_encoder({"tstep_encoder.turn_embedding.token_embedding.text_emb.weight"})


def test_load_agent_rebuilds_a_legacy_run_with_the_scratch_encoder(tmp_path, caplog):
    run_dir = tmp_path / "old"
    saved = _legacy_run(run_dir)
    with caplog.at_level(logging.WARNING, logger="metamon.rl.legacy_encoder"):
        agent, info = load_agent(run_dir)
    assert type(agent.tstep_encoder) is ScratchTstepEncoder
    assert agent.tstep_encoder.d_model == 16 and agent.tstep_encoder.tokenizer_name == info.tokenizer
    own, ref = agent.state_dict(), saved.state_dict()
    assert own.keys() == ref.keys() and all(torch.equal(own[k], ref[k]) for k in own)
    warnings = [r for r in caplog.records if r.name == "metamon.rl.legacy_encoder"]
    assert len(warnings) == 1 and "ScratchTstepEncoder" in warnings[0].getMessage()
    assert str(policy_weights_path(run_dir, 2)) in warnings[0].getMessage()


def test_a_new_run_with_metamons_encoder_is_left_alone(tmp_path, caplog):
    run_dir = tmp_path / "new"
    info = RunInfo(**INFO)
    write_run_files(run_dir, info, tiny_agent_gin("MetamonTstepEncoder"))
    saved = build_agent(info, [run_dir / CONFIG_FILE])
    save_weights(saved, policy_weights_path(run_dir, 0))
    with caplog.at_level(logging.WARNING, logger="metamon.rl.legacy_encoder"):
        agent, _ = load_agent(run_dir)
    assert type(agent.tstep_encoder) is MetamonTstepEncoder
    assert not [r for r in caplog.records if r.name == "metamon.rl.legacy_encoder"]


def test_adopt_legacy_encoder_copies_the_bindings(tmp_path):
    saved = _legacy_run(tmp_path / "old")
    configure_agent([tmp_path / "old" / CONFIG_FILE], tokenizer="metamon-gemma-v1")
    keys = set(saved.state_dict())
    assert adopt_legacy_encoder(ScratchTstepEncoder, keys, "w") is ScratchTstepEncoder  # not the old name
    assert adopt_legacy_encoder(MetamonTstepEncoder, {"x"}, "w") is MetamonTstepEncoder  # not legacy weights
    assert adopt_legacy_encoder(MetamonTstepEncoder, keys, "w") is ScratchTstepEncoder
    assert gin.query_parameter("ScratchTstepEncoder.d_model") == 16
    assert gin.query_parameter("ScratchTstepEncoder.tokenizer") == "metamon-gemma-v1"


class _Experiment:
    """What ``train._initial_weights`` reads of an experiment: the encoder type and build_agent."""

    def __init__(self, structure, info):
        self.structure = structure
        self.tstep_encoder_type = structure["tstep_encoder_type"]
        obs_space, action_space, _ = build_spaces(info)
        self.spaces = obs_gym_space(obs_space, action_space), spaces.Discrete(action_space.gym_space.n)

    def build_agent(self):
        structure = dict(self.structure, tstep_encoder_type=self.tstep_encoder_type)
        return build_amago_agent(*self.spaces, **structure)


def test_init_from_checkpoint_accepts_a_legacy_run(tmp_path):
    run_dir = tmp_path / "old"
    _legacy_run(run_dir, epoch=4)
    new_gin = tmp_path / "model.gin"  # a user's own gin file from before the rename
    new_gin.write_text(tiny_agent_gin("MetamonTstepEncoder"))
    structure = configure_agent([new_gin], tokenizer="metamon-gemma-v1")
    experiment = _Experiment(structure, RunInfo(**INFO))
    weights, source = train._initial_weights(f"run:{run_dir}@4", experiment, RunInfo(**INFO))
    assert weights == policy_weights_path(run_dir, 4).resolve() and source == f"run:{run_dir.resolve()}@4"
    assert experiment.tstep_encoder_type is ScratchTstepEncoder
    agent = experiment.build_agent()
    assert set(agent.state_dict()) == set(tensor_shapes(weights))
    assert gin.query_parameter("ScratchTstepEncoder.d_model") == 16

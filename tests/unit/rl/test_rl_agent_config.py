"""configure_agent: every shipped config still builds the agent it built before (hyper-parameters
computed from the gin files with the old binding rules) and the tokenizer binding. (The import
structure of metamon.rl, no cycles and a trainer without the evaluator, is checked by
``lint-imports``: see pyproject.toml.)"""

import gin
import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.amago.agent import Agent, MultiTaskAgent, binary_filter
from metamon.amago.build import build_agent
from metamon.amago.nets.actor_critic import Actor, NCritics, NCriticsTwoHot
from metamon.amago.nets.traj_encoders import TrajEncoder
from metamon.amago.nets.tstep_encoders import TstepEncoder
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR, MetamonRLError
from metamon.rl.agent_config import configure_agent
from metamon.rl.gemma_encoder import GemmaTstepEncoder
from metamon.rl.scratch_tstep_encoder import ScratchTstepEncoder

MODELS = sorted(MODEL_CONFIG_DIR.glob("*.gin"))
TRAINING = sorted(TRAINING_CONFIG_DIR.glob("*.gin"))
CONFIGS = MODEL_CONFIG_DIR.parent  # the package's configs folder (models/, training/)

# The constructor defaults before MultiTaskAgent inherited Agent's arguments. Then a
# MultiTaskAgent read only MultiTaskAgent.* bindings and an Agent only Agent.* bindings.
OLD_AGENT_DEFAULTS = dict(
    num_critics=4, num_critics_td=2, online_coeff=1.0, offline_coeff=0.1, gamma=0.999, reward_multiplier=10.0,
    tau=0.003, fake_filter=False, num_actions_for_value_in_critic_loss=1, num_actions_for_value_in_actor_loss=1,
    fbc_filter_func=binary_filter, popart=True, use_target_actor=True, use_multigamma=True, actor_type=Actor,
    critic_type=NCritics, pass_obs_keys_to_actor=None,
    # issue 11's schedules, at their defaults (AMAGO's behaviour) unless a config binds them
    critic_warmup_steps=0, filter_gate_td_threshold=None, filter_gate_min_steps=0, filter_gate_max_steps=None,
    filter_gate_ema_decay=0.95, detach_critic_from_encoders=False, separate_critic_encoder=False,
    advantage_estimator="q", advantage_policy="current", advantage_ensemble="mean",
)
OLD_DEFAULTS = {
    Agent: OLD_AGENT_DEFAULTS,
    MultiTaskAgent: {**OLD_AGENT_DEFAULTS, "online_coeff": 0.0, "offline_coeff": 1.0,
                     "num_actions_for_value_in_actor_loss": 3, "critic_type": NCriticsTwoHot},
}


class StubTstep(TstepEncoder):
    """Stands in for the (possibly huge) configured encoders: only the agent's arguments matter."""

    @property
    def emb_dim(self) -> int:
        return 8

    def inner_forward(self, obs, rl2s, log_dict=None):
        return rl2s.new_zeros(*rl2s.shape[:2], 8)


class StubTraj(TrajEncoder):
    @property
    def emb_dim(self) -> int:
        return 8

    def forward(self, seq, time_idxs, hidden_state=None, log_dict=None):
        return seq, hidden_state



def hyper_parameters(agent) -> dict:
    return dict(
        num_critics=agent.num_critics, num_critics_td=agent.num_critics_td, online_coeff=agent.online_coeff,
        offline_coeff=agent.offline_coeff, gamma=agent.gamma, reward_multiplier=agent.reward_multiplier,
        tau=agent.tau, fake_filter=agent.fake_filter,
        num_actions_for_value_in_critic_loss=agent.num_actions_for_value_in_critic_loss,
        num_actions_for_value_in_actor_loss=agent.num_actions_for_value_in_actor_loss,
        fbc_filter_func=agent.fbc_filter_func, popart=agent.popart.enabled, use_target_actor=agent.use_target_actor,
        use_multigamma=agent.use_multigamma, actor_type=type(agent.actor), critic_type=type(agent.critics),
        pass_obs_keys_to_actor=agent.pass_obs_keys_to_actor,
        critic_warmup_steps=agent.critic_warmup_steps, filter_gate_td_threshold=agent.filter_gate.td_threshold,
        filter_gate_min_steps=agent.filter_gate.min_steps, filter_gate_max_steps=agent.filter_gate.max_steps,
        filter_gate_ema_decay=agent.filter_gate.ema_decay,
        detach_critic_from_encoders=agent.detach_critic_from_encoders,
        separate_critic_encoder=agent.separate_critic_encoder,
        advantage_estimator=agent.advantage_estimator, advantage_policy=agent.advantage_policy,
        advantage_ensemble=agent.advantage_ensemble,
    )


@pytest.mark.parametrize("training", TRAINING, ids=lambda p: p.stem)
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_every_config_builds_the_same_agent_as_before(model, training):
    structure = configure_agent([model, training])
    agent_type = structure["agent_type"]
    old = {**OLD_DEFAULTS[agent_type], **gin.get_bindings(agent_type)}
    old["pass_obs_keys_to_actor"] = list(old["pass_obs_keys_to_actor"] or [])
    torch.manual_seed(0)
    agent = build_agent(spaces.Dict({"x": spaces.Box(-1, 1, (2,), dtype=np.float32)}), spaces.Discrete(13),
                        max_seq_len=structure["max_seq_len"], tstep_encoder_type=StubTstep,
                        traj_encoder_type=StubTraj, agent_type=agent_type)
    assert type(agent) is agent_type
    damping = old.pop("damping", None)  # a gin reference (@DampingConfig()); the agent holds its runtime state
    assert (agent.damping is None) == (damping is None)
    assert hyper_parameters(agent) == old


def test_configure_agent_binds_the_tokenizer_unless_the_config_does(tmp_path):
    configure_agent([MODEL_CONFIG_DIR / "tiny_agent.gin", TRAINING_CONFIG_DIR / "il.gin"], tokenizer="tok-a")
    assert gin.query_parameter("ScratchTstepEncoder.tokenizer") == "tok-a"
    gemma = MODEL_CONFIG_DIR / "gemma_tiny_agent.gin"
    structure = configure_agent([gemma], tokenizer="tok-a", bindings=["GemmaTstepEncoder.tokenizer = 'tok-b'"])
    assert structure["tstep_encoder_type"] is GemmaTstepEncoder
    assert gin.query_parameter("GemmaTstepEncoder.tokenizer") == "tok-b"
    with pytest.raises(ValueError):  # only the configured encoder gets a binding
        gin.query_parameter("ScratchTstepEncoder.tokenizer")
    configure_agent([gemma], tokenizer="tok-a")
    assert gin.query_parameter("GemmaTstepEncoder.tokenizer") == "tok-a"
    configure_agent([gemma], tokenizer=None)
    assert "tokenizer" not in gin.get_bindings(GemmaTstepEncoder)
    assert structure["traj_encoder_type"].__name__ == "TformerTrajEncoder" and ScratchTstepEncoder


def test_configure_agent_needs_the_structure(tmp_path):
    partial = tmp_path / "partial.gin"
    partial.write_text("MetamonAMAGOExperiment.max_seq_len = 8\nExperiment.agent_type = @agent.Agent\n")
    with pytest.raises(MetamonRLError, match=r"does not bind MetamonAMAGOExperiment\.tstep_encoder_type, "
                                             r"MetamonAMAGOExperiment\.traj_encoder_type"):
        configure_agent([partial])

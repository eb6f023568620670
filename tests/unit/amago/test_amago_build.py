"""Agents without a trainer (build_agent, bound_structure) and the loss contract (AgentOutput,
weighted_loss, the missing-action mask)."""

from functools import partial

import gin
import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.amago.agent import Agent, AgentOutput, MultiTaskAgent, weighted_loss
from metamon.amago.build import STRUCTURE_ARGS, bound_structure, build_agent, rl2_space_of
from metamon.amago.experiment import Experiment
from metamon.amago.loading import MISSING_ACTION_KEY, RLData, RLData_pad_collate, known_action_mask, valid_step_mask
from metamon.amago.nets.actor_critic import Actor, NCritics
from metamon.amago.nets.traj_encoders import GRUTrajEncoder, TformerTrajEncoder
from metamon.amago.nets.tstep_encoders import FFTstepEncoder
from metamon.amago.utils import AmagoError

A = 4
OBS_SPACE = spaces.Dict({"x": spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)})
TSTEP = partial(FFTstepEncoder, n_layers=1, d_hidden=16, d_output=16)
TRAJ = partial(TformerTrajEncoder, d_model=16, n_heads=2, d_ff=32, n_layers=1)


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    gin.bind_parameter("Actor.d_hidden", 16)
    gin.bind_parameter("NCritics.d_hidden", 16)
    yield
    gin.clear_config()


def batch_of(lengths=(6, 4), seed=1):
    g = torch.Generator().manual_seed(seed)
    items = []
    for T in lengths:
        items.append(RLData(
            obs={"x": torch.rand(T, 3, generator=g) * 2 - 1},
            rews=torch.randn(T - 1, 1, generator=g),
            dones=torch.zeros(T - 1, 1, dtype=torch.bool),
            actions=torch.nn.functional.one_hot(torch.randint(A, (T - 1,), generator=g), A).float(),
            time_idxs=torch.arange(T)[:, None],
        ))
    return RLData_pad_collate(items)


# ------------------------------------------------------------------------------- build_agent


def test_build_agent_needs_only_spaces_and_structure():
    agent = build_agent(OBS_SPACE, spaces.Discrete(A), max_seq_len=8, tstep_encoder_type=TSTEP,
                        traj_encoder_type=TRAJ, agent_type=Agent)
    assert type(agent) is Agent and agent.rl2_space == rl2_space_of(spaces.Discrete(A))
    assert agent.rl2_space.shape == (A + 1,) and agent.max_seq_len == 8 and agent.training
    with pytest.raises(AmagoError, match="obs_space must be a gymnasium spaces.Dict"):
        build_agent(spaces.Box(0, 1, (3,)), spaces.Discrete(A), 8, TSTEP, TRAJ, Agent)
    with pytest.raises(AmagoError, match="action_space must be a gymnasium spaces.Discrete"):
        build_agent(OBS_SPACE, spaces.Box(0, 1, (2,)), 8, TSTEP, TRAJ, Agent)
    with pytest.raises(AmagoError, match="max_seq_len must be a positive int"):
        build_agent(OBS_SPACE, spaces.Discrete(A), 0, TSTEP, TRAJ, Agent)


def test_build_agent_is_gin_configurable():
    gin.bind_parameter("build_agent.max_seq_len", 5)
    gin.bind_parameter("build_agent.tstep_encoder_type", FFTstepEncoder)
    gin.bind_parameter("build_agent.traj_encoder_type", GRUTrajEncoder)
    gin.bind_parameter("build_agent.agent_type", MultiTaskAgent)
    gin.bind_parameter("NCriticsTwoHot.min_return", -10.0)
    gin.bind_parameter("NCriticsTwoHot.max_return", 10.0)
    agent = build_agent(OBS_SPACE, spaces.Discrete(A))
    assert type(agent) is MultiTaskAgent and agent.max_seq_len == 5
    assert type(agent.traj_encoder) is GRUTrajEncoder


class _Sub(Experiment):
    """Not gin-configurable: takes its bindings from Experiment."""


@gin.configurable
class _ConfiguredSub(_Sub):
    pass


def test_bound_structure_reads_experiment_bindings_subclass_first():
    gin.parse_config("\n".join([
        "Experiment.max_seq_len = 16",
        "Experiment.agent_type = @Agent",
        "_ConfiguredSub.agent_type = @MultiTaskAgent",
        "_ConfiguredSub.tstep_encoder_type = @FFTstepEncoder",
        "Experiment.learning_rate = 0.5",
    ]))
    assert bound_structure(Experiment) == {"max_seq_len": 16, "agent_type": Agent}
    assert bound_structure(_Sub) == {"max_seq_len": 16, "agent_type": Agent}
    assert bound_structure(_ConfiguredSub) == {
        "max_seq_len": 16, "agent_type": MultiTaskAgent, "tstep_encoder_type": FFTstepEncoder}
    assert set(STRUCTURE_ARGS) == {"max_seq_len", "tstep_encoder_type", "traj_encoder_type", "agent_type"}


def test_experiment_builds_through_build_agent(tmp_path):
    exp = Experiment(run_name="r", ckpt_base_dir=str(tmp_path), max_seq_len=8, dataset=None,
                     tstep_encoder_type=TSTEP, traj_encoder_type=TRAJ, agent_type=Agent,
                     obs_space=OBS_SPACE, action_space=spaces.Discrete(A))
    torch.manual_seed(0)
    a = exp.build_agent()
    torch.manual_seed(0)
    b = build_agent(OBS_SPACE, spaces.Discrete(A), 8, TSTEP, TRAJ, Agent)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


# ------------------------------------------------------------------------------ loss contract


def test_known_action_mask():
    batch = batch_of()                                          # L = 6; the second item is padded after 4
    assert known_action_mask(batch).tolist() == [[True] * 5] * 2
    missing = torch.zeros(2, 6, 1, dtype=torch.bool)
    missing[0, 1] = True
    missing[1, 4:] = True                                       # padding: collate pads bools with True
    batch.obs[MISSING_ACTION_KEY] = missing
    assert known_action_mask(batch).tolist() == [[True, False, True, True, True], [True, True, True, True, False]]
    batch.obs[MISSING_ACTION_KEY] = torch.zeros(2, 5, 1, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"must have shape \(B, L, 1\) = \(2, 6, 1\), got \(2, 5, 1\)"):
        known_action_mask(batch)


@pytest.mark.parametrize("il", [True, False])
def test_forward_returns_masked_losses(il):
    torch.manual_seed(0)
    kwargs = dict(fake_filter=True, online_coeff=0.0, offline_coeff=1.0) if il else dict(num_critics=3)
    agent = Agent(OBS_SPACE, rl2_space_of(spaces.Discrete(A)), spaces.Discrete(A), 8, TSTEP, TRAJ, **kwargs)
    batch = batch_of()
    missing = torch.zeros(2, 6, 1, dtype=torch.bool)
    missing[0, 2] = True
    batch.obs[MISSING_ACTION_KEY] = missing
    out = agent(batch, log_step=False)
    assert isinstance(out, AgentOutput) and out.metrics == {}
    G = len(agent.gammas)
    expected = valid_step_mask(batch.rl2s)[:, 1:] & ~missing[:, :-1, 0]
    assert expected.tolist() == [[True, True, False, True, True], [True, True, True, False, False]]
    assert out.actor.shape == out.actor_mask.shape == (2, 5, G, 1)
    assert torch.equal(out.actor_mask, expected[:, :, None, None].expand(2, 5, G, 1))
    if il:
        assert out.critic is None and out.critic_mask is None
    else:
        assert out.critic.shape == out.critic_mask.shape == (2, 5, 3, G, 1)
        assert torch.equal(out.critic_mask, expected[:, :, None, None, None].expand(2, 5, 3, G, 1))
    assert "Filter Mean" in agent(batch, log_step=True).metrics


def test_weighted_loss_formula():
    actor = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1)
    actor_mask = torch.tensor([True, True, False, True]).view(1, 4, 1, 1)
    critic = torch.tensor([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0], [70.0, 80.0]]).view(1, 4, 2, 1, 1)
    critic_mask = actor_mask[:, :, None].expand(1, 4, 2, 1, 1)
    total, a, c = weighted_loss(AgentOutput(actor, critic, actor_mask, critic_mask, {}), critic_loss_weight=0.5)
    assert a.item() == pytest.approx(7 / 3, rel=1e-4)
    assert c.item() == pytest.approx(250 / 6, rel=1e-4)
    assert total.item() == pytest.approx(7 / 3 + 0.5 * 250 / 6, rel=1e-4)
    total, a, c = weighted_loss(AgentOutput(actor, None, actor_mask, None, {}), critic_loss_weight=0.5)
    assert c is None and total.item() == a.item() == pytest.approx(7 / 3, rel=1e-4)


def test_class_defaults_and_explicit_none():
    torch.manual_seed(0)
    agent = Agent(OBS_SPACE, rl2_space_of(spaces.Discrete(A)), spaces.Discrete(A), 8, TSTEP, TRAJ,
                  online_coeff=None, critic_type=None, actor_type=Actor)
    assert agent.online_coeff == 1.0 and type(agent.critics) is NCritics  # None reads class_defaults
    assert MultiTaskAgent.class_defaults["critic_type"].__name__ == "NCriticsTwoHot"
    assert Agent.class_defaults["online_coeff"] == 1.0  # the subclass's table did not change Agent's

"""``Agent(advantage_policy="initial")``: the filter's V(s) = Σ_a π_ref(a|s) Q(s, a) under a frozen
copy of the policy as the run's weights were set, instead of the policy being trained.

Two agents built with the same seed have the same weights (the reference is built last), so the
reference agent's advantage after its policy has changed must equal the plain agent's advantage
before the change, and a plain agent with the changed policy must give another one."""

from functools import partial

import pytest
import torch

from metamon.amago.agent import SCHEDULE_STATE_PREFIXES, MultiTaskAgent
from metamon.amago.nets.actor_critic import NCriticsTwoHot
from metamon.amago.utils import AmagoError

FBC = dict(online_coeff=0.0, offline_coeff=1.0)  # filtered BC only, as binary_rl.gin


def adv(agent, batch):
    return agent(batch, log_step=True).steps.adv


def test_the_filter_reads_the_initial_policy_not_the_current_one(tiny_rl):
    b = tiny_rl.batch()
    plain = tiny_rl.agent(0, **FBC).eval()
    ref = tiny_rl.agent(0, advantage_policy="initial", **FBC).eval()
    shared = plain.state_dict()
    assert all(torch.equal(v, shared[k]) for k, v in ref.state_dict().items() if k in shared)
    assert any(k.startswith("advantage_reference.actor.") for k in ref.state_dict())
    before = adv(plain, b)

    tiny_rl.one_action_policy(ref, 2)
    steps = ref(b, log_step=True).steps
    assert (steps.policy_argmax == 2).all()                  # the policy being trained has changed ...
    assert torch.allclose(steps.adv, before, atol=1e-6)      # ... the filter's V has not
    tiny_rl.one_action_policy(plain, 2)
    assert not torch.allclose(adv(plain, b), before, atol=1e-3)

    ref.set_advantage_reference()                            # now the reference is the changed policy
    assert torch.allclose(adv(ref, b), adv(plain, b), atol=1e-6)


def test_training_never_moves_the_reference(tiny_rl):
    b = tiny_rl.batch()
    agent = tiny_rl.agent(0, advantage_policy="initial", **FBC)
    reference = {k: v.clone() for k, v in agent.advantage_reference.state_dict().items()}
    actor = [p.clone() for p in agent.actor.parameters()]
    trainable = list(agent.trainable_params)
    assert not any(p is q for p in trainable for q in agent.advantage_reference.parameters())
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    for _ in range(3):
        out = agent(b, log_step=False)
        loss = out.actor[out.actor_mask].mean() + out.critic[out.critic_mask].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(v, agent.advantage_reference.state_dict()[k]) for k, v in reference.items())
    assert not all(torch.equal(p, q) for p, q in zip(actor, agent.actor.parameters()))
    assert not any(p.requires_grad for p in agent.advantage_reference.parameters())
    assert "advantage_reference." in SCHEDULE_STATE_PREFIXES  # a run started from weights sets its own


def test_bad_settings_are_refused(tiny_rl):
    with pytest.raises(AmagoError, match="advantage_policy must be one of \\('current', 'initial'\\), got 'old'"):
        tiny_rl.agent(advantage_policy="old", **FBC)
    with pytest.raises(AmagoError, match="needs online_coeff=0 .* got online_coeff=1.0"):
        tiny_rl.agent(advantage_policy="initial")
    with pytest.raises(AmagoError, match="fake_filter=True"):
        tiny_rl.agent(advantage_policy="initial", fake_filter=True, **FBC)
    assert tiny_rl.agent(**FBC).advantage_reference is None


def test_multitask_agent_samples_v_from_the_reference(tiny_rl):
    """MultiTaskAgent draws V's actions from π; with the same RNG state the reference agent's draws
    after its policy changed are the plain agent's draws before the change."""
    critic = partial(NCriticsTwoHot, d_hidden=16, min_return=-30.0, max_return=30.0, output_bins=16, use_symlog=False)
    b = tiny_rl.batch()
    plain = tiny_rl.agent(0, agent_cls=MultiTaskAgent, critic_type=critic).eval()
    ref = tiny_rl.agent(0, agent_cls=MultiTaskAgent, critic_type=critic, advantage_policy="initial").eval()
    torch.manual_seed(5)
    before = adv(plain, b)
    tiny_rl.one_action_policy(ref, 2)
    torch.manual_seed(5)
    assert torch.allclose(adv(ref, b), before, atol=1e-6)
    tiny_rl.one_action_policy(plain, 2)
    torch.manual_seed(5)
    assert not torch.allclose(adv(plain, b), before, atol=1e-3)

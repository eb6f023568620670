"""``benchmarks/learning_report.py``'s ``use_policy_of``: a run's critic scored against another
run's policy. A policy whose logits all but select action k has the actor's clipped distribution
p^ = clamp(softmax, 0.001, 0.99) renormalised (p^(k) = 0.99 / 0.993), the same in every state, so
the advantage of every step is Q(s, a_data) − Σ_a p^(a) Q(s, a), computed here from the critic alone."""

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.amago.agent import Agent
from metamon.amago.loading import RLData, RLData_pad_collate, valid_step_mask
from metamon.amago.nets.actor_critic import Actor, NCritics
from metamon.amago.nets.traj_encoders import TformerTrajEncoder
from metamon.amago.nets.tstep_encoders import FFTstepEncoder

REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "learning_report.py"
A = 4
POLICY = ("tstep_encoder.", "traj_encoder.", "actor.", "target_actor.")  # an Agent's policy side, by name


@pytest.fixture(scope="module")
def report(load_script):
    return load_script(REPORT, "learning_report")


def agent(seed, separate=True, actor_hidden=16):
    torch.manual_seed(seed)
    return Agent(
        spaces.Dict({"x": spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)}),
        spaces.Box(-np.inf, np.inf, (A + 1,), dtype=np.float32), spaces.Discrete(A), max_seq_len=8,
        tstep_encoder_type=partial(FFTstepEncoder, n_layers=1, d_hidden=16, d_output=16, normalize_inputs=False),
        traj_encoder_type=partial(TformerTrajEncoder, d_model=16, n_heads=2, d_ff=32, n_layers=1,
                                  dropout_ff=0.0, dropout_emb=0.0),
        actor_type=partial(Actor, d_hidden=actor_hidden), critic_type=partial(NCritics, d_hidden=16),
        separate_critic_encoder=separate,
    )


def batch():
    g = torch.Generator().manual_seed(3)
    items = []
    for T in (6, 4):
        dones = torch.zeros(T - 1, 1, dtype=torch.bool)
        dones[-1] = True
        actions = torch.nn.functional.one_hot(torch.randint(A, (T - 1,), generator=g), A).float()
        items.append(RLData(obs={"x": torch.rand(T, 3, generator=g) * 2 - 1}, rews=torch.randn(T - 1, 1, generator=g),
                            dones=dones, actions=actions, time_idxs=torch.arange(T)[:, None]))
    return RLData_pad_collate(items)


def critic_side(a):
    return {k: v.clone() for k, v in a.state_dict().items() if not k.startswith(POLICY)}


def test_the_critic_is_scored_against_the_other_policy(report):
    critic, other = agent(0).eval(), agent(1)  # eval: PopArt's statistics stay as they are
    k, G = 2, len(critic.gammas)
    with torch.no_grad():
        for actor in (other.actor, other.target_actor):
            actor.base.out_layer.weight.zero_()
            actor.base.out_layer.bias.zero_()
            actor.base.out_layer.bias.view(G, A)[:, k] = 60.0              # softmax(k) = 1 − O(e⁻⁶⁰)
    kept, b = critic_side(critic), batch()
    own = critic(b, log_step=True).steps
    report.use_policy_of(critic, other)
    steps = critic(b, log_step=True).steps

    assert all(torch.equal(v, critic_side(critic)[n]) for n, v in kept.items())  # the critic is its own
    mine, theirs = critic.state_dict(), other.state_dict()
    policy_keys = [n for n in theirs if n.startswith(POLICY)]
    assert len(policy_keys) > 10 and all(torch.equal(mine[n], theirs[n]) for n in policy_keys)
    assert (steps.policy_argmax == k).all() and not (own.policy_argmax == k).all()
    with torch.no_grad():
        sc = critic._critic_state(b, None)
        q = critic._q_all_actions(sc[:, :-1]).mean(dim=2)                      # (B, L−1, G, A)
    valid = valid_step_mask(b.rl2s)[:, 1:]
    q_data = q.gather(-1, b.actions.argmax(-1)[..., None, None].expand(*q.shape[:3], 1))[..., 0]
    dist = other.actor.policy_dist
    p_hat = torch.full((A,), dist.clip_prob_low)
    p_hat[k] = dist.clip_prob_high
    p_hat = p_hat / p_hat.sum()
    expected = (q_data - (q * p_hat).sum(-1))[valid]                           # (N, G)
    assert torch.allclose(steps.adv, expected, atol=1e-5)
    assert not torch.allclose(own.adv, expected, atol=1e-3)


def test_shared_encoders_or_another_architecture_are_refused(report):
    with pytest.raises(ValueError, match="separate_critic_encoder = True"):
        report.use_policy_of(agent(0, separate=False), agent(1))
    with pytest.raises(ValueError, match="the other run's actor does not fit"):
        report.use_policy_of(agent(0), agent(1, actor_hidden=8))

"""``benchmarks/learning_report.py``'s ``use_policy_of``: a run's critic scored against another
run's policy. A policy whose logits all but select action k has the actor's clipped distribution
p^ = clamp(softmax, 0.001, 0.99) renormalised (p^(k) = 0.99 / 0.993), the same in every state, so
the advantage of every step is Q(s, a_data) − Σ_a p^(a) Q(s, a), computed here from the critic alone."""

from pathlib import Path

import pytest
import torch

from metamon.amago.loading import valid_step_mask

REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "learning_report.py"
POLICY = ("tstep_encoder.", "traj_encoder.", "actor.", "target_actor.")  # an Agent's policy side, by name


@pytest.fixture(scope="module")
def report(load_script):
    return load_script(REPORT, "learning_report")


def critic_side(a):
    return {k: v.clone() for k, v in a.state_dict().items() if not k.startswith(POLICY)}


def test_the_critic_is_scored_against_the_other_policy(report, tiny_rl):
    A = tiny_rl.A
    critic = tiny_rl.agent(0, separate_critic_encoder=True).eval()  # eval: PopArt's statistics stay as they are
    other = tiny_rl.agent(1, separate_critic_encoder=True)
    k = 2
    tiny_rl.one_action_policy(other, k)
    kept, b = critic_side(critic), tiny_rl.batch()
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


def test_shared_encoders_or_another_architecture_are_refused(report, tiny_rl):
    with pytest.raises(ValueError, match="separate_critic_encoder = True"):
        report.use_policy_of(tiny_rl.agent(0), tiny_rl.agent(1, separate_critic_encoder=True))
    with pytest.raises(ValueError, match="the other run's actor does not fit"):
        report.use_policy_of(tiny_rl.agent(0, separate_critic_encoder=True),
                             tiny_rl.agent(1, actor_hidden=8, separate_critic_encoder=True))

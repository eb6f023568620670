"""Damping in training (metamon.amago.reference): the actor term on the agent path, the reference
lifecycle (frozen, outside the optimizer and the weights, reset after loading, refreshed), the
controller's LR reaching the optimizer, and bit-identical losses with damping off."""

import csv
import math
from functools import partial

import pytest
import torch
from test_amago_agent import make_agent, make_batch

from metamon.amago.agent import Agent, MultiTaskAgent, weighted_loss
from metamon.amago.checkpoints import save_weights
from metamon.amago.damping import masked_entropy, masked_reverse_kl
from metamon.amago.nets.actor_critic import Actor
from metamon.amago.reference import DampingConfig, loss_mask
from metamon.amago.utils import AmagoError, masked_avg

import _amago_tiny_run as tiny


class IllegalLastActionActor(Actor):
    """Actor whose last action is illegal wherever obs x[0] > 0 (logit −inf there)."""

    def actor_network_forward(self, state, log_dict=None, straight_from_obs=None):
        logits = super().actor_network_forward(state, log_dict, straight_from_obs)
        illegal = torch.zeros(logits.shape[:2] + (1, logits.shape[-1]), dtype=torch.bool)
        illegal[..., -1] = (straight_from_obs["x"][..., 0] > 0)[..., None]
        return logits.masked_fill(illegal, -math.inf)


def _perturb_(module, scale=0.3, seed=5):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def _damped(cls=Agent, **config):
    kwargs = dict(kl_coef_init=0.3, kl_coef_max=1.0, ent_coef_init=0.05)
    kwargs.update(config)
    agent = make_agent(cls, actor_type=partial(IllegalLastActionActor, d_hidden=16),
                       pass_obs_keys_to_actor=["x"], damping=DampingConfig(**kwargs))
    agent.reset_reference()
    _perturb_(agent.actor)  # the reference is now another policy
    _perturb_(agent.traj_encoder, scale=0.05, seed=6)
    return agent


@pytest.mark.parametrize("cls", [Agent, MultiTaskAgent])
def test_actor_term_is_beta_kl_minus_eta_entropy_on_the_actor_indices(cls):
    agent = _damped(cls)
    agent.eval()  # deterministic passes (no PopArt update, no dropout)
    batch = make_batch()
    torch.manual_seed(0)
    out = agent(batch, log_step=True)
    damping, agent.damping = agent.damping, None
    torch.manual_seed(0)
    plain = agent(batch, log_step=False)
    agent.damping = damping
    with torch.no_grad():
        logits = agent.policy_network().logits(batch, {"x": batch.obs["x"]})[:, :-1]
        ref = damping.reference.logits(batch, {"x": batch.obs["x"]})[:, :-1]
    legal = torch.isfinite(logits)
    assert (~legal).any() and legal.any(dim=-1).all()
    kl, ent = masked_reverse_kl(logits, ref, legal), masked_entropy(logits, legal)
    assert (kl > 1e-4).all()
    expected = (0.3 * kl - 0.05 * ent).unsqueeze(-1)                    # (B, L−1, G, 1): states 0..L−2
    assert torch.allclose(out.actor - plain.actor, expected, atol=1e-5)
    assert torch.equal(out.actor_mask, plain.actor_mask)
    mask = loss_mask(batch)[:, :, None].expand_as(kl)
    assert out.metrics["Damping/KL to Reference"] == pytest.approx(masked_avg(kl, mask).item(), rel=1e-5)
    assert out.metrics["Damping/Entropy"] == pytest.approx(masked_avg(ent, mask).item(), rel=1e-5)
    assert out.metrics["Damping/KL Coefficient"] == 0.3
    assert out.metrics["Damping/Entropy Coefficient"] == 0.05
    # weighted_loss counts it once: the actor term's masked mean moves by the penalty's masked mean
    total, actor, _ = weighted_loss(out, 10.0)
    _, actor_plain, _ = weighted_loss(plain, 10.0)
    gap = masked_avg(expected, out.actor_mask)
    assert (actor - actor_plain).item() == pytest.approx(gap.item(), abs=1e-5)


def test_schedules_are_applied_per_update():
    agent = _damped(kl_coef_init=0.2, kl_coef_max=0.25, kl_power_alpha=0.5, kl_schedule_steps=4.0,
                    ent_coef_init=0.02, ent_coef_min=0.005, ent_power_alpha=1.0, ent_schedule_steps=2.0)
    d = agent.damping
    assert (d.kl_coef(), d.entropy_coef()) == (0.2, 0.02)
    d.updates = 12
    assert d.kl_coef() == pytest.approx(0.2 * (1 + 12 / 4) ** -0.5)
    assert d.entropy_coef() == pytest.approx(max(0.02 / 7, 0.005))


def test_reference_is_frozen_outside_optimizer_and_weights():
    plain = make_agent()
    agent = _damped()
    ref = agent.damping.reference
    assert agent.state_dict().keys() == plain.state_dict().keys()        # nothing saved for it
    assert not any(p is q for p in ref.parameters() for q in agent.parameters())
    ids = {id(p) for p in agent.trainable_params}
    assert not any(id(p) in ids for p in ref.parameters())
    assert all(not p.requires_grad for p in ref.parameters()) and not ref.training
    out = agent(make_batch(), log_step=False)
    weighted_loss(out, 10.0)[0].backward()
    assert all(p.grad is None for p in ref.parameters())
    assert any(p.grad is not None for p in agent.actor.parameters())  # the policy does train


def test_reference_needs_a_reset():
    agent = make_agent(damping=DampingConfig())
    with pytest.raises(AmagoError, match="reset_reference"):
        agent(make_batch(), log_step=False)


def test_damping_off_losses_bit_identical():
    """β = η = 0 adds exact zeros: same losses and gradients as no damping at all."""
    a = make_agent()
    b = make_agent(damping=DampingConfig(kl_coef_init=0.0, kl_coef_max=0.0, ent_coef_init=0.0))
    b.reset_reference()
    batch = make_batch()
    torch.manual_seed(3)
    out_a = a(batch, log_step=False)
    torch.manual_seed(3)
    out_b = b(batch, log_step=False)
    assert torch.equal(out_a.actor, out_b.actor) and torch.equal(out_a.critic, out_b.critic)
    weighted_loss(out_a, 10.0)[0].backward()
    weighted_loss(out_b, 10.0)[0].backward()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert (p.grad is None) == (q.grad is None), n
        if p.grad is not None:
            assert torch.equal(p.grad, q.grad), n


# ----------------------------------------------------------------------- in the experiment


def _experiment(tmp_path, damping: DampingConfig, **overrides):
    tiny.configure()
    kwargs = dict(agent_type=partial(Agent, damping=damping), lr_warmup_steps=0, log_interval=1)
    kwargs.update(overrides)
    return tiny.make_experiment(tmp_path, **kwargs)


def _lr_rows(tmp_path):
    return list(csv.DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))


def test_controller_changes_the_lr_the_optimizer_uses(tmp_path):
    # target KL far below anything observed: every update "tightens" (β × 2, LR multiplier × 0.5)
    config = DampingConfig(kl_coef_init=0.1, kl_coef_max=10.0, adaptive=True, target_kl_per_step=1e-12,
                           kl_coef_growth_factor=2.0, lr_shrink_factor=0.5, min_lr_multiplier=1e-3)
    exp = _experiment(tmp_path, config, epochs=1, train_batches_per_epoch=3)
    exp.start()
    controller = exp.policy.damping.controller
    used = []
    step = exp.optimizer.step

    def recording_step(*args, **kwargs):
        used.append(exp.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    exp.optimizer.step = recording_step
    exp.learn()
    base = exp.learning_rate
    assert used == pytest.approx([base, base * 0.5, base * 0.25])   # warm-up 0: factor 1 × multiplier
    assert controller.lr_multiplier == 0.125 and controller.beta == pytest.approx(0.8)
    assert exp.policy.damping.kl_coef() == pytest.approx(0.8)       # β used by the next loss
    assert exp.policy.damping.updates == 3 and exp.policy.damping.last_update_kl > 0
    rows = _lr_rows(tmp_path)
    logged = {r["metric"] for r in rows}
    assert {"Damping/KL to Reference", "Damping/KL per Update", "Damping/Entropy",
            "Damping/KL Coefficient", "Damping/LR Multiplier", "Learning Rate"} <= logged
    # the controller's state travels with the checkpoint
    resumed = _experiment(tmp_path, DampingConfig(kl_coef_init=0.1, kl_coef_max=10.0, adaptive=True,
                                                  target_kl_per_step=1e-12), epochs=2)
    resumed.start()
    resumed.load_checkpoint(0)
    assert resumed.policy.damping.controller.lr_multiplier == 0.125
    assert resumed.policy.damping.updates == 3


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_refresh_replaces_the_reference(tmp_path):
    exp = _experiment(tmp_path, DampingConfig(refresh_every_updates=2), epochs=1, train_batches_per_epoch=3,
                      lr_warmup_steps=0)
    exp.start()
    policy = exp.policy
    first = policy.damping.reference
    assert _same(first, policy.policy_network())                      # reset to the start weights
    batches = iter(exp.train_dloader)
    refreshed_at = []
    for _ in range(3):
        batch = next(batches)
        exp.train_step(batch, log_step=False)
        exp.after_update(batch)
        refreshed_at.append(_same(policy.damping.reference, policy.policy_network()))
    assert refreshed_at == [False, True, False]
    assert policy.damping.reference is first and policy.damping.refreshes == 1


def test_loaded_weights_become_the_reference(tmp_path):
    """--init_from_checkpoint: the reference is the loaded policy, not the random init."""
    donor = _experiment(tmp_path / "a", DampingConfig())
    donor.start()
    _perturb_(donor.policy)
    save_weights(donor.policy, tmp_path / "w.safetensors")
    exp = _experiment(tmp_path / "b", DampingConfig())
    exp.start()
    assert not _same(exp.policy.damping.reference, donor.policy.policy_network())
    exp.load_policy_weights(tmp_path / "w.safetensors")
    assert _same(exp.policy.damping.reference, donor.policy.policy_network())


def test_ema_refresh_copies_the_ema(tmp_path):
    exp = _experiment(tmp_path, DampingConfig(refresh_every_updates=1, refresh_mode="ema", ema_decay=0.5),
                      epochs=1, train_batches_per_epoch=2)
    exp.start()
    exp.learn()
    d = exp.policy.damping
    assert d.refreshes == 2 and _same(d.reference, d.ema) and not _same(d.reference, exp.policy.policy_network())

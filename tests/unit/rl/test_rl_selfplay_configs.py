"""The vanilla_selfplay_*.gin configs: each builds a tiny agent whose damping settings are the
seeds' values (those of their vanilla_selfplay_*.gin files; min/max LR as multipliers of the
base LR), and a damped agent runs
a finite loss on replay batches once its reference is set."""

import pytest
import test_rl_configs as configs
import torch

from metamon.amago.reference import DampingConfig, PolicyDamping

build, q = configs.build, configs.q
replay_batch = configs.replay_batch  # the fixture, shared

COMMON = {"reward_multiplier": 10.0, "tau": 0.004, "critic_loss_weight": 10.0, "l2_coeff": 5e-5}

# name: (lr, warm-up, clip, online, offline, damping fields or None)
EXPECTED = {
    "vanilla_selfplay_baseline": (1e-4, 500, 1.5, 0.5, 0.5, None),
    "vanilla_selfplay_damped": (1e-4, 500, 1.5, 0.5, 0.5, dict(
        kl_coef_init=0.05, kl_coef_max=0.5, kl_power_alpha=0.5, kl_schedule_steps=1e6, ent_coef_init=0.01,
        ent_coef_min=0.001, ent_power_alpha=0.7, ent_schedule_steps=1e6, adaptive=True, target_kl_per_step=0.01,
        kl_tolerance=1.5, lr_shrink_factor=0.5, lr_grow_factor=1.1, kl_coef_growth_factor=1.5,
        kl_coef_decay_factor=0.9, min_lr_multiplier=0.01, max_lr_multiplier=10.0, adapt_interval=100,
        refresh_every_updates=None)),
    "vanilla_selfplay_damped_v1": (5e-5, 500, 0.3, 0.5, 0.5, dict(
        kl_coef_init=0.1, kl_coef_max=0.2, kl_power_alpha=0.0, ent_coef_init=0.02, ent_coef_min=0.005,
        ent_power_alpha=0.0, target_kl_per_step=0.02, kl_coef_growth_factor=2.0, min_lr_multiplier=0.1,
        max_lr_multiplier=2.0, adaptive=True)),
    "vanilla_selfplay_damped_schedule": (5e-5, 500, 0.3, 0.0, 1.0, dict(
        kl_coef_init=0.1, kl_power_alpha=0.2, ent_power_alpha=0.3, target_kl_per_step=0.02, adaptive=True)),
    "vanilla_selfplay_damped_100k": (5e-5, 200, 0.3, 0.5, 0.5, dict(
        kl_coef_init=0.08, kl_power_alpha=0.3, kl_schedule_steps=5e4, ent_power_alpha=0.5,
        ent_schedule_steps=5e4, kl_tolerance=2.0, target_kl_per_step=0.01, adaptive=True)),
    "vanilla_selfplay_damped_conservative": (1e-5, 500, 0.3, 0.75, 0.25, dict(
        kl_coef_init=0.3, kl_coef_max=0.6, kl_power_alpha=0.0, ent_coef_min=0.003, kl_tolerance=1.25,
        lr_grow_factor=1.05, kl_coef_decay_factor=0.95, min_lr_multiplier=0.1, max_lr_multiplier=2.0,
        adaptive=True)),
    "vanilla_selfplay_refresh": (1e-4, 500, 1.5, 0.5, 0.5, dict(
        kl_coef_init=0.2, kl_coef_max=0.2, kl_power_alpha=0.0, ent_coef_init=0.0, adaptive=False,
        refresh_every_updates=1000, refresh_mode="current")),
}


@pytest.mark.parametrize("training", sorted(EXPECTED))
def test_selfplay_config_values(training, replay_batch, tmp_path):
    lr, warmup, clip, online, offline, damping = EXPECTED[training]
    batch, obs_space = replay_batch
    agent = build("tiny_agent", training, obs_space, tmp_path)
    assert (q("MetamonAMAGOExperiment.learning_rate"), q("MetamonAMAGOExperiment.lr_warmup_steps"),
            q("MetamonAMAGOExperiment.grad_clip")) == (lr, warmup, clip)
    assert q("MetamonAMAGOExperiment.l2_coeff") == COMMON["l2_coeff"]
    assert q("MetamonAMAGOExperiment.critic_loss_weight") == COMMON["critic_loss_weight"]
    assert (agent.reward_multiplier, agent.tau) == (COMMON["reward_multiplier"], COMMON["tau"])
    assert (agent.online_coeff, agent.offline_coeff) == (online, offline)
    if damping is None:
        assert agent.damping is None
        return
    assert isinstance(agent.damping, PolicyDamping)
    config = agent.damping.config
    assert isinstance(config, DampingConfig)
    for name, value in damping.items():
        assert getattr(config, name) == pytest.approx(value) if isinstance(value, float) else \
            getattr(config, name) == value, name
    assert (agent.damping.controller is not None) == config.adaptive
    if config.adaptive:  # the controller gets the knobs
        c = agent.damping.controller
        assert (c.target_kl, c.tolerance, c.lr_min, c.lr_max, c.interval) == (
            config.target_kl_per_step, config.kl_tolerance, config.min_lr_multiplier,
            config.max_lr_multiplier, config.adapt_interval)
    # a damped forward on real replays: finite, and the KL/entropy metrics are logged
    agent.reset_reference()
    out = agent(batch, log_step=True)
    assert torch.isfinite(out.actor).all()
    assert out.metrics["Damping/KL to Reference"] == pytest.approx(0.0, abs=1e-3)  # reference = itself (dropout aside)
    assert out.metrics["Damping/Entropy"] > 0

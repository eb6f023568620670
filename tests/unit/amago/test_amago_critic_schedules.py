"""A critic that learns before it filters: the critic warm-up, the filter gate, the critic's
isolation from the shared encoders, and the Experiment's update index and pre-clip grad norms."""

import csv
import math

import pytest
import torch
from test_amago_agent import make_agent, make_batch

from metamon.amago.agent import Agent, MultiTaskAgent, weighted_loss
from metamon.amago.diagnostics import normalized_td_loss
from metamon.amago.filter_gate import FilterGate
from metamon.amago.utils import AmagoError

import _amago_tiny_run as tiny

RL = dict(online_coeff=0.0, offline_coeff=1.0)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _update(agent, optimizer, batch, update):
    """One real optimizer step on the agent's weighted loss (critic weight 10, as metamon)."""
    optimizer.zero_grad()
    out = agent(batch, log_step=True, update=update)
    weighted_loss(out, critic_loss_weight=10.0)[0].backward()
    optimizer.step()
    return out


# ----------------------------------------------------------------------------- filter gate


def test_gate_opens_exactly_when_the_criterion_holds_and_stays_open():
    gate = FilterGate(td_threshold=0.5, min_steps=1, ema_decay=0.5)
    # ema: 0.1 (u 0 < min_steps), 0.5 (not < 0.5), 0.7, 0.8, 0.45 -> opens at u = 4; then sticky
    script = [0.1, 0.9, 0.9, 0.9, 0.1, 0.9, 0.9]
    opened = [gate.step(td, u) for u, td in enumerate(script)]
    assert opened == [False, False, False, False, True, True, True]
    gate = FilterGate(td_threshold=0.5, ema_decay=0.5)
    assert [gate.step(td, u) for u, td in enumerate([0.9, float("nan"), 0.05])] == [False, False, True]
    assert float(gate.td_ema) == pytest.approx(0.475)  # the NaN left the EMA at 0.9


def test_gate_min_and_max_steps_and_disabled_gate():
    gate = FilterGate(min_steps=3)  # no TD criterion: opens at update 3
    assert [gate.step(1.0, u) for u in range(5)] == [False, False, False, True, True]
    gate = FilterGate(td_threshold=1e-6, max_steps=2)  # never good enough: forced open at 2
    assert [gate.step(1.0, u) for u in range(4)] == [False, False, True, True]
    disabled = FilterGate()
    assert disabled.open and disabled.step(5.0, 0) and dict(disabled.state_dict()) == {}
    assert set(gate.state_dict()) == {"is_open", "td_ema"}
    with pytest.raises(AmagoError, match="filter_gate_max_steps"):
        FilterGate(td_threshold=0.5, min_steps=5, max_steps=2)
    with pytest.raises(AmagoError, match="filter_gate_ema_decay"):
        FilterGate(td_threshold=0.5, ema_decay=1.0)


def test_agent_gate_holds_bc_weights_until_open_and_reads_the_test_head_td_loss():
    batch = make_batch()
    agent = make_agent(Agent, filter_gate_td_threshold=1e-9, filter_gate_max_steps=5, **RL)
    reference = make_agent(Agent, **RL)  # same seed, same weights, ungated
    agent.train()
    reference.train()
    torch.manual_seed(0)
    closed = agent(batch, log_step=True, update=0)
    torch.manual_seed(0)
    ungated = reference(batch, log_step=True, update=0)
    log_pi = closed.steps.log_pi                                    # (N, G)
    m = closed.actor_mask[..., 0]
    assert closed.metrics["Filter Gate Open"] == 0.0
    assert torch.allclose(closed.actor[m].view(-1, 7), -log_pi, atol=1e-6)  # f = 1: plain BC
    assert closed.metrics["Filter Gate TD EMA"] == pytest.approx(  # first value: this batch's test head
        normalized_td_loss(closed.steps.td_sq_err[:, :, -1:], closed.steps.td_target[:, -1:])[0].item())
    assert ungated.metrics["Filter Gate Open"] == 1.0
    torch.manual_seed(1)
    opened = agent(batch, log_step=True, update=5)                  # max_steps: the gate opens here
    torch.manual_seed(1)
    filtered = reference(batch, log_step=True, update=5)
    assert opened.metrics["Filter Gate Open"] == 1.0
    assert torch.allclose(opened.actor, filtered.actor, atol=1e-6)
    agent.eval()
    assert agent(batch, log_step=False).actor is not None  # eval forwards need no update index
    agent.train()
    assert bool(agent.filter_gate.is_open) and "filter_gate.is_open" in agent.state_dict()
    assert "filter_gate.is_open" not in reference.state_dict()  # default: the state dict is unchanged
    with pytest.raises(AmagoError, match="update index"):
        agent(batch, log_step=False)


# --------------------------------------------------------------------------- critic warm-up


@pytest.mark.parametrize("online_coeff", [0.0, 0.5])
def test_warmup_trains_only_the_critic_after_a_real_optimizer_step(online_coeff):
    agent = make_agent(
        Agent, critic_warmup_steps=2, filter_gate_td_threshold=1e6, online_coeff=online_coeff, offline_coeff=1.0
    )
    agent.train()
    optimizer = torch.optim.AdamW(list(agent.trainable_params), lr=1e-2, weight_decay=0.5)
    actor, target_actor = _snapshot(agent.actor), _snapshot(agent.target_actor)
    critics, encoder = _snapshot(agent.critics), _snapshot(agent.traj_encoder)
    batch = make_batch()
    for update in range(2):
        out = _update(agent, optimizer, batch, update)
        assert out.metrics["Critic Warm-up Active"] == 1.0
        assert all(p.grad is None for p in agent.actor.parameters())  # AdamW skips them: no decay either
        assert _same(actor, _snapshot(agent.actor))
        assert not bool(agent.filter_gate.is_open)  # the filter stays shut during the warm-up
        assert torch.count_nonzero(out.actor) == 0
        agent.soft_sync_targets()
    for k, v in _snapshot(agent.target_actor).items():
        assert torch.allclose(v, target_actor[k], atol=1e-6), k
    assert not _same(critics, _snapshot(agent.critics)) and not _same(encoder, _snapshot(agent.traj_encoder))
    out = _update(agent, optimizer, batch, 2)  # the warm-up is over: the actor trains, the gate may open
    assert out.metrics["Critic Warm-up Active"] == 0.0 and out.metrics["Filter Gate Open"] == 1.0
    assert not _same(actor, _snapshot(agent.actor))


def test_warmup_and_gate_need_a_critic():
    with pytest.raises(AmagoError, match="need a critic"):
        make_agent(Agent, fake_filter=True, online_coeff=0.0, offline_coeff=1.0, critic_warmup_steps=3)
    with pytest.raises(AmagoError, match="critic_warmup_steps must be"):
        make_agent(Agent, critic_warmup_steps=-1, **RL)
    with pytest.raises(AmagoError, match="choose one"):
        make_agent(Agent, detach_critic_from_encoders=True, separate_critic_encoder=True, **RL)
    agent = make_agent(Agent, critic_warmup_steps=3, **RL)
    agent.train()
    with pytest.raises(AmagoError, match="update index"):
        agent(make_batch(), log_step=False)


# ----------------------------------------------------------------------- critic isolation


def _grads_of(agent, loss):
    agent.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in agent.named_parameters()}


@pytest.mark.parametrize("cls", [Agent, MultiTaskAgent])
def test_detached_critic_trains_only_the_critic_head(cls):
    agent = make_agent(cls, detach_critic_from_encoders=True, **RL)
    agent.train()
    out = agent(make_batch(), log_step=False, update=0)
    critic_loss = out.critic[out.critic_mask].mean()
    grads = _grads_of(agent, critic_loss)
    assert any(v for n, v in grads.items() if n.startswith("critics."))
    assert not any(v for n, v in grads.items() if n.startswith(("tstep_encoder.", "traj_encoder.", "actor.")))
    grads = _grads_of(agent, out.actor[out.actor_mask].mean())
    assert any(v for n, v in grads.items() if n.startswith("traj_encoder."))


def test_separate_critic_encoder():
    agent = make_agent(Agent, separate_critic_encoder=True, **RL)
    shared = make_agent(Agent, **RL)
    for name, p in shared.named_parameters():  # built last: the shared modules are unchanged
        assert torch.equal(p, dict(agent.named_parameters())[name]), name
    trainable = {id(p) for p in agent.trainable_params}
    assert all(id(p) in trainable for m in agent.critic_encoders for p in m.parameters())
    agent.train()
    out = agent(make_batch(), log_step=True, update=0)
    grads = _grads_of(agent, out.critic[out.critic_mask].mean())
    assert any(v for n, v in grads.items() if n.startswith("critic_traj_encoder."))
    assert not any(v for n, v in grads.items() if n.startswith(("tstep_encoder.", "traj_encoder.")))
    grads = _grads_of(agent, out.actor[out.actor_mask].mean())
    assert not any(v for n, v in grads.items() if n.startswith(("critic_tstep_encoder.", "critic_traj_encoder.")))
    assert "Data Action Is Critic Argmax (test-time gamma)" in out.metrics


# -------------------------------------------------------------------------------- experiment


def test_experiment_passes_the_update_index_and_logs_pre_clip_norms(tmp_path):
    tiny.configure({
        "Agent.fake_filter": False,
        "Agent.critic_warmup_steps": 3,
        "Agent.filter_gate_td_threshold": 0.5,
    })
    exp = tiny.make_experiment(tmp_path, epochs=1, train_batches_per_epoch=3, lr_warmup_steps=0,
                               grad_clip=1e-3, log_interval=1)
    exp.start()
    actor, critics = _snapshot(exp.policy.actor), _snapshot(exp.policy.critics)
    exp.learn()
    assert exp.grad_update_counter == 3
    assert _same(actor, _snapshot(exp.policy.actor)) and not _same(critics, _snapshot(exp.policy.critics))
    rows = list(csv.DictReader(open(tmp_path / "run" / "logs" / "metrics.csv")))
    by_metric = {}
    for r in rows:
        by_metric.setdefault(r["metric"], []).append(float(r["value"]))
    assert by_metric["Critic Warm-up Active"] == [1.0, 1.0, 1.0]
    assert by_metric["Filter Gate Open"] == [0.0, 0.0, 0.0]
    # logged before clipping: the norms exceed the clip threshold 1e-3
    assert all(v > 1e-2 for v in by_metric["Global Grad Norm (pre-clip)"])
    assert all(v > 1e-2 for v in by_metric["Critic Grad Norm"])
    assert by_metric["Actor Grad Norm"] == [0.0, 0.0, 0.0]
    for g, c, t, s in zip(*(by_metric[k] for k in ("Global Grad Norm (pre-clip)", "Critic Grad Norm",
                                                     "TrajEncoder Grad Norm", "TstepEncoder Grad Norm"))):
        assert g == pytest.approx(math.sqrt(c**2 + t**2 + s**2), rel=1e-4)

"""Agent / MultiTaskAgent losses, filters, target updates, rollouts and gin bindings (tiny sizes)."""

import copy
from functools import partial

import gin
import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.amago.agent import (
    Agent,
    MultiTaskAgent,
    binary_filter,
    conservative_penalty,
    ensemble_advantage,
    exp_filter,
    leaky_relu_filter,
    reduce_critic_ensemble,
    td_targets,
)
from metamon.amago.loading import RLData, RLData_pad_collate, valid_step_mask
from metamon.amago.nets.actor_critic import Actor, NCritics, NCriticsTwoHot
from metamon.amago.nets.traj_encoders import TformerTrajEncoder
from metamon.amago.nets.tstep_encoders import FFTstepEncoder
from metamon.amago.utils import AmagoError, masked_avg

A = 4
OBS_SPACE = spaces.Dict({"x": spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)})
RL2_SPACE = spaces.Box(-np.inf, np.inf, (A + 1,), dtype=np.float32)
ACTION_SPACE = spaces.Discrete(A)



def make_agent(cls=Agent, **kwargs):
    torch.manual_seed(0)
    if cls is Agent:
        critic = partial(NCritics, d_hidden=16)
    else:
        critic = partial(NCriticsTwoHot, d_hidden=16, min_return=-30.0, max_return=30.0, output_bins=16,
                         use_symlog=False)
    args = dict(
        tstep_encoder_type=partial(FFTstepEncoder, n_layers=1, d_hidden=16, d_output=16, normalize_inputs=False),
        traj_encoder_type=partial(
            TformerTrajEncoder, d_model=16, n_heads=2, d_ff=32, n_layers=1, dropout_ff=0.0, dropout_emb=0.0
        ),
        actor_type=partial(Actor, d_hidden=16),
        critic_type=critic,
    )
    args.update(kwargs)
    return cls(OBS_SPACE, RL2_SPACE, ACTION_SPACE, max_seq_len=8, **args)


def make_batch(lengths=(6, 4), seed=1):
    """Trajectories of T = lengths[i] observations, collated (B, L = max T)."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for T in lengths:
        acts = torch.randint(A, (T - 1,), generator=g)
        dones = torch.zeros(T - 1, 1, dtype=torch.bool)
        dones[-1] = True
        items.append(
            RLData(
                obs={"x": torch.rand(T, 3, generator=g) * 2 - 1},
                rews=torch.randn(T - 1, 1, generator=g),
                dones=dones,
                actions=torch.nn.functional.one_hot(acts, A).float(),
                time_idxs=torch.arange(T)[:, None],
            )
        )
    return RLData_pad_collate(items)


def encode(agent, batch):
    emb = agent.tstep_encoder(batch.obs, batch.rl2s)
    return agent.traj_encoder(emb, batch.time_idxs)[0]


# ----------------------------------------------------------------------------------- filters


def test_filters_on_known_advantages():
    adv = torch.tensor([-1.0, 0.0, 0.5, 3.0]).view(1, 4, 1, 1)
    assert binary_filter(adv).flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    assert binary_filter(adv, threshold=1.0).flatten().tolist() == [0.0, 0.0, 0.0, 1.0]
    w = exp_filter(adv, beta=2.0, clip_adv_high=1.0, clip_weights_low=0.5, clip_weights_high=5.0)
    assert torch.allclose(w.flatten(), torch.tensor([0.5, 1.0, float(np.e), 5.0]))
    assert torch.allclose(exp_filter(adv).flatten(), torch.exp(adv).flatten())
    assert exp_filter(torch.tensor([-100.0]))[0].item() == pytest.approx(1e-7)
    lr = leaky_relu_filter(torch.tensor([0.0, 2.01, -1.99, 100.0]))
    assert torch.allclose(lr, torch.tensor([0.01, 1.01025, 1e-7, 10.0]), atol=1e-6)
    lr_unclipped = leaky_relu_filter(torch.tensor([-1.99]), clip_weights_low=None, clip_weights_high=None)
    assert lr_unclipped.item() == pytest.approx(0.01025 - 0.05, abs=1e-6)


# ------------------------------------------------------------------------------ pure losses


def test_td_targets_hand_case():
    rews = torch.tensor([[[1.0], [2.0]]])                       # (1, 2, 1)
    dones = torch.tensor([[[False], [True]]])
    gammas = torch.tensor([0.5, 0.9])
    nxt = torch.tensor([10.0, 20.0]).view(1, 1, 1, 2, 1).expand(1, 2, 1, 2, 1)  # Q̄[g=0]=10, Q̄[g=1]=20
    y = td_targets(rews, dones, gammas, nxt)
    assert y.shape == (1, 2, 1, 2, 1)
    assert y[0, :, 0, :, 0].tolist() == [[1 + 0.5 * 10, 1 + 0.9 * 20], [2.0, 2.0]]


def test_n_step_td_targets_hand_cases():
    """γ = 0.5, rewards 1 2 3 4, V̄(s_1..s_4) = 10 20 30 40 (one critic, one gamma)."""
    rews = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1)
    no_dones = torch.zeros(1, 4, 1, dtype=torch.bool)
    gammas = torch.tensor([0.5])
    nxt = torch.tensor([10.0, 20.0, 30.0, 40.0]).view(1, 4, 1, 1, 1)

    def y(dones=no_dones, steps=1, valid=None):
        return td_targets(rews, dones, gammas, nxt, steps, valid).flatten().tolist()

    assert y() == [6.0, 12.0, 18.0, 24.0] == td_targets(rews, no_dones, gammas, nxt).flatten().tolist()
    # 2 steps: y_0 = 1 + .5·2 + .25·V̄(s_2) = 7, y_1 = 2 + 1.5 + 7.5 = 11, y_2 = 3 + 2 + 10 = 15; y_3 cut
    # at the window's end: 4 + .5·40 = 24
    assert y(steps=2) == [7.0, 11.0, 15.0, 24.0]
    # more steps than the window: the discounted return to its end, then V̄ of its last state
    assert y(steps=9) == [5.75, 9.5, 15.0, 24.0]
    # a done at t = 1 ends the sums that reach it: y_0 = 1 + .5·2, y_1 = 2
    done_1 = no_dones.clone()
    done_1[0, 1] = True
    assert y(done_1, steps=2) == [2.0, 2.0, 15.0, 24.0]
    # transition 3 is padding: y_2 bootstraps from V̄(s_3) instead of reading it
    assert y(steps=2, valid=torch.tensor([[True, True, True, False]]))[:3] == [7.0, 11.0, 18.0]


def test_reduce_critic_ensemble():
    y = torch.tensor([0.0, 10.0, 20.0]).view(1, 1, 3, 1, 1).expand(2, 5, 3, 2, 1)
    torch.manual_seed(0)
    lo = reduce_critic_ensemble(y, 60, use_min=True)
    assert lo.shape == (2, 5, 1, 2, 1) and torch.all(lo == 0.0)
    one = reduce_critic_ensemble(y, 1, use_min=False)
    assert set(one.flatten().tolist()) == {0.0, 10.0, 20.0}  # each element draws its own critic
    assert torch.all(reduce_critic_ensemble(torch.full((1, 2, 4, 1, 1), 3.0), 2, use_min=False) == 3.0)


# ------------------------------------------------------------------------------- agent pass


@pytest.mark.parametrize("cls,C", [(Agent, 4), (MultiTaskAgent, 3)])
def test_forward_shapes_and_logging(cls, C):
    agent = make_agent(cls, num_critics=C, online_coeff=0.5)
    batch = make_batch()
    out = agent(batch, log_step=True)
    critic_loss, actor_loss = out.critic, out.actor
    assert agent.gammas.tolist() == pytest.approx([0.1, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999])
    assert critic_loss.shape == (2, 5, C, 7, 1) and actor_loss.shape == (2, 5, 7, 1)
    assert torch.isfinite(critic_loss).all() and torch.isfinite(actor_loss).all()
    info = out.metrics
    for key in [
        "Policy Per-timestep Entropy (test-time gamma)",
        "Policy Per-timstep Low Prob. (test-time gamma)",
        "Policy Overall Highest Prob.",
        "Min TD Target",
        "TD Target (test-time gamma)",
        "Mean Reward (in training sequences)",
        "PopArt sigma (mean over gamma)",
        "Filter Mean",
        "Filter 95th Percentile",
        "Pct. of Actions Approved by Binary FBC Filter (All Gammas)",
        "Pct. of Actions Approved by Binary FBC (gamma =  0.999)",
        "Q(s, a) (global mean, rescaled) gamma=0.999",
        "activation-tformer-out-mean",
    ]:
        assert key in info, key
    assert info["Sequences Containing Done"] == 2.0
    assert 0.0 <= info["Pct. of Actions Approved by Binary FBC Filter (All Gammas)"] <= 100.0
    (critic_loss.mean() + actor_loss.mean()).backward()
    assert all(p.grad is None for p in agent.target_critics.parameters())
    assert agent.actor.base.out_layer.weight.grad is not None


@pytest.mark.parametrize("cls", [Agent, MultiTaskAgent])
def test_imitation_learning_loss_is_negative_log_prob(cls):
    agent = make_agent(cls, fake_filter=True, online_coeff=0.0, offline_coeff=1.0, use_multigamma=False).eval()
    batch = make_batch()
    out = agent(batch, log_step=True)
    critic_loss, actor_loss = out.critic, out.actor
    assert critic_loss is None and actor_loss.shape == (2, 5, 1, 1)
    with torch.no_grad():
        probs = agent.actor(encode(agent, batch)).probs[:, :-1, 0]                 # (B, L−1, A)
    idx = batch.actions.argmax(-1, keepdim=True)
    expected = -torch.log(probs.gather(-1, idx))[..., 0]
    valid = valid_step_mask(batch.rl2s)[:, 1:]
    assert torch.allclose(actor_loss[..., 0, 0][valid], expected[valid], atol=1e-6)
    assert torch.allclose(out.steps.probs[:, 0], probs[valid], atol=1e-6)   # (N, G, A), counted steps in order
    assert torch.equal(out.steps.policy_argmax, out.steps.probs.argmax(dim=-1))
    assert out.metrics["Filter Mean"] == 1.0
    assert "Min TD Target" not in out.metrics


def _masked_losses(agent, batch):
    out = agent(batch, log_step=False)
    critic_loss, actor_loss = out.critic, out.actor
    m = valid_step_mask(batch.rl2s)[:, 1:]
    loss = masked_avg(actor_loss, m[:, :, None, None]) + 10 * masked_avg(critic_loss, m[:, :, None, None, None])
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in agent.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("cls", [Agent, MultiTaskAgent])
def test_padding_changes_neither_loss_nor_gradients(cls):
    agent = make_agent(cls, num_critics=2, online_coeff=0.5)
    twin = copy.deepcopy(agent)
    batch = make_batch(lengths=(6, 3))
    other = make_batch(lengths=(6, 3))
    g = torch.Generator().manual_seed(7)
    other.obs["x"][1, 3:] = torch.randn(3, 3, generator=g)          # padded obs
    other.actions[1, 2:] = torch.rand(3, A, generator=g)             # padded actions
    other.rews[1, 2:] = torch.randn(3, 1, generator=g) * 50          # padded rewards
    other.dones[1, 2:] = False
    assert not torch.equal(batch.obs["x"], other.obs["x"])
    torch.manual_seed(3)
    loss_a, grads_a = _masked_losses(agent, batch)
    torch.manual_seed(3)
    loss_b, grads_b = _masked_losses(twin, other)
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=1e-6), name
    assert torch.allclose(agent.popart.mu, twin.popart.mu) and torch.allclose(agent.popart.nu, twin.popart.nu)


def test_critic_loss_matches_hand_computed_td_target():
    """num_critics = num_critics_td = 1 makes the ensemble reduction deterministic."""
    agent = make_agent(num_critics=1, num_critics_td=1, use_multigamma=False, gamma=0.9)  # train mode
    popart_before = copy.deepcopy(agent.popart)
    batch = make_batch()
    critic_loss = agent(batch, log_step=False).critic
    agent.eval()  # same weights, no further SigmaReparam power-iteration step; no dropout here
    with torch.no_grad():
        s = encode(agent, batch)
        x_data = agent.critics.net(s)[0].view(2, 6, 1, 1, A)                       # raw Q(s, ·)
        idx = batch.actions.argmax(-1)                                             # (B, L−1)
        q_sa = x_data[:, :-1, 0, 0].gather(-1, idx[..., None])[..., 0]             # (B, L−1)
        pi_tgt = agent.target_actor(s).probs[:, :, 0]                              # (B, L, A)
        x_tgt = agent.target_critics.net(s)[0].view(2, 6, A)
        v_next = (pi_tgt * x_tgt).sum(-1)[:, 1:]                                   # (B, L−1)
        v_next = popart_before(v_next.view(2, 5, 1, 1, 1), normalized=False).view(2, 5)
        y = 10.0 * batch.rews[..., 0] + 0.9 * (~batch.dones[..., 0]).float() * v_next
        pa = agent.popart
        expected = (pa.w[0, 0] * q_sa + pa.b[0, 0] - (y - pa.mu[0, 0]) / pa.sigma[0, 0]) ** 2
    assert not torch.equal(pa.mu, popart_before.mu)  # the statistics moved before normalising
    valid = valid_step_mask(batch.rl2s)[:, 1:]
    assert torch.allclose(critic_loss[:, :, 0, 0, 0][valid], expected[valid], atol=1e-5)



def test_critic_loss_with_td_steps_uses_the_n_step_target():
    """td_steps = 3 on the hand-computed critic loss above: y_t = Σ_{k<m} γ^k·R·r_{t+k} + γ^m·V̄(s_{t+m}),
    m = 3 or fewer at a done (both trajectories end in one) or the window's end."""
    agent = make_agent(num_critics=1, num_critics_td=1, use_multigamma=False, gamma=0.9, td_steps=3)
    popart_before = copy.deepcopy(agent.popart)
    batch = make_batch()
    critic_loss = agent(batch, log_step=False).critic
    agent.eval()
    valid = valid_step_mask(batch.rl2s)[:, 1:]
    with torch.no_grad():
        s = encode(agent, batch)
        idx = batch.actions.argmax(-1)
        q_sa = agent.critics.net(s)[0].view(2, 6, 1, 1, A)[:, :-1, 0, 0].gather(-1, idx[..., None])[..., 0]
        pi_tgt = agent.target_actor(s).probs[:, :, 0]
        v_next = (pi_tgt * agent.target_critics.net(s)[0].view(2, 6, A)).sum(-1)[:, 1:]
        v_next = popart_before(v_next.view(2, 5, 1, 1, 1), normalized=False).view(2, 5)
        y = torch.zeros(2, 5)
        for b in range(2):
            for t in range(5):
                total, k = 0.0, 0
                while True:
                    total += 0.9**k * 10.0 * batch.rews[b, t + k, 0]
                    k += 1
                    if batch.dones[b, t + k - 1, 0]:
                        break
                    if k == 3 or t + k == 5 or not valid[b, t + k]:
                        total += 0.9**k * v_next[b, t + k - 1]
                        break
                y[b, t] = total
        pa = agent.popart
        expected = (pa.w[0, 0] * q_sa + pa.b[0, 0] - (y - pa.mu[0, 0]) / pa.sigma[0, 0]) ** 2
    assert torch.allclose(critic_loss[:, :, 0, 0, 0][valid], expected[valid], atol=1e-5)


def test_conservative_penalty_hand_case_and_gradient():
    # one step, C = G = 1, A = 3: Q̂ = (1, 2, 0), data action 0 -> log(e + e² + 1) − 1
    q_all = torch.tensor([1.0, 2.0, 0.0]).view(1, 1, 1, 1, 3).requires_grad_()
    q_data = q_all[..., :1]
    penalty = conservative_penalty(q_all, q_data, None)
    assert penalty.shape == (1, 1, 1, 1, 1)
    assert penalty.item() == pytest.approx(np.log(np.e + np.e**2 + 1) - 1)
    penalty.sum().backward()  # ∂ℓ/∂Q̂(a) = softmax(Q̂)_a − 1[a = a_t]: every action down, the data action up
    soft = np.exp([1.0, 2.0, 0.0]) / np.exp([1.0, 2.0, 0.0]).sum()
    assert q_all.grad.flatten().tolist() == pytest.approx((soft - [1, 0, 0]).tolist())
    # action 2 illegal: log(e + e²) − 1; a step with no legal action keeps them all
    legal = torch.tensor([[[True, True, False]], [[False, False, False]]]).view(1, 2, 3)
    two = torch.tensor([1.0, 2.0, 0.0]).expand(1, 2, 1, 1, 3)
    out = conservative_penalty(two, two[..., :1], legal).flatten().tolist()
    assert out == pytest.approx([np.log(np.e + np.e**2) - 1, np.log(np.e + np.e**2 + 1) - 1])


@pytest.mark.parametrize("cls", [Agent, MultiTaskAgent])
def test_cql_alpha_adds_alpha_times_the_penalty_to_the_critic_loss(cls):
    """The same weights (seed) with cql_alpha = 0.5 and 0: the critic losses differ by
    0.5·(logsumexp_a Q̂(s, a) − Q̂(s, a_t)) per critic and gamma, Q̂ computed here by hand
    (Agent: PopArt(x); MultiTaskAgent: the decoded values, PopArt-normalised)."""
    batch = make_batch()
    agent, plain = make_agent(cls, cql_alpha=0.5).eval(), make_agent(cls).eval()
    torch.manual_seed(3)
    with_cql = agent(batch, log_step=False).critic
    torch.manual_seed(3)
    without = plain(batch, log_step=False).critic
    with torch.no_grad():
        q_all = agent._q_all_actions(encode(agent, batch)[:, :-1])                 # (B, L−1, C, G, A)
        q_all = agent.popart(q_all) if cls is Agent else agent.popart.normalize_values(q_all)
        idx = batch.actions.argmax(-1)[:, :, None, None, None].expand(*q_all.shape[:-1], 1)
        expected = 0.5 * (torch.logsumexp(q_all, dim=-1, keepdim=True) - q_all.gather(-1, idx))
    valid = valid_step_mask(batch.rl2s)[:, 1:]
    assert (expected[valid] > 0).all()
    assert torch.allclose((with_cql - without)[valid], expected[valid], atol=1e-5)


def test_ensemble_advantage_hand_cases():
    # a TD target shared by the critics (C = 1 broadcast) against C = 2 values: (B=1, L−1=2, C, G=1, 1)
    y = torch.tensor([1.0, -2.0]).view(1, 2, 1, 1, 1)
    v = torch.tensor([[0.5, 2.0], [-3.0, -1.0]]).view(1, 2, 2, 1, 1)
    # per critic A_c = y − V_c: step 0 (0.5, −1.0), step 1 (1.0, −1.0)
    assert ensemble_advantage(y, v, "mean").flatten().tolist() == [-0.25, 0.0]
    assert ensemble_advantage(y, v, "max").flatten().tolist() == [0.5, 1.0]
    assert ensemble_advantage(y, v, "min").flatten().tolist() == [-1.0, -1.0]
    # per-critic Q: a critic's offset on every action cancels against its own V
    q = torch.tensor([[10.0, 0.0], [11.0, 1.0]]).view(1, 2, 2, 1, 1)
    v = torch.tensor([[10.5, -0.5], [10.0, 2.0]]).view(1, 2, 2, 1, 1)  # A_c: (−0.5, 0.5), (1.0, −1.0)
    assert ensemble_advantage(q, v, "max").flatten().tolist() == [0.5, 1.0]
    assert ensemble_advantage(q, v, "min").flatten().tolist() == [-0.5, -1.0]
    assert binary_filter(ensemble_advantage(q, v, "mean")).flatten().tolist() == [0.0, 0.0]
    assert binary_filter(ensemble_advantage(q, v, "max")).flatten().tolist() == [1.0, 1.0]


def test_ensemble_advantage_quorum_is_the_kth_largest_critic():
    # C = 4 critics, one step: A_c = q_c − v_c = (0.5, −2.0, 1.5, −0.25), sorted down 1.5, 0.5, −0.25, −2.0
    q = torch.tensor([1.0, 0.0, 2.0, 0.75]).view(1, 1, 4, 1, 1)
    v = torch.tensor([0.5, 2.0, 0.5, 1.0]).view(1, 1, 4, 1, 1)
    assert [ensemble_advantage(q, v, k).item() for k in (1, 2, 3, 4)] == [1.5, 0.5, -0.25, -2.0]
    assert ensemble_advantage(q, v, 1).item() == ensemble_advantage(q, v, "max").item()
    assert ensemble_advantage(q, v, 4).item() == ensemble_advantage(q, v, "min").item()
    # the binary filter keeps the action when at least k critics approve: here 2 of 4 do
    assert [binary_filter(ensemble_advantage(q, v, k)).item() for k in (1, 2, 3, 4)] == [1.0, 1.0, 0.0, 0.0]
    # (B=2, L−1=3) with a shared TD target: each position takes its own k-th largest
    y = torch.arange(6.0).view(2, 3, 1, 1, 1)
    v = torch.randn(2, 3, 4, 1, 1)
    assert torch.equal(ensemble_advantage(y, v, 3), (y - v).sort(dim=2, descending=True).values[:, :, 2])


def _capture_filter(store):
    def f(adv):
        store.append(adv.clone())
        return torch.ones_like(adv)
    return f


def test_td_advantage_estimator_matches_hand_computed_td_error():
    """advantage_estimator="td": A_t = PopArt⁻¹(ŷ_t) − Σ_a π(a|s_t)·x(s_t, a), with ŷ the
    normalised TD target of the critic loss and x the (maximised) critic's raw output."""
    seen = []
    agent = make_agent(num_critics=1, num_critics_td=1, use_multigamma=False, gamma=0.9, online_coeff=0.0,
                       offline_coeff=1.0, advantage_estimator="td", fbc_filter_func=_capture_filter(seen))
    popart_before = copy.deepcopy(agent.popart)
    batch = make_batch()
    agent(batch, log_step=False)
    agent.eval()
    with torch.no_grad():
        s = encode(agent, batch)
        pi = agent.actor(s).probs[:, :, 0]                                         # (B, L, A)
        x_max = agent.maximized_critics.net(s)[0].view(2, 6, A)
        v_t = (pi * x_max).sum(-1)[:, :-1]                                         # (B, L−1)
        pi_tgt = agent.target_actor(s).probs[:, :, 0]
        x_tgt = agent.target_critics.net(s)[0].view(2, 6, A)
        v_next = popart_before((pi_tgt * x_tgt).sum(-1)[:, 1:].view(2, 5, 1, 1, 1), normalized=False).view(2, 5)
        y = 10.0 * batch.rews[..., 0] + 0.9 * (~batch.dones[..., 0]).float() * v_next
        pa = agent.popart
        expected = ((y - pa.mu[0, 0]) / pa.sigma[0, 0] - pa.b[0, 0]) / pa.w[0, 0] - v_t
    valid = valid_step_mask(batch.rl2s)[:, 1:]
    assert not torch.allclose(pa.w, torch.ones_like(pa.w))  # the inverse affine is exercised
    assert torch.allclose(seen[0][:, :, 0, 0][valid], expected[valid], atol=1e-5)

    # the default estimator on the same weights and batch is Q(s_t, a_t) − V(s_t) instead
    agent.train()
    agent.advantage_estimator = "q"
    seen.clear()
    agent(batch, log_step=False)
    with torch.no_grad():
        x_data = agent.critics.net(s)[0].view(2, 6, A)[:, :-1]
        q_sa = x_data.gather(-1, batch.actions.argmax(-1)[..., None])[..., 0]
    assert torch.allclose(seen[0][:, :, 0, 0][valid], (q_sa - v_t)[valid], atol=1e-5)


@pytest.mark.parametrize("how", ["max", "min", 2])
def test_advantage_ensemble_reads_each_critic_against_its_own_value(how):
    """advantage_ensemble="max"/"min"/k: the filter gets the max / min / k-th largest over c of
    x_c(s_t, a_t) − Σ_a π(a|s_t)·x̃_c(s_t, a), with x_c critic c's raw output and x̃_c the
    maximised copy's (equal weights at construction); three critics, so k = 2 is the median."""
    seen = []
    agent = make_agent(num_critics=3, use_multigamma=False, online_coeff=0.0, offline_coeff=1.0,
                       advantage_ensemble=how, fbc_filter_func=_capture_filter(seen))
    batch = make_batch()
    agent(batch, log_step=False)
    with torch.no_grad():
        s = encode(agent, batch)
        pi = agent.actor(s).probs[:, :, 0]                                         # (B, L, A)
        x = agent.critics.net(s)[0].view(2, 6, 3, A)                               # (B, L, C, A)
        v = (pi[:, :, None] * agent.maximized_critics.net(s)[0].view(2, 6, 3, A)).sum(-1)
        q = x.gather(-1, batch.actions.argmax(-1)[:, :, None, None].expand(2, 5, 3, 1))[..., 0]
        per_critic = q - v[:, :-1]                                                 # (B, L−1, C)
        expected = {"max": per_critic.amax(-1), "min": per_critic.amin(-1), 2: per_critic.median(-1).values}[how]
    valid = valid_step_mask(batch.rl2s)[:, 1:]
    assert not torch.allclose(per_critic[..., 0], per_critic[..., 1])  # the critics disagree
    assert not torch.allclose(expected, per_critic.mean(-1))  # and the reductions differ
    assert torch.allclose(seen[0][:, :, 0, 0][valid], expected[valid], atol=1e-5)
    with pytest.raises(AmagoError, match="advantage_ensemble must be one of .*'median'"):
        make_agent(advantage_ensemble="median")
    for bad in (0, 3, True):  # a quorum needs 1 <= k <= num_critics; a bool is not a count
        with pytest.raises(AmagoError, match=rf"int k in \[1, num_critics=2\].*got {bad!r}"):
            make_agent(num_critics=2, advantage_ensemble=bad)


def test_advantage_ensemble_multitask_agent():
    """MultiTaskAgent: per critic, decode(x_c(s_t, a_t)) − decode(x_c(s_t, a)) with a ~ π; a policy
    with all its mass on action k makes V_c exact, as in test_td_advantage_estimator_multitask_agent."""
    seen = []
    agent = make_agent(MultiTaskAgent, num_critics=2, advantage_ensemble="max", fbc_filter_func=_capture_filter(seen))
    k, G = 2, len(agent.gammas)
    with torch.no_grad():
        out = agent.actor.base.out_layer
        out.weight.zero_()
        out.bias.zero_()
        out.bias.view(G, A)[:, k] = 60.0
    batch = make_batch()
    agent(batch, log_step=False)
    with torch.no_grad():
        s = encode(agent, batch)
        B, L, _ = s.shape
        data = batch.actions.clamp(0, 1)
        data = torch.cat((data, data[:, -1:]), dim=1)[:, :, None].expand(B, L, G, A)[None]
        onehot = torch.nn.functional.one_hot(torch.tensor(k), A).float().expand(1, B, L, G, A)
        q = agent.critics.bin_dist_to_raw_vals(agent.critics(s, data))[0, :, :-1]     # (B, L−1, C, G, 1)
        v = agent.critics.bin_dist_to_raw_vals(agent.critics(s, onehot))[0, :, :-1]
        expected = (q - v).amax(dim=2)[..., 0]
    valid = valid_step_mask(batch.rl2s)[:, 1:]
    assert not torch.allclose((q - v)[:, :, 0], (q - v)[:, :, 1])
    assert torch.allclose(seen[0][..., 0][valid], expected[valid], atol=1e-5)


def test_td_advantage_estimator_multitask_agent():
    """MultiTaskAgent: A_t = y_t − V(s_t) in decoded return units, y_t = R·r_t + γ_g(1 − d_t)·x̄(s_{t+1}, a′)
    and V(s_t) = x(s_t, a) with a, a′ sampled from π and the target π. A policy that puts all its
    mass on action k makes both samples k, so the expected advantage is computed here exactly."""
    seen = []
    agent = make_agent(MultiTaskAgent, num_critics=1, num_critics_td=1, advantage_estimator="td",
                       fbc_filter_func=_capture_filter(seen))
    k, G = 2, len(agent.gammas)
    with torch.no_grad():
        for actor in (agent.actor, agent.target_actor):
            out = actor.base.out_layer
            out.weight.zero_()
            out.bias.zero_()
            out.bias.view(G, A)[:, k] = 60.0                               # π(k | s) = 1 − O(e⁻⁶⁰)
    batch = make_batch()
    agent(batch, log_step=False)
    with torch.no_grad():
        s = encode(agent, batch)
        B, L, _ = s.shape
        onehot = torch.nn.functional.one_hot(torch.tensor(k), A).float().expand(1, B, L, G, A)

        def decoded(critics):                                              # (B, L, G): x(s_t, k), C = 1
            return critics.bin_dist_to_raw_vals(critics(s, onehot))[0, :, :, 0, :, 0]

        not_done = (~batch.dones).float()                                  # (B, L−1, 1)
        y = 10.0 * batch.rews + agent.gammas.view(1, 1, G) * not_done * decoded(agent.target_critics)[:, 1:]
        expected = y - decoded(agent.critics)[:, :-1]                      # (B, L−1, G)
    valid = valid_step_mask(batch.rl2s)[:, 1:]
    assert seen[0].shape == (2, 5, G, 1)
    assert not torch.allclose(decoded(agent.target_critics), torch.zeros(()))  # the bootstrap term is exercised
    assert torch.allclose(seen[0][..., 0][valid], expected[valid], atol=1e-5)
    with pytest.raises(AmagoError, match="advantage_estimator must be one of .*'mc'"):
        make_agent(advantage_estimator="mc")


def test_soft_sync_targets():
    agent = make_agent(tau=0.25)
    copies = [(agent.target_critics, agent.critics), (agent.maximized_critics, agent.critics),
              (agent.target_actor, agent.actor)]
    for tgt, src in copies:
        for p_t, p in zip(tgt.parameters(), src.parameters()):
            assert torch.equal(p_t, p)  # hard copies at construction
    old_tgt = [p.clone() for p in agent.target_critics.parameters()]
    old_tgt += [p.clone() for p in agent.target_actor.parameters()]
    with torch.no_grad():
        for p in list(agent.critics.parameters()) + list(agent.actor.parameters()):
            p.add_(1.0)
    agent.soft_sync_targets()
    new_src = list(agent.critics.parameters()) + list(agent.actor.parameters())
    new_tgt = list(agent.target_critics.parameters()) + list(agent.target_actor.parameters())
    for p_t, p_old, p in zip(new_tgt, old_tgt, new_src):
        assert torch.allclose(p_t, 0.75 * p_old + 0.25 * p)
    for p_m, p in zip(agent.maximized_critics.parameters(), agent.critics.parameters()):
        assert torch.equal(p_m, p)
    trainable = {id(p) for p in agent.trainable_params}
    assert not any(id(p) in trainable for p in agent.target_critics.parameters())
    assert all(id(p) in trainable for p in agent.tstep_encoder.parameters())


def test_get_actions_shapes_dtype_and_argmax():
    agent = make_agent().eval()
    N = 3
    obs = {"x": torch.rand(N, 1, 3)}
    rl2s = torch.zeros(N, 1, A + 1)
    t = torch.zeros(N, 1, 1, dtype=torch.long)
    h = agent.traj_encoder.init_hidden_state(N, "cpu")
    greedy, h2 = agent.get_actions(obs, rl2s, t, hidden_state=h, sample=False)
    assert greedy.shape == (N, 1, 1) and greedy.dtype == torch.uint8 and h2 is not None
    with torch.no_grad():
        s = agent.traj_encoder(agent.tstep_encoder(obs, rl2s), t)[0]
        expected = agent.actor(s).probs[:, :, -1].argmax(-1, keepdim=True)
    assert torch.equal(greedy.long(), expected)
    sampled, _ = agent.get_actions(obs, rl2s, t, hidden_state=agent.traj_encoder.init_hidden_state(N, "cpu"))
    assert sampled.shape == (N, 1, 1) and sampled.dtype == torch.uint8 and int(sampled.max()) < A


def _default_agent(cls):
    """An agent built with nothing but the structural arguments (critic_type left to the class)."""
    torch.manual_seed(0)
    return cls(OBS_SPACE, RL2_SPACE, ACTION_SPACE, 8,
               partial(FFTstepEncoder, n_layers=1, d_hidden=16, d_output=16),
               partial(TformerTrajEncoder, d_model=16, n_heads=2, d_ff=32, n_layers=1))


def test_multitaskagent_inherits_arguments_with_its_own_defaults():
    """MultiTaskAgent has Agent's constructor: gin applies MultiTaskAgent.x, then Agent.x, then
    the class defaults (MultiTaskAgent: online 0, offline 1, K_a 3, NCriticsTwoHot)."""
    gin.bind_parameter("NCriticsTwoHot.min_return", -30.0)
    gin.bind_parameter("NCriticsTwoHot.max_return", 30.0)
    agent, mta = _default_agent(Agent), _default_agent(MultiTaskAgent)
    assert (agent.online_coeff, agent.offline_coeff, agent.num_actions_for_value_in_actor_loss) == (1.0, 0.1, 1)
    assert (mta.online_coeff, mta.offline_coeff, mta.num_actions_for_value_in_actor_loss) == (0.0, 1.0, 3)
    assert type(agent.critics) is NCritics and type(mta.critics) is NCriticsTwoHot
    assert mta.tau == agent.tau == 0.003

    gin.bind_parameter("agent.Agent.tau", 0.5)
    gin.bind_parameter("agent.Agent.online_coeff", 0.7)
    gin.bind_parameter("agent.Agent.num_critics", 3)
    gin.bind_parameter("amago.agent.MultiTaskAgent.use_multigamma", False)
    gin.bind_parameter("agent.MultiTaskAgent.num_critics", 5)
    agent, mta = _default_agent(Agent), _default_agent(MultiTaskAgent)
    assert agent.tau == 0.5 and agent.online_coeff == 0.7 and len(agent.gammas) == 7 and agent.num_critics == 3
    assert mta.tau == 0.5 and mta.online_coeff == 0.7           # Agent.x configures the subclass too
    assert mta.num_critics == 5 and len(mta.critics) == 5        # MultiTaskAgent.x wins over Agent.x
    assert mta.gammas.tolist() == pytest.approx([0.999])         # ... and never reaches Agent
    assert mta.offline_coeff == 1.0 and mta.num_actions_for_value_in_actor_loss == 3  # unbound: its defaults
    assert make_agent(MultiTaskAgent, tau=0.2).tau == 0.2        # explicit arguments win over both


def test_bad_configuration_errors():
    with pytest.raises(AmagoError, match="Discrete action spaces"):
        Agent(OBS_SPACE, RL2_SPACE, spaces.Box(-1, 1, (2,)), 8, FFTstepEncoder, TformerTrajEncoder)
    with pytest.raises(AmagoError, match="not both 0"):
        make_agent(online_coeff=0.0, offline_coeff=0.0)
    for bad in (0, 2.0, True):
        with pytest.raises(AmagoError, match="td_steps must be an int >= 1"):
            make_agent(td_steps=bad)
    for bad in (-0.1, float("inf"), float("nan"), "1", True):
        with pytest.raises(AmagoError, match="cql_alpha must be a finite number >= 0"):
            make_agent(cql_alpha=bad)
    agent = make_agent(pass_obs_keys_to_actor=["illegal_actions"])
    with pytest.raises(AmagoError, match="illegal_actions"):
        agent(make_batch(), log_step=False)

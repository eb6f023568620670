"""metamon.amago.diagnostics on a hand-computed batch, and the agent's wiring of it.

The batch: N = 4 steps, G = 2 heads, A = 4 actions (slot 3 never taken).

    step  action  adv (g0, g1)   policy argmax (g0, g1)   legal
    0     0       ( 1.0, -1.0)   (0, 1)                   {0, 1}
    1     1       (-0.5,  2.0)   (1, 1)                   all
    2     1       ( 0.5,  0.0)   (0, 1)                   {1, 2}
    3     2       ( 2.0,  1.0)   (2, 0)                   none (all eligible)
"""

import math

import pytest
import torch

from metamon.amago.diagnostics import (
    StepDiagnostics,
    advantage_stats,
    approval_by_agreement,
    approval_by_slot,
    critic_argmax,
    critic_argmax_rate,
    normalized_td_loss,
    summarize,
)

ACTION = torch.tensor([0, 1, 1, 2])
ADV = torch.tensor([[1.0, -1.0], [-0.5, 2.0], [0.5, 0.0], [2.0, 1.0]])
POLICY_ARGMAX = torch.tensor([[0, 1], [1, 1], [0, 1], [2, 0]])
LEGAL = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
Q = torch.tensor([  # (N, G, A)
    [[1.0, 0.0, 5.0, 0.0], [0.0, 2.0, 0.0, 0.0]],   # g0 -> 0 (5 is illegal), g1 -> 1
    [[0.0, 3.0, 1.0, 0.0], [0.0, 4.0, 0.0, 0.0]],   # g0 -> 1, g1 -> 1
    [[9.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 9.0]],   # g0 -> 2 (9 is illegal), g1 -> 1 (9 illegal)
    [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 2.0, 1.0]],   # no legal action: g0 -> 3, g1 -> 2
])
TD_TARGET = torch.tensor([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])   # g1 constant
TD_SQ_ERR = torch.zeros(4, 2, 2)
TD_SQ_ERR[:, 0, 0] = 0.5                                                     # g0: mean over (n, c) 0.25
TD_SQ_ERR[:, :, 1] = 7.0


def test_approval_by_slot_hand_case():
    rate, count = approval_by_slot(ADV, ACTION, num_actions=4)
    assert count.tolist() == [1, 2, 1, 0]
    assert rate[:, :3].tolist() == [[1.0, 0.5, 1.0], [0.0, 0.5, 1.0]]
    assert math.isnan(rate[0, 3]) and math.isnan(rate[1, 3])


def test_approval_by_agreement_hand_case():
    agree, disagree, agreement = approval_by_agreement(ADV, ACTION, POLICY_ARGMAX)
    # g0 agrees at steps 0, 1, 3 (approved T, F, T), disagrees at 2 (T);
    # g1 agrees at 1, 2 (T, F), disagrees at 0, 3 (F, T)
    assert agree.tolist() == pytest.approx([2 / 3, 0.5])
    assert disagree.tolist() == pytest.approx([1.0, 0.5])
    assert agreement.tolist() == pytest.approx([0.75, 0.5])


def test_critic_argmax_over_legal_actions_hand_case():
    best = critic_argmax(Q, LEGAL)
    assert best.tolist() == [[0, 1], [1, 1], [2, 1], [3, 2]]
    assert critic_argmax_rate(ACTION, best).tolist() == pytest.approx([0.5, 0.75])
    assert critic_argmax(Q, None)[:, 0].tolist() == [2, 1, 0, 3]  # no mask: every action


def test_normalized_td_loss_hand_case():
    ntd = normalized_td_loss(TD_SQ_ERR, TD_TARGET)
    # g0: mse 0.25, Var([0, 1, 2, 3]) = 1.25 -> 0.2; g1: constant targets -> NaN
    assert ntd[0].item() == pytest.approx(0.2)
    assert math.isnan(ntd[1])
    assert math.isnan(normalized_td_loss(TD_SQ_ERR[:1], TD_TARGET[:1])[0])


def test_advantage_stats_hand_case():
    stats = advantage_stats(ADV)
    # g0: [1, -0.5, 0.5, 2] sorted [-0.5, 0.5, 1, 2]; position 3q, linear interpolation
    assert stats["mean"].tolist() == pytest.approx([0.75, 0.5])
    assert stats["std"][0].item() == pytest.approx(math.sqrt(0.8125))
    assert [stats[k][0].item() for k in ("q05", "q25", "q50", "q75", "q95")] == pytest.approx(
        [-0.35, 0.25, 0.75, 1.25, 1.85])
    assert stats["q50"][1].item() == pytest.approx(0.5)  # g1 sorted [-1, 0, 1, 2]


def test_summarize_names_per_head_and_test_time_head():
    steps = StepDiagnostics(
        action=ACTION,
        log_pi=torch.tensor([[-1.0, -2.0], [-1.0, -2.0], [-3.0, -2.0], [-3.0, -2.0]]),
        entropy=torch.tensor([[0.5, 1.0]] * 4),
        policy_argmax=POLICY_ARGMAX,
        adv=ADV,
        critic_argmax=critic_argmax(Q, LEGAL),
        td_sq_err=TD_SQ_ERR,
        td_target=TD_TARGET,
    )
    info = summarize(steps, gammas=[0.9, 0.999], num_actions=4)
    assert info["Diagnostic Steps"] == 4
    assert info["Data Share Slot 1"] == 0.5 and "Data Share Slot 3" not in info
    assert info["Approval (gamma=0.900)"] == 0.75
    assert info["Approval (test-time gamma)"] == info["Approval (gamma=0.999)"] == 0.5
    assert info["Approval Slot 0 (gamma=0.900)"] == 1.0 and info["Approval Slot 0 (test-time gamma)"] == 0.0
    assert "Approval Slot 3 (test-time gamma)" not in info
    assert info["Approval When Policy Agrees (gamma=0.900)"] == pytest.approx(2 / 3)
    assert info["Log Pi(data) (gamma=0.900)"] == -2.0 and info["Policy Entropy (test-time gamma)"] == 1.0
    assert info["Data Action Is Critic Argmax (test-time gamma)"] == 0.75
    assert info["Normalised TD Loss (gamma=0.900)"] == pytest.approx(0.2)
    assert "Normalised TD Loss (test-time gamma)" not in info  # NaN is left out
    assert info["Normalised TD Loss (mean over gammas)"] == pytest.approx(0.2)
    assert info["Advantage q95 (gamma=0.900)"] == pytest.approx(1.85)
    assert info["Advantage Mean (test-time gamma)"] == 0.5
    pooled = StepDiagnostics.cat([steps, steps])
    assert pooled.num_steps == 8
    assert summarize(pooled, [0.9, 0.999], 4)["Approval Slot 1 (gamma=0.900)"] == 0.5
    empty = StepDiagnostics(ACTION[:0], ADV[:0], ADV[:0], POLICY_ARGMAX[:0])
    assert summarize(empty, [0.9, 0.999], 4) == {"Diagnostic Steps": 0.0}

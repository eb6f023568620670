"""Diagnostics of an advantage-filtered agent: does its critic judge actions, or action slots?

Every function here is pure and reads *per-step* tensors that hold only the steps that count
(padding and unknown actions already dropped): N steps, G gammas (the last one acts at test
time), C critics, A actions. `StepDiagnostics` bundles them; `Agent.forward` fills one on log
steps (``AgentOutput.steps``) and `summarize` turns it into named scalars for the metrics CSV.
Several batches are pooled with `StepDiagnostics.cat` (e.g. a held-out set).

Definitions (n a step, g a gamma head, a_n the data action):

* advantage  A_n,g = mean_c x_c,g(s_n, a_n) − mean_c V_c,g(s_n), the filter's input (raw
  critic scale, no gradient);
* approved   A_n,g > 0, the binary filter's decision at its default threshold 0 (and, for the
  exp filter, weight exp(β·A) > 1). Diagnostics use the critic's opinion even while a filter
  gate keeps the training weights at 1;
* approval per action slot a: |{n: a_n = a, approved}| / |{n: a_n = a}| (NaN when a never occurs);
* approval when the policy agrees / disagrees: the same fraction over the steps where
  argmax_a π_g(a|s_n) = a_n / ≠ a_n (head g's own policy);
* critic-argmax rate: the fraction of steps where a_n = argmax over legal a of mean_c Q_c,g(s_n, a)
  (legal: the actor's legal-action mask, all actions when it has none);
* normalised TD loss  NTD_g = mean_{n,c} (PA(x_c,g(s_n, a_n)) − ŷ_n,g)² / Var_n(ŷ_n,g): the
  critic's squared error in PopArt-normalised units over the population variance of the
  normalised TD targets ŷ on the same steps, i.e. 1 − R². 0 is a perfect critic; about 1 is
  no better than predicting the batch's mean target. NaN with fewer than 2 steps or constant
  targets;
* advantage statistics: mean, std (population), and the 5/25/50/75/95 % quantiles per head.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional, Sequence

import torch

__all__ = [
    "QUANTILES",
    "StepDiagnostics",
    "advantage_stats",
    "approval_by_agreement",
    "approval_by_slot",
    "critic_argmax_rate",
    "normalized_td_loss",
    "summarize",
]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_NAN = float("nan")


@dataclass
class StepDiagnostics:
    """Per-step tensors of N steps (see the module docstring for the definitions).

    action        (N,) long       the data action a_n
    log_pi        (N, G)          log π_g(a_n|s_n)
    entropy       (N, G)          H(π_g(·|s_n))
    policy_argmax (N, G) long     argmax_a π_g(a|s_n)
    probs         (N, G, A) or None     π_g(·|s_n), the whole distribution
    adv           (N, G) or None  A_n,g (None without a critic)
    critic_argmax (N, G) long or None   argmax over legal a of mean_c Q_c,g(s_n, a)
    td_sq_err     (N, C, G) or None     (PA(x_c,g(s_n, a_n)) − ŷ_n,g)²
    td_target     (N, G) or None        ŷ_n,g, the PopArt-normalised TD target
    """

    action: torch.Tensor
    log_pi: torch.Tensor
    entropy: torch.Tensor
    policy_argmax: torch.Tensor
    probs: Optional[torch.Tensor] = None
    adv: Optional[torch.Tensor] = None
    critic_argmax: Optional[torch.Tensor] = None
    td_sq_err: Optional[torch.Tensor] = None
    td_target: Optional[torch.Tensor] = None

    @property
    def num_steps(self) -> int:
        return int(self.action.shape[0])

    @classmethod
    def cat(cls, parts: Sequence["StepDiagnostics"]) -> "StepDiagnostics":
        """Pool several batches' steps (a field is None in the result if it is None in any part)."""
        if not parts:
            raise ValueError("StepDiagnostics.cat needs at least one part")
        out = {}
        for f in fields(cls):
            values = [getattr(p, f.name) for p in parts]
            out[f.name] = None if any(v is None for v in values) else torch.cat(values, dim=0)
        return cls(**out)


def approval_by_slot(adv: torch.Tensor, action: torch.Tensor, num_actions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Approval rate per data-action slot and head, and how many steps each slot has.

    adv (N, G), action (N,) long -> (rate (G, A) float, NaN where a slot has no step; count (A,) long).
    """
    approved = (adv > 0).to(torch.float64)                                  # (N, G)
    onehot = torch.nn.functional.one_hot(action.long(), num_actions).to(torch.float64)  # (N, A)
    count = onehot.sum(dim=0)                                               # (A,)
    hits = approved.T @ onehot                                              # (G, A)
    rate = torch.where(count > 0, hits / count.clamp(min=1), torch.full_like(hits, _NAN))
    return rate, count.long()


def approval_by_agreement(
    adv: torch.Tensor, action: torch.Tensor, policy_argmax: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per head: (approval where π_g's argmax = a_n, approval where it differs, the agreement rate).

    adv (N, G), action (N,), policy_argmax (N, G) -> three (G,) tensors (NaN for an empty group).
    """
    approved = (adv > 0).to(torch.float64)
    agrees = (policy_argmax == action[:, None]).to(torch.float64)
    n_agree, n_disagree = agrees.sum(dim=0), (1 - agrees).sum(dim=0)
    on_agree = (approved * agrees).sum(dim=0) / n_agree
    on_disagree = (approved * (1 - agrees)).sum(dim=0) / n_disagree
    nan = torch.full_like(on_agree, _NAN)
    n = max(int(action.shape[0]), 1)
    return (
        torch.where(n_agree > 0, on_agree, nan),
        torch.where(n_disagree > 0, on_disagree, nan),
        n_agree / n if action.shape[0] else nan,
    )


def critic_argmax(q: torch.Tensor, legal: Optional[torch.Tensor]) -> torch.Tensor:
    """argmax over legal actions of q: q (N, G, A), legal (N, A) bool or None -> (N, G) long.

    A step with no legal action keeps every action eligible.
    """
    if legal is not None:
        legal = legal.bool() | ~legal.bool().any(dim=-1, keepdim=True)
        q = q.masked_fill(~legal[:, None, :], float("-inf"))
    return q.argmax(dim=-1)


def critic_argmax_rate(action: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    """Fraction of steps whose data action is the critic's best legal action, per head.

    action (N,), best (N, G) (see :func:`critic_argmax`) -> (G,) (NaN when N = 0).
    """
    if action.shape[0] == 0:
        return torch.full((best.shape[1],), _NAN, dtype=torch.float64)
    return (best == action[:, None]).to(torch.float64).mean(dim=0)


def normalized_td_loss(td_sq_err: torch.Tensor, td_target: torch.Tensor) -> torch.Tensor:
    """NTD_g = mean_{n,c} td_sq_err / Var_n(td_target) (module docstring), per head.

    td_sq_err (N, C, G), td_target (N, G) -> (G,) float64, NaN where N < 2 or Var = 0.
    """
    if td_target.shape[0] < 2:
        return torch.full((td_target.shape[1],), _NAN, dtype=torch.float64)
    mse = td_sq_err.to(torch.float64).mean(dim=(0, 1))
    var = td_target.to(torch.float64).var(dim=0, unbiased=False)
    return torch.where(var > 0, mse / var.clamp(min=1e-30), torch.full_like(var, _NAN))


def advantage_stats(adv: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per head: ``mean``, ``std`` (population) and ``q05 q25 q50 q75 q95`` of adv (N, G) -> (G,) each.

    Quantiles interpolate linearly (``torch.quantile``); everything is NaN when N = 0.
    """
    adv = adv.to(torch.float64)
    if adv.shape[0] == 0:
        nan = torch.full((adv.shape[1],), _NAN, dtype=torch.float64)
        return {k: nan for k in ("mean", "std", *(_q_name(q) for q in QUANTILES))}
    out = {"mean": adv.mean(dim=0), "std": adv.std(dim=0, unbiased=False)}
    qs = torch.quantile(adv, torch.tensor(QUANTILES, dtype=torch.float64), dim=0)  # (5, G)
    out.update({_q_name(q): qs[i] for i, q in enumerate(QUANTILES)})
    return out


def _q_name(q: float) -> str:
    return f"q{round(q * 100):02d}"


def _per_head(info: dict, name: str, values: torch.Tensor, gammas: Sequence[float]) -> None:
    """info["{name} (gamma=g)"] for every head and info["{name} (test-time gamma)"] for the
    last one; NaN values are left out (nothing to report)."""
    values = values.tolist()
    for g, v in zip(gammas, values):
        if v == v:
            info[f"{name} (gamma={g:.3f})"] = float(v)
    if values and values[-1] == values[-1]:
        info[f"{name} (test-time gamma)"] = float(values[-1])


def summarize(d: StepDiagnostics, gammas: Sequence[float], num_actions: int) -> dict[str, float]:
    """Named scalars of ``d`` for the metrics log (each per head and for the test-time head).

    Keys: "Diagnostic Steps", "Data Share Slot {a}"; per head "Policy Entropy", "Log Pi(data)",
    "Policy Agrees With Data"; with a critic also "Approval", "Approval Slot {a}", "Approval
    When Policy Agrees", "Approval When Policy Disagrees", "Advantage Mean|Std|q05…q95";
    "Data Action Is Critic Argmax" when ``critic_argmax`` is set; "Normalised TD Loss" (and
    its mean over heads) when the TD tensors are set. Slots and groups without steps are
    left out.
    """
    gammas = [float(g) for g in gammas]
    info: dict[str, float] = {"Diagnostic Steps": float(d.num_steps)}
    if d.num_steps == 0:
        return info
    counts = torch.bincount(d.action.long(), minlength=num_actions)
    for a, c in enumerate(counts.tolist()):
        if c:
            info[f"Data Share Slot {a}"] = c / d.num_steps
    _per_head(info, "Policy Entropy", d.entropy.to(torch.float64).mean(dim=0), gammas)
    _per_head(info, "Log Pi(data)", d.log_pi.to(torch.float64).mean(dim=0), gammas)
    if d.adv is not None:
        _per_head(info, "Approval", (d.adv > 0).to(torch.float64).mean(dim=0), gammas)
        rate, _ = approval_by_slot(d.adv, d.action, num_actions)
        for a in range(num_actions):
            _per_head(info, f"Approval Slot {a}", rate[:, a], gammas)
        agree, disagree, agreement = approval_by_agreement(d.adv, d.action, d.policy_argmax)
        _per_head(info, "Approval When Policy Agrees", agree, gammas)
        _per_head(info, "Approval When Policy Disagrees", disagree, gammas)
        _per_head(info, "Policy Agrees With Data", agreement, gammas)
        for key, values in advantage_stats(d.adv).items():
            _per_head(info, f"Advantage {key.capitalize() if key in ('mean', 'std') else key}", values, gammas)
    else:
        agreement = (d.policy_argmax == d.action[:, None]).to(torch.float64).mean(dim=0)
        _per_head(info, "Policy Agrees With Data", agreement, gammas)
    if d.critic_argmax is not None:
        _per_head(info, "Data Action Is Critic Argmax", critic_argmax_rate(d.action, d.critic_argmax), gammas)
    if d.td_sq_err is not None and d.td_target is not None:
        ntd = normalized_td_loss(d.td_sq_err, d.td_target)
        _per_head(info, "Normalised TD Loss", ntd, gammas)
        finite = ntd[torch.isfinite(ntd)]
        if finite.numel():
            info["Normalised TD Loss (mean over gammas)"] = float(finite.mean())
    return info

"""`FilterGate`: keep the advantage filter's weight at 1 (plain BC) until the critic is ready.

An advantage filter trusts the critic. Early in training the critic has learned little: its
per-action outputs are dominated by offsets, the filter then approves by action slot and the
policy collapses onto what it already prefers. The gate holds the filter weight at 1 until a
criterion on critic quality holds, then hands over to the configured filter for good.

State: ``td_ema`` (the exponential moving average of the critic's normalised TD loss,
:func:`metamon.amago.diagnostics.normalized_td_loss` of the test-time head; NaN before the
first value) and ``is_open``. :meth:`FilterGate.step` runs once per training forward with the
update index ``u`` (optimizer updates finished before this one) and this batch's value ℓ:

    ema ← ℓ if ema is NaN else decay·ema + (1 − decay)·ℓ          (a NaN ℓ leaves ema as is)
    open at the first step where  u ≥ min_steps  and
        (td_threshold is None  or  ema < td_threshold  or  (max_steps is not None and u ≥ max_steps))

The step that opens the gate already uses the filter (the switch happens exactly when the
criterion holds). **Sticky:** once open it stays open; the filter starts to change the policy,
the TD targets move with it, and a gate that closed again would switch the objective back and
forth.

A gate with ``td_threshold=None`` and ``min_steps=0`` is *disabled*: always open, and its
buffers are not part of the state dict (checkpoints of ungated agents keep their keys). An
enabled gate's buffers are saved, so a resumed run continues with the same gate.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from metamon.amago.utils import AmagoError

__all__ = ["FilterGate"]


class FilterGate(nn.Module):
    """The gate described in the module docstring.

    Args:
        td_threshold: open once the normalised TD loss EMA is below this (None: no TD criterion).
        min_steps: never open before this many updates.
        max_steps: open after this many updates even if the TD criterion never held (None: never forced).
        ema_decay: the EMA's decay in [0, 1); 0 uses the current batch alone.
    """

    def __init__(
        self,
        td_threshold: Optional[float] = None,
        min_steps: int = 0,
        max_steps: Optional[int] = None,
        ema_decay: float = 0.95,
    ):
        super().__init__()
        if td_threshold is not None and not td_threshold > 0:
            raise AmagoError(f"filter_gate_td_threshold must be > 0 or None, got {td_threshold}")
        if not isinstance(min_steps, int) or min_steps < 0:
            raise AmagoError(f"filter_gate_min_steps must be an int >= 0, got {min_steps!r}")
        if max_steps is not None and (not isinstance(max_steps, int) or max_steps < min_steps):
            raise AmagoError(f"filter_gate_max_steps must be None or an int >= min_steps, got {max_steps!r}")
        if not 0.0 <= ema_decay < 1.0:
            raise AmagoError(f"filter_gate_ema_decay must be in [0, 1), got {ema_decay}")
        self.td_threshold = td_threshold
        self.min_steps = min_steps
        self.max_steps = max_steps
        self.ema_decay = ema_decay
        self.enabled = td_threshold is not None or min_steps > 0
        self.register_buffer("is_open", torch.tensor(not self.enabled), persistent=self.enabled)
        self.register_buffer("td_ema", torch.tensor(float("nan"), dtype=torch.float64), persistent=self.enabled)

    @property
    def open(self) -> bool:
        return bool(self.is_open)

    def criterion(self, ema: float, update: int) -> bool:
        """Whether the gate may open at update ``update`` with EMA ``ema`` (module docstring)."""
        if update < self.min_steps:
            return False
        if self.td_threshold is None:
            return True
        if self.max_steps is not None and update >= self.max_steps:
            return True
        return not math.isnan(ema) and ema < self.td_threshold

    @torch.no_grad()
    def step(self, td_loss: float, update: int) -> bool:
        """Fold ``td_loss`` into the EMA, open the gate if the criterion holds; returns ``open``."""
        if not self.enabled:
            return True
        ema = float(self.td_ema)
        if not math.isnan(td_loss):
            ema = td_loss if math.isnan(ema) else self.ema_decay * ema + (1.0 - self.ema_decay) * td_loss
            self.td_ema.fill_(ema)
        if not self.open and self.criterion(ema, update):
            self.is_open.fill_(True)
        return self.open

    def extra_repr(self) -> str:
        return (
            f"td_threshold={self.td_threshold}, min_steps={self.min_steps}, max_steps={self.max_steps}, "
            f"ema_decay={self.ema_decay}, enabled={self.enabled}"
        )

"""The one error type of :mod:`metamon.nash`."""

from __future__ import annotations

from metamon.errors import MetamonError

__all__ = ["NashError"]


class NashError(MetamonError, ValueError):
    """Bad input to the PSRO/Nash tools: a missing payoff entry, a duplicate population member,
    inconsistent battle records, a mixture that is not a probability vector, an unknown
    meta-solver, a malformed saved file. The message names the offending item."""

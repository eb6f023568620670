"""The PSRO population: an ordered list of named policies.

Contract
--------
* A :class:`Member` is ``(name, spec, metadata)``. ``name`` is the unique key used everywhere
  (payoff table, logs, battle records). ``spec`` is the player spec *string* that builds the
  policy (``"GymLeader"``, ``"run:DIR@N"``, ``"pure:2"`` for matrix games...); this module
  stores it verbatim and never interprets it. ``metadata`` is a JSON-serialisable dict
  (e.g. the PSRO iteration that produced the member).
* Members are only appended. Index ``i`` of the population is index ``i`` of every mixture σ
  and row/column ``i`` of every payoff matrix built over it.
* Names are unique; adding a duplicate raises :class:`NashError`.
* Saved as JSON (``{"format": "metamon.nash.population/1", "members": [...]}``) with
  :func:`metamon.files.atomic_write`, so a reader never sees a half-written file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from metamon.files import atomic_write
from metamon.nash.errors import NashError

__all__ = ["Member", "Population", "POPULATION_FORMAT"]

POPULATION_FORMAT = "metamon.nash.population/1"


@dataclass(frozen=True)
class Member:
    """One policy of the population: unique ``name``, player ``spec`` string, free ``metadata``."""

    name: str
    spec: str
    metadata: Dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip() or self.name != self.name.strip():
            raise NashError(f"A member name must be a non-empty string without surrounding spaces, got {self.name!r}")
        if not isinstance(self.spec, str) or not self.spec.strip():
            raise NashError(f"Member {self.name!r}: the player spec must be a non-empty string, got {self.spec!r}")
        if not isinstance(self.metadata, Mapping):
            raise NashError(f"Member {self.name!r}: metadata must be a dict, got {type(self.metadata).__name__}")
        try:
            json.dumps(dict(self.metadata))
        except (TypeError, ValueError) as e:
            raise NashError(f"Member {self.name!r}: metadata is not JSON-serialisable ({e})") from None
        object.__setattr__(self, "metadata", dict(self.metadata))

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "metadata": dict(self.metadata)}


class Population:
    """Ordered, append-only list of uniquely named :class:`Member` s."""

    def __init__(self, members: Sequence[Member] = ()):
        self._members: List[Member] = []
        self._index: Dict[str, int] = {}
        for member in members:
            self.add(member)

    def add(self, member: Union[Member, str], spec: Optional[str] = None,
            metadata: Optional[Mapping[str, Any]] = None) -> Member:
        """Append a member (``add(Member(...))`` or ``add(name, spec, metadata)``) and return it.
        Raises :class:`NashError` if the name is already taken."""
        if not isinstance(member, Member):
            if spec is None:
                raise NashError(f"Population.add({member!r}): a player spec is required")
            member = Member(member, spec, dict(metadata or {}))
        elif spec is not None or metadata is not None:
            raise NashError("Population.add: pass either a Member or (name, spec, metadata), not both")
        if member.name in self._index:
            raise NashError(f"Population already has a member named {member.name!r} "
                            f"(spec {self[member.name].spec!r}); names must be unique")
        self._index[member.name] = len(self._members)
        self._members.append(member)
        return member

    @property
    def names(self) -> List[str]:
        return [m.name for m in self._members]

    @property
    def specs(self) -> List[str]:
        return [m.spec for m in self._members]

    def index(self, name: str) -> int:
        """Position of ``name`` (= its index in σ and in the payoff matrix)."""
        try:
            return self._index[name]
        except KeyError:
            members = ", ".join(self.names) or "(none)"
            raise NashError(f"No population member named {name!r}; members: {members}") from None

    def find_spec(self, spec: str) -> Optional[Member]:
        """The first member whose spec string equals ``spec``, or ``None``."""
        return next((m for m in self._members if m.spec == spec), None)

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[Member]:
        return iter(list(self._members))

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, key: Union[int, str]) -> Member:
        if isinstance(key, str):
            return self._members[self.index(key)]
        return self._members[key]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Population):
            return NotImplemented
        return [m.to_dict() for m in self] == [m.to_dict() for m in other]

    def __repr__(self) -> str:
        return f"Population({', '.join(self.names)})"

    def sample(self, sigma: Sequence[float], rng: np.random.Generator, size: int) -> List[Member]:
        """``size`` members drawn i.i.d. from the mixture ``sigma`` (length ``len(self)``, a
        probability vector)."""
        p = np.asarray(sigma, dtype=float)
        if p.shape != (len(self),):
            raise NashError(f"sigma has shape {p.shape}, the population has {len(self)} members")
        if np.any(p < 0) or abs(p.sum() - 1.0) > 1e-6:
            raise NashError(f"sigma must be a probability vector, got {p.tolist()}")
        return [self._members[i] for i in rng.choice(len(self), size=size, p=p / p.sum())]

    # ------------------------------------------------------------------ disk
    def to_dict(self) -> Dict[str, Any]:
        return {"format": POPULATION_FORMAT, "members": [m.to_dict() for m in self._members]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Population":
        if not isinstance(data, Mapping) or data.get("format") != POPULATION_FORMAT:
            raise NashError(f"Not a population file (expected format {POPULATION_FORMAT!r})")
        members = data.get("members")
        if not isinstance(members, list):
            raise NashError("Population file: 'members' must be a list")
        out = cls()
        for k, m in enumerate(members):
            if not isinstance(m, Mapping) or "name" not in m or "spec" not in m:
                raise NashError(f"Population file: member #{k} needs 'name' and 'spec', got {m!r}")
            out.add(Member(m["name"], m["spec"], m.get("metadata") or {}))
        return out

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the population as JSON, atomically."""
        atomic_write(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Population":
        """Read a file written by :meth:`save`. Raises :class:`NashError` naming the file if it
        is missing or malformed."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise NashError(f"Population file {os.fspath(path)!r} does not exist") from None
        except json.JSONDecodeError as e:
            raise NashError(f"Population file {os.fspath(path)!r} is not valid JSON ({e})") from None
        try:
            return cls.from_dict(data)
        except NashError as e:
            raise NashError(f"{os.fspath(path)}: {e}") from None

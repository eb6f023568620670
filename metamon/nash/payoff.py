"""The empirical payoff table of a PSRO population.

Contract
--------
* Input is battle records, mappings with the keys ``battle_id``, ``player``, ``opponent`` and
  ``result`` (``"win"``, ``"loss"`` or ``"draw"``, from ``player``'s side; ``"tie"`` -- the word
  :mod:`metamon.baselines.compete` uses -- is read as ``"draw"``). Other keys are ignored.
  ``player`` and ``opponent`` are member names that must already be in the table
  (:meth:`PayoffTable.add_member`), and they must differ (a policy against itself wins half the
  time by symmetry; no battles are stored for the diagonal).
* **Each unique battle counts once.** A battle's id must be unique across everything fed to the
  table (the evaluator makes it so, e.g. by prefixing Showdown's battle tag with its server).
  The same battle seen again -- from the same side, or from the other side as in the two
  players' logs -- is ignored; if the two views disagree (both say "win", or different players)
  :class:`NashError` is raised and nothing from that call is added.
* Counts per ordered pair ``(i, j)``: ``wins[i, j]`` (i beat j), ``draws[i, j]``,
  ``losses[i, j] = wins[j, i]`` and ``n[i, j] = wins + draws + losses`` (symmetric).
* Win-rate matrix ``M[i, j] = (wins[i, j] + ½ draws[i, j]) / n[i, j]`` (probability that ``i``
  beats ``j``, draws as half), so ``M[j, i] = 1 − M[i, j]`` exactly and ``M[i, i] = ½``.
* **A pair with no battles is an error**, raised by :meth:`PayoffTable.win_rate_matrix` with
  the names of the missing pairs; it is never filled with a default.
* Wilson intervals use :func:`metamon.stats.wilson_interval` with ``successes = wins + ½ draws``
  out of ``n``. A draw-inclusive score ``X ∈ {0, ½, 1}`` with mean ``p`` has variance
  ``p(1−p) − P(draw)/4 ≤ p(1−p)``, so this interval is exact Wilson without draws and slightly
  conservative (too wide, never too narrow) with them.
* Resumable: :meth:`PayoffTable.save` writes JSON atomically (every battle with its id, so
  de-duplication survives a restart); :meth:`PayoffTable.pairs_needed` lists only the pairs
  that involve the given new members and still lack battles.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from metamon.files import atomic_write
from metamon.nash.errors import NashError
from metamon.stats import wilson_interval

__all__ = ["PayoffTable", "PayoffCounts", "PairRequest", "PAYOFF_FORMAT", "normalize_result"]

PAYOFF_FORMAT = "metamon.nash.payoff/1"
_RESULTS = {"win": "win", "loss": "loss", "draw": "draw", "tie": "draw"}
_FLIP = {"win": "loss", "loss": "win", "draw": "draw"}
_RECORD_KEYS = ("battle_id", "player", "opponent", "result")


def normalize_result(result: Any) -> str:
    """``"win"``/``"loss"``/``"draw"`` (``"tie"`` → ``"draw"``); anything else raises."""
    try:
        return _RESULTS[str(result).lower()]
    except KeyError:
        raise NashError(f"Battle result {result!r} is not one of win, loss, draw (or tie); "
                        "drop unfinished or errored battles before adding them") from None


class PairRequest(NamedTuple):
    """Battles still needed between ``a`` and ``b`` (``a`` before ``b`` in member order)."""

    a: str
    b: str
    missing: int


@dataclass(frozen=True, eq=False)
class PayoffCounts:
    """Outcome counts over ``names`` (order = matrix order). ``wins`` is ``(K, K)`` int with
    ``wins[i, j]`` = battles ``i`` won against ``j``; ``draws`` is ``(K, K)`` int, symmetric.
    Diagonals are 0."""

    names: Tuple[str, ...]
    wins: np.ndarray
    draws: np.ndarray

    @property
    def losses(self) -> np.ndarray:
        """``(K, K)``: ``losses[i, j] = wins[j, i]``."""
        return self.wins.T

    @property
    def n(self) -> np.ndarray:
        """``(K, K)`` battle counts per pair (symmetric, diagonal 0)."""
        return self.wins + self.wins.T + self.draws

    def missing_pairs(self) -> List[Tuple[str, str]]:
        """Off-diagonal pairs ``(a, b)``, ``a`` before ``b``, with no battles."""
        n = self.n
        k = len(self.names)
        return [(self.names[i], self.names[j]) for i in range(k) for j in range(i + 1, k) if n[i, j] == 0]

    def check_complete(self) -> None:
        """Raise :class:`NashError` naming the pairs without battles, if any."""
        missing = self.missing_pairs()
        if missing:
            shown = ", ".join(f"{a!r} vs {b!r}" for a, b in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise NashError(f"The payoff table has no battles for {shown}{more}. Play them first "
                            "(PayoffTable.pairs_needed lists them); a missing entry is never assumed to be 1/2.")

    def win_rates(self) -> np.ndarray:
        """``(K, K)`` float ``M`` with ``M[i, j] = (wins + ½ draws) / n``, ``M[i, i] = ½``.
        Raises :class:`NashError` if an off-diagonal pair has no battles."""
        self.check_complete()
        n = self.n
        score = self.wins + 0.5 * self.draws
        m = np.full(n.shape, 0.5)
        off = ~np.eye(len(self.names), dtype=bool)
        m[off] = score[off] / n[off]
        return m

    def wilson_intervals(self, z: float = 1.96) -> Tuple[np.ndarray, np.ndarray]:
        """``(low, high)``, each ``(K, K)``: the Wilson interval of every entry of
        :meth:`win_rates` (draws as half a win; see the module docstring). The diagonal is the
        point ``½``. Raises like :meth:`win_rates`."""
        self.check_complete()
        k = len(self.names)
        low, high = np.full((k, k), 0.5), np.full((k, k), 0.5)
        n = self.n
        for i in range(k):
            for j in range(k):
                if i != j:
                    score = float(self.wins[i, j] + 0.5 * self.draws[i, j])
                    low[i, j], high[i, j] = wilson_interval(score, int(n[i, j]), z)
        return low, high


class PayoffTable:
    """Battle outcomes between population members, each unique battle once.

    ``members`` is the ordered list of names (append-only, same order as the
    :class:`~metamon.nash.population.Population`)."""

    def __init__(self, members: Sequence[str] = ()):
        self._members: List[str] = []
        self._index: Dict[str, int] = {}
        # battle_id -> (a, b, outcome for a), with a before b in member order
        self._battles: Dict[str, Tuple[str, str, str]] = {}
        # (a, b) with a before b -> [wins of a, draws, losses of a]
        self._pair_counts: Dict[Tuple[str, str], List[int]] = {}
        for name in members:
            self.add_member(name)

    # ------------------------------------------------------------ members
    @property
    def members(self) -> List[str]:
        return list(self._members)

    def add_member(self, name: str) -> None:
        """Append a member name; raises :class:`NashError` if it is already there."""
        if not isinstance(name, str) or not name:
            raise NashError(f"A member name must be a non-empty string, got {name!r}")
        if name in self._index:
            raise NashError(f"The payoff table already has a member named {name!r}")
        self._index[name] = len(self._members)
        self._members.append(name)

    def _position(self, name: Any, battle_id: Any = None) -> int:
        try:
            return self._index[name]
        except (KeyError, TypeError):
            where = f"battle {battle_id!r}: " if battle_id is not None else ""
            raise NashError(f"{where}{name!r} is not a member of the payoff table "
                            f"(members: {', '.join(self._members) or '(none)'}); add it first") from None

    # ------------------------------------------------------------ records
    def add_records(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Add battle records (see the module docstring); returns how many *new unique*
        battles were counted. All-or-nothing: if any record is invalid or contradicts another,
        :class:`NashError` is raised and the table is unchanged."""
        staged: Dict[str, Tuple[str, str, str]] = {}
        for record in records:
            if not isinstance(record, Mapping) or any(k not in record for k in _RECORD_KEYS):
                raise NashError(f"A battle record needs the keys {', '.join(_RECORD_KEYS)}; got {record!r}")
            battle_id = record["battle_id"]
            if not isinstance(battle_id, str) or not battle_id:
                raise NashError(f"battle_id must be a non-empty string, got {battle_id!r}")
            player, opponent = record["player"], record["opponent"]
            i, j = self._position(player, battle_id), self._position(opponent, battle_id)
            if i == j:
                raise NashError(f"battle {battle_id!r}: {player!r} against itself; the diagonal is 1/2 by "
                                "symmetry and is not stored")
            outcome = normalize_result(record["result"])
            view = (player, opponent, outcome) if i < j else (opponent, player, _FLIP[outcome])
            known = staged.get(battle_id) or self._battles.get(battle_id)
            if known is not None:
                if known != view:
                    raise NashError(f"battle {battle_id!r} is recorded twice with different outcomes: "
                                    f"{_describe(known)} and {_describe(view)}")
                continue
            staged[battle_id] = view
        for battle_id, (a, b, outcome) in staged.items():
            self._battles[battle_id] = (a, b, outcome)
            counts = self._pair_counts.setdefault((a, b), [0, 0, 0])
            counts[("win", "draw", "loss").index(outcome)] += 1
        return len(staged)

    @property
    def n_unique_battles(self) -> int:
        return len(self._battles)

    # ------------------------------------------------------------ queries
    def pair_counts(self, a: str, b: str) -> Tuple[int, int, int]:
        """``(wins, draws, losses)`` of ``a`` against ``b``."""
        i, j = self._position(a), self._position(b)
        if i == j:
            return 0, 0, 0
        if i < j:
            won, drawn, lost = self._pair_counts.get((a, b), (0, 0, 0))
            return won, drawn, lost
        won, drawn, lost = self._pair_counts.get((b, a), (0, 0, 0))
        return lost, drawn, won

    def n_battles(self, a: str, b: str) -> int:
        return sum(self.pair_counts(a, b))

    def counts(self, names: Optional[Sequence[str]] = None) -> PayoffCounts:
        """:class:`PayoffCounts` over ``names`` (default: all members, in member order)."""
        names = tuple(self._members if names is None else names)
        if len(set(names)) != len(names):
            raise NashError(f"Duplicate names in {list(names)}")
        k = len(names)
        wins = np.zeros((k, k), dtype=np.int64)
        draws = np.zeros((k, k), dtype=np.int64)
        for x, a in enumerate(names):
            self._position(a)
            for y in range(x + 1, k):
                won, drawn, lost = self.pair_counts(a, names[y])
                wins[x, y], wins[y, x] = won, lost
                draws[x, y] = draws[y, x] = drawn
        return PayoffCounts(names, wins, draws)

    def win_rate_matrix(self, names: Optional[Sequence[str]] = None) -> np.ndarray:
        """``(K, K)`` ``M`` over ``names`` (default all members); raises :class:`NashError`
        naming any pair without battles."""
        return self.counts(names).win_rates()

    def wilson_intervals(self, names: Optional[Sequence[str]] = None, z: float = 1.96) -> Tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` Wilson bounds of every entry of :meth:`win_rate_matrix`."""
        return self.counts(names).wilson_intervals(z)

    def pairs_needed(self, new_members: Optional[Sequence[str]] = None, battles_per_pair: int = 1) -> List[PairRequest]:
        """The pairs that involve at least one of ``new_members`` (default: every member) and
        have fewer than ``battles_per_pair`` battles, with how many are missing. Pairs between
        two old members are never listed. Order: by the later member, then the earlier one."""
        if battles_per_pair < 1:
            raise NashError(f"battles_per_pair must be at least 1, got {battles_per_pair}")
        new = set(self._members if new_members is None else new_members)
        for name in new:
            self._position(name)
        out = []
        for j, b in enumerate(self._members):
            for a in self._members[:j]:
                if a in new or b in new:
                    missing = battles_per_pair - self.n_battles(a, b)
                    if missing > 0:
                        out.append(PairRequest(a, b, missing))
        return out

    # ------------------------------------------------------------ disk
    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": PAYOFF_FORMAT,
            "members": list(self._members),
            "battles": [[bid, a, b, outcome] for bid, (a, b, outcome) in self._battles.items()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PayoffTable":
        if not isinstance(data, Mapping) or data.get("format") != PAYOFF_FORMAT:
            raise NashError(f"Not a payoff table (expected format {PAYOFF_FORMAT!r})")
        table = cls(data.get("members") or [])
        rows = data.get("battles") or []
        if not all(isinstance(r, list) and len(r) == 4 for r in rows):
            raise NashError("Payoff table: every battle must be [battle_id, a, b, outcome_for_a]")
        table.add_records({"battle_id": r[0], "player": r[1], "opponent": r[2], "result": r[3]} for r in rows)
        return table

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the table (members and every battle) as JSON, atomically."""
        atomic_write(path, json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "PayoffTable":
        """Read a file written by :meth:`save`; :class:`NashError` naming the file if it is
        missing or malformed."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise NashError(f"Payoff table {os.fspath(path)!r} does not exist") from None
        except json.JSONDecodeError as e:
            raise NashError(f"Payoff table {os.fspath(path)!r} is not valid JSON ({e})") from None
        try:
            return cls.from_dict(data)
        except NashError as e:
            raise NashError(f"{os.fspath(path)}: {e}") from None


def _describe(view: Tuple[str, str, str]) -> str:
    a, b, outcome = view
    return f"{a} {dict(win='beat', loss='lost to', draw='drew with')[outcome]} {b}"

"""Bradley–Terry ratings of players from the unique games they played, on the Elo scale.

Model: player i has a strength θ_i and beats j with probability σ(θ_i − θ_j) = 1/(1 + e^{θ_j − θ_i}).
Given the game records:

1. **Unique games.** A battle is identified by its battle id, shared by both perspectives; the
   records of one battle (one per perspective, or repeated) collapse into one :class:`Game`
   (:func:`unique_games`). Records of one battle that disagree, and games of a player against
   itself, are errors.
2. **Scores.** S[i, j] = wins of i over j + ½ · ties between i and j (:func:`score_matrix`): a tie
   counts as half a win for each side. The likelihood maximised is
   Π_{i≠j} σ(θ_i − θ_j)^{S[i,j]}, i.e. a tie is fed to the fitter as half a win each way — the
   same estimate as entering every tie as one win for each side at weight ½.
3. **Fit.** Maximum likelihood with ``choix.ilsr_pairwise_dense`` (iterative Luce spectral
   ranking, whose fixed point is the MLE), on the fractional score matrix. ``alpha`` > 0 is
   choix's regulariser: it adds a pseudo-count ≈ alpha·(w_i + w_j) of wins each way between every
   pair (w = e^θ, normalised to mean ≈ 1), so that a player who never won or never lost still
   gets a finite rating. The default 1e-3 is ≈ 0.002 pseudo-games per pair (it moves a 4–2
   head-to-head record by 0.09 Elo, less with more games); ``alpha=0`` is the plain MLE, which
   exists only when the directed "i scored against j" graph is strongly connected
   (:class:`RatingError` otherwise).
4. **Elo scale.** R_i = c + (400 / ln 10) · θ_i, so that P(i beats j) = 1/(1 + 10^{(R_j − R_i)/400});
   c puts the ``anchor`` player at ``anchor_rating`` (or the mean rating there without anchor).
5. **Intervals.** Percentile bootstrap: resample the unique games with replacement (seeded),
   refit, re-anchor; the interval of each rating is the central ``confidence`` mass of its
   bootstrap distribution. Intervals are relative to the anchor (whose interval is a point).

Plots: :func:`plot_ratings` (ratings with intervals), :func:`plot_win_rates` (win-rate heat-map
with game counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Optional, Sequence

import choix
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.sparse.csgraph import connected_components

from metamon.errors import MetamonError
from metamon.files import atomic_path

__all__ = [
    "ELO_PER_NAT",
    "RatingError",
    "Game",
    "Ratings",
    "unique_games",
    "score_matrix",
    "fit_bradley_terry",
    "rate",
    "plot_ratings",
    "plot_win_rates",
]

ELO_PER_NAT = 400.0 / math.log(10.0)
"""Elo points per unit of θ (natural log-odds): 173.7178."""

_SCORES = {"WIN": 1.0, "LOSS": 0.0, "TIE": 0.5}


class RatingError(MetamonError, ValueError):
    """Game records that cannot be rated (conflicting duplicates, a self-match, a player without
    games, a comparison graph that does not determine the ratings)."""


@dataclass(frozen=True)
class Game:
    """One unique battle: ``player_a`` scored ``score_a`` (1 win, ½ tie, 0 loss) against
    ``player_b``. Use :meth:`from_perspective` to build it from one side's record: both sides
    of a battle then give equal objects (the players are stored in sorted order)."""

    battle_id: str
    player_a: str
    player_b: str
    score_a: float

    def __post_init__(self):
        if self.score_a not in (0.0, 0.5, 1.0):
            raise RatingError(f"battle {self.battle_id!r}: score_a must be 0, 0.5 or 1, got {self.score_a}")
        if self.player_a == self.player_b:
            raise RatingError(
                f"battle {self.battle_id!r}: {self.player_a!r} played itself; a self-match says "
                "nothing about ratings (are two different checkpoints sharing one name?)"
            )

    @classmethod
    def from_perspective(
        cls, battle_id: str, player: str, opponent: str, result: Literal["WIN", "LOSS", "TIE"]
    ) -> Game:
        """The game as seen by ``player``: ``result`` is its outcome ("WIN", "LOSS" or "TIE")."""
        if result not in _SCORES:
            raise RatingError(f"battle {battle_id!r}: result must be WIN, LOSS or TIE, got {result!r}")
        score = _SCORES[result]
        if player <= opponent:
            return cls(battle_id, player, opponent, score)
        return cls(battle_id, opponent, player, 1.0 - score)


def unique_games(records: Iterable[Game]) -> list[Game]:
    """One :class:`Game` per battle id, in first-seen order. Records with the same id must
    describe the same game (same players, same result; either perspective), else RatingError."""
    games: dict[str, Game] = {}
    for game in records:
        seen = games.get(game.battle_id)
        if seen is None:
            games[game.battle_id] = game
        elif _canonical(seen) != _canonical(game):
            raise RatingError(
                f"battle {game.battle_id!r} is recorded twice with different players or results: "
                f"{seen} vs {game}"
            )
    return list(games.values())


def _canonical(game: Game) -> tuple:
    if game.player_a <= game.player_b:
        return game.player_a, game.player_b, game.score_a
    return game.player_b, game.player_a, 1.0 - game.score_a


def _indexed(games: Sequence[Game], players: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index of player_a, index of player_b, score_a), each (N,)."""
    index = {p: k for k, p in enumerate(players)}
    missing = sorted({p for g in games for p in (g.player_a, g.player_b)} - set(index))
    if missing:
        raise RatingError(f"players {missing} appear in the games but not in the player list")
    a = np.array([index[g.player_a] for g in games], dtype=np.int64)
    b = np.array([index[g.player_b] for g in games], dtype=np.int64)
    s = np.array([g.score_a for g in games], dtype=np.float64)
    return a, b, s


def _scores_from_indexed(a: np.ndarray, b: np.ndarray, s: np.ndarray, n: int) -> np.ndarray:
    scores = np.zeros((n, n))
    np.add.at(scores, (a, b), s)
    np.add.at(scores, (b, a), 1.0 - s)
    return scores


def score_matrix(games: Sequence[Game], players: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, counts), each (P, P) over ``players``: scores[i, j] = wins of i over j + ½ · ties,
    counts[i, j] = games between i and j (so scores + scores.T = counts)."""
    a, b, s = _indexed(games, players)
    scores = _scores_from_indexed(a, b, s, len(players))
    return scores, scores + scores.T


def fit_bradley_terry(scores: np.ndarray, alpha: float = 1e-3) -> np.ndarray:
    """The Bradley–Terry MLE θ (P,), mean 0, from a (P, P) score matrix (wins + ½ ties).

    Every player must have played, and the undirected comparison graph must be connected;
    with ``alpha=0`` the directed graph (i → j when i scored against j) must also be strongly
    connected, or the MLE does not exist. Raises :class:`RatingError` otherwise.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    if scores.shape != (n, n) or n < 2 or (scores < 0).any() or np.diag(scores).any():
        raise RatingError("scores must be a (P, P) non-negative matrix with P >= 2 and a zero diagonal")
    if alpha < 0:
        raise RatingError(f"alpha must be >= 0, got {alpha}")
    counts = scores + scores.T
    if (counts.sum(axis=1) == 0).any():
        raise RatingError(f"players {np.flatnonzero(counts.sum(axis=1) == 0).tolist()} have no games")
    if connected_components(counts > 0, directed=False)[0] > 1:
        raise RatingError("the players form separate groups that never met: ratings across groups are undefined")
    if alpha == 0 and connected_components(scores > 0, directed=True, connection="strong")[0] > 1:
        raise RatingError(
            "the maximum-likelihood ratings do not exist: some group of players never scored "
            "against the others (e.g. a player won or lost every game); pass alpha > 0"
        )
    try:
        theta = choix.ilsr_pairwise_dense(scores, alpha=alpha, max_iter=10_000, tol=1e-10)
    except (RuntimeError, ValueError) as err:
        raise RatingError(f"the Bradley–Terry fit did not converge ({err}); try a larger alpha") from err
    return theta - theta.mean()


@dataclass(frozen=True)
class Ratings:
    """Elo-scale ratings, one per player (same order as ``players``); ``low``/``high``: the
    bootstrap interval (None without bootstrap). ``anchor`` None: the mean rating is
    ``anchor_rating``."""

    players: tuple
    elo: tuple
    low: Optional[tuple]
    high: Optional[tuple]
    anchor: Optional[str]
    anchor_rating: float
    num_games: int
    confidence: float
    num_bootstrap: int

    def rating(self, player: str) -> float:
        return self.elo[self.players.index(player)]

    def as_dict(self) -> dict:
        """JSON-ready: {"players": {name: {"elo", "low", "high"}}, "anchor", ...}."""
        table = {}
        for k, p in enumerate(self.players):
            table[p] = {
                "elo": self.elo[k],
                "low": None if self.low is None else self.low[k],
                "high": None if self.high is None else self.high[k],
            }
        return {
            "players": table,
            "anchor": self.anchor,
            "anchor_rating": self.anchor_rating,
            "num_games": self.num_games,
            "confidence": self.confidence,
            "num_bootstrap": self.num_bootstrap,
        }


def _to_elo(theta: np.ndarray, anchor_index: Optional[int], anchor_rating: float) -> np.ndarray:
    """(..., P) θ -> Elo, shifted so the anchor (or the mean) sits at ``anchor_rating``."""
    elo = ELO_PER_NAT * theta
    ref = elo.mean(axis=-1, keepdims=True) if anchor_index is None else elo[..., anchor_index : anchor_index + 1]
    return elo - ref + anchor_rating


def rate(
    games: Iterable[Game],
    players: Optional[Sequence[str]] = None,
    anchor: Optional[str] = None,
    anchor_rating: float = 1000.0,
    alpha: float = 1e-3,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Ratings:
    """Bradley–Terry ratings on the Elo scale with percentile-bootstrap intervals.

    games: records (duplicates of one battle id are collapsed, see :func:`unique_games`).
    players: the order of the output (default: sorted names); each must have played.
    anchor: the player fixed at ``anchor_rating`` (None: the mean is). alpha: see
    :func:`fit_bradley_terry`. bootstrap: number of resamples of the unique games (0: no
    intervals); seed: their RNG seed. confidence: interval mass (0.95: 2.5 % … 97.5 %).
    """
    unique = unique_games(games)
    if not unique:
        raise RatingError("no games to rate")
    names = sorted({p for g in unique for p in (g.player_a, g.player_b)}) if players is None else list(players)
    if len(set(names)) != len(names):
        raise RatingError(f"duplicate names in players: {names}")
    if anchor is not None and anchor not in names:
        raise RatingError(f"anchor {anchor!r} is not one of the players {names}")
    if not 0 < confidence < 1 or bootstrap < 0:
        raise RatingError(f"need 0 < confidence < 1 and bootstrap >= 0, got {confidence}, {bootstrap}")
    anchor_index = None if anchor is None else names.index(anchor)
    a, b, s = _indexed(unique, names)
    n = len(names)
    elo = _to_elo(fit_bradley_terry(_scores_from_indexed(a, b, s, n), alpha), anchor_index, anchor_rating)

    low = high = None
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        samples = np.empty((bootstrap, n))
        for k in range(bootstrap):
            idx = rng.integers(0, len(unique), size=len(unique))
            try:
                theta = fit_bradley_terry(_scores_from_indexed(a[idx], b[idx], s[idx], n), alpha)
            except RatingError as err:
                raise RatingError(
                    f"bootstrap resample {k} cannot be rated ({err}); too few games per player, or "
                    "alpha = 0 with a player who rarely wins or loses (pass alpha > 0)"
                ) from err
            samples[k] = theta
        tail = 100.0 * (1.0 - confidence) / 2.0
        elo_samples = _to_elo(samples, anchor_index, anchor_rating)
        low = tuple(np.percentile(elo_samples, tail, axis=0).tolist())
        high = tuple(np.percentile(elo_samples, 100.0 - tail, axis=0).tolist())
    return Ratings(
        players=tuple(names),
        elo=tuple(elo.tolist()),
        low=low,
        high=high,
        anchor=anchor,
        anchor_rating=anchor_rating,
        num_games=len(unique),
        confidence=confidence,
        num_bootstrap=bootstrap,
    )


# ------------------------------------------------------------------------------------ plots


def plot_ratings(ratings: Ratings, path: str, title: str = "Bradley–Terry ratings (Elo scale)") -> None:
    """PNG: one row per player (best at the top), its rating as a dot and its interval as a bar."""
    order = sorted(range(len(ratings.players)), key=lambda k: ratings.elo[k])
    fig = Figure(figsize=(7.0, 0.45 * len(order) + 1.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ys = np.arange(len(order))
    elo = np.array([ratings.elo[k] for k in order])
    if ratings.low is not None:
        low = np.array([ratings.low[k] for k in order])
        high = np.array([ratings.high[k] for k in order])
        ax.errorbar(elo, ys, xerr=[elo - low, high - elo], fmt="o", capsize=3, color="C0")
    else:
        ax.plot(elo, ys, "o", color="C0")
    labels = [ratings.players[k] + (" (anchor)" if ratings.players[k] == ratings.anchor else "") for k in order]
    ax.set_yticks(ys, labels)
    interval = f"{100 * ratings.confidence:.0f} % bootstrap intervals, " if ratings.low is not None else ""
    ax.set_xlabel(f"rating ({interval}{ratings.num_games} games)")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def plot_win_rates(
    games: Iterable[Game], path: str, players: Optional[Sequence[str]] = None, title: str = "win rate (row vs column)"
) -> None:
    """PNG heat-map: cell (i, j) = score rate of i against j (ties count ½), annotated with the
    rate and the number of unique games; pairs that never met are left blank."""
    unique = unique_games(games)
    names = sorted({p for g in unique for p in (g.player_a, g.player_b)}) if players is None else list(players)
    scores, counts = score_matrix(unique, names)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(counts > 0, scores / counts, np.nan)
    n = len(names)
    fig = Figure(figsize=(1.0 * n + 2.5, 0.9 * n + 1.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(rates), cmap="RdBu", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="score rate of the row player")
    for i in range(n):
        for j in range(n):
            if counts[i, j] > 0:
                ax.text(j, i, f"{rates[i, j]:.2f}\nn={int(counts[i, j])}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)

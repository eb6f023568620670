"""Name any player with one string, build it as a poke-env ``Player``: :class:`PlayerSpec`.

Every tool that plays battles (``compete``, ``generate``, ``evaluate``, self-play, PSRO) takes
players as specs and builds them with one :class:`PlayerFactory`::

    "GymLeader"                    a registered heuristic baseline (also "baseline:GymLeader")
    "poke_env.player.RandomPlayer" any poke-env Player class by dotted path (also "class:...")
    "run:runs/my_run@4"            a trained run directory at epoch 4 ("run:runs/my_run": latest)
    "pretrained:SyntheticRLV2@40"  a published model of the pretrained registry
    RandomPlayer                   (Python) a Player subclass itself

Usage::

    factory = PlayerFactory("gen1ou", server_configuration=config, team_set="builtin")
    me = factory.build("run:runs/my_run@4", username="Me")
    them = factory.build("GymLeader")
    ...                                     # play_battles(me, them, ...)
    close_players(me, them); factory.close()

Kinds live in the floors that know them: ``baseline`` and ``class`` in :mod:`metamon.baselines`,
``run`` in :mod:`metamon.rl` (and ``pretrained`` where the registry lives). This module is
below them, so it never imports them by name in code: :data:`KIND_PROVIDERS` maps each kind to
the module that registers it (with :func:`register_player_kind`) and the factory imports that
module the first time the kind is built — the way transformers' auto classes find model code.

A kind's builder is ``builder(factory, spec, username, wrap, kwargs) -> Player``: ``wrap`` is a
class decorator the caller wants applied to the player class before it is instantiated (e.g.
:func:`metamon.data.recording.recording_player`), ``kwargs`` extra constructor arguments for
that class. Builders keep per-factory resources (a loaded agent and its shared inference
engine) with :meth:`PlayerFactory.shared`; :meth:`PlayerFactory.close` releases them.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Union

from poke_env.player import Player

from metamon.errors import MetamonError, UnknownNameError
from metamon.teams import get_metamon_teams

__all__ = [
    "KIND_PROVIDERS",
    "PlayerFactory",
    "PlayerSpec",
    "check_spec",
    "register_player_kind",
    "resolve_spec",
]

#: kind -> module that registers its builder when imported.
KIND_PROVIDERS: Dict[str, str] = {
    "baseline": "metamon.baselines",
    "class": "metamon.baselines",
    "eps": "metamon.baselines",
    "run": "metamon.rl.spec_players",
    "pretrained": "metamon.rl.pretrained",
}
_BUILDERS: Dict[str, Callable] = {}
_CHECKS: Dict[str, Callable] = {}
_EPOCH = re.compile(r"^(?P<target>.*)@(?P<epoch>\d+)$")


def register_player_kind(kind: str, builder: Callable, check: Optional[Callable] = None) -> None:
    """Register ``builder`` for specs of ``kind`` (see the module docstring for its signature)
    and, optionally, ``check(spec)``: raises a :class:`MetamonError` naming what is wrong with a
    spec (unknown name, missing run or epoch) without building anything."""
    _BUILDERS[kind] = builder
    if check is not None:
        _CHECKS[kind] = check


#: kinds that may claim a bare name no baseline has, tried in order: metamon's scripts name a
#: published model bare (``--model SyntheticRLV2``), which means ``pretrained:SyntheticRLV2``
BARE_NAME_KINDS = ("pretrained",)


def resolve_spec(spec: Union[str, "PlayerSpec", type]) -> "PlayerSpec":
    """:meth:`PlayerSpec.parse`, then a bare name that no baseline has but a kind of
    :data:`BARE_NAME_KINDS` knows (``"SyntheticRLV2"``, ``"SyntheticRLV2@48"``) becomes that
    kind's spec. Any other spec is returned as parsed (:func:`check_spec` names what is wrong)."""
    spec = PlayerSpec.parse(spec)
    if spec.kind != "baseline" or not _unknown(spec):
        return spec
    for kind in BARE_NAME_KINDS:
        claimed = PlayerSpec.parse(f"{kind}:{spec.target}")
        if not _unknown(claimed):
            return claimed
    return spec


def _unknown(spec: "PlayerSpec") -> bool:
    """Whether ``spec``'s kind rejects it (or cannot be loaded here)."""
    try:
        _builder(spec.kind)
        if spec.kind in _CHECKS:
            _CHECKS[spec.kind](spec)
    except MetamonError:
        return True
    return False


def check_spec(spec: Union[str, "PlayerSpec", type]) -> "PlayerSpec":
    """Parse ``spec`` (:func:`resolve_spec`) and check that it names something that exists
    (before servers start)."""
    spec = resolve_spec(spec)
    _builder(spec.kind)
    if spec.kind in _CHECKS:
        _CHECKS[spec.kind](spec)
    return spec


def _builder(kind: str) -> Callable:
    """The builder of ``kind``, importing the module that provides it on first use."""
    if kind not in _BUILDERS:
        if kind not in KIND_PROVIDERS:
            raise UnknownNameError("player kind", kind, KIND_PROVIDERS)
        try:
            importlib.import_module(KIND_PROVIDERS[kind])
        except ModuleNotFoundError as error:
            raise MetamonError(
                f"player kind {kind!r} needs {KIND_PROVIDERS[kind]}, which cannot be imported here: {error}"
            ) from error
    if kind not in _BUILDERS:
        raise MetamonError(f"{KIND_PROVIDERS[kind]} does not register the player kind {kind!r}")
    return _BUILDERS[kind]


@dataclass(frozen=True)
class PlayerSpec:
    """A parsed player name: ``kind`` (one of :data:`KIND_PROVIDERS`), ``target`` (baseline
    name, dotted class path, run directory or registry name), ``epoch`` (runs and registry
    models; None: the latest / the default) and, for a class given as an object, the class."""

    kind: str
    target: str
    epoch: Optional[int] = None
    player_class: Optional[type] = None

    @classmethod
    def parse(cls, spec: Union[str, "PlayerSpec", type]) -> "PlayerSpec":
        """Read a spec string (forms in the module docstring), a PlayerSpec or a Player class."""
        if isinstance(spec, PlayerSpec):
            return spec
        if isinstance(spec, type):
            if not issubclass(spec, Player):
                raise MetamonError(f"player spec {spec!r} is a class but not a poke-env Player subclass")
            return cls("class", f"{spec.__module__}.{spec.__qualname__}", player_class=spec)
        if not isinstance(spec, str) or not spec.strip():
            raise MetamonError(f"player spec must be a non-empty string or a Player class, got {spec!r}")
        spec = spec.strip()
        kind, sep, rest = spec.partition(":")
        if not sep or kind not in KIND_PROVIDERS:
            kind, rest = ("class" if "." in spec else "baseline"), spec
        epoch = None
        if kind in ("run", "pretrained"):
            match = _EPOCH.match(rest)
            if match:
                rest, epoch = match["target"], int(match["epoch"])
        if not rest:
            raise MetamonError(f"player spec {spec!r} names no {kind}")
        return cls(kind, rest, epoch)

    def __str__(self) -> str:
        if self.kind == "baseline":
            return self.target
        at = "" if self.epoch is None else f"@{self.epoch}"
        return f"{self.kind}:{self.target}{at}"

    @property
    def label(self) -> str:
        """A short display name: the baseline or class name, or the run folder's name (+@epoch)."""
        name = re.split(r"[/\\.]", self.target.rstrip("/\\"))[-1] or self.target
        return name if self.epoch is None else f"{name}@{self.epoch}"


class PlayerFactory:
    """Builds players from specs for one battle format, server and team set.

    Args:
        battle_format: the Showdown format every player plays.
        server_configuration: poke-env ``ServerConfiguration`` (None: poke-env's default).
        team_set: the team set each player draws its teams from (its own
            :func:`metamon.teams.get_metamon_teams` instance; none in random-battle formats).
        team: instead of ``team_set``, one team / teambuilder object every player uses.
        max_concurrent_battles: battles each player plays at once.
        sample: trained policies sample their actions (True) or take the most likely one.
        device: where trained agents run ("cpu", "cuda").
    """

    def __init__(
        self,
        battle_format: str,
        *,
        server_configuration=None,
        team_set: Optional[str] = "builtin",
        team=None,
        max_concurrent_battles: int = 10,
        sample: bool = True,
        device: str = "cpu",
    ):
        self.battle_format = battle_format
        self.server_configuration = server_configuration
        self.team_set = team_set
        self._team = team
        self.max_concurrent_battles = max_concurrent_battles
        self.sample = sample
        self.device = device
        self._shared: Dict[Any, tuple] = {}

    def build(
        self,
        spec: Union[str, PlayerSpec, type],
        *,
        username: Optional[str] = None,
        wrap: Optional[Callable[[type], type]] = None,
        **kwargs,
    ) -> Player:
        """The Player ``spec`` names, logged in as ``username`` (default: a unique name from
        the spec's label); ``wrap`` decorates its class, ``kwargs`` go to its constructor
        (e.g. ``seed``, ``save_trajectories_to`` for a recording wrapper)."""
        spec = resolve_spec(spec)
        return _builder(spec.kind)(self, spec, username, wrap, kwargs)

    @property
    def team(self):
        """The team (set) for the next player: the shared ``team`` object, else a fresh instance
        of ``team_set`` (``None`` in random-battle formats or without either)."""
        if self._team is not None or self.team_set is None:
            return self._team
        return get_metamon_teams(self.battle_format, self.team_set)

    def shared(self, key, create: Callable[[], Any], release: Optional[Callable[[Any], None]] = None):
        """The resource stored under ``key``, created by ``create()`` on first use; ``release``
        is called on it by :meth:`close`."""
        if key not in self._shared:
            self._shared[key] = (create(), release)
        return self._shared[key][0]

    def close(self) -> None:
        """Release the shared resources (e.g. stop inference threads). Players are closed by
        their owner (:func:`metamon.battles.close_players`)."""
        shared, self._shared = self._shared, {}
        for value, release in reversed(list(shared.values())):
            if release is not None:
                release(value)

    def __enter__(self) -> "PlayerFactory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The ``PAC-`` observation spaces: metamon's PokéAgent-Challenge tera patch.

The PokéAgent battle backend never reported the player's own tera types, so the checkpoints
trained on it (SmallRLGen9Beta, Abra, Minikazam, Kadabra2-4) always saw ``notype`` there. A
``PAC-`` space reproduces that: before the wrapped space encodes a state, the tera type of the
player's active Pokémon and of every available switch is replaced by ``notype``. The
opponent's active Pokémon keeps its tera type, and every shape (words, numbers, gym space,
``tokenizable``) is the wrapped space's.

Registered names (metamon's)::

    PAC-ExpandedObservationSpace      -> PACExpandedObservationSpace
    PAC-TeamPreviewObservationSpace   -> PACTeamPreviewObservationSpace
    PAC-OpponentMoveObservationSpace  -> PACOpponentMoveObservationSpace

The wrapper itself, :class:`PatchPokeAgentTeraBug`, takes the space to wrap and is not
registered (a registry entry is built without arguments). The input state is never modified:
the patched Pokémon are copies. An unchanged switch Pokémon (the same object as in the previous
state) keeps the same patched copy, so the wrapped space's per-switch word cache still applies.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from gymnasium import spaces

from metamon.interface.observations import (
    ExpandedObservationSpace,
    ObservationSpace,
    OpponentMoveObservationSpace,
    TeamPreviewObservationSpace,
)
from metamon.interface.records import UniversalPokemon, UniversalState
from metamon.interface.registry import register_observation_space

__all__ = [
    "PatchPokeAgentTeraBug",
    "PACExpandedObservationSpace",
    "PACTeamPreviewObservationSpace",
    "PACOpponentMoveObservationSpace",
]

NO_TERA = "notype"


class PatchPokeAgentTeraBug(ObservationSpace):
    """``base_obs_space`` observing states whose player-side tera types read ``notype``."""

    def __init__(self, base_obs_space: ObservationSpace):
        self.base_obs_space = base_obs_space
        super().__init__()

    def reset(self) -> None:
        # id -> (original switch Pokémon, its patched copy) for the last state's switches
        self._patched_seen: dict[int, tuple[UniversalPokemon, UniversalPokemon]] = {}
        self.base_obs_space.reset()

    @property
    def tokenizable(self) -> dict[str, int]:
        return self.base_obs_space.tokenizable

    @property
    def gym_space(self) -> spaces.Dict:
        return self.base_obs_space.gym_space

    def _patched_switch(self, pokemon: UniversalPokemon) -> UniversalPokemon:
        if pokemon.tera_type == NO_TERA:
            return pokemon
        entry = self._patched_seen.get(id(pokemon))
        if entry is None or entry[0] is not pokemon:
            entry = (pokemon, dataclasses.replace(pokemon, tera_type=NO_TERA))
        return entry[1]

    def patch(self, state: UniversalState) -> UniversalState:
        """A copy of ``state`` with the player's active and switch tera types set to ``notype``."""
        switches = []
        seen = {}
        for pokemon in state.available_switches:
            patched = self._patched_switch(pokemon)
            if patched is not pokemon:
                seen[id(pokemon)] = (pokemon, patched)
            switches.append(patched)
        self._patched_seen = seen
        active = state.player_active_pokemon
        if active.tera_type != NO_TERA:
            active = dataclasses.replace(active, tera_type=NO_TERA)
        return dataclasses.replace(state, player_active_pokemon=active, available_switches=switches)

    def state_to_obs(self, state: UniversalState) -> dict[str, np.ndarray]:
        return self.base_obs_space.state_to_obs(self.patch(state))

    def state_to_words(self, state: UniversalState) -> dict:
        return self.base_obs_space.state_to_words(self.patch(state))


@register_observation_space(name="PAC-ExpandedObservationSpace")
class PACExpandedObservationSpace(PatchPokeAgentTeraBug):
    """:class:`ExpandedObservationSpace` with the player's tera types read as ``notype``."""

    def __init__(self):
        super().__init__(ExpandedObservationSpace())


@register_observation_space(name="PAC-TeamPreviewObservationSpace")
class PACTeamPreviewObservationSpace(PatchPokeAgentTeraBug):
    """:class:`TeamPreviewObservationSpace` with the player's tera types read as ``notype``."""

    def __init__(self):
        super().__init__(TeamPreviewObservationSpace())


@register_observation_space(name="PAC-OpponentMoveObservationSpace")
class PACOpponentMoveObservationSpace(PatchPokeAgentTeraBug):
    """:class:`OpponentMoveObservationSpace` with the player's tera types read as ``notype``."""

    def __init__(self):
        super().__init__(OpponentMoveObservationSpace())

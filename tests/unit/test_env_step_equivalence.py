"""The env step's faster paths give what the plain ones give, on real poke-env 0.16.1 battles.

* ``UniversalPokemon.from_Pokemon`` equals the record read field by field from poke-env's
  properties (the plain reading it replaced);
* ``legal_orders`` holds exactly the indices ``action_idx_to_BattleOrder`` gives an order for,
  each with that order;
* ``decide`` given the ``legal_orders`` dict plays what it plays given the plain index set.
"""

import numpy as np
import pytest
from poke_env.battle import Pokemon

from metamon.interface import (
    DefaultActionSpace,
    MinimalActionSpace,
    UniversalMove,
    UniversalPokemon,
    UniversalState,
    action_idx_to_BattleOrder,
    decide,
    definitely_valid_actions,
    legal_orders,
    maybe_valid_actions,
)
from metamon.names import clean_name, clean_no_numbers, pokemon_name

from _battle_builders import (
    gen1_example_battle,
    gen9_battle,
    gen9_battle_with_request,
    gen9_side,
    gen9_tera_battle,
    request,
)


def _battles():
    forced = gen9_battle()
    forced.parse_request(request(gen9_side(fainted=["Great Tusk"]), force_switch=True))
    return [
        gen1_example_battle(),
        gen9_battle(),
        gen9_battle_with_request(),
        gen9_battle_with_request(can_tera=False, disabled=["knockoff"], trapped=True),
        gen9_tera_battle(),
        forced,
    ]


def _word(value, empty: str) -> str:
    return empty if value is None else clean_no_numbers(value)


def _plain_pokemon(p: Pokemon) -> UniversalPokemon:
    """The record read property by property, without any of from_Pokemon's shortcuts."""
    types = sorted(["notype" if t is None else clean_name(t.name) for t in (list(p.types) + [None] * 2)[:2]])
    item = {None: "unknownitem", "unknown_item": "unknownitem", "": "noitem"}.get(p.item)
    ability = {None: "unknownability", "unknown_ability": "unknownability", "": "noability"}.get(p.ability)
    return UniversalPokemon(
        name=pokemon_name(p.species),
        hp_pct=float(p.current_hp_fraction),
        types=" ".join(types),
        item=item or _word(p.item, "unknownitem"),
        ability="noability" if p.gen <= 2 else ability or _word(p.ability, "unknownability"),
        lvl=int(p.level),
        status="nostatus" if p.status is None else clean_no_numbers(p.status.name),
        effect=clean_no_numbers(min(p.effects, key=p.effects.get).name) if p.effects else "noeffect",
        moves=[UniversalMove.from_Move(m) for m in list(p.moves.values())[:4]],
        **{f"{k}_boost": int(p.boosts[k]) for k in ("atk", "spa", "def", "spd", "spe", "accuracy", "evasion")},
        **{f"base_{k}": int(p.base_stats[k]) for k in ("atk", "spa", "def", "spd", "spe", "hp")},
        tera_type="notype" if p.tera_type is None else clean_name(p.tera_type.name),
        base_species=pokemon_name(p.base_species),
    )


def test_from_pokemon_equals_the_plain_reading():
    checked = 0
    for battle in _battles():
        for p in [*battle.team.values(), *battle.opponent_team.values(), *battle.teampreview_opponent_team]:
            if p is None:
                continue
            assert UniversalPokemon.from_Pokemon(p) == _plain_pokemon(p), p.species
            checked += 1
    assert checked >= 30


def _states_and_battles():
    out = []
    for battle in _battles():
        if battle.active_pokemon is not None and battle.opponent_active_pokemon is not None:
            out.append((UniversalState.from_Battle(battle), battle))
    return out


def test_legal_orders_are_the_orders_of_each_legal_index():
    pairs = _states_and_battles()
    assert len(pairs) == 6
    for state, battle in pairs:
        orders = legal_orders(state, battle)
        plain = {i: action_idx_to_BattleOrder(battle, i) for i in range(13)}
        with_order = {i for i in maybe_valid_actions(state) if plain[i] is not None}
        assert set(orders) == with_order == definitely_valid_actions(state, battle)
        assert list(orders) == sorted(orders)
        assert all(order == plain[i] and order.message == plain[i].message for i, order in orders.items())


@pytest.mark.parametrize("action_space", [DefaultActionSpace(), MinimalActionSpace()])
def test_decide_with_the_orders_plays_what_it_plays_with_the_index_set(action_space):
    for state, battle in _states_and_battles():
        orders = legal_orders(state, battle)
        for action in [None, *range(action_space.gym_space.n)]:
            seed = 0 if action is None else action
            with_orders = decide(battle, state, action_space, action, np.random.default_rng(seed), orders)
            with_set = decide(battle, state, action_space, action, np.random.default_rng(seed), set(orders))
            by_default = decide(battle, state, action_space, action, np.random.default_rng(seed))
            for chosen in (with_orders, by_default):
                assert (chosen.order.message, chosen.action_index, chosen.invalid) == (
                    with_set.order.message, with_set.action_index, with_set.invalid)

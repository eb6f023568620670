"""metamon.interface.decision (the decision step shared by env, player and dataset) on real
poke-env 0.16.1 battles built from protocol lines and request JSON (no mocks)."""

import random

import numpy as np
import pytest

from metamon.interface import (
    ChosenOrder,
    DefaultActionSpace,
    MinimalActionSpace,
    UniversalState,
    action_idx_to_BattleOrder,
    battle_order_to_action_idx,
    decide,
    definitely_valid_actions,
    legal_actions,
    legal_agent_actions,
    maybe_valid_actions,
    request_id,
)

from _battle_builders import gen9_battle, gen9_battle_with_request, gen9_side, request

# Great Tusk's moves in consistent_move_order: 0 headlongrush, 1 icespinner, 2 knockoff,
# 3 rapidspin; switches 4 Dragapult, 5 Iron Valiant, 6 Kingambit, 7 Rotom, 8 Ting-Lu.


def _state(battle):
    return UniversalState.from_Battle(battle)


def _forced_switch_battle():
    battle = gen9_battle()
    battle.parse_request(request(gen9_side(fainted=["Great Tusk"]), force_switch=True))
    return battle


def test_request_id_reads_the_last_request():
    assert request_id(gen9_battle_with_request()) == 3
    assert request_id(gen9_battle()) is None  # no request yet


def test_legal_actions_online_and_offline():
    battle = gen9_battle_with_request(disabled=["knockoff"], trapped=True)
    state = _state(battle)
    assert legal_actions(state, battle) == definitely_valid_actions(state, battle) == {0, 1, 3, 9, 10, 12}
    assert legal_actions(state) == maybe_valid_actions(state) == set(range(13))


def test_legal_agent_actions_map_into_the_action_space():
    battle = gen9_battle_with_request(can_tera=True, disabled=["knockoff"])
    state = _state(battle)
    legal = legal_actions(state, battle)
    assert legal_agent_actions(state, DefaultActionSpace(), legal) == legal
    # MinimalActionSpace folds the tera slots 9-12 onto 0-3: tera knockoff (11) is illegal too
    assert legal_agent_actions(state, MinimalActionSpace(), legal) == set(range(9)) - {2}
    # without ``legal``: the offline judgement of the state alone (what the dataset uses)
    assert legal_agent_actions(state, DefaultActionSpace()) == set(range(13))
    assert all(type(a) is int for a in legal_agent_actions(state, MinimalActionSpace()))


@pytest.mark.parametrize("agent_action,message", [
    (2, "/choose move knockoff"),
    (np.int64(7), "/choose switch Rotom"),
    (11, "/choose move knockoff terastallize"),
])
def test_legal_choice_is_played(agent_action, message):
    battle = gen9_battle_with_request(can_tera=True)
    rng = random.Random(0)
    choice = decide(battle, _state(battle), DefaultActionSpace(), agent_action, rng)
    assert isinstance(choice, ChosenOrder)
    assert (choice.order.message, choice.action_index, choice.invalid) == (message, int(agent_action), False)
    assert rng.getstate() == random.Random(0).getstate()  # no draw for a legal choice


def test_minimal_action_space_plays_the_plain_move():
    battle = gen9_battle_with_request(can_tera=True)
    choice = decide(battle, _state(battle), MinimalActionSpace(), 3, random.Random(0))
    assert (choice.order.message, choice.action_index, choice.invalid) == ("/choose move rapidspin", 3, False)


@pytest.mark.parametrize("make_battle,agent_action", [
    (lambda: gen9_battle_with_request(disabled=["knockoff"]), 2),  # disabled move
    (lambda: gen9_battle_with_request(trapped=True), 5),  # switch while trapped
    (lambda: gen9_battle_with_request(can_tera=False), 9),  # tera without can_tera
    (_forced_switch_battle, 0),  # move during a forced switch
    (lambda: gen9_battle_with_request(), None),  # no choice at all (e.g. the model failed)
])
@pytest.mark.parametrize("make_rng", [random.Random, np.random.default_rng], ids=["random", "numpy"])
def test_illegal_choice_falls_back_to_a_random_legal_index(make_battle, agent_action, make_rng):
    battle = make_battle()
    state = _state(battle)
    legal = definitely_valid_actions(state, battle)
    choice = decide(battle, state, DefaultActionSpace(), agent_action, make_rng(5))
    expected = int(make_rng(5).choice(sorted(legal)))  # the same draw from the same seed
    assert choice.invalid and choice.action_index == expected and type(choice.action_index) is int
    assert choice.order.message == action_idx_to_BattleOrder(battle, expected).message


def test_fallback_draws_only_among_legal_indices():
    battle = gen9_battle_with_request(disabled=["knockoff"], trapped=True)
    state = _state(battle)
    rng = random.Random(1)
    drawn = {decide(battle, state, DefaultActionSpace(), 6, rng).action_index for _ in range(200)}
    assert drawn == legal_actions(state, battle)


def test_given_legal_set_is_used_as_is():
    battle = gen9_battle_with_request()
    state = _state(battle)
    # an index outside the given set is a fallback even though the battle would accept it
    choice = decide(battle, state, DefaultActionSpace(), 0, random.Random(0), legal={1})
    assert (choice.order.message, choice.action_index, choice.invalid) == ("/choose move icespinner", 1, True)


def test_nothing_expressible_lets_poke_env_choose():
    battle = gen9_battle_with_request()
    choice = decide(battle, _state(battle), DefaultActionSpace(), 0, random.Random(0), legal=set())
    assert choice.invalid
    assert choice.action_index == battle_order_to_action_idx(battle, choice.order)
    assert choice.order.message in {order.message for order in battle.valid_orders}


@pytest.mark.parametrize("bad_output", [13, -2, 2.5, "1"])
def test_unmappable_agent_output_raises(bad_output):
    battle = gen9_battle_with_request()
    with pytest.raises(ValueError):
        decide(battle, _state(battle), DefaultActionSpace(), bad_output, random.Random(0))

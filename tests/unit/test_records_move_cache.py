"""UniversalMove.from_Move computes a poke-env move's fixed fields once per Move object: the
result is the same as reading every property each time, current PP is always read fresh, and
moves that share an id but not their construction (hidden power's power, a transformed copy's
PP) are not confused."""

from poke_env.battle import Move

import metamon.interface.records as records
from metamon.interface import UniversalMove, UniversalState
from metamon.names import clean_name, move_name

from _battle_builders import gen1_example_battle, gen9_battle, gen9_battle_with_request


def uncached(move: Move) -> UniversalMove:
    return UniversalMove(move_name(move.id), clean_name(move.type.name), clean_name(move.category.name),
                         int(move.base_power), float(move.accuracy), int(move.priority), int(move.current_pp),
                         int(move.max_pp))


def test_same_fields_and_fresh_pp():
    move = Move("thunderbolt", 9)
    first = UniversalMove.from_Move(move)
    assert first == uncached(move) and first.current_pp == 24
    move.use()
    move.use(pressure=True)
    again = UniversalMove.from_Move(move)
    assert again == uncached(move) and again.current_pp == 21 and again is not first


def test_moves_with_one_id_but_different_construction():
    weak = Move("hiddenpower", 3, raw_id="hiddenpowerfire60")
    strong = Move("hiddenpower", 3, raw_id="hiddenpowerfire70")
    assert weak.id == strong.id
    assert [UniversalMove.from_Move(m).base_power for m in (weak, strong, weak)] == [60, 70, 60]
    copied, plain = Move("tackle", 9, from_transform=True), Move("tackle", 9)
    assert [UniversalMove.from_Move(m).max_pp for m in (copied, plain)] == [5, 56]


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(records, "_MOVE_FIELDS_LIMIT", 3)
    records._MOVE_FIELDS.clear()
    moves = [Move(name, 9) for name in ("tackle", "surf", "earthquake", "psychic", "icebeam")]
    for move in moves:
        assert UniversalMove.from_Move(move) == uncached(move)
        assert len(records._MOVE_FIELDS) <= 3


def test_states_from_battles_are_unchanged():
    checked = 0
    for battle in (gen1_example_battle(), gen9_battle(), gen9_battle_with_request()):
        records._MOVE_FIELDS.clear()
        cold = UniversalState.from_Battle(battle)
        warm = UniversalState.from_Battle(battle)  # every move served from the cache
        assert cold == warm
        pokemon = [battle.active_pokemon, battle.opponent_active_pokemon, *battle.team.values()]
        moves = [m for p in pokemon for m in p.moves.values()]
        assert all(UniversalMove.from_Move(m) == uncached(m) for m in moves)
        checked += len(moves)
    assert checked >= 8

"""ε-random players (metamon.baselines.epsilon) and the ``eps`` player kind, without a server:
decisions on a real gen1ou poke-env battle built from protocol lines and request JSON."""

from __future__ import annotations

from collections import Counter

import pytest

from metamon.baselines import GymLeader
from metamon.baselines.epsilon import epsilon_random_player, parse_epsilon_target
from metamon.battles import PlayerFactory, PlayerSpec, check_spec
from metamon.data.recording import recording_player
from metamon.errors import MetamonError

from _battle_builders import active_request, gen1_example_battle, request, request_pokemon


def battle_with_six_orders():
    """Alakazam active (4 moves), Starmie and Chansey on the bench: 6 legal orders."""
    battle = gen1_example_battle()
    side = [
        request_pokemon("Alakazam", "Alakazam", "100/100", True,
                        ["psychic", "recover", "thunderwave", "seismictoss"]),
        request_pokemon("Starmie", "Starmie", "100/100", False, ["surf", "blizzard"]),
        request_pokemon("Chansey", "Chansey", "100/100", False, ["surf", "blizzard"]),
    ]
    moves = [("psychic", 16, 16), ("recover", 32, 32), ("thunderwave", 32, 32), ("seismictoss", 32, 32)]
    battle.parse_request(request(side, active=active_request(moves)))
    assert len(battle.valid_orders) == 6
    return battle


def make(epsilon, seed=7, cls=GymLeader):
    return epsilon_random_player(cls, epsilon)(
        battle_format="gen1ou", start_listening=False, seed=0, epsilon_seed=seed)


def test_random_orders_with_probability_epsilon_seeded_and_legal():
    battle = battle_with_six_orders()
    legal = {o.message for o in battle.valid_orders}
    player = make(0.3)
    choices = [player.choose_move(battle).message for _ in range(3000)]
    assert player.n_epsilon_draws == 3000
    rate = player.n_random_orders / player.n_epsilon_draws
    assert abs(rate - 0.3) < 0.03  # binomial sd 0.0084
    assert set(choices) <= legal
    assert player.n_fallbacks == 0  # the wrapped GymLeader decided the rest
    again = make(0.3)
    assert [again.choose_move(battle).message for _ in range(3000)] == choices  # seeded
    assert type(player).__name__ == "EpsilonGymLeader" and isinstance(player, GymLeader)


def test_epsilon_zero_is_the_wrapped_player_and_one_is_uniform():
    battle = battle_with_six_orders()
    plain = GymLeader(battle_format="gen1ou", start_listening=False, seed=0)
    never = make(0.0)
    assert [never.choose_move(battle).message for _ in range(50)] == [
        plain.choose_move(battle).message for _ in range(50)]
    assert never.n_random_orders == 0
    always = make(1.0)
    counts = Counter(always.choose_move(battle).message for _ in range(6000))
    assert len(counts) == 6 and all(abs(c / 6000 - 1 / 6) < 0.03 for c in counts.values())


def test_eps_spec_parses_checks_and_builds():
    spec = PlayerSpec.parse("eps:0.3:GymLeader")
    assert (spec.kind, spec.target) == ("eps", "0.3:GymLeader")
    assert parse_epsilon_target(spec.target) == (0.3, "GymLeader")
    check_spec("eps:0.5:poke_env.player.RandomPlayer")
    for bad in ("eps:1.5:GymLeader", "eps:x:GymLeader", "eps:0.3", "eps:0.3:"):
        with pytest.raises(MetamonError, match="EPSILON"):
            check_spec(bad)
    with pytest.raises(MetamonError, match="NoSuchBaseline"):
        check_spec("eps:0.3:NoSuchBaseline")
    factory = PlayerFactory("gen1ou", team_set="builtin")
    player = factory.build("eps:0.25:GymLeader", wrap=recording_player, start_listening=False,
                           seed=11, save_trajectories_to="unused")
    assert player.epsilon == 0.25 and isinstance(player, GymLeader)
    # the recording wrapper is outermost, so it records the order the ε player actually played
    assert type(player).__mro__[1].__name__ == "EpsilonGymLeader"
    assert player.username.startswith("epsGymLe")

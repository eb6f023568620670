"""Unit tests of metamon.baselines (no server): the battle arithmetic, the registry, the
compete helpers and every baseline's decision on REAL poke-env 0.16.1 battles built from
Showdown protocol lines (``Battle.parse_message``) and request JSON (``Battle.parse_request``).
"""

from __future__ import annotations

import logging
import math
from typing import Optional, Sequence

import pytest
from poke_env.battle import Battle, Move, Pokemon, PokemonType
from poke_env.data import GenData
from poke_env.player import DefaultBattleOrder, RandomPlayer, SimpleHeuristicsPlayer

import metamon.baselines.registry as registry
from metamon.baselines import (
    HEURISTIC_COMPOSITE_BASELINES,
    BasicSwitcher,
    BugCatcher,
    EmeraldKaizo,
    Gen1BossAI,
    Gen1Trainer,
    Gen1TrainerGoodSwitching,
    Grunt,
    GymLeader,
    MaxBPBaseline,
    PokeEnvHeuristic,
    RandomBaseline,
    base,
    get_all_baseline_names,
    get_baseline,
    register_baseline,
)
from metamon.baselines.base import Baseline
from metamon.baselines.compete import main as compete_main
from metamon.battles import BattleResult, summarize
from metamon.errors import MetamonError, UnknownNameError
from metamon.server import find_free_port, unique_username
from metamon.stats import wilson_interval

# ------------------------------------------------------------------------------------------
# Building real battles
# ------------------------------------------------------------------------------------------
ME, RIVAL = "tester", "rival"


def own(
    species: str,
    moves: Sequence[str],
    *,
    level: int = 50,
    hp: float = 1.0,
    status: str = "",
    stats: Optional[dict] = None,
    ability: str = "",
    item: str = "",
    gen: int = 9,
) -> dict:
    """A team member; stats default to the "uniform" estimate so numbers are predictable."""
    data = GenData.from_gen(gen).pokedex[species]
    name = data["name"]
    base_stats = data["baseStats"]
    if stats is None:
        stats = {
            s: base.estimate_stat(base_stats[s], s, level, gen) for s in ("atk", "def", "spa", "spd", "spe")
        }
    max_hp = base.estimate_stat(base_stats["hp"], "hp", level, gen)
    current = math.ceil(hp * max_hp)
    condition = "0 fnt" if hp == 0 else f"{current}/{max_hp}" + (f" {status}" if status else "")
    return dict(
        name=name,
        moves=list(moves),
        level=level,
        condition=condition,
        stats=stats,
        ability=ability,
        item=item,
    )


def make_battle(
    gen: int,
    team: Sequence[dict],
    opponent: str,
    *,
    opp_level: int = 50,
    opp_hp: str = "100/100",
    fmt: Optional[str] = None,
    messages: Sequence[str] = (),
    force_switch: bool = False,
    trapped: bool = False,
    can_tera: bool = False,
    disabled: Sequence[str] = (),
) -> Battle:
    """A battle where we (p1) have ``team`` (first = active) and the opponent (p2) has just
    sent out ``opponent``; ``messages`` are extra protocol lines fed before the request."""
    fmt = fmt or f"gen{gen}ou"
    battle = Battle(f"battle-{fmt}-1", ME, logging.getLogger("test-baselines"), gen=gen)
    opp_name = GenData.from_gen(gen).pokedex[opponent]["name"]
    active = team[0]
    lines = [
        f"|player|p1|{ME}|1|",
        f"|player|p2|{RIVAL}|2|",
        f"|teamsize|p1|{len(team)}",
        "|teamsize|p2|6",
        f"|gen|{gen}",
        "|start",
        f"|switch|p1a: {active['name']}|{active['name']}, L{active['level']}|{active['condition']}",
        f"|switch|p2a: {opp_name}|{opp_name}, L{opp_level}|{opp_hp}",
        *messages,
        "|turn|1",
    ]
    for line in lines:
        battle.parse_message(line.split("|"))
    side = [
        {
            "ident": f"p1: {m['name']}",
            "details": f"{m['name']}, L{m['level']}",
            "condition": m["condition"],
            "active": i == 0,
            "stats": m["stats"],
            "moves": m["moves"],
            "baseAbility": m["ability"],
            "ability": m["ability"],
            "item": m["item"],
            "pokeball": "pokeball",
        }
        for i, m in enumerate(team)
    ]
    request = {"side": {"name": ME, "id": "p1", "pokemon": side}, "rqid": 2}
    if force_switch:
        request["forceSwitch"] = [True]
    else:
        moves = [
            {"move": m, "id": m, "pp": 8, "maxpp": 8, "target": "normal", "disabled": m in disabled}
            for m in active["moves"]
        ]
        entry = {"moves": moves}
        if trapped:
            entry["trapped"] = True
        if can_tera:
            entry["canTerastallize"] = "Electric"
        request["active"] = [entry]
    battle.parse_request(request)
    return battle


def player(cls, gen: int = 9, seed: int = 0, fmt: Optional[str] = None):
    return cls(battle_format=fmt or f"gen{gen}ou", start_listening=False, seed=seed)


def chosen(order) -> str:
    """The move id or species an order picks."""
    target = order.order
    return target.id if isinstance(target, Move) else target.species


PIKACHU = dict(species="pikachu", moves=["thunderbolt", "quickattack"])


# ------------------------------------------------------------------------------------------
# Battle arithmetic
# ------------------------------------------------------------------------------------------
def test_damage_equation_hand_computed():
    # floor(2*100/5 + 2) = 42;  floor(42 * 80 * 250 / 200) = 4200;  floor(4200 / 50) + 2 = 86
    # 86 * 0.925 (mean roll) * 1.5 (STAB) * 2 (super effective) = 238.65
    assert base.damage_equation(100, 80, 250, 200, stab=1.5, type_multiplier=2) == pytest.approx(238.65)
    # -2 Attack: A = 250 * 2/4 = 125 -> floor(42*80*125/200) = 2100 -> 42 + 2 = 44 (max roll)
    assert base.damage_equation(100, 80, 250, 200, attack_boost=-2, roll="max") == pytest.approx(44)
    # a gen-9 crit ignores the -2 and multiplies by 1.5: 86 * 1.5 = 129
    assert base.damage_equation(100, 80, 250, 200, attack_boost=-2, crit=True, roll="max") == pytest.approx(
        129
    )
    # a gen-1 crit ignores a +2 too and doubles: 86 * 2 = 172 (without crit: A = 500 -> 170)
    assert base.damage_equation(
        100, 80, 250, 200, gen=1, attack_boost=2, crit=True, roll="max"
    ) == pytest.approx(172)
    assert base.damage_equation(100, 80, 250, 200, gen=1, attack_boost=2, roll="max") == pytest.approx(170)
    # burn and Reflect halve each: 86 * 0.5 * 0.5 = 21.5; rain-boosted: 86 * 1.5 * 0.85 = 109.65
    assert base.damage_equation(100, 80, 250, 200, burned=True, screen=True, roll="max") == pytest.approx(
        21.5
    )
    assert base.damage_equation(100, 80, 250, 200, weather=1.5, roll="min") == pytest.approx(109.65)


def test_damage_equation_rejects_unknown_roll():
    with pytest.raises(ValueError, match="huge"):
        base.damage_equation(100, 80, 250, 200, roll="huge")


def test_type_advantage():
    assert base.type_advantage(PokemonType.ELECTRIC, [PokemonType.WATER, PokemonType.FLYING], 9) == 4
    assert base.type_advantage("ground", ["flying"], 1) == 0
    assert base.type_advantage("ghost", ["psychic"], 1) == 0  # the gen-1 bug
    assert base.type_advantage("ghost", ["psychic"], 2) == 2
    assert base.type_advantage("fire", ["grass", "steel"], 4) == 4
    assert base.type_advantage("dragon", ["fairy"], 9) == 0
    assert base.type_advantage("???", ["water"], 9) == 1
    assert base.type_advantage("water", ["stellar"], 9) == 1
    assert base.type_advantage("electric", Pokemon(gen=9, species="gyarados"), 9) == 4


def test_type_matchup_is_offence_minus_defence():
    squirtle, charmander = Pokemon(gen=9, species="squirtle"), Pokemon(gen=9, species="charmander")
    assert base.type_matchup(squirtle, charmander, 9) == 2 - 0.5
    assert base.type_matchup(charmander, squirtle, 9) == 0.5 - 2


def test_stage_and_accuracy_tables():
    assert [base.stage_multiplier(s) for s in (-6, -1, 0, 2, 6)] == [0.25, 2 / 3, 1, 2, 4]
    assert base.accuracy_multiplier(-1, 1) == 0.66
    assert base.accuracy_multiplier(1, 1) == 1.5
    assert base.accuracy_multiplier(-6, 1) == 0.25
    assert base.accuracy_multiplier(-6, 2) == 0.33
    assert base.accuracy_multiplier(5, 3) == 2.66
    assert base.accuracy_multiplier(2, 9) == pytest.approx(5 / 3)
    assert base.accuracy_multiplier(-6, 9) == pytest.approx(3 / 9)
    assert base.accuracy_multiplier(9, 9) == 3  # clamped to +6


def test_estimate_stat_formulas():
    # gen 1-2: floor(((base + 15) * 2 + 63) * L / 100) + 5 ; HP: ... + L + 10
    assert base.estimate_stat(110, "spe", 100, 1) == 318  # Tauros
    assert base.estimate_stat(250, "hp", 100, 1) == 703  # Chansey
    # gen 3+: floor((2 * base + 31 + EV // 4) * L / 100) + 5 ; HP: ... + L + 10
    assert base.estimate_stat(102, "spe", 100, 9, "best") == 303  # Garchomp, 252 EVs
    assert base.estimate_stat(102, "spe", 100, 9, "worst") == 240
    assert base.estimate_stat(102, "spe", 100, 9, "uniform") == 261
    assert base.estimate_stat(102, "spe", 50, 9, "best") == 154
    assert base.estimate_stat(255, "hp", 100, 4, "best") == 714  # Blissey
    with pytest.raises(ValueError, match="spread"):
        base.estimate_stat(100, "atk", 100, 9, "max")


def test_crit_chance_by_generation():
    tauros, persian = Pokemon(gen=1, species="tauros"), Pokemon(gen=1, species="persian")
    assert base.crit_chance(Move("bodyslam", gen=1), tauros, 1) == 55 / 256  # floor(110 / 2) / 256
    assert base.crit_chance(Move("bodyslam", gen=1), persian, 1) == 57 / 256  # floor(115 / 2)
    assert base.crit_chance(Move("slash", gen=1), persian, 1) == 255 / 256  # min(8 * 57, 255)
    assert base.crit_chance(Move("slash", gen=1), Pokemon(gen=1, species="slowbro"), 1) == 120 / 256
    assert base.crit_chance(Move("tackle", gen=2), Pokemon(gen=2, species="tauros"), 2) == 17 / 256
    # gen-2 data gives high-crit moves critRatio 3: stage 2 -> 64/256
    assert base.crit_chance(Move("slash", gen=2), Pokemon(gen=2, species="tauros"), 2) == 1 / 4
    assert base.crit_chance(Move("tackle", gen=4), Pokemon(gen=4, species="tauros"), 4) == 1 / 16
    assert base.crit_chance(Move("tackle", gen=9), Pokemon(gen=9, species="tauros"), 9) == 1 / 24
    assert base.crit_chance(Move("stoneedge", gen=9), Pokemon(gen=9, species="tauros"), 9) == 1 / 8
    assert base.crit_chance(Move("frostbreath", gen=9), Pokemon(gen=9, species="tauros"), 9) == 1.0
    assert base.crit_multiplier(5) == 2 and base.crit_multiplier(6) == 1.5


def test_current_accuracy():
    attacker, target = Pokemon(gen=9, species="tauros"), Pokemon(gen=9, species="snorlax")
    assert base.current_accuracy(Move("thunderbolt", gen=1), attacker, target, 1) == 255 / 256
    assert base.current_accuracy(Move("swift", gen=1), attacker, target, 1) == 1.0
    attacker.boost("accuracy", -1)
    assert base.current_accuracy(Move("hydropump", gen=9), attacker, target, 9) == pytest.approx(0.8 * 3 / 4)
    target.boost("evasion", 1)  # net -2 in gen 9: 3/5
    assert base.current_accuracy(Move("hydropump", gen=9), attacker, target, 9) == pytest.approx(0.8 * 3 / 5)
    # gen 2 applies the two stages separately: 0.8 * 0.75 * 0.75
    assert base.current_accuracy(Move("hydropump", gen=2), attacker, target, 2) == pytest.approx(
        0.8 * 0.75 * 0.75
    )


def test_move_damage_with_estimated_opponent_stats():
    battle = make_battle(
        4, [own(**PIKACHU, stats={"atk": 60, "def": 45, "spa": 55, "spd": 55, "spe": 95}, gen=4)], "gyarados"
    )
    pikachu, gyarados = battle.active_pokemon, battle.opponent_active_pokemon
    # Gyarados L50, uniform spread: SpD = floor((200 + 31 + 21) * 0.5) + 5 = 131,
    # HP = floor((190 + 31 + 21) * 0.5) + 60 = 181. Thunderbolt (95 bp, gen 4) from SpA 55:
    # floor(22 * 95 * 55 / 131) = 877 -> floor(877 / 50) + 2 = 19 -> 19 * 0.925 * 1.5 * 4 = 105.45
    assert base.pokemon_stat(battle, gyarados, "spd") == 131
    assert base.pokemon_stat(battle, gyarados, "hp") == 181
    assert base.pokemon_stat(battle, pikachu, "spa") == 55  # ours: the request's exact stat
    tbolt = battle.available_moves[0]
    assert base.move_damage(battle, tbolt, pikachu, gyarados) == pytest.approx(105.45 / 181)
    # crit (gen 4: x2, 1/16): (15/16) * 105.45 + (1/16) * 210.9, accuracy 1
    assert base.expected_damage(battle, tbolt, pikachu, gyarados) == pytest.approx(
        (15 / 16 * 105.45 + 210.9 / 16) / 181
    )
    # worst case: best-spread Gyarados (SpD floor(294 / 2) + 5 = 152, HP floor(284 / 2) + 60 = 202),
    # min roll: floor(22 * 95 * 55 / 152) = 756 -> 15 + 2 = 17 -> 17 * 0.85 * 1.5 * 4 = 86.7
    assert base.worst_case_damage(battle, tbolt, pikachu, gyarados) == pytest.approx(86.7 / 202)


def test_move_damage_immunities_and_fixed_damage():
    battle = make_battle(
        4,
        [own("gengar", ["earthquake", "seismictoss", "thunderbolt"], gen=4)],
        "rhydon",
        messages=["|-ability|p2a: Rhydon|Lightning Rod"],
    )
    gengar, rhydon = battle.active_pokemon, battle.opponent_active_pokemon
    eq, toss, tbolt = battle.available_moves
    assert base.move_damage(battle, tbolt, gengar, rhydon) == 0  # Ground type
    assert base.ability_immune(tbolt, rhydon, 4)
    hp = base.pokemon_stat(battle, rhydon, "hp")
    assert base.move_damage(battle, toss, gengar, rhydon) == pytest.approx(50 / hp)  # level damage
    assert base.worst_case_damage(battle, toss, gengar, rhydon) == pytest.approx(
        50 / base.pokemon_stat(battle, rhydon, "hp", "best")
    )
    assert base.move_damage(battle, eq, gengar, rhydon) > 0


def test_levitate_known_from_only_ability():
    gengar = Pokemon(gen=4, species="gengar")  # gen 4 Gengar can only have Levitate
    assert base.ability_immune(Move("earthquake", gen=4), gengar, 4)
    assert not base.ability_immune(Move("earthquake", gen=2), Pokemon(gen=2, species="gengar"), 2)


def test_status_immunity():
    battle = make_battle(9, [own("jolteon", ["thunderwave", "toxic", "willowisp"])], "skarmory")
    skarmory = battle.opponent_active_pokemon
    tw, toxic, wisp = battle.available_moves
    assert base.status_immune(toxic, skarmory, battle)  # Steel
    assert not base.status_immune(tw, skarmory, battle)
    assert not base.status_immune(wisp, skarmory, battle)
    ground = make_battle(9, [own("jolteon", ["thunderwave"])], "garchomp")
    assert base.status_immune(ground.available_moves[0], ground.opponent_active_pokemon, ground)
    statused = make_battle(9, [own("jolteon", ["thunderwave"])], "snorlax", opp_hp="100/100 brn")
    assert base.status_immune(statused.available_moves[0], statused.opponent_active_pokemon, statused)


def test_boost_and_heal_scores():
    battle = make_battle(
        9, [own("cloyster", ["shellsmash", "swordsdance", "recover", "icebeam"], hp=0.5)], "snorlax"
    )
    smash, sd, recover, beam = battle.available_moves
    assert base.boost_move_scores(battle) == {smash: 4, sd: 2}  # +2+2+2-1-1 ; +2
    assert base.heal_move_scores(battle) == {recover: pytest.approx(0.5)}
    battle.active_pokemon.boost("atk", 5)
    assert base.boost_move_scores(battle)[sd] == 1  # capped at +6


def test_outspeed_chance_and_emergency_switch():
    fast = make_battle(
        9,
        [
            own("pikachu", ["thunderbolt"], stats={"atk": 1, "def": 1, "spa": 1, "spd": 1, "spe": 200}),
            own("onix", ["rockslide"]),
        ],
        "garchomp",
    )
    # Garchomp L50: speed floor(235 / 2) + 5 = 122 (0 EV) .. floor(298 / 2) + 5 = 154 (252 EV)
    assert base.outspeed_chance(fast, fast.active_pokemon, fast.opponent_active_pokemon) == 1.0
    middle = make_battle(
        9,
        [own("pikachu", ["thunderbolt"], stats={"atk": 1, "def": 1, "spa": 1, "spd": 1, "spe": 138})],
        "garchomp",
    )
    assert (
        base.outspeed_chance(middle, middle.active_pokemon, middle.opponent_active_pokemon) == 0.5
    )  # 16 / 32
    middle.parse_message(["", "-fieldstart", "move: Trick Room"])
    assert base.outspeed_chance(middle, middle.active_pokemon, middle.opponent_active_pokemon) == 0.5
    middle.active_pokemon.boost("spe", 1)  # 207 > 154, but Trick Room reverses the order
    assert base.outspeed_chance(middle, middle.active_pokemon, middle.opponent_active_pokemon) == 0.0
    assert base.should_emergency_switch(fast)  # Thunderbolt cannot touch a Ground type
    trapped = make_battle(
        9, [own("pikachu", ["thunderbolt"]), own("onix", ["rockslide"])], "garchomp", trapped=True
    )
    assert not base.should_emergency_switch(trapped)
    fine = make_battle(9, [own("pikachu", ["thunderbolt"]), own("onix", ["rockslide"])], "gyarados")
    assert not base.should_emergency_switch(fine)


def test_get_gen_format():
    assert base.get_gen_format(make_battle(1, [own(**PIKACHU, gen=1)], "gyarados", fmt="gen1ou")) == (
        1,
        "gen1ou",
    )
    assert base.get_gen_format(make_battle(9, [own(**PIKACHU)], "gyarados", fmt="gen9randombattle")) == (
        9,
        "gen9randombattle",
    )


def test_opponent_moves_are_revealed_moves_or_stab_stand_ins():
    battle = make_battle(9, [own(**PIKACHU)], "garchomp")
    garchomp = battle.opponent_active_pokemon
    assert [m.id for m in base.opponent_moves(battle, garchomp)] == ["dragonclaw", "earthquake"]  # physical
    gen3 = make_battle(3, [own(**PIKACHU, gen=3)], "gyarados")
    assert [m.id for m in base.opponent_moves(gen3, gen3.opponent_active_pokemon)] == ["surf", "drillpeck"]
    battle.parse_message(["", "move", "p2a: Garchomp", "Fire Fang", "p1a: Pikachu"])
    assert [m.id for m in base.opponent_moves(battle, garchomp)] == ["firefang"]
    # the threat to Pikachu is Fire Fang's expected damage now
    fang = garchomp.moves["firefang"]
    assert base.opponent_threat(battle) == base.expected_damage(battle, fang, garchomp, battle.active_pokemon)


def test_switch_scores_hand_computed():
    battle = make_battle(
        9,
        [own(**PIKACHU, hp=0), own("onix", ["rockslide"]), own("starmie", ["surf"], hp=0.5)],
        "charizard",
        force_switch=True,
    )
    onix, starmie = battle.available_switches
    # Onix: worst hit from Fire/Flying 0.5 -> +1; Rock Slide 4x -> +2; HP 1; no status 0.5 -> 4.5
    # Starmie: Flying 1x -> 0; Surf 2x -> +1; HP 0.5; no status 0.5 -> 2.0
    assert base.switch_scores(battle, speed=0.0) == {onix: pytest.approx(4.5), starmie: pytest.approx(2.0)}


def test_find_outspeed_ko_switch():
    fast_starmie = own("starmie", ["hydropump"], stats={"atk": 1, "def": 1, "spa": 200, "spd": 1, "spe": 300})
    battle = make_battle(9, [own(**PIKACHU), fast_starmie], "charizard", opp_hp="5/100")
    assert base.find_outspeed_ko_switch(battle).species == "starmie"
    healthy = make_battle(9, [own(**PIKACHU), fast_starmie], "charizard")
    assert base.find_outspeed_ko_switch(healthy) is None


def test_find_ko_move_prefers_accuracy_then_priority():
    low = make_battle(9, [own(**PIKACHU)], "gyarados", opp_hp="3/100")
    assert base.find_ko_move(low).id == "quickattack"  # both KO; priority breaks the tie
    full = make_battle(9, [own(**PIKACHU)], "gyarados")
    assert base.find_ko_move(full) is None


def test_force_use_gimmick_only_on_last_pokemon():
    last = make_battle(9, [own(**PIKACHU)], "gyarados", can_tera=True)
    assert base.force_use_gimmick(last)
    assert (
        base.gimmick_order(last, last.available_moves[0], True).message
        == "/choose move thunderbolt terastallize"
    )
    team = make_battle(9, [own(**PIKACHU), own("onix", ["rockslide"])], "gyarados", can_tera=True)
    assert not base.force_use_gimmick(team)


# ------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------
REQUIRED = [
    "RandomBaseline",
    "MaxBPBaseline",
    "PokeEnvHeuristic",
    "Gen1BossAI",
    "Grunt",
    "GymLeader",
    "EmeraldKaizo",
    "BugCatcher",
    "Gen1Trainer",
    "Gen1TrainerGoodSwitching",
    "BasicSwitcher",
]


def test_registry_contents():
    names = get_all_baseline_names()
    assert names == sorted(names)
    assert set(REQUIRED) <= set(names)
    assert set(HEURISTIC_COMPOSITE_BASELINES) <= set(names)
    assert get_baseline("Grunt") is Grunt
    assert Grunt in registry.BASELINES_BY_GEN[1]["ou"] and Grunt in registry.BASELINES_BY_GEN[9]["nu"]
    assert registry.BASELINES_BY_GEN[5]["ou"] == []
    assert issubclass(PokeEnvHeuristic, SimpleHeuristicsPlayer)


def test_registry_errors(monkeypatch):
    monkeypatch.setattr(registry, "ALL_BASELINES", {})
    monkeypatch.setattr(
        registry, "BASELINES_BY_GEN", {g: {t: [] for t in registry.SUPPORTED_TIERS} for g in range(1, 10)}
    )
    with pytest.raises(ValueError, match="gen"):
        register_baseline(gens=[10])
    with pytest.raises(ValueError, match="tier"):
        register_baseline(formats=["superou"])

    @register_baseline(gens=[2], formats=["uu"])
    class MyBot(RandomPlayer):
        pass

    assert registry.ALL_BASELINES == {"MyBot": MyBot}
    assert registry.BASELINES_BY_GEN[2]["uu"] == [MyBot] and registry.BASELINES_BY_GEN[2]["ou"] == []
    with pytest.raises(ValueError, match="already registered"):
        register_baseline()(MyBot)
    with pytest.raises(ValueError, match="Player"):
        register_baseline()(int)


def test_get_baseline_errors_and_dotted_paths():
    with pytest.raises(UnknownNameError) as info:
        get_baseline("Gruntt")
    assert info.value.kind == "baseline" and "Grunt" in info.value.options and "Gruntt" in str(info.value)
    assert get_baseline("poke_env.player.RandomPlayer") is RandomPlayer
    with pytest.raises(UnknownNameError):
        get_baseline("no_such_package.Player")
    with pytest.raises(MetamonError, match="not a poke-env Player"):
        get_baseline("metamon.errors.MetamonError")


# ------------------------------------------------------------------------------------------
# The Baseline wrapper
# ------------------------------------------------------------------------------------------
class _Broken(Baseline):
    def choose_baseline_move(self, battle):
        raise RuntimeError("scoring bug")


class _Illegal(Baseline):
    def choose_baseline_move(self, battle):
        return self.create_order(Move("surf", gen=battle.gen))


@pytest.mark.parametrize("cls", [_Broken, _Illegal])
def test_scoring_failures_fall_back_to_a_random_legal_order(cls, caplog):
    battle = make_battle(9, [own(**PIKACHU), own("onix", ["rockslide"])], "gyarados")
    bot = player(cls)
    with caplog.at_level(logging.WARNING):
        order = bot.choose_move(battle)
    assert order in battle.valid_orders
    assert (bot.n_fallbacks, bot.n_choices) == (1, 1)
    assert "falls back to a random order" in caplog.text


def test_nothing_to_choose_sends_default_and_recharge_is_taken():
    stuck = make_battle(9, [own(**PIKACHU)], "gyarados", disabled=["thunderbolt", "quickattack"])
    assert isinstance(player(Grunt).choose_move(stuck), DefaultBattleOrder)
    recharge = make_battle(9, [own("snorlax", ["recharge"])], "gyarados")
    assert player(EmeraldKaizo).choose_move(recharge).message == "/choose move 1"


def test_doubles_formats_are_refused():
    with pytest.raises(MetamonError, match="singles"):
        Grunt(battle_format="gen9randomdoublesbattle", start_listening=False)


# ------------------------------------------------------------------------------------------
# Each baseline in a crafted situation
# ------------------------------------------------------------------------------------------
def _choices(cls, battle_factory, n=30, **attrs):
    picks = []
    for seed in range(n):
        bot = player(cls, gen=battle_factory().gen, seed=seed)
        for key, value in attrs.items():
            setattr(bot, key, value)
        picks.append(chosen(bot.choose_move(battle_factory())))
        assert bot.n_fallbacks == 0
    return picks


def test_random_baseline_covers_every_legal_order():
    picks = _choices(
        RandomBaseline, lambda: make_battle(9, [own(**PIKACHU), own("onix", ["rockslide"])], "gyarados"), n=60
    )
    assert set(picks) == {"thunderbolt", "quickattack", "onix"}


def test_max_bp_baseline():
    epsilons = {player(MaxBPBaseline, seed=s).epsilon for s in range(20)}
    assert len(epsilons) == 20 and all(0 <= e <= 0.1 for e in epsilons)
    assert (
        _choices(MaxBPBaseline, lambda: make_battle(9, [own(**PIKACHU)], "snorlax"), epsilon=0.0)
        == ["thunderbolt"] * 30
    )


def test_gen1_trainer_never_switches_voluntarily():
    picks = _choices(
        Gen1Trainer,
        lambda: make_battle(1, [own(**PIKACHU, gen=1), own("onix", ["rockslide"], gen=1)], "gyarados"),
        n=40,
    )
    assert set(picks) == {"thunderbolt", "quickattack"}
    def forced():
        return make_battle(
            1,
            [own(**PIKACHU, gen=1, hp=0), own("onix", ["rockslide"], gen=1), own("starmie", ["surf"], gen=1)],
            "gyarados",
            force_switch=True,
        )
    assert set(_choices(Gen1Trainer, forced, n=5)) == {"onix"}  # the first available
    assert set(_choices(Gen1TrainerGoodSwitching, forced, n=5)) == {"starmie"}  # Onix is 4x weak to Water


def test_basic_switcher():
    def stay():
        return make_battle(9, [own(**PIKACHU), own("onix", ["rockslide"])], "gyarados")
    assert set(_choices(BasicSwitcher, stay, n=5)) == {"thunderbolt"}
    def leave():
        return make_battle(9, [own("onix", ["rockslide"]), own(**PIKACHU)], "gyarados")
    assert set(_choices(BasicSwitcher, leave, n=5)) == {"pikachu"}


def test_grunt_picks_the_super_effective_move_and_best_forced_switch():
    assert set(_choices(Grunt, lambda: make_battle(9, [own(**PIKACHU)], "gyarados"))) == {"thunderbolt"}
    def forced():
        return make_battle(
            9,
            [own(**PIKACHU, hp=0), own("onix", ["rockslide"]), own("starmie", ["surf"])],
            "charizard",
            force_switch=True,
        )
    assert set(_choices(Grunt, forced, n=5)) == {"onix"}  # Rock hits Charizard 4x, resists Fire


def test_bug_catcher_picks_the_least_damaging_move_and_worst_switch():
    assert set(_choices(BugCatcher, lambda: make_battle(9, [own(**PIKACHU)], "gyarados"))) == {"quickattack"}
    def forced():
        return make_battle(
            9,
            [own(**PIKACHU, hp=0), own("onix", ["rockslide"]), own("starmie", ["surf"])],
            "gyarados",
            force_switch=True,
        )
    assert set(_choices(BugCatcher, forced, n=5)) == {"onix"}


def test_gen1_boss_ai_avoids_status_moves_on_statused_targets():
    team = [own("jolteon", ["thunderwave", "thunderbolt"], gen=1)]
    # Thunderbolt is resisted by Grass/Psychic Exeggutor: 10 + 1 = 11 > Thunder Wave's 10 ...
    def healthy():
        return make_battle(1, team, "exeggutor")
    assert set(_choices(Gen1BossAI, healthy)) == {"thunderwave"}
    # ... but a statused target makes Thunder Wave 15
    def statused():
        return make_battle(1, team, "exeggutor", opp_hp="100/100 slp")
    assert set(_choices(Gen1BossAI, statused)) == {"thunderbolt"}
    bot, battle = player(Gen1BossAI, gen=1), statused()
    assert {m.id: bot.score_move(battle, m) for m in battle.available_moves} == {
        "thunderwave": 15,
        "thunderbolt": 11,
    }


def test_gen1_boss_ai_encourages_setup_on_the_first_turn():
    battle = make_battle(1, [own("slowbro", ["amnesia", "surf"], gen=1)], "tauros")
    bot = player(Gen1BossAI, gen=1)
    assert {m.id: bot.score_move(battle, m) for m in battle.available_moves} == {"amnesia": 9, "surf": 9}


def test_gym_leader():
    assert set(_choices(GymLeader, lambda: make_battle(9, [own(**PIKACHU)], "gyarados", opp_hp="3/100"))) == {
        "quickattack"
    }
    assert set(_choices(GymLeader, lambda: make_battle(9, [own(**PIKACHU)], "gyarados"))) == {"thunderbolt"}
    def low():
        return make_battle(9, [own("blissey", ["softboiled", "seismictoss"], hp=0.2)], "snorlax")
    assert set(_choices(GymLeader, low, n=10, HEAL_CHANCE=1.0)) == {"softboiled"}
    assert set(_choices(GymLeader, low, n=10, HEAL_CHANCE=0.0)) == {"seismictoss"}
    # a Ground type walls Thunderbolt: emergency switch to the Water type
    def walled():
        return make_battle(9, [own("pikachu", ["thunderbolt"]), own("starmie", ["surf"])], "garchomp")
    assert set(_choices(GymLeader, walled, n=5)) == {"starmie"}


def test_emerald_kaizo_takes_the_ko():
    def low():
        return make_battle(
            9, [own("pikachu", ["thunderwave", "thunderbolt", "growl"])], "gyarados", opp_hp="30/100"
        )
    assert set(_choices(EmeraldKaizo, low)) == {"thunderbolt"}
    bot, battle = player(EmeraldKaizo), low()
    situation = bot.situation(battle)
    tbolt = battle.available_moves[1]
    assert bot.base_score(situation, tbolt) == 5 + 1  # worst-case KO, also the best damage


def test_emerald_kaizo_respects_immunities():
    def battle():
        return make_battle(
            9, [own("pikachu", ["thunderwave", "thunderbolt", "quickattack"])], "garchomp"
        )
    assert set(_choices(EmeraldKaizo, battle, n=20)) == {"quickattack"}
    bot, b = player(EmeraldKaizo), battle()
    s = bot.situation(b)
    assert bot.base_score(s, b.available_moves[1]) == -12


def test_emerald_kaizo_rules():
    hazards = make_battle(
        9,
        [own("skarmory", ["stealthrock", "spikes", "bravebird"])],
        "snorlax",
        messages=["|-sidestart|p2: rival|move: Stealth Rock"],
    )
    bot = player(EmeraldKaizo)
    s = bot.situation(hazards)
    rock, spikes, _ = hazards.available_moves
    assert bot.score_move(s, rock) <= -18  # already up
    assert bot.score_move(s, spikes) >= 2  # first layer, first turn: +2
    three = make_battle(
        9, [own("skarmory", ["spikes", "bravebird"])], "snorlax", messages=["|-sidestart|p2: rival|Spikes"] * 3
    )
    s = bot.situation(three)
    assert bot.score_move(s, three.available_moves[0]) <= -18  # all three layers are down
    asleep = make_battle(
        9, [own("snorlax", ["sleeptalk", "rest", "bodyslam"], status="slp", hp=0.5)], "gengar"
    )
    s = bot.situation(asleep)
    talk, rest, slam = asleep.available_moves
    assert bot.score_move(s, slam) == -12  # Normal vs Ghost
    assert bot.score_move(s, talk) >= 5
    full = make_battle(9, [own("blissey", ["softboiled", "toxic"])], "snorlax", opp_hp="100/100 par")
    s = bot.situation(full)
    assert all(bot.score_move(s, m) <= -18 for m in full.available_moves)  # full HP; already statused


def test_pokeenv_heuristic_is_poke_envs_player():
    battle = make_battle(9, [own(**PIKACHU)], "gyarados")
    bot = PokeEnvHeuristic(battle_format="gen9ou", start_listening=False)
    assert chosen(bot.choose_move(battle)) == "thunderbolt"


# ------------------------------------------------------------------------------------------
# compete helpers and CLI errors
# ------------------------------------------------------------------------------------------
def test_wilson_interval():
    low, high = wilson_interval(8, 10)  # center (0.8 + 0.19208) / 1.38416, half 1.41602 * 0.16001
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)


def test_summarize():
    results = [
        BattleResult("a", "win", 10),
        BattleResult("b", "win", 12),
        BattleResult("c", "loss", 3),
        BattleResult("d", "tie", 1000),
        BattleResult(None, "error", 0),
    ]
    s = summarize(results)
    assert (s["win"], s["loss"], s["tie"], s["error"], s["finished"]) == (2, 1, 1, 1, 4)
    assert s["win_rate"] == 0.5


def test_unique_username():
    names = {unique_username("EmeraldKaizo") for _ in range(50)}
    assert len(names) > 40
    assert all(len(n) == 18 and n.startswith("EmeraldK") and n[8:].isdigit() for n in names)
    assert unique_username("Gen1TrainerGoodSwitching").startswith("Gen1Trai")
    assert unique_username("my bot!").startswith("mybot")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--battle_format", "gen9nope", "--player", "Grunt", "--opponent", "Grunt"], "gen9nope"),
        (["--battle_format", "gen9randombattle", "--player", "Gruntt", "--opponent", "Grunt"], "Gruntt"),
        (
            [
                "--battle_format",
                "gen9randombattle",
                "--player",
                "Grunt",
                "--opponent",
                "Grunt",
                "--server_url",
                f"127.0.0.1:{find_free_port()}",
            ],
            "No Pokémon Showdown server",
        ),
    ],
)
def test_compete_cli_errors(args, message, capsys):
    assert compete_main(args) == 2
    assert message in capsys.readouterr().err

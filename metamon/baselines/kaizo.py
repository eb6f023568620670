"""EmeraldKaizo: a move-scoring AI in the style of the Emerald Kaizo ROM hack's trainers.

Each available move gets a base score from damage calculations, then every rule below adds
its adjustment; the highest total wins (ties at random). Higher is better.

Base score (:meth:`EmeraldKaizo.base_score`):

* damaging move the target is immune to (type or ability): -12;
* damaging move that KOs: 5 if even its worst case KOs, 4 if its mean roll does; +2 if it
  has priority; +1 if it is also the highest-expected-damage move;
* the highest-expected-damage move that does not KO: 2 with probability 0.7, else 0;
* any other damaging move: -1; self-destructing moves a further -1;
* status moves: 2 with probability 0.7, else 0 (the rules then judge them).

Move rules (``_rule_*``; each returns ``None`` when it does not concern the move): setup,
speed control, entry hazards, hazard removal, healing, non-volatile status, volatile effects
(confusion, Leech Seed, Substitute), Protect, screens, weather, phazing, accuracy, priority,
Substitute immunity, self-destruction, recharge and sleep-only moves. A status move that no
rule recognises gets -2.

Switching: a forced switch sends the Pokémon with the best defensive type matchup among
those with a super-effective move, else the one with the most damaging move; with
probability ``SWITCH_CHANCE`` (0.9) an unforced switch to such a Pokémon happens when
:func:`~metamon.baselines.calc.should_emergency_switch`. The gimmick is used on the last
Pokémon standing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from poke_env.battle import (
    Battle,
    Effect,
    Move,
    MoveCategory,
    Pokemon,
    PokemonType,
    SideCondition,
    Status,
    Target,
    Weather,
)
from poke_env.battle.side_condition import STACKABLE_CONDITIONS
from poke_env.player import BattleOrder

from metamon.baselines.calc import (
    boost_move_scores,
    current_accuracy,
    effective_type_multiplier,
    expected_damage,
    force_use_gimmick,
    gimmick_order,
    heal_move_scores,
    is_damaging,
    move_damage,
    opponent_moves,
    opponent_threat,
    outspeed_chance,
    should_emergency_switch,
    status_immune,
    type_advantage,
    worst_case_damage,
)
from metamon.baselines.player import Baseline
from metamon.baselines.registry import register_baseline

__all__ = ["EmeraldKaizo"]

_HAZARD_LAYERS = {
    SideCondition.SPIKES: 3,
    SideCondition.TOXIC_SPIKES: 2,
    SideCondition.STEALTH_ROCK: 1,
    SideCondition.STICKY_WEB: 1,
}
_HAZARD_REMOVAL = {"rapidspin", "defog", "mortalspin", "tidyup", "courtchange"}
_SCREENS = {SideCondition.REFLECT, SideCondition.LIGHT_SCREEN, SideCondition.AURORA_VEIL}
_FOE_TARGETS = {
    Target.NORMAL,
    Target.ANY,
    Target.ADJACENT_FOE,
    Target.ALL_ADJACENT_FOES,
    Target.ALL_ADJACENT,
    Target.RANDOM_NORMAL,
}
_WEATHER_BOOSTS = {
    Weather.RAINDANCE: PokemonType.WATER,
    Weather.SUNNYDAY: PokemonType.FIRE,
}
_NEVER = -20  # the move would fail or do nothing


@dataclass
class _Situation:
    """Per-turn facts shared by all the rules."""

    battle: Battle
    active: Pokemon
    opponent: Pokemon
    expected: Dict[Move, float]  # accuracy-weighted expected damage fraction
    mean_hit: Dict[Move, float]  # mean-roll damage if it hits
    worst: Dict[Move, float]  # worst-case damage if it hits
    faster: bool  # we likely act first at equal priority
    threat: float  # the opponent's best expected damage to us (fraction of our HP)
    my_remaining: int
    their_remaining: int
    best_expected: float = field(init=False)

    def __post_init__(self):
        self.best_expected = max(self.expected.values(), default=0.0)

    @property
    def gen(self) -> int:
        return self.battle.gen

    @property
    def my_hp(self) -> float:
        return self.active.current_hp_fraction

    @property
    def their_hp(self) -> float:
        return self.opponent.current_hp_fraction

    def kos(self, move: Move) -> bool:
        return self.mean_hit[move] > 0 and self.mean_hit[move] >= self.their_hp


def _is_status(move: Move) -> bool:
    return move.category == MoveCategory.STATUS


# ---- rules --------------------------------------------------------------------------------
def _rule_setup(s: _Situation, move: Move) -> Optional[int]:
    """Setup (self stat raises): useless when already maxed, bad when we are about to be
    KOed or under half HP, good on a healthy first turn."""
    scores = boost_move_scores(s.battle, [move])
    if move not in scores:
        return None
    if scores[move] <= 0:
        return _NEVER
    if s.threat >= s.my_hp or s.my_hp < 0.5:
        return -5
    return 3 if s.active.first_turn and s.my_hp > 0.9 else 1


def _rule_speed_control(s: _Situation, move: Move) -> Optional[int]:
    """Speed boosts, foe speed drops, Tailwind and Trick Room only help the slower side."""
    boosts = boost_move_scores(s.battle, [move])
    pure_speed_boost = move in boosts and set(move.boosts or {}) == {"spe"}
    foe_speed_drop = (
        _is_status(move) and move.target in _FOE_TARGETS and (move.boosts or {}).get("spe", 0) < 0
    )
    if move.id == "trickroom":
        return -10 if s.faster else 3
    if pure_speed_boost or foe_speed_drop or move.side_condition == SideCondition.TAILWIND:
        return -5 if s.faster else 2
    return None


def _rule_hazards(s: _Situation, move: Move) -> Optional[int]:
    """Entry hazards: useless at full layers or against a last Pokémon, better early."""
    hazard = move.side_condition
    if hazard not in _HAZARD_LAYERS:
        return None
    conditions = s.battle.opponent_side_conditions
    # poke-env stores the layer count of Spikes / Toxic Spikes, the start turn of the others
    layers = conditions.get(hazard, 0) if hazard in STACKABLE_CONDITIONS else int(hazard in conditions)
    if layers >= _HAZARD_LAYERS[hazard] or s.their_remaining <= 1:
        return _NEVER
    if s.their_remaining <= 2:
        return -2
    return 2 if s.active.first_turn else 1


def _rule_hazard_removal(s: _Situation, move: Move) -> Optional[int]:
    """Rapid Spin / Defog and friends: worth it with hazards on our side and a team behind."""
    if move.id not in _HAZARD_REMOVAL:
        return None
    ours = any(h in s.battle.side_conditions for h in _HAZARD_LAYERS)
    if ours and s.my_remaining >= 2:
        return 3
    return None


def _rule_healing(s: _Situation, move: Move) -> Optional[int]:
    """Healing: never at (nearly) full HP, pointless when the foe out-damages it, urgent
    when low (Rest also cures a status)."""
    heals = heal_move_scores(s.battle, [move])
    if move not in heals:
        return None
    if s.my_hp >= 0.95 or heals[move] < 0.2:
        return _NEVER
    if s.threat > heals[move] + 0.1:
        return -2
    bonus = 1 if move.id == "rest" and s.active.status is not None else 0
    if s.my_hp < 0.35:
        return 3 + bonus
    return (2 if s.faster else 1) + bonus if s.my_hp < 0.6 else bonus


def _rule_status(s: _Situation, move: Move) -> Optional[int]:
    """Non-volatile status moves: never when it cannot stick (already statused, type/ability
    immunity, Safeguard, Sleep Clause); sleep is best, paralysis when slower, burn on physical
    attackers, poison otherwise."""
    if move.status is None or not _is_status(move):
        return None
    if status_immune(move, s.opponent, s.battle):
        return _NEVER
    if move.status == Status.SLP:
        sleeping = any(m.status == Status.SLP for m in s.battle.opponent_team.values())
        return _NEVER if sleeping else 2
    if move.status == Status.PAR:
        return 1 if s.faster else 2
    if move.status == Status.BRN:
        physical = s.opponent.base_stats["atk"] > s.opponent.base_stats["spa"]
        return 2 if physical else 0
    return 1


def _rule_volatile(s: _Situation, move: Move) -> Optional[int]:
    """Confusion, Leech Seed and Substitute: never twice or on an immune target; Substitute
    needs more than a quarter of our HP."""
    effect = move.entry.get("volatileStatus") if _is_status(move) else None
    if effect == "confusion":
        return _NEVER if Effect.CONFUSION in s.opponent.effects else 0
    if effect == "leechseed":
        seeded = Effect.LEECH_SEED in s.opponent.effects
        return _NEVER if seeded or PokemonType.GRASS in s.opponent.types else 1
    if effect == "substitute":
        if Effect.SUBSTITUTE in s.active.effects or s.my_hp <= 0.25:
            return _NEVER
        return 1 if s.faster else 0
    return None


def _rule_protect(s: _Situation, move: Move) -> Optional[int]:
    """Protect-likes: consecutive uses usually fail; worth it when the foe takes residual
    damage."""
    if not move.is_protect_move:
        return None
    if s.active.protect_counter > 0:
        return _NEVER
    residual = s.opponent.status in (Status.PSN, Status.TOX, Status.BRN) or (
        Effect.LEECH_SEED in s.opponent.effects
    )
    return 1 if residual else -1


def _rule_screens(s: _Situation, move: Move) -> Optional[int]:
    """Reflect / Light Screen / Aurora Veil: never when already up (Aurora Veil needs hail or
    snow); good against the foe's stronger attacking side."""
    screen = move.side_condition
    if screen not in _SCREENS:
        return None
    if screen in s.battle.side_conditions:
        return _NEVER
    if screen == SideCondition.AURORA_VEIL:
        snowing = Weather.HAIL in s.battle.weather or Weather.SNOW in s.battle.weather
        return 2 if snowing else _NEVER
    physical = s.opponent.base_stats["atk"] >= s.opponent.base_stats["spa"]
    return 1 if (screen == SideCondition.REFLECT) == physical else -1


def _rule_weather(s: _Situation, move: Move) -> Optional[int]:
    """Weather moves: never when already active; good when it powers up one of our moves."""
    weather = move.weather
    if weather is None:
        return None
    if weather in s.battle.weather:
        return _NEVER
    boosted = _WEATHER_BOOSTS.get(weather)
    helps = boosted is not None and any(
        m.type == boosted and is_damaging(m) for m in s.battle.available_moves
    )
    return 1 if helps else -1


def _rule_phazing(s: _Situation, move: Move) -> Optional[int]:
    """Roar / Whirlwind / Dragon Tail: great against boosted foes, useless against a last
    Pokémon; status phazers are fine with hazards down."""
    if not move.force_switch:
        return None
    if s.their_remaining <= 1:
        return _NEVER if _is_status(move) else 0
    if sum(max(0, v) for v in s.opponent.boosts.values()) >= 2:
        return 3
    hazards = any(h in s.battle.opponent_side_conditions for h in _HAZARD_LAYERS)
    return 1 if hazards else (0 if is_damaging(move) else -2)


def _rule_accuracy(s: _Situation, move: Move) -> Optional[int]:
    """Inaccurate moves: -2 at 60% or less, -1 up to 80% (unless the move KOs)."""
    accuracy = current_accuracy(move, s.active, s.opponent, s.gen, s.battle)
    if accuracy >= 0.8 or (is_damaging(move) and s.kos(move)):
        return None
    return -2 if accuracy <= 0.6 else -1


def _rule_priority(s: _Situation, move: Move) -> Optional[int]:
    """Priority attacks when we are slower and the foe will KO us: get a hit in first."""
    if move.priority <= 0 or not is_damaging(move) or s.expected[move] <= 0:
        return None
    return 3 if not s.faster and s.threat >= s.my_hp else None


def _rule_substitute_block(s: _Situation, move: Move) -> Optional[int]:
    """Status moves aimed at a foe behind a Substitute fail (sound moves go through)."""
    if not _is_status(move) or move.target not in _FOE_TARGETS or "sound" in move.flags:
        return None
    return -10 if Effect.SUBSTITUTE in s.opponent.effects else None


def _rule_self_destruct(s: _Situation, move: Move) -> Optional[int]:
    """Explosion, Memento, Final Gambit...: never with our last Pokémon, poor when healthy,
    good when we are going down anyway."""
    if not move.self_destruct:
        return None
    if s.my_remaining <= 1:
        return _NEVER
    if s.threat >= s.my_hp:
        return 2
    return -2 if s.my_hp > 0.6 else 0


def _rule_recharge(s: _Situation, move: Move) -> Optional[int]:
    """Hyper Beam-likes: a KO skips the recharge in gen 1 (+1); from gen 2 a non-KO beam
    leaves us a sitting duck (-2)."""
    if "recharge" not in move.flags:
        return None
    if s.kos(move):
        return 1 if s.gen == 1 else 0
    return -2 if s.gen >= 2 else 0


def _rule_sleep_moves(s: _Situation, move: Move) -> Optional[int]:
    """Sleep Talk / Snore need us asleep (then they are the best choice); Dream Eater needs
    the target asleep."""
    if move.id in ("sleeptalk", "snore"):
        return 5 if s.active.status == Status.SLP else _NEVER
    if move.id == "dreameater":
        return None if s.opponent.status == Status.SLP else _NEVER
    return None


RULES: List[Callable[[_Situation, Move], Optional[int]]] = [
    _rule_setup,
    _rule_speed_control,
    _rule_hazards,
    _rule_hazard_removal,
    _rule_healing,
    _rule_status,
    _rule_volatile,
    _rule_protect,
    _rule_screens,
    _rule_weather,
    _rule_phazing,
    _rule_accuracy,
    _rule_priority,
    _rule_substitute_block,
    _rule_self_destruct,
    _rule_recharge,
    _rule_sleep_moves,
]
UNRECOGNISED_STATUS_MOVE = -2


def _remaining(team: Dict[str, Pokemon], size: int = 6) -> int:
    """Pokémon not fainted, counting unrevealed ones as alive (teams of ``size``)."""
    return max(len(team), size) - sum(m.fainted for m in team.values())


@register_baseline()
class EmeraldKaizo(Baseline):
    """Kaizo-style scoring AI; see the module docstring for the full rule list."""

    SWITCH_CHANCE = 0.9
    GOOD_MOVE_CHANCE = 0.7

    # -- moves -------------------------------------------------------------------------------
    def situation(self, battle: Battle) -> _Situation:
        active, opponent = battle.active_pokemon, battle.opponent_active_pokemon
        moves = battle.available_moves
        return _Situation(
            battle=battle,
            active=active,
            opponent=opponent,
            expected={m: expected_damage(battle, m, active, opponent) for m in moves},
            mean_hit={m: move_damage(battle, m, active, opponent, roll="mean") for m in moves},
            worst={m: worst_case_damage(battle, m, active, opponent) for m in moves},
            faster=outspeed_chance(battle, active, opponent) > 0.5,
            threat=opponent_threat(battle),
            my_remaining=sum(not m.fainted for m in battle.team.values()),
            their_remaining=_remaining(battle.opponent_team),
        )

    def base_score(self, s: _Situation, move: Move) -> int:
        if not is_damaging(move):
            return 2 if self.rng.random() < self.GOOD_MOVE_CHANCE else 0
        if effective_type_multiplier(move, s.opponent, s.gen) == 0:
            return -12
        is_best = s.expected[move] > 0 and s.expected[move] == s.best_expected
        if s.worst[move] > 0 and s.worst[move] >= s.their_hp:
            score = 5
        elif s.kos(move):
            score = 4
        elif is_best:
            score = 2 if self.rng.random() < self.GOOD_MOVE_CHANCE else 0
        else:
            score = -1
        if score >= 4:
            score += (2 if move.priority > 0 else 0) + (1 if is_best else 0)
        if move.self_destruct:
            score -= 1
        return score

    def score_move(self, s: _Situation, move: Move) -> int:
        score = self.base_score(s, move)
        adjustments = [a for a in (rule(s, move) for rule in RULES) if a is not None]
        if _is_status(move) and not adjustments:
            return score + UNRECOGNISED_STATUS_MOVE
        return score + sum(adjustments)

    # -- switches ----------------------------------------------------------------------------
    @staticmethod
    def _has_super_effective_move(battle: Battle, mon: Pokemon, opponent: Pokemon) -> bool:
        return any(
            is_damaging(m) and type_advantage(m.type, opponent, battle.gen) > 1 for m in mon.moves.values()
        )

    @staticmethod
    def _defensive_multiplier(battle: Battle, mon: Pokemon, opponent: Pokemon) -> float:
        return max(type_advantage(m.type, mon, battle.gen) for m in opponent_moves(battle, opponent))

    def _best_counter(self, battle: Battle) -> Optional[Pokemon]:
        """Among switch-ins with a super-effective move, the best defensive matchup (then HP)."""
        opponent = battle.opponent_active_pokemon
        counters = [
            m for m in battle.available_switches if self._has_super_effective_move(battle, m, opponent)
        ]
        if not counters:
            return None
        return min(
            counters, key=lambda m: (self._defensive_multiplier(battle, m, opponent), -m.current_hp_fraction)
        )

    def _forced_switch(self, battle: Battle) -> Pokemon:
        opponent = battle.opponent_active_pokemon
        switches = battle.available_switches
        if opponent is None:
            return max(switches, key=lambda m: m.current_hp_fraction)
        counter = self._best_counter(battle)
        if counter is not None:
            return counter

        def best_damage(mon: Pokemon) -> float:
            return max((expected_damage(battle, m, mon, opponent) for m in mon.moves.values()), default=0.0)

        return max(switches, key=best_damage)

    # -- decision ----------------------------------------------------------------------------
    def choose_baseline_move(self, battle: Battle) -> BattleOrder:
        if battle.force_switch or not battle.available_moves:
            return self.create_order(self._forced_switch(battle))
        if battle.opponent_active_pokemon is None:
            return self.create_order(self.rng.choice(battle.available_moves))
        if should_emergency_switch(battle) and self.rng.random() < self.SWITCH_CHANCE:
            counter = self._best_counter(battle)
            if counter is not None:
                return self.create_order(counter)
        s = self.situation(battle)
        scores = {m: self.score_move(s, m) for m in battle.available_moves}
        return gimmick_order(battle, self.pick_best(scores), force_use_gimmick(battle))

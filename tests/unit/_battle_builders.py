"""Real poke-env 0.16.1 ``Battle`` objects for unit tests, built the way a live battle is.

Nothing here is a mock: a battle is created exactly as poke-env's ``Player`` creates one, fed
Showdown protocol lines through ``Battle.parse_message`` and request JSON (the shape pokemon-
showdown 0.11.x sends to a player) through ``Battle.parse_request``.
"""

from __future__ import annotations

import logging
from typing import Iterable, Optional

from poke_env.battle import Battle

from metamon.names import format_to_gen

USERNAME = "metamontester"
OPPONENT = "opponentbot"
_LOGGER = logging.getLogger("metamon-tests")


def feed(battle: Battle, *lines: str) -> Battle:
    """Send protocol lines such as ``"|switch|p2a: Tauros|Tauros|100/100"`` to the battle."""
    for line in lines:
        battle.parse_message(line.split("|"))
    return battle


def new_battle(battle_format: str, battle_number: int = 1) -> Battle:
    """A started battle where we are p1 (``USERNAME``) against p2 (``OPPONENT``), 6 v 6."""
    gen = format_to_gen(battle_format)
    battle = Battle(f"battle-{battle_format}-{battle_number}", USERNAME, _LOGGER, gen=gen)
    return feed(
        battle,
        f"|player|p1|{USERNAME}|1|",
        f"|player|p2|{OPPONENT}|2|",
        "|teamsize|p1|6",
        "|teamsize|p2|6",
        f"|gen|{gen}",
        "|start",
    )


# ---------------------------------------------------------------------------------------------
# Request JSON
# ---------------------------------------------------------------------------------------------


def request_pokemon(
    name: str,
    details: str,
    condition: str,
    active: bool,
    moves: Iterable[str],
    item: str = "",
    ability: str = "noability",
    tera_type: Optional[str] = None,
    reviving: bool = False,
) -> dict:
    """One entry of ``request["side"]["pokemon"]``."""
    entry = {
        "ident": f"p1: {name}",
        "details": details,
        "condition": condition,
        "active": active,
        "stats": {"atk": 200, "def": 200, "spa": 200, "spd": 200, "spe": 200},
        "moves": list(moves),
        "baseAbility": ability,
        "item": item,
        "pokeball": "pokeball",
        "ability": ability,
        "commanding": False,
        "reviving": reviving,
    }
    if tera_type is not None:
        entry["teraType"] = tera_type
        entry["terastallized"] = ""
    return entry


def active_request(
    moves: Iterable[tuple[str, int, int]],
    disabled: Iterable[str] = (),
    can_tera: Optional[str] = None,
    trapped: bool = False,
) -> dict:
    """``request["active"][0]``: ``moves`` are ``(id, pp, maxpp)``; ``disabled`` are ids."""
    disabled = set(disabled)
    entry = {
        "moves": [
            {"move": move_id, "id": move_id, "pp": pp, "maxpp": maxpp, "target": "normal",
             "disabled": move_id in disabled}
            for move_id, pp, maxpp in moves
        ]
    }
    if can_tera is not None:
        entry["canTerastallize"] = can_tera
    if trapped:
        entry["trapped"] = True
    return entry


def request(side_pokemon: list[dict], active: Optional[dict] = None, force_switch: bool = False,
            rqid: int = 3) -> dict:
    req = {"side": {"name": USERNAME, "id": "p1", "pokemon": side_pokemon}, "rqid": rqid}
    if active is not None:
        req["active"] = [active]
    if force_switch:
        req["forceSwitch"] = [True]
        req["noCancel"] = True
    return req


# ---------------------------------------------------------------------------------------------
# metamon's DefaultObservationSpace example: a small gen1ou battle
# ---------------------------------------------------------------------------------------------


def gen1_example_battle() -> Battle:
    """Own Alakazam (Psychic, Recover, Thunder Wave, Seismic Toss) with Starmie and Chansey
    (each knowing Surf + Blizzard) on the bench; the opponent's Tauros has just used Body Slam
    and the opponent's side has Reflect. Built from protocol lines only, so, as in the example,
    no item is known for any Pokémon."""
    battle = new_battle("gen1ou")
    return feed(
        battle,
        "|switch|p1a: Alakazam|Alakazam|100/100",
        "|switch|p2a: Tauros|Tauros|100/100",
        "|turn|1",
        "|move|p1a: Alakazam|Psychic|p2a: Tauros",
        "|move|p1a: Alakazam|Recover|p1a: Alakazam",
        "|move|p1a: Alakazam|Thunder Wave|p2a: Tauros",
        "|move|p1a: Alakazam|Seismic Toss|p2a: Tauros",
        "|switch|p1a: Starmie|Starmie|100/100",
        "|move|p1a: Starmie|Surf|p2a: Tauros",
        "|move|p1a: Starmie|Blizzard|p2a: Tauros",
        "|switch|p1a: Chansey|Chansey|100/100",
        "|move|p1a: Chansey|Surf|p2a: Tauros",
        "|move|p1a: Chansey|Blizzard|p2a: Tauros",
        "|switch|p1a: Alakazam|Alakazam|100/100",
        "|move|p2a: Tauros|Body Slam|p1a: Alakazam",
        f"|-sidestart|p2: {OPPONENT}|Reflect",
        "|turn|2",
    )


# ---------------------------------------------------------------------------------------------
# A gen9ou battle with team preview and tera
# ---------------------------------------------------------------------------------------------

# name, details, moves, item, ability, tera type, max hp
GEN9_TEAM = [
    ("Great Tusk", "Great Tusk", ["headlongrush", "icespinner", "knockoff", "rapidspin"],
     "boosterenergy", "protosynthesis", "Ground", 357),
    ("Kingambit", "Kingambit, M", ["kowtowcleave", "suckerpunch", "ironhead", "swordsdance"],
     "leftovers", "supremeoverlord", "Dark", 341),
    ("Dragapult", "Dragapult, F", ["dracometeor", "shadowball", "uturn", "willowisp"],
     "choicespecs", "infiltrator", "Ghost", 317),
    ("Rotom", "Rotom-Wash", ["hydropump", "voltswitch", "willowisp", "painsplit"],
     "leftovers", "levitate", "Water", 303),
    ("Iron Valiant", "Iron Valiant", ["moonblast", "closecombat", "knockoff", "encore"],
     "boosterenergy", "quarkdrive", "Fairy", 291),
    ("Ting-Lu", "Ting-Lu", ["earthquake", "ruination", "spikes", "whirlwind"],
     "leftovers", "vesselofruin", "Poison", 511),
]
GEN9_OPPONENTS = ["Gholdengo", "Garganacl, M", "Corviknight, F", "Samurott-Hisui, M",
                  "Heatran, F", "Zamazenta"]
GREAT_TUSK_MOVES = [("headlongrush", 8, 8), ("icespinner", 24, 24), ("knockoff", 32, 32),
                    ("rapidspin", 64, 64)]


def gen9_side(active: str = "Great Tusk", fainted: Iterable[str] = (),
              reviving: bool = False) -> list[dict]:
    """Our six gen9 Pokémon as request entries; ``fainted`` names are at ``0 fnt``."""
    fainted = set(fainted)
    side = []
    for name, details, moves, item, ability, tera, max_hp in GEN9_TEAM:
        condition = "0 fnt" if name in fainted else f"{max_hp}/{max_hp}"
        side.append(
            request_pokemon(name, details, condition, name == active, moves, item, ability,
                            tera, reviving=reviving and name == active)
        )
    return side


def gen9_battle() -> Battle:
    """Team preview of the opponent's six, Great Tusk vs Gholdengo on turn 1, no request yet."""
    battle = new_battle("gen9ou")
    feed(battle, *[f"|poke|p2|{details}|" for details in GEN9_OPPONENTS])
    feed(battle, *[f"|poke|p1|{details}|" for _, details, *_ in GEN9_TEAM])
    return feed(
        battle,
        "|teampreview",
        "|start",
        "|switch|p1a: Great Tusk|Great Tusk|357/357",
        "|switch|p2a: Gholdengo|Gholdengo|100/100",
        "|turn|1",
    )


def gen9_battle_with_request(can_tera: bool = True, disabled: Iterable[str] = (),
                             trapped: bool = False) -> Battle:
    """:func:`gen9_battle` plus the turn-1 move request for Great Tusk."""
    battle = gen9_battle()
    battle.parse_request(
        request(
            gen9_side(),
            active_request(GREAT_TUSK_MOVES, disabled=disabled,
                           can_tera="Ground" if can_tera else None, trapped=trapped),
        )
    )
    return battle


def gen9_tera_battle() -> Battle:
    """A recorded gen9ou battle at turn 4 with a terastallised Pokémon on each side.

    Turn 1: Great Tusk switches to Dragapult, Gholdengo uses Make It Rain. Turn 2: Dragapult
    terastallises (Ghost) and uses Shadow Ball; Gholdengo terastallises (Fairy) and uses Shadow
    Ball. Turn 3: Dragapult switches back to Great Tusk, Gholdengo uses Make It Rain again and
    Stealth Rock goes up on our side. Then the turn-4 request: Great Tusk active (no tera left),
    Dragapult on the bench with tera type Ghost.
    """
    battle = gen9_battle()
    feed(
        battle,
        "|switch|p1a: Dragapult|Dragapult, F|317/317",
        "|move|p2a: Gholdengo|Make It Rain|p1a: Dragapult",
        "|-damage|p1a: Dragapult|251/317",
        "|turn|2",
        "|-terastallize|p1a: Dragapult|Ghost",
        "|move|p1a: Dragapult|Shadow Ball|p2a: Gholdengo",
        "|-damage|p2a: Gholdengo|55/100",
        "|-terastallize|p2a: Gholdengo|Fairy",
        "|move|p2a: Gholdengo|Shadow Ball|p1a: Dragapult",
        "|-damage|p1a: Dragapult|120/317",
        "|turn|3",
        "|switch|p1a: Great Tusk|Great Tusk|357/357",
        "|move|p2a: Gholdengo|Make It Rain|p1a: Great Tusk",
        "|-damage|p1a: Great Tusk|300/357",
        f"|-sidestart|p1: {USERNAME}|move: Stealth Rock",
        "|turn|4",
    )
    side = gen9_side()
    for entry in side:
        if entry["ident"] == "p1: Great Tusk":
            entry["condition"] = "300/357"
        if entry["ident"] == "p1: Dragapult":
            entry["condition"] = "120/317"
            entry["details"] = "Dragapult, F, tera:Ghost"
            entry["terastallized"] = "Ghost"
    battle.parse_request(request(side, active_request(GREAT_TUSK_MOVES)))
    return battle

"""Builtin teams against the pinned server: validator legality and one real battle per format."""

import asyncio
import uuid

import pytest
from poke_env import AccountConfiguration
from poke_env.data import GenData, to_id_str
from poke_env.player import RandomPlayer

from metamon.teams import BUILTIN_TEAMS_DIR, TeamSet, parse_team_file, validate_teams

BUILTIN_FORMATS = ["gen1ou", "gen2ou", "gen3ou", "gen4ou", "gen9ou"]
STAT_EXP = "EVs: 252 HP / 252 Atk / 252 Def / 252 SpA / 252 SpD / 252 Spe"
HP_TYPES = [
    "Bug", "Dark", "Dragon", "Electric", "Fighting", "Fire", "Flying", "Ghost",
    "Grass", "Ground", "Ice", "Poison", "Psychic", "Rock", "Steel", "Water",
]


@pytest.mark.parametrize("fmt", BUILTIN_FORMATS)
def test_every_builtin_team_is_legal(fmt):
    files = sorted((BUILTIN_TEAMS_DIR / fmt).glob(f"*.{fmt}_team"))
    assert len(files) >= 12
    problems = validate_teams(BUILTIN_TEAMS_DIR / fmt, fmt)
    assert list(problems) == files
    assert {f.name: p for f, p in problems.items() if p} == {}


def test_illegal_teams_are_reported(tmp_path):
    no_evs = tmp_path / "no_evs.gen1ou_team"
    no_evs.write_text("Tauros\n- Body Slam\n- Hyper Beam\n- Blizzard\n- Earthquake\n")
    bad_move = tmp_path / "bad_move.gen1ou_team"
    bad_move.write_text(f"Tauros\n{STAT_EXP}\n- Body Slam\n- Soft-Boiled\n")
    legal = tmp_path / "legal.gen1ou_team"
    legal.write_text(f"Tauros\n{STAT_EXP}\n- Body Slam\n- Hyper Beam\n")
    malformed = tmp_path / "malformed.gen1ou_team"
    malformed.write_text("Tauros\nEVs: 252 Attack\n- Body Slam\n")

    problems = validate_teams([no_evs, bad_move, legal, malformed], "gen1ou")
    assert list(problems) == [no_evs, bad_move, legal, malformed]
    assert len(problems[no_evs]) == 1
    assert problems[no_evs][0].startswith("Tauros has exactly 0 EVs - did you forget to EV it?")
    assert problems[bad_move] == ["Tauros can't learn Soft-Boiled."]
    assert problems[legal] == []
    # The server reads "252 Attack", poke-env cannot: the only problem is poke-env's, naming the file.
    assert len(problems[malformed]) == 1
    assert str(malformed) in problems[malformed][0] and "KeyError" in problems[malformed][0]


def test_gen9_and_gen4_rules(tmp_path):
    clefable = tmp_path / "clef.gen9ou_team"
    clefable.write_text(
        "Clefable @ Leftovers\nAbility: Magic Guard\nTera Type: Steel\nEVs: 252 HP / 252 Def / 4 SpA\n"
        "Bold Nature\n- Moonblast\n- Soft-Boiled\n- Tera Blast\n- Calm Mind\n"
    )
    sleeper = tmp_path / "sleep.gen4ou_team"
    sleeper.write_text(
        "Breloom @ Toxic Orb\nAbility: Poison Heal\nEVs: 252 HP / 252 Atk / 4 SpD\nAdamant Nature\n"
        "- Spore\n- Seed Bomb\n- Focus Punch\n- Substitute\n"
    )
    gen9 = validate_teams([clefable], "gen9ou")[clefable]
    assert "Clefable's move Soft-Boiled can't be transferred from Gen 3 to 9." in " ".join(gen9)
    assert any("Tera Blast" in p and "banned" in p for p in gen9)
    gen4 = validate_teams([sleeper], "gen4ou")[sleeper]
    assert any("Spore" in p and "Sleep Moves Clause" in p for p in gen4)


@pytest.mark.parametrize(
    "fmt, extra",
    [("gen2ou", STAT_EXP), ("gen3ou", "Ability: Pressure\nEVs: 252 SpA / 252 Spe\nTimid Nature")],
    ids=["gen2ou", "gen3ou"],
)
def test_every_hidden_power_type_survives_packing(tmp_path, fmt, extra):
    """poke-env's own Hidden Power IV table is wrong for gen 2 and several gen 3+ types; the
    packed teams TeamSet sends must still be legal."""
    files = []
    for hp in HP_TYPES:
        f = tmp_path / f"hp_{hp}.{fmt}_team"
        f.write_text(f"Zapdos @ Leftovers\n{extra}\n- Thunderbolt\n- Hidden Power [{hp}]\n- Rest\n- Sleep Talk\n")
        files.append(f)
    problems = validate_teams(files, fmt)
    assert {f.name: p for f, p in problems.items() if p} == {}


# ------------------------------------------------------------------------------------------
# One battle per builtin format
# ------------------------------------------------------------------------------------------
def base_species_ids(species_names, gen):
    pokedex = GenData.from_gen(gen).pokedex
    return sorted(to_id_str(pokedex[to_id_str(s)].get("baseSpecies", s)) for s in species_names)


async def play_one_battle(p1, p2, timeout):
    try:
        await asyncio.wait_for(p1.battle_against(p2, n_battles=1), timeout=timeout)
    finally:
        for p in (p1, p2):
            await asyncio.wait_for(p.ps_client.stop_listening(), timeout=10)


@pytest.mark.parametrize("fmt", BUILTIN_FORMATS)
def test_random_players_finish_a_battle_with_builtin_teams(showdown_server, fmt):
    gen = int(fmt[3])
    tag = uuid.uuid4().hex[:5]
    sets = [TeamSet(BUILTIN_TEAMS_DIR / fmt, fmt, seed=s) for s in (1, 2)]
    players = [
        RandomPlayer(
            AccountConfiguration(f"ts{fmt}{side}{tag}", None),
            battle_format=fmt,
            team=team_set,
            server_configuration=showdown_server.server_configuration,
            max_concurrent_battles=1,
        )
        for side, team_set in zip("ab", sets)
    ]
    assert all(len(p.username) <= 18 for p in players)
    asyncio.run(play_one_battle(*players, timeout=240))

    for player, team_set in zip(players, sets):
        assert player.n_finished_battles == 1
        (battle,) = player.battles.values()
        assert battle.finished
        expected = [m.species or m.nickname for m in parse_team_file(team_set.most_recent_team_file)]
        assert sorted(to_id_str(p.base_species) for p in battle.team.values()) == base_species_ids(expected, gen)
    assert players[0].n_won_battles + players[0].n_lost_battles + players[0].n_tied_battles == 1

"""A few short gen9ou trajectory files, written without a server (for the pre-flight tools)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from metamon.data.trajectory_file import trajectory_filename, write_trajectory
from metamon.interface import UniversalMove, UniversalPokemon, UniversalState

FMT = "gen9ou"


def _mon(name: str, hp: float = 1.0) -> UniversalPokemon:
    moves = [UniversalMove(m, "normal", "physical", 80, 1.0, 0, 16, 16) for m in ("tackle", "bodyslam")]
    return UniversalPokemon(
        name=name, hp_pct=hp, types="normal notype", item="leftovers", ability="thickfat", lvl=100,
        status="nostatus", effect="noeffect", moves=moves, atk_boost=0, spa_boost=0, def_boost=0,
        spd_boost=0, spe_boost=0, accuracy_boost=0, evasion_boost=0, base_atk=110, base_spa=65,
        base_def=65, base_spd=110, base_spe=30, base_hp=160, tera_type="notype", base_species=name,
    )


def _states(n: int, seed: int) -> list[dict]:
    return [
        UniversalState(
            format=FMT, player_active_pokemon=_mon("snorlax", 1.0 - 0.05 * t),
            opponent_active_pokemon=_mon(("blissey", "chansey", "tauros")[seed % 3], 1.0 - 0.1 * t),
            available_switches=[_mon("tauros")], player_prev_move=UniversalMove.blank_move(),
            opponent_prev_move=UniversalMove.blank_move(), opponents_remaining=6,
            player_conditions="noconditions", opponent_conditions="noconditions", weather="noweather",
            battle_field="nofield", forced_switch=False, battle_won=t == n - 1, battle_lost=False,
            can_tera=False, opponent_teampreview=["blissey"] * 6,
        ).to_dict()
        for t in range(n)
    ]


def write_replays(root: Path, n_battles: int = 6, length: int = 8) -> Path:
    """``n_battles`` won battles of ``length`` states (moves 0 and 1 alternate) under ``root/gen9ou``."""
    for i in range(n_battles):
        name = trajectory_filename(f"{FMT}-{i:03d}", "alice", "bob", True, date=datetime(2025, 10, 27))
        actions = [t % 2 for t in range(length - 1)] + [-1]
        write_trajectory(root, FMT, name, _states(length, i), actions)
    return root

"""Offline-data throughput: trajectory files -> tokenized training arrays.

Measures, over the same files:

* ``raw``: read + lz4-frame decompress + ``orjson.loads``: the reference the target is set
  against ("data loading >= 0.5 x the raw lz4 + orjson decode of the same files", issue 15). It
  is also what the dataset itself pays to decode (``metamon.data.trajectory_file`` parses with
  ``orjson``);
* ``raw_stdlib``: the same with the standard library's ``json.loads`` (about 2x slower; the
  reference of earlier reports, whose "0.54-0.59" ratios were item / raw_stdlib);
* ``load``: ``load_trajectory`` = raw + validation + building ``UniversalState`` objects;
* ``item``: ``ParsedReplayDataset.__getitem__`` with ``TokenizedObservationSpace(
  TeamPreviewObservationSpace, metamon-gemma-v1)``, ``DefaultActionSpace`` and
  ``DefaultShapedReward`` (load + observation pass + actions + rewards);
* ``obs``: the observation pass alone on pre-built states (the part owned by the interface);
* ``item_cached``: the same ``__getitem__`` with a warm ``featurized_cache``
  (:mod:`metamon.data.featurized_cache`): every later epoch's read of a file. The first pass,
  which featurizes and writes the cache, is timed once (``cache_fill``, one pass, no minima),
  and every cached item is checked equal to the uncached one;

and prints timesteps/s of each (states per CPU second), the ratio ``item / raw`` (target >=
0.5) and, for reference, ``item / raw_stdlib``. Timing is per file: in each of ``--repeats``
rounds every phase processes file ``i`` in a random order before any phase moves on to file
``i + 1``, and each (phase, file) keeps its fastest round; the rate is timesteps / the sum of
those minima. On a shared machine a busy moment then hits every phase alike and is discarded
file by file (the minimum of whole passes, the earlier method, penalised the longest pass most).
It also times indexing ``--index_files`` empty files with valid names (listing never opens a
file, so empty files are enough).

Files are synthetic but shaped like real battles (6 v 6 teams of real gen 1 / gen 9 OU Pokémon,
damage, faints, forced switches, revealed opponent moves, tera and team preview in gen 9),
written with ``write_trajectory``; or pass ``--dir`` (a root with ``<format>/`` folders).

    python benchmarks/data_throughput.py                 # 300 files, 100k-name index
    python benchmarks/data_throughput.py --smoke         # a few seconds
    python benchmarks/data_throughput.py --dir ~/metamon_cache/parsed-replays --formats gen1ou
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import lz4.frame
import numpy as np
import orjson

from metamon.data.parsed_replay_dset import ParsedReplayDataset
from metamon.data.trajectory_file import load_trajectory, trajectory_filename, write_trajectory
from metamon.interface import (
    DefaultActionSpace,
    DefaultShapedReward,
    TeamPreviewObservationSpace,
    TokenizedObservationSpace,
    UniversalMove,
    UniversalPokemon,
    UniversalState,
)
from metamon.tokenizer import get_tokenizer

# ---------------------------------------------------------------------------------------------
# Synthetic battles
# ---------------------------------------------------------------------------------------------
# move -> (type, category, base power, accuracy, priority, max pp)
MOVES = {
    "psychic": ("psychic", "special", 90, 1.0, 0, 16), "recover": ("normal", "status", 0, 1.0, 0, 16),
    "thunderwave": ("electric", "status", 0, 1.0, 0, 32), "seismictoss": ("fighting", "physical", 1, 1.0, 0, 32),
    "bodyslam": ("normal", "physical", 85, 1.0, 0, 24), "hyperbeam": ("normal", "physical", 150, 0.9, 0, 8),
    "earthquake": ("ground", "physical", 100, 1.0, 0, 16), "blizzard": ("ice", "special", 120, 0.9, 0, 8),
    "surf": ("water", "special", 95, 1.0, 0, 24), "softboiled": ("normal", "status", 0, 1.0, 0, 16),
    "icebeam": ("ice", "special", 95, 1.0, 0, 16), "thunderbolt": ("electric", "special", 95, 1.0, 0, 24),
    "rest": ("psychic", "status", 0, 1.0, 0, 16), "amnesia": ("psychic", "status", 0, 1.0, 0, 32),
    "makeitrain": ("steel", "special", 120, 1.0, 0, 8), "shadowball": ("ghost", "special", 80, 1.0, 0, 24),
    "nastyplot": ("dark", "status", 0, 1.0, 0, 32), "headlongrush": ("ground", "physical", 120, 1.0, 0, 8),
    "rapidspin": ("normal", "physical", 50, 1.0, 0, 64), "closecombat": ("fighting", "physical", 120, 1.0, 0, 8),
    "kowtowcleave": ("dark", "physical", 85, 1.0, 0, 16), "suckerpunch": ("dark", "physical", 70, 1.0, 1, 8),
    "swordsdance": ("normal", "status", 0, 1.0, 0, 32), "dragondarts": ("dragon", "physical", 50, 1.0, 0, 16),
    "uturn": ("bug", "physical", 70, 1.0, 0, 32), "willowisp": ("fire", "status", 0, 0.85, 0, 24),
    "saltcure": ("rock", "physical", 40, 1.0, 0, 24), "protect": ("normal", "status", 0, 1.0, 4, 16),
    "stealthrock": ("rock", "status", 0, 1.0, 0, 32), "bodypress": ("fighting", "physical", 80, 1.0, 0, 16),
    "roost": ("flying", "status", 0, 1.0, 0, 8), "bravebird": ("flying", "physical", 120, 1.0, 0, 24),
    "earthpower": ("ground", "special", 90, 1.0, 0, 16), "taunt": ("dark", "status", 0, 1.0, 0, 32),
    "moonblast": ("fairy", "special", 95, 1.0, 0, 24), "dragondance": ("dragon", "status", 0, 1.0, 0, 32),
}
# species -> (types, (atk, spa, def, spd, spe, hp), moves, items, abilities)
GEN1 = {
    "alakazam": ("notype psychic", (50, 135, 45, 135, 120, 55), ["psychic", "recover", "thunderwave", "seismictoss"]),
    "tauros": ("normal notype", (100, 40, 95, 70, 110, 75), ["bodyslam", "hyperbeam", "earthquake", "blizzard"]),
    "chansey": ("normal notype", (5, 105, 5, 105, 50, 250), ["icebeam", "thunderbolt", "softboiled", "thunderwave"]),
    "starmie": ("psychic water", (75, 100, 85, 100, 115, 60), ["surf", "thunderbolt", "recover", "thunderwave"]),
    "snorlax": ("normal notype", (110, 65, 65, 110, 30, 160), ["bodyslam", "hyperbeam", "earthquake", "rest"]),
    "exeggutor": ("grass psychic", (95, 125, 85, 65, 55, 95), ["psychic", "rest", "hyperbeam", "blizzard"]),
    "zapdos": ("electric flying", (90, 125, 85, 90, 100, 90), ["thunderbolt", "thunderwave", "rest", "hyperbeam"]),
    "rhydon": ("ground rock", (130, 45, 120, 45, 40, 105), ["earthquake", "bodyslam", "rest", "hyperbeam"]),
    "lapras": ("ice water", (85, 95, 80, 95, 60, 130), ["blizzard", "thunderbolt", "bodyslam", "amnesia"]),
    "jynx": ("ice psychic", (50, 95, 35, 95, 95, 65), ["blizzard", "psychic", "rest", "seismictoss"]),
}
GEN9 = {
    "gholdengo": ("ghost steel", (60, 133, 95, 91, 84, 87), ["makeitrain", "shadowball", "nastyplot", "recover"]),
    "greattusk": ("fighting ground", (131, 53, 131, 53, 87, 115),
                  ["headlongrush", "rapidspin", "closecombat", "stealthrock"]),
    "kingambit": ("dark steel", (135, 60, 120, 85, 50, 100), ["kowtowcleave", "suckerpunch", "swordsdance", "protect"]),
    "dragapult": ("dragon ghost", (120, 100, 75, 75, 142, 88), ["dragondarts", "shadowball", "uturn", "willowisp"]),
    "garganacl": ("notype rock", (100, 45, 130, 90, 35, 100), ["saltcure", "protect", "stealthrock", "bodypress"]),
    "corviknight": ("flying steel", (87, 53, 105, 85, 67, 98), ["bravebird", "roost", "uturn", "bodypress"]),
    "heatran": ("fire steel", (90, 130, 106, 106, 77, 91), ["earthpower", "taunt", "stealthrock", "protect"]),
    "ironvaliant": ("fairy fighting", (130, 120, 90, 60, 116, 74),
                    ["moonblast", "closecombat", "swordsdance", "taunt"]),
    "roaringmoon": ("dark dragon", (139, 55, 71, 101, 119, 105), ["dragondance", "kowtowcleave", "roost", "uturn"]),
}
GEN9_ITEMS = ["leftovers", "choicescarf", "boosterenergy", "heavydutyboots", "rockyhelmet", "airballoon"]
GEN9_ABILITIES = ["goodasgold", "protosynthesis", "supremeoverlord", "clearbody", "purifyingsalt", "flashfire"]
GEN9_TERA = ["steel", "ghost", "fairy", "water", "fire", "dragon", "stellar"]


class _Mon:
    """One Pokémon's battle state (what the writer of a trajectory would know about it)."""

    def __init__(self, rng: random.Random, species: str, dex: dict, gen9: bool, own: bool):
        types, stats, moves = dex[species]
        self.species, self.types, self.stats = species, types, stats
        self.moves = {m: MOVES[m][5] for m in moves}
        self.revealed = list(moves) if own else []
        self.item = rng.choice(GEN9_ITEMS) if gen9 and own else "unknownitem"
        self.ability = (rng.choice(GEN9_ABILITIES) if own else "unknownability") if gen9 else "noability"
        self.hp, self.status, self.boost, self.tera = 1.0, "nostatus", 0, "notype"
        self.tera_choice = rng.choice(GEN9_TERA)

    def use(self, rng: random.Random) -> str:
        move = rng.choice(list(self.moves))
        self.moves[move] = max(0, self.moves[move] - 1)
        if move not in self.revealed:
            self.revealed.append(move)
        return move

    def to_universal(self) -> UniversalPokemon:
        moves = [UniversalMove(m, *MOVES[m][:5], self.moves[m], MOVES[m][5]) for m in self.revealed[:4]]
        atk, spa, dfn, spd, spe, hp = self.stats
        return UniversalPokemon(
            name=self.species, hp_pct=round(self.hp, 3), types=self.types, item=self.item,
            ability=self.ability, lvl=100, status=self.status, effect="noeffect", moves=moves,
            atk_boost=self.boost, spa_boost=0, def_boost=0, spd_boost=0, spe_boost=0,
            accuracy_boost=0, evasion_boost=0, base_atk=atk, base_spa=spa, base_def=dfn,
            base_spd=spd, base_spe=spe, base_hp=hp, tera_type=self.tera, base_species=self.species,
        )


def synthetic_battle(rng: random.Random, battle_format: str) -> tuple[list[dict], list[int]]:
    """States (``to_dict``) and universal actions of one made-up battle until a side is out."""
    gen9 = battle_format.startswith("gen9")
    dex = GEN9 if gen9 else GEN1
    ours = [_Mon(rng, s, dex, gen9, own=True) for s in rng.sample(sorted(dex), 6)]
    theirs = [_Mon(rng, s, dex, gen9, own=False) for s in rng.sample(sorted(dex), 6)]
    me, opp = ours[0], theirs[0]
    can_tera, forced = gen9, False
    my_prev = opp_prev = UniversalMove.blank_move()
    states, actions = [], []
    while True:
        bench = sorted((m for m in ours if m is not me and m.hp > 0), key=lambda m: m.species)
        done = me.hp <= 0 and not bench or all(m.hp <= 0 for m in theirs)
        states.append(UniversalState(
            format=battle_format, player_active_pokemon=me.to_universal(),
            opponent_active_pokemon=opp.to_universal(),
            available_switches=[m.to_universal() for m in bench], player_prev_move=my_prev,
            opponent_prev_move=opp_prev, opponents_remaining=sum(m.hp > 0 for m in theirs),
            player_conditions=rng.choice(["noconditions", "stealthrock", "reflect"]),
            opponent_conditions=rng.choice(["noconditions", "spikes"]), weather=rng.choice(["noweather", "sandstorm"]),
            battle_field="nofield", forced_switch=forced, battle_won=done and me.hp > 0,
            battle_lost=done and me.hp <= 0, can_tera=can_tera,
            opponent_teampreview=[m.species for m in theirs] if gen9 else [],
        ).to_dict())
        if done:
            actions.append(-1)
            return states, actions
        if forced or (bench and rng.random() < 0.15):  # switch
            k = rng.randrange(len(bench))
            actions.append(4 + k)
            me, forced, my_prev = bench[k], False, UniversalMove.blank_move()
        elif rng.random() < 0.05:  # unrevealed action (e.g. full paralysis)
            actions.append(-1)
        else:
            move = me.use(rng)
            tera = can_tera and rng.random() < 0.1
            if tera:
                me.tera, can_tera = me.tera_choice, False
            actions.append(sorted(me.revealed[:4]).index(move) + (9 if tera else 0))
            my_prev = UniversalMove(move, *MOVES[move][:5], me.moves[move], MOVES[move][5])
            opp.hp = max(0.0, opp.hp - rng.uniform(0.1, 0.6))
            if rng.random() < 0.1 and opp.status == "nostatus":
                opp.status = rng.choice(["par", "brn", "slp"])
        if opp.hp <= 0:
            opp = next((m for m in theirs if m.hp > 0), opp)
        opp_move = opp.use(rng)
        opp_prev = UniversalMove(opp_move, *MOVES[opp_move][:5], opp.moves[opp_move], MOVES[opp_move][5])
        me.hp = max(0.0, me.hp - rng.uniform(0.05, 0.45))
        forced = me.hp <= 0 and bool([m for m in ours if m is not me and m.hp > 0])


def write_synthetic_files(root: Path, n_files: int, formats: list[str], seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2025, 10, 1)
    for i in range(n_files):
        fmt = formats[i % len(formats)]
        states, actions = synthetic_battle(rng, fmt)
        won = states[-1]["battle_won"]
        name = trajectory_filename(f"{fmt}-{1000000 + i}", "alice", "bob", won,
                                   date=start + timedelta(minutes=i), rating=str(rng.randint(1000, 1800)))
        write_trajectory(root, fmt, name, states, actions)


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------
def _fastest_seconds(phases: dict, n_items: int, repeats: int, seed: int = 0) -> dict:
    """phase -> sum over items of the fastest of ``repeats`` calls ``fn(items[i])`` (CPU seconds).

    ``phases`` maps a name to ``(fn, items)`` with ``n_items`` index-aligned items. Process time
    is steadier than wall time on a shared machine and equal to it for this single-threaded,
    page-cached work.
    """
    rng = random.Random(seed)
    fastest = {key: [float("inf")] * n_items for key in phases}
    clock = time.process_time
    for _ in range(repeats):
        for i in range(n_items):
            order = list(phases)
            rng.shuffle(order)
            for key in order:
                fn, items = phases[key]
                start = clock()
                fn(items[i])
                seconds = clock() - start
                if seconds < fastest[key][i]:
                    fastest[key][i] = seconds
    return {key: sum(times) for key, times in fastest.items()}


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    return lz4.frame.decompress(raw) if path.endswith(".lz4") else raw


def raw_decode(path: str) -> dict:
    """The reference: read + lz4 + ``orjson.loads``."""
    return orjson.loads(_read(path))


def stdlib_decode(path: str) -> dict:
    """Read + lz4 + the standard library's ``json.loads``."""
    return json.loads(_read(path))


def _same_item(a, b) -> bool:
    (obs_a, act_a, rew_a, done_a), (obs_b, act_b, rew_b, done_b) = a, b
    return (
        obs_a.keys() == obs_b.keys()
        and all(len(obs_a[k]) == len(obs_b[k]) and all(np.array_equal(x, y) for x, y in zip(obs_a[k], obs_b[k]))
                for k in obs_a)
        and act_a == act_b and np.array_equal(rew_a, rew_b) and np.array_equal(done_a, done_b)
    )


def measure_throughput(root: Path, formats: list[str], repeats: int, cache_dir: Path) -> dict:
    obs_space = TokenizedObservationSpace(TeamPreviewObservationSpace(), get_tokenizer("metamon-gemma-v1"))
    spaces = (obs_space, DefaultActionSpace(), DefaultShapedReward())
    dset = ParsedReplayDataset(*spaces, dset_root=root, formats=formats)
    cached = ParsedReplayDataset(*spaces, dset_root=root, formats=formats, featurized_cache=cache_dir)
    paths = dset.filenames
    n_timesteps = sum(len(raw_decode(p)["states"]) for p in paths)
    loaded = [load_trajectory(p)[0] for p in paths]

    def observe(states):
        dset.observation_space.reset()
        for s in states:
            dset.observation_space.state_to_obs(s)

    start = time.process_time()
    for i in range(len(cached)):
        cached[i]
    fill_seconds = time.process_time() - start
    different = [i for i in range(len(dset)) if not _same_item(dset[i], cached[i])]
    if different:
        raise SystemExit(f"error: {len(different)} cached items differ from uncached ones (e.g. {paths[different[0]]})")

    phases = {
        "raw": (raw_decode, paths),
        "raw_stdlib": (stdlib_decode, paths),
        "load": (load_trajectory, paths),
        "item": (dset.__getitem__, range(len(dset))),
        "obs": (observe, loaded),
        "item_cached": (cached.__getitem__, range(len(cached))),
    }
    best = _fastest_seconds(phases, len(paths), repeats)
    rates = {key: n_timesteps / seconds for key, seconds in best.items()}
    if dset.skipped:
        print(f"warning: skipped files {dict(dset.skipped)}", file=sys.stderr)
    rates["cache_fill"] = n_timesteps / fill_seconds
    cache_bytes = sum(f.stat().st_size for f in Path(cache_dir).rglob("*.mfc"))
    source_bytes = sum(os.path.getsize(p) for p in paths)
    return {"files": len(paths), "timesteps": n_timesteps, "cache_bytes": cache_bytes,
            "source_bytes": source_bytes, "cache_stats": dict(cached.featurized_cache.stats), **rates}


def measure_indexing(n_files: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gen9ou"
        folder.mkdir()
        start = time.perf_counter()
        for i in range(n_files):
            result = "WIN" if i % 2 else "LOSS"
            name = f"gen9ou-{i}_{1000 + i % 900}_player{i}_vs_opponent_10-27-2025-14:03:11_{result}.json.lz4"
            os.close(os.open(folder / name, os.O_CREAT | os.O_WRONLY, 0o644))
        created = time.perf_counter() - start
        obs_space = TeamPreviewObservationSpace()
        start = time.perf_counter()
        dset = ParsedReplayDataset(obs_space, DefaultActionSpace(), DefaultShapedReward(), dset_root=tmp,
                                   min_rating=1200, min_date=datetime(2025, 1, 1))
        indexed = time.perf_counter() - start
        start = time.perf_counter()
        dset.refresh_files()
        refreshed = time.perf_counter() - start
        return {"files": n_files, "kept": len(dset), "create_s": created, "index_s": indexed, "refresh_s": refreshed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n_files", type=int, default=300)
    parser.add_argument("--formats", nargs="+", default=["gen1ou", "gen9ou"])
    parser.add_argument("--dir", type=Path, default=None, help="use the files of this root instead of synthetic ones")
    parser.add_argument("--index_files", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="20 files, 5k names, 1 repeat")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n_files, args.index_files, args.repeats = 20, 5_000, 1

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir
        if root is None:
            root = Path(tmp)
            write_synthetic_files(root, args.n_files, args.formats, args.seed)
        r = measure_throughput(root, args.formats, args.repeats, Path(tmp) / "featurized_cache")
    print(f"files: {r['files']}  timesteps: {r['timesteps']}  ({r['timesteps'] / r['files']:.1f} per file)")
    for key, label in [("raw", "raw lz4 + orjson decode (reference)"), ("raw_stdlib", "raw lz4 + json.loads"),
                       ("load", "load_trajectory (decode + states)"),
                       ("item", "dataset __getitem__ (tokenized)"), ("obs", "observation pass alone"),
                       ("cache_fill", "first pass, filling the cache"), ("item_cached", "__getitem__, warm cache")]:
        print(f"  {label:36s} {r[key]:10.0f} timesteps/s")
    print(f"ratio item / raw lz4+orjson: {r['item'] / r['raw']:.2f} (target >= 0.5); "
          f"item / raw lz4+json.loads: {r['item'] / r['raw_stdlib']:.2f}")
    print(f"with a warm featurized cache: item / raw lz4+orjson {r['item_cached'] / r['raw']:.2f} "
          f"(first pass, writing it: {r['cache_fill'] / r['raw']:.2f}); cache {r['cache_bytes'] / 1e6:.1f} MB "
          f"for {r['source_bytes'] / 1e6:.1f} MB of trajectory files; {r['cache_stats']}")
    per_step = {k: 1e6 / r[k] for k in ("raw", "raw_stdlib", "load", "item", "obs")}
    print("time per timestep (us): " + ", ".join(f"{k} {v:.0f}" for k, v in per_step.items())
          + f"; building states {per_step['load'] - per_step['raw']:.0f}, "
          f"actions+rewards+windowing {per_step['item'] - per_step['load'] - per_step['obs']:.0f}")

    idx = measure_indexing(args.index_files)
    print(f"indexing {idx['files']} empty files (names only, rating+date filters; {idx['kept']} kept): "
          f"{idx['index_s']:.2f} s, refresh {idx['refresh_s']:.2f} s (creating them took {idx['create_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

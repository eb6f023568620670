"""ParsedReplayDataset and MixtureOfDatasets on trajectory files built in tmp_path (no server)."""

import builtins
import copy
import gc
import io
import json
import logging
import math
import os
import pickle
import random
import re
import shutil
import tempfile
import time
import tracemalloc
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace

import lz4.frame
import numpy as np
import orjson
import pytest

import metamon.data.mixture as mixture_module
import metamon.data.trajectory_file as tf
from metamon.data.mixture import MixtureOfDatasets
from metamon.data.parsed_replay_dset import (
    ParsedReplayDataset,
    TrajectoryFileError,
    _main,
    build_state,
    load_trajectory,
    parse_name_date,
)
from metamon.data.trajectory_file import (
    BAD_ACTIONS,
    BAD_DATE,
    BAD_JSON,
    BAD_NAME,
    BAD_SCHEMA,
    BAD_STATE,
    CORRUPT_LZ4,
    FORMAT_MISMATCH,
    LENGTH_MISMATCH,
    NOT_A_TRAJECTORY,
    TOO_SHORT,
    _parse_json,
    trajectory_filename,
    write_trajectory,
)
from metamon.errors import MetamonError, UnknownNameError
from metamon.formats import known_formats
from metamon.interface import (
    BinaryReward,
    DefaultActionSpace,
    DefaultShapedReward,
    MinimalActionSpace,
    TeamPreviewObservationSpace,
    TokenizedObservationSpace,
    UniversalMove,
    UniversalPokemon,
    UniversalState,
    maybe_valid_actions,
)
from metamon.tokenizer import get_tokenizer

FMT = "gen9ou"


# ---------------------------------------------------------------------------------------------
# Hand-built battles
# ---------------------------------------------------------------------------------------------
MOVES = {  # name -> (type, category, base power, accuracy, priority, max pp)
    "makeitrain": ("steel", "special", 120, 1.0, 0, 8),
    "shadowball": ("ghost", "special", 80, 1.0, 0, 24),
    "nastyplot": ("dark", "status", 0, 1.0, 0, 32),
    "recover": ("normal", "status", 0, 1.0, 0, 16),
    "bravebird": ("flying", "physical", 120, 1.0, 0, 24),
    "roost": ("flying", "status", 0, 1.0, 0, 8),
    "uturn": ("bug", "physical", 70, 1.0, 0, 32),
    "bodypress": ("fighting", "physical", 80, 1.0, 0, 16),
    "headlongrush": ("ground", "physical", 120, 1.0, 0, 8),
    "earthpower": ("ground", "special", 90, 1.0, 0, 16),
    "kowtowcleave": ("dark", "physical", 85, 1.0, 0, 16),
}
SPECIES = {
    "gholdengo": ("ghost steel", ["makeitrain", "shadowball", "nastyplot", "recover"]),
    "corviknight": ("flying steel", ["bravebird", "roost", "uturn", "bodypress"]),
    "kingambit": ("dark steel", ["kowtowcleave"]),
    "greattusk": ("fighting ground", ["headlongrush"]),
    "heatran": ("fire steel", ["earthpower"]),
}
PREVIEW = ["greattusk", "heatran", "dragapult", "garganacl", "ironvaliant", "roaringmoon"]


def move(name, pp=None):
    mtype, category, power, accuracy, priority, max_pp = MOVES[name]
    return UniversalMove(name, mtype, category, power, accuracy, priority, max_pp if pp is None else pp, max_pp)


def mon(name, hp=1.0, status="nostatus", n_moves=4, item="leftovers", ability="goodasgold", tera="notype"):
    types, moves = SPECIES[name]
    return UniversalPokemon(
        name=name, hp_pct=hp, types=types, item=item, ability=ability, lvl=100, status=status,
        effect="noeffect", moves=[move(m) for m in moves[:n_moves]], atk_boost=0, spa_boost=1,
        def_boost=0, spd_boost=0, spe_boost=-1, accuracy_boost=0, evasion_boost=0, base_atk=60,
        base_spa=133, base_def=95, base_spd=91, base_spe=84, base_hp=87, tera_type=tera,
        base_species=name,
    )


def opp(name, hp=1.0, status="nostatus"):
    return mon(name, hp, status, n_moves=1, item="unknownitem", ability="unknownability")


def state(player, opponent, switches, remaining=6, won=False, lost=False, can_tera=True,
          prev="nomove", opp_prev="nomove", fmt=FMT):
    return UniversalState(
        format=fmt, player_active_pokemon=player, opponent_active_pokemon=opponent,
        available_switches=switches,
        player_prev_move=UniversalMove.blank_move() if prev == "nomove" else move(prev),
        opponent_prev_move=UniversalMove.blank_move() if opp_prev == "nomove" else move(opp_prev),
        opponents_remaining=remaining, player_conditions="noconditions",
        opponent_conditions="stealthrock", weather="noweather", battle_field="nofield",
        forced_switch=False, battle_won=won, battle_lost=lost, can_tera=can_tera,
        opponent_teampreview=list(PREVIEW),
    )


def battle():
    """5 states: hit (0.3), switch to Corviknight (-0.1), opponent faints (+1), win (+102)."""
    states = [
        state(mon("gholdengo"), opp("greattusk"), [mon("kingambit"), mon("corviknight")]),
        state(mon("gholdengo", 0.7), opp("greattusk", 0.4), [mon("kingambit"), mon("corviknight")],
              prev="makeitrain", opp_prev="headlongrush"),
        state(mon("corviknight", 0.9), opp("greattusk", 0.4), [mon("kingambit"), mon("gholdengo", 0.7)],
              opp_prev="headlongrush"),
        state(mon("corviknight", 0.9), opp("heatran"), [mon("kingambit"), mon("gholdengo", 0.7)],
              remaining=5, prev="bodypress"),
        state(mon("corviknight", 0.9, tera="fighting"), opp("heatran", 0.0), [mon("kingambit"), mon("gholdengo", 0.7)],
              remaining=4, won=True, can_tera=False, prev="bodypress", opp_prev="earthpower"),
    ]
    # 0 = makeitrain (moves sorted: makeitrain nastyplot recover shadowball); 4 = corviknight
    # (switches sorted: corviknight kingambit); -1 = unrevealed; 9 = bodypress + tera
    actions = [0, 4, -1, 9, -1]
    return states, actions


def long_battle(n_states, fmt=FMT):
    """``n_states`` states whose numbers all differ (hp drops every turn). The opponent's Great
    Tusk is asleep at t=1 only and Heatran comes in at t=3, so observations after that depend on
    history (sticky "any opponent asleep" flag, revealed opponents)."""
    states = [
        state(mon("gholdengo", 1.0 - 0.02 * t),
              opp("greattusk" if t < 3 else "heatran", 1.0 - 0.05 * t, "slp" if t == 1 else "nostatus"),
              [mon("corviknight")], won=t == n_states - 1, fmt=fmt)
        for t in range(n_states)
    ]
    return states, [t % 4 for t in range(n_states - 1)] + [-1]


def name(i, rating="Unrated", won=True, when=datetime(2025, 10, 27, 14, 3, 11), fmt=FMT, suffix=".json.lz4"):
    return trajectory_filename(f"{fmt}-{i:03d}", "alice", "bob", won, date=when, rating=rating, suffix=suffix)


def write(root, filename, states, actions, fmt=FMT):
    return write_trajectory(root, fmt, filename, [s.to_dict() for s in states], actions)


def write_raw(root, filename, body, fmt=FMT):
    """Write ``body`` (bytes, or an object to JSON-encode and lz4-compress by name) unchecked."""
    folder = root / fmt
    folder.mkdir(parents=True, exist_ok=True)
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        if filename.endswith(".lz4"):
            body = lz4.frame.compress(body)
    (folder / filename).write_bytes(body)
    return folder / filename


@pytest.fixture(scope="module")
def tokenizer():
    return get_tokenizer("metamon-gemma-v1")


@pytest.fixture
def obs_space(tokenizer):
    return TokenizedObservationSpace(TeamPreviewObservationSpace(), tokenizer)


def dataset(obs_space, root, **kwargs):
    kwargs.setdefault("formats", [FMT])
    return ParsedReplayDataset(obs_space, DefaultActionSpace(), DefaultShapedReward(), dset_root=root, **kwargs)


def basenames(dset):
    return sorted(os.path.basename(p) for p in dset.filenames)


def assert_items_equal(a, b):
    obs_a, act_a, rew_a, done_a = a
    obs_b, act_b, rew_b, done_b = b
    assert obs_a.keys() == obs_b.keys()
    for key in obs_a:
        assert len(obs_a[key]) == len(obs_b[key])
        for x, y in zip(obs_a[key], obs_b[key]):
            np.testing.assert_array_equal(x, y)
    assert act_a == act_b
    np.testing.assert_array_equal(rew_a, rew_b)
    np.testing.assert_array_equal(done_a, done_b)


# ---------------------------------------------------------------------------------------------
# Items
# ---------------------------------------------------------------------------------------------
def test_item_structure_and_alignment(tmp_path, obs_space, tokenizer):
    states, actions = battle()
    write(tmp_path, name(1), states, actions)
    dset = dataset(obs_space, tmp_path)
    assert len(dset) == 1
    obs, acts, rewards, dones = dset[0]

    expected_space = TokenizedObservationSpace(TeamPreviewObservationSpace(), tokenizer)
    expected_space.reset()
    expected = [expected_space.state_to_obs(s) for s in states]
    assert set(obs) == {"text_tokens", "numbers"}
    for key in obs:
        assert isinstance(obs[key], list) and len(obs[key]) == 5  # T entries
        for got, want in zip(obs[key], expected):
            np.testing.assert_array_equal(got, want[key])
    assert obs["text_tokens"][0].dtype == np.int32 and obs["text_tokens"][0].shape == (106,)
    assert obs["numbers"][0].dtype == np.float32 and obs["numbers"][0].shape == (55,)
    # history matters: state 3 seen after states 0-2 remembers Great Tusk among revealed opponents
    fresh = TokenizedObservationSpace(TeamPreviewObservationSpace(), tokenizer).state_to_obs(states[3])
    assert not np.array_equal(obs["text_tokens"][3], fresh["text_tokens"])

    assert acts["chosen"] == [0, 4, -1, 9]  # T-1 entries: the trailing -1 is dropped
    assert acts["missing"] == [False, False, True, False]
    assert acts["legal"] == [maybe_valid_actions(s) for s in states[:-1]]
    assert acts["legal"][0] == {0, 1, 2, 3, 4, 5, 9, 10, 11, 12}

    assert rewards.dtype == np.float32 and rewards.shape == (4,)
    reward = DefaultShapedReward()
    by_hand = [reward(states[t], states[t + 1]) for t in range(4)]
    np.testing.assert_allclose(rewards, np.array(by_hand, dtype=np.float32))
    np.testing.assert_allclose(rewards, [0.3, -0.1, 1.0, 102.0], rtol=1e-6)
    assert dones.dtype == bool and dones.tolist() == [False, False, False, True]


def test_minimal_action_space_and_other_reward(tmp_path, obs_space):
    states, actions = battle()
    write(tmp_path, name(1), states, actions)
    dset = ParsedReplayDataset(obs_space, MinimalActionSpace(), BinaryReward(), dset_root=tmp_path, formats=[FMT])
    _, acts, rewards, _ = dset[0]
    assert acts["chosen"] == [0, 4, -1, 0]  # tera slot 9 -> move 0
    assert acts["legal"][0] == {0, 1, 2, 3, 4, 5}
    assert rewards.tolist() == [0.0, 0.0, 0.0, 100.0]


def test_spaces_are_copied(tmp_path, obs_space):
    states, actions = battle()
    write(tmp_path, name(1), states, actions)
    dset = dataset(obs_space, tmp_path)
    dset[0]
    assert dset.observation_space is not obs_space
    assert obs_space.base_obs_space.revealed_opponents == set()  # the caller's space is untouched


def test_windows_are_valid_and_cover_every_start(tmp_path, obs_space):
    states, actions = long_battle(12)
    write(tmp_path, name(1), states, actions)
    full = dataset(obs_space, tmp_path)[0]
    L = 3
    dset = dataset(obs_space, tmp_path, max_seq_len=L)
    random.seed(0)
    starts = set()
    for _ in range(300):
        obs, acts, rewards, dones = dset[0]
        assert len(obs["numbers"]) == len(obs["text_tokens"]) == L + 1
        assert all(len(v) == L for v in acts.values()) and rewards.shape == dones.shape == (L,)
        k = next(k for k, n in enumerate(full[0]["numbers"]) if np.array_equal(n, obs["numbers"][0]))
        starts.add(k)
        window = (
            {key: v[k:k + L + 1] for key, v in full[0].items()},
            {key: v[k:k + L] for key, v in full[1].items()},
            full[2][k:k + L],
            full[3][k:k + L],
        )
        assert_items_equal((obs, acts, rewards, dones), window)  # obs history from state 0
    assert starts == set(range(0, 12 - 1 - L + 1))


def test_window_longer_than_battle_is_the_whole_battle(tmp_path, obs_space):
    states, actions = long_battle(4)
    write(tmp_path, name(1), states, actions)
    full = dataset(obs_space, tmp_path)[0]
    for L in (3, 50):
        assert_items_equal(dataset(obs_space, tmp_path, max_seq_len=L)[0], full)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_max_seq_len(tmp_path, obs_space, bad):
    write(tmp_path, name(1), *battle())
    with pytest.raises(MetamonError, match="max_seq_len"):
        dataset(obs_space, tmp_path, max_seq_len=bad)


def test_json_and_lz4_read_the_same(tmp_path, obs_space):
    states, actions = battle()
    write(tmp_path, name(1, suffix=".json"), states, actions)
    write(tmp_path, name(2, suffix=".json.lz4"), states, actions)
    dset = dataset(obs_space, tmp_path)
    assert [p.endswith(".json") for p in dset.filenames] == [True, False]
    assert_items_equal(dset[0], dset[1])


def test_old_files_missing_fields_get_defaults(tmp_path, obs_space, tokenizer):
    states, actions = battle()
    old = []
    for s in states:
        d = s.to_dict()
        del d["can_tera"], d["opponent_teampreview"]
        for p in [d["player_active_pokemon"], d["opponent_active_pokemon"], *d["available_switches"]]:
            del p["tera_type"], p["base_species"]
        old.append(d)
    write_raw(tmp_path, name(1), {"states": old, "actions": actions})
    obs, acts, rewards, dones = dataset(obs_space, tmp_path)[0]

    defaults = [UniversalState.from_dict(d) for d in old]
    assert defaults[0].can_tera is False and defaults[0].opponent_teampreview == []
    assert defaults[0].player_active_pokemon.tera_type == "notype"
    space = TokenizedObservationSpace(TeamPreviewObservationSpace(), tokenizer)
    space.reset()
    for t, s in enumerate(defaults):
        np.testing.assert_array_equal(obs["text_tokens"][t], space.state_to_obs(s)["text_tokens"])
    assert acts["legal"][0] == {0, 1, 2, 3, 4, 5}  # no tera without can_tera
    np.testing.assert_allclose(rewards, [0.3, -0.1, 1.0, 102.0], rtol=1e-6)


def test_build_state_matches_from_dict():
    states, _ = battle()
    for s in states:
        d = json.loads(json.dumps(s.to_dict()))
        assert build_state(d) == UniversalState.from_dict(d) == s
        reordered = dict(sorted(d.items()))  # other key order: slow path, same object
        assert build_state(reordered) == s
    five_moves = json.loads(json.dumps(states[0].to_dict()))
    five_moves["player_active_pokemon"]["moves"].append(move("roost").to_dict())
    assert build_state(five_moves) == UniversalState.from_dict(five_moves) == states[0]  # first 4 kept
    with pytest.raises(ValueError, match="missing keys"):
        build_state({"format": FMT})


def test_built_states_behave_like_init_made_ones():
    states, _ = battle()
    for s in states:
        d = json.loads(json.dumps(s.to_dict()))
        before = copy.deepcopy(d)
        built = build_state(d)
        assert d == before  # the input is not modified
        assert built.to_dict() == s.to_dict() and repr(built) == repr(s)
        assert copy.deepcopy(built) == s and pickle.loads(pickle.dumps(built)) == s
        assert all(type(m) is UniversalMove for m in built.player_active_pokemon.moves)
        built.player_prev_move.current_pp = -5  # adopted move dicts are the moves' storage
        assert d["player_prev_move"]["current_pp"] == -5 and built != s
    shuffled = json.loads(json.dumps(states[0].to_dict()))
    shuffled["player_prev_move"] = dict(reversed(shuffled["player_prev_move"].items()))
    assert build_state(shuffled) == states[0]  # a move's key order does not matter
    broken = json.loads(json.dumps(states[0].to_dict()))
    broken["available_switches"][0]["moves"][0]["bogus"] = 1
    with pytest.raises(ValueError, match="unknown keys"):
        build_state(broken)


def test_load_trajectory_shares_unchanged_pokemon(tmp_path):
    states, actions = battle()
    path = write(tmp_path, "gen9ou-1_1500_a_vs_b_10-27-2025_WIN.json.lz4", states, actions)
    loaded, _ = load_trajectory(path)
    assert loaded == states
    kingambits = [s.available_switches[0] for s in loaded]
    assert all(k is kingambits[0] for k in kingambits)  # unchanged in all 5 states: one object
    # gholdengo: active (1.0), active (0.7), then benched at 0.7 three times
    gholdengos = [loaded[0].player_active_pokemon, loaded[1].player_active_pokemon]
    gholdengos += [s.available_switches[1] for s in loaded[2:]]
    assert gholdengos[0] is not gholdengos[1]  # hp changed
    assert gholdengos[1] is gholdengos[2] is gholdengos[3] is gholdengos[4]
    assert loaded[3].player_active_pokemon is not loaded[4].player_active_pokemon  # tera changed


def test_build_state_seen_matches_equal_dicts_only():
    states, _ = battle()
    seen = {}
    first = build_state(json.loads(json.dumps(states[0].to_dict())), seen)
    changed = json.loads(json.dumps(states[0].to_dict()))
    changed["available_switches"][0]["moves"][0]["current_pp"] = 3  # a nested field differs
    second = build_state(changed, seen)
    assert second.available_switches[0] is not first.available_switches[0]
    assert second.available_switches[0].moves[0].current_pp == 3
    assert second.available_switches[1] is first.available_switches[1]
    assert second == UniversalState.from_dict(changed)
    old = json.loads(json.dumps(states[0].to_dict()))
    del old["player_active_pokemon"]["tera_type"]  # older layout: from_dict, then remembered
    a, b = build_state(old, seen), build_state(copy.deepcopy(old), seen)
    assert a.player_active_pokemon is b.player_active_pokemon
    assert a.player_active_pokemon.tera_type == "notype"


@pytest.mark.parametrize("text", [
    b'{"a": [1, 2.5, -0.0, "x\\u00e9", true, null]}',
    b'{"a": NaN, "b": Infinity, "c": 1e400}',  # orjson rejects these: the standard library reads them
    '{"a": "\\ud800"}'.encode(),  # a lone surrogate
    '{"a": 1}'.encode("utf-16"),
])
def test_parse_json_equals_json_loads(text):
    got, want = _parse_json(text), json.loads(text)
    assert json.dumps(got) == json.dumps(want) and list(got) == list(want)
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


@pytest.mark.parametrize("text", [b"", b'{"states": [', b"\xff"])
def test_parse_json_errors_are_value_errors(text):
    with pytest.raises(ValueError):
        _parse_json(text)


# ---------------------------------------------------------------------------------------------
# Names and filters
# ---------------------------------------------------------------------------------------------
def test_parse_name_date():
    assert parse_name_date("10-27-2025") == datetime(2025, 10, 27)
    assert parse_name_date("10-27-2025-14:03:11") == datetime(2025, 10, 27, 14, 3, 11)
    assert parse_name_date("1-5-2025") == datetime(2025, 1, 5)
    for bad in ["2025-10-27", "10-27-25x", "13-01-2025", "10-27-2025-14-03-11", "yesterday", ""]:
        with pytest.raises(ValueError):
            parse_name_date(bad)


def test_rating_and_result_filters(tmp_path, obs_space):
    states, actions = battle()
    files = {
        "r1500w": name(1, rating="1500", won=True),
        "r900l": name(2, rating="900", won=False),
        "unratedw": name(3, rating="Unrated", won=True),
        "r1200l": name(4, rating="1200", won=False),
    }
    for f in files.values():
        write(tmp_path, f, states, actions)
    dset = dataset(obs_space, tmp_path, min_rating=1000)
    assert basenames(dset) == sorted([files["r1500w"], files["unratedw"], files["r1200l"]])
    assert dset.filtered == {"rating": 1}
    dset = dataset(obs_space, tmp_path, min_rating=950, max_rating=1300)
    assert basenames(dset) == sorted([files["unratedw"], files["r1200l"]])
    dset = dataset(obs_space, tmp_path, wins_losses_both="wins")
    assert basenames(dset) == sorted([files["r1500w"], files["unratedw"]])
    assert dset.filtered == {"result": 2}
    dset = dataset(obs_space, tmp_path, wins_losses_both="losses", max_rating=1000)
    assert basenames(dset) == [files["r900l"]]
    with pytest.raises(UnknownNameError, match="wins_losses_both"):
        dataset(obs_space, tmp_path, wins_losses_both="draws")
    with pytest.raises(MetamonError, match="passes the filters"):
        dataset(obs_space, tmp_path, min_rating=2000)


def test_date_filter_and_unparsable_dates(tmp_path, obs_space):
    states, actions = battle()
    day = f"{FMT}-001_Unrated_a_vs_b_10-20-2025_WIN.json.lz4"  # Showdown replays: no time
    late = name(2, when=datetime(2025, 10, 27, 14, 3, 11))
    early = name(3, when=datetime(2024, 1, 1, 0, 0, 0))
    bad = f"{FMT}-4_Unrated_a_vs_b_someday_WIN.json.lz4"
    for f in (day, late, early, bad):
        write(tmp_path, f, states, actions)
    dset = dataset(obs_space, tmp_path)
    assert len(dset) == 4 and not dset.skipped  # no date filter: the date is never parsed
    dset = dataset(obs_space, tmp_path, min_date=datetime(2025, 10, 20), max_date=date(2025, 10, 27))
    assert basenames(dset) == [day]  # late is after midnight of the 27th
    assert dset.filtered == {"date": 2}
    assert dset.skipped == {BAD_DATE: 1}
    assert dset.skipped_files == {BAD_DATE: [str(tmp_path / FMT / bad)]}
    dset = dataset(obs_space, tmp_path, min_date=datetime(2025, 10, 27, 14, 3, 11))
    assert basenames(dset) == [late]
    with pytest.raises(TrajectoryFileError, match="someday"):
        dataset(obs_space, tmp_path, min_date=datetime(2025, 1, 1), strict=True)


def test_underscore_usernames_are_read(tmp_path, obs_space):
    states, actions = battle()
    odd = f"{FMT}-77_1300_MM_bot_7_vs_Gym_Leader_10-27-2025_WIN.json.lz4"
    write_raw(tmp_path, odd, {"states": [s.to_dict() for s in states], "actions": actions})
    dset = dataset(obs_space, tmp_path, min_rating=1250, wins_losses_both="wins", min_date=datetime(2025, 10, 1))
    assert basenames(dset) == [odd] and not dset.skipped
    assert dset[0][1]["chosen"] == [0, 4, -1, 9]
    with pytest.raises(MetamonError, match="'rating': 1"):  # the rating field was recovered
        dataset(obs_space, tmp_path, max_rating=1250)


def test_format_filter_uses_the_battle_id(tmp_path, obs_space):
    states, actions = battle()
    write(tmp_path, name(1), states, actions)
    write(tmp_path, "[Gen 9] OU-2_Unrated_a_vs_b_10-27-2025_WIN.json", states, actions)
    stray = name(3, fmt="gen1ou")
    write(tmp_path, stray, states, actions, fmt=FMT)  # a gen1ou battle id inside gen9ou/
    dset = dataset(obs_space, tmp_path)
    assert len(dset) == 2
    assert dset.skipped_files == {FORMAT_MISMATCH: [str(tmp_path / FMT / stray)]}


# ---------------------------------------------------------------------------------------------
# Bad files: counted, never fatal (or raised when strict)
# ---------------------------------------------------------------------------------------------
def _bad_bodies():
    states, actions = battle()
    good = [s.to_dict() for s in states]
    truncated = lz4.frame.compress(json.dumps({"states": good, "actions": actions}).encode())
    missing_key = [dict(d) for d in good]
    del missing_key[2]["player_active_pokemon"]
    one_word_types = json.loads(json.dumps(good))
    one_word_types[1]["opponent_active_pokemon"]["types"] = "fighting"  # obs needs two words
    return {
        "truncated lz4": (".json.lz4", truncated[: len(truncated) // 2], CORRUPT_LZ4),
        "garbage lz4": (".json.lz4", b"this is not an lz4 frame", CORRUPT_LZ4),
        "empty lz4": (".json.lz4", b"", CORRUPT_LZ4),
        "broken json": (".json", b'{"states": [', BAD_JSON),
        "json list": (".json", b"[1, 2]", BAD_SCHEMA),
        "no states": (".json.lz4", {"actions": actions}, BAD_SCHEMA),
        "state lacks a key": (".json.lz4", {"states": missing_key, "actions": actions}, BAD_SCHEMA),
        "length mismatch": (".json.lz4", {"states": good, "actions": actions[1:]}, LENGTH_MISMATCH),
        "action out of range": (".json.lz4", {"states": good, "actions": [0, 13, 1, 2, -1]}, BAD_ACTIONS),
        "bool action": (".json", {"states": good, "actions": [True, 4, 1, 2, -1]}, BAD_ACTIONS),
        "last action not -1": (".json.lz4", {"states": good, "actions": [0, 4, -1, 9, 3]}, BAD_ACTIONS),
        "one state": (".json.lz4", {"states": good[:1], "actions": [-1]}, TOO_SHORT),
        "state the obs space rejects": (".json.lz4", {"states": one_word_types, "actions": actions}, BAD_STATE),
    }


BAD_BODIES = _bad_bodies()


def test_bad_files_are_counted_and_replaced_by_the_next_good_file(tmp_path, obs_space, caplog):
    states, actions = battle()
    long_states, long_actions = long_battle(7)
    write(tmp_path, name(0), states, actions)  # index 0
    bad_paths = {}
    for i, (case, (suffix, body, _reason)) in enumerate(BAD_BODIES.items(), start=1):
        bad_paths[case] = str(write_raw(tmp_path, name(i, suffix=suffix), body))
    last_good = write(tmp_path, name(50), long_states, long_actions)  # sorts after every bad file
    write_raw(tmp_path, "notes.txt", b"hello")
    write_raw(tmp_path, f"{FMT}-99_garbage.json.lz4", b"")
    (tmp_path / FMT / "subfolder").mkdir()
    write_raw(tmp_path, ".writing-abc.tmp", b"")  # a write in progress: ignored

    with caplog.at_level(logging.WARNING, logger="metamon.data.parsed_replay_dset"):
        dset = dataset(obs_space, tmp_path)
        n = len(BAD_BODIES) + 2
        assert len(dset) == n  # body problems are only found on load
        assert dset.skipped == {NOT_A_TRAJECTORY: 1, BAD_NAME: 1}
        items = [dset[i] for i in range(n)]
    good_a, good_b = dset.load_item(dset.filenames[0]), dset.load_item(str(last_good))
    assert_items_equal(items[0], good_a)
    for item in items[1:]:  # every bad index returns the next good file in order
        assert_items_equal(item, good_b)
    expected = {NOT_A_TRAJECTORY: 1, BAD_NAME: 1}
    for _, _, reason in BAD_BODIES.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert dset.skipped == expected
    for case, (_, _, reason) in BAD_BODIES.items():
        assert bad_paths[case] in dset.skipped_files[reason], case
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for path in bad_paths.values():
        assert path in logged
    assert "notes.txt" in logged and "garbage" in logged

    # known bad files are never read again and drop out of the index on refresh
    before = dict(dset.skipped)
    assert_items_equal(dset[1], good_b)
    assert dset.skipped == before
    dset.refresh_files()
    assert len(dset) == 2 and dset.skipped == before


def test_all_files_bad_raises(tmp_path, obs_space):
    write_raw(tmp_path, name(1), b"junk")
    write_raw(tmp_path, name(2), b"junk")
    dset = dataset(obs_space, tmp_path)
    with pytest.raises(MetamonError, match="unusable"):
        dset[0]
    assert dset.skipped == {CORRUPT_LZ4: 2}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_strict_mode_raises_naming_the_file(tmp_path, obs_space, case):
    suffix, body, reason = BAD_BODIES[case]
    write(tmp_path, name(0), *battle())
    path = write_raw(tmp_path, name(1, suffix=suffix), body)
    dset = dataset(obs_space, tmp_path, strict=True)
    dset[0]
    with pytest.raises(TrajectoryFileError) as err:
        dset[1]
    assert isinstance(err.value, MetamonError)
    assert err.value.reason == reason and err.value.path == str(path) and str(path) in str(err.value)


@pytest.mark.parametrize("filename, reason", [
    ("notes.txt", NOT_A_TRAJECTORY),
    (f"{FMT}-1_Unrated_a_vs_b_WIN.json", BAD_NAME),
    (f"{FMT}-1_Unrated_a_versus_b_10-27-2025_WIN.json", BAD_NAME),
    (f"{FMT}-1_Unrated_a_vs_b_10-27-2025_DRAW.json", BAD_NAME),
    ("gen1ou-1_Unrated_a_vs_b_10-27-2025_WIN.json", FORMAT_MISMATCH),
])
def test_strict_mode_raises_for_bad_names(tmp_path, obs_space, filename, reason):
    write(tmp_path, name(0), *battle())
    write_raw(tmp_path, filename, b"{}")
    with pytest.raises(TrajectoryFileError, match=reason) as err:
        dataset(obs_space, tmp_path, strict=True)
    assert err.value.path == str(tmp_path / FMT / filename)
    assert dataset(obs_space, tmp_path).skipped == {reason: 1}


# ---------------------------------------------------------------------------------------------
# Folders, refresh, index size
# ---------------------------------------------------------------------------------------------
def test_refresh_files_picks_up_new_files(tmp_path, obs_space):
    states, actions = battle()
    write(tmp_path, name(1), states, actions)
    dset = dataset(obs_space, tmp_path)
    write(tmp_path, name(2), states, actions)
    assert len(dset) == 1
    dset.refresh_files()
    assert basenames(dset) == sorted([name(1), name(2)])


def test_shuffle_keeps_the_same_files(tmp_path, obs_space):
    for i in range(20):
        write_raw(tmp_path, name(i), b"")
    random.seed(1)
    shuffled = dataset(obs_space, tmp_path, shuffle=True)
    ordered = dataset(obs_space, tmp_path)
    assert ordered.filenames == sorted(ordered.filenames)
    assert shuffled.filenames != ordered.filenames and sorted(shuffled.filenames) == ordered.filenames


def test_folder_errors(tmp_path, obs_space):
    with pytest.raises(MetamonError, match="does not exist"):
        dataset(obs_space, tmp_path / "nowhere")
    (tmp_path / FMT).mkdir()
    write_raw(tmp_path, ".writing-x.tmp", b"")
    with pytest.raises(MetamonError, match=re.escape(f"{tmp_path / FMT} holds no trajectory file")):
        dataset(obs_space, tmp_path)
    write(tmp_path, name(1), *battle())
    with pytest.raises(MetamonError, match=re.escape(str(tmp_path / "gen1ou"))):
        dataset(obs_space, tmp_path, formats=[FMT, "gen1ou"])
    with pytest.raises(UnknownNameError, match="gen9oo"):
        dataset(obs_space, tmp_path, formats=["gen9oo"])
    assert dataset(obs_space, tmp_path, formats=None).formats == [FMT]  # the folders present
    with pytest.raises(MetamonError, match="no <format>/ folder"):
        dataset(obs_space, tmp_path / FMT, formats=None)


def test_default_root_is_the_cache(tmp_path, obs_space, monkeypatch):
    monkeypatch.delenv("METAMON_CACHE_DIR", raising=False)
    with pytest.raises(MetamonError, match="METAMON_CACHE_DIR"):
        ParsedReplayDataset(obs_space, DefaultActionSpace(), DefaultShapedReward(), formats=[FMT])
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))
    root = tmp_path / "parsed-replays"
    with pytest.raises(MetamonError) as err:
        ParsedReplayDataset(obs_space, DefaultActionSpace(), DefaultShapedReward(), formats=[FMT, "gen1ou"])
    message = str(err.value)
    assert str(root / FMT) in message
    assert "python -m metamon.data.download parsed-replays --formats gen9ou gen1ou" in message
    write(root, name(1), *battle())
    dset = ParsedReplayDataset(obs_space, DefaultActionSpace(), DefaultShapedReward(), formats=FMT)
    assert dset.dset_root == str(root) and len(dset) == 1


@pytest.fixture
def fast_tmp_path(tmp_path):
    """A temporary folder in memory (/dev/shm) when there is one: 100k files in seconds."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="metamon-test-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def test_indexing_100k_names_opens_no_file(fast_tmp_path, obs_space, monkeypatch):
    tmp_path = fast_tmp_path
    folder = tmp_path / FMT
    folder.mkdir()
    n = 100_000
    for i in range(n):  # empty files: indexing succeeds only because no file is opened
        result = "WIN" if i % 2 else "LOSS"
        os.close(os.open(folder / f"{FMT}-{i}_{1000 + i % 1000}_p{i}_vs_o_10-27-2025_{result}.json.lz4",
                         os.O_CREAT | os.O_WRONLY, 0o644))

    def no_open(*args, **kwargs):
        raise AssertionError(f"indexing opened {args[0]}")

    known_formats()  # load the (cached) format list before open() is disabled

    monkeypatch.setattr(builtins, "open", no_open)
    monkeypatch.setattr(io, "open", no_open)
    start = time.perf_counter()
    dset = dataset(obs_space, tmp_path, min_rating=1500, wins_losses_both="wins", min_date=datetime(2025, 1, 1))
    elapsed = time.perf_counter() - start
    monkeypatch.undo()
    assert len(dset) == 25_000 and dset.filtered == {"result": 50_000, "rating": 25_000}
    assert elapsed < 10, f"indexing {n} names took {elapsed:.1f} s"


# ---------------------------------------------------------------------------------------------
# MixtureOfDatasets
# ---------------------------------------------------------------------------------------------
def test_mixture_proportions_match_weights():
    main, custom = list(range(1000)), list(range(1000, 1050))
    mixture = MixtureOfDatasets([main, custom], [3.0, 1.0], seed=7)
    assert mixture.probabilities == [0.75, 0.25]
    draws = [mixture.random_sample() for _ in range(20_000)]
    n_custom = sum(d >= 1000 for d in draws)
    assert abs(n_custom / len(draws) - 0.25) <= 0.02
    assert mixture.draw_counts == [20_000 - n_custom, n_custom]
    assert {d for d in draws if d >= 1000} == set(custom)  # uniform inside a component
    # map-style draws follow the same weights
    sources = [mixture.choose(i)[0] for i in range(20_000)]
    assert abs(sum(sources) / len(sources) - 0.25) <= 0.02


def test_mixture_is_seeded():
    parts = [list(range(100)), list(range(100, 200)), list(range(200, 300))]
    a, b, c = (MixtureOfDatasets(parts, [1, 1, 2], seed=s) for s in (3, 3, 4))
    assert [a.random_sample() for _ in range(200)] == [b.random_sample() for _ in range(200)]
    assert [a.random_sample() for _ in range(200)] != [c.random_sample() for _ in range(200)]
    assert [a[i] for i in range(len(a))] == [b[i] for i in range(len(b))]
    assert [a.choose(i) for i in range(200)] != [c.choose(i) for i in range(200)]
    i, j = a.choose(5)
    assert a[5] == parts[i][j]
    first_epoch = [a.choose(i) for i in range(200)]
    a.set_epoch(1)
    assert [a.choose(i) for i in range(200)] != first_epoch
    a.set_epoch(0)
    assert [a.choose(i) for i in range(200)] == first_epoch


def test_mixture_workers_draw_differently(monkeypatch):
    parts = [list(range(100)), list(range(100, 200))]
    sequences = []
    for worker in (SimpleNamespace(id=0, seed=11), SimpleNamespace(id=1, seed=12), SimpleNamespace(id=0, seed=11)):
        monkeypatch.setattr(mixture_module, "get_worker_info", lambda w=worker: w)
        mixture = MixtureOfDatasets(parts, [1, 1], seed=0)
        sequences.append([mixture.random_sample() for _ in range(50)])
    assert sequences[0] != sequences[1] and sequences[0] == sequences[2]


def test_mixture_length_and_zero_weights():
    big, small = list(range(1000)), list(range(10))
    assert len(MixtureOfDatasets([big, small], [0.75, 0.25])) == math.ceil(1000 / 0.75)
    assert len(MixtureOfDatasets([big, small], [0.001, 0.999])) == math.ceil(1000 / 0.001)
    off = MixtureOfDatasets([big, small], [1.0, 0.0])
    assert len(off) == 1000 and all(off.choose(i)[0] == 0 for i in range(5000))
    with pytest.raises(IndexError):
        off[1000]


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")], [1.0, "a"]])
def test_mixture_rejects_bad_weights(weights):
    with pytest.raises(MetamonError):
        MixtureOfDatasets([[1], [2]], weights)


def test_mixture_of_parsed_replay_datasets(tmp_path, obs_space, tokenizer):
    main_root, custom_root = tmp_path / "main", tmp_path / "custom"
    for i in range(3):
        write(main_root, name(i, fmt="gen1ou"), *long_battle(4, fmt="gen1ou"), fmt="gen1ou")
    write(custom_root, name(0), *battle())
    main = dataset(obs_space, main_root, formats=["gen1ou"])
    custom = dataset(obs_space, custom_root)
    mixture = MixtureOfDatasets([main, custom], [0.75, 0.25], seed=0)
    assert len(mixture) == 4  # max(3 / 0.75, 1 / 0.25)
    fmt_token = {tokenizer["<gen1ou>"]: 0, tokenizer["<gen9ou>"]: 1}
    for idx in range(len(mixture)):
        i, _ = mixture.choose(idx)
        obs = mixture[idx][0]
        assert fmt_token[int(obs["text_tokens"][0][0])] == i


def test_command_line_check(tmp_path, capsys):
    write(tmp_path, name(0), *battle())
    write_raw(tmp_path, name(1), b"junk")
    assert _main(["--dset_root", str(tmp_path), "--formats", FMT]) == 0
    assert f"1 good files, 4 timesteps; skipped {{'{CORRUPT_LZ4}': 1}}" in capsys.readouterr().out
    assert _main(["--dset_root", str(tmp_path), "--strict"]) == 1
    assert f"error: {tmp_path / FMT / name(1)}: {CORRUPT_LZ4}" in capsys.readouterr().err


def test_loading_pauses_the_cycle_collector_and_restores_it(tmp_path, obs_space, monkeypatch):
    states, actions = battle()
    write(tmp_path, name(1), states, actions)
    dset = dataset(obs_space, tmp_path, strict=True)
    seen = []
    featurize = ParsedReplayDataset._featurize

    def spy(self, *args):
        seen.append(gc.isenabled())
        return featurize(self, *args)

    monkeypatch.setattr(ParsedReplayDataset, "_featurize", spy)
    assert gc.isenabled()
    dset[0]
    assert seen == [False] and gc.isenabled()
    (tmp_path / FMT / name(2)).write_bytes(b"not lz4")  # an error on the way out restores it too
    with pytest.raises(TrajectoryFileError):
        dset.load_item(tmp_path / FMT / name(2))
    assert gc.isenabled()
    gc.disable()
    try:
        dset[0]
        assert not gc.isenabled()  # a collector the caller had paused stays paused
    finally:
        gc.enable()


# ---------------------------------------------------------------------------------------------
# Hostile files (issue 15, items 1-2): non-finite or absurd numbers, values of the wrong type,
# deep nesting, decompression bombs. Each is skipped with a reason, or raised under strict.
# ---------------------------------------------------------------------------------------------
def _edited(t, path, value):
    """The battle's state dicts (fresh JSON copies) with ``states[t][path...] = value``."""
    states, actions = battle()
    dicts = json.loads(json.dumps([s.to_dict() for s in states]))
    target = dicts[t]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return {"states": dicts, "actions": actions}


P1, P2 = "player_active_pokemon", "opponent_active_pokemon"
BAD_NUMBERS = {  # case -> (t, path in the state, value); json.dumps writes NaN / Infinity literals
    "hp_pct NaN": (1, (P1, "hp_pct"), float("nan")),
    "hp_pct Infinity": (1, (P2, "hp_pct"), float("inf")),
    "hp_pct 1e308": (2, (P2, "hp_pct"), 1e308),
    "hp_pct 1.5": (2, (P1, "hp_pct"), 1.5),
    "hp_pct -0.1": (0, (P1, "hp_pct"), -0.1),
    "lvl 1e308": (3, (P1, "lvl"), 1e308),
    "lvl 0": (3, (P1, "lvl"), 0),
    "boost +7": (1, (P2, "spe_boost"), 7),
    "base stat -inf": (0, ("available_switches", 0, "base_atk"), float("-inf")),
    "base stat 1e9": (4, ("available_switches", 1, "base_hp"), 10**9),
    "move base power Infinity": (0, (P1, "moves", 0, "base_power"), float("inf")),
    "move accuracy NaN": (2, (P1, "moves", 1, "accuracy"), float("nan")),
    "previous move priority 99": (1, ("player_prev_move", "priority"), 99),
    "max pp 1e300": (1, ("opponent_prev_move", "max_pp"), 1e300),
    "opponents_remaining 1e308": (3, ("opponents_remaining",), 1e308),
    "opponents_remaining NaN": (4, ("opponents_remaining",), float("nan")),
}


@pytest.mark.parametrize("case", sorted(BAD_NUMBERS))
def test_non_finite_and_absurd_numbers_are_skipped(tmp_path, obs_space, case):
    t, path, value = BAD_NUMBERS[case]
    write(tmp_path, name(0), *battle())
    bad = write_raw(tmp_path, name(1), _edited(t, path, value))
    dset = dataset(obs_space, tmp_path)
    _, _, rewards, _ = dset[1]  # the next good file stands in
    assert np.isfinite(rewards).all()
    assert dset.skipped_files == {tf.BAD_NUMBER: [str(bad)]}
    with pytest.raises(TrajectoryFileError) as err:
        dataset(obs_space, tmp_path, strict=True)[1]
    assert err.value.reason == tf.BAD_NUMBER and err.value.path == str(bad)
    assert f"states[{t}]" in err.value.detail and str(path[-1]) in err.value.detail
    with pytest.raises(TrajectoryFileError, match=re.escape(tf.BAD_NUMBER)):
        load_trajectory(bad)


def test_both_json_parsers_meet_the_number_checks(tmp_path):
    # orjson refuses NaN / Infinity literals and numbers overflowing a float and hands the text
    # to the standard library, which reads them as floats; 1e308 is read by orjson. Both paths
    # reach the value checks, which refuse the number the state actually holds.
    for value in (float("nan"), float("inf")):
        text = json.dumps(_edited(1, (P1, "hp_pct"), value)).encode()
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(text)
        assert not math.isfinite(_parse_json(text)["states"][1][P1]["hp_pct"])  # the stdlib reads it
    overflow = json.dumps(_edited(1, (P1, "hp_pct"), 0.25)).replace("0.25", "1e400").encode()
    big = json.dumps(_edited(1, (P1, "hp_pct"), 1e308)).encode()
    assert orjson.loads(big)["states"][1][P1]["hp_pct"] == 1e308
    for i, body in enumerate((overflow, big)):
        path = write_raw(tmp_path, name(i, suffix=".json"), body)
        with pytest.raises(TrajectoryFileError) as err:
            load_trajectory(path)
        assert err.value.reason == tf.BAD_NUMBER and "states[1].player_active_pokemon.hp_pct" in err.value.detail


def test_writer_refuses_non_finite_numbers(tmp_path):
    states, actions = battle()
    dicts = _edited(1, (P1, "hp_pct"), float("nan"))["states"]
    with pytest.raises(ValueError):
        write_trajectory(tmp_path, FMT, name(1), dicts, actions)
    assert not (tmp_path / FMT).exists() or not list((tmp_path / FMT).iterdir())


BAD_TYPES = {  # case -> (t, path, value): the file decodes, a value has the wrong type
    "types 12": (1, (P1, "types"), 12),
    "name null": (2, (P2, "name"), None),
    "status list": (0, (P1, "status"), ["slp"]),
    "moves a dict": (3, (P1, "moves"), {"a": 1}),
    "move a string": (3, (P1, "moves", 0), "bodypress"),
    "move name 7": (0, ("player_prev_move", "name"), 7),
    "hp_pct a string": (1, (P1, "hp_pct"), "0.5"),
    "boost null": (1, (P1, "atk_boost"), None),
    "switches a number": (2, ("available_switches",), 5),
    "switch a list": (2, ("available_switches", 0), [1, 2]),
    "teampreview 3": (0, ("opponent_teampreview",), 3),
    "teampreview of ints": (0, ("opponent_teampreview",), [1, 2]),
    "forced_switch a string": (1, ("forced_switch",), "yes"),
    "weather a dict": (1, ("weather",), {}),
    "format null": (0, ("format",), None),
    "state a list": (1, (), None),
}


@pytest.mark.parametrize("case", sorted(BAD_TYPES))
def test_values_of_the_wrong_type_are_skipped(tmp_path, obs_space, case):
    t, path, value = BAD_TYPES[case]
    write(tmp_path, name(0), *battle())
    body = _edited(t, path, value) if path else _edited(t, ("format",), FMT)
    if not path:
        body["states"][t] = [1, 2, 3]
    bad = write_raw(tmp_path, name(1), body)
    dset = dataset(obs_space, tmp_path)
    assert_items_equal(dset[1], dset.load_item(dset.filenames[0]))  # skipped, never an exception
    assert list(dset.skipped_files.values()) == [[str(bad)]]
    with pytest.raises(TrajectoryFileError) as err:
        dataset(obs_space, tmp_path, strict=True)[1]
    assert err.value.path == str(bad) and err.value.reason in tf.SKIP_REASONS
    assert dset.skipped == {err.value.reason: 1}


def _deep_json(depth):
    return b'{"states": ' + b"[" * depth + b"]" * depth + b', "actions": [0, -1]}'


@pytest.mark.parametrize("suffix", [".json", ".json.lz4"])
def test_deeply_nested_json_is_skipped(tmp_path, obs_space, suffix):
    write(tmp_path, name(0), *battle())
    body = _deep_json(200_000)
    bad = write_raw(tmp_path, name(1, suffix=suffix), lz4.frame.compress(body) if suffix.endswith(".lz4") else body)
    dset = dataset(obs_space, tmp_path)
    assert_items_equal(dset[1], dset[0])
    assert dset.skipped_files == {tf.BAD_JSON: [str(bad)]}
    with pytest.raises(TrajectoryFileError, match="nest"):
        dataset(obs_space, tmp_path, strict=True)[1]


def test_any_per_file_failure_is_skipped_as_malformed(tmp_path, obs_space):
    """The per-file boundary catches every ``Exception``: a reward function (or observation
    space) that trips over an odd file costs that file, with the exception named."""

    class FragileReward(DefaultShapedReward):
        def __call__(self, last_state, state):
            if state.player_active_pokemon.hp_pct == 0.5:
                raise KeyError("no such pokemon")
            return super().__call__(last_state, state)

    write(tmp_path, name(0), *battle())
    bad = write_raw(tmp_path, name(1), _edited(2, (P1, "hp_pct"), 0.5))
    dset = ParsedReplayDataset(obs_space, DefaultActionSpace(), FragileReward(), dset_root=tmp_path, formats=[FMT])
    assert_items_equal(dset[1], dset[0])
    assert dset.skipped_files == {tf.MALFORMED: [str(bad)]}
    strict = ParsedReplayDataset(obs_space, DefaultActionSpace(), FragileReward(), dset_root=tmp_path,
                                 formats=[FMT], strict=True)
    with pytest.raises(TrajectoryFileError) as err:
        strict[1]
    assert err.value.reason == tf.MALFORMED and err.value.path == str(bad)
    assert "KeyError" in err.value.detail and "no such pokemon" in err.value.detail
    assert isinstance(err.value.__cause__, KeyError)


@pytest.mark.parametrize("store_size", [True, False])
def test_decompression_is_capped(tmp_path, obs_space, store_size):
    """A frame declaring its size is refused from its header; one that does not (a streaming
    writer's) is decompressed step by step and refused once past the cap."""
    write(tmp_path, name(0), *battle())
    cap = 1 << 20
    bomb = lz4.frame.compress(b"\0" * (8 * cap), store_size=store_size)  # 8 MiB of zeros in ~32 KiB
    assert len(bomb) < cap // 16
    bad = write_raw(tmp_path, name(1), bomb)
    big_json = write_raw(tmp_path, name(2, suffix=".json"), b" " * (cap + 1))  # plain files too
    dset = dataset(obs_space, tmp_path, max_file_bytes=cap)
    assert_items_equal(dset[1], dset[0])
    assert_items_equal(dset[2], dset[0])
    assert dset.skipped_files == {tf.TOO_LARGE: sorted([str(bad), str(big_json)])}
    # memory stays near the cap, not the 8 MiB the frame holds
    tracemalloc.start()
    try:
        with pytest.raises(TrajectoryFileError) as err:
            tf.read_trajectory(bad, max_bytes=cap)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.reason == tf.TOO_LARGE and peak < 3 * cap, peak
    # at the cap exactly, or under the default cap (64 MiB), files load
    exact = json.dumps({"states": [s.to_dict() for s in battle()[0]], "actions": battle()[1]}).encode()
    ok = write_raw(tmp_path, name(3), lz4.frame.compress(exact, store_size=store_size))
    assert len(tf.read_trajectory(ok, max_bytes=len(exact))["states"]) == 5
    with pytest.raises(TrajectoryFileError, match=re.escape(tf.TOO_LARGE)):
        tf.read_trajectory(ok, max_bytes=len(exact) - 1)
    assert tf.MAX_TRAJECTORY_BYTES == 64 << 20
    assert dataset(obs_space, tmp_path).skipped == {}
    with pytest.raises(MetamonError, match="max_file_bytes"):
        dataset(obs_space, tmp_path, max_file_bytes=0)


def test_read_handles_frames_exactly(tmp_path):
    body = json.dumps({"states": [], "actions": []}).encode()
    frame = lz4.frame.compress(body)
    stream = lz4.frame.compress(body, store_size=False)
    cases = ((frame, True), (frame[:-3], False), (b"", False), (frame + b"trailing", True),
             (stream, True), (stream[:-3], False), (stream[:9], False))
    for raw, ok in cases:
        path = tmp_path / name(1)
        path.write_bytes(raw)
        if ok:
            assert tf.read_trajectory(path) == {"states": [], "actions": []}
        else:
            with pytest.raises(TrajectoryFileError) as err:
                tf.read_trajectory(path)
            assert err.value.reason == CORRUPT_LZ4


def test_command_line_check_counts_hostile_files_bad(tmp_path, capsys):
    write(tmp_path, name(0), *battle())
    write_raw(tmp_path, name(1), _edited(1, (P1, "hp_pct"), float("nan")))
    write_raw(tmp_path, name(2), _edited(1, (P1, "types"), 12))
    write_raw(tmp_path, name(3, suffix=".json"), _deep_json(200_000))
    write_raw(tmp_path, name(4), lz4.frame.compress(b"\0" * (4 << 20)))
    assert _main(["--dset_root", str(tmp_path), "--formats", FMT, "--max_file_mb", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 good files, 4 timesteps" in out
    for reason in (tf.BAD_NUMBER, tf.BAD_SCHEMA, tf.BAD_JSON, tf.TOO_LARGE):
        assert f"'{reason}': 1" in out

import json
from datetime import datetime

import lz4.frame
import pytest

from metamon.data.trajectory_file import (
    parse_trajectory_filename,
    read_trajectory,
    sanitize_username,
    shared_battle_id,
    trajectory_filename,
    write_trajectory,
)


def test_filename_has_seven_fields_even_with_underscores_in_usernames():
    name = trajectory_filename("metamon-gen1ou-0123456789", "MM_bot 7", "Gym_Leader!", won=True,
                               date=datetime(2025, 10, 27, 14, 3, 11))
    assert name == "metamon-gen1ou-0123456789_Unrated_MMbot7_vs_GymLeader_10-27-2025-14:03:11_WIN.json.lz4"
    parsed = parse_trajectory_filename(name)
    assert (parsed.battle_id, parsed.rating, parsed.player, parsed.opponent) == (
        "metamon-gen1ou-0123456789", "Unrated", "MMbot7", "GymLeader")
    assert parsed.date == "10-27-2025-14:03:11" and parsed.won


def test_sanitize_never_empty():
    assert sanitize_username("___") == "anonymous"
    assert sanitize_username("Ab-9") == "Ab-9"


@pytest.mark.parametrize("bad", ["a_b_c.json.lz4", "x_1_p_versus_o_d_WIN.json", "x_1_p_vs_o_d_DRAW.json", "x_1_p_vs_o_d_WIN.txt"])
def test_parse_rejects_bad_names(bad):
    with pytest.raises(ValueError, match="trajectory"):
        parse_trajectory_filename(bad)


def test_shared_battle_id_is_symmetric_and_format_tagged():
    a = shared_battle_id("gen9ou", "battle-gen9ou-12", ["alice", "bob"])
    b = shared_battle_id("gen9ou", "battle-gen9ou-12", ["bob", "alice"])
    c = shared_battle_id("gen9ou", "battle-gen9ou-13", ["bob", "alice"])
    assert a == b != c
    assert a.startswith("metamon-gen9ou-") and len(a.split("-")[-1]) == 10 and "_" not in a


@pytest.mark.parametrize("suffix", [".json.lz4", ".json"])
def test_write_read_round_trip_is_atomic(tmp_path, suffix):
    name = trajectory_filename("metamon-gen1ou-0000000001", "p", "o", won=False, suffix=suffix)
    states = [{"format": "gen1ou", "t": 0}, {"format": "gen1ou", "t": 1}]
    path = write_trajectory(tmp_path, "gen1ou", name, states, [3, -1], invalid_actions=[True, False], result="tie")
    assert path == tmp_path / "gen1ou" / name
    assert sorted(p.name for p in (tmp_path / "gen1ou").iterdir()) == [name]  # no temp file left
    data = read_trajectory(path)
    assert data == {"states": states, "actions": [3, -1], "invalid_actions": [True, False], "result": "tie"}
    raw = path.read_bytes()
    body = lz4.frame.decompress(raw) if suffix == ".json.lz4" else raw
    assert list(json.loads(body))[:2] == ["states", "actions"]


def test_write_validates_lengths_and_trailing_missing_action(tmp_path):
    name = trajectory_filename("metamon-gen1ou-0000000001", "p", "o", won=True)
    with pytest.raises(ValueError, match="2 states but 1 actions"):
        write_trajectory(tmp_path, "gen1ou", name, [{}, {}], [-1])
    with pytest.raises(ValueError, match="last action must be -1"):
        write_trajectory(tmp_path, "gen1ou", name, [{}, {}], [1, 2])
    assert not (tmp_path / "gen1ou").exists() or not any((tmp_path / "gen1ou").iterdir())

import json
from datetime import datetime
from pathlib import Path

import lz4.frame
import pytest

from metamon.data.trajectory_file import (
    BAD_JSON,
    BAD_NAME,
    BAD_SCHEMA,
    CORRUPT_LZ4,
    NOT_A_TRAJECTORY,
    UNREADABLE,
    TrajectoryFileError,
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


@pytest.mark.parametrize(
    "bad", ["a_b_c.json.lz4", "x_1_p_versus_o_d_WIN.json", "x_1_p_vs_o_d_DRAW.json", "x_1_p_vs_o_d_WIN.txt"]
)
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


@pytest.mark.parametrize("name, fields", [
    # metamon's published Showdown replays (date without time, integer or Unrated rating)
    ("gen1ou-123456789_1350_someone_vs_other_10-27-2025_WIN.json.lz4",
     ("gen1ou-123456789", "1350", "someone", "other", "10-27-2025", "WIN")),
    ("[Gen 9] OU-2_Unrated_a_vs_b_10-27-2025_LOSS.json",
     ("[Gen 9] OU-2", "Unrated", "a", "b", "10-27-2025", "LOSS")),
    # older tools kept "_" in usernames: the first "vs" after the rating splits them
    ("gen9ou-77_1300_MM_bot_7_vs_Gym_Leader_10-27-2025_WIN.json.lz4",
     ("gen9ou-77", "1300", "MM_bot_7", "Gym_Leader", "10-27-2025", "WIN")),
    ("id_Unrated_SelfPlay_A0_vs_y_01-01-2025-10:00:00_LOSS.json.lz4",
     ("id", "Unrated", "SelfPlay_A0", "y", "01-01-2025-10:00:00", "LOSS")),
])
def test_parse_is_lenient_about_underscore_usernames(name, fields):
    parsed = parse_trajectory_filename(Path("/some/dir") / name)  # a path reads its last part
    assert tuple(parsed) == fields
    assert parsed == parse_trajectory_filename(name)
    assert parsed.metamon_readable == (name.count("_") == 6)


def test_name_values():
    parsed = parse_trajectory_filename("[Gen 9] OU-2_Unrated_a_vs_b_10-27-2025_WIN.json")
    assert parsed.won and parsed.rating_value == 1000 and parsed.played_at == datetime(2025, 10, 27)
    assert parsed.in_format("gen9ou") and not parsed.in_format("gen1ou")
    rated = parse_trajectory_filename("metamon-gen1ou-0000000001_1500_p_vs_o_10-27-2025-14:03:11_LOSS.json.lz4")
    assert not rated.won and rated.rating_value == 1500 and rated.in_format("gen1ou")
    assert rated.played_at == datetime(2025, 10, 27, 14, 3, 11)
    with pytest.raises(ValueError, match="someday"):
        parse_trajectory_filename("x-gen1ou_1_p_vs_o_someday_WIN.json").played_at  # noqa: B018 (the property raises)


@pytest.mark.parametrize("bad, reason", [
    ("x_1_p_vs_o_d_WIN.txt", NOT_A_TRAJECTORY),
    ("x_1_p_vs_o_WIN.json", BAD_NAME),
    ("x_1_p_versus_o_d_WIN.json", BAD_NAME),
    ("x_1_vs_p_o_q_d_WIN.json", BAD_NAME),  # "vs" right after the rating leaves no player
    ("x_1_p_q_r_vs_d_WIN.json", BAD_NAME),  # "vs" right before the date leaves no opponent
])
def test_parse_errors_carry_reasons(bad, reason):
    with pytest.raises(TrajectoryFileError) as err:
        parse_trajectory_filename(bad)
    assert err.value.reason == reason and err.value.path == bad


def test_writer_only_writes_seven_field_names(tmp_path):
    with pytest.raises(TrajectoryFileError, match="7 fields"):
        write_trajectory(tmp_path, "gen1ou", "id_Unrated_a_b_vs_c_10-27-2025_WIN.json", [{}, {}], [0, -1])
    assert not (tmp_path / "gen1ou").exists()


@pytest.mark.parametrize("suffix, body, reason", [
    (".json.lz4", b"not an lz4 frame", CORRUPT_LZ4),
    (".json", b'{"states": [', BAD_JSON),
    (".json", b"\xff", BAD_JSON),
    (".json", b"[1, 2]", BAD_SCHEMA),
])
def test_read_errors_name_the_file_and_reason(tmp_path, suffix, body, reason):
    path = tmp_path / ("metamon-gen1ou-0000000001_Unrated_p_vs_o_10-27-2025_WIN" + suffix)
    path.write_bytes(body)
    with pytest.raises(TrajectoryFileError) as err:
        read_trajectory(path)
    assert err.value.reason == reason and err.value.path == str(path) and isinstance(err.value, ValueError)
    with pytest.raises(TrajectoryFileError) as err:
        read_trajectory(tmp_path / "missing.json")
    assert err.value.reason == UNREADABLE

"""metamon's keywords of ``QueueOnLocalLadder`` that are checked before any server is contacted,
and the team-result CSV it writes (the battles themselves: tests/integration/test_compat_local_ladder.py)."""

import csv

import pytest

from metamon.env import QueueOnLocalLadder
from metamon.env.team_results import TEAM_RESULTS_HEADER, append_team_result, team_results_path
from metamon.errors import MetamonError, UnknownNameError

SPACES = dict(observation_space="DefaultObservationSpace", action_space="DefaultActionSpace",
              reward_function="BinaryReward")


def test_metamons_positional_order_is_a_clear_error():
    with pytest.raises(MetamonError, match=r"num_battles second; here pass it by keyword"):
        QueueOnLocalLadder("gen1ou", 10, "DefaultObservationSpace", "DefaultActionSpace", "BinaryReward")


def test_only_the_poke_env_backend():
    with pytest.raises(UnknownNameError, match="battle backend 'metamon'. Available: poke-env"):
        QueueOnLocalLadder(battle_format="gen1ou", num_battles=1, battle_backend="metamon", **SPACES)


def test_a_password_is_refused_on_the_local_server():
    with pytest.raises(MetamonError, match="player_password is not used on the local server.*Alice1"):
        QueueOnLocalLadder(battle_format="gen1ou", num_battles=1, player_username="Alice1",
                           player_password="hunter2", **SPACES)


@pytest.mark.parametrize("ours, theirs", [("username", "player_username"), ("team_set", "player_team_set")])
def test_our_name_and_metamons_must_agree(ours, theirs):
    with pytest.raises(MetamonError, match=rf"{ours}='a' and {theirs}='b' disagree"):
        QueueOnLocalLadder(battle_format="gen1ou", num_battles=1, **{ours: "a", theirs: "b"}, **SPACES)


def test_team_results_csv_appends_rows_under_metamons_file_name(tmp_path):
    first = append_team_result(tmp_path, "Alice1", "gen1ou", "teams/a.gen1ou_team", "Bob2", "win", 31,
                               "battle-gen1ou-1")
    second = append_team_result(tmp_path, "Alice1", "gen1ou", "", "Carol3", "tie", 7, "battle-gen1ou-2")
    assert first == second == team_results_path(tmp_path, "Alice1", "gen1ou")
    assert first.name == "battle_log_Alice1_gen1ou.csv"
    with open(first, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [list(TEAM_RESULTS_HEADER),
                    ["Alice1", "teams/a.gen1ou_team", "Bob2", "win", "31", "battle-gen1ou-1"],
                    ["Alice1", "", "Carol3", "tie", "7", "battle-gen1ou-2"]]
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary files left

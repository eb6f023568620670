"""metamon's ``QueueOnLocalLadder(player_username=..., player_team_set=..., ...)`` on our local
server (poke-env 0.16.1): two ladder envs built with metamon's keywords find each other and
finish a battle, writing trajectories and metamon's team-result CSV."""

import csv
import threading

from metamon.data.trajectory_file import parse_trajectory_filename
from metamon.env import QueueOnLocalLadder, get_metamon_teams
from metamon.env.rollout import play_episodes, random_policy
from metamon.env.team_results import TEAM_RESULTS_HEADER, team_results_path
from metamon.interface import DefaultActionSpace, DefaultObservationSpace, DefaultShapedReward
from metamon.server import unique_username

FMT = "gen1ou"


def metamon_style_env(server, username, tmp_path, **extra):
    # the keyword call of metamon's make_local_ladder_env / pretrained_vs_local_ladder
    return QueueOnLocalLadder(
        battle_format=FMT,
        num_battles=1,
        observation_space=DefaultObservationSpace(),
        action_space=DefaultActionSpace(),
        reward_function=DefaultShapedReward(),
        player_team_set=get_metamon_teams(FMT, "builtin"),
        player_username=username,
        player_avatar="red",
        save_trajectories_to=str(tmp_path / "trajectories"),
        save_team_results_to=str(tmp_path / "team_results"),
        battle_backend="poke-env",
        server_url=server.port,
        ladder_timeout=120,
        **extra,
    )


def test_two_metamon_style_ladder_envs_play_each_other(showdown_server, tmp_path, capsys):
    names = [unique_username("Ladder"), unique_username("Ladder")]
    envs = [metamon_style_env(showdown_server, names[0], tmp_path, print_battle_bar=True),
            metamon_style_env(showdown_server, names[1], tmp_path)]
    outcomes = [None, None]

    def run(i):
        outcomes[i] = play_episodes(envs[i], random_policy(9, seed=i), 1, progress=False)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        for env in envs:
            env.close()
    assert all(o is not None for o in outcomes), "a ladder env did not finish its battle"
    (a,), (b,) = outcomes
    assert {a.result, b.result} in ({"win", "loss"}, {"tie"})
    assert [env.username for env in envs] == names

    # trajectories: each side names the other as its opponent, one shared battle id
    parsed = [parse_trajectory_filename(r.trajectory_path) for r in (a, b)]
    assert [p.player for p in parsed] == names and [p.opponent for p in parsed] == names[::-1]
    assert parsed[0].battle_id == parsed[1].battle_id

    # metamon's team-result CSV, one per player, naming the builtin team file that was played
    for env, name, other, outcome in zip(envs, names, names[::-1], (a, b)):
        path = team_results_path(tmp_path / "team_results", name, FMT)
        with open(path, newline="") as f:
            header, row = list(csv.reader(f))
        assert tuple(header) == TEAM_RESULTS_HEADER
        assert row[0] == name and row[2] == other and row[3] == outcome.result
        assert row[1].endswith(f".{FMT}_team") and row[1] == str(env.team_set.most_recent_team_file)
        assert int(row[4]) >= 1 and row[5].startswith(f"battle-{FMT}-")
    assert envs[0].results[a.result] == 1

    # the status line is rewritten in place ("\r") after each step and ends with the battle
    err = capsys.readouterr().err
    bar = [chunk.split("\n")[0] for chunk in err.split("\r") if " | battle " in chunk]
    assert bar[0].startswith(f"{names[0]} | battle 1 | decision 1 |") and len(bar) == a.steps
    wins, losses, ties = (int(a.result == r) for r in ("win", "loss", "tie"))
    assert bar[-1].endswith(f"W {wins} L {losses} T {ties}")
    assert f"\r{bar[-1]}\n" in err and not any(names[1] in line for line in bar)

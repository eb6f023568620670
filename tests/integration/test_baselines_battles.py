"""Baselines playing real battles on the local Showdown server (session fixture
``showdown_server``). Every Baseline's scoring path must run without a single fallback.

Reference win rates (poke-env built-ins, gen9randombattle, 500-1000 battles): SimpleHeuristics
vs Random 98.6%, MaxBasePower vs Random 93.4%. With 30 battles a true rate of 90% falls below
the 70% bound with probability < 0.2%.
"""

from __future__ import annotations

import asyncio

import pytest
from poke_env.player import Player

from metamon.baselines import make_player
from metamon.baselines.base import Baseline
from metamon.baselines.compete import main as compete_main
from metamon.battles import close_players, play_battles, summarize
from metamon.teams import get_metamon_teams

N_BATTLES = 30
CONCURRENCY = 10


def _play(server, name, opponent_name, battle_format="gen9randombattle", n=N_BATTLES, seed=0):
    team = get_metamon_teams(battle_format)
    players = [
        make_player(
            who,
            battle_format,
            server_configuration=server.server_configuration,
            max_concurrent_battles=CONCURRENCY,
            team=team,
            seed=seed + i,
        )
        for i, who in enumerate((name, opponent_name))
    ]
    try:
        results = play_battles(*players, n_battles=n, timeout_s=120)
    finally:
        close_players(*players)
    for p in players:
        if isinstance(p, Baseline):
            assert p.n_choices > 0
            assert p.n_fallbacks == 0, f"{type(p).__name__} fell back {p.n_fallbacks} times"
    summary = summarize(results)
    assert summary["error"] == 0 and summary["finished"] == n
    return summary


@pytest.mark.parametrize(
    "name", ["MaxBPBaseline", "PokeEnvHeuristic", "Gen1BossAI", "Grunt", "GymLeader", "EmeraldKaizo"]
)
def test_heuristics_beat_random(showdown_server, name):
    summary = _play(showdown_server, name, "RandomBaseline")
    assert summary["win_rate"] >= 0.7, summary


def test_bug_catcher_loses_to_max_bp(showdown_server):
    summary = _play(showdown_server, "BugCatcher", "MaxBPBaseline")
    assert summary["win_rate"] <= 0.5, summary


def test_random_vs_random_is_balanced(showdown_server):
    summary = _play(showdown_server, "RandomBaseline", "RandomBaseline")
    assert 0.2 <= summary["win_rate"] <= 0.8, summary


def test_gen1ou_with_builtin_teams(showdown_server):
    summary = _play(showdown_server, "GymLeader", "RandomBaseline", battle_format="gen1ou", n=10)
    assert summary["win"] >= 7, summary


class _Silent(Player):
    """Never answers a request: every battle it plays stalls."""

    def choose_move(self, battle):
        return asyncio.sleep(3600)


def test_stalled_battles_time_out_and_are_reported(showdown_server):
    config = showdown_server.server_configuration
    stuck = make_player(_Silent, "gen9randombattle", server_configuration=config, max_concurrent_battles=2)
    bot = make_player(
        "RandomBaseline", "gen9randombattle", server_configuration=config, max_concurrent_battles=2
    )
    try:
        results = play_battles(bot, stuck, n_battles=2, timeout_s=4)
    finally:
        close_players(bot, stuck)
    assert [r.outcome for r in results] == ["error", "error"]


def test_compete_cli_plays_on_a_running_server(showdown_server, capsys):
    url = f"{showdown_server.host}:{showdown_server.port}"
    code = compete_main(
        [
            "--battle_format",
            "gen9randombattle",
            "--player",
            "Grunt",
            "--opponent",
            "RandomBaseline",
            "--battles",
            "4",
            "--concurrent",
            "4",
            "--server_url",
            url,
            "--seed",
            "3",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Grunt vs RandomBaseline in gen9randombattle: 4 battles" in out
    assert "95% Wilson interval" in out and "battles/s" in out

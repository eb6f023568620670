"""What the command-line tools print (issue 15, item 11): poke-env's warnings follow ``--log_level``
(quiet by default) and no poke-env task is left pending for asyncio to complain about ("Task was
destroyed but it is pending!")."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

from poke_env.concurrency import POKE_LOOP
from poke_env.player import RandomPlayer

from metamon.battles import close_players, new_player

REPO = Path(__file__).resolve().parents[2]
NOISY = "tests.integration.noisy_players.NoisyRandomPlayer"
UNMANAGED = "Unmanaged move message format received"
DESTROYED = "Task was destroyed but it is pending!"


def _cli(module, *argv):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=300)


def test_compete_is_quiet_by_default_and_loud_when_asked(showdown_server):
    argv = ["--battle_format", "gen9randombattle", "--player", NOISY, "--opponent", "RandomBaseline",
            "--battles", "2", "--server_url", f"127.0.0.1:{showdown_server.port}"]
    quiet = _cli("metamon.baselines.compete", *argv)
    assert quiet.returncode == 0, quiet.stderr
    assert UNMANAGED not in quiet.stderr and DESTROYED not in quiet.stderr
    loud = _cli("metamon.baselines.compete", *argv, "--log_level", "warning")
    assert loud.returncode == 0, loud.stderr
    assert UNMANAGED in loud.stderr  # the flag routes poke-env's warnings, it does not drop them


def test_env_cli_is_quiet_and_leaves_no_pending_task(showdown_server):
    proc = _cli("metamon.env", "--battle_format", "gen9randombattle", "--opponent", NOISY, "--battles", "3",
                "--server_url", f"127.0.0.1:{showdown_server.port}")
    assert proc.returncode == 0, proc.stderr
    assert UNMANAGED not in proc.stderr and DESTROYED not in proc.stderr, proc.stderr[-3000:]


def test_closing_a_player_ends_its_pending_message_handlers(showdown_server, capfd):
    """A message handler still waiting when a run ends (for a decision, a battle lock) used to stay
    pending and be garbage-collected with its player: asyncio then printed DESTROYED."""
    player = new_player(RandomPlayer, "gen9randombattle", server_configuration=showdown_server.server_configuration)
    deadline = time.monotonic() + 60
    while not player.ps_client.logged_in.is_set():
        assert time.monotonic() < deadline, "never logged in"
        time.sleep(0.1)

    async def wait_for_ever():
        await asyncio.get_running_loop().create_future()  # like a handler waiting for a decision

    async def stuck_handler(client):
        task = asyncio.create_task(wait_for_ever())
        client._active_tasks.add(task)
        task.add_done_callback(client._active_tasks.discard)
        return task

    task = asyncio.run_coroutine_threadsafe(stuck_handler(player.ps_client), POKE_LOOP).result(timeout=10)
    close_players(player)
    assert task.done()
    del player, task
    gc.collect()
    time.sleep(0.5)
    assert DESTROYED not in capfd.readouterr().err

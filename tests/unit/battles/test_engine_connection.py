"""The battle engine notices a closed connection within a second (issue 15, item 9), without a
server: players are stand-ins whose poke-env listening future is done once "the server died"."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

import pytest

from metamon.battles import ConnectionLostError, connection_closed, wait_for_battles
from metamon.errors import BattleError


class _Client:
    websocket_url = "ws://127.0.0.1:9/showdown/websocket"

    def __init__(self):
        self._listening_coroutine = concurrent.futures.Future()


class _Player:
    """What the engine reads of a poke-env Player: its client, username and logger."""

    def __init__(self, name):
        self.username = name
        self.ps_client = _Client()
        self.logger = logging.getLogger(f"test.{name}")

    def server_dies(self):
        self.ps_client._listening_coroutine.set_result(None)


def test_connection_closed_reads_the_listening_future():
    player = _Player("a")
    assert not connection_closed(player)
    player.server_dies()
    assert connection_closed(player)


@pytest.mark.parametrize("who", ["player", "opponent"])
def test_a_closed_connection_stops_the_wait_at_once(who):
    player, opponent = _Player("Alice"), _Player("Bob")
    run = concurrent.futures.Future()  # battles that would never finish
    dying = player if who == "player" else opponent
    threading.Timer(0.5, dying.server_dies).start()
    start = time.monotonic()
    with pytest.raises(ConnectionLostError, match=rf"connection of {dying.username} to the Showdown server "
                                                  r"\(ws://127.0.0.1:9/showdown/websocket\) closed during the run, "
                                                  r"after 3 finished battle\(s\)"):
        wait_for_battles(run, player, lambda: 3, timeout_s=120, watch=[opponent])
    assert time.monotonic() - start < 3  # not the 120 s stall timeout
    assert run.cancelled()
    assert issubclass(ConnectionLostError, BattleError)
    # command lines exit with the error's exit_code: 1 for a lost server, 2 for other metamon errors
    assert (ConnectionLostError("x").exit_code, BattleError("x").exit_code) == (1, 2)


def test_a_run_that_fails_on_a_closing_connection_raises_connection_lost():
    player = _Player("Alice")
    run = concurrent.futures.Future()
    run.set_exception(RuntimeError("sent on a closed websocket"))
    threading.Timer(0.3, player.server_dies).start()  # the close shows a moment after the send fails
    with pytest.raises(ConnectionLostError) as caught:
        wait_for_battles(run, player, lambda: 0, timeout_s=120)
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_other_failures_and_stalls_are_still_only_logged(caplog):
    player = _Player("Alice")
    run = concurrent.futures.Future()
    run.set_exception(RuntimeError("boom"))
    with caplog.at_level(logging.ERROR):
        wait_for_battles(run, player, lambda: 0, timeout_s=120)  # no close follows: logged, not raised
    assert "battles failed: RuntimeError('boom')" in caplog.text
    stalled = concurrent.futures.Future()
    wait_for_battles(stalled, player, lambda: 0, timeout_s=0.5)
    assert stalled.cancelled()

"""Run a list of tasks on Showdown servers: K worker processes, each with its own local server
(or all on one given server), or in this process.

A *worker* is opened once per server and then handles tasks one at a time::

    def open_worker(server_url: str) -> ContextManager[handler]     # picklable (module level
    handler(task, progress) -> result                                # or a functools.partial)

``server_url`` is ``"host:port"``; ``progress(k)`` reports ``k`` more battles done; ``task``
and ``result`` must be picklable. The worker keeps what it loads (e.g. a
:class:`~metamon.battles.spec.PlayerFactory` with its trained agents) across tasks.

:func:`run_on_servers` yields one :class:`TaskOutcome` per task, as tasks finish (in any order):

* ``parallel == 1``: the tasks run in this process, on ``server_url`` or on a local server
  started here and stopped at the end;
* ``parallel > 1``: ``parallel`` processes (spawned, never forked: poke-env runs an event-loop
  thread) pull tasks from one queue, each on its own local server or on ``server_url``.

A task that raises is reported with ``error`` set and its worker retires (its server may be
broken): the others take the remaining tasks, and when no worker is left the tasks still
queued are reported as errors too. Closing the generator early (or Ctrl-C) stops the workers,
which stop their servers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import sys
from typing import Any, Callable, ContextManager, Dict, Iterator, List, NamedTuple, Optional, Sequence

from metamon.logs import configure_logging, configured_log_level
from metamon.server import LocalShowdownServer

__all__ = ["TaskOutcome", "run_on_servers"]

Handler = Callable[[Any, Callable[[int], None]], Any]
OpenWorker = Callable[[str], ContextManager[Handler]]


class TaskOutcome(NamedTuple):
    """What became of ``tasks[index]``: its ``result``, or ``error`` (a message) if it raised
    or was never run."""

    index: int
    result: Any
    error: Optional[str]


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


@contextlib.contextmanager
def _server(server_url: Optional[str]) -> Iterator[str]:
    """``server_url`` itself, or the ``host:port`` of a local server running for the block."""
    if server_url is not None:
        yield server_url
        return
    with LocalShowdownServer() as server:
        yield f"{server.host}:{server.port}"


def _in_process(open_worker: OpenWorker, tasks: Sequence, server_url: Optional[str],
                progress: Callable[[int], None]) -> Iterator[TaskOutcome]:
    started, reason = 0, None
    try:
        with _server(server_url) as url, open_worker(url) as handle:
            for index, task in enumerate(tasks):
                started = index + 1
                try:
                    result = handle(task, progress)
                except Exception as error:  # noqa: BLE001 - reported; the worker retires
                    reason = "the worker retired after a failed task"
                    yield TaskOutcome(index, None, _describe(error))
                    break
                yield TaskOutcome(index, result, None)
    except Exception as error:  # noqa: BLE001 - the server or the worker could not open or close
        reason = f"the worker failed: {_describe(error)}"
    if reason is not None:
        for index in range(started, len(tasks)):
            yield TaskOutcome(index, None, f"not played: {reason}")


def _worker_main(worker: int, open_worker: OpenWorker, server_url: Optional[str], tasks, messages,
                 log_level: Optional[str] = None) -> None:
    """Worker process body: pull ``(index, task)`` from ``tasks`` until ``None``; report
    ``("start" | "progress" | "done" | "failed" | "crashed", worker, payload)`` on ``messages``.
    ``log_level``: the parent's ``--log_level`` (a spawned process starts afresh)."""
    # SIGTERM (the parent stopping us) unwinds the with-blocks, so the server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if log_level is not None:
        configure_logging(log_level)

    def progress(k: int) -> None:
        messages.put(("progress", worker, k))

    try:
        with _server(server_url) as url, open_worker(url) as handle:
            while True:
                item = tasks.get()
                if item is None:
                    return
                index, task = item
                messages.put(("start", worker, index))
                try:
                    result = handle(task, progress)
                except Exception as error:  # noqa: BLE001 - reported; this worker retires
                    messages.put(("failed", worker, (index, _describe(error))))
                    return
                messages.put(("done", worker, (index, result)))
    except BaseException as error:  # noqa: BLE001 - reported by the parent
        messages.put(("crashed", worker, _describe(error) if str(error) else type(error).__name__))


def _in_processes(open_worker: OpenWorker, tasks: Sequence, parallel: int, server_url: Optional[str],
                  progress: Callable[[int], None]) -> Iterator[TaskOutcome]:
    ctx = multiprocessing.get_context("spawn")
    task_queue, messages = ctx.Queue(), ctx.Queue()
    for item in enumerate(tasks):
        task_queue.put(item)
    for _ in range(parallel):
        task_queue.put(None)
    procs: List = []
    for worker in range(parallel):
        proc = ctx.Process(target=_worker_main, daemon=True,
                           args=(worker, open_worker, server_url, task_queue, messages, configured_log_level()))
        proc.start()
        procs.append(proc)

    open_tasks = set(range(len(tasks)))
    running: Dict[int, int] = {}  # worker -> task index in flight
    alive = set(range(parallel))
    last_failure = "no worker is left"

    def handle(kind: str, worker: int, payload) -> Iterator[TaskOutcome]:
        nonlocal last_failure
        if kind == "progress":
            progress(payload)
        elif kind == "start":
            running[worker] = payload
        elif kind in ("done", "failed"):
            index, value = payload
            running.pop(worker, None)
            open_tasks.discard(index)
            if kind == "done":
                yield TaskOutcome(index, value, None)
            else:
                last_failure = f"worker {worker} retired after a failed task ({value})"
                yield TaskOutcome(index, None, value)
        elif kind == "crashed":
            last_failure = f"worker {worker} stopped: {payload}"
            alive.discard(worker)
            if worker in running:
                index = running.pop(worker)
                open_tasks.discard(index)
                yield TaskOutcome(index, None, last_failure)

    try:
        while open_tasks and alive:
            try:
                yield from handle(*messages.get(timeout=1.0))
                continue
            except queue.Empty:
                pass
            dead = [w for w in alive if not procs[w].is_alive()]
            while True:  # a dead process flushed its messages before exiting: read them first
                try:
                    yield from handle(*messages.get_nowait())
                except queue.Empty:
                    break
            for worker in dead:
                alive.discard(worker)
                if worker in running:
                    index = running.pop(worker)
                    open_tasks.discard(index)
                    last_failure = f"worker {worker} exited with code {procs[worker].exitcode}"
                    yield TaskOutcome(index, None, last_failure)
        for index in sorted(open_tasks):
            yield TaskOutcome(index, None, f"not played: {last_failure}")
    finally:
        for proc in procs:
            proc.join(timeout=1 if open_tasks else 30)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def run_on_servers(open_worker: OpenWorker, tasks: Sequence, *, parallel: int = 1,
                   server_url: Optional[str] = None,
                   progress: Optional[Callable[[int], None]] = None) -> Iterator[TaskOutcome]:
    """Run every task (see the module docstring) and yield a :class:`TaskOutcome` for each as
    it finishes. ``progress(k)`` is called in this process."""
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    progress = progress or (lambda k: None)
    if not tasks:
        return iter(())
    if parallel == 1:
        return _in_process(open_worker, tasks, server_url, progress)
    return _in_processes(open_worker, tasks, min(parallel, len(tasks)), server_url, progress)

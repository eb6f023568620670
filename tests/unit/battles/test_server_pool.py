"""run_on_servers with fake workers (no Showdown): in this process and in spawned processes,
failed tasks retire their worker, the rest is reported, progress reaches the caller."""

from __future__ import annotations

import contextlib
import functools
import os

import pytest

from metamon.battles.server_pool import run_on_servers

URL = "127.0.0.1:1"  # never contacted: the fake workers only read it


class Squares:
    """Worker: task x -> (x * x, server url, pid); task "boom" raises; ``fail_open`` fails to open."""

    def __init__(self, server_url, fail_open=False):
        if fail_open:
            raise RuntimeError("cannot open")
        self.url = server_url

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __call__(self, task, progress):
        if task == "boom":
            raise ValueError("boom")
        progress(1)
        return task * task, self.url, os.getpid()


def outcomes(tasks, **kwargs):
    seen = []
    got = {o.index: o for o in run_on_servers(kwargs.pop("open_worker", Squares), tasks, server_url=URL,
                                                progress=seen.append, **kwargs)}
    assert sorted(got) == list(range(len(tasks)))
    return got, seen


def test_in_process_runs_every_task_in_order():
    got, seen = outcomes([1, 2, 3])
    assert [got[i].result[:2] for i in range(3)] == [(1, URL), (4, URL), (9, URL)]
    assert {got[i].result[2] for i in range(3)} == {os.getpid()} and seen == [1, 1, 1]
    assert all(o.error is None for o in got.values())


def test_in_process_failure_retires_the_worker_and_reports_the_rest():
    got, _ = outcomes([1, "boom", 3, 4])
    assert got[0].result[0] == 1
    assert got[1].error == "ValueError: boom"
    assert got[2].error == got[3].error == "not played: the worker retired after a failed task"


def test_in_process_open_failure_reports_every_task():
    got, _ = outcomes([1, 2], open_worker=functools.partial(Squares, fail_open=True))
    assert all(o.result is None and "RuntimeError: cannot open" in o.error for o in got.values())


def test_no_tasks_and_bad_parallel():
    assert list(run_on_servers(Squares, [], server_url=URL)) == []
    with pytest.raises(ValueError, match="parallel"):
        run_on_servers(Squares, [1], parallel=0, server_url=URL)


def test_the_server_of_a_worker_is_used_for_every_task():
    opened = []

    @contextlib.contextmanager
    def open_worker(url):
        opened.append(url)
        yield lambda task, progress: task + 1

    got, _ = outcomes([1, 2], open_worker=open_worker)
    assert opened == [URL] and [got[0].result, got[1].result] == [2, 3]


def test_spawned_workers_share_the_tasks_and_one_failure_retires_one_worker():
    tasks = [1, 2, 3, "boom", 5, 6, 7]
    got, seen = outcomes(tasks, parallel=2)
    assert got[3].error == "ValueError: boom"
    done = [o for o in got.values() if o.error is None]
    assert sorted(o.result[0] for o in done) == [1, 4, 9, 25, 36, 49]
    assert all(o.result[1] == URL and o.result[2] != os.getpid() for o in done)
    assert len(seen) == 6


def test_spawned_workers_that_cannot_open_report_every_task():
    got, _ = outcomes([1, 2, 3], parallel=2, open_worker=functools.partial(Squares, fail_open=True))
    assert all(o.result is None and o.error.startswith("not played: worker") and "cannot open" in o.error
               for o in got.values())

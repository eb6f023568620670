"""Recorded battles on a real local Showdown server: metamon.data.generate and recording_player."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from poke_env.battle import Move
from poke_env.player import SingleBattleOrder

from metamon.baselines import get_baseline, make_player
from metamon.battles import close_players, play_battles
from metamon.data.generate import count_trajectory_files, generate
from metamon.data.parsed_replay_dset import ParsedReplayDataset
from metamon.data.recording import recording_player
from metamon.data.trajectory_file import parse_trajectory_filename, read_trajectory
from metamon.interface import DefaultActionSpace, DefaultObservationSpace, DefaultShapedReward
from metamon.teams import get_metamon_teams

REPO = Path(__file__).resolve().parents[2]
FMT = "gen1ou"


def url(server):
    return f"{server.host}:{server.port}"


def files(root):
    return sorted((Path(root) / FMT).glob("*.json.lz4"))


def test_generate_records_both_sides_and_resumes(showdown_server, tmp_path):
    out = tmp_path / "out"
    summary = generate("GymLeader", "Grunt", FMT, 10, out, server_url=url(showdown_server), concurrent=5,
                       seed=0, show_progress=False)
    paths = files(out)
    assert summary.finished == 10 and summary.errors == 0 and summary.files_written == 20
    assert len(paths) == 20 and summary.existing_files == 0
    assert summary.count("win") + summary.count("loss") + summary.count("tie") == 10

    by_id = defaultdict(list)
    decisions = invalid = 0
    for path in paths:
        name = parse_trajectory_filename(path.name)
        data = read_trajectory(path)
        by_id[name.battle_id].append((name, data))
        actions = data["actions"]
        assert actions[-1] == -1 and all(0 <= a <= 12 for a in actions[:-1]), actions
        assert len(data["states"]) == len(actions) == len(data["invalid_actions"])
        assert data["format"] == FMT and data["writer"] == "metamon-gemma recording_player"
        assert name.won == (data["result"] == "win")
        assert name.player == data["usernames"]["player"] and name.opponent == data["usernames"]["opponent"]
        decisions += len(actions) - 1
        invalid += sum(data["invalid_actions"])
    assert summary.invalid_rate == invalid / decisions
    assert len(by_id) == 10
    opposite = {"win": "loss", "loss": "win", "tie": "tie"}
    for (a, da), (b, db) in by_id.values():
        assert (a.player, a.opponent) == (b.opponent, b.player)
        assert db["result"] == opposite[da["result"]]
        assert da["battle_tag"] == db["battle_tag"] and da["turns"] == db["turns"]
    players = Counter(n.player[:3] for n, _ in sum(by_id.values(), []))  # usernames: class name + digits
    assert players == Counter({"Gym": 10, "Gru": 10})

    dset = ParsedReplayDataset(DefaultObservationSpace(), DefaultActionSpace(), DefaultShapedReward(),
                               dset_root=out, formats=[FMT], strict=True)
    assert len(dset) == 20
    for i in range(len(dset)):
        obs, actions, rewards, dones = dset[i]
        assert not any(actions["missing"]) and all(0 <= a <= 12 for a in actions["chosen"])
        assert len(rewards) == len(actions["chosen"]) and dones[-1]

    again = generate("GymLeader", "Grunt", FMT, 2, out, server_url=url(showdown_server), show_progress=False)
    assert again.existing_files == 20 and again.finished == 2
    new = files(out)
    assert len(new) == 24 and set(paths) <= set(new)


class InvalidFirst(get_baseline("RandomBaseline")):
    """Answers every request first with a move it does not have, then (if asked again) at
    random. ``DEFAULT_CHOICE_CHANCE`` = 0: poke-env always asks again; async on purpose."""

    DEFAULT_CHOICE_CHANCE = 0.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answered = set()

    async def choose_move(self, battle):
        key = (battle.battle_tag, battle.last_request.get("rqid"))
        if key not in self.answered:
            self.answered.add(key)
            return SingleBattleOrder(Move("splash", gen=1))
        return self.choose_random_move(battle)


class InvalidThenDefault(InvalidFirst):
    """Always invalid; poke-env then sends "/choose default" without asking again."""

    DEFAULT_CHOICE_CHANCE = 1.0


def test_invalid_choices_are_recorded_explicitly(showdown_server, tmp_path):
    teams = [get_metamon_teams(FMT, "builtin") for _ in range(2)]
    retry, default = (
        make_player(recording_player(cls), FMT, server_configuration=showdown_server.server_configuration,
                    max_concurrent_battles=1, team=team, save_trajectories_to=tmp_path)
        for cls, team in zip((InvalidFirst, InvalidThenDefault), teams)
    )
    try:
        results = play_battles(retry, default, 1, timeout_s=60)
    finally:
        close_players(retry, default)
    assert [r.outcome for r in results] != ["error"]
    (r1,), (r2,) = retry.recorded, default.recorded
    assert r1.battle_id == r2.battle_id
    first = read_trajectory(r1.path)
    # Every decision was rejected once, then replaced by a legal random choice.
    assert r1.invalid == r1.decisions == len(first["actions"]) - 1 > 0
    assert first["invalid_actions"] == [True] * r1.decisions + [False]
    assert all(0 <= a <= 12 for a in first["actions"][:-1])
    # Rejected and answered by poke-env's default order: flagged, and the played action is unknown.
    second = read_trajectory(r2.path)
    assert second["invalid_actions"] == [True] * r2.decisions + [False]
    assert second["actions"] == [-1] * (r2.decisions + 1)
    assert retry._buffers == {} and default._buffers == {}


def test_cli_parallel_workers_with_their_own_servers(tmp_path):
    out = tmp_path / "par"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_selfplay_data.py"), "--player", "GymLeader",
         "--opponent", "Grunt", "--battle_format", FMT, "--team_set", "builtin", "--num_battles", "2",
         "--parallel_instances", "2", "--concurrent", "1", "--output_dir", str(out), "--no_progress", "--seed", "1"],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 of 2 battles finished" in proc.stdout
    assert count_trajectory_files(out, FMT) == 4
    ids = Counter(parse_trajectory_filename(p.name).battle_id for p in files(out))
    assert sorted(ids.values()) == [2, 2]


# ---- interrupted and hung runs ---------------------------------------------------------------
def _generate_cmd(server, out, num_battles, *extra):
    return [sys.executable, "-m", "metamon.data.generate", "--player", "GymLeader", "--opponent", "Grunt",
            "--battle_format", FMT, "--num_battles", str(num_battles), "--output_dir", str(out),
            "--server_url", url(server), "--concurrent", "2", "--no_progress", *extra]


def _kill_after_some_battles(server, out, sig, min_files=4, limit_s=180):
    """Start a long generation run, wait until ``min_files`` files exist, send ``sig``.

    The child gets SIGINT's default action whatever this process inherited: a shell that starts
    the test run in the background without job control (``(make test &)``) ignores SIGINT, and an
    ignored signal stays ignored across ``exec``, so the child would play all its battles."""
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # a handler, not SIG_IGN: exec resets it
    try:
        proc = subprocess.Popen(_generate_cmd(server, out, 500), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=REPO)
    finally:
        signal.signal(signal.SIGINT, handler)
    deadline = time.monotonic() + limit_s
    try:
        while len(files(out)) < min_files:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"fewer than {min_files} files after {limit_s} s"
            time.sleep(0.2)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stdout, stderr


def _check_complete_and_resumable(server, out):
    """Every visible file is a complete trajectory the dataset reads; a re-run only adds."""
    folder = out / FMT
    visible = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    assert visible == files(out)  # nothing else the dataset would look at
    for path in visible:
        data = read_trajectory(path)
        assert data["actions"][-1] == -1 and len(data["states"]) == len(data["actions"]) >= 2
        assert data["states"][-1]["battle_won"] or data["states"][-1]["battle_lost"] or data["result"] == "tie"
    dset = ParsedReplayDataset(DefaultObservationSpace(), DefaultActionSpace(), DefaultShapedReward(),
                               dset_root=out, formats=[FMT], strict=True)
    assert len(dset) == len(visible)
    for i in range(len(dset)):
        assert dset[i][3][-1]  # complete battles: the last transition is terminal
    before = {p: p.read_bytes() for p in visible}
    rerun = subprocess.run(_generate_cmd(server, out, 2), capture_output=True, text=True, timeout=180, cwd=REPO)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{len(visible)} were already there" in rerun.stdout
    after = files(out)
    assert len(after) == len(visible) + 4
    assert all(p.read_bytes() == body for p, body in before.items())  # nothing overwritten


def test_sigkill_loses_only_battles_in_flight(showdown_server, tmp_path):
    out = tmp_path / "killed"
    code, _, _ = _kill_after_some_battles(showdown_server, out, signal.SIGKILL)
    assert code == -signal.SIGKILL
    _check_complete_and_resumable(showdown_server, out)


def test_sigint_stops_cleanly_and_keeps_finished_battles(showdown_server, tmp_path):
    out = tmp_path / "interrupted"
    code, stdout, stderr = _kill_after_some_battles(showdown_server, out, signal.SIGINT)
    assert code == 130, f"stdout: {stdout}\nstderr: {stderr}"  # both: a run that ended early says why on stdout
    assert "interrupted: battles that finished are saved" in stderr
    assert not [p for p in (out / FMT).iterdir() if p.name.startswith(".writing-")]  # no temp file left
    _check_complete_and_resumable(showdown_server, out)


HANGING_PLAYER = '''
import asyncio
from metamon.baselines import get_baseline


class HangingPlayer(get_baseline("RandomBaseline")):
    """Never answers: choose_move waits forever (without blocking poke-env's event loop)."""

    async def choose_move(self, battle):
        await asyncio.Event().wait()
'''


def _run_with_hanging_opponent(server, tmp_path, *flags):
    (tmp_path / "hanging_player.py").write_text(HANGING_PLAYER)
    out = tmp_path / "hung"
    cmd = _generate_cmd(server, out, 1, *flags)
    cmd[cmd.index("Grunt")] = "hanging_player.HangingPlayer"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert time.monotonic() - start < 100
    return proc, out


def test_hung_battle_is_forfeited_at_the_battle_timeout(showdown_server, tmp_path):
    proc, out = _run_with_hanging_opponent(showdown_server, tmp_path, "--battle_timeout", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 of 1 battles finished" in proc.stdout and "0 errored" in proc.stdout
    assert "1 battles timed out after --battle_timeout 2 s" in proc.stdout
    assert "forfeiting (battle timeout)" in proc.stderr  # the log names the battle
    paths = files(out)
    assert len(paths) == 2  # the battle ended (by forfeit): both sides recorded it completely
    by_player = {parse_trajectory_filename(p.name).player[:7]: read_trajectory(p) for p in paths}
    hung, other = by_player["Hanging"], by_player["GymLead"]
    assert hung["actions"] == [-1, -1] and hung["result"] == "loss"  # its one decision: the default order
    assert other["result"] == "win" and other["actions"][-1] == -1


def test_stuck_batch_is_abandoned_at_the_stall_timeout(showdown_server, tmp_path):
    proc, out = _run_with_hanging_opponent(showdown_server, tmp_path, "--timeout", "3", "--battle_timeout", "300")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # nothing finished
    assert "0 of 1 battles finished" in proc.stdout
    assert "1 battles timed out: no battle finished for 3 s" in proc.stdout
    for path in files(out):  # the forfeited battle may be recorded (complete) by its live side
        assert read_trajectory(path)["actions"][-1] == -1

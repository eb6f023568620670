"""Push and pull runs (metamon.rl.run_sharing, ``python -m metamon.rl.pretrained push|pull``) with
huggingface_hub's HfApi and snapshot_download replaced by fakes (no network)."""

import csv
import fnmatch
import json
import shutil
from pathlib import Path

import httpx
import huggingface_hub
import pytest
import torch
from _pretrained_helpers import TINY_TOKENIZER, observation_sequence, policy_logits
from _tiny_gin import tiny_agent_gin
from huggingface_hub.errors import RepositoryNotFoundError

from metamon.amago.checkpoints import save_weights
from metamon.errors import MetamonError
from metamon.rl import TRAINING_CONFIG_DIR, MetamonRLError, pretrained
from metamon.rl.run_dir import (
    CONFIG_FILE,
    RunInfo,
    available_epochs,
    build_agent,
    load_agent,
    policy_weights_path,
    write_run_files,
)
from metamon.rl.run_sharing import PULLED_PATTERNS, model_card, pull_run, push_run
from metamon.rl.safe_gin import UnsafeGinError

COMMAND = "python -m metamon.rl.train --run_name tiny --save_dir runs --model_gin_config tiny_agent.gin"


class FakeHub:
    """Stands in for the Hub: HfApi().create_repo / upload_folder record into ``repos``, and
    snapshot_download serves a repository's files (honouring ``allow_patterns``)."""

    def __init__(self):
        self.repos: dict = {}  # repo_id -> {path: bytes}
        self.created: list = []
        self.commits: list = []
        self.snapshots: list = []
        hub = self

        class Api:
            def create_repo(self, repo_id, private=None, exist_ok=False, repo_type=None):
                hub.created.append(dict(repo_id=repo_id, private=private, exist_ok=exist_ok, repo_type=repo_type))
                hub.repos.setdefault(repo_id, {})
                return f"https://huggingface.co/{repo_id}"

            def upload_folder(self, repo_id, folder_path, repo_type=None, commit_message=None):
                folder = Path(folder_path)
                files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
                hub.commits.append(dict(repo_id=repo_id, repo_type=repo_type, message=commit_message, files=files))
                hub.repos[repo_id].update(files)

        self.Api = Api

    def snapshot_download(self, repo_id, repo_type=None, revision=None, local_dir=None, allow_patterns=None):
        self.snapshots.append(dict(repo_id=repo_id, repo_type=repo_type, revision=revision,
                                   allow_patterns=allow_patterns))
        if repo_id not in self.repos:
            request = httpx.Request("GET", f"https://huggingface.co/api/models/{repo_id}")
            raise RepositoryNotFoundError(f"{repo_id} not found", response=httpx.Response(404, request=request))
        for name, data in self.repos[repo_id].items():
            if any(fnmatch.fnmatch(name, pattern) for pattern in allow_patterns):
                target = Path(local_dir) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        (Path(local_dir) / ".cache" / "huggingface").mkdir(parents=True, exist_ok=True)
        return str(local_dir)


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", fake.Api)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    return fake


def _info():
    return RunInfo("DefaultObservationSpace", "MinimalActionSpace", "DefaultShapedReward", TINY_TOKENIZER,
                   ["gen1ou"], max_seq_len=8, command=COMMAND)


def _config_text():
    return tiny_agent_gin("MetamonTstepEncoder") + (TRAINING_CONFIG_DIR / "il.gin").read_text()


def _make_run(run_dir: Path, epochs=(2, 4)):
    """A trained-looking run directory: run.json, config.gin, weights, a training state, logs."""
    write_run_files(run_dir, _info(), _config_text())
    agent = build_agent(RunInfo.load(run_dir), [run_dir / CONFIG_FILE])
    for epoch in epochs:
        torch.manual_seed(epoch)
        for p in agent.parameters():
            p.data.normal_()
        save_weights(agent, policy_weights_path(run_dir, epoch))
    (run_dir / "ckpts" / "training_states" / f"{run_dir.name}_epoch_4").mkdir(parents=True)
    (run_dir / "ckpts" / "training_states" / f"{run_dir.name}_epoch_4" / "optimizer.json").write_text("{}")
    (run_dir / "ckpts" / "config.txt").write_text("# operative config")
    logs = run_dir / "logs"
    logs.mkdir()
    with open(logs / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "epoch", "gradient_steps", "metric", "value"])
        writer.writerow(["train-update", 1, 10, "Actor Loss", 0.5])
        writer.writerow(["val", 1, 10, "Average Win Rate in gen1ou_vs_Grunt", 0.25])
        writer.writerow(["val", 3, 30, "Average Win Rate in gen1ou_vs_Grunt", 0.75])
        writer.writerow(["val", 3, 30, "Average Valid Actions in gen1ou_vs_Grunt", 1.0])
    return agent


def test_push_uploads_exactly_the_run_files_and_a_model_card(tmp_path, hub):
    run_dir = tmp_path / "runs" / "tiny"
    _make_run(run_dir)
    eval_json = tmp_path / "eval.json"
    eval_json.write_text(json.dumps({"run_dir": str(run_dir), "epoch": 4, "rows": [
        {"format": "gen1ou", "opponent": "GymLeader", "battles": 20, "win_rate": 0.6, "ci_low": 0.39, "ci_high": 0.78,
         "valid_actions": 0.99, "valid_action_pct": 99.0}]}))
    url = push_run(run_dir, "me/tiny", private=True, eval_json=[eval_json])
    assert url == "https://huggingface.co/me/tiny"
    assert hub.created == [dict(repo_id="me/tiny", private=True, exist_ok=True, repo_type="model")]
    (commit,) = hub.commits
    files = commit["files"]
    assert sorted(files) == ["README.md", "ckpts/policy_weights/policy_epoch_2.safetensors",
                             "ckpts/policy_weights/policy_epoch_4.safetensors", "config.gin", "run.json"]
    assert commit["repo_type"] == "model" and "epochs 2, 4" in commit["message"]
    for name in ("run.json", "config.gin", "ckpts/policy_weights/policy_epoch_2.safetensors",
                 "ckpts/policy_weights/policy_epoch_4.safetensors"):
        assert files[name] == (run_dir / name).read_bytes(), name
    card = files["README.md"].decode()
    assert COMMAND in card and "pull --repo me/tiny --dest runs/tiny" in card and "run:runs/tiny@4" in card
    assert _config_text().strip() in card
    assert "| 3 | gen1ou | Grunt | - | 75.0 | - | 100.0 | validation (logs/metrics.csv) |" in card
    assert "| 4 | gen1ou | GymLeader | 20 | 60.0 | 39.0-78.0 | 99.0 | eval.json |" in card
    assert "| observation space | DefaultObservationSpace |" in card
    assert not any(p.name.startswith(".push-") for p in run_dir.parent.iterdir())  # staging removed


def test_push_selected_epochs_and_errors(tmp_path, hub):
    run_dir = tmp_path / "tiny"
    _make_run(run_dir)
    push_run(run_dir, "me/tiny", epochs=[4])
    assert sorted(hub.commits[0]["files"]) == ["README.md", "ckpts/policy_weights/policy_epoch_4.safetensors",
                                               "config.gin", "run.json"]
    assert hub.created[0]["private"] is False
    with pytest.raises(MetamonRLError, match=r"no weights for epoch\(s\) \[3\]; available epochs: \[2, 4\]"):
        push_run(run_dir, "me/tiny", epochs=[3])
    with pytest.raises(MetamonRLError, match="not a metamon run directory"):
        push_run(tmp_path, "me/tiny")
    bad_eval = tmp_path / "bad.json"
    bad_eval.write_text("{}")
    with pytest.raises(MetamonRLError, match="--eval_json .*bad.json is not a file written by"):
        push_run(run_dir, "me/tiny", eval_json=[bad_eval])


def test_model_card_without_command_or_results(tmp_path):
    run_dir = tmp_path / "plain"
    write_run_files(run_dir, RunInfo("DefaultObservationSpace", "MinimalActionSpace", "DefaultShapedReward",
                                     TINY_TOKENIZER, [], max_seq_len=8), _config_text())
    card = model_card(run_dir, "me/plain", [1])
    assert "the training command was not recorded" in card and "## Evaluation" not in card


def test_pull_then_load_agent_and_play_spec(tmp_path, hub):
    run_dir = tmp_path / "runs" / "tiny"
    saved = _make_run(run_dir)
    push_run(run_dir, "me/tiny")
    hub.repos["me/tiny"]["setup.py"] = b"raise SystemExit('never downloaded')"
    dest = tmp_path / "pulled" / "tiny"
    assert pull_run("me/tiny", dest, revision="v1") == dest
    assert hub.snapshots == [dict(repo_id="me/tiny", repo_type="model", revision="v1",
                                  allow_patterns=list(PULLED_PATTERNS))]
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "README.md", "ckpts/policy_weights/policy_epoch_2.safetensors",
        "ckpts/policy_weights/policy_epoch_4.safetensors", "config.gin", "run.json"]
    agent, info = load_agent(dest, 4)
    assert info == RunInfo.load(run_dir)
    batch = observation_sequence(info)
    assert torch.equal(policy_logits(agent, *batch), policy_logits(saved, *batch))
    assert not any(p.name.startswith(".tiny.pull-") for p in dest.parent.iterdir())


def test_pulled_pt_weights_are_converted_without_unpickling_code(tmp_path, hub):
    run_dir = tmp_path / "tiny"
    saved = _make_run(run_dir, epochs=(4,))
    push_run(run_dir, "me/tiny")
    files = hub.repos["me/tiny"]
    del files["ckpts/policy_weights/policy_epoch_4.safetensors"]
    pt = tmp_path / "policy_epoch_6.pt"
    torch.save(saved.state_dict(), pt)
    files["ckpts/policy_weights/policy_epoch_6.pt"] = pt.read_bytes()
    dest = tmp_path / "pulled"
    pull_run("me/tiny", dest)
    assert available_epochs(dest) == [6] and not list(dest.rglob("*.pt"))
    agent, info = load_agent(dest, 6)
    batch = observation_sequence(info)
    assert torch.equal(policy_logits(agent, *batch), policy_logits(saved, *batch))
    # a .pt holding a pickled object is refused, nothing is written
    torch.save({"w": _Payload(tmp_path / "ran")}, pt)
    files["ckpts/policy_weights/policy_epoch_6.pt"] = pt.read_bytes()
    with pytest.raises(MetamonRLError, match="refusing to load"):
        pull_run("me/tiny", tmp_path / "evil")
    assert not (tmp_path / "ran").exists() and not (tmp_path / "evil").exists()


def _touch(path):
    open(path, "w").close()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def test_pulled_config_with_a_foreign_import_is_refused(tmp_path, hub):
    run_dir = tmp_path / "tiny"
    _make_run(run_dir, epochs=(4,))
    push_run(run_dir, "me/tiny")
    files = hub.repos["me/tiny"]
    files["config.gin"] = b"import os\n" + files["config.gin"]
    with pytest.raises(UnsafeGinError, match=r"config.gin of me/tiny:1: 'import os' is refused"):
        pull_run("me/tiny", tmp_path / "pulled")
    assert not (tmp_path / "pulled").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no staging folder left


def test_pull_errors(tmp_path, hub):
    with pytest.raises(MetamonError, match="The Hugging Face Hub has no the Hub model 'me/missing'"):
        pull_run("me/missing", tmp_path / "a")
    hub.repos["me/weights-only"] = {"small-rl/ckpts/policy_weights/policy_epoch_2.pt": b""}
    with pytest.raises(MetamonRLError, match="holds no run.json: it is not a pushed run"):
        pull_run("me/weights-only", tmp_path / "b")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("")
    with pytest.raises(MetamonRLError, match="already exists and is not an empty folder"):
        pull_run("me/tiny", occupied)
    run_dir = tmp_path / "runs" / "tiny"
    _make_run(run_dir, epochs=(4,))
    push_run(run_dir, "me/tiny")
    del hub.repos["me/tiny"]["ckpts/policy_weights/policy_epoch_4.safetensors"]
    with pytest.raises(MetamonRLError, match="holds no policy weights"):
        pull_run("me/tiny", tmp_path / "c")
    empty = tmp_path / "empty"
    empty.mkdir()
    hub.repos["me/tiny"]["ckpts/policy_weights/policy_epoch_4.safetensors"] = (
        policy_weights_path(run_dir, 4).read_bytes())
    assert pull_run("me/tiny", empty) == empty  # an empty folder may receive the run


def test_offline_pull_names_the_repository(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(MetamonError, match=r"Could not reach the Hugging Face Hub.*'me/tiny'"):
        pull_run("me/tiny", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_cli_push_and_pull(tmp_path, hub, capsys):
    run_dir = tmp_path / "tiny"
    _make_run(run_dir, epochs=(2, 4))
    assert pretrained.main(["push", "--run", str(run_dir), "--repo", "me/tiny", "--epochs", "2"]) == 0
    assert "pushed" in capsys.readouterr().out
    assert "ckpts/policy_weights/policy_epoch_2.safetensors" in hub.repos["me/tiny"]
    assert "ckpts/policy_weights/policy_epoch_4.safetensors" not in hub.repos["me/tiny"]
    dest = tmp_path / "copy"
    assert pretrained.main(["pull", "--repo", "me/tiny", "--dest", str(dest)]) == 0
    assert f"run:{dest}" in capsys.readouterr().out
    assert available_epochs(dest) == [2]
    assert pretrained.main(["pull", "--repo", "me/tiny", "--dest", str(dest)]) == 2
    assert "error: --dest" in capsys.readouterr().err
    shutil.rmtree(dest)

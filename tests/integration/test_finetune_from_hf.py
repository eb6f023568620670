"""``python -m metamon.rl.finetune_from_hf`` end to end on a locally saved registry-layout
checkpoint (a tiny agent registered as a published model whose hub is a local folder) and on one
of our runs: the weights are the checkpoint's before the first update, two epochs train on
generated battles, the new run describes itself, the evaluation plays, and ``--reward_function``
changes the rewards the dataset returns."""

import json

import numpy as np
import pytest
import torch

from metamon.amago.checkpoints import save_weights
from metamon.data.generate import generate
from metamon.rl import MODEL_CONFIG_DIR, TRAINING_CONFIG_DIR, finetune_from_hf
from metamon.rl.evaluate import main as evaluate_main
from metamon.rl.evaluate import pretrained_vs_baselines
from metamon.rl.pretrained import (
    PRETRAINED_MODELS,
    PretrainedModel,
    get_pretrained_model,
    register_pretrained_model,
)
from metamon.rl.run_dir import CONFIG_FILE, RunInfo, available_epochs, build_agent, policy_weights_path, write_run_files

FMT = "gen1ou"
MODEL = "TinyFinetuneTest"
EPOCH = 2
INFO = RunInfo(observation_space="TeamPreviewObservationSpace", action_space="DefaultActionSpace",
               reward_function="DefaultShapedReward", tokenizer="metamon-gemma-v1", formats=[FMT], max_seq_len=64)


@pytest.fixture(scope="module")
def data(showdown_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune_data")
    url = f"{showdown_server.host}:{showdown_server.port}"
    assert generate("GymLeader", "Grunt", FMT, 3, root, server_url=url, seed=3, show_progress=False).files_written == 6
    return root, url


def _tiny_agent(tmp_path):
    text = "\n".join([(MODEL_CONFIG_DIR / "tiny_agent.gin").read_text(), (TRAINING_CONFIG_DIR / "il.gin").read_text()])
    write_run_files(tmp_path, INFO, text)
    torch.manual_seed(0)
    return build_agent(INFO, [tmp_path / CONFIG_FILE])


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A registry entry whose hub is a local folder holding {model}/ckpts/policy_weights/policy_epoch_2.pt
    (registered for this module only)."""
    root = tmp_path_factory.mktemp("hub")
    agent = _tiny_agent(tmp_path_factory.mktemp("tiny_source"))
    with torch.no_grad():  # non-trivial buffers too (PopArt statistics), so a fresh init cannot match them
        for buffer in agent.buffers():
            if buffer.is_floating_point():
                buffer.add_(0.25)
    path = root / "tiny-finetune-test" / "ckpts" / "policy_weights" / f"policy_epoch_{EPOCH}.pt"
    path.parent.mkdir(parents=True)
    torch.save(agent.state_dict(), path)
    register_pretrained_model(lambda: PretrainedModel(
        model_gin_config="tiny_agent", train_gin_config="il", model_name="tiny-finetune-test",
        tokenizer=INFO.tokenizer, observation_space=INFO.observation_space, action_space=INFO.action_space,
        reward_function=INFO.reward_function, default_checkpoint=EPOCH, hf_repo_id=str(root),
    ), name=MODEL)
    try:
        yield path
    finally:
        del PRETRAINED_MODELS[MODEL]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """One of our runs: tiny agent, epoch 0 saved."""
    run = tmp_path_factory.mktemp("runs") / "source"
    agent = _tiny_agent(run)
    save_weights(agent, policy_weights_path(run, 0))
    return run


def _flags(save_dir, data_root, *extra, run_name="ft"):
    return ["--run_name", run_name, "--save_dir", str(save_dir), "--parsed_replay_dir", str(data_root),
            "--formats", FMT, "--epochs", "2", "--steps_per_epoch", "2", "--batch_size_per_gpu", "2",
            "--dloader_workers", "0", "--log_interval", "1", "--seed", "0", *extra]


def _source_flags(kind, published, source_run):
    return ["--finetune_from_model", MODEL] if kind == "model" else ["--finetune_from_run", str(source_run),
                                                                      "--ckpt", "0"]


def _checkpoint(kind, published, source_run):
    if kind == "model":
        return torch.load(published, map_location="cpu", weights_only=True)
    from safetensors.torch import load_file

    return load_file(policy_weights_path(source_run, 0))


def test_finetune_from_a_published_model_trains_describes_itself_and_evaluates(data, published, tmp_path, capsys):
    root, url = data
    flags = _flags(tmp_path, root, "--finetune_from_model", MODEL, "--eval_gens", "1",
                   "--eval_opponents", "RandomBaseline", "--eval_battles", "2", "--eval_server_url", url)
    assert finetune_from_hf.main(flags) == 0
    run = tmp_path / "ft"
    assert available_epochs(run) == [0, 1]
    info = RunInfo.load(run)
    assert info.finetuned_from == f"pretrained:{MODEL}@{EPOCH}"
    assert info.init_from.endswith(f"policy_epoch_{EPOCH}.pt")
    assert info.command.startswith("python -m metamon.rl.finetune_from_hf ") and f"--finetune_from_model {MODEL}" \
        in info.command
    assert (info.observation_space, info.action_space, info.reward_function, info.tokenizer) == (
        INFO.observation_space, INFO.action_space, INFO.reward_function, INFO.tokenizer)
    config = (run / CONFIG_FILE).read_text()
    assert config.index("# bound before the gin files") < config.index("# tiny_agent.gin") < config.index("# il.gin")
    evaluation = json.loads((run / finetune_from_hf.EVAL_FILE).read_text())
    assert evaluation["epoch"] == 1 and [r["opponent"] for r in evaluation["rows"]] == ["RandomBaseline"]
    assert evaluation["rows"][0]["battles"] == 2 and evaluation["rows"][0]["valid_action_pct"] == 100.0
    assert "RandomBaseline" in capsys.readouterr().out

    # the finetuned run is a run like any other: evaluate loads it from run.json + config.gin
    assert evaluate_main(["--player", f"run:{run}@1", "--opponents", "RandomBaseline", "--battles", "1",
                          "--server_url", url, "--device", "cpu"]) == 0


@pytest.mark.parametrize("kind", ["model", "run"])
def test_the_weights_are_the_checkpoints_before_the_first_update(data, source_run, tmp_path, kind, request):
    root, _ = data
    published = request.getfixturevalue("published") if kind == "model" else None
    experiment, plan = finetune_from_hf.prepare(_flags(tmp_path, root, *_source_flags(kind, published, source_run),
                                                       "--eval_gens"))
    assert not plan.enabled
    seen = {}
    experiment.learn = lambda: seen.update({k: v.detach().clone() for k, v in experiment.policy.state_dict().items()})
    finetune_from_hf.train_experiment(experiment)
    expected = _checkpoint(kind, published, source_run)
    assert set(seen) == set(expected)
    assert all(torch.equal(seen[k], expected[k]) for k in expected), [k for k in expected
                                                                       if not torch.equal(seen[k], expected[k])]
    assert experiment.epoch == 0 and experiment.grad_update_counter == 0  # fresh counters
    info = RunInfo.load(tmp_path / "ft")
    if kind == "run":
        assert info.finetuned_from == f"run:{source_run.resolve()}@0"
        # the new config.gin holds the source run's config.gin once, not the model gin file again
        # (each included file starts with a "# <file name>" line)
        lines = (tmp_path / "ft" / CONFIG_FILE).read_text().splitlines()
        assert "# tiny_agent.gin" not in lines and lines.count("# config.gin") == 1


def test_reward_function_changes_the_training_rewards(data, source_run, tmp_path):
    root, _ = data
    items = {}
    for reward in (None, "BinaryReward"):
        extra = [] if reward is None else ["--reward_function", reward]
        experiment, _ = finetune_from_hf.prepare(_flags(tmp_path, root, "--finetune_from_run", str(source_run),
                                                        "--eval_gens", *extra, run_name=reward or "default"))
        dataset = experiment.dataset
        items[reward] = [dataset.item_to_rldata(*dataset.parsed_replay_dset[i]).rews.flatten().numpy()
                         for i in range(len(dataset.parsed_replay_dset))]
        assert RunInfo.load(tmp_path / (reward or "default")).reward_function == (reward or INFO.reward_function)
    shaped, binary = items[None], items["BinaryReward"]
    assert len(shaped) == len(binary) == 6
    for s, b in zip(shaped, binary):
        assert s.shape == b.shape
        assert set(np.unique(b[:-1])) <= {0.0} and abs(b[-1]) in (0.0, 100.0)  # +-100 at the end, else 0
    assert any(np.any(s[:-1] != 0) for s in shaped)  # the shaped reward pays during the battle
    assert not all(np.array_equal(s, b) for s, b in zip(shaped, binary))


def test_bad_sources_fail_before_anything_is_written(data, published, source_run, tmp_path):
    root, _ = data
    cases = [
        (["--finetune_from_model", "NoSuchModel"], "NoSuchModel"),
        (["--finetune_from_run", str(source_run), "--ckpt", "5"], r"no epoch 5 \(available epochs: \[0\]\)"),
        (["--finetune_from_run", str(source_run), "--train_gin_config", "no_such_training"], "no_such_training"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit, match=message):
            finetune_from_hf.main(_flags(tmp_path, root, "--eval_gens", *extra))
        assert not (tmp_path / "ft").exists()


def test_pretrained_vs_baselines_and_the_agent_flag_play_the_registry_model(data, published, tmp_path, capsys):
    _, url = data
    metrics = pretrained_vs_baselines(get_pretrained_model(MODEL), FMT, "builtin", total_battles=3,
                                      parallel_actors_per_baseline=0, baselines=["RandomBaseline"], server_url=url,
                                      device="cpu", show_progress=False)
    assert metrics[f"Battles in {FMT}_vs_RandomBaseline"] == 3
    assert 0.0 <= metrics[f"Average Win Rate in {FMT}_vs_RandomBaseline"] <= 1.0
    assert metrics[f"Average Valid Actions in {FMT}_vs_RandomBaseline"] == 1.0

    out = tmp_path / "eval.json"
    assert evaluate_main(["--agent", MODEL, "--gens", "1", "--formats", "ou", "--total_battles", "2",
                          "--checkpoints", "2", "0", "--opponents", "RandomBaseline", "--server_url", url,
                          "--device", "cpu", "--json_out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["agent"] == f"pretrained:{MODEL}" and payload["epochs"] == [2, 0]
    assert [(r["epoch"], r["format"], r["opponent"], r["battles"]) for r in payload["rows"]] == [
        (2, FMT, "RandomBaseline", 2), (0, FMT, "RandomBaseline", 2)]
    printed = capsys.readouterr().out
    assert f"{MODEL} epoch 2" in printed and f"{MODEL} epoch 0" in printed

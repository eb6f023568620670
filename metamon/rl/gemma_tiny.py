"""Random-init Gemma-3 text models + a local subword tokenizer, saved like a Hub checkpoint.

Tests, the CPU demo and the benchmarks need a Gemma directory that loads offline through the
same ``from_pretrained`` path as ``google/gemma-3-270m``. :func:`save_tiny_gemma` writes one::

    from metamon.rl.gemma_tiny import save_tiny_gemma
    path = save_tiny_gemma("models/tiny-gemma")            # ~0.2M params, fp32, ~1 s
    path = save_tiny_gemma("models/random-270m", "270m")    # the real 270M shapes, bf16, ~0.5 GB

    python -m metamon.rl.gemma_tiny OUT_DIR [--size tiny|270m] [--seed 0] [--hf_tokenizer DIR]

The directory holds ``config.json`` + ``model.safetensors`` (a ``Gemma3ForCausalLM`` whose
``AutoModel`` view is the ``Gemma3TextModel`` backbone) and the tokenizer files; the weights are
random, so the model knows nothing.

Tokenizer: a byte-pair-encoding model (``tokenizers`` BPE) trained on text made from the words
of a metamon vocabulary (each word alone, and random 8-word sentences), so most observation
words split into several pieces, like with Gemma's own tokenizer. Specials: ``<pad>`` 0,
``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3 (Gemma's pad/eos/bos ids); ``<bos>`` is prepended to
every encoded text. Spaces become ``▁`` and the text is split before each ``▁`` with no ``▁``
added at the start (Gemma's convention): ``"a b"`` -> pieces of ``"a"`` then pieces of ``"▁b"``.
``split_words=False`` keeps the text in one piece instead, so merges may cross spaces (used to
test the encoder's slower tokenizer path).

Sizes: ``"tiny"`` = vocab 2048, hidden 64, FFN 128, 2 layers (sliding, full), 2 query heads,
1 KV head, head_dim 32, sliding window 16 (head_dim, query_pre_attn_scalar, intermediate_size
and layer_types must be set: their defaults do not follow hidden_size); ``"270m"`` = the real
google/gemma-3-270m configuration (vocab 262144, hidden 640, 18 layers, ...).
"""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path
from typing import Optional, Sequence, Union

from metamon.rl import MetamonRLError
from metamon.tokenizer import DEFAULT_TOKENIZER, get_tokenizer

__all__ = ["SIZES", "save_tiny_gemma", "tiny_gemma_config", "train_subword_tokenizer", "main"]

SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>")  # ids 0, 1, 2, 3
PAD_ID, EOS_ID, BOS_ID = 0, 1, 2
TOKENIZER_VOCAB = 1000  # BPE size: small, so most metamon words take several pieces
N_SENTENCES = 4000  # random training sentences of SENTENCE_WORDS words
SENTENCE_WORDS = 8
SIZES = ("tiny", "270m")


def tiny_gemma_config(size: str = "tiny"):
    """The ``Gemma3TextConfig`` of ``size`` ("tiny" or "270m"; module docstring)."""
    from transformers import Gemma3TextConfig  # lazy: transformers is heavy, import the module without it

    common = dict(pad_token_id=PAD_ID, eos_token_id=EOS_ID, bos_token_id=BOS_ID)
    if size == "tiny":
        return Gemma3TextConfig(
            vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
            sliding_window=16, layer_types=["sliding_attention", "full_attention"],
            max_position_embeddings=1024, **common,
        )
    if size == "270m":
        layer_types = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(18)]
        return Gemma3TextConfig(
            vocab_size=262144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18,
            num_attention_heads=4, num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256,
            sliding_window=512, layer_types=layer_types, max_position_embeddings=32768,
            hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, tie_word_embeddings=True,
            **common,
        )
    raise MetamonRLError(f"save_tiny_gemma: size must be one of {SIZES}, got {size!r}")


def _training_text(words: Sequence[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = [f"{w} {w}" for w in words]  # every word at the start and after a space
    lines += [" ".join(rng.choices(words, k=SENTENCE_WORDS)) for _ in range(N_SENTENCES)]
    return lines


def train_subword_tokenizer(words: Sequence[str], seed: int = 0, split_words: bool = True,
                            vocab_size: int = TOKENIZER_VOCAB):
    """A ``PreTrainedTokenizerFast`` (BPE, specials and ``<bos>`` as in the module docstring)."""
    # lazy: tokenizers/transformers are heavy, import the module without them
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    if split_words:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    else:
        tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False)
    tok.train_from_iterator(_training_text(list(words), seed), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", BOS_ID)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        padding_side="right", truncation_side="right",
    )


def save_tiny_gemma(
    out_dir: Union[str, os.PathLike],
    size: str = "tiny",
    seed: int = 0,
    tokenizer: Optional[str] = None,
    split_words: bool = True,
    hf_tokenizer_dir: Optional[Union[str, os.PathLike]] = None,
) -> Path:
    """Write a random ``size`` Gemma-3 model and a subword tokenizer trained on the words of the
    metamon vocabulary ``tokenizer`` (default: the shipped default) into ``out_dir``; returns it.

    ``hf_tokenizer_dir``: copy the Hugging Face tokenizer saved there instead of training one
    (e.g. the real 262,144-piece Gemma tokenizer of a ``python -m metamon.rl.gemma_gguf``
    conversion, which gives a ``"270m"`` model with random weights and real token counts).

    Same ``seed``, same files. ``"tiny"`` is saved in fp32, ``"270m"`` in bf16 (like the Hub).
    """
    # lazy: torch/transformers are heavy, import the module without them
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM

    config = tiny_gemma_config(size)
    if hf_tokenizer_dir is not None:
        hf_tokenizer = AutoTokenizer.from_pretrained(str(hf_tokenizer_dir))
    else:
        words = get_tokenizer(tokenizer or DEFAULT_TOKENIZER).all_words
        hf_tokenizer = train_subword_tokenizer(words, seed=seed, split_words=split_words)
    if len(hf_tokenizer) > config.vocab_size:
        raise MetamonRLError(f"tokenizer has {len(hf_tokenizer)} ids, more than the model's {config.vocab_size}")
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config)
    if size == "270m":
        model = model.to(torch.bfloat16)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    hf_tokenizer.save_pretrained(out)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m metamon.rl.gemma_tiny", description=__doc__.split("\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--size", choices=SIZES, default="tiny")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokenizer", default=None, help="metamon vocabulary whose words train the BPE")
    p.add_argument("--hf_tokenizer", default=None,
                   help="copy this saved Hugging Face tokenizer (e.g. a gemma_gguf conversion) instead of a BPE")
    args = p.parse_args(argv)
    print(save_tiny_gemma(args.out_dir, args.size, args.seed, args.tokenizer, hf_tokenizer_dir=args.hf_tokenizer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

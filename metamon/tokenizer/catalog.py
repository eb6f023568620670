"""Tokenizers by name: our shipped vocabularies, metamon's published ones, or a file path.

``get_tokenizer(name)`` returns a new frozen :class:`~metamon.tokenizer.PokemonTokenizer`:

* a shipped vocabulary, ``metamon/tokenizer/vocab/<name>.json`` (e.g. ``metamon-gemma-v1``);
* one of metamon's names (``allreplays-v1`` / ``-v2`` / ``-v3``,
  ``DefaultObservationSpace-v0`` / ``-v1``), read from ``$METAMON_CACHE_DIR/tokenizers/`` or
  downloaded there on first use and verified (:mod:`metamon.tokenizer.metamon_vocabs`);
* a path to a vocabulary ``.json`` file (anything ending in ``.json`` or containing a path
  separator).

The tokenizer's ``name`` is the key it was loaded by (the absolute path for a file), so a
checkpoint that records it loads the same vocabulary again. :func:`available_tokenizers` lists
the shipped and metamon names.
"""

from __future__ import annotations

import os
from pathlib import Path

from metamon.errors import UnknownNameError
from metamon.tokenizer.metamon_vocabs import METAMON_VOCABULARIES, load_metamon_vocabulary
from metamon.tokenizer.tokenizer import DEFAULT_TOKENIZER, VOCAB_DIR, PokemonTokenizer

__all__ = ["available_tokenizers", "get_tokenizer"]

_META_SUFFIX = ".meta.json"


def _shipped_tokenizers() -> list[str]:
    return [p.name[: -len(".json")] for p in VOCAB_DIR.glob("*.json") if not p.name.endswith(_META_SUFFIX)]


def available_tokenizers() -> list[str]:
    """Names :func:`get_tokenizer` accepts: the shipped vocabularies and metamon's, sorted.

    metamon's are listed whether or not their files are cached yet (they download on first use).
    """
    return sorted({*_shipped_tokenizers(), *METAMON_VOCABULARIES})


def get_tokenizer(name: str = DEFAULT_TOKENIZER) -> PokemonTokenizer:
    """A new frozen tokenizer holding the vocabulary ``name`` (see the module docstring).

    Raises :class:`~metamon.errors.UnknownNameError` for a name that is neither available nor a
    path, :class:`~metamon.tokenizer.VocabularyError` for a missing, malformed or (for metamon's
    files) mismatching file, and its subclass
    :class:`~metamon.tokenizer.VocabularyUnavailableError` when one of metamon's files is not
    cached and cannot be downloaded.
    """
    name = os.fspath(name)
    tokenizer = PokemonTokenizer()
    if name in _shipped_tokenizers():
        tokenizer.load_tokens_from_disk(VOCAB_DIR / f"{name}.json")
        tokenizer.name = name
    elif name in METAMON_VOCABULARIES:
        tokenizer.load_tokens(load_metamon_vocabulary(name), check_words=False)
        tokenizer.name = name
    elif name.endswith(".json") or os.sep in name:
        path = Path(name).expanduser().resolve()
        tokenizer.load_tokens_from_disk(path)
        tokenizer.name = str(path)
    else:
        raise UnknownNameError("tokenizer", name, available_tokenizers())
    return tokenizer

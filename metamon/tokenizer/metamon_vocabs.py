"""metamon's published vocabularies, found in the cache or downloaded on first use.

metamon ships five vocabulary files inside its package. We do not redistribute them: a name
below is resolved to ``$METAMON_CACHE_DIR/tokenizers/<file>``, and a missing file is downloaded
once from metamon's repository at a pinned commit::

    get_tokenizer name            file                              V     sha256 prefix
    allreplays-v1                 allreplaysv1.json                 1367  26076016
    allreplays-v2                 allreplaysv2.json                 1402  3e294f86
    allreplays-v3                 allreplaysv3.json                 1407  f692c1d5
    DefaultObservationSpace-v0    DefaultObservationSpace-v0.json   1454  eab483a2
    DefaultObservationSpace-v1    DefaultObservationSpace-v1.json   2541  d33f1d77

    URL: https://raw.githubusercontent.com/UT-Austin-RPL/metamon/<commit>/metamon/tokenizer/<file>
    commit: 6e60d668b0c2db4997c987a74ca7429eb5a88217 (metamon 1.4.0; the files are the same in
    every version)

Every load, cached or downloaded, is verified before use: the file's sha256 must start with the
prefix above, and it must be one flat JSON object word -> id with exactly ``V`` entries and the
ids ``0..V-1``. A mismatch raises :class:`~metamon.tokenizer.VocabularyError` naming the file.
A download is verified in memory first and then written atomically, so the cache never holds a
partial or wrong file. Words are taken as they are (the checksum vouches for them), without the
one-word check our own vocabularies get.

Offline (``HF_HUB_OFFLINE`` set, or no network) with no cached file, or with
``METAMON_CACHE_DIR`` unset, :class:`VocabularyUnavailableError` names the tokenizer, the path
to place the file at and the URL to fetch it from. The download is a plain HTTPS GET of a public
file: no credentials are sent or logged.

Tests (and mirrors) replace :data:`METAMON_VOCABULARIES` entries and :func:`fetch` with
``monkeypatch``; the verification itself is not optional.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from metamon.files import atomic_write
from metamon.tokenizer.tokenizer import VocabularyError, validate_vocabulary

__all__ = [
    "METAMON_VOCAB_COMMIT",
    "METAMON_VOCABULARIES",
    "MetamonVocabulary",
    "VocabularyUnavailableError",
    "fetch",
    "load_metamon_vocabulary",
    "metamon_vocabulary_path",
]

METAMON_VOCAB_COMMIT = "6e60d668b0c2db4997c987a74ca7429eb5a88217"
_URL = "https://raw.githubusercontent.com/UT-Austin-RPL/metamon/{commit}/metamon/tokenizer/{file}"
_CACHE_SUBDIR = "tokenizers"
_DOWNLOAD_TIMEOUT_S = 60.0
_MAX_BYTES = 16 * 1024 * 1024  # the real files are 30-60 kB
_TRUE = ("1", "true", "yes", "on")

logger = logging.getLogger(__name__)


class VocabularyUnavailableError(VocabularyError):
    """A metamon vocabulary is not cached and cannot be downloaded (offline, no cache folder)."""


@dataclass(frozen=True)
class MetamonVocabulary:
    """One of metamon's vocabulary files: its ``get_tokenizer`` name, file name, size and checksum."""

    name: str
    file: str
    size: int
    sha256_prefix: str

    @property
    def url(self) -> str:
        return _URL.format(commit=METAMON_VOCAB_COMMIT, file=self.file)


METAMON_VOCABULARIES: dict[str, MetamonVocabulary] = {
    v.name: v
    for v in (
        MetamonVocabulary("allreplays-v1", "allreplaysv1.json", 1367, "26076016"),
        MetamonVocabulary("allreplays-v2", "allreplaysv2.json", 1402, "3e294f86"),
        MetamonVocabulary("allreplays-v3", "allreplaysv3.json", 1407, "f692c1d5"),
        MetamonVocabulary("DefaultObservationSpace-v0", "DefaultObservationSpace-v0.json", 1454, "eab483a2"),
        MetamonVocabulary("DefaultObservationSpace-v1", "DefaultObservationSpace-v1.json", 2541, "d33f1d77"),
    )
}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def _cache_root() -> Path | None:
    """``$METAMON_CACHE_DIR`` (user-expanded) or ``None``; the rule of ``metamon.hub.cache_dir``
    (the tokenizer floor may not import the hub module)."""
    value = os.environ.get("METAMON_CACHE_DIR")
    return Path(value).expanduser() if value else None


def metamon_vocabulary_path(name: str) -> Path | None:
    """Where the vocabulary ``name`` is cached: ``$METAMON_CACHE_DIR/tokenizers/<file>``
    (``None`` when ``METAMON_CACHE_DIR`` is unset). The file may not exist yet."""
    root = _cache_root()
    return None if root is None else root / _CACHE_SUBDIR / METAMON_VOCABULARIES[name].file


def fetch(url: str) -> bytes:
    """The body of ``url`` (an HTTPS GET without credentials; at most 16 MiB)."""
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        body = response.read(_MAX_BYTES + 1)
    if len(body) > _MAX_BYTES:
        raise VocabularyError(f"{url} is larger than {_MAX_BYTES} bytes; not a vocabulary file")
    return body


def _verify(vocab: MetamonVocabulary, data: bytes, source: str) -> dict[str, int]:
    """Check ``data`` against ``vocab``'s checksum and shape; return ``{word: id}`` in id order."""
    digest = hashlib.sha256(data).hexdigest()
    if not digest.startswith(vocab.sha256_prefix):
        raise VocabularyError(
            f"{source} is not metamon's {vocab.file}: its sha256 starts with {digest[:8]}, expected "
            f"{vocab.sha256_prefix}"
        )
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise VocabularyError(f"{source} ({vocab.file}) is not valid JSON: {err}") from None
    ids = validate_vocabulary(raw, f"{vocab.file} ({source})", check_words=False)
    if len(ids) != vocab.size:
        raise VocabularyError(f"{source} ({vocab.file}) has {len(ids)} words, expected {vocab.size}")
    return ids


def _unavailable(vocab: MetamonVocabulary, path: Path | None, why: str) -> VocabularyUnavailableError:
    where = (
        f"place it at {path}" if path is not None
        else f"set METAMON_CACHE_DIR and place it at $METAMON_CACHE_DIR/{_CACHE_SUBDIR}/{vocab.file}"
    )
    return VocabularyUnavailableError(
        f"Tokenizer {vocab.name!r} needs metamon's vocabulary file {vocab.file}, which {why}. "
        f"Download {vocab.url} on a machine with network access, then {where} (or pass the "
        "file's path to get_tokenizer)."
    )


def load_metamon_vocabulary(name: str) -> dict[str, int]:
    """The verified ``{word: id}`` of metamon's vocabulary ``name``, from the cache or the web.

    Raises ``KeyError`` for a name not in :data:`METAMON_VOCABULARIES`,
    :class:`VocabularyUnavailableError` when the file is not cached and cannot be fetched, and
    :class:`~metamon.tokenizer.VocabularyError` when a cached or downloaded file fails the checks.
    """
    vocab = METAMON_VOCABULARIES[name]
    path = metamon_vocabulary_path(name)
    if path is not None and path.is_file():
        return _verify(vocab, path.read_bytes(), f"the cached file {path} (delete it to download it again)")
    if path is None:
        raise _unavailable(vocab, None, "is not cached because METAMON_CACHE_DIR is not set")
    if _offline():
        raise _unavailable(vocab, path, "is not cached, and HF_HUB_OFFLINE forbids downloading it")
    logger.info("Downloading metamon vocabulary %s from %s to %s", vocab.file, vocab.url, path)
    try:
        data = fetch(vocab.url)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise _unavailable(vocab, path, f"is not cached and could not be downloaded ({reason})") from None
    ids = _verify(vocab, data, f"the file downloaded from {vocab.url}")
    atomic_write(path, data)
    return ids

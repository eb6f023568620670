"""metamon's tokenizer names: cache lookup, verified download, offline errors (no network).

The vocabulary files here are built by the test in metamon's format (one flat JSON object
word -> id, ids 0..V-1, V equal to the real file's size); only the expected sha256 prefix is
replaced (monkeypatched table entry), because the test files are not metamon's.
"""

import dataclasses
import hashlib
import json
import urllib.error

import numpy as np
import pytest

from metamon.errors import UnknownNameError
from metamon.tokenizer import (
    DEFAULT_TOKENIZER,
    METAMON_VOCABULARIES,
    UNKNOWN_TOKEN,
    VocabularyError,
    VocabularyUnavailableError,
    available_tokenizers,
    get_tokenizer,
    metamon_vocabs,
)

COMMIT = "6e60d668b0c2db4997c987a74ca7429eb5a88217"
METAMON_NAMES = ["allreplays-v1", "allreplays-v2", "allreplays-v3", "DefaultObservationSpace-v0",
                 "DefaultObservationSpace-v1"]
SPECIAL = ["<anychoice>", "<blank>", "<conditions>", "<forcedswitch>", "<gen1ou>", "<move>",
           "<moveset>", "<opp_prev>", "<opponent>", "<player>", "<player_prev>", "<switch>"]


def vocabulary_bytes(size: int, extra: dict | None = None) -> bytes:
    """A vocabulary file in metamon's format with ``size`` words (bracketed words first)."""
    words = SPECIAL + ["alakazam", "bodyslam", "notype", "psychic", "tauros"]
    words += [f"word{i:05d}" for i in range(size - len(words))]
    ids = {word: i for i, word in enumerate(words)}
    ids.update(extra or {})
    return json.dumps(ids).encode()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """An empty ``$METAMON_CACHE_DIR``; network fetches fail the test unless a test replaces them."""
    monkeypatch.setenv("METAMON_CACHE_DIR", str(tmp_path))

    def no_network(url):
        raise AssertionError(f"unexpected download of {url}")

    monkeypatch.setattr(metamon_vocabs, "fetch", no_network)
    return tmp_path


def accept(monkeypatch, name: str, data: bytes) -> None:
    """Make ``data`` the file the table expects for ``name`` (its sha256 prefix; size unchanged)."""
    entry = METAMON_VOCABULARIES[name]
    fake = dataclasses.replace(entry, sha256_prefix=hashlib.sha256(data).hexdigest()[:8])
    monkeypatch.setitem(metamon_vocabs.METAMON_VOCABULARIES, name, fake)


def place(cache, name: str, data: bytes):
    path = cache / "tokenizers" / METAMON_VOCABULARIES[name].file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- the table ---------------------------------------------------------------------------------


def test_table_matches_metamons_files():
    table = {n: (v.file, v.size, v.sha256_prefix) for n, v in METAMON_VOCABULARIES.items()}
    assert table == {
        "allreplays-v1": ("allreplaysv1.json", 1367, "26076016"),
        "allreplays-v2": ("allreplaysv2.json", 1402, "3e294f86"),
        "allreplays-v3": ("allreplaysv3.json", 1407, "f692c1d5"),
        "DefaultObservationSpace-v0": ("DefaultObservationSpace-v0.json", 1454, "eab483a2"),
        "DefaultObservationSpace-v1": ("DefaultObservationSpace-v1.json", 2541, "d33f1d77"),
    }
    assert METAMON_VOCABULARIES["allreplays-v3"].url == (
        f"https://raw.githubusercontent.com/UT-Austin-RPL/metamon/{COMMIT}/metamon/tokenizer/"
        "allreplaysv3.json")


def test_available_tokenizers_lists_shipped_and_metamon_names():
    names = available_tokenizers()
    assert names == sorted(names)
    assert set(METAMON_NAMES) | {DEFAULT_TOKENIZER} <= set(names)


# --- from the cache ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", METAMON_NAMES)
def test_cached_file_loads_under_metamons_name(name, cache, monkeypatch):
    size = METAMON_VOCABULARIES[name].size
    data = vocabulary_bytes(size)
    accept(monkeypatch, name, data)
    place(cache, name, data)
    tok = get_tokenizer(name)
    assert (tok.name, len(tok), tok.frozen) == (name, size, True)
    # metamon's semantics: split on single spaces, exact lookup, misses -1, int32
    ids = tok.tokenize("<gen1ou> alakazam Alakazam  tauros")
    assert ids.dtype == np.int32
    assert ids.tolist() == [4, 12, UNKNOWN_TOKEN, UNKNOWN_TOKEN, 16]


def test_cached_file_with_the_wrong_checksum_names_the_file(cache):
    path = place(cache, "allreplays-v3", vocabulary_bytes(1407))
    with pytest.raises(VocabularyError, match="allreplaysv3.json") as err:
        get_tokenizer("allreplays-v3")
    assert str(path) in str(err.value) and "f692c1d5" in str(err.value)
    assert "delete it" in str(err.value)


def test_size_and_contiguous_ids_are_checked_too(cache, monkeypatch):
    short = vocabulary_bytes(1400)
    accept(monkeypatch, "allreplays-v3", short)
    place(cache, "allreplays-v3", short)
    with pytest.raises(VocabularyError, match="allreplaysv3.json.* has 1400 words, expected 1407"):
        get_tokenizer("allreplays-v3")
    gap = vocabulary_bytes(1406, extra={"lastword": 2000})
    accept(monkeypatch, "allreplays-v3", gap)
    place(cache, "allreplays-v3", gap)
    with pytest.raises(VocabularyError, match="allreplaysv3.json.*missing ids \\[1406\\]"):
        get_tokenizer("allreplays-v3")


def test_metamon_words_are_taken_as_they_are(cache, monkeypatch):
    # checksum-verified files skip the one-word check our own vocabularies get
    ids = {word: i for word, i in json.loads(vocabulary_bytes(1367)).items() if i != 17}
    data = json.dumps({**ids, "two words": 17}).encode()
    accept(monkeypatch, "allreplays-v1", data)
    place(cache, "allreplays-v1", data)
    tok = get_tokenizer("allreplays-v1")
    assert tok["two words"] == 17 and len(tok) == 1367


# --- downloading -------------------------------------------------------------------------------


def test_download_on_first_use_then_the_cache(cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    data = vocabulary_bytes(2541)
    accept(monkeypatch, "DefaultObservationSpace-v1", data)
    urls = []

    def fake_fetch(url):
        urls.append(url)
        return data

    monkeypatch.setattr(metamon_vocabs, "fetch", fake_fetch)
    tok = get_tokenizer("DefaultObservationSpace-v1")
    assert len(tok) == 2541 and tok.name == "DefaultObservationSpace-v1"
    assert urls == [METAMON_VOCABULARIES["DefaultObservationSpace-v1"].url]
    cached = cache / "tokenizers" / "DefaultObservationSpace-v1.json"
    assert cached.read_bytes() == data
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temporary left
    get_tokenizer("DefaultObservationSpace-v1")
    assert len(urls) == 1  # the second load reads the cache


def test_a_wrong_download_is_refused_and_not_cached(cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(metamon_vocabs, "fetch", lambda url: vocabulary_bytes(1454))
    with pytest.raises(VocabularyError, match="DefaultObservationSpace-v0.json") as err:
        get_tokenizer("DefaultObservationSpace-v0")
    assert METAMON_VOCABULARIES["DefaultObservationSpace-v0"].url in str(err.value)
    assert not (cache / "tokenizers" / "DefaultObservationSpace-v0.json").exists()


def test_network_failure_is_a_clear_error(cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def unreachable(url):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(metamon_vocabs, "fetch", unreachable)
    with pytest.raises(VocabularyUnavailableError) as err:
        get_tokenizer("allreplays-v2")
    message = str(err.value)
    assert "'allreplays-v2'" in message and "Name or service not known" in message
    assert METAMON_VOCABULARIES["allreplays-v2"].url in message
    assert str(cache / "tokenizers" / "allreplaysv2.json") in message


def test_offline_without_a_cached_file(cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(VocabularyUnavailableError) as err:  # fetch would fail the test
        get_tokenizer("allreplays-v3")
    message = str(err.value)
    assert "Tokenizer 'allreplays-v3'" in message and "HF_HUB_OFFLINE" in message
    assert str(cache / "tokenizers" / "allreplaysv3.json") in message
    assert METAMON_VOCABULARIES["allreplays-v3"].url in message
    assert isinstance(err.value, VocabularyError)


def test_no_cache_dir(monkeypatch):
    monkeypatch.delenv("METAMON_CACHE_DIR", raising=False)
    with pytest.raises(VocabularyUnavailableError, match="METAMON_CACHE_DIR") as err:
        get_tokenizer("DefaultObservationSpace-v1")
    assert "$METAMON_CACHE_DIR/tokenizers/DefaultObservationSpace-v1.json" in str(err.value)
    assert METAMON_VOCABULARIES["DefaultObservationSpace-v1"].url in str(err.value)


def test_fetch_reads_a_url(tmp_path):
    path = tmp_path / "v.json"
    path.write_bytes(b'{"a": 0}')
    assert metamon_vocabs.fetch(path.as_uri()) == b'{"a": 0}'


# --- by path, and unknown names --------------------------------------------------------------


def test_a_downloaded_copy_loads_by_path(tmp_path):
    path = tmp_path / "allreplaysv3.json"
    path.write_bytes(vocabulary_bytes(1407))
    tok = get_tokenizer(str(path))
    assert tok.name == str(path.resolve()) and len(tok) == 1407


def test_unknown_name_lists_metamon_names_too():
    with pytest.raises(UnknownNameError) as err:
        get_tokenizer("allreplays-v4")
    assert set(METAMON_NAMES) <= set(err.value.options)

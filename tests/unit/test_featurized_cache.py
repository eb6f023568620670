"""FeaturizedCache: cached items equal featurized ones; stale, corrupt and unwritable entries."""

import json
import logging
import os
import random
import time

import lz4.frame
import numpy as np
import pytest
from test_parsed_replay_dset import assert_items_equal, battle, long_battle, name, write

import metamon.data.featurized_cache as fc
from metamon.data.featurized_cache import FeaturizedCache, featurization_fingerprint
from metamon.data.parsed_replay_dset import ParsedReplayDataset
from metamon.errors import MetamonError
from metamon.interface import (
    BinaryReward,
    DefaultActionSpace,
    DefaultShapedReward,
    ExpandedObservationSpace,
    TeamPreviewObservationSpace,
    TokenizedObservationSpace,
)
from metamon.tokenizer import get_tokenizer

FMT = "gen9ou"


@pytest.fixture(scope="module")
def tokenizer():
    return get_tokenizer("metamon-gemma-v1")


def spaces(tokenizer, reward=None, base=TeamPreviewObservationSpace):
    return TokenizedObservationSpace(base(), tokenizer), DefaultActionSpace(), reward or DefaultShapedReward()


def dataset(root, tokenizer, cache=None, **kwargs):
    return ParsedReplayDataset(*spaces(tokenizer), dset_root=root, formats=[FMT], featurized_cache=cache, **kwargs)


@pytest.fixture
def root(tmp_path):
    data = tmp_path / "data"
    write(data, name(0), *battle())
    write(data, name(1), *long_battle(12))
    write(data, name(2), *long_battle(5))
    return data


def items(dset, seed=0):
    random.seed(seed)  # windows are drawn with Python's random
    return [dset[i] for i in range(len(dset))]


@pytest.mark.parametrize("max_seq_len", [None, 3])
def test_cached_items_equal_featurized_items(root, tmp_path, tokenizer, max_seq_len):
    plain = dataset(root, tokenizer, max_seq_len=max_seq_len)
    cached = dataset(root, tokenizer, cache=tmp_path / "cache", max_seq_len=max_seq_len)
    expected = items(plain)
    for _ in range(3):  # round 0 fills the cache, rounds 1-2 read it
        got = items(cached)
        for a, b in zip(got, expected):
            assert_items_equal(a, b)
            assert all(isinstance(c, int) for c in a[1]["chosen"])
            assert all(isinstance(m, bool) for m in a[1]["missing"])
            assert all(isinstance(s, set) for s in a[1]["legal"])
    assert cached.featurized_cache.stats == {"misses": 3, "writes": 3, "hits": 6}
    # another dataset (another process, say) with the same spaces finds the same entries
    again = dataset(root, tokenizer, cache=tmp_path / "cache", max_seq_len=max_seq_len)
    for a, b in zip(items(again), expected):
        assert_items_equal(a, b)
    assert again.featurized_cache.stats == {"hits": 3}


def test_cached_arrays_are_writable_copies_of_the_file(root, tmp_path, tokenizer):
    cached = dataset(root, tokenizer, cache=tmp_path / "cache")
    cached[0]
    obs, _, rewards, _ = cached[0]
    obs["numbers"][0][0] = 123.0  # a consumer may normalise in place
    rewards[0] = 7.0
    fresh_obs, _, fresh_rewards, _ = cached[0]
    assert fresh_obs["numbers"][0][0] != 123.0 and fresh_rewards[0] != 7.0


def test_changed_source_file_is_featurized_again(root, tmp_path, tokenizer):
    cached = dataset(root, tokenizer, cache=tmp_path / "cache")
    path = cached.filenames[1]
    cached[1]
    write(root, os.path.basename(path), *long_battle(7))  # same name, another battle
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert_items_equal(cached[1], dataset(root, tokenizer)[1])
    assert len(cached[1][2]) == 6
    assert cached.featurized_cache.stats["stale"] == 1


def test_fingerprint_names_the_featurization(tokenizer):
    base = featurization_fingerprint(*spaces(tokenizer))
    assert base == featurization_fingerprint(*spaces(tokenizer))
    tokenizer.tokenize("someunknownwordxyz")  # running tallies are not settings
    assert base == featurization_fingerprint(*spaces(tokenizer))
    assert base != featurization_fingerprint(*spaces(tokenizer, reward=BinaryReward()))
    assert base != featurization_fingerprint(*spaces(tokenizer, base=ExpandedObservationSpace))


def test_fingerprint_follows_settings_and_code(tokenizer, monkeypatch):
    obs, act, rew = spaces(tokenizer)
    base = featurization_fingerprint(obs, act, rew)
    obs.base_obs_space.some_setting = 3  # any attribute value
    assert featurization_fingerprint(obs, act, rew) != base
    del obs.base_obs_space.some_setting
    assert featurization_fingerprint(obs, act, rew) == base
    monkeypatch.setattr(fc, "_module_digests", lambda: [["metamon.interface/x.py", "changed"]])
    assert featurization_fingerprint(obs, act, rew) != base


def test_tokenizer_vocabulary_is_part_of_the_fingerprint(tokenizer):
    import copy

    other = copy.deepcopy(tokenizer)
    other.unfreeze()
    other.tokenize("brandnewword")
    other.freeze()
    assert featurization_fingerprint(*spaces(other)) != featurization_fingerprint(*spaces(tokenizer))


def test_unfrozen_tokenizer_is_refused(root, tmp_path, tokenizer):
    import copy

    unfrozen = copy.deepcopy(tokenizer)
    unfrozen.unfreeze()
    with pytest.raises(MetamonError, match="frozen tokenizer"):
        ParsedReplayDataset(*spaces(unfrozen), dset_root=root, formats=[FMT], featurized_cache=tmp_path / "c")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "object dtype", "outside the file", "too large"])
def test_unreadable_entry_is_logged_and_rebuilt(root, tmp_path, tokenizer, caplog, damage):
    cached = dataset(root, tokenizer, cache=tmp_path / "cache")
    cached[0]
    entry = cached.featurized_cache.entry_path(cached.filenames[0])
    body = entry.read_bytes()
    if damage == "garbage":
        body = b"not a cache file at all"
    elif damage == "truncated":
        body = body[: len(body) - 40]
    else:
        payload = lz4.frame.decompress(body[8:])
        n_head = int.from_bytes(payload[:8], "little")
        header = json.loads(payload[8 : 8 + n_head])
        row = header["arrays"][0]
        if damage == "object dtype":
            row[1] = "|O"
        elif damage == "outside the file":
            row[3] = 10**9
        else:  # a frame that would expand past the cap
            body = body[:8] + lz4.frame.compress(b"\0" * (fc.MAX_TRAJECTORY_BYTES + 1))
        if damage != "too large":
            head = json.dumps(header).encode()
            body = body[:8] + lz4.frame.compress(len(head).to_bytes(8, "little") + head + payload[8 + n_head :])
    entry.write_bytes(body)
    with caplog.at_level(logging.WARNING):
        assert_items_equal(cached[0], dataset(root, tokenizer)[0])
    assert cached.featurized_cache.stats["unreadable"] == 1
    assert "unreadable" in caplog.text and str(entry) in caplog.text
    assert cached[0] is not None and cached.featurized_cache.stats["hits"] == 1  # rebuilt


def test_failed_writes_turn_writing_off_once(root, tmp_path, tokenizer, caplog, monkeypatch):
    cached = dataset(root, tokenizer, cache=tmp_path / "cache")

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fc.os, "replace", full_disk)
    with caplog.at_level(logging.WARNING):
        for i in range(3):
            assert_items_equal(cached[i], dataset(root, tokenizer)[i])
    assert caplog.text.count("Cannot write to the featurized cache") == 1
    assert cached.featurized_cache.stats["writes"] == 0
    assert list((cached.featurized_cache.folder / "tmp").iterdir()) == []  # no temporary left


def test_cache_root_that_is_a_file_is_refused(root, tmp_path, tokenizer):
    (tmp_path / "file").write_text("x")
    with pytest.raises(MetamonError, match="is a file"):
        dataset(root, tokenizer, cache=tmp_path / "file")


def test_stale_temporaries_are_removed_on_open(tmp_path):
    tmp = tmp_path / "c" / ("f" * 32) / "tmp"
    tmp.mkdir(parents=True)
    old, new = tmp / "old.mfc", tmp / "new.mfc"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    FeaturizedCache(tmp_path / "c", "f" * 64)
    assert not old.exists() and new.exists()


def test_bad_files_are_never_cached(tmp_path, tokenizer):
    data = tmp_path / "data"
    write(data, name(0), *battle())
    bad = data / FMT / name(1)
    bad.write_bytes(b"not lz4")
    cached = dataset(data, tokenizer, cache=tmp_path / "cache")
    assert len(cached) == 2
    cached[1]  # the bad file: falls through to the next good one
    assert cached.skipped == {"corrupt lz4": 1}
    assert not cached.featurized_cache.entry_path(str(bad)).exists()


def test_encode_refuses_object_arrays():
    with pytest.raises(MetamonError, match="numeric arrays only"):
        fc._encode({}, {"x": np.array([object()])})

"""A disk cache of featurized battles: what a trajectory file becomes under given spaces.

Turning a trajectory file into a dataset item costs about 4x decoding it (decoding, building
``UniversalState`` objects, the observation pass, tokenizing, actions, legality, rewards; see
``benchmarks/data_throughput.py``). Offline training reads each file many times, always with the
same observation space, action space and reward function, so :class:`FeaturizedCache` keeps the
result of the first pass: one ``.mfc`` file per (source file, featurization) holding the arrays

    obs.<key>        (T, ...)   every observation key, stacked, dtype as produced
    chosen           int64 (T-1)
    legal_values     int64 (sum of legal-set sizes)  the legal sets, concatenated in order
    legal_counts     int64 (T-1)                     the size of each legal set
    missing          bool  (T-1)
    rewards          float32 (T-1)

Layout: the 8 bytes ``MMFC0002``, then one lz4 frame holding the header length (8 bytes,
little-endian), a JSON header ``{"source": absolute path, "source_stat": [size, mtime_ns],
"arrays": [[name, dtype, shape, offset, nbytes], ...]}`` and the arrays' bytes (C order).
Reading is one ``read``, one lz4 decompression (which cuts the size on disk about 6x), one JSON
parse and ``numpy.frombuffer`` views: several times faster than ``.npz``, whose per-array header
parsing cost more than the arrays. Only boolean and numeric dtypes are accepted, and every
offset is checked against the file's size: a cache file is data and can never run code.

An entry is used only while its source file still has the recorded size and modification time
(one ``os.stat`` per read); otherwise the file is featurized again and the entry replaced.
Entries are written atomically through a temporary file in ``<root>/<fingerprint>/tmp/``
(temporary files older than an hour, left by a killed writer, are removed when a cache opens).
An entry that cannot be read is logged, counted in ``stats["unreadable"]`` and rebuilt; a write
that fails (disk full, read-only folder) is logged once and turns writing off for the process,
never stopping training.

**Which featurization** an entry belongs to is its folder, ``<root>/<fingerprint>/`` (the
fingerprint's first 32 hex digits):
:func:`featurization_fingerprint` hashes (SHA-256) the cache format version, the package version,
the source of the modules that featurize (``metamon.interface``, trajectory decoding, the dataset,
this file), and a description of each of the three objects: its class, the source file of every
class in its MRO, and its attribute values, recursively (so a ``TokenizedObservationSpace`` is
described with its base space and its tokenizer's vocabulary). ``collections.Counter``
attributes are left out: they are tallies kept while running (a tokenizer's unknown-word counts),
not settings. A tokenizer that is not frozen would change while featurizing and is refused.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import lz4.frame
import numpy as np
import orjson

from metamon import __version__
from metamon.data.trajectory_file import MAX_TRAJECTORY_BYTES, TrajectoryFileError, decompress_capped
from metamon.errors import MetamonError

__all__ = ["Featurized", "FeaturizedCache", "featurization_fingerprint", "CACHE_FORMAT_VERSION"]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

CACHE_FORMAT_VERSION = 1
#: modules whose code decides what a file featurizes to (besides the spaces' own classes)
_FEATURIZING_MODULES = (
    "metamon.data.trajectory_file",
    "metamon.data.parsed_replay_dset",
    "metamon.data.featurized_cache",
)
_FEATURIZING_PACKAGES = ("metamon.interface",)
_STALE_TMP_SECONDS = 3600.0
_MAGIC = b"MMFC0002"
_DTYPE_KINDS = frozenset("biuf")  # bool, signed and unsigned ints, floats
_DESCRIBE_DEPTH = 6


@dataclass
class Featurized:
    """One whole battle, featurized (shapes in the module docstring; ``legal`` holds sets)."""

    obs: dict[str, np.ndarray]
    chosen: np.ndarray
    legal: list[set]
    missing: np.ndarray
    rewards: np.ndarray

    def __len__(self) -> int:
        """T - 1, the number of transitions."""
        return len(self.chosen)


# ---- fingerprint -------------------------------------------------------------------------------
def _file_digest(path: Optional[str]) -> Optional[str]:
    if path is None or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _class_sources(cls: type) -> list:
    """(qualified name, source digest) of every class in ``cls``'s MRO defined in a file."""
    out = []
    for klass in cls.__mro__:
        try:
            source = inspect.getsourcefile(klass)
        except TypeError:  # builtins
            continue
        out.append([f"{klass.__module__}.{klass.__qualname__}", _file_digest(source)])
    return out


def _describe(value: Any, depth: int = 0, seen: Optional[set] = None) -> Any:
    """A JSON-able description of ``value`` (module docstring)."""
    seen = set() if seen is None else seen
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        return ["ndarray", str(value.dtype), list(value.shape), hashlib.sha256(value.tobytes()).hexdigest()]
    if isinstance(value, np.generic):
        return value.item()
    if depth >= _DESCRIBE_DEPTH:
        return ["deep", type(value).__qualname__]
    if isinstance(value, Counter):
        return ["Counter"]
    if isinstance(value, (list, tuple)):
        return [_describe(v, depth + 1, seen) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json.dumps(_describe(v, depth + 1, seen), sort_keys=True) for v in value)
    if isinstance(value, dict):
        return sorted(([str(k), _describe(v, depth + 1, seen)] for k, v in value.items()), key=lambda kv: kv[0])
    if inspect.isroutine(value) or isinstance(value, type):
        return ["callable", getattr(value, "__module__", None), getattr(value, "__qualname__", repr(value))]
    if id(value) in seen:
        return ["cycle", type(value).__qualname__]
    seen.add(id(value))
    attributes = getattr(value, "__dict__", None)
    if attributes is None:
        slots = [s for klass in type(value).__mro__ for s in getattr(klass, "__slots__", ())]
        attributes = {s: getattr(value, s) for s in slots if hasattr(value, s)}
    return {
        "class": _class_sources(type(value)),
        "attributes": _describe(attributes, depth + 1, seen),
    }


def _module_digests() -> list:
    digests = []
    for name in _FEATURIZING_MODULES:
        digests.append([name, _file_digest(inspect.getsourcefile(importlib.import_module(name)))])
    for name in _FEATURIZING_PACKAGES:
        folder = Path(inspect.getsourcefile(importlib.import_module(name))).parent
        for path in sorted(folder.glob("*.py")):
            digests.append([f"{name}/{path.name}", _file_digest(str(path))])
    return digests


def featurization_fingerprint(observation_space: Any, action_space: Any, reward_function: Any) -> str:
    """SHA-256 (hex) naming what a file featurizes to with these three objects (module docstring).

    Raises :class:`MetamonError` for an observation space whose tokenizer is not frozen."""
    tokenizer = getattr(observation_space, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "frozen", True) is False:
        raise MetamonError(
            "the featurized cache needs a frozen tokenizer (this one adds words while tokenizing, "
            "so the same file would not featurize the same way twice): call tokenizer.freeze()"
        )
    description = {
        "cache_format": CACHE_FORMAT_VERSION,
        "metamon": __version__,
        "code": _module_digests(),
        "observation_space": _describe(observation_space),
        "action_space": _describe(action_space),
        "reward_function": _describe(reward_function),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


# ---- the cache ---------------------------------------------------------------------------------
class FeaturizedCache:
    """Featurized battles of one featurization under ``root/<fingerprint>/`` (module docstring).

    ``stats`` (a ``Counter``, per process): ``hits``, ``misses``, ``stale`` (source changed),
    ``unreadable`` (entry could not be read), ``writes``.
    """

    def __init__(self, root: PathLike, fingerprint: str):
        root = Path(root).expanduser()
        if root.exists() and not root.is_dir():
            raise MetamonError(f"featurized cache folder {root} is a file, not a folder")
        self.folder = root / fingerprint[:32]
        self._tmp = self.folder / "tmp"
        self.stats: Counter = Counter()
        self._writable = True
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        try:
            entries = list(os.scandir(self._tmp))
        except OSError:  # no tmp folder yet
            return
        cutoff = time.time() - _STALE_TMP_SECONDS
        for entry in entries:
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:  # another process removed or is renaming it
                pass

    def entry_path(self, source: PathLike) -> Path:
        """Where the entry of ``source`` lives (named by the SHA-1 of its absolute path)."""
        key = hashlib.sha1(os.path.abspath(source).encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.mfc"

    @staticmethod
    def stat(source: PathLike) -> tuple[int, int]:
        """``(size, mtime_ns)`` of ``source``: take it *before* reading the file for :meth:`put`."""
        st = os.stat(source)
        return st.st_size, st.st_mtime_ns

    def get(self, source: PathLike) -> Optional[Featurized]:
        """The cached featurization of ``source``, or ``None`` (absent, stale or unreadable)."""
        path = self.entry_path(source)
        try:
            with open(path, "rb") as f:
                body = f.read()
        except FileNotFoundError:
            self.stats["misses"] += 1
            return None
        except OSError as e:
            return self._unreadable(path, e)
        try:
            header, arrays = _decode(body, str(path))
            if header["source"] != os.path.abspath(source) or tuple(header["source_stat"]) != self.stat(source):
                self.stats["stale"] += 1
                return None
        except FileNotFoundError:  # the source file itself vanished: let the caller read it
            self.stats["misses"] += 1
            return None
        except (OSError, ValueError, KeyError, TypeError, TrajectoryFileError) as e:
            return self._unreadable(path, e)
        values, legal, start = arrays["legal_values"].tolist(), [], 0
        for n in arrays["legal_counts"].tolist():
            legal.append(set(values[start : start + n]))
            start += n
        self.stats["hits"] += 1
        return Featurized(
            obs={name[4:]: value for name, value in arrays.items() if name.startswith("obs.")},
            chosen=arrays["chosen"], legal=legal, missing=arrays["missing"], rewards=arrays["rewards"],
        )

    def _unreadable(self, path: Path, error: Exception) -> None:
        self.stats["unreadable"] += 1
        logger.warning("Featurized cache entry %s is unreadable (%s: %s); rebuilding it",
                       path, type(error).__name__, error)
        return None

    def put(self, source: PathLike, featurized: Featurized, source_stat: tuple[int, int]) -> None:
        """Store ``featurized`` as the entry of ``source`` (whose stat was ``source_stat``)."""
        if not self._writable:
            return
        arrays = {f"obs.{key}": value for key, value in featurized.obs.items()}
        arrays.update(
            chosen=np.asarray(featurized.chosen, dtype=np.int64),
            legal_values=np.fromiter((a for s in featurized.legal for a in sorted(s)), dtype=np.int64),
            legal_counts=np.fromiter((len(s) for s in featurized.legal), dtype=np.int64),
            missing=np.asarray(featurized.missing, dtype=bool),
            rewards=np.asarray(featurized.rewards, dtype=np.float32),
        )
        body = _encode({"source": os.path.abspath(source), "source_stat": list(source_stat)}, arrays)
        target = self.entry_path(source)
        tmp = self._tmp / f"{uuid.uuid4().hex}.mfc"
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(body)
            os.replace(tmp, target)
        except OSError as e:
            self._writable = False
            logger.warning("Cannot write to the featurized cache %s (%s); featurizing without "
                           "storing from now on", self.folder, e)
            return
        finally:
            tmp.unlink(missing_ok=True)
        self.stats["writes"] += 1


# ---- the file format ---------------------------------------------------------------------------
def _encode(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """``header`` plus ``arrays`` in the layout of the module docstring."""
    table, chunks, offset = [], [], 0
    for name, value in arrays.items():
        data = np.ascontiguousarray(value)
        if data.dtype.kind not in _DTYPE_KINDS:
            raise MetamonError(f"the featurized cache stores numeric arrays only; {name!r} has dtype {data.dtype}")
        table.append([name, data.dtype.str, list(data.shape), offset, data.nbytes])
        chunks.append(data.tobytes())
        offset += data.nbytes
    head = orjson.dumps({**header, "arrays": table})
    return _MAGIC + lz4.frame.compress(b"".join([len(head).to_bytes(8, "little"), head, *chunks]))


def _decode(file_body: bytes, path: str = "<entry>") -> tuple[dict, dict[str, np.ndarray]]:
    """Header and arrays (writable, owning one buffer) of one entry; ``ValueError`` if malformed,
    ``TrajectoryFileError`` if its lz4 frame is corrupt or expands past ``MAX_TRAJECTORY_BYTES``."""
    if file_body[:8] != _MAGIC:
        raise ValueError("not a featurized-cache file (bad magic bytes)")
    body = memoryview(bytearray(decompress_capped(path, file_body[8:], MAX_TRAJECTORY_BYTES)))
    n_head = int.from_bytes(body[:8], "little")
    data_start = 8 + n_head
    if data_start > len(body):
        raise ValueError(f"header of {n_head} bytes runs past the end of the file")
    header = orjson.loads(body[8:data_start])
    data = body[data_start:]
    arrays = {}
    for name, dtype, shape, offset, nbytes in header["arrays"]:
        dtype = np.dtype(dtype)
        if dtype.kind not in _DTYPE_KINDS:
            raise ValueError(f"array {name!r} has dtype {dtype}, not a numeric one")
        if not (isinstance(offset, int) and isinstance(nbytes, int) and 0 <= offset and offset + nbytes <= len(data)):
            raise ValueError(f"array {name!r} lies outside the file")
        arrays[name] = np.frombuffer(data[offset : offset + nbytes], dtype=dtype).reshape(shape)
    return header, arrays

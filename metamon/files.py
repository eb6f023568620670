"""Atomic file writes: a reader (or a writer killed half-way) sees the old file or the new one,
never part of one.

Every writer in the package goes through these two functions. The new content is written to a
hidden temporary file next to the target (same folder, so the same file system), flushed to disk,
and renamed over the target with ``os.replace``, which POSIX and Windows make atomic. On any
error the temporary file is removed and the target is left as it was.

Usage::

    atomic_write("runs/x/run.json", json.dumps(info))         # str (UTF-8) or bytes

    with atomic_path("ckpts/policy.safetensors") as tmp:       # for writers that take a path
        save_file(tensors, str(tmp))
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

__all__ = ["atomic_write", "atomic_path"]

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without an error, the file
    written there replaces ``path`` atomically (the block must write it: it starts empty). Parent
    folders are created; if the block raises, ``path`` is untouched and the temporary file is
    removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: PathLike, data: Union[str, bytes]) -> Path:
    """Write ``data`` (``str`` is encoded as UTF-8) to ``path`` atomically and durably (fsync
    before the rename). Returns ``path`` as a :class:`~pathlib.Path`."""
    body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)

"""Trajectory files, datasets, downloads and battle generation.

``from metamon.data import ParsedReplayDataset`` (and ``MetamonDataset``) works as in metamon,
but lazily: the dataset module (observation spaces, tokenizers) is imported on first access of
the name, not with the package. Nothing here imports torch: a trajectory file is read, and a
``ParsedReplayDataset`` built and iterated, without it. Other submodules are imported on demand
(``metamon.data.trajectory_file``, ``metamon.data.download``, ``metamon.data.mixture``).
"""

from __future__ import annotations

# names of metamon.data.parsed_replay_dset resolved by __getattr__ on first access
_DATASET_EXPORTS = ("MetamonDataset", "ParsedReplayDataset")

__all__ = list(_DATASET_EXPORTS)


def __getattr__(name: str):
    """Import the submodule that defines ``name`` (PEP 562) and cache the name here."""
    if name not in _DATASET_EXPORTS:
        raise AttributeError(f"module 'metamon.data' has no attribute {name!r}")
    # Lazy on purpose: importing the package stays as cheap as importing trajectory_file.
    from metamon.data import parsed_replay_dset

    value = getattr(parsed_replay_dset, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_DATASET_EXPORTS))

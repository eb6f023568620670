"""Downloads from the Hugging Face Hub into metamon's cache folder ``$METAMON_CACHE_DIR``.

One module for everything metamon fetches from the Hub: the parsed-replay datasets and the
official team sets today, and model checkpoints through the same :func:`hub_download`.

Layers:

* :func:`cache_dir` - ``$METAMON_CACHE_DIR``, read at call time.
* :func:`hub_download` - one file of any Hub repository (dataset or model) at a named revision,
  with every Hub or network failure turned into a :class:`~metamon.errors.MetamonError` that
  names the repository, file and revision and says what to do.
* :func:`hub_snapshot` - the files of a Hub repository that match some patterns (a pushed run,
  :mod:`metamon.rl.run_sharing`), with the same errors.
* :func:`download_and_extract` / :func:`extract_local_archive` - a ``.tar.gz`` dataset archive
  fetched (or already on disk) and extracted safely and atomically into a fixed cache folder,
  recorded in ``$METAMON_CACHE_DIR/version_reference.json`` as
  ``{dataset_key: {name: "version v4, downloaded 2026-01-31T12:00:00+00:00"}}``.
* :func:`download_parsed_replays`, :func:`download_teams` - metamon's datasets.

Cache layout (only what this module writes)::

    $METAMON_CACHE_DIR/
        version_reference.json
        parsed-replays/<format>/...        download_parsed_replays(format)
        teams/<set_name>/<format>/...      download_teams(format, set_name)

The command line ``python -m metamon.data.download`` (see :mod:`metamon.data.download`) calls
these functions.

Extraction is safe and atomic: members with absolute paths, ``..`` components, links that
point outside the archive, or device files are refused (``tarfile``'s ``"data"`` filter plus
our own check that turns absolute paths into an error instead of silently relativising them),
and the archive is unpacked into a temporary folder next to the destination, which is then
renamed into place, so an interrupted download never leaves a half-filled folder behind.
An existing destination folder is reused unless ``force_download=True``.

Offline machines: when the Hub cannot be reached (``HF_HUB_OFFLINE=1``, no network), a
:class:`~metamon.errors.MetamonError` names the repository, file and revision; fetch that file
elsewhere and install it with :func:`extract_local_archive`.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Optional, Sequence, Union

import huggingface_hub

from metamon.errors import MetamonError, UnknownNameError
from metamon.files import atomic_write
from metamon.formats import check_format

__all__ = [
    "LATEST_PARSED_REPLAY_VERSION",
    "LATEST_TEAMS_VERSION",
    "PARSED_REPLAYS_REPO",
    "TEAMS_REPO",
    "TEAM_SETS",
    "cache_dir",
    "download_and_extract",
    "download_parsed_replays",
    "download_teams",
    "extract_local_archive",
    "get_active_dataset_versions",
    "hub_download",
    "hub_snapshot",
    "team_sets_for",
    "version_reference_path",
]

PathLike = Union[str, os.PathLike]

TEAMS_REPO = "jakegrigsby/metamon-teams"
LATEST_TEAMS_VERSION = "v4"
# metamon's official team sets, in the order metamon lists them.
TEAM_SETS = ("competitive", "paper_variety", "paper_replays", "modern_replays", "modern_replays_v2")

PARSED_REPLAYS_REPO = "jakegrigsby/metamon-parsed-replays"
LATEST_PARSED_REPLAY_VERSION = "v4"
# Parsed-replay archives of these revisions hold the files directly; later ones hold <format>/.
_UNWRAPPED_PARSED_REPLAY_VERSIONS = ("v0", "v1")

_VERSION_REFERENCE = "version_reference.json"


# ------------------------------------------------------------------------------------------
# Cache folder and version records
# ------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$METAMON_CACHE_DIR`` (read at call time); :class:`MetamonError` if it is unset."""
    value = os.environ.get("METAMON_CACHE_DIR")
    if not value:
        raise MetamonError(
            "The environment variable METAMON_CACHE_DIR is not set; set it to a folder with "
            "room for metamon's downloads, e.g. `export METAMON_CACHE_DIR=~/metamon_cache`."
        )
    return Path(value).expanduser()


def version_reference_path() -> Path:
    """``$METAMON_CACHE_DIR/version_reference.json``."""
    return cache_dir() / _VERSION_REFERENCE


def get_active_dataset_versions() -> dict:
    """``{dataset_key: {name: "version X, downloaded <timestamp>"}}`` of what is installed
    (empty when nothing has been downloaded yet)."""
    path = version_reference_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise MetamonError(f"Cannot read the dataset version record {path}: {e}; delete it to reset") from None


def _record_version(dataset_key: str, name: str, version: str) -> None:
    """Set ``version_reference.json[dataset_key][name]``, replacing the file atomically."""
    record = get_active_dataset_versions()
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record.setdefault(dataset_key, {})[name] = f"version {version}, downloaded {stamp}"
    atomic_write(version_reference_path(), json.dumps(record, indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------------
# Safe, atomic extraction
# ------------------------------------------------------------------------------------------
def _unsafe_reason(member: tarfile.TarInfo) -> Optional[str]:
    """Why ``member`` must not be extracted at all, or ``None``. (``tarfile``'s ``"data"``
    filter would silently strip a leading ``/``; we refuse such archives instead. Links that
    leave the folder and device files are refused by the filter itself.)"""
    if member.name.startswith(("/", "\\")):
        return "has an absolute path"
    if ".." in PurePosixPath(member.name.replace("\\", "/")).parts:
        return "has a '..' path component"
    return None


def _safe_extract(archive_path: Path, into: Path) -> None:
    try:
        with tarfile.open(archive_path, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                reason = _unsafe_reason(member)
                if reason:
                    raise MetamonError(
                        f"Refusing to extract {archive_path}: member {member.name!r} {reason}"
                    )
            tar.extractall(into, members=members, filter="data")
    except tarfile.FilterError as e:
        raise MetamonError(f"Refusing to extract {archive_path}: {e}") from None
    except (tarfile.TarError, EOFError) as e:
        raise MetamonError(f"{archive_path} is not a readable .tar.gz archive: {e}") from None


def _extracted_root(tmp: Path, dest_name: str, archive_root_in_dest: Optional[bool]) -> Path:
    """Which folder of the extracted tree becomes the destination.

    ``True``: the archive holds one top folder named like the destination (``gen1ou/...``);
    ``False``: the archive holds the destination's contents directly; ``None``: decide from
    the contents (one top-level folder named ``dest_name`` and nothing else means ``True``).
    """
    entries = list(tmp.iterdir())
    wrapped = len(entries) == 1 and entries[0].is_dir() and entries[0].name == dest_name
    if archive_root_in_dest is None:
        archive_root_in_dest = wrapped
    if archive_root_in_dest and not wrapped:
        raise MetamonError(
            f"The archive was expected to hold a single top-level folder {dest_name!r}, "
            f"but holds {sorted(e.name for e in entries)}"
        )
    return tmp / dest_name if archive_root_in_dest else tmp


def _extract_into_place(archive_path: Path, dest_dir: Path, archive_root_in_dest: Optional[bool]) -> None:
    """Extract to a temporary sibling of ``dest_dir``, then rename it into place (replacing
    an existing ``dest_dir`` only once the new contents are complete)."""
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extract-", dir=dest_dir.parent))
    old = dest_dir.parent / f".{dest_dir.name}.old-{tmp.name.rsplit('-', 1)[-1]}"
    try:
        _safe_extract(archive_path, tmp)
        root = _extracted_root(tmp, dest_dir.name, archive_root_in_dest)
        replacing = dest_dir.exists()
        if replacing:
            os.replace(dest_dir, old)
        try:
            os.replace(root, dest_dir)
        except OSError:
            if replacing:
                os.replace(old, dest_dir)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def extract_local_archive(
    archive_path: PathLike,
    dest_dir: PathLike,
    *,
    dataset_key: str,
    name: str,
    version: str,
    archive_root_in_dest: Optional[bool] = None,
    force: bool = False,
) -> Path:
    """Install a dataset archive that is already on disk (e.g. fetched on another machine).

    Extracts ``archive_path`` (.tar.gz) safely and atomically into ``dest_dir`` and records
    ``version`` under ``version_reference.json[dataset_key][name]``. An existing ``dest_dir``
    is kept as it is (nothing extracted or recorded) unless ``force``. Returns ``dest_dir``.
    """
    archive_path, dest_dir = Path(archive_path), Path(dest_dir)
    if dest_dir.is_dir() and not force:
        return dest_dir
    if not archive_path.is_file():
        raise MetamonError(f"Archive {archive_path} does not exist")
    _extract_into_place(archive_path, dest_dir, archive_root_in_dest)
    _record_version(dataset_key, name, version)
    return dest_dir


# ------------------------------------------------------------------------------------------
# One file from the Hub
# ------------------------------------------------------------------------------------------
def _network_errors() -> tuple:
    errors = [OSError]
    try:
        import httpx  # optional: the HTTP client of the installed huggingface_hub, if it is httpx

        errors.append(httpx.HTTPError)
    except ImportError:
        pass
    return tuple(errors)


def _unreachable(where: str, cause: Optional[BaseException], hint: str) -> MetamonError:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    because = f" ({type(cause).__name__}: {cause})" if cause else ""
    return MetamonError(
        f"Could not reach the Hugging Face Hub{' (HF_HUB_OFFLINE is set)' if offline else ''} "
        f"to download {where}{because}. {hint}".rstrip()
    )


def hub_download(
    repo_id: str,
    filename: str,
    *,
    revision: str,
    local_dir: PathLike,
    repo_type: str = "dataset",
    offline_hint: str = "",
) -> Path:
    """Download ``filename`` of the Hub repository ``repo_id`` at ``revision`` into ``local_dir``
    (at ``local_dir/filename``) and return its path.

    Args:
        repo_type: ``"dataset"`` or ``"model"`` (checkpoints), as in ``huggingface_hub``.
        offline_hint: appended to the error when the Hub cannot be reached (how to install the
            file by hand).

    Raises :class:`MetamonError` when the Hub has no such repository, revision or file, or
    cannot be reached (``HF_HUB_OFFLINE`` set, no network); the message names all three.
    """
    # huggingface_hub.errors loads its HTTP client (~0.1 s); only an actual download needs it.
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{filename!r} at revision {revision!r} of the Hub {repo_type} {repo_id!r}"
    try:
        path = huggingface_hub.hf_hub_download(
            repo_id=repo_id, filename=filename, repo_type=repo_type, revision=revision,
            local_dir=local_dir,
        )
    # Offline or no connection. Must come first: it subclasses EntryNotFoundError.
    except LocalEntryNotFoundError:
        raise _unreachable(where, None, offline_hint) from None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as e:
        raise MetamonError(f"The Hugging Face Hub has no {where}: {type(e).__name__}") from None
    except _network_errors() as e:
        raise _unreachable(where, e, offline_hint) from None
    return Path(path)


def hub_snapshot(
    repo_id: str,
    *,
    local_dir: PathLike,
    allow_patterns: Sequence[str],
    revision: Optional[str] = None,
    repo_type: str = "model",
    offline_hint: str = "",
) -> Path:
    """Download the files of the Hub repository ``repo_id`` (at ``revision``; None: its default
    branch) whose paths match ``allow_patterns`` (``fnmatch`` patterns such as
    ``"ckpts/policy_weights/*.safetensors"``) into ``local_dir``, keeping their paths; return
    ``local_dir``. Raises :class:`MetamonError` naming the repository and revision when the Hub has
    no such repository or revision or cannot be reached."""
    from huggingface_hub.errors import (  # loads the HTTP client; only a download needs it
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"the Hub {repo_type} {repo_id!r} at revision {revision or 'main'!r}"
    try:
        path = huggingface_hub.snapshot_download(
            repo_id=repo_id, repo_type=repo_type, revision=revision, local_dir=local_dir,
            allow_patterns=list(allow_patterns),
        )
    except LocalEntryNotFoundError:
        raise _unreachable(where, None, offline_hint) from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as e:
        raise MetamonError(f"The Hugging Face Hub has no {where}: {type(e).__name__}") from None
    except _network_errors() as e:
        raise _unreachable(where, e, offline_hint) from None
    return Path(path)


# ------------------------------------------------------------------------------------------
# metamon's datasets
# ------------------------------------------------------------------------------------------
def _manual_install_hint(
    repo_id: str, filename: str, revision: str, dest_dir: Path, dataset_key: str, name: str
) -> str:
    url = f"https://huggingface.co/datasets/{repo_id}/resolve/{revision}/{filename}"
    return (
        f"To install it by hand, download {url} on a machine with internet access, copy it here and run "
        f"metamon.hub.extract_local_archive(<that file>, {str(dest_dir)!r}, "
        f"dataset_key={dataset_key!r}, name={name!r}, version={revision!r})."
    )


def download_and_extract(
    repo_id: str,
    filename: str,
    revision: str,
    dest_dir: PathLike,
    archive_root_in_dest: Optional[bool] = None,
    *,
    dataset_key: str,
    name: str,
    force: bool = False,
) -> Path:
    """Fetch ``filename`` (a .tar.gz) from the Hub dataset ``repo_id`` at ``revision`` and
    extract it into ``dest_dir``; see :func:`extract_local_archive` for the extraction and
    the version record. An existing ``dest_dir`` is returned untouched unless ``force``.
    The archive is downloaded into a temporary folder next to ``dest_dir`` and deleted after
    extraction (no copy stays in the Hugging Face cache)."""
    dest_dir = Path(dest_dir)
    if dest_dir.is_dir() and not force:
        return dest_dir
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.download-", dir=dest_dir.parent))
    try:
        hint = _manual_install_hint(repo_id, filename, revision, dest_dir, dataset_key, name)
        archive = hub_download(repo_id, filename, revision=revision, local_dir=staging, offline_hint=hint)
        return extract_local_archive(
            archive, dest_dir, dataset_key=dataset_key, name=name, version=revision,
            archive_root_in_dest=archive_root_in_dest, force=True,
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_teams(
    battle_format: str,
    set_name: str,
    version: str = LATEST_TEAMS_VERSION,
    force_download: bool = False,
) -> Path:
    """Download metamon's team set ``set_name`` for ``battle_format`` (``{set_name}/{format}.tar.gz``
    of ``jakegrigsby/metamon-teams``) into ``$METAMON_CACHE_DIR/teams/{set_name}/{format}/`` and
    return that folder. Recorded as ``version_reference.json["teams"]["{set_name}/{format}"]``.

    Not every set exists for every format (metamon: ``*replays`` sets are OU only, ``paper*``
    sets are gen1-4 only); asking for a missing one raises :class:`MetamonError`.
    """
    check_format(battle_format)
    if set_name not in TEAM_SETS:
        raise UnknownNameError("metamon team set", set_name, TEAM_SETS)
    dest = cache_dir() / "teams" / set_name / battle_format
    return download_and_extract(
        TEAMS_REPO, f"{set_name}/{battle_format}.tar.gz", version, dest,
        dataset_key="teams", name=f"{set_name}/{battle_format}", force=force_download,
    )


def download_parsed_replays(
    battle_format: str,
    version: str = LATEST_PARSED_REPLAY_VERSION,
    force_download: bool = False,
) -> Path:
    """Download metamon's parsed replays of ``battle_format`` (``{format}.tar.gz`` of
    ``jakegrigsby/metamon-parsed-replays`` at revision ``version``) into
    ``$METAMON_CACHE_DIR/parsed-replays/{format}/`` and return that folder. Recorded as
    ``version_reference.json["parsed-replays"][format]``. Archives of v0/v1 hold the files
    directly, later ones a ``{format}/`` folder; both end up in the same place.
    """
    check_format(battle_format)
    dest = cache_dir() / "parsed-replays" / battle_format
    return download_and_extract(
        PARSED_REPLAYS_REPO, f"{battle_format}.tar.gz", version, dest,
        archive_root_in_dest=version not in _UNWRAPPED_PARSED_REPLAY_VERSIONS,
        dataset_key="parsed-replays", name=battle_format, force=force_download,
    )


def team_sets_for(battle_format: str, version: str = LATEST_TEAMS_VERSION) -> list:
    """The official team sets published for ``battle_format`` at ``version``: ``*replays``
    sets only for OU, ``paper*`` sets not for gen9, ``modern_replays*`` not in v0."""
    sets = []
    for set_name in TEAM_SETS:
        if "replays" in set_name and not battle_format.endswith("ou"):
            continue
        if set_name.startswith("paper") and battle_format.startswith("gen9"):
            continue
        if set_name.startswith("modern") and version == "v0":
            continue
        sets.append(set_name)
    return sets

"""The tournament results file: one JSON line per unique finished battle.

Record format (one line of ``tournament_results.jsonl``)::

    {"battle_id": "5f0c2a9e41d7-8123-battle-gen1ou-17",   # globally unique, see below
     "player": "GymLeader",                               # canonical player spec strings
     "opponent": "run:runs/x@4",                          #   (str(PlayerSpec.parse(s)))
     "result": "win",                                     # win | loss | draw, for ``player``
     "turns": 23,                                         # last turn reached
     "format": "gen1ou"}                                  # the Showdown battle format

``battle_id`` is ``{nonce}-{port}-{battle tag}``: Showdown's battle tag is unique on one server
run, the port tells servers of one run apart and the nonce (random, drawn when a worker opens
its server) tells runs apart. Only finished battles are records; errored ones are counted by
the engine and never written. Other keys are allowed and ignored.

:class:`ResultsFile` appends a chunk of records with one ``write`` on a file opened in append
mode, then ``fsync``: a kill loses at most the chunk being written. A kill *during* that write
can leave a last line without its newline; readers ignore such a torn tail and the next append
cuts it off first. A complete line that is not a valid record is an error (the file was edited
or is not a results file), as are two records of one battle id that disagree.

:func:`unique_records` keeps one record per battle id (a file may hold both perspectives of a
battle, e.g. when merged from two players' logs); :func:`pair_counts` counts unique battles
per unordered pair of players.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Tuple, Union

from metamon.errors import MetamonError

__all__ = ["RECORD_KEYS", "RESULTS", "ResultsFile", "check_record", "flip_result", "pair_key", "pair_counts",
           "unique_records"]

RECORD_KEYS = ("battle_id", "player", "opponent", "result", "turns", "format")
RESULTS = ("win", "loss", "draw")
_FLIP = {"win": "loss", "loss": "win", "draw": "draw"}

logger = logging.getLogger(__name__)


def flip_result(result: str) -> str:
    """The same outcome from the other side: win <-> loss, draw stays."""
    return _FLIP[result]


def pair_key(a: str, b: str) -> Tuple[str, str]:
    """The unordered pair ``{a, b}`` as a sorted tuple."""
    return (a, b) if a <= b else (b, a)


def check_record(record: Any, where: str = "record") -> Dict[str, Any]:
    """``record`` as a dict, or :class:`MetamonError` naming ``where`` and what is wrong."""
    if not isinstance(record, Mapping) or any(k not in record for k in RECORD_KEYS):
        raise MetamonError(f"{where}: a tournament record needs the keys {', '.join(RECORD_KEYS)}; got {record!r}")
    if not isinstance(record["battle_id"], str) or not record["battle_id"]:
        raise MetamonError(f"{where}: battle_id must be a non-empty string, got {record['battle_id']!r}")
    if record["result"] not in RESULTS:
        raise MetamonError(f"{where}: result must be one of {', '.join(RESULTS)}, got {record['result']!r}")
    if not all(isinstance(record[k], str) and record[k] for k in ("player", "opponent", "format")):
        raise MetamonError(f"{where}: player, opponent and format must be non-empty strings")
    if record["player"] == record["opponent"]:
        raise MetamonError(f"{where}: {record['player']!r} played itself")
    return dict(record)


def _view(record: Mapping[str, Any]) -> Tuple[str, str, str, str]:
    """(first player, second player, result of the first, format) with the players sorted."""
    a, b, result = record["player"], record["opponent"], record["result"]
    if a > b:
        a, b, result = b, a, flip_result(result)
    return a, b, result, record["format"]


def unique_records(records: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """One record per battle id (the first seen), in first-seen order. Records of one id must
    describe the same battle (same players and format, the same result from either side),
    else :class:`MetamonError`."""
    seen: Dict[str, Dict[str, Any]] = {}
    for record in records:
        record = check_record(record)
        first = seen.get(record["battle_id"])
        if first is None:
            seen[record["battle_id"]] = record
        elif _view(first) != _view(record):
            raise MetamonError(f"battle {record['battle_id']!r} is recorded twice with different players, "
                               f"format or result: {first} vs {record}")
    return list(seen.values())


def pair_counts(records: Iterable[Mapping[str, Any]]) -> Counter:
    """Unique battles per :func:`pair_key` of (player, opponent)."""
    return Counter(pair_key(r["player"], r["opponent"]) for r in unique_records(records))


class ResultsFile:
    """A JSON-lines tournament results file (format in the module docstring)."""

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = Path(path)

    def _lines(self) -> Tuple[List[bytes], int]:
        """The complete lines and the byte length they span (a torn tail is left out)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return [], 0
        end = data.rfind(b"\n") + 1
        if end < len(data):
            logger.warning("%s: ignoring an incomplete last line (%d bytes; a write was interrupted)",
                           self.path, len(data) - end)
        return data[:end].splitlines(), end

    def _torn(self) -> bool:
        """The file exists and does not end with a newline."""
        try:
            with open(self.path, "rb") as f:
                if f.seek(0, os.SEEK_END) == 0:
                    return False
                f.seek(-1, os.SEEK_END)
                return f.read(1) != b"\n"
        except FileNotFoundError:
            return False

    def read(self) -> List[Dict[str, Any]]:
        """Every record in the file, in order (duplicates kept; see :func:`unique_records`)."""
        records = []
        for number, line in enumerate(self._lines()[0], start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise MetamonError(f"{self.path}, line {number}: not JSON ({error})") from None
            records.append(check_record(record, f"{self.path}, line {number}"))
        return records

    def unique(self) -> List[Dict[str, Any]]:
        """:func:`unique_records` of the file."""
        return unique_records(self.read())

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append ``records`` (checked first; nothing is written if one is invalid) as one write,
        then fsync; returns how many were written."""
        lines = [json.dumps(check_record(r), sort_keys=True) + "\n" for r in records]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._torn():
            os.truncate(self.path, self._lines()[1])
        data = "".join(lines).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(lines)

"""``python -m metamon.data.download``: download metamon's datasets into ``$METAMON_CACHE_DIR``.

Command line (metamon's)::

    python -m metamon.data.download parsed-replays [--formats gen1ou gen2ou] [--version v4] [--force]
    python -m metamon.data.download teams [--formats gen1ou] [--version v4] [--force]
    python -m metamon.data.download check-versions

Without ``--formats`` every format of ``metamon.SUPPORTED_BATTLE_FORMATS`` is downloaded (the 17
formats of metamon's datasets), as metamon does. The default versions are metamon's latest:
parsed replays ``v4``, teams ``v4``. ``teams`` fetches every official set that exists for each
format (``*replays`` sets only for OU formats, ``paper*`` sets not for gen9, ``modern_replays*``
only for versions after v0). ``check-versions`` prints what is installed
(``version_reference.json``). Exit code 2 when something cannot be downloaded (offline,
unknown format, missing file).

The downloads themselves live in :mod:`metamon.hub` (cache layout, safe extraction, version
records, offline installs); its public names are re-exported here for the old import path.
"""

from __future__ import annotations

import argparse
import json
import sys

from metamon import SUPPORTED_BATTLE_FORMATS
from metamon.errors import MetamonError
from metamon.formats import check_format
from metamon.hub import (
    LATEST_PARSED_REPLAY_VERSION,
    LATEST_TEAMS_VERSION,
    PARSED_REPLAYS_REPO,
    TEAM_SETS,
    TEAMS_REPO,
    cache_dir,
    download_and_extract,
    download_parsed_replays,
    download_teams,
    extract_local_archive,
    get_active_dataset_versions,
    team_sets_for,
    version_reference_path,
)

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
    "main",
    "team_sets_for",
    "version_reference_path",
]


def _cli_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m metamon.data.download",
                                     description="Download metamon datasets into $METAMON_CACHE_DIR.")
    parser.add_argument("dataset", choices=["parsed-replays", "teams", "check-versions"])
    parser.add_argument("--formats", nargs="+", default=list(SUPPORTED_BATTLE_FORMATS),
                        help="e.g. gen1ou gen2ou (default: all %(default)s)")
    parser.add_argument("--version", default=None,
                        help=f"Hub revision (default {LATEST_PARSED_REPLAY_VERSION} for parsed replays, "
                        f"{LATEST_TEAMS_VERSION} for teams)")
    parser.add_argument("--force", action="store_true", help="download again even if already installed")
    return parser


def main(argv=None) -> int:
    """Entry point of ``python -m metamon.data.download``; returns the exit code."""
    args = _cli_parser().parse_args(argv)
    try:
        if args.dataset == "check-versions":
            print(json.dumps(get_active_dataset_versions(), indent=2, sort_keys=True))
            return 0
        formats = [check_format(f) for f in args.formats]  # every name checked before any download
        for battle_format in formats:
            if args.dataset == "parsed-replays":
                version = args.version or LATEST_PARSED_REPLAY_VERSION
                path = download_parsed_replays(battle_format, version, force_download=args.force)
                print(f"parsed replays {battle_format} ({version}): {path}")
            else:
                version = args.version or LATEST_TEAMS_VERSION
                for set_name in team_sets_for(battle_format, version):
                    path = download_teams(battle_format, set_name, version, force_download=args.force)
                    print(f"teams {set_name}/{battle_format} ({version}): {path}")
    except MetamonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Generate self-play (or any player-vs-player) trajectory data on local Showdown servers.

    python scripts/generate_selfplay_data.py --player GymLeader [--opponent Grunt] \\
        --num_battles 10000 --battle_format gen1ou --team_set competitive \\
        --output_dir ~/gen1_selfplay_data/v0 --parallel_instances 2

Each of ``--parallel_instances`` workers starts its own local server (or all use
``--server_url``). Files go to ``OUTPUT_DIR/<battle_format>/``, two per battle (one per
player). Re-running adds battles. Then filter them with ``scripts/filter_selfplay_data.py``.
This is :mod:`metamon.data.generate` with the defaults of metamon's self-play workflow; see
``python -m metamon.data.generate --help`` for every flag.
"""

import sys

from metamon.data.generate import build_parser, main

if __name__ == "__main__":
    parser = build_parser(prog="scripts/generate_selfplay_data.py", num_battles=10000, team_set="competitive",
                          parallel=2, output_dir="~/gen1_selfplay_data/v0")
    sys.exit(main(parser=parser))

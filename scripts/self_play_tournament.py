#!/usr/bin/env python
"""Round-robin tournament between players (baselines, trained runs) on local Showdown servers.

    python scripts/self_play_tournament.py --models GymLeader Grunt run:runs/x@4 \\
        [--battles_per_matchup 200] [--output_dir ~/gen1_tournament_results] \\
        [--battle_format gen1ou] [--team_set competitive] [--parallel 4 | --server_url HOST:PORT] [--seed 0]

Writes ``OUTPUT_DIR/tournament_results.jsonl`` (one record per unique battle; re-running plays
only what is missing) and ``OUTPUT_DIR/tournament_summary.json``, then prints Bradley–Terry
ratings; ``scripts/calculate_elo.py --tournament_dir OUTPUT_DIR`` writes them with plots.
This is :mod:`metamon.selfplay.round_robin` with the defaults of metamon's self-play workflow;
see ``python -m metamon.selfplay.round_robin --help`` for every flag.
"""

import sys

from metamon.selfplay.round_robin import build_parser, main

if __name__ == "__main__":
    parser = build_parser(prog="scripts/self_play_tournament.py", team_set="competitive",
                          output_dir="~/gen1_tournament_results")
    sys.exit(main(parser=parser))

#!/usr/bin/env python
"""Bradley–Terry ratings (Elo scale, bootstrap 95% intervals) of a tournament's unique battles.

    python scripts/calculate_elo.py --tournament_dir ~/gen1_tournament_results \\
        [--output_prefix elo_results] [--anchor GymLeader] [--initial_rating 1500] \\
        [--bootstrap 1000] [--seed 0]

Reads ``TOURNAMENT_DIR/tournament_results.jsonl`` (written by ``scripts/self_play_tournament.py``)
and writes ``{prefix}.json``, ``{prefix}.csv``, ``{prefix}_ratings.png`` and
``{prefix}_winrates.png`` there. This is :mod:`metamon.selfplay.elo`; ``--k_factor`` is accepted
and ignored (a maximum-likelihood fit has no K-factor).
"""

import sys

from metamon.selfplay.elo import main

if __name__ == "__main__":
    sys.exit(main(prog="scripts/calculate_elo.py"))

#!/usr/bin/env python
"""Filter generated trajectory files by quality before training.

    python scripts/filter_selfplay_data.py --input_dir ~/gen1_selfplay_data/v0 \\
        --output_dir ~/gen1_selfplay_data/v0_filtered [--max_invalid_rate 0.05] \\
        [--min_turns 10] [--max_turns 1000] [--balance_outcomes] [--seed 42] [--formats gen1ou]

Reads ``INPUT_DIR/<format>/*.json.lz4`` and hard-links (``--copy``: copies) the files it keeps
into ``OUTPUT_DIR/<format>/``, then prints what it kept and why it dropped the rest. The rules
are documented in :mod:`metamon.data.filter`.
"""

import sys

from metamon.data.filter import main

if __name__ == "__main__":
    sys.exit(main(prog="scripts/filter_selfplay_data.py"))

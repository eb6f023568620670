"""``python -m metamon.rl.train_vanilla_selfplay``: the seeds' command for the generational
self-play loop (generate → filter → finetune with damping → evaluate → rate → repeat).

The loop lives in :mod:`metamon.selfplay.train_vanilla_selfplay`: it rates the generations with
:mod:`metamon.selfplay`, a floor above :mod:`metamon.rl`. This module only keeps the command
users know; it is the one import from ``metamon.rl`` up to ``metamon.selfplay`` that the layer
contract allows (``ignore_imports`` in ``pyproject.toml``), and nothing imports it.
"""

from __future__ import annotations

import sys

from metamon.selfplay.train_vanilla_selfplay import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

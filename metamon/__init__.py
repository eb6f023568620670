"""metamon-gemma: Pokémon Showdown battle agents, offline RL and a Gemma 3 timestep encoder.

Importing the top-level package is cheap: it does not import torch, poke-env or the server
helpers. Import the subpackages you need (``metamon.interface``, ``metamon.env``, ...).
"""

import os

__version__ = "0.1.0"

# The formats metamon's datasets and pretrained models cover (same order as metamon 1.4).
SUPPORTED_BATTLE_FORMATS = [
    f"gen{gen}{tier}" for gen in (1, 2, 3, 4) for tier in ("ou", "uu", "nu", "ubers")
] + ["gen9ou"]

# Where downloads (datasets, team sets) live. ``None`` until the user sets it.
METAMON_CACHE_DIR = os.environ.get("METAMON_CACHE_DIR") or None

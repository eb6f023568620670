"""Generate a named vocabulary file from data that ships with our pinned dependencies.

    python -m metamon.tokenizer.build_vocab --name metamon-gemma-v1          # write it (once)
    python -m metamon.tokenizer.build_vocab --name metamon-gemma-v1 --check  # verify it

A vocabulary is every word metamon's observation spaces (``metamon.interface``) can write,
normalised exactly as the observation spaces normalise it:

========================  =====================================================  ===================
category                  source                                                 normaliser
========================  =====================================================  ===================
species                   poke-env ``GenData(gen).pokedex`` keys + baseSpecies    ``pokemon_name``
abilities                 abilities listed in those pokedexes                    ``clean_no_numbers``
moves                     poke-env moves of gens 1-9 + poke-env SPECIAL_MOVES    ``move_name``
items                     pinned Showdown ``Dex.items`` (base dex + gen1-9 mods)  ``clean_no_numbers``
types                     poke-env type charts + PokemonType enum                ``clean_name``
natures                   poke-env natures                                       ``clean_no_numbers``
status / effects /        poke-env ``Status``, ``Effect``, ``SideCondition``,     ``clean_no_numbers``
conditions / weather /    ``Weather``, ``Field`` member names (aliases included)
fields
move categories           poke-env ``MoveCategory``                              ``clean_name``
formats                   ``<{format}>`` for every ``metamon.formats.known_formats()``
special / sentinels       fixed lists below
========================  =====================================================  ===================

Ids: the angle-bracket tokens first (sorted), then every other word sorted; ids ``0..N-1``.
The output is byte-for-byte reproducible; a sidecar ``<name>.meta.json`` records the source
versions and the number of words per category (a word can belong to several categories, so
the counts may add up to more than the vocabulary size).

Versioning: a shipped vocabulary is never regenerated in place (checkpoints trained on it
depend on its ids). Each name has its own recipe in ``RECIPES``; the builder refuses to write
over an existing file, and ``--check`` rebuilds in memory and fails unless the committed files
are identical. A new vocabulary is a new recipe under a new name.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Callable

from poke_env.battle import Effect, Field, MoveCategory, PokemonType, SideCondition, Status, Weather
from poke_env.battle.move import SPECIAL_MOVES
from poke_env.data import GenData

from metamon.errors import MetamonError, UnknownNameError
from metamon.formats import known_formats
from metamon.names import clean_name, clean_no_numbers, move_name, pokemon_name
from metamon.server import SHOWDOWN_VERSION, server_dir, showdown_dir
from metamon.tokenizer.tokenizer import VOCAB_DIR, vocabulary_to_json

__all__ = [
    "SPECIAL_TOKENS",
    "SENTINEL_WORDS",
    "STATUS_WORDS",
    "CATEGORY_WORDS",
    "GENERATIONS",
    "RECIPES",
    "VocabularyExistsError",
    "poke_env_words",
    "showdown_item_words",
    "format_tokens",
    "collect_words_v1",
    "assign_ids",
    "build",
    "write_vocabulary",
    "check_vocabulary",
    "main",
]

# Structural words of the observation texts (besides the ``<{format}>`` tokens).
SPECIAL_TOKENS = (
    "<anychoice>",
    "<blank>",
    "<conditions>",
    "<forcedswitch>",
    "<move>",
    "<moveset>",
    "<opp_prev>",
    "<opponent>",
    "<player>",
    "<player_prev>",
    "<switch>",
)
# Words an observation writes when a value is absent or hidden.
SENTINEL_WORDS = (
    "noability",
    "noconditions",
    "noeffect",
    "nofield",
    "noitem",
    "nomove",
    "nostatus",
    "notype",
    "noweather",
    "unknownability",
    "unknownitem",
)
STATUS_WORDS = ("brn", "fnt", "frz", "par", "psn", "slp", "tox")
CATEGORY_WORDS = ("physical", "special", "status")
GENERATIONS = tuple(range(1, 10))

# Prints a JSON list of every item name of the pinned Showdown: the base dex plus each gen mod.
_NODE_ITEM_LISTER = r"""
const {Dex} = require('pokemon-showdown');
const names = new Set();
for (const dex of [Dex, ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map(g => Dex.mod('gen' + g))]) {
  for (const item of dex.items.all()) names.add(item.name);
}
console.log(JSON.stringify([...names].sort()));
"""


class VocabularyExistsError(MetamonError, FileExistsError):
    """Refusing to overwrite a shipped vocabulary (they are versioned, never regenerated in place)."""


def _words(values, normalise: Callable[[str], str]) -> set[str]:
    """Normalised, non-empty words of ``values``."""
    return {word for word in map(normalise, values) if word}


def poke_env_words(generations=GENERATIONS) -> dict[str, set[str]]:
    """Words from poke-env's bundled data of ``generations`` and its battle enums, by category."""
    species, abilities, moves, types, natures = set(), set(), set(), set(), set()
    for gen in generations:
        data = GenData.from_gen(gen)
        for species_id, entry in data.pokedex.items():
            species |= _words([species_id, entry["baseSpecies"]], pokemon_name)
            abilities |= _words(entry.get("abilities", {}).values(), clean_no_numbers)
        moves |= _words(data.moves, move_name)
        types |= _words(data.type_chart, clean_name)
        natures |= _words(data.natures, clean_no_numbers)
    moves |= _words(SPECIAL_MOVES, move_name)
    types |= _words(PokemonType.__members__, clean_name)

    def enum_words(enum, normalise=clean_no_numbers):
        # Member names including aliases (Weather.SNOW is an alias of SNOWSCAPE).
        return _words(enum.__members__, normalise)

    return {
        "species": species,
        "abilities": abilities,
        "moves": moves,
        "types": types,
        "natures": natures,
        "status": enum_words(Status),
        "effects": enum_words(Effect),
        "side_conditions": enum_words(SideCondition),
        "weather": enum_words(Weather),
        "fields": enum_words(Field),
        "move_categories": enum_words(MoveCategory, clean_name),
    }


def showdown_item_words(server_root: Path | None = None) -> set[str]:
    """Every item of the pinned Showdown package (all gens), normalised with ``clean_no_numbers``.

    Runs ``node`` in the server folder (``metamon.server.server_dir()``) and checks that the
    installed ``pokemon-showdown`` is the pinned ``SHOWDOWN_VERSION``.
    """
    root = Path(server_root) if server_root is not None else server_dir()
    installed = _installed_showdown_version(showdown_dir(root))
    if installed != SHOWDOWN_VERSION:
        raise MetamonError(
            f"The vocabulary is built from pokemon-showdown {SHOWDOWN_VERSION}, but {showdown_dir(root)} "
            f"holds {installed}; install the pinned server (cd server && npm ci)"
        )
    if shutil.which("node") is None:
        raise MetamonError("Node.js is not installed (no `node` on PATH); it is needed to list Showdown's items")
    proc = subprocess.run(["node", "-e", _NODE_ITEM_LISTER], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise MetamonError(f"Listing Showdown items with node in {root} failed:\n{proc.stderr.strip()}")
    return _words(json.loads(proc.stdout), clean_no_numbers)


def _installed_showdown_version(package_dir: Path) -> str:
    manifest = package_dir / "package.json"
    if not manifest.is_file():
        raise MetamonError(
            f"pokemon-showdown is not installed at {package_dir}; run `npm ci` in {package_dir.parents[1]}"
        )
    return json.loads(manifest.read_text())["version"]


def format_tokens() -> set[str]:
    """``<{format}>`` for every singles format the pinned server knows."""
    return {f"<{fmt}>" for fmt in known_formats()}


def collect_words_v1() -> dict[str, set[str]]:
    """Recipe of ``metamon-gemma-v1``: every category of words, keyed by category name."""
    categories = poke_env_words(GENERATIONS)
    categories["items"] = showdown_item_words()
    categories["formats"] = format_tokens()
    categories["special"] = set(SPECIAL_TOKENS)
    categories["sentinels"] = set(SENTINEL_WORDS)
    categories["status"] |= set(STATUS_WORDS)
    categories["move_categories"] |= set(CATEGORY_WORDS)
    return categories


# name -> recipe. Never edit a shipped recipe: add a new name instead.
RECIPES: dict[str, Callable[[], dict[str, set[str]]]] = {"metamon-gemma-v1": collect_words_v1}


def assign_ids(words) -> dict[str, int]:
    """Ids ``0..N-1``: angle-bracket tokens first (sorted), then every other word (sorted)."""
    words = set(words)
    bad = sorted(w for w in words if not isinstance(w, str) or not w or " " in w)
    if bad:
        raise MetamonError(f"Vocabulary words must be non-empty and contain no space: {bad[:10]}")
    bracketed = sorted(w for w in words if w.startswith("<") and w.endswith(">"))
    plain = sorted(words.difference(bracketed))
    return {word: token for token, word in enumerate(bracketed + plain)}


def build(name: str) -> tuple[str, str]:
    """Build vocabulary ``name`` in memory: ``(vocabulary JSON text, meta JSON text)``."""
    if name not in RECIPES:
        raise UnknownNameError("vocabulary recipe", name, RECIPES)
    categories = RECIPES[name]()
    ids = assign_ids(set().union(*categories.values()))
    meta = {
        "name": name,
        "size": len(ids),
        "sources": {
            "poke-env": installed_version("poke-env"),
            "pokemon-showdown": SHOWDOWN_VERSION,
            "generations": list(GENERATIONS),
        },
        "category_sizes": {category: len(words) for category, words in sorted(categories.items())},
    }
    return vocabulary_to_json(ids), json.dumps(meta, indent=1) + "\n"


def _paths(name: str, vocab_dir: Path) -> tuple[Path, Path]:
    return vocab_dir / f"{name}.json", vocab_dir / f"{name}.meta.json"


def write_vocabulary(name: str, vocab_dir: Path = VOCAB_DIR) -> Path:
    """Build ``name`` and write ``<name>.json`` and ``<name>.meta.json``; refuses to overwrite either."""
    vocab_path, meta_path = _paths(name, Path(vocab_dir))
    for path in (vocab_path, meta_path):
        if path.exists():
            raise VocabularyExistsError(
                f"{path} already exists; shipped vocabularies are never regenerated in place. "
                f"Use --check to verify it, or add a new recipe under a new name."
            )
    vocab_text, meta_text = build(name)
    vocab_path.parent.mkdir(parents=True, exist_ok=True)
    vocab_path.write_text(vocab_text)
    meta_path.write_text(meta_text)
    return vocab_path


def check_vocabulary(name: str, vocab_dir: Path = VOCAB_DIR) -> list[str]:
    """Rebuild ``name`` in memory and compare with the files on disk; returns the problems (empty = identical)."""
    vocab_text, meta_text = build(name)
    problems = []
    for path, expected in zip(_paths(name, Path(vocab_dir)), (vocab_text, meta_text)):
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.read_text() != expected:
            problems.append(f"{path} differs from a rebuild{_first_difference(path.read_text(), expected)}")
    return problems


def _first_difference(found: str, expected: str) -> str:
    for number, (a, b) in enumerate(zip(found.splitlines(), expected.splitlines()), start=1):
        if a != b:
            return f" (line {number}: file has {a.strip()!r}, rebuild has {b.strip()!r})"
    return f" ({len(found.splitlines())} lines in the file, {len(expected.splitlines())} in the rebuild)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m metamon.tokenizer.build_vocab", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--name", required=True, help=f"vocabulary to build; one of {sorted(RECIPES)}")
    parser.add_argument("--check", action="store_true", help="rebuild in memory and verify the committed files")
    parser.add_argument(
        "--vocab-dir", type=Path, default=VOCAB_DIR, help=f"folder of the vocabulary files (default {VOCAB_DIR})"
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = check_vocabulary(args.name, args.vocab_dir)
            for problem in problems:
                print(problem, file=sys.stderr)
            if not problems:
                print(f"{args.name}: committed vocabulary matches a rebuild", file=sys.stderr)
            return 1 if problems else 0
        path = write_vocabulary(args.name, args.vocab_dir)
    except MetamonError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({len(json.loads(path.read_text()))} words)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

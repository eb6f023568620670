"""Canonical string forms shared by observations, actions, the tokenizer and the baselines.

metamon writes every categorical value as one lowercase word with no spaces, so observation
texts have a fixed word count and every word is a vocabulary entry:

- ``clean_no_numbers("Leech Seed 2") == "leechseed"``: letters only, lowercased.
- ``clean_name("Porygon-2") == "porygon2"``: letters and digits, lowercased.
- ``pokemon_name`` is ``clean_name``; ``move_name`` is ``clean_no_numbers`` with metamon's
  four merges (every Hidden Power variant -> ``hiddenpower``, ``vicegrip`` -> ``visegrip``,
  ``return*`` -> ``return``, ``frustration*`` -> ``frustration``).
"""

from functools import lru_cache

__all__ = ["clean_no_numbers", "clean_name", "pokemon_name", "move_name", "format_to_gen"]


@lru_cache(maxsize=65536)
def _letters(text: str) -> str:
    return "".join(c for c in text if c.isascii() and c.isalpha()).lower()


@lru_cache(maxsize=65536)
def _alnum(text: str) -> str:
    return "".join(c for c in text if c.isascii() and c.isalnum()).lower()


def clean_no_numbers(x) -> str:
    """Keep ASCII letters only, lowercased (``str(x)`` first)."""
    return _letters(str(x))


def clean_name(x) -> str:
    """Keep ASCII letters and digits, lowercased (``str(x)`` first)."""
    return _alnum(str(x))


def pokemon_name(x) -> str:
    """Species id as metamon writes it: ``"Rotom-Wash" -> "rotomwash"``."""
    return _alnum(str(x)).strip()


@lru_cache(maxsize=8192)
def move_name(x) -> str:
    """Move id as metamon writes it, with Hidden Power/Return/Frustration/Vise Grip merged."""
    name = _letters(str(x))
    if name.startswith("hiddenpower"):
        return "hiddenpower"
    if name == "vicegrip":
        return "visegrip"
    if name.startswith("return"):
        return "return"
    if name.startswith("frustration"):
        return "frustration"
    return name


def format_to_gen(battle_format: str) -> int:
    """``"gen9ou" -> 9``. Raises ``ValueError`` naming the format when it has no ``genN`` prefix."""
    fmt = battle_format.lower()
    if fmt.startswith("gen"):
        digits = ""
        for c in fmt[3:]:
            if not c.isdigit():
                break
            digits += c
        if digits:
            return int(digits)
    raise ValueError(f"Battle format {battle_format!r} does not start with 'gen<N>'")

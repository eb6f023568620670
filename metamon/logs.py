"""What the command-line tools print: one ``--log_level`` for metamon's and poke-env's loggers.

poke-env logs through the ``poke-env`` logger and through one logger per player, named after the
player's username, with its own stderr handler. At WARNING it reports protocol messages it does
not model ("Unmanaged move message format received ..."), which floods a terminal. Every CLI
(``compete``, ``generate``, ``evaluate``, ``python -m metamon.env``, the demo; ``train`` for its
validation battles) takes ``--log_level`` (:func:`add_log_level_argument`) and calls
:func:`configure_logging` once, before it builds players:

==========================  ================  ==========================
``--log_level``             metamon loggers   poke-env loggers
==========================  ================  ==========================
``quiet`` (the default)     WARNING           ERROR, one line each
``debug`` ... ``critical``  that level        that level
==========================  ================  ==========================

"One line each": in quiet mode poke-env's errors are printed without their tracebacks (a server
that goes away makes every client log one, and the tool says what happened in its own words).

Players that metamon builds apply the chosen poke-env level with :func:`apply_poke_env_level`. The
level goes on poke-env's own stderr handler of the player's logger, not on the logger, so other
handlers on that logger (the env turns the server's popups, logged at WARNING, into events) keep
seeing every record.

Python users who never call :func:`configure_logging` keep poke-env's behaviour.
"""

from __future__ import annotations

import argparse
import logging
from typing import Optional

__all__ = [
    "DEFAULT_LOG_LEVEL",
    "LOG_LEVELS",
    "add_log_level_argument",
    "apply_poke_env_level",
    "configure_logging",
    "configured_log_level",
    "poke_env_level",
]

DEFAULT_LOG_LEVEL = "quiet"
LOG_LEVELS = ("quiet", "debug", "info", "warning", "error", "critical")
POKE_ENV_LOGGER = "poke-env"  # poke-env's module-level logger (effects, weather, fields, ...)
_QUIET = (logging.WARNING, logging.ERROR)  # (metamon, poke-env) for "quiet"
_FORMAT = "%(levelname)s %(name)s: %(message)s"
_POKE_ENV_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"  # what poke-env's clients print

# The poke-env level players built from now on use (None until configure_logging is called), and
# whether their errors are printed without tracebacks (quiet mode).
_poke_env_level: Optional[int] = None
_brief = False
_level_name: Optional[str] = None  # the --log_level value configure_logging was last called with


class _BriefFormatter(logging.Formatter):
    """poke-env's format without the traceback. The record is copied: other handlers of the same
    record still get its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        brief = logging.makeLogRecord(record.__dict__)
        brief.exc_info, brief.exc_text, brief.stack_info = None, None, None
        return super().format(brief)


def add_log_level_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--log_level {quiet,debug,info,warning,error,critical}`` (default ``quiet``)."""
    parser.add_argument(
        "--log_level", choices=LOG_LEVELS, default=DEFAULT_LOG_LEVEL,
        help="what metamon and poke-env log to stderr: quiet (default: metamon's warnings, "
        "poke-env's errors) or one level for both",
    )


def _levels(level: str) -> tuple[int, int]:
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}; got {level!r}")
    if level == "quiet":
        return _QUIET
    number = logging.getLevelName(level.upper())
    return number, number


def configure_logging(level: str = DEFAULT_LOG_LEVEL) -> None:
    """Set metamon's and poke-env's log levels from a ``--log_level`` value (module docstring).

    metamon's loggers (``metamon.*``) get the metamon level and, when neither they nor the root
    logger have a handler yet, one stderr handler (``LEVEL name: message``). poke-env's
    ``poke-env`` logger gets the poke-env level now, and every player built afterwards by
    metamon gets it through :func:`apply_poke_env_level`. Raises ``ValueError`` for an unknown
    level name.
    """
    global _poke_env_level, _brief, _level_name
    ours, theirs = _levels(level)
    metamon_logger = logging.getLogger("metamon")
    metamon_logger.setLevel(ours)
    if not metamon_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        metamon_logger.addHandler(handler)
    logging.getLogger(POKE_ENV_LOGGER).setLevel(theirs)
    _poke_env_level, _brief, _level_name = theirs, level == "quiet", level


def configured_log_level() -> Optional[str]:
    """The ``--log_level`` value :func:`configure_logging` was called with (None: never). Worker
    processes, which start afresh, pass it on to their own :func:`configure_logging`."""
    return _level_name


def poke_env_level() -> Optional[int]:
    """The poke-env level chosen with :func:`configure_logging`, or None (not configured)."""
    return _poke_env_level


def apply_poke_env_level(logger: Optional[logging.Logger]) -> None:
    """Apply the chosen poke-env level to a player's logger (``player.logger``).

    poke-env's stderr handlers on ``logger`` get the level (and, in quiet mode, a format without
    tracebacks); the logger itself is opened down to that level and never above WARNING, so
    metamon's own handlers on it still see WARNING records. Nothing changes before
    :func:`configure_logging` is called.
    """
    level = _poke_env_level
    if level is None or logger is None:
        return
    logger.setLevel(min(level, logging.WARNING))
    for handler in logger.handlers:
        if type(handler) is logging.StreamHandler:  # the one poke-env's client attaches
            handler.setLevel(level)
            if _brief:
                handler.setFormatter(_BriefFormatter(_POKE_ENV_FORMAT))

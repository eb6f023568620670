"""User-facing errors.

Every error a user can cause by passing bad input (an unknown format, a missing file, a server
that is not running, ...) is a :class:`MetamonError` whose message names the offending input and
says what to do. Subclasses exist so callers can catch one family without string matching.
"""


class MetamonError(Exception):
    """Base class of every error caused by user input or the user's environment.

    ``exit_code``: the status a command line exits with after printing ``error: <message>``
    (2, bad input; subclasses for failures during a run, such as a lost server, use 1).
    """

    exit_code = 2


class UnknownNameError(MetamonError, ValueError):
    """A name (format, baseline, observation space, reward, team set...) is not registered."""

    def __init__(self, kind: str, name: str, options):
        options = sorted(options)
        super().__init__(f"Unknown {kind} {name!r}. Available: {', '.join(options)}")
        self.kind, self.name, self.options = kind, name, options


class ServerError(MetamonError, RuntimeError):
    """The local Showdown server could not be started, reached or stopped."""


class TeamError(MetamonError, ValueError):
    """A team file or team set is missing, malformed or illegal."""


class BattleError(MetamonError, RuntimeError):
    """A battle failed mid-way (server error, timeout, protocol problem)."""

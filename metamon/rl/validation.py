"""Validation battles during training: the ``validate`` callable ``train.py`` gives
:meth:`MetamonAMAGOExperiment.configure_validation <metamon.rl.experiment.MetamonAMAGOExperiment.configure_validation>`.

``BattleValidation(run_info, formats, opponents, battles, server_url, team_set="builtin")(policy)``
battles each opponent in ``opponents`` ``battles`` times in each format of ``formats`` (both sides
drawing teams from ``team_set``) on a local Showdown
server (``server_url``, or one it starts on first use and stops in :meth:`close`) and returns,
per (format, opponent) pair, AMAGO's metric names::

    "Average Win Rate in {format}_vs_{opponent}"       win rate in [0, 1]
    "Average Valid Actions in {format}_vs_{opponent}"  valid-action fraction in [0, 1]

A format whose battles fail is reported as ``"Validation Errors in {format}" = 1.0`` with a
warning: a failed validation must not stop training. Nothing (an empty dict) when there are no
formats, no opponents or ``battles < 1``.

An unreachable ``server_url`` must not cost minutes per epoch: :meth:`BattleValidation.check`
raises :class:`~metamon.errors.ServerError` at once when no server answers there (the trainer
calls it before the first epoch, so a mistyped ``--eval_server_url`` stops the run up front). A
server that refuses, cannot be reached or dies during a round is noticed by the battle engine as
soon as the players' connections close (:class:`~metamon.battles.ConnectionLostError`): the
format is reported as failed in seconds, not after every stall timeout.
The players' log output follows :func:`metamon.logs.configure_logging` (quiet unless configured).
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import torch

from metamon.errors import ServerError
from metamon.rl.evaluate import evaluate_against_baselines, metrics_from_rows
from metamon.rl.run_dir import RunInfo
from metamon.server import LocalShowdownServer, check_server

__all__ = ["BattleValidation"]

CHECK_PATIENCE_S = 10.0  # how long a busy validation server may take to answer the up-front check


class BattleValidation:
    """Battles against baselines as a validation callable (module docstring).

    ``run_info`` names the observation space, action space, reward function and tokenizer the
    policy's player needs; ``server_url`` (``host:port``) a running server, ``None`` starts a
    local one the first time it is needed.
    """

    def __init__(
        self,
        run_info: RunInfo,
        formats: Sequence[str],
        opponents: Sequence[str],
        battles: int,
        server_url: Optional[str] = None,
        team_set="builtin",
    ):
        self.run_info = run_info
        self.formats, self.opponents = list(formats), list(opponents)
        self.battles, self.server_url = battles, server_url
        self.team_set = team_set
        self._server: Optional[LocalShowdownServer] = None

    @property
    def enabled(self) -> bool:
        """True when a round plays battles (some formats, some opponents, ``battles >= 1``)."""
        return bool(self.formats and self.opponents and self.battles >= 1)

    def check(self, patience: float = CHECK_PATIENCE_S) -> None:
        """Raise :class:`~metamon.errors.ServerError` now unless the server at ``server_url``
        answers (a busy one is given ``patience`` seconds). Nothing to check when validation is
        disabled or when no ``server_url`` was given (a local server is started when needed)."""
        if self.enabled and self.server_url is not None:
            try:
                check_server(self.server_url, patience=patience)
            except ServerError as error:
                raise ServerError(f"validation battles (--eval_server_url {self.server_url}): {error}") from error

    def __call__(self, policy: torch.nn.Module) -> dict:
        if not self.enabled:
            return {}
        metrics = {}
        server_url = self.server_url or self._local_server_url()
        for battle_format in self.formats:
            try:
                rows = evaluate_against_baselines(
                    policy,
                    self.run_info,
                    battle_format=battle_format,
                    opponents=self.opponents,
                    battles=self.battles,
                    server_url=server_url,
                    team_set=self.team_set,
                    progress=False,
                )
            except Exception as error:  # noqa: BLE001 - a failed validation must not kill training
                warnings.warn(f"validation battles in {battle_format} failed: {error!r}", stacklevel=2)
                metrics[f"Validation Errors in {battle_format}"] = 1.0
                continue
            metrics.update(metrics_from_rows(battle_format, rows))
        return metrics

    def _local_server_url(self) -> str:
        """Start (once) a local Showdown server; :meth:`close` stops it."""
        if self._server is None:
            self._server = LocalShowdownServer()
            self._server.start()
        return f"127.0.0.1:{self._server.port}"

    def close(self) -> None:
        """Stop the server this object started, if any."""
        if self._server is not None:
            self._server.stop()
            self._server = None

"""``MetamonAMAGOExperiment``: the AMAGO experiment with metamon's masks and validation battles.

Two things differ from :class:`metamon.amago.experiment.Experiment`:

* **Missing actions are not trained on.** metamon's replays contain turns whose action could not
  be observed (the dataset stores ``-1``; :class:`metamon.rl.dataset.MetamonAMAGODataset` turns it
  into a one-hot of action 0 and sets ``obs["missing_action_mask"]``, shape (B, L, 1), True for a
  missing action and for the final observation). Both loss masks become

      mask[b, t, ...] = valid(b, t + 1) and not missing_action_mask[b, t]      t = 0 .. L-2

  broadcast over the gammas (actor, (B, L-1, G, 1)) and over critics and gammas (critic,
  (B, L-1, C, G, 1)). Padded positions of ``missing_action_mask`` are True (the padding value
  cast to bool), so padding stays masked too.
* **Validation is real battles.** Every ``val_interval`` epochs the current policy battles each
  opponent in ``eval_opponents`` in each format of ``eval_formats`` on a local Showdown server
  (``eval_server_url``, or one this experiment starts and stops) and logs, per pair,
  ``"Average Win Rate in {format}_vs_{opponent}"`` and ``"Average Valid Actions in ..."`` under
  ``val`` (AMAGO's metric names). Only the main process battles.
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import gin
import torch

from metamon.amago.experiment import Experiment

__all__ = ["MetamonAMAGOExperiment"]


@gin.configurable
class MetamonAMAGOExperiment(Experiment):
    """:class:`~metamon.amago.experiment.Experiment` with metamon's masks and validation battles.

    A plain (non-dataclass) subclass, so gin bindings on ``Experiment.*`` still fill the fields
    that ``MetamonAMAGOExperiment.*`` bindings leave unset. Validation is set up after
    construction with :meth:`configure_validation` (none by default).
    """

    run_info = None
    eval_formats: Sequence[str] = ()
    eval_opponents: Sequence[str] = ()
    eval_battles: int = 0
    eval_server_url: Optional[str] = None
    _val_server = None

    def configure_validation(
        self,
        run_info,
        formats: Sequence[str],
        opponents: Sequence[str],
        battles: int,
        server_url: Optional[str] = None,
    ) -> None:
        """Battle ``opponents`` (baseline names) ``battles`` times in each of ``formats`` after
        each validation interval. ``run_info`` (:class:`metamon.rl.run_dir.RunInfo`) names the
        observation space, action space, reward function and tokenizer the player needs;
        ``server_url`` (``host:port``) a running server, ``None`` starts a local one."""
        self.run_info = run_info
        self.eval_formats, self.eval_opponents = list(formats), list(opponents)
        self.eval_battles, self.eval_server_url = battles, server_url

    # -- masks ----------------------------------------------------------------------------------
    @staticmethod
    def _not_missing(batch) -> torch.Tensor:
        """``not missing_action_mask[:, :-1]``: (B, L-1, 1) bool, aligned with action index t."""
        try:
            missing = batch.obs["missing_action_mask"]
        except KeyError as e:
            raise KeyError(
                "MetamonAMAGOExperiment needs obs['missing_action_mask'] (MetamonAMAGODataset adds it)"
            ) from e
        return ~missing[:, :-1].bool()

    def edit_actor_mask(self, batch, actor_loss: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        return pad_mask & self._not_missing(batch).unsqueeze(-1)  # (B, L-1, 1, 1) -> (B, L-1, G, 1)

    def edit_critic_mask(self, batch, critic_loss: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        return pad_mask & self._not_missing(batch)[..., None, None]  # -> (B, L-1, C, G, 1)

    # -- validation -----------------------------------------------------------------------------
    def evaluate_val(self) -> dict:
        if not self.eval_formats or not self.eval_opponents or self.eval_battles < 1:
            return {}
        if not self.accelerator.is_main_process:
            return {}
        from metamon.rl.evaluate import evaluate_against_baselines

        metrics = {}
        server_url = self.eval_server_url or self._local_server_url()
        for battle_format in self.eval_formats:
            try:
                rows = evaluate_against_baselines(
                    self.policy,
                    self.run_info,
                    battle_format=battle_format,
                    opponents=list(self.eval_opponents),
                    battles=self.eval_battles,
                    server_url=server_url,
                    progress=False,
                )
            except Exception as error:  # noqa: BLE001 - a failed validation must not kill training
                warnings.warn(f"validation battles in {battle_format} failed: {error!r}", stacklevel=2)
                metrics[f"Validation Errors in {battle_format}"] = 1.0
                continue
            for row in rows:
                name = f"{battle_format}_vs_{row['opponent']}"
                metrics[f"Average Win Rate in {name}"] = row["win_rate"]
                metrics[f"Average Valid Actions in {name}"] = row["valid_actions"]
        return metrics

    def _local_server_url(self) -> str:
        """Start (once) a local Showdown server for validation; it stops when the process exits."""
        if self._val_server is None:
            from metamon.server import LocalShowdownServer

            self._val_server = LocalShowdownServer()
            self._val_server.start()
        return f"127.0.0.1:{self._val_server.port}"

    def close(self) -> None:
        """Stop the validation server this experiment started, if any."""
        if self._val_server is not None:
            self._val_server.stop()
            self._val_server = None

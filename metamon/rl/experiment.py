"""``MetamonAMAGOExperiment``: the AMAGO experiment that metamon's gin files configure, with
validation given as a callable.

* **Gin name.** metamon's configs bind ``MetamonAMAGOExperiment.*`` (agent, encoders,
  ``max_seq_len``, optimisation); the class adds no fields, so gin bindings on ``Experiment.*``
  still fill the fields that ``MetamonAMAGOExperiment.*`` bindings leave unset.
* **Missing actions are not trained on** — by the agent itself: metamon's dataset marks turns
  whose action was never revealed in ``obs["missing_action_mask"]`` (the generic
  ``metamon.amago.loading.MISSING_ACTION_KEY``), and the agent's loss masks leave them out.
* **Validation is whatever ``train.py`` passes in.** :meth:`configure_validation` takes a callable
  ``validate(policy) -> metrics``; every ``val_interval`` epochs the main process calls it with
  the unwrapped agent and logs the metrics under ``val``. ``train.py`` passes
  :class:`metamon.rl.validation.BattleValidation` (battles against baselines). This module
  imports nothing from the evaluator.
"""

from __future__ import annotations

from typing import Callable, Optional

import gin
import torch

from metamon.amago.experiment import Experiment

__all__ = ["MetamonAMAGOExperiment", "Validate"]

Validate = Callable[[torch.nn.Module], dict]
"""``validate(policy) -> {metric name: number}``; the policy is the unwrapped agent."""


@gin.configurable
class MetamonAMAGOExperiment(Experiment):
    """:class:`~metamon.amago.experiment.Experiment` with a validation callable (module docstring).

    A plain (non-dataclass) subclass, so gin bindings on ``Experiment.*`` still fill the fields
    that ``MetamonAMAGOExperiment.*`` bindings leave unset. Validation is set up after
    construction with :meth:`configure_validation` (none by default).
    """

    _validate: Optional[Validate] = None
    _close_validation: Optional[Callable[[], None]] = None
    #: policy weights (``.safetensors``) a new run starts from (``--init_from_checkpoint``)
    init_weights = None

    def configure_validation(self, validate: Validate, close: Optional[Callable[[], None]] = None) -> None:
        """Call ``validate(policy)`` after each validation interval (main process only) and log
        what it returns under ``val``; :meth:`close` calls ``close()`` (e.g. to stop a server the
        validation started)."""
        self._validate, self._close_validation = validate, close

    def evaluate_val(self) -> dict:
        if self._validate is None or not self.accelerator.is_main_process:
            return {}
        return self._validate(self.policy)

    def close(self) -> None:
        """Release what the validation holds (its ``close``), if anything."""
        if self._close_validation is not None:
            self._close_validation()

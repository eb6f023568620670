"""A clean-room, AMAGO-3.1.1-compatible sequence-RL core.

This package re-implements the parts of AMAGO (Grigsby et al.) that metamon-style training
needs: timestep and trajectory encoders, a causal Transformer with a KV cache, actor and critic
heads, the off-policy ``Agent`` losses, padded sequence datasets and an accelerate-based
``Experiment``. It follows the 3.1.1 API (gin names, constructor contracts, checkpoint
state-dict layout) so configurations written for AMAGO parse here, but it was written from a
behavioural specification, not from AMAGO's source.

The package only sees gym spaces and dictionaries of arrays; it knows nothing about any
particular environment. ``metamon.amago.Experiment`` is imported lazily so that importing the
networks does not pull in the training loop.
"""

__version__ = "3.1.1"


def __getattr__(name):
    """Lazy ``metamon.amago.Experiment`` (imports ``metamon.amago.experiment`` on first use)."""
    if name == "Experiment":
        # lazy: `import metamon.amago.nets...` must not pull in accelerate and the training loop
        from metamon.amago.experiment import Experiment

        return Experiment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

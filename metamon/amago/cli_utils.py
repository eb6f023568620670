"""Gin configuration helpers for scripts: find config files, apply them, explain failures.

``use_config(custom_params, gin_configs, finalize=True)`` follows AMAGO 3.1.1's order:

1. bind every ``custom_params`` entry (``{"Agent.tau": 0.01, ...}``);
2. parse each gin file in order, so later files override earlier files **and** the dict;
3. parse the optional ``bindings`` strings (command-line style overrides, applied last);
4. ``gin.finalize()`` unless ``finalize=False``.

Gin files written for AMAGO start with lines such as ``import amago.agent``. When the real
``amago`` package is not installed, :func:`alias_amago_modules` registers ``sys.modules``
aliases (``amago`` -> ``metamon.amago``, ``amago.agent`` -> ``metamon.amago.agent``, ...) so
those import lines succeed. Selectors such as ``amago.agent.Agent.tau`` need no alias: gin
matches any suffix of the registered name ``metamon.amago.agent.Agent`` that starts on a module
boundary.

Every gin failure (unknown configurable or parameter, ambiguous selector, syntax error, missing
module in an ``import`` line) is re-raised as :class:`AmagoError` naming the file or the binding
together with gin's own message.

Value types are checked when a configuration is applied (:func:`check_binding_types`, called by
``use_config`` after the last binding): a value bound to a parameter annotated ``int``, ``float``,
``bool`` or ``str`` (or an ``Optional`` / ``Union`` of them) must be one, so
``Experiment.learning_rate = 'fast'`` is refused as ``gin binding Experiment.learning_rate =
'fast': expected a number`` instead of failing deep inside the optimizer. Parameters with other
annotations (classes, callables, containers) and ``@references`` / ``%macros`` are not checked.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import typing
from pathlib import Path
from typing import Iterable, Optional, Union

import gin

from metamon.amago.utils import AmagoError

_ALIASED_MODULES = (
    "agent",
    "experiment",
    "loading",
    "nets",
    "nets.actor_critic",
    "nets.traj_encoders",
    "nets.tstep_encoders",
    "nets.transformer",
    "nets.policy_dists",
    "nets.utils",
)

# what gin raises for bad configs: ValueError (unknown parameter / configurable), KeyError
# (ambiguous selector), SyntaxError (parse errors), ImportError (import lines), TypeError
_GIN_ERRORS = (ValueError, KeyError, SyntaxError, ImportError, TypeError)


def _real_amago_installed() -> bool:
    """True when an ``amago`` package with an ``__init__`` is importable. A namespace package
    (any folder named ``amago`` on ``sys.path``, e.g. a test folder) does not count."""
    spec = importlib.util.find_spec("amago")
    return spec is not None and spec.origin not in (None, "namespace")


def alias_amago_modules() -> bool:
    """Make ``import amago.*`` resolve to ``metamon.amago.*`` when ``amago`` is not installed.

    Registers ``amago`` and ``amago.{agent, experiment, loading, nets, nets.*}`` in
    ``sys.modules`` (importing the ``metamon.amago`` modules). Idempotent. Returns True when the
    aliases are in place, False when a real ``amago`` package is importable (left untouched).
    """
    existing = sys.modules.get("amago")
    if existing is None and _real_amago_installed():
        return False
    if existing is not None and not existing.__name__.startswith("metamon.amago"):
        return False
    sys.modules["amago"] = importlib.import_module("metamon.amago")
    for name in _ALIASED_MODULES:
        sys.modules[f"amago.{name}"] = importlib.import_module(f"metamon.amago.{name}")
    return True


def resolve_gin_file(name, search_dirs: Iterable) -> Path:
    """Find a gin file given as a path or as a bare name (with or without ``.gin``).

    An existing path is returned as is. Otherwise ``name`` and ``name + ".gin"`` are looked up in
    each of ``search_dirs`` in order. Raises :class:`AmagoError` listing the searched
    directories and the ``.gin`` files available there.
    """
    path = Path(name)
    if path.is_file():
        return path
    search_dirs = [Path(d) for d in search_dirs]
    candidates = [path] if path.suffix == ".gin" else [path, path.with_name(path.name + ".gin")]
    for d in search_dirs:
        for c in candidates:
            if (d / c).is_file():
                return d / c
    available = sorted({str(f.relative_to(d)) for d in search_dirs if d.is_dir() for f in d.rglob("*.gin")})
    raise AmagoError(
        f"gin config {str(name)!r} not found; searched {[str(d) for d in search_dirs] or 'no directories'}; "
        f"available: {available or 'none'}"
    )


# annotation -> (accepts(value), what the message says is expected)
_SIMPLE_TYPES = {
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an int"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    bool: (lambda v: isinstance(v, bool), "True or False"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _type_hints(fn_or_cls) -> dict:
    """The resolved parameter annotations of a function or of a class's ``__init__`` ({} when
    they cannot be resolved)."""
    target = fn_or_cls.__init__ if inspect.isclass(fn_or_cls) else fn_or_cls
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: nothing to check against
        return {}


def _expected(annotation) -> Optional[tuple]:
    """``(accepts, description)`` for ``int``/``float``/``bool``/``str`` annotations and
    ``Optional``/``Union``s of them; None for any other annotation (not checked)."""
    if annotation in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[annotation]
    if typing.get_origin(annotation) is not Union:
        return None
    members = typing.get_args(annotation)
    simple = [m for m in members if m is not type(None)]
    if not all(m in _SIMPLE_TYPES for m in simple):
        return None
    tests = [_SIMPLE_TYPES[m][0] for m in simple]
    if len(simple) < len(members):
        tests.append(lambda v: v is None)
    words = [_SIMPLE_TYPES[m][1] for m in simple] + (["None"] if len(simple) < len(members) else [])
    return (lambda v: any(test(v) for test in tests)), " or ".join(words)


def check_binding_types() -> None:
    """Raise :class:`AmagoError` for the first binding of gin's current configuration whose
    value does not fit its parameter's ``int``/``float``/``bool``/``str`` annotation (module
    docstring), naming the binding: ``gin binding TformerTrajEncoder.d_model = 'big': expected an
    int``. A ``float`` parameter accepts ints; ``bool`` is not taken for a number."""
    registry = gin.config._REGISTRY  # gin 0.5 has no public iterator over the parsed bindings
    for (scope, selector), params in list(gin.config._CONFIG.items()):
        configurable = registry.get_match(selector)
        if configurable is None:
            continue
        hints = _type_hints(configurable.wrapped)
        for name, value in params.items():
            expected = _expected(hints.get(name))
            if expected is None or isinstance(value, gin.config.ConfigurableReference):
                continue
            accepts, description = expected
            if not accepts(value):
                shown = "/".join(filter(None, [scope, registry.minimal_selector(selector)]))
                raise AmagoError(f"gin binding {shown}.{name} = {value!r}: expected {description}")


def _gin_error(where: str, e: Exception) -> AmagoError:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else e
    return AmagoError(f"gin error in {where}: {type(e).__name__}: {msg}")


def use_config(
    custom_params: Optional[dict],
    gin_configs: Optional[list] = None,
    finalize: bool = True,
    *,
    bindings: Optional[list] = None,
) -> None:
    """Apply ``custom_params`` (dict bindings), then ``gin_configs`` (files), then ``bindings``
    (strings like ``"Agent.tau = 0.01"``), check the value types (:func:`check_binding_types`),
    then finalize (see the module docstring)."""
    alias_amago_modules()
    for key, value in (custom_params or {}).items():
        try:
            gin.bind_parameter(key, value)
        except _GIN_ERRORS as e:
            raise _gin_error(f"binding {key} = {value!r}", e) from e
    for config in gin_configs or []:
        config = Path(config)
        if not config.is_file():
            raise AmagoError(f"gin config file {config} does not exist")
        try:
            gin.parse_config_file(str(config))
        except _GIN_ERRORS as e:
            raise _gin_error(f"file {config}", e) from e
    for binding in bindings or []:
        try:
            gin.parse_config(binding)
        except _GIN_ERRORS as e:
            raise _gin_error(f"binding {binding!r}", e) from e
    check_binding_types()
    if finalize:
        gin.finalize()

"""Parse gin configurations that come from elsewhere (a run folder, the Hub) without running code.

Gin can run code. An ``import M`` line imports any module ``M``; ``from __gin__ import
dynamic_registration`` lets a file register any callable and call it: with
``subprocess.getoutput.cmd = 'id'`` and ``MetamonTstepEncoder.dropout = @subprocess.getoutput()``
loading the run runs ``id``. A run's ``config.gin`` is data, so every path that loads a run
(:func:`metamon.rl.run_dir.load_agent`, hence ``evaluate``, the ``run:`` player kind, exports)
parses it with :func:`parse_untrusted_gin_file`, which first walks each statement with gin's own
parser and refuses, naming ``file:line``:

* ``from __gin__ import ...`` (dynamic registration, or any other gin feature switch);
* ``include`` lines (a run's configuration is one self-contained file);
* ``import M`` / ``from M import N`` unless ``M`` is ``metamon`` or ``amago`` or a module of
  theirs (:data:`ALLOWED_IMPORTS`; ``amago`` resolves to ``metamon.amago`` unless the real AMAGO
  is installed);
* a binding ``X.param = ...`` or a reference ``@X`` / ``@X()`` whose configurable ``X`` is not
  registered, or is registered from a module outside ``metamon`` (:data:`ALLOWED_MODULES`) and
  is not on the allow-list (:data:`ALLOWED_CONFIGURABLES`: ``gin.macro``, which macro
  definitions ``NAME = value`` bind, plus what the caller adds).

Only then is the very same text given to gin (no second read of the file). Values are literals,
macros (``%NAME``) and references checked as above, so nothing outside metamon's own
configurables can be constructed or called. Training with the user's own gin files
(``python -m metamon.rl.train``) keeps full gin: those files are the user's code.

API::

    check_gin(text, source)                       # raise UnsafeGinError / MetamonRLError, or return
    parse_untrusted_gin(text, source)             # check, then gin.parse_config(text)
    parse_untrusted_gin_file(path)                # the same for a file (read once)
    use_untrusted_config(params, files, bindings) # amago.cli_utils.use_config's order, checked
"""

from __future__ import annotations

import importlib
import io
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import gin
import gin.config
from gin import config_parser

from metamon.amago.cli_utils import alias_amago_modules, check_binding_types
from metamon.rl import MetamonRLError

__all__ = [
    "ALLOWED_CONFIGURABLES",
    "ALLOWED_IMPORTS",
    "ALLOWED_MODULES",
    "UnsafeGinError",
    "check_gin",
    "parse_untrusted_gin",
    "parse_untrusted_gin_file",
    "use_untrusted_config",
]

ALLOWED_IMPORTS = ("metamon", "amago")  # import roots; "amago" is metamon.amago's alias
ALLOWED_MODULES = ("metamon",)  # configurables registered from these modules (and their submodules)
ALLOWED_CONFIGURABLES = frozenset({"gin.macro"})  # "module.name" of configurables allowed besides

# what gin raises for a bad configuration (unknown parameter or configurable, ambiguous selector,
# syntax, failed import, wrong argument)
_GIN_ERRORS = (ValueError, KeyError, SyntaxError, ImportError, TypeError, AttributeError, NameError)


class UnsafeGinError(MetamonRLError):
    """A gin configuration that is not data: it imports, includes or references something
    outside metamon's own configurables. The message names ``file:line``."""


class _Reference:
    """A ``@name`` / ``@name()`` seen by the checking parser (``evaluate``: with ``()``)."""

    def __init__(self, name: str, evaluate: bool):
        self.name, self.evaluate = name, evaluate


class _Macro:
    """A ``%name`` seen by the checking parser (macros hold literal values: always safe)."""

    def __init__(self, name: str):
        self.name = name


class _RecordingDelegate(config_parser.ParserDelegate):
    """Builds inert placeholders instead of resolving references: nothing is looked up or
    registered while the text is only being read."""

    def configurable_reference(self, scoped_configurable_name, evaluate):
        return _Reference(scoped_configurable_name, evaluate)

    def macro(self, macro_name):
        return _Macro(macro_name)


def _named_stream(text: str, source: str) -> io.StringIO:
    """``text`` as a file-like object whose ``name`` gin's parser reports in its locations."""
    stream = io.StringIO(text)
    stream.name = source
    return stream


def _references(value: Any) -> Iterator[_Reference]:
    """Every reference inside a parsed value (lists, tuples and dicts, keys included)."""
    if isinstance(value, _Reference):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _references(key)
            yield from _references(item)


def _import_allowed(module: str) -> bool:
    root = module.split(".")[0]
    return root in ALLOWED_IMPORTS


def _module_allowed(module: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in ALLOWED_MODULES)


def _check_configurable(selector: str, where: str, what: str, allowed: frozenset) -> None:
    """Refuse ``selector`` (scopes stripped) unless it names a registered configurable of
    metamon or one on the allow-list."""
    name = selector.rsplit("/", 1)[-1]
    try:
        configurable = gin.config._REGISTRY.get_match(name)  # gin-config 0.5.0's registry (pinned)
    except KeyError as error:  # ambiguous selector
        raise UnsafeGinError(f"{where}: {what} {selector!r} is ambiguous: {error.args[0]}") from None
    if configurable is None:
        raise UnsafeGinError(
            f"{where}: {what} {selector!r}, which is not a registered configurable of metamon; a run's "
            f"gin configuration may only use metamon's own configurables"
        )
    full_name = f"{configurable.module}.{configurable.name}"
    if not _module_allowed(configurable.module) and full_name not in allowed:
        raise UnsafeGinError(
            f"{where}: {what} {selector!r} ({full_name}), which is not one of metamon's configurables; "
            f"a run's gin configuration may only use metamon's own configurables"
        )


def _import(statement: config_parser.ImportStatement, where: str) -> None:
    """Import an allowed module now, so the configurables it registers can be checked."""
    module = statement.module
    if module.split(".")[0] == "amago":
        alias_amago_modules()
    try:
        importlib.import_module(module)
    except ImportError:
        if not statement.is_from:
            raise MetamonRLError(f"{where}: cannot import {module!r}") from None
        parent, _, name = module.rpartition(".")  # `from package import attribute`
        try:
            getattr(importlib.import_module(parent), name)
        except (ImportError, AttributeError):
            raise MetamonRLError(f"{where}: cannot import {name!r} from {parent!r}") from None


def check_gin(text: str, source: str, *, allowed_configurables: Iterable[str] = ()) -> None:
    """Raise :class:`UnsafeGinError` (naming ``source:line``) unless every statement of
    ``text`` is allowed (module docstring); :class:`MetamonRLError` when it does not parse.

    ``allowed_configurables`` adds ``"module.name"`` entries to :data:`ALLOWED_CONFIGURABLES`.
    Allowed ``import`` lines are imported (metamon's own modules) so that the configurables
    they register are known to the checks of the lines below them.
    """
    allowed = ALLOWED_CONFIGURABLES | frozenset(allowed_configurables)
    parser = config_parser.ConfigParser(_named_stream(text, source), _RecordingDelegate())
    line = 0
    try:
        for statement in parser:
            line = statement.location.line_num
            where = f"{source}:{line}"
            if isinstance(statement, config_parser.ImportStatement):
                if statement.module.startswith("__gin__"):
                    raise UnsafeGinError(
                        f"{where}: {statement.format()!r} is refused: gin's dynamic registration lets a "
                        f"configuration register and call any Python function"
                    )
                if not _import_allowed(statement.module):
                    raise UnsafeGinError(
                        f"{where}: {statement.format()!r} is refused: only metamon's own modules "
                        f"({', '.join(ALLOWED_IMPORTS)}) may be imported by a run's gin configuration"
                    )
                _import(statement, where)
            elif isinstance(statement, config_parser.IncludeStatement):
                raise UnsafeGinError(
                    f"{where}: include {statement.filename!r} is refused: a run's gin configuration "
                    f"must be self-contained"
                )
            elif isinstance(statement, config_parser.BlockDeclaration):
                _check_configurable(statement.selector, where, "the block binds", allowed)
            elif isinstance(statement, config_parser.BindingStatement):
                if statement.arg_name:  # `X.param = value`; no arg_name: a macro definition
                    _check_configurable(statement.selector, where, "the line binds", allowed)
                for reference in _references(statement.value):
                    _check_configurable(reference.name, where, "the line references", allowed)
    except SyntaxError as error:
        at = error.lineno or line
        raise MetamonRLError(f"{source}:{at}: not valid gin: {error.msg}") from None


def parse_untrusted_gin(text: str, source: str, *, allowed_configurables: Iterable[str] = ()) -> None:
    """:func:`check_gin`, then give the same ``text`` to gin (``gin.parse_config``). gin's own
    errors (an unknown parameter, a wrong value) become :class:`MetamonRLError` naming ``source``."""
    check_gin(text, source, allowed_configurables=allowed_configurables)
    try:
        gin.parse_config(_named_stream(text, source))
    except _GIN_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise MetamonRLError(f"gin error in {source}: {type(error).__name__}: {message}") from error


def parse_untrusted_gin_file(path: Union[str, os.PathLike], *, allowed_configurables: Iterable[str] = ()) -> None:
    """Read ``path`` once and :func:`parse_untrusted_gin` its text."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MetamonRLError(f"cannot read the gin configuration {path}: {error}") from error
    parse_untrusted_gin(text, str(path), allowed_configurables=allowed_configurables)


def use_untrusted_config(
    params: Optional[dict],
    gin_files: Sequence[Union[str, os.PathLike]],
    bindings: Sequence[str] = (),
    *,
    allowed_configurables: Iterable[str] = (),
) -> None:
    """:func:`metamon.amago.cli_utils.use_config`'s order (``params`` bound first, then the
    files, then the ``bindings`` strings; not finalized) with every file and binding string
    checked, and then the value types (:func:`~metamon.amago.cli_utils.check_binding_types`:
    a bad one raises naming the binding). ``params`` come from Python code, not from a file,
    and are bound as given."""
    alias_amago_modules()
    for key, value in (params or {}).items():
        try:
            gin.bind_parameter(key, value)
        except _GIN_ERRORS as error:
            raise MetamonRLError(f"gin error in binding {key} = {value!r}: {error}") from error
    for path in gin_files:
        parse_untrusted_gin_file(path, allowed_configurables=allowed_configurables)
    for binding in bindings:
        parse_untrusted_gin(binding, f"binding {binding!r}", allowed_configurables=allowed_configurables)
    check_binding_types()

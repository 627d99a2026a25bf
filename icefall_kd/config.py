"""Settings written once: a dataclass field carries its default and its help, and the
command-line flags are generated from the fields.

    @dataclass
    class DataConfig:
        max_duration: float = option(200.0, "Seconds of audio per batch")

    add_config_arguments(parser, DataConfig, title="data")            # --max-duration ...
    add_config_arguments(parser, DataConfig, only=["manifest_dir"])   # a script's subset
    config = config_from_args(DataConfig, args)

Flags are the field names in kebab case (``max_duration`` -> ``--max-duration``), typed from
the annotation (``bool`` fields take true/false). A field made with ``flag=False`` has no
flag: its value comes from the caller, never silently from a same-named flag of another group.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Type, TypeVar

from icefall_kd.utils import str2bool

C = TypeVar("C")

_ARGPARSE_TYPES = {bool: str2bool, int: int, float: float, str: str, Path: Path}


def option(default: Any, help: str, *, choices: Optional[Sequence[Any]] = None,
           flag: bool = True, flag_name: Optional[str] = None,
           parse: Optional[Callable[[str], Any]] = None) -> Any:
    """A dataclass field with its command-line help. ``flag_name`` overrides the flag's name
    (without ``--`` or a prefix); ``flag=False``: no flag, the caller sets the value;
    ``parse``: the argparse type instead of the annotation's (to check a range, say)."""
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": tuple(choices) if choices is not None else None,
        "flag": flag, "flag_name": flag_name, "parse": parse})


def positive_float(text: str) -> float:
    """argparse type of a number that must be above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return value


def _flag_fields(cls: type, only: Optional[Iterable[str]]):
    fields = [f for f in dataclasses.fields(cls) if f.metadata.get("flag", False)]
    if only is None:
        return fields
    wanted = list(only)
    by_name = {f.name: f for f in fields}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise ValueError(f"{cls.__name__} has no flag field(s) {unknown}")
    return [by_name[name] for name in wanted]


def flag_dest(field: dataclasses.Field, prefix: str = "") -> str:
    """The argparse ``dest`` of a field's flag."""
    return prefix.replace("-", "_") + (field.metadata.get("flag_name") or field.name).replace("-", "_")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, *,
                         title: Optional[str] = None, description: Optional[str] = None,
                         only: Optional[Iterable[str]] = None, prefix: str = "",
                         required: Iterable[str] = (),
                         defaults: Optional[Dict[str, Any]] = None) -> None:
    """Adds one flag per flag field of ``cls`` (or of the fields named in ``only``), in an
    argument group ``title``. ``required``: field names whose flag must be given;
    ``defaults``: field name -> this script's default instead of the field's."""
    hints = typing.get_type_hints(cls)
    target = parser.add_argument_group(title, description) if title else parser
    required = set(required)
    defaults = defaults or {}
    for field in _flag_fields(cls, only):
        kind = hints[field.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # Optional[X], X | None
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if kind not in _ARGPARSE_TYPES:
            raise TypeError(f"{cls.__name__}.{field.name}: no flag type for {kind}")
        name = "--" + prefix + (field.metadata.get("flag_name") or field.name).replace("_", "-")
        kwargs: Dict[str, Any] = dict(type=field.metadata.get("parse") or _ARGPARSE_TYPES[kind],
                                      help=field.metadata["help"],
                                      dest=flag_dest(field, prefix))
        if field.metadata.get("choices"):
            kwargs["choices"] = field.metadata["choices"]
        if field.name in required:
            kwargs["required"] = True
        else:
            kwargs["default"] = defaults.get(field.name, field.default)
        target.add_argument(name, **kwargs)


def config_from_args(cls: Type[C], args: argparse.Namespace, prefix: str = "", **explicit) -> C:
    """An instance of ``cls`` from the flags the parser had (fields without a flag in this
    parser keep their defaults) and ``explicit`` values (fields without flags, nested
    configs)."""
    values = {}
    for field in dataclasses.fields(cls):
        dest = flag_dest(field, prefix)
        if field.metadata.get("flag", False) and hasattr(args, dest):
            values[field.name] = getattr(args, dest)
    values.update(explicit)
    return cls(**values)

"""Reading, checking and recording configs: one checker for every config class (`from_dict`: unknown keys,
types and missing keys named with their path), `to_dict` for what is recorded, YAML files and `--set`
overrides, and `knob` (a field with the help text the CLI shows)."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import field
from pathlib import Path

import yaml

from i2i_unlearn.errors import UserError

# to_dict leaves a field with this metadata out while the field it names is None: keys added for a new mode
# are then absent from the records of runs that do not use it, so those records (and the cache keys and resume
# checks built from them, e.g. benchmarks/tune.py's trial keys) stay what they were before the keys existed.
RECORDED_ONLY_WITH = "recorded_only_with"
BUDGET_KEY = {RECORDED_ONLY_WITH: "retain_budget"}
# to_dict leaves a field with this metadata out while it is None (an option that is off), for the same reason; kept
# apart from RECORDED_ONLY_WITH, whose fields controllers/budget.py treats as the budget's own keys.
RECORDED_WHEN_SET = "recorded_when_set"
WHEN_SET_KEY = {RECORDED_WHEN_SET: True}


def knob(default=dataclasses.MISSING, help: str = "", *, factory=dataclasses.MISSING, **metadata):
    """A config field and its help text, the one place a knob is explained: `i2i-unlearn unlearn --help` shows it
    (cli/unlearning.py builds its flags from these fields; `field_help` reads it)."""
    return field(default=default, default_factory=factory, metadata={"help": help, **metadata})


def field_help(cls, name: str) -> str:
    """The help text of field `name` of config class `cls` (given by `knob`)."""
    return next(f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name)


def from_dict(cls, values: dict, where: str = ""):
    """Build dataclass `cls` from a plain dict, refusing unknown keys with the list of known ones and naming the
    required keys (fields without a default) that are missing. Every error names the key's path (`where`)."""
    if not isinstance(values, dict):
        raise UserError(f"config{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    # YAML keys need not be strings (`1:`, `null:`): shown as text, never compared with each other
    unknown = sorted(str(key) if isinstance(key, str) and key.isprintable() else repr(key)
                     for key in set(values) - set(known))
    if unknown:
        raise UserError(f"config{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    missing = [name for name, f in known.items() if name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"config{where}: missing key(s) {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in values.items()}
    return cls(**kwargs)


def _convert(hint, value, where):
    """`value` as the declared type `hint`, or a one-line error naming the key."""
    if hint is typing.Any:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            return None
        raise UserError(f"config{where}: must be set (got null)")
    if origin in (typing.Union, types.UnionType):
        return _convert(_union_member([a for a in args if a is not type(None)], value), value, where)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, where)
    if origin is dict:   # dict[str, X]: entries by name, each checked as X under its name
        if not isinstance(value, dict):
            raise UserError(f"config{where}: expected a mapping by name, got {_short(value)}")
        return {_name(key, where): _convert(args[1], item, f"{where}.{key}") for key, item in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            example = value if isinstance(value, str) and value.isprintable() else repr(value)  # one line
            raise UserError(f"config{where}: expected a list, e.g. [{example}], got {type(value).__name__} {value!r}")
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
            if len(value) != len(args):
                raise UserError(f"config{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is float:
        number = None
        if isinstance(value, str):   # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:    # an int too large for a float
                number = math.inf
        if number is None:
            raise UserError(f"config{where}: expected a number, got {value!r}")
        if not math.isfinite(number):   # NaN or infinity is no setting: it would surface as a NaN loss
            raise UserError(f"config{where}: expected a finite number, got {_short(value)}")
        return number
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"config{where}: expected a whole number, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise UserError(f"config{where}: expected true or false, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise UserError(f"config{where}: expected a string, got {value!r}")
    if hint is dict and not isinstance(value, dict):
        raise UserError(f"config{where}: expected a mapping, got {value!r}")
    return value


def _union_member(options: list, value):
    """The member of a union (`str | list[str]`) that `value` is written as: a list for a list, a mapping or a
    dataclass for a mapping, else the first that is neither; a union of one is that one."""
    def shape(option):
        origin = typing.get_origin(option) or option
        return "list" if origin in (list, tuple) else "mapping" if origin is dict or dataclasses.is_dataclass(
            option) else "scalar"
    written = "list" if isinstance(value, (list, tuple)) else "mapping" if isinstance(value, dict) else "scalar"
    return next((option for option in options if shape(option) == written), options[0])


def _name(key, where: str) -> str:
    """A name in a mapping by name: YAML reads `0.5:` or `1:` as a number, meant as its text."""
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return str(key)
    if not isinstance(key, str):
        raise UserError(f"config{where}: names must be text, got {key!r}")
    return key


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def to_dict(config) -> dict:
    """Plain, YAML/JSON-safe dict of a config (tuples become lists); fields marked RECORDED_ONLY_WITH are left
    out while the field they name is None, fields marked RECORDED_WHEN_SET while they are None."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    values = plain(dataclasses.asdict(config))
    for f in dataclasses.fields(config):
        if dataclasses.is_dataclass(getattr(config, f.name)):   # a nested config (data, proxy) leaves out its own
            values[f.name] = to_dict(getattr(config, f.name))
        switch = f.metadata.get(RECORDED_ONLY_WITH)
        if switch and getattr(config, switch) is None:
            del values[f.name]
        elif f.metadata.get(RECORDED_WHEN_SET) and getattr(config, f.name) is None:
            del values[f.name]
    return values


def read_yaml(path: str | Path) -> dict:
    """A YAML file's mapping as written (unchecked), or a one-line error; an empty file is {}."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    # ValueError: PyYAML builds `2020-13-45` as a date and fails; also a file that is not UTF-8 text
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise UserError(f"config file {path} is not valid YAML: {' '.join(str(exc).split())}") from None  # one line
    return values


def load_yaml(cls, path: str | Path):
    """Dataclass `cls` from a YAML file, checked by from_dict; errors name the file and the key."""
    return from_dict(cls, read_yaml(path), f" {Path(path).name}")


def with_overrides(config, overrides: list[str]):
    """`config` with `key=value` overrides (`--set`): a dotted key reaches into a nested config (`optim.lr=1e-4`),
    the value is read as YAML (`tasks=[{name: outpaint, ratio: 0.5}]`), and the result is checked by from_dict like
    a config file, so an unknown key or a wrong type is refused the same way."""
    if not overrides:
        return config
    values = dataclasses.asdict(config)
    for text in overrides:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects KEY=VALUE (e.g. optim.lr=1e-4), got {text!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except (yaml.YAMLError, ValueError) as exc:
            raise UserError(f"--set {key}: {raw!r} is not a YAML value: {' '.join(str(exc).split())}") from None
        *parents, leaf = key.strip().split(".")
        target = values
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {} if target.get(part) is None else target[part]
            if not isinstance(target[part], dict):
                raise UserError(f"--set {key}: {part} is not a nested config")
            target = target[part]
        target[leaf] = value
    return from_dict(type(config), values, " (--set)")

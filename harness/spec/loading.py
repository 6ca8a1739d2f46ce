"""Reading an experiment file: YAML with `include`, `--set` overrides, and every problem as one line
`FILE:key.path: what is wrong (expected)` that names the file's key or the flag."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness.spec.checks import semantic_errors
from harness.spec.schema import SPEC_VERSION, ExperimentSpec, SearchSpec, SpecError
from scalearn.config import describe


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load's loader, refusing a key given twice in one mapping (YAML would keep the last, silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges are meant to be overridden
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, typing.Hashable) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, chain: tuple[Path, ...] = (), origins: dict[str, Path] | None = None) -> dict:
    """The file's mapping, with what it includes under it (its top-level keys replace the included file's whole);
    ``origins``: top-level key → the file it came from, filled in."""
    if path in chain:
        raise SpecError(f"{path}:include: includes itself through {' → '.join(str(p) for p in chain)}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        byte = error.object[error.start]
        raise SpecError(f"{path}: not UTF-8 text (byte {byte:#04x} at offset {error.start})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as error:
        mark, context = getattr(error, "problem_mark", None), getattr(error, "context_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        problem = getattr(error, "problem", None) or "invalid YAML"
        opened = f" ({error.context} at line {context.line + 1})" if context is not None and error.context else ""
        raise SpecError(f"{path}:{where}: YAML syntax: {problem}{opened}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the file must hold a mapping of keys (expected `key: value` lines)")
    own = list(data)
    include = data.get("include")
    if include is not None:
        if not isinstance(include, str):
            raise SpecError(f"{path}:include: expected a file name")
        base = _read_yaml((path.parent / include).resolve(), (*chain, path), origins)
        data = {**base, **data}
    if origins is not None:
        origins.update({str(key): path for key in own})
    return data


_TYPE_TAGS = {"int", "float", "str", "bool"}


def _is_type_tag(part) -> bool:
    """Pydantic puts the member type of a union into the location (``seeds.int``); users do not need it."""
    if not isinstance(part, str):
        return False
    return part in _TYPE_TAGS or "[" in part or part.startswith(("constrained-", "function-"))


def _field_at(location: list) -> tuple[Any, list] | None:
    """(annotation, constraints) of the field a location names, from the spec's own models; None if unknown."""

    annotation, metadata = ExperimentSpec, []
    for part in location:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(str(part))
            if info is None:
                return None
            annotation, metadata = info.annotation, list(info.metadata)
            continue
        members = [annotation, *typing.get_args(annotation)]
        containers = [m for m in members if typing.get_origin(m) in (dict, list)]
        if not containers:
            return None
        container = containers[0]
        annotation, metadata = typing.get_args(container)[-1], []
    return annotation, metadata


def _format(path: Path, error: dict, fields: list[str], all_errors: list[dict]) -> str:

    parts = [part for part in error["loc"] if not _is_type_tag(part)]
    location = ".".join(str(part) for part in parts) or "(top level)"
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1]), fields, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{path}:{location}: unknown key{hint} (expected one of {', '.join(fields)})"
    if kind == "missing":
        return f"{path}:{location}: missing (required)"
    if location == "version":
        return f"{path}:version: version {error.get('input')!r} is not supported (expected {SPEC_VERSION})"
    if parts[:1] == ["search"] and len(parts) >= 2 and parts[1] not in SearchSpec.model_fields:
        settings = [name for name in SearchSpec.model_fields if not name.startswith("_")]
        close = difflib.get_close_matches(str(parts[1]), settings, n=1, cutoff=0.75)
        if close and not isinstance(error.get("input"), dict):  # a misspelled setting, not a method's space
            return f"{path}:search.{parts[1]}: unknown key; did you mean {close[0]!r}? (expected {', '.join(settings)})"
        return f"{path}:{_search_value_error(error, parts, all_errors)}"
    field = _field_at(parts) if not kind.startswith("value_error") else None
    if field is not None:
        return f"{path}:{location}: must be {describe(*field)} (got {error.get('input')!r})"
    message = message.removeprefix("Value error, ")
    return f"{path}:{location}: {message}"


_SEARCH_VALUES = "a non-empty list of values, or a range {low: …, high: …, log: true|false}"


def _search_value_error(error: dict, parts: list, all_errors: list[dict]) -> str:
    """A method's block of `search:`: the error of the union member the user meant (a list or a range)."""
    if len(parts) == 2:
        return f"search.{parts[1]}: must be a mapping of hyper-parameters to {_SEARCH_VALUES} (got {error['input']!r})"
    where = ".".join(str(part) for part in parts[:3])
    value = error["input"] if len(parts) == 3 else None
    in_range = [e for e in all_errors if [p for p in e["loc"] if not _is_type_tag(p)][:3] == parts[:3]]
    in_range = [e for e in in_range if any("Range" in str(p) for p in e["loc"])]
    if in_range and not (len(parts) == 3 and isinstance(value, list)):
        first = in_range[0]
        inner = [str(p) for p in first["loc"] if not _is_type_tag(p)][3:]
        if first["type"] == "extra_forbidden":
            return f"{where}.{inner[0]}: unknown key (expected one of low, high, log)"
        if first["type"] == "missing":
            return f"{where}.{inner[0]}: missing (a range needs low and high)"
        if first["type"] != "model_type":
            spot = ".".join([where, *inner])
            if first["type"] == "value_error":  # Range's own check, which names what it got
                return f"{spot}: {first['msg'].removeprefix('Value error, ')}"
            return f"{spot}: {first['msg']} (got {first.get('input')!r})"
    return f"{where}: must be {_SEARCH_VALUES} (got {value!r})"


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """``KEY=VALUE`` of ``--set``: the dotted key of the file's schema (a number indexes a list) and the value
    as YAML reads it (``0`` a number, ``[rte, cb]`` a list, ``{cpus: 1}`` a mapping)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"--set {text}: expected KEY=VALUE, e.g. --set resources.gpus=0")
    parts = [int(part) if part.isdigit() else part for part in key.strip().split(".")]
    if isinstance(parts[0], int):
        raise SpecError(f"--set {text}: a key of the file is a name, not a number (e.g. --set seeds=3)")
    if any(part == "" for part in parts):
        raise SpecError(f"--set {text}: the key has an empty part (expected e.g. hyperparameters.all.epochs)")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        raise SpecError(f"--set {text}: the value is not valid YAML") from None
    return parts, parsed


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict[str, str]:
    """Set each ``--set KEY=VALUE`` in ``data`` (the file as read, includes merged), as if the file said so;
    returns dotted key → the flag's text, to name the flag in an error about what it set."""
    applied = {}
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for depth, part in enumerate(parts[:-1]):
            here = ".".join(map(str, parts[: depth + 1]))
            if isinstance(node, list) and isinstance(part, int):
                if part >= len(node):
                    raise SpecError(f"--set {text}: {here} is past the end of the list ({len(node)} items)")
                node = node[part]
                continue
            if not isinstance(node, dict):
                raise SpecError(f"--set {text}: {here.rpartition('.')[0] or here} is not a mapping")
            if node.get(part) is None:
                node[part] = {}
            elif not isinstance(node[part], dict | list):
                raise SpecError(f"--set {text}: {here} is the value {node[part]!r}, not a mapping or a list")
            node = node[part]
        last = parts[-1]
        in_list = isinstance(node, list) and isinstance(last, int) and last < len(node)
        where = ".".join(map(str, parts[:-1]))
        if in_list or isinstance(node, dict):
            node[last] = value
        elif isinstance(node, list):
            raise SpecError(f"--set {text}: {where} is a list; index it with a number below {len(node)}")
        else:
            raise SpecError(f"--set {text}: {where} is the value {node!r}, not a mapping or a list")
        applied[".".join(map(str, parts))] = text
    return applied


def _blame(line: str, path: Path, applied: dict[str, str]) -> str:
    """An error about a value a ``--set`` gave names the flag, not the file."""
    head = f"{path}:"
    if not applied or not line.startswith(head):
        return line
    location, _, message = line[len(head) :].partition(": ")
    for key, text in applied.items():
        if location == key or key.startswith(location + "."):
            return f"--set {text}: {message}"
        if location.startswith(key + "."):
            return f"--set {text}: {location}: {message}"
    return line


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentSpec:
    """The validated spec of an experiment file, with ``overrides`` (``--set KEY=VALUE``) applied as if the
    file said them; raises SpecError with one line on any problem, naming the file's key or the flag."""
    path = Path(path)
    origins: dict[str, Path] = {}
    data = _read_yaml(path.resolve(), origins=origins)
    data.pop("include", None)
    applied = apply_overrides(data, overrides)

    def named(location) -> Path:  # the file a top-level key came from: this one, or one it includes
        top = str(location[0]) if isinstance(location, tuple | list) and location else str(location).split(".")[0]
        origin = origins.get(top)
        return path if origin is None or origin == path.resolve() else origin

    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        fields = list(ExperimentSpec.model_fields)
        parent = _field_at([part for part in first["loc"][:-1] if not _is_type_tag(part)])
        if parent is not None and isinstance(parent[0], type) and issubclass(parent[0], BaseModel):
            fields = list(parent[0].model_fields)  # the keys of the block the unknown one is in
        where = named(first["loc"])
        raise SpecError(_blame(_format(where, first, fields, error.errors()), where, applied)) from None
    _narrow_search(spec, applied)
    errors = semantic_errors(spec)
    if errors:
        location, message = errors[0]
        where = named(location)
        raise SpecError(_blame(f"{where}:{location}: {message}", where, applied))
    if spec.name is None:
        spec.name = path.stem
    spec._origins = {key: str(named((key,))) for key in data}
    _resolve_source_paths(spec, named(("source_adapters",)).resolve().parent)
    return spec


def _narrow_search(spec: ExperimentSpec, applied: dict[str, str]) -> None:
    """`--set methods=[…]` narrows an experiment to some of its methods: the file's search spaces of the methods
    that no longer train go with them, as the file would say had it listed only those. A space the flags set
    themselves (`--set search.<method>…`) stays, and must still name a method that trains."""
    if "methods" not in applied:
        return
    trained = set(spec.trained_methods())
    extra = spec.search.__pydantic_extra__ or {}
    for owner in list(extra):
        set_by_flag = any(key == f"search.{owner}" or key.startswith(f"search.{owner}.") for key in applied)
        if owner != "all" and owner not in trained and not set_by_flag:
            del extra[owner]


def _resolve_source_paths(spec: ExperimentSpec, folder: Path) -> None:
    """A relative folder in `source_adapters` is relative to the experiment file; a hub id stays as it is."""

    def resolved(value: str) -> str:
        candidate = Path(value).expanduser()
        if not candidate.is_absolute() and (folder / candidate).exists():
            return str(folder / candidate)
        return str(candidate) if candidate.is_absolute() or candidate.exists() else value

    for task, given in spec.source_adapters.items():
        if isinstance(given, dict):
            spec.source_adapters[task] = {model: resolved(value) for model, value in given.items()}
        else:
            spec.source_adapters[task] = resolved(given)

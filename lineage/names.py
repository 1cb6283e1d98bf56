"""Validation of everything a user names: projects, artifacts, aliases, refs, paths, metadata.

Text a user gives (descriptions, notes, metadata, config, summaries: keys and values at any
depth) may not hold a lone surrogate (``"\ud800"``, what undecodable bytes become): no store
keeps it as UTF-8, so :func:`check_text` refuses it at the door, naming the field and the
position. Text lineage derives itself (a run's error, from an exception) is stored
:func:`escaped` instead, so the user's exception is never replaced.

A ref names one artifact version::

    name            -> name:latest in the default project
    name:v3         -> version 3
    name:production -> whichever version holds the alias
    project/name:v3 -> fully qualified; ``str(Ref)`` is always this form
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lineage.errors import InvalidInput, InvalidMetadata, InvalidName, InvalidPath, InvalidRef
from lineage.moments import parse_time

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_NAME_LENGTH",
    "Ref",
    "check_alias",
    "check_json",
    "check_manifest_path",
    "check_name",
    "check_text",
    "escaped",
    "json_value",
    "parse_ref",
    "quoted",
]

MAX_NAME_LENGTH = 128
MAX_METADATA_BYTES = 256 * 1024
MAX_METADATA_DEPTH = 16
MAX_PATH_LENGTH = 4096

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_VERSION = re.compile(r"v(0|[1-9][0-9]*)")


def check_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it is a valid project, artifact or job name, else raise InvalidName."""
    if not isinstance(value, str) or not value:
        raise InvalidName(f"{what} must be a non-empty string, got {value!r}", value=value)
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidName(
            f"{what} {value[:40]!r}... is {len(value)} characters; "
            f"at most {MAX_NAME_LENGTH} allowed",
            value=value,
        )
    if not _NAME.fullmatch(value) or value in (".", ".."):
        raise InvalidName(
            f"invalid {what} {value!r}: use letters, digits, '_', '.' and '-' only", value=value
        )
    return value


def check_alias(value: object) -> str:
    """An alias is a name that cannot be mistaken for a version number."""
    alias = check_name(value, "alias")
    if _VERSION.fullmatch(alias):
        raise InvalidName(
            f"invalid alias {alias!r}: 'v<number>' is reserved for versions", value=alias
        )
    return alias


@dataclass(frozen=True, kw_only=True)
class Ref:
    """A parsed reference to one artifact version, by index or by alias."""

    project: str
    name: str
    index: int | None = None
    alias: str | None = None
    as_of: float | None = None  # REF@TIME: the version the ref named then

    @property
    def selector(self) -> str:
        return f"v{self.index}" if self.index is not None else str(self.alias)

    def __str__(self) -> str:
        return f"{self.project}/{self.name}:{self.selector}"


QUOTED = 80  # characters of a ref an error quotes; a longer one is cut


def quoted(text: str) -> str:
    """``text`` as an error quotes it: its repr, cut after :data:`QUOTED` characters and
    followed by its length (a 10 KB ref is not echoed whole)."""
    if len(text) <= QUOTED:
        return repr(text)
    return f"{text[:QUOTED]!r}... ({len(text):,} characters)"


def parse_ref(text: object, default_project: str | None = None) -> Ref:
    """Parse ``[project/]name[:vN|:alias][@TIME]``; a bare name means ``name:latest``;
    ``@TIME`` (:func:`lineage.moments.parse_time`) asks for what the ref named then."""
    if not isinstance(text, str) or not text:
        shown = quoted(text) if isinstance(text, str) else f"{text!r:.{QUOTED}}"
        raise InvalidRef(f"a ref must be a non-empty string, got {shown}", ref=text)
    if "@" in text:
        head, _, moment = text.partition("@")
        try:
            at = parse_time(moment)
        except InvalidInput as exc:
            raise InvalidRef(f"invalid ref {quoted(text)}: {exc}", ref=text) from None
        return dataclasses.replace(parse_ref(head, default_project), as_of=at)
    body, _, selector = text.partition(":")
    if ":" in selector:
        raise InvalidRef(
            f"invalid ref {quoted(text)}: expected [project/]name[:vN|:alias]", ref=text
        )
    project, slash, name = body.rpartition("/")
    if not slash:
        project = default_project or ""
        if not project:
            fix = f"project/{text}" if len(text) <= QUOTED else "project/<name>"
            raise InvalidRef(
                f"ref {quoted(text)} names no project and none is set: write {fix!r}", ref=text
            )
    try:
        check_name(project, "project")
        check_name(name, "artifact name")
    except InvalidName as exc:
        raise InvalidRef(f"invalid ref {quoted(text)}: {exc}", ref=text) from None
    selector = selector or "latest"
    match = _VERSION.fullmatch(selector)
    if match:
        return Ref(project=project, name=name, index=int(match.group(1)))
    try:
        check_name(selector, "alias")
    except InvalidName as exc:
        raise InvalidRef(f"invalid ref {quoted(text)}: {exc}", ref=text) from None
    return Ref(project=project, name=name, alias=selector)


def check_manifest_path(path: object) -> str:
    """A path inside an artifact: relative, '/'-separated, no '..', no NUL, no empty parts."""
    if not isinstance(path, str) or not path:
        raise InvalidPath(f"file name must be a non-empty string, got {path!r}", path=path)
    if "\x00" in path:
        raise InvalidPath(f"file name {path!r} contains a NUL byte", path=path)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidPath(f"file name is longer than {MAX_PATH_LENGTH} characters", path=path)
    if path.startswith("/") or re.match(r"[A-Za-z]:[\\/]", path):
        raise InvalidPath(
            f"file name {path!r} is absolute; names inside an artifact are relative", path=path
        )
    if "\\" in path:
        raise InvalidPath(f"file name {path!r} contains '\\'; use '/' between folders", path=path)
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidPath(
            f"file name {path!r} has an empty, '.' or '..' part; it must stay inside the artifact",
            path=path,
        )
    return path


def check_json(value: Any, what: str = "metadata") -> dict[str, Any]:
    """A JSON object of bounded size and depth with string keys, as plain Python values.

    What ML code logs is taken as meant: a numpy or torch scalar (anything whose ``.item()``
    gives a Python number, string or bool: a size-1 array too) becomes that value, and NaN,
    ``inf`` and ``-inf`` are kept (as the JSON text ``NaN``, ``Infinity``, ``-Infinity``). Keys
    come back sorted, tuples as lists.

    >>> check_json({"loss": float("nan"), "lr": numpy.float32(0.5)}, "summary")
    {'loss': nan, 'lr': 0.5}
    """
    if type(value) is dict:  # JSON as json.loads makes it: checked in one quick pass
        quick = _quick_json(value)
        if quick is not None:
            return quick
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidMetadata(
            f"{what} must be a dict, got {type(value).__name__}", value_type=type(value).__name__
        )
    plain: dict[str, Any] = _plain(value, what, 0)
    check_text(plain, what)
    size = len(json.dumps(plain).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidMetadata(
            f"{what} is {size} bytes as JSON; at most {MAX_METADATA_BYTES} allowed"
        )
    return plain


class _NotQuick(Exception):
    pass


def _quick_json(value: dict[str, Any]) -> dict[str, Any] | None:
    """What :func:`check_json` makes of plain ASCII JSON within the limits (exact types, not
    ABCs; one encoding instead of two: a third of the time), or None for anything else,
    which the full check takes, and words any refusal of."""
    try:
        plain = _quick(value, 0)
        text = json.dumps(plain, ensure_ascii=False)
    except (_NotQuick, TypeError, ValueError, RecursionError):
        return None
    # ASCII: the text check_json measures, and no lone surrogate
    if not text.isascii() or len(text) > MAX_METADATA_BYTES:
        return None
    return plain  # type: ignore[no-any-return]


def _quick(value: Any, depth: int) -> Any:
    # a leaf is copied where it is met, not in a call of its own: most values are leaves
    if depth > MAX_METADATA_DEPTH:
        raise _NotQuick
    kind = type(value)
    if depth >= MAX_METADATA_DEPTH and (kind is dict or kind is list) and value:
        raise _NotQuick  # its items are deeper than allowed, leaves too
    if kind is dict:
        out = {}
        for key in sorted(value):  # mixed key types raise TypeError: not quick
            if type(key) is not str:
                raise _NotQuick
            item = value[key]
            kind = type(item)
            if kind is str or kind is int or kind is float or kind is bool or item is None:
                out[key] = item
            else:
                out[key] = _quick(item, depth + 1)
        return out
    if kind is list:
        items = []
        for item in value:
            kind = type(item)
            if kind is str or kind is int or kind is float or kind is bool or item is None:
                items.append(item)
            else:
                items.append(_quick(item, depth + 1))
        return items
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    raise _NotQuick


def json_value(value: Any) -> Any:
    """``json.dumps``' ``default=`` for what :func:`check_json` takes besides plain JSON (a
    numpy or torch scalar): its plain value. A client encoding values for a server uses it;
    the server checks them again."""
    return _plain(value, "value", 0)


def _plain(value: Any, what: str, depth: int) -> Any:
    """``value`` as plain JSON-able Python: dict, list, str, int, float, bool, None."""
    if depth > MAX_METADATA_DEPTH:
        raise InvalidMetadata(f"{what} nests deeper than {MAX_METADATA_DEPTH} levels")
    kind = type(value)
    if kind is str or kind is float or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise InvalidMetadata(f"{what} has a non-string key {key!r}")
        return {str.__str__(key): _plain(value[key], what, depth + 1) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_plain(item, what, depth + 1) for item in value]
    # subclasses (an IntEnum, numpy.float64, a str enum) as the plain value they hold
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    item = getattr(value, "item", None)
    if callable(item):  # numpy and torch scalars, size-1 arrays and tensors
        try:
            scalar = item()
        except (TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise InvalidMetadata(
                f"{what} holds a {kind.__name__} that is not one value ({exc}); log a number, "
                "or a list (.tolist())",
                value_type=kind.__name__,
            ) from None
        if type(scalar) in (str, int, float, bool):
            return scalar
    raise InvalidMetadata(
        f"{what} is not JSON-serialisable: {kind.__name__} value {value!r:.60}",
        value_type=kind.__name__,
    )


def check_text(value: Any, what: str) -> None:
    """Refuse ``value`` (a string, or dicts and lists holding strings, keys included, at any
    depth) if any of its text holds a lone surrogate; the error names ``what`` and where.

    >>> check_text({"a": [0, 1, 2, "x\ud800"]}, "metadata")
    Traceback (most recent call last):
    lineage.errors.InvalidInput: metadata["a"][3]: text holds a lone surrogate \ud800 ...
    """
    if _encodable(value):  # the common case, ~10x faster than looking at each string
        return
    found = _surrogate(value, what, 0)
    if found is not None:
        where, text = found
        bad = next(char for char in text if 0xD800 <= ord(char) <= 0xDFFF)
        raise InvalidInput(
            f"{where}: text holds a lone surrogate {escaped(bad)} (undecodable bytes?); "
            "give valid Unicode text",
            field=what,
            position=where,
        )


def _encodable(value: Any) -> bool:
    """Whether all the text of ``value`` (keys included) encodes as UTF-8, by one pass of
    the JSON encoder; False also when it cannot tell (a value JSON cannot hold)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    return True


def escaped(text: str) -> str:
    """``text`` with every lone surrogate written as its escape (``\udcff``): what lineage
    stores of text it derives itself (a run's error), which the user never chose."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _surrogate(value: Any, where: str, depth: int) -> tuple[str, str] | None:
    """Where in ``value`` the first text that UTF-8 cannot encode is, and that text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where, value
        return None
    if depth > MAX_METADATA_DEPTH + 1:  # deeper is refused for its depth, elsewhere
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            place = f"{where}[{_shown_key(key)}]"
            if isinstance(key, str) and _surrogate(key, place, depth) is not None:
                return f"{place} (its key)", key
            found = _surrogate(item, place, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _surrogate(item, f"{where}[{i}]", depth + 1)
            if found is not None:
                return found
    return None


def _shown_key(key: object) -> str:
    if not isinstance(key, str):
        return repr(key)
    return json.dumps(key)  # quoted, and a surrogate shown as its escape

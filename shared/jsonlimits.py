"""Parsing JSON from a box within limits: no payload reaches a model, the store or a log that
Python itself cannot handle (an integer of 5,000 digits raises ValueError; a 100,000-deep
list raises RecursionError; NaN is no JSON number), and every refusal carries a reason a
dead-letter table keeps.

``loads`` parses and checks a whole payload; ``check_shape`` checks part of one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_BYTES = 256 * 1024
"""The largest MQTT payload either side accepts."""

MAX_DEPTH = 12
"""Nesting of objects and lists (a batch's events' data needs 5)."""
MAX_INT_DIGITS = 32
"""Digits of one integer (an int64 has 19)."""
MAX_STRING_CHARS = 16 * 1024
"""Characters of one string or key."""
MAX_KEYS = 256
"""Keys of one object."""
MAX_ITEMS = 10_000
"""Items of one list."""


class CodecError(ValueError):
    """A payload that cannot be accepted; ``reason`` starts with a short category."""

    def __init__(self, category: str, detail: str) -> None:
        super().__init__(f"{category}: {detail}")
        self.category = category
        self.detail = detail

    @property
    def reason(self) -> str:
        return str(self)


@dataclass(frozen=True)
class _Refused:
    """An integer the parser would not make (Python refuses more than 4,300 digits): kept as
    a marker so that only the event holding it is refused, not its whole batch."""

    reason: str


def _int(text: str) -> int | _Refused:
    if len(text) > MAX_INT_DIGITS + 1:
        return _Refused(f"an integer of {len(text)} characters")
    return int(text)


_PLAIN = json.JSONDecoder()
_GUARDED = json.JSONDecoder(parse_int=_int)
"""For a payload the plain parser refused for a long integer: every integer through a check."""
_BIG = 10**MAX_INT_DIGITS
_CONTAINERS = (dict, list, _Refused)
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _text(value: str, surrogates: bool) -> None:
    if len(value) > MAX_STRING_CHARS:
        raise CodecError("limit", f"a string of {len(value)} characters")
    if surrogates and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # "\ud800" is valid JSON but no UTF-8 (nor any database)
            raise CodecError("not_json", "a string holds a lone surrogate") from None


def _number(value: int | float) -> None:
    if type(value) is float and value - value:  # NaN, Infinity, 1e400 (no JSON number)
        raise CodecError("limit", f"number {value} is out of range")
    if type(value) is int and not -_BIG < value < _BIG:
        raise CodecError("limit", f"an integer of more than {MAX_INT_DIGITS} digits")


def surrogate_escapes(payload: bytes) -> bool:
    """Whether ``payload`` holds a ``\\uD800``-``\\uDFFF`` escape, the only way a JSON text
    makes a lone surrogate (``check_shape``'s ``surrogates``)."""
    return b"\\u" in payload and _SURROGATE.search(payload) is not None


def check_shape(obj: Any, depth: int = 1, surrogates: bool = True) -> None:
    """Depth, keys, items, string sizes and numbers of parsed JSON (no recursion); ``depth``
    is where ``obj`` sits in its message. ``surrogates=False`` when the payload held no
    ``\\uD800``-``\\uDFFF`` escape (``surrogate_escapes``). Written for speed: it runs on
    every event the collector takes in."""
    if type(obj) is str:
        _text(obj, surrogates)
    elif type(obj) in (int, float):
        _number(obj)
    if not isinstance(obj, _CONTAINERS):
        return
    stack: list[tuple[Any, int]] = [(obj, depth)]
    pop, push, limit, big = stack.pop, stack.append, MAX_STRING_CHARS, _BIG
    while stack:
        value, depth = pop()
        kind = type(value)
        if kind is _Refused:
            raise CodecError("limit", value.reason)
        if depth > MAX_DEPTH:
            raise CodecError("limit", f"nested deeper than {MAX_DEPTH}")
        if len(value) > (MAX_KEYS if kind is dict else MAX_ITEMS):
            raise CodecError("limit", f"{len(value)} keys or items in one place")
        for key, item in value.items() if kind is dict else enumerate(value):
            if type(key) is str and (surrogates or len(key) > limit):
                _text(key, surrogates)
            t = type(item)
            if t is str:
                if surrogates or len(item) > limit:
                    _text(item, surrogates)
            elif t is float:
                if item - item:
                    _number(item)
            elif t is int:
                if not -big < item < big:
                    _number(item)
            elif isinstance(item, _CONTAINERS):
                push((item, depth + 1))


def loads(payload: bytes, *, shape: bool = True) -> Any:
    """Parse a box's JSON within the limits above; anything else raises ``CodecError``.
    With ``shape=False`` the caller checks the parts (``check_shape``) itself."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise CodecError("oversize", f"{len(payload)} bytes > limit {MAX_MESSAGE_BYTES}")
    try:
        text = payload.decode("utf-8")  # JSON between systems is UTF-8 (RFC 8259), not -16/-32
        try:
            obj = _PLAIN.decode(text)
        except json.JSONDecodeError:
            raise
        except ValueError:  # an integer of thousands of digits: refuse only its event
            obj = _GUARDED.decode(text)
    except RecursionError:
        raise CodecError("limit", f"nested deeper than {MAX_DEPTH}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError("not_json", str(exc)) from None
    except Exception as exc:  # whatever else the parser may raise on hostile bytes
        raise CodecError("not_json", f"{type(exc).__name__}: {exc}") from None
    if shape:
        check_shape(obj, surrogates=surrogate_escapes(payload))
    return obj


def raw_bytes(item: Any) -> bytes:
    """Parsed JSON as bytes again, for a dead letter (a refused value shown as its reason)."""

    def refused(value: Any) -> str:
        return f"<{value.reason}>" if isinstance(value, _Refused) else repr(value)

    try:
        text = json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=refused)
    except (ValueError, RecursionError):
        text = f"<a {type(item).__name__} too deep to keep>"
    return text.encode("utf-8", "replace")

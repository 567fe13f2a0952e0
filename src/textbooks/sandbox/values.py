"""Plain-data encoding of Python values between the harness and a sandboxed program.

Inputs go into the sandbox and outputs come back as JSON with type tags, never pickle: decoding a program's
output must not run any of its code. Only exact built-in types are encodable (`type(x) is int`, not
`isinstance`), so a returned object of a user class, including an `int` or `list` subclass whose `__eq__`
always says True, cannot be encoded and counts as a wrong answer instead of reaching the harness's `==`.

    encode((1, {2: "a"})) == {"tuple": [1, {"dict": [[2, "a"]]}]}
    decode(encode(value)) == value   # and type-exact, tuples stay tuples, sets stay sets
"""

from __future__ import annotations

import json
import math
from typing import Any

_MAX_DEPTH = 200


class Unencodable(TypeError):
    """The value holds something that is not plain built-in data."""


def encode(value: Any, depth: int = 0) -> Any:
    """A JSON-ready form of `value`: lists stay lists, other containers become one-key tagged objects."""
    if depth > _MAX_DEPTH:
        raise Unencodable("nested deeper than 200 levels")
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if kind is list:
        return [encode(item, depth + 1) for item in value]
    if kind is tuple:
        return {"tuple": [encode(item, depth + 1) for item in value]}
    if kind is dict:
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if kind is set or kind is frozenset:
        return {kind.__name__: [encode(item, depth + 1) for item in value]}
    if kind is complex:
        return {"complex": [repr(value.real), repr(value.imag)]}
    if kind is bytes:
        return {"bytes": value.hex()}
    raise Unencodable(f"a value of type {kind.__module__}.{kind.__qualname__} is not plain data")


def decode(data: Any) -> Any:
    """The value `encode` was given."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    if len(data) != 1:
        raise ValueError(f"not an encoded value: {data!r:.80}")
    ((tag, body),) = data.items()
    if tag == "tuple":
        return tuple(decode(item) for item in body)
    if tag == "dict":
        return {decode(k): decode(v) for k, v in body}
    if tag == "set":
        return {decode(item) for item in body}
    if tag == "frozenset":
        return frozenset(decode(item) for item in body)
    if tag == "float":
        return float(body)
    if tag == "complex":
        return complex(float(body[0]), float(body[1]))
    if tag == "bytes":
        return bytes.fromhex(body)
    raise ValueError(f"unknown tag {tag!r}")


def dumps(value: Any) -> str:
    """One line of JSON for `value` (raises `Unencodable` for non-plain data)."""
    return json.dumps(encode(value), separators=(",", ":"))


def loads(line: str) -> Any:
    return decode(json.loads(line))

"""Reading a judge's score out of its answer: JSON, "Score: 4", "4/5", or prose with one number in range.

    parse_score('{"score": 4, "reason": "clear"}')  -> (4.0, "clear")
    parse_score("Educational value: 3/5. Short but clear.")  -> (3.0, "Educational value: 3/5. Short but clear.")
    parse_score("no idea")  -> None

A number outside the scale, or prose with several different numbers in range and no "score" label, is not a
score: the caller asks again rather than guess.
"""

from __future__ import annotations

import json
import re

_NUMBER = r"(\d+(?:\.\d+)?)"
_LABELLED = re.compile(r"(?:score|rating|value|grade)\**\s*(?:is|of|:|=)?\s*\**\s*" + _NUMBER, re.IGNORECASE)
_FRACTION = re.compile(_NUMBER + r"\s*(?:/|out of)\s*" + _NUMBER, re.IGNORECASE)
_ANY_NUMBER = re.compile(r"(?<![\w.])" + _NUMBER + r"(?!\w|\.\d)")
REASON_CHARS = 500


def _in_scale(value: float, low: float, high: float) -> float | None:
    return value if low <= value <= high else None


def _from_json(text: str, low: float, high: float) -> tuple[float, str] | None:
    for match in re.finditer(r"\{[^{}]*\}", text, re.DOTALL):
        try:
            found = json.loads(match.group(0))
        except ValueError:
            continue
        if not isinstance(found, dict):
            continue
        value = next((found[key] for key in ("score", "rating", "educational_value") if key in found), None)
        try:
            score = _in_scale(float(value), low, high) if value is not None and not isinstance(value, bool) else None
        except (TypeError, ValueError):
            score = None
        if score is not None:
            reason = found.get("reason") or found.get("justification") or found.get("explanation") or ""
            return score, str(reason)[:REASON_CHARS]
    return None


def parse_score(text: str | None, low: float = 0, high: float = 5) -> tuple[float, str] | None:
    """(score, reason) from a judge's answer, or None when no score on the scale `low`..`high` can be read."""
    if not text or not text.strip():
        return None
    reason = " ".join(text.split())[:REASON_CHARS]
    found = _from_json(text, low, high)
    if found is not None:
        return found
    for match in _FRACTION.finditer(text):
        if float(match.group(2)) == high:
            score = _in_scale(float(match.group(1)), low, high)
            if score is not None:
                return score, reason
    for match in _LABELLED.finditer(text):
        score = _in_scale(float(match.group(1)), low, high)
        if score is not None:
            return score, reason
    numbers = {float(match.group(1)) for match in _ANY_NUMBER.finditer(text)}
    in_scale = {number for number in numbers if low <= number <= high}
    if len(in_scale) == 1:
        return in_scale.pop(), reason
    return None

"""A judge's answer -> component scores, its own overall and critical failures, or why not.

The Foundry campaign lost scores to the judge's *format*: a missing ``overall_score`` read as 0.0,
missing commas between entries, code fences and prose around the object, long justifications
cut at ``max_tokens``. Parsing here is forgiving about format and strict about content: the
object must hold a number for every component named in ``[judge] weights`` (at top level or
under ``"scores"``), or the answer is a parse failure — never a 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import json_repair

from engine.bench.score import extract_json_object
from engine.store.numbers import is_number

OVERALL_KEYS = ("overall_score", "overall")
CRITICAL_KEYS = ("critical_failures", "critical_failure")
_NUMBER_TEXT = re.compile(r"^\s*(-?\d+(?:[.,]\d+)?)\s*(?:/\s*10)?\s*$")
# The scale tunedeck's answer format asks for (engine.bench.judge_rubric.FORMAT): an 11 or a -3 is
# the judge off its rubric, not a score to average.
SCALE = (0.0, 10.0)
# Beyond any scale: a 1e308 "score" would overflow the weighted overall to infinity.
MAX_ABS_SCORE = 1e6
# A verdict is a few hundred characters. Past these sizes an answer is not parsed (the bench
# layer's extraction takes seconds on megabytes) or not repaired (json-repair, on deeply nested
# braces, takes seconds on tens of kilobytes).
MAX_VERDICT_CHARS = 1 << 20
MAX_REPAIR_CHARS = 32 << 10
_FENCE_BODY = re.compile(r"```[ \t]*[A-Za-z0-9_+.-]*[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    """What one judge answer says about one answer."""

    scores: dict[str, float]
    judge_overall: float | None
    critical_failures: list[str] = field(default_factory=list)


class VerdictError(ValueError):
    """The judge's answer holds no object with the rubric's fields (one line saying which)."""


def to_number(value: Any) -> float | None:
    """A finite score from a JSON value: a number, or text like ``"8.5"``, ``"8,5"``, ``"8/10"``."""
    if is_number(value):
        number = float(value)
    elif isinstance(value, str) and (match := _NUMBER_TEXT.match(value)):
        number = float(match.group(1).replace(",", "."))
    else:
        return None
    return number if math.isfinite(number) and abs(number) <= MAX_ABS_SCORE else None


def _lookup(obj: dict[str, Any], name: str) -> Any:
    if name in obj:
        return obj[name]
    lowered = {str(key).lower(): value for key, value in obj.items()}
    return lowered.get(name.lower())


def _components(obj: dict[str, Any], names: list[str]) -> tuple[dict[str, float], list[str]]:
    """The rubric's components found in ``obj`` (top level first, then ``"scores"``) and those missing."""
    nested = obj.get("scores")
    places = [obj, nested] if isinstance(nested, dict) else [obj]
    found: dict[str, float] = {}
    for name in names:
        for place in places:
            value = _lookup(place, name)
            if isinstance(value, dict):  # {"voice": {"score": 8, "reason": "..."}}
                value = value.get("score")
            number = to_number(value)
            if number is not None:
                found[name] = number
                break
    return found, [name for name in names if name not in found]


def _critical(obj: dict[str, Any]) -> list[str]:
    for key in CRITICAL_KEYS:
        value = obj.get(key)
        if isinstance(value, list):
            return [str(item) for item in value if item not in (None, "", False)]
        if value is True:
            return ["critical failure"]
        if isinstance(value, str) and value.strip() and value.strip().lower() not in ("none", "no", "false"):
            return [value.strip()]
        if is_number(value) and value > 0:
            return [f"{value:g} critical failures"]
    return []


def _overall(obj: dict[str, Any]) -> float | None:
    for key in OVERALL_KEYS:
        number = to_number(obj.get(key))
        if number is not None:
            return number
    return None


def _repaired_candidates(text: str) -> list[dict[str, Any]]:
    """Objects json-repair makes of each fenced block and of the text from its first ``{``."""
    pieces = [body for body in _FENCE_BODY.findall(text)] + [text]
    out: list[dict[str, Any]] = []
    for piece in pieces:
        start = piece.find("{")
        if start < 0:
            continue
        try:
            value = json_repair.repair_json(piece[start:], return_objects=True)
        except Exception:  # noqa: BLE001 - a repair library's failure is one more unparseable answer
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def parse_verdict(
    text: str, components: list[str], *, repair: bool = True, scale: tuple[float, float] | None = None
) -> Verdict:
    """The verdict in a judge's answer, or ``VerdictError`` naming the missing components.

    Tries the bench layer's own extraction first (fences, prose, trailing commas, PT-BR decimal
    commas), then json-repair for structural damage (missing commas, unclosed braces); a repaired
    object counts only when it has every component. ``repair=False`` skips json-repair. With
    ``scale``, a component outside it makes the answer a failure too.
    """
    if len(text) > MAX_VERDICT_CHARS:
        raise VerdictError(f"the judge's answer is {len(text):,} characters, over {MAX_VERDICT_CHARS:,}: not read")
    first = extract_json_object(text)
    repairable = repair and len(text) <= MAX_REPAIR_CHARS
    candidates = ([first] if first is not None else []) + (_repaired_candidates(text) if repairable else [])
    if not candidates:
        raise VerdictError("no JSON object in the judge's answer")
    best_missing: list[str] = components
    for obj in candidates:
        scores, missing = _components(obj, components)
        if not missing:
            _check_scale(scores, scale)
            return Verdict(scores=scores, judge_overall=_overall(obj), critical_failures=_critical(obj))
        if len(missing) < len(best_missing):
            best_missing = missing
    raise VerdictError(f"the judge's object has no number for {', '.join(best_missing)}")


def _check_scale(scores: dict[str, float], scale: tuple[float, float] | None) -> None:
    if scale is None:
        return
    low, high = scale
    outside = [f"{name} = {value:g}" for name, value in scores.items() if not low <= value <= high]
    if outside:
        raise VerdictError(f"the judge's {', '.join(outside)} is outside the rubric's {low:g}-{high:g}")


def weighted_overall(scores: dict[str, float], weights: dict[str, float]) -> float:
    """tunedeck's overall: the weights' average of the components (never the judge's own)."""
    total = sum(weights.values())
    return round(sum(weights[name] * scores[name] for name in weights) / total, 6)

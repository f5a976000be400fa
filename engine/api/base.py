"""What every API shape shares: unknown keys are refused, and non-finite floats stay JSON."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema


class ApiModel(BaseModel):
    """Base of the engine's API shapes: a key the model does not declare is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


def _json_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


# A float that may be NaN or ±inf (HF logs them): in JSON it is the string "NaN", "Infinity"
# or "-Infinity", which strict JSON parsers accept and pydantic reads back as the float.
JsonFloat = Annotated[
    float,
    PlainSerializer(_json_float, return_type=float | str, when_used="json"),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}),
]

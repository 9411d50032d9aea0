"""The JSON form of a request dataclass: reading it (``from_dict``), writing it (``to_dict``) and checking that
every field holds the JSON type its annotation names (``check_field_types``). Values from a request file, the
worker's wire or the app are never trusted: a wrong type is an ``InputError`` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, TypeVar

from rdtf_engine.core.errors import InputError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    if not isinstance(data, dict):
        raise InputError(f"a {cls.__name__} must be a JSON object, got {type(data).__name__}")
    if "from_dict" in vars(cls):  # a request with parts (TrainRequest) reads itself, old flat forms included
        return cls.from_dict(data)  # type: ignore[attr-defined]
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    missing = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
               if f.name not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise InputError(f"{cls.__name__} is missing {', '.join(missing)}")
    return cls(**{k: v for k, v in data.items() if k in names})


_KINDS = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None), "list": list, "dict": dict}


def check_field_types(obj: Any) -> None:
    """Every field of a request dataclass has the JSON type its annotation names (ints within 64 bits, floats
    finite), else InputError naming the field: values from a request file or the app are never trusted."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        outer = re.sub(r"\[.*\]", "", str(f.type))  # "list[str | None] | None" → "list | None": the "|" inside
        kinds = {_KINDS.get(part.strip(), object) for part in outer.split("|")}  # brackets is not a union of the field
        if object in kinds:
            continue
        ok = any(isinstance(value, k) and not (k is int and isinstance(value, bool) and bool not in kinds)
                 for k in kinds)
        if not ok and float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True  # JSON has one number type: 2 is a fine learning rate of 2.0
        if not ok:
            want = " or ".join(sorted(k.__name__ for k in kinds)).replace("NoneType", "null")
            raise InputError(f"{f.name} must be {want}, got {type(value).__name__}")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
            raise InputError(f"{f.name} is out of range: {value}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{f.name} must be a finite number, got {value}")


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


__all__ = ["check_field_types", "from_dict", "to_dict"]

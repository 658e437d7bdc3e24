"""Shared helpers: array coercion, JSON-safe conversion, a to_dict mixin."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
T = TypeVar("T")


def as_float_array(values: npt.ArrayLike, name: str) -> FloatArray:
    """A 1-D float64 copy-free view of ``values``; refuses other shapes."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def same_length(**arrays: npt.NDArray[Any]) -> int:
    """The common length of the named arrays; raises naming the odd one out."""
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays differ in length: {lengths}")
    return next(iter(lengths.values()), 0)


def json_safe(value: Any) -> Any:
    """Floats, ints, strings, lists and dicts only; NaN and ±inf become None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            boxed = value.astype(object)
            boxed[~np.isfinite(value)] = None
            return boxed.tolist()
        return [json_safe(item) for item in value.tolist()]
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    return value


def _decode(annotation: Any, value: Any) -> Any:
    """``value`` read back from JSON as ``annotation`` says: the inverse of ``json_safe``."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        kinds = [a for a in arguments if a is not type(None)]
        return _decode(kinds[0], value) if len(kinds) == 1 else value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return from_json(annotation, value)
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_decode(arguments[0], item) for item in value)
        return tuple(_decode(a, item) for a, item in zip(arguments, value, strict=True))
    if origin is dict:
        return dict(value)
    if annotation is float:
        return math.nan if value is None else float(value)  # json_safe stored NaN as null
    if annotation is int:
        return int(value)
    if annotation is bool:
        return bool(value)
    return value


def from_json(cls: type[T], data: dict[str, Any]) -> T:
    """A frozen result dataclass from its ``to_dict()``; keys it does not name are ignored.

    A float the dict lacks reads as NaN, the value ``to_dict`` writes as null for a figure
    not computed; any other missing field without a default is refused, naming it.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name in data:
            values[field.name] = _decode(hints[field.name], data[field.name])
        elif hints[field.name] is float:
            values[field.name] = math.nan
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ValueError(f"{cls.__name__}: the stored report has no {field.name!r}")
    return cls(**values)


class ToDict:
    """Mixin for frozen result dataclasses: ``to_dict()`` gives JSON-safe values."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        result = json_safe(self)
        assert isinstance(result, dict)
        return result


def fmt_p(p_value: float) -> str:
    """A p-value as people read it: ``p = 0.41``, ``p < 0.0001``."""
    if not math.isfinite(p_value):
        return "p undefined"
    if p_value < 1e-4:
        return "p < 0.0001"
    return f"p = {p_value:.4f}" if p_value < 0.01 else f"p = {p_value:.2f}"

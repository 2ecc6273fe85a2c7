"""The one JSON encoder: every result type we emit is JSON-safe by construction (issue 11, item 4)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from trt_tui.core import jsonio


class Colour(enum.Enum):
    RED = "red"


@dataclass
class Point:
    x: float
    y: np.float32


def test_numpy_scalars_arrays_paths_enums_dataclasses():
    payload = {
        "flag": np.bool_(True), "n": np.int64(3), "f": np.float32(0.5), "arr": np.arange(3),
        "path": Path("/tmp/x"), "colour": Colour.RED, "pt": Point(1.0, np.float32(2.0)), "t": (1, 2),
        "s": {3, 1}, 7: "int key",
    }  # fmt: skip
    out = json.loads(jsonio.dumps(payload))
    assert out == {"flag": True, "n": 3, "f": 0.5, "arr": [0, 1, 2], "path": "/tmp/x", "colour": "red",
                   "pt": {"x": 1.0, "y": 2.0}, "t": [1, 2], "s": [1, 3], "7": "int key"}  # fmt: skip
    assert type(out["flag"]) is bool


def test_non_finite_floats_are_null_strict_json():
    text = jsonio.dumps({"a": float("nan"), "b": np.float64("inf"), "c": [np.float16("-inf")]})
    assert json.loads(text) == {"a": None, "b": None, "c": [None]}
    assert "NaN" not in text and "Infinity" not in text


def test_unknown_objects_fail_loudly_not_as_str():
    with pytest.raises(TypeError, match="cannot encode object"):
        jsonio.dumps({"x": object()})


def test_one_line_from_writes_deep_containers_one_per_line():
    """The same JSON as full indenting; containers at that depth (a comparison's rows) on one line each."""
    import numpy as np

    value = {"schema": "x", "rows": [{"a": 1, "b": [1.5, float("nan")], "c": {"d": np.float32(2)}}, {"a": 2}], "empty": [],
             "meta": {"k": [1, 2]}}  # fmt: skip
    text = jsonio.dumps(value, indent=1, one_line_from=2)
    assert json.loads(text) == json.loads(jsonio.dumps(value, indent=1))
    lines = text.splitlines()
    assert ' {"a": 1, "b": [1.5, null], "c": {"d": 2.0}},' in [line[1:] for line in lines]
    assert lines[0] == "{" and lines[-1] == "}" and ' "empty": [],' in lines
    assert jsonio.dumps(value, indent=2, one_line_from=0) == json.dumps(json.loads(text))
    assert json.loads(jsonio.dumps(value, indent=1, one_line_from=5, sort_keys=True)) == json.loads(text)

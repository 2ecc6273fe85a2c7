"""Issue 12 items 7, 8, 10 and 11 on the preset side: non-finite numbers, absurd sizes, deep nesting, non-files,
and validation that stays linear in the number of pinned names."""

from __future__ import annotations

import json
import os
import time

import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.preset import load_preset, validate_preset


@pytest.mark.parametrize("value", ["nan", "-nan", "inf", "-inf", "+inf"])
@pytest.mark.parametrize("key", ["atol", "rtol", "quantile"])
def test_non_finite_tolerances_are_refused(write_preset, key, value):
    text = f'model = "m.onnx"\n[comparison.default]\n{key} = {value}\n'
    with pytest.raises(UserError, match="expected a finite number"):
        load_preset(write_preset(text))
    text = f'model = "m.onnx"\n[[comparison.outputs]]\npattern = "y"\n{key} = {value}\n'
    with pytest.raises(UserError, match="expected a finite number"):
        load_preset(write_preset(text))


@pytest.mark.parametrize(
    "section",
    [
        "[[profiles]]\nbatch = 100000000000000000000000000000000",
        "[[profiles]]\ndims = { T = 100000000000000000000000000000000 }",
        "[[profiles]]\n[profiles.shapes.x]\nmin = [1]\nopt = [1]\nmax = [100000000000000000000000000000000]",
        "[builder]\noptimization_level = 100000000000000000000000000000000000000",
    ],
)
def test_absurd_integers_are_refused_when_read(write_preset, section):
    with pytest.raises(UserError, match="expected"):
        load_preset(write_preset(f'model = "m.onnx"\n{section}\n'))


def test_negative_seed_is_a_validation_error(write_preset, demo_model, demo_index):
    preset = load_preset(write_preset('model = "{model}"\n[comparison]\nseed = -1\n', demo_model))
    assert any(p.key_path == "comparison.seed" and p.is_error for p in validate_preset(preset, demo_index))


def test_deeply_nested_toml_is_one_line(write_preset):
    with pytest.raises(UserError, match="nested too deeply"):
        load_preset(write_preset("x = " + "[" * 100_000 + "]" * 100_000 + "\n"))


def test_fifo_and_devices_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "p.toml"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="FIFO"):
        load_preset(fifo)
    with pytest.raises(UserError, match="device"):
        load_preset("/dev/zero")


def test_twenty_thousand_unknown_pin_names_validate_in_linear_time(write_preset, models):
    """Was quadratic (a list membership test per problem, difflib over every name): 20k names took 38 s."""
    names = [f"/blocks.{i}/NoSuchNode" for i in range(20_000)]
    path = write_preset('model = "{model}"\n[pins]\nnames = ' + json.dumps(names) + "\n", models["wide_1200"])
    started = time.perf_counter()
    problems = validate_preset(load_preset(path))
    elapsed = time.perf_counter() - started
    assert sum(p.key_path == "pins.names" for p in problems) == 20_000
    assert elapsed < 10, f"{elapsed:.1f} s"

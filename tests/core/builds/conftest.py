# This folder is "builds", not "build": pytest never collects a folder named build (norecursedirs).
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from trt_tui.core.build.manager import JobManager
from trt_tui.core.build.procinfo import group_members
from trt_tui.core.build.types import BuildRequest
from trt_tui.core.engine_spec import EngineSpec

HERE = Path(__file__).parent
FAKE_TRTEXEC = HERE / "bin" / "trtexec"  # a test double, see fake_trtexec.py


@pytest.fixture
def fake_trtexec(monkeypatch) -> Path:
    """Point the trtexec backend at the stand-in executable, in its default (successful) mode."""
    for key in list(os.environ):
        if key.startswith("FAKE_TRTEXEC_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TRT_TUI_TRTEXEC", str(FAKE_TRTEXEC))
    monkeypatch.setenv("FAKE_TRTEXEC_PYTHON", sys.executable)
    return FAKE_TRTEXEC


@pytest.fixture
def fake_trt(monkeypatch):
    """fake_trt(version) installs the stand-in `tensorrt` module (tests/fixtures/fake_tensorrt.py, a test double)."""
    from tests.fixtures import fake_tensorrt

    yield lambda version="10.9.0.34", **kw: fake_tensorrt.install(monkeypatch, version, **kw)
    fake_tensorrt.forget_polygraphy_tensorrt()


@pytest.fixture
def manager(tmp_path):
    m = JobManager(tmp_path / "state", kill_grace_s=0.5, event_interval_s=0.05)
    yield m
    m.close()


def trtexec_request(tmp_path: Path, *, pins=("/layers.0/Softmax",), timeout_s=None, trt_major=10) -> BuildRequest:
    preset = tmp_path / "p.toml"
    preset.write_text('model = "m.onnx"\n')
    return BuildRequest(
        preset_path=str(preset),
        preset_text=preset.read_text(),
        model_path=str(tmp_path / "m.onnx"),
        backend="trtexec",
        settings=EngineSpec(name="p", model_path=str(tmp_path / "m.onnx"), trt_major=trt_major,
                            precision="fp16" if trt_major < 11 else "fp32",  # 11.x fp16 would convert m.onnx first
                            pinned_nodes=tuple(pins)).to_json(),
        trtexec_argv=["trtexec", f"--onnx={tmp_path / 'm.onnx'}", "--fp16", "--saveEngine=elsewhere.plan"],
        timeout_s=timeout_s,
    )


def wait_for(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def assert_group_gone(pgid: int) -> None:
    assert wait_for(lambda: not group_members(pgid), timeout=3), f"processes left in group {pgid}: {group_members(pgid)}"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

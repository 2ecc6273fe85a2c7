"""THE availability probe: one answer for the status bar, the Builds screen and the CLI's build backends."""

from __future__ import annotations

import stat

from trt_tui.core import backends
from trt_tui.core.build.trtexec_backend import TrtexecBackend
from trt_tui.core.build.worker_backends import TensorRTBackend


def test_trtexec_from_the_environment_is_seen_by_every_front(tmp_path, monkeypatch):
    exe = tmp_path / "my-trtexec"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("TRT_TUI_TRTEXEC", str(exe))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    status_bar = {s.name: s for s in backends.detect()}["trtexec"]
    builds = TrtexecBackend().availability()
    assert status_bar.available and builds.ok and status_bar.path == str(exe)
    assert status_bar.detail == builds.reason == f"trtexec from $TRT_TUI_TRTEXEC: {exe}"


def test_a_bad_trtexec_setting_says_so_everywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("TRT_TUI_TRTEXEC", str(tmp_path / "nope"))
    status = backends.trtexec_status()
    assert not status.available and not TrtexecBackend().availability().ok
    assert "is set to" in status.detail and "not an executable file" in status.detail
    monkeypatch.delenv("TRT_TUI_TRTEXEC")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "not on PATH" in backends.trtexec_status().detail


def test_tensorrt_is_probed_without_importing_it(monkeypatch):
    import sys

    before = "tensorrt" in sys.modules
    status = backends.tensorrt_status()
    assert TensorRTBackend().availability().reason == status.detail
    assert ("tensorrt" in sys.modules) == before  # found or not, never imported
    if not status.available:
        assert "pip install" in status.detail


def test_onnxruntime_providers_are_reported():
    status = backends.onnxruntime_status()
    assert status.available and "CPU" in status.detail
    assert [s.name for s in backends.detect(onnxruntime=True)] == ["TensorRT", "trtexec", "ORT"]

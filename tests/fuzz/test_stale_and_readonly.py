"""Issue 12 items 10 and 12: a killed convert's staging folder is cleaned by the next write; read-only
targets (simulated: the tests run as root, which writes anywhere) are one line."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from trt_tui.cli import main
from trt_tui.core import fileio


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)


def test_killed_convert_leaves_nothing_after_the_next_write(demo_model, tmp_path, capfd):
    out = tmp_path / "out.onnx"
    stale = tmp_path / f".out.onnx.trt_tui-{_dead_pid()}-0a0b.tmp"  # what kill -9 mid-convert leaves
    stale.mkdir()
    (stale / "out.onnx").write_bytes(b"x" * 1_000_000)
    assert main(["convert", str(demo_model), "--precision", "fp16", "-o", str(out)]) == 0
    capfd.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.onnx"]


@pytest.mark.parametrize(
    "argv",
    [
        ["preset", "new", "{model}", "-o", "{out}/p.toml"],
        ["contract", "init", "{model}", "-o", "{out}/c.json"],
        ["convert", "{model}", "--precision", "fp16", "-o", "{out}/x.onnx"],
    ],
)
def test_read_only_outputs_are_one_line(demo_model, tmp_path, capfd, monkeypatch, argv):
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(tmp_path) in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(fileio.os, "open", read_only)
    real_mkdir = os.mkdir

    def no_mkdir(path, *args, **kwargs):
        if str(tmp_path) in str(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", no_mkdir)
    code = main([a.format(model=demo_model, out=tmp_path) for a in argv])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Read-only file system" in err, err
    assert list(tmp_path.iterdir()) == []

import os
import signal
import subprocess
import sys
import time

import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.fileio import atomic_write, clean_stale_temp_files, read_text_file, require_regular_file


def test_atomic_write_never_clobbers(tmp_path):
    p = tmp_path / "sub" / "a.toml"
    atomic_write(p, "one", make_parents=True)
    with pytest.raises(UserError, match="already exists"):
        atomic_write(p, "two")
    assert p.read_text() == "one"
    atomic_write(p, "three", overwrite=True)
    assert p.read_text() == "three"
    assert [x.name for x in p.parent.iterdir()] == ["a.toml"]  # no temp files left behind


def test_missing_folder_is_an_error_not_created(tmp_path):
    """Issue 12 item 12: `--png /nonexistent_dir/x.png` must not create the folder silently."""
    with pytest.raises(UserError, match="does not exist"):
        atomic_write(tmp_path / "nonexistent_dir" / "x.png", b"png")
    assert not (tmp_path / "nonexistent_dir").exists()


def test_read_only_folder_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        with pytest.raises(UserError, match="cannot write"):
            atomic_write(d / "x.txt", "x")
    finally:
        d.chmod(0o755)


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    """A write that the disk refuses (simulated with RLIMIT_FSIZE in a child) is a UserError, no temp file."""
    code = (
        "import resource, signal, sys\n"
        "from trt_tui.core.fileio import atomic_write\n"
        "from trt_tui.core.errors import UserError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        f"    atomic_write({str(tmp_path / 'big.bin')!r}, b'x' * 100000)\n"
        "except UserError as e:\n"
        "    print(e.one_line()); sys.exit(2)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "cannot write" in run.stdout and "disk is full" in run.stdout
    assert os.listdir(tmp_path) == []


def test_stale_temp_files_of_a_killed_writer_are_cleaned(tmp_path):
    """Issue 12 item 12: kill -9 mid-write leaves `.out.onnx.*.tmp`; the next write to the target removes it."""
    target = tmp_path / "out.onnx"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    live = tmp_path / f".out.onnx.trt_tui-{child.pid}-00aa.tmp"  # a live writer's: kept
    live.write_bytes(b"in progress")
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    dead = tmp_path / f".out.onnx.trt_tui-{dead_pid}-00bb.tmp"
    dead.write_bytes(b"x" * 1000)
    old = tmp_path / ".out.onnx.abcd1234.tmp"  # an older version's mkstemp name, hours old
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    other = tmp_path / ".other.onnx.trt_tui-1-00cc.tmp"  # another target's: not ours to touch
    other.write_bytes(b"x")
    try:
        atomic_write(target, b"model")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name, other.name])
        assert clean_stale_temp_files(target) == []
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_non_regular_files_are_refused_without_reading(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, message in ((fifo, "FIFO"), ("/dev/zero", "device"), (tmp_path, "directory"), (tmp_path / "nope", "no such")):
        with pytest.raises(UserError, match=message):
            require_regular_file(path)
        with pytest.raises(UserError, match=message):
            read_text_file(path)
    big = tmp_path / "big.toml"
    big.write_text("x" * 100)
    with pytest.raises(UserError, match="more than"):
        read_text_file(big, max_bytes=10)


def test_refuses_to_replace_a_non_file(tmp_path):
    with pytest.raises(UserError, match="not a regular file"):
        atomic_write(tmp_path, "x", overwrite=True)

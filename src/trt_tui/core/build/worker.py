"""`python -m trt_tui.core.build.worker BUILD_DIR`: run one Python-side build (tensorrt or emulate) in a
child process, so that a crash, a hang or a leak in TensorRT never reaches the process with the UI.

Exit codes: 0 the build ran (see worker_result.json), 1 it failed, 2 bad input or a missing backend,
3 cancelled. SIGTERM asks for a cooperative cancel (TensorRT's progress monitor returns False); the parent
escalates to SIGKILL if the worker does not exit in time.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.core.build.protocol import REQUEST_FILE, WORKER_RESULT_FILE, emit_progress
from trt_tui.core.build.types import BuildRequest, BuildResult, JobState
from trt_tui.core.errors import MissingBackendError, UserError
from trt_tui.core.fileio import atomic_write

_cancel = threading.Event()


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001
    if _cancel.is_set():  # a second SIGTERM: stop now
        raise SystemExit(3)
    _cancel.set()


def run_backend(request: BuildRequest, build_dir: Path) -> BuildResult:
    if request.backend == "tensorrt":
        from trt_tui.core.build import trt_build

        return trt_build.run(request, build_dir, emit_progress, _cancel.is_set)
    if request.backend == "emulate":
        from trt_tui.core.build import emulate_build

        return emulate_build.run(request, build_dir, emit_progress, _cancel.is_set)
    raise UserError(f"the worker cannot run backend {request.backend!r}")


def convert_then_exec(build_dir: Path, argv: list[str]) -> int:
    """TensorRT 11 trtexec builds: write the mixed-precision ONNX, then become trtexec (os.execv keeps the
    pid and process group, so cancel and timeouts still reach it)."""
    from trt_tui.core.build.onnx_outputs import write_mixed_model
    from trt_tui.core.engine_spec import EngineSpec

    try:
        request = BuildRequest.from_json(json.loads((build_dir / REQUEST_FILE).read_text(encoding="utf-8")))
        emit_progress("writing the mixed-precision ONNX", 0.01)
        write_mixed_model(EngineSpec.from_json(request.settings, request.preset_path or None), build_dir)
    except UserError as exc:
        print(f"trt_tui worker: error: {exc.one_line()}")
        return 2
    emit_progress("mixed-precision ONNX written; starting trtexec", 0.04)
    sys.stdout.flush()
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        print(f"trt_tui worker: cannot run {argv[0]}: {exc.strerror or exc}")
        return 2
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 2 and args[1] == "--exec":
        return convert_then_exec(Path(args[0]), args[2:])
    if len(args) != 1:
        print("usage: python -m trt_tui.core.build.worker BUILD_DIR [--exec TRTEXEC ARGS...]", file=sys.stderr)
        return 2
    build_dir = Path(args[0])
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        request = BuildRequest.from_json(json.loads((build_dir / REQUEST_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        print(f"trt_tui worker: cannot read {build_dir / REQUEST_FILE}: {exc}")
        return 2
    code = 0
    try:
        result = run_backend(request, build_dir)
        if _cancel.is_set() and result.state != JobState.SUCCEEDED:
            result.state, code = JobState.CANCELLED, 3
        elif result.state != JobState.SUCCEEDED:
            code = 1
    except UserError as exc:  # MissingBackendError included: one line, exit 2
        kind = "missing backend" if isinstance(exc, MissingBackendError) else "error"
        print(f"trt_tui worker: {kind}: {exc.one_line()}")
        result = BuildResult(state=JobState.FAILED, backend=request.backend, message=exc.one_line())
        code = 2
    except Exception as exc:  # a bug or a TensorRT failure: keep the traceback in the log
        traceback.print_exc(file=sys.stdout)
        result = BuildResult(state=JobState.FAILED, backend=request.backend,
                             message=f"the {request.backend} build raised {type(exc).__name__}: {exc}")
        code = 1
    sys.stdout.flush()
    atomic_write(build_dir / WORKER_RESULT_FILE, jsonio.dumps(result.to_json(), indent=2), overwrite=True)
    return code


if __name__ == "__main__":
    sys.exit(main())

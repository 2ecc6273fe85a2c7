"""The trtexec backend: run the preset's exported trtexec command, in the build dir, and read its log.

trtexec is found through `TRT_TUI_TRTEXEC` (a path) or on PATH. The command is the preset's own export
with three changes, all recorded in the build dir's command.txt: argv[0] becomes the trtexec found, the
engine is saved into the build dir, and the engine-inspector JSON is exported (detailed verbosity) so the
FP32 pins can be checked layer by layer, as the TensorRT backend does.
"""

from __future__ import annotations

import json
from pathlib import Path

from trt_tui.core.backends import TRTEXEC_ENV, trtexec_status
from trt_tui.core.build.backend import Availability, Backend, BuildPlan, Watcher, engine_file, outcome_state
from trt_tui.core.build.pincheck import pin_check
from trt_tui.core.build.protocol import parse_line
from trt_tui.core.build.runner import RunOutcome
from trt_tui.core.build.trtexec_log import TrtexecLog
from trt_tui.core.build.types import BuildRequest, BuildResult, JobState
from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.errors import UserError

ENV_VAR = TRTEXEC_ENV
ENGINE_NAME = "engine.plan"
LAYERS_NAME = "layers.json"
# Flags this backend sets itself; the preset's values for them are replaced, not duplicated.
_OWNED = ("--saveEngine", "--exportLayerInfo", "--profilingVerbosity")


def find_trtexec() -> tuple[str | None, str]:
    """(path or None, one-line reason), from THE availability probe (core/backends.py)."""
    status = trtexec_status()
    return status.path, status.detail


def build_argv(preset_argv: list[str], trtexec: str, build_dir: Path, *, mixed_onnx: Path | None = None) -> list[str]:
    """The preset's argv with this build's engine/layer-info paths (and, for TensorRT 11 low-precision
    presets, the mixed-precision ONNX the worker writes into the build dir first)."""
    if not preset_argv:
        raise UserError("the preset exported no trtexec command")
    owned = _OWNED + (("--onnx",) if mixed_onnx else ())
    args = [a for a in preset_argv[1:] if not a.startswith(tuple(f"{f}=" for f in owned)) and a not in owned]
    if mixed_onnx:
        args.insert(0, f"--onnx={mixed_onnx}")
    return [
        trtexec,
        *args,
        f"--saveEngine={build_dir / ENGINE_NAME}",
        f"--exportLayerInfo={build_dir / LAYERS_NAME}",
        "--profilingVerbosity=detailed",
    ]


class TrtexecBackend(Backend):
    name = "trtexec"

    def availability(self) -> Availability:
        path, reason = find_trtexec()
        return Availability(path is not None, reason)

    def plan(self, request: BuildRequest, build_dir: Path) -> BuildPlan:
        path, reason = find_trtexec()
        if path is None:
            from trt_tui.core.errors import MissingBackendError

            raise MissingBackendError(reason)
        if not request.trtexec_argv:
            raise UserError("this build request carries no trtexec command", request.preset_path)
        watcher = TrtexecWatcher(request, build_dir)
        if not EngineSpec.from_json(request.settings, request.preset_path or None).builds_from_mixed_onnx:
            argv = build_argv(list(request.trtexec_argv), path, build_dir)
            return BuildPlan(argv=argv, watcher=watcher, cwd=str(build_dir))
        # TensorRT 11 takes precision from the graph: the worker child writes the mixed-precision ONNX,
        # then replaces itself with trtexec (same pid and process group, one continuous log).
        from trt_tui.core.build.onnx_outputs import MIXED_NAME
        from trt_tui.core.build.worker_backends import worker_argv, worker_env

        argv = build_argv(list(request.trtexec_argv), path, build_dir, mixed_onnx=build_dir / MIXED_NAME)
        return BuildPlan(argv=[*worker_argv(build_dir), "--exec", *argv], watcher=watcher, env=worker_env(),
                         cwd=str(build_dir))


class TrtexecWatcher(Watcher):
    def __init__(self, request: BuildRequest, build_dir: Path) -> None:
        self.request = request
        self.build_dir = build_dir
        self.log = TrtexecLog()

    def feed(self, line: str, at_s: float) -> tuple[str, float | None] | None:
        msg = parse_line(line)  # the conversion step before trtexec reports through the worker protocol
        if msg is not None and "phase" in msg:
            self.log.phases.append({"name": str(msg["phase"]), "at_s": round(at_s, 3)})
            return str(msg["phase"]), msg.get("fraction")
        return self.log.feed(line, at_s)

    def result(self, outcome: RunOutcome) -> BuildResult:
        summary = self.log.summary()
        engine = engine_file(self.build_dir / ENGINE_NAME)
        result = BuildResult(
            state=JobState.SUCCEEDED,
            backend="trtexec",
            engine_built=engine is not None,
            engine_path=engine,
            exit_code=outcome.returncode,
            signal=outcome.signal,
            duration_s=round(outcome.duration_s, 3),
            phases=list(self.log.phases),
            performance=summary["performance"],
            build_time_s=summary["build_time_s"],
            engine_size_mib=summary["engine_size_mib"],
            trt_version=summary["trt_version"],
        )
        if engine:
            result.artifacts["engine"] = ENGINE_NAME
        bad = outcome_state(outcome)
        if bad:
            result.state, result.message = bad
            if self.log.errors:
                result.message += f"; trtexec said: {self.log.errors[0]}"
        elif self.log.status == "FAILED":
            result.state, result.message = JobState.FAILED, "trtexec reported FAILED"
        elif engine is None:
            result.state = JobState.FAILED
            result.message = "trtexec exited 0 but wrote no engine file; no engine was built"
        else:
            result.message = f"engine built ({summary['engine_size_mib'] or '?'} MiB) by trtexec"
        self._check_version(result)
        self._check_pins(result)
        return result

    def _check_version(self, result: BuildResult) -> None:
        wanted = self.request.settings.get("trt_major")
        if wanted and result.trt_version and not result.trt_version.startswith(f"{wanted}."):
            result.notes.append(
                f"the preset targets TensorRT {wanted}.x but trtexec is TensorRT {result.trt_version}"
            )

    def _check_pins(self, result: BuildResult) -> None:
        layers_path = self.build_dir / LAYERS_NAME
        pins = list(self.request.settings.get("pinned_nodes") or [])
        if not layers_path.is_file():
            return
        result.artifacts["layer_info"] = LAYERS_NAME
        if not pins:
            return
        try:
            info = json.loads(layers_path.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError as exc:
            result.notes.append(f"{LAYERS_NAME} is not valid JSON ({exc}); pins not checked")
            return
        result.pin_check = pin_check(info, pins)
        if result.pin_check["mismatches"]:
            result.notes.append(f"{len(result.pin_check['mismatches'])} FP32 pin(s) did not run in FP32")

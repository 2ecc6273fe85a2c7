"""The trtexec backend: run the preset's exported trtexec command, in the build dir, and read its log.

trtexec is found through `TRT_TUI_TRTEXEC` (a path) or on PATH. The command is the preset's own export
with these changes, all recorded in the build dir's command.txt: argv[0] becomes the trtexec found, the
engine is saved into the build dir, the layer information is exported (`--profilingVerbosity=detailed
--exportLayerInfo`) so the FP32 pins get the same pin check as the Python backend, and the per-layer
timings (`--exportProfile`) are kept and attached to it. trtexec 11.1+ accuracy lines ("Accuracy loss for
tensor ...", from --loadRefOutputs in the preset's export) go into the result.
"""

from __future__ import annotations

import json
from pathlib import Path

from trt_tui.core.backends import TRTEXEC_ENV, trtexec_status
from trt_tui.core.build.backend import Availability, Backend, BuildPlan, Watcher, engine_file, outcome_state
from trt_tui.core.build.pincheck import layer_timings, pin_check
from trt_tui.core.build.protocol import parse_line
from trt_tui.core.build.runner import RunOutcome
from trt_tui.core.build.trtexec_log import TrtexecLog
from trt_tui.core.build.types import BuildRequest, BuildResult, JobState
from trt_tui.core.engine_spec import EngineSpec
from trt_tui.core.errors import UserError

ENV_VAR = TRTEXEC_ENV
ENGINE_NAME = "engine.plan"
LAYERS_NAME = "layers.json"
PROFILE_NAME = "profile.json"  # per-layer timings (written only when trtexec runs inference)
# Flags this backend sets itself; the preset's values for them are replaced, not duplicated.
_OWNED = ("--saveEngine", "--exportLayerInfo", "--profilingVerbosity", "--exportProfile")


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
        f"--exportProfile={build_dir / PROFILE_NAME}",
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
            accuracy=summary["accuracy"],
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
        if result.accuracy and result.accuracy["failed"]:  # trtexec exits non-zero: say why, engine or not
            failed = result.accuracy["failed"]
            built = "engine built, but " if engine else ""
            result.message = (f"{built}trtexec's accuracy check failed for {len(failed)} output(s): "
                              + ", ".join(f"{n} ({_loss(result.accuracy['tensors'][n])})" for n in failed[:3]))  # fmt: skip
        elif result.accuracy and result.state == JobState.SUCCEEDED:
            result.notes.append(f"trtexec's accuracy check passed for {len(result.accuracy['tensors'])} output(s)")
        self._check_version(result)
        self._check_pins(result)
        return result

    def _check_version(self, result: BuildResult) -> None:
        spec = EngineSpec.from_json(self.request.settings, self.request.preset_path or None)
        if not result.trt_version:
            return
        major, _, rest = result.trt_version.partition(".")
        minor = int(rest.split(".")[0]) if rest.split(".")[0].isdigit() else None
        if major != str(spec.trt_major):
            result.notes.append(f"the preset targets TensorRT {spec.trt_major}.x but trtexec is TensorRT {result.trt_version}")
        elif spec.trt_minor is not None and minor is not None and minor < spec.trt_minor:
            result.notes.append(f"the preset targets TensorRT {spec.trt_major}.{spec.trt_minor} but trtexec is "
                                f"TensorRT {result.trt_version}")  # fmt: skip

    def _check_pins(self, result: BuildResult) -> None:
        layers_path = self.build_dir / LAYERS_NAME
        pins = list(self.request.settings.get("pinned_nodes") or [])
        timings = self._timings(result)
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
        result.pin_check = pin_check(info, pins, timings)
        if result.pin_check["mismatches"]:
            result.notes.append(f"{len(result.pin_check['mismatches'])} FP32 pin(s) did not run in FP32")

    def _timings(self, result: BuildResult) -> dict | None:
        """Per-layer timings from --exportProfile (kept as an artifact; the slowest layers in `performance`)."""
        path = self.build_dir / PROFILE_NAME
        if not path.is_file():
            return None
        try:
            timings = layer_timings(json.loads(path.read_text(encoding="utf-8", errors="replace")))
        except json.JSONDecodeError as exc:
            result.notes.append(f"{PROFILE_NAME} is not valid JSON ({exc}); per-layer timings not read")
            return None
        result.artifacts["layer_profile"] = PROFILE_NAME
        slowest = sorted(timings.items(), key=lambda kv: -kv[1].get("average_ms", 0.0))[:5]
        result.performance = {**(result.performance or {}), "layers_timed": len(timings),
                              "slowest_layers": [{"name": n, **t} for n, t in slowest]}  # fmt: skip
        return timings


def _loss(row: dict) -> str:
    threshold = "" if row.get("threshold") is None else f" >= {row['threshold']:g}"
    return f"{row['algorithm']} {row['loss']}{threshold}"

"""TensorRT 11.1 and the layer information, on hand-written files in the documented formats
(tests/fixtures/trtexec/README.md says which parts are unconfirmed) and the stand-in trtexec
(tests/core/builds/fake_trtexec.py, a test double): presets with a minor version, the 11.1 export with
reference data, the "Accuracy loss for tensor" lines, and the pin check from --exportLayerInfo with the
--exportProfile timings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trt_tui.cli import main
from trt_tui.core.build.pincheck import layer_timings, pin_check
from trt_tui.core.build.trtexec_log import TrtexecLog
from trt_tui.core.preset import load_preset, resolve_preset
from trt_tui.core.preset.toml_io import preset_to_dict

ROOT = Path(__file__).resolve().parents[3]
FIX = ROOT / "tests" / "fixtures" / "trtexec"
PRESETS = ROOT / "presets"


@pytest.fixture
def preset_111(tmp_path) -> Path:
    text = (PRESETS / "demo_fp16_trt11.toml").read_text()
    model = load_preset(PRESETS / "demo_fp16_trt11.toml").model_path
    lines = [f'model = "{model}"' if line.startswith("model") else line for line in text.splitlines()]
    lines = ['trt = "11.1"' if line.startswith("trt ") or line.startswith("trt=") else line for line in lines]
    path = tmp_path / "p111.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_preset_minor_version_loads_resolves_and_round_trips(preset_111):
    preset = load_preset(preset_111)
    assert (preset.trt, preset.trt_minor) == (11, 1) and preset_to_dict(preset)["trt"] == "11.1"
    r = resolve_preset(preset)
    assert r.trt_version == "11.1" and r.trtexec_checks_accuracy and r.to_json()["trt_minor"] == 1
    assert not resolve_preset(load_preset(PRESETS / "demo_fp16_trt11.toml")).trtexec_checks_accuracy


def test_bad_trt_version_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "m.onnx"\ntrt = "eleven"\n')
    assert main(["preset", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "trt: expected a TensorRT version" in err and len(err.strip().splitlines()) == 1


def test_export_111_writes_reference_data_and_accuracy_flags(preset_111, tmp_path, capsys):
    out = tmp_path / "build.sh"
    assert main(["preset", "export", str(preset_111), "-f", "trtexec", "-o", str(out), "--reference-data"]) == 0
    text = out.read_text()
    r = resolve_preset(load_preset(preset_111))
    assert "--accuracyAlgorithm=" in text and "--accuracyThreshold=" in text and "--refPair" not in text
    assert "--loadInputs=" in text and "--loadRefOutputs=" in text
    inputs = sorted(tmp_path.glob("build.*.input.bin"))
    refs = sorted(tmp_path.glob("build.*.ref.bin"))
    assert len(inputs) == len(r.input_names) and refs
    # raw bytes, no header, at the profile's OPT shape (the demo's audio_signal is fp32 [64, 32, 8] at OPT)
    audio = tmp_path / "build.audio_signal.input.bin"
    opt = r.profiles[0]["audio_signal"][1]
    assert audio.stat().st_size == int(np.prod(opt)) * 4
    assert "audio_signal:" in text and "build.audio_signal.input.bin" in text
    # overwriting needs --force; a preset without the minor version is refused in one line
    assert main(["preset", "export", str(preset_111), "-f", "trtexec", "-o", str(out), "--reference-data"]) == 2
    plain = tmp_path / "p11.toml"
    plain.write_text(preset_111.read_text().replace('trt = "11.1"', "trt = 11"))
    capsys.readouterr()
    assert main(["preset", "export", str(plain), "-f", "trtexec", "-o", str(tmp_path / "b.sh"), "--reference-data"]) == 2
    assert 'set trt = "11.1"' in capsys.readouterr().err


def test_tolerance_to_trtexec_algorithm(preset_111):
    import dataclasses

    from trt_tui.core.parity.metrics import Tolerance, TolerancePolicy
    from trt_tui.core.preset.exports.trtexec_accuracy import accuracy_check

    r = resolve_preset(load_preset(preset_111))

    def check(**kw):
        return accuracy_check(dataclasses.replace(r, tolerances=TolerancePolicy(Tolerance(**kw))), 1000)

    assert (check(atol=1e-3, rtol=1e-3, stat="elemwise").algorithm, check(atol=1e-3, rtol=1e-3, stat="elemwise").threshold) == ("l0", 0.0005)
    assert check(atol=1e-3, rtol=0, stat="quantile", quantile=0.99).threshold == pytest.approx(0.01)
    assert (check(atol=2e-3, rtol=0, stat="max").algorithm, check(atol=2e-3, rtol=0, stat="max").threshold) == ("lInf", 2e-3)
    assert check(atol=2e-3, rtol=0, stat="mean").algorithm == "l1" and check(atol=1e-3, rtol=0, stat="median").threshold == 0.5


def test_accuracy_lines_are_parsed():
    log = TrtexecLog()
    for line in [
        "[11/26/2026-02:10:01] [I] Accuracy loss for tensor log_probs (L0): 0.000000",
        "[11/26/2026-02:10:01] [I] Accuracy loss for tensor encoded lengths (LInf): 0.031250 [FAIL: >= threshold 0.001000]",
        "[11/26/2026-02:10:01] [I] Accuracy loss for tensor out (b) (Cosine): 0.000012",
        "[11/26/2026-02:10:01] [W] Reference output tensor extra not found in output bindings",
        "[11/26/2026-02:10:02] [E] Accuracy validation FAILED: one or more tensors exceeded the threshold.",
    ]:
        log.feed(line)
    acc = log.summary()["accuracy"]
    assert acc["tensors"]["log_probs"] == {"algorithm": "L0", "loss": 0.0, "failed": False, "threshold": None}
    assert acc["tensors"]["encoded lengths"]["failed"] and acc["tensors"]["encoded lengths"]["threshold"] == 0.001
    assert acc["tensors"]["out (b)"]["algorithm"] == "Cosine"  # a raw name with parentheses, sampleUtils.h's spelling
    assert acc["failed"] == ["encoded lengths"] and not acc["passed"]
    assert any("Accuracy validation FAILED" in e for e in log.summary()["errors"])
    assert TrtexecLog().summary()["accuracy"] is None


def test_pin_check_from_10x_layer_info_with_fusions_and_timings():
    info = json.loads((FIX / "layers_10x.json").read_text())
    timings = layer_timings(json.loads((FIX / "profile.json").read_text()))
    pins = ["/enc/l0/attn/Softmax", "/enc/l0/attn/Mul", "/enc/l0/norm1/Div", "/enc/l1/norm1/Sqrt", "/enc/l0/gate/MatMul",
            "/dec/LogSoftmax", "/enc/l0/folded/Constant"]  # fmt: skip
    report = pin_check(info, pins, timings)
    rows = {row["node"]: row for row in report["pins"]}
    assert {n: r["status"] for n, r in rows.items()} == {
        "/enc/l0/attn/Softmax": "fp32",
        "/enc/l0/attn/Mul": "fused",  # `MatMul + Mul`, FP16
        "/enc/l0/norm1/Div": "fused",  # inside a Myelin region with an FP16 boundary
        "/enc/l1/norm1/Sqrt": "unknown",  # inside a Myelin region with an FP32 boundary: cannot be told
        "/enc/l0/gate/MatMul": "fused",  # `A || B`, horizontal fusion
        "/dec/LogSoftmax": "mismatch",
        "/enc/l0/folded/Constant": "not_found",
    }
    assert rows["/enc/l0/attn/Softmax"]["verdict"] == "ran in FP32 in layer '/enc/l0/attn/Softmax'"
    assert "fused into a layer of another precision (fp16): '/enc/l0/attn/MatMul + /enc/l0/attn/Mul'" == rows["/enc/l0/attn/Mul"]["verdict"]
    assert "Myelin" in rows["/enc/l1/norm1/Sqrt"]["verdict"] and "ForeignNode[" in rows["/enc/l1/norm1/Sqrt"]["verdict"]
    assert rows["/enc/l0/norm1/Div"]["layers"][0]["timing"]["average_ms"] == 0.3305  # per-layer timings kept
    assert report["mismatches"] == ["/dec/LogSoftmax"] and report["timed"]


def test_pin_check_from_11x_layer_info():
    info = json.loads((FIX / "layers_11x.json").read_text())
    report = pin_check(info, ["/enc/l0/attn/Softmax", "/enc/l0/norm1/Sub", "/dec/LogSoftmax"])
    status = {row["node"]: row["status"] for row in report["pins"]}
    assert status == {"/enc/l0/attn/Softmax": "fp32", "/enc/l0/norm1/Sub": "unknown", "/dec/LogSoftmax": "mismatch"}


def test_pin_check_from_layer_names_only():
    names = ["/enc/l0/attn/MatMul + /enc/l0/attn/Mul", "/a || /b", "{ForeignNode[/n/first.../n/last]}"]
    report = pin_check(names, ["/enc/l0/attn/Mul", "/b", "/n/first", "/n/middle"])
    assert [row["status"] for row in report["pins"]] == ["unknown"] * 4
    assert [bool(row["layers"]) for row in report["pins"]] == [True, True, True, False]
    assert "DETAILED" in report["summary"]


def test_trtexec_build_keeps_timings_and_the_accuracy_verdict(fake_trtexec, manager, tmp_path, monkeypatch):
    from tests.core.builds.conftest import trtexec_request

    monkeypatch.setenv("FAKE_TRTEXEC_LAYERS", str(FIX / "layers_10x.json"))
    monkeypatch.setenv("FAKE_TRTEXEC_PROFILE", str(FIX / "profile.json"))
    monkeypatch.setenv("FAKE_TRTEXEC_ACCURACY", "log_probs=0.02")
    request = trtexec_request(tmp_path, pins=("/enc/l0/attn/Softmax", "/dec/LogSoftmax"))
    request.trtexec_argv += ["--loadRefOutputs=log_probs:ref.bin", "--accuracyAlgorithm=lInf", "--accuracyThreshold=0.01"]
    job = manager.wait(manager.submit(request).id, 30)
    r = job.result
    build_dir = Path(job.build_dir)
    assert "--exportProfile=" + str(build_dir / "profile.json") in (build_dir / "command.txt").read_text()
    assert r.artifacts["layer_profile"] == "profile.json" and r.performance["layers_timed"] == 7
    assert r.performance["slowest_layers"][0]["name"].startswith("{ForeignNode[/enc/l1")
    assert {row["node"]: row["status"] for row in r.pin_check["pins"]} == {"/enc/l0/attn/Softmax": "fp32",
                                                                          "/dec/LogSoftmax": "mismatch"}  # fmt: skip
    assert r.accuracy["failed"] == ["log_probs"] and r.accuracy["tensors"]["log_probs"]["loss"] == 0.02
    assert job.state.value == "failed" and r.engine_built  # trtexec exits 1 on a failed check; the engine exists
    assert r.message.startswith("engine built, but trtexec's accuracy check failed for 1 output(s): log_probs (LInf 0.02 >= 0.01)")

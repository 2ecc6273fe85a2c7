"""TEST DOUBLE for NVIDIA's trtexec. It is not TensorRT and builds nothing real.

It prints log lines copied from real trtexec runs (TensorRT 10.9 and the 11.x lines in
/work/shared/research/tensorrt-10-vs-11.md) so the trtexec backend's runner and log parser can be
tested without a GPU. When it "succeeds" it writes a placeholder file at --saveEngine that says it is fake.

Behaviour is chosen with environment variables (so the backend's real command line is left untouched):
  FAKE_TRTEXEC_MODE     ok (default) | fail | signal | hang | flood | longline | binary | noengine
  FAKE_TRTEXEC_LINES    lines printed in `flood` mode (default 200000)
  FAKE_TRTEXEC_VERSION  TensorRT version code in the &&&& lines (default 100900, i.e. 10.9.0)
  FAKE_TRTEXEC_LAYERS   a JSON file copied to --exportLayerInfo (default: a tiny inspector JSON)
  FAKE_TRTEXEC_PIDFILE  `hang` mode writes "<own pid> <grandchild pid>" here, then sleeps
  FAKE_TRTEXEC_IGNORE_TERM=1  `hang` mode ignores SIGTERM (so only SIGKILL ends it)
  FAKE_TRTEXEC_PROFILE  a JSON file copied to --exportProfile (default: timings for DEFAULT_LAYERS)
  FAKE_TRTEXEC_ACCURACY "name=loss,..." losses printed when --loadRefOutputs is given (11.1+ accuracy lines,
                        the format of samples/common/sampleInference.cpp); a loss >= --accuracyThreshold fails
                        the run (exit 1), as trtexec does
  FAKE_TRTEXEC_SLEEP    seconds the "build" takes before it finishes (default 0)
  FAKE_TRTEXEC_TIMES    a file to append "<start> <end>" (time.time()) of the "build" to (overlap tests)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

MODE = os.environ.get("FAKE_TRTEXEC_MODE", "ok")
VERSION = os.environ.get("FAKE_TRTEXEC_VERSION", "100900")
ENGINE_TEXT = b"FAKE ENGINE written by tests/core/builds/fake_trtexec.py (a test double); not a TensorRT engine\n"
DEFAULT_LAYERS = {
    "Layers": [
        {
            "Name": "/layers.0/MatMul",
            "LayerType": "CaskGemmMatrixMultiply",
            "Inputs": [{"Name": "x", "Location": "Device", "Dimensions": [1, 16], "Format/Datatype": "Row major linear FP16 format"}],
            "Outputs": [{"Name": "y", "Location": "Device", "Dimensions": [1, 16], "Format/Datatype": "Row major linear FP16 format"}],
            "Metadata": "[ONNX Layer: /layers.0/MatMul]",
        },
        {
            "Name": "/layers.0/Softmax",
            "LayerType": "CaskSoftMax",
            "Inputs": [{"Name": "y", "Location": "Device", "Dimensions": [1, 16], "Format/Datatype": "Row major linear FP32"}],
            "Outputs": [{"Name": "z", "Location": "Device", "Dimensions": [1, 16], "Format/Datatype": "Row major linear FP32"}],
            "Metadata": "[ONNX Layer: /layers.0/Softmax]",
        },
    ],
    "Bindings": ["x", "z"],
}


DEFAULT_PROFILE = [
    {"count": 29},
    {"name": "/layers.0/MatMul", "timeMs": 2900.5, "averageMs": 100.017, "medianMs": 99.8, "percentage": 89.6},
    {"name": "/layers.0/Softmax", "timeMs": 335.1, "averageMs": 11.555, "medianMs": 11.5, "percentage": 10.4},
]


def out(text: str, severity: str = "I") -> None:
    stamp = time.strftime("%m/%d/%Y-%H:%M:%S")
    sys.stdout.write(f"[{stamp}] [{severity}] {text}\n")


def option(name: str) -> str | None:
    for arg in sys.argv[1:]:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def header() -> str:
    return f"[TensorRT v{VERSION}] [b34] # trtexec " + " ".join(sys.argv[1:])


def main() -> int:
    sys.stdout.write(f"&&&& RUNNING TensorRT.trtexec {header()}\n")
    out("TF32 is enabled by default. Add --noTF32 flag to further improve accuracy with some performance cost.")
    out("=== Model Options ===")
    out("Format: ONNX")
    out(f"Model: {option('onnx') or '?'}")
    n = int(VERSION)
    out(f"TensorRT version: {n // 10000}.{n // 100 % 100}.{n % 100}")
    out("[TRT] [MemUsageChange] Init CUDA: CPU +2, GPU +0, now: CPU 26, GPU 1519 (MiB)")
    out("Start parsing network model.")
    sys.stdout.flush()

    if MODE == "hang":
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pidfile = os.environ.get("FAKE_TRTEXEC_PIDFILE")
        if pidfile:
            with open(pidfile + ".tmp", "w") as fh:
                fh.write(f"{os.getpid()} {grandchild.pid}\n")
            os.replace(pidfile + ".tmp", pidfile)
        if os.environ.get("FAKE_TRTEXEC_IGNORE_TERM") == "1":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(60)
    if MODE == "signal":
        os.kill(os.getpid(), signal.SIGKILL)
    if MODE == "fail":
        out("[TRT] ModelImporter.cpp:949: ERROR: ModelImporter.cpp:773 In function importModel: [4] Assertion failed", "E")
        out("Failed to parse onnx file", "E")
        out("Parsing model failed", "E")
        out("Failed to create engine from model or file.", "F")
        out("Engine set up failed", "E")
        sys.stdout.write(f"&&&& FAILED TensorRT.trtexec {header()}\n")
        return 1
    if MODE == "flood":
        count = int(os.environ.get("FAKE_TRTEXEC_LINES", "200000"))
        stamp = time.strftime("%m/%d/%Y-%H:%M:%S")
        chunk = []
        for i in range(count):
            chunk.append(f"[{stamp}] [V] [TRT] Tactic: 0x{i:016x} Time: 0.0{i % 97} ms\n")
            if len(chunk) == 5000:
                sys.stdout.write("".join(chunk))
                chunk.clear()
        sys.stdout.write("".join(chunk))
    if MODE == "longline":
        sys.stdout.write("[V] " + "x" * (1024 * 1024) + "\n")
    if MODE == "binary":
        sys.stdout.flush()
        sys.stdout.buffer.write(b"[I] [TRT] binary garbage \xff\xfe\xc3\x28 end\n")
        sys.stdout.buffer.flush()

    began = time.time()
    time.sleep(float(os.environ.get("FAKE_TRTEXEC_SLEEP", "0")))
    if os.environ.get("FAKE_TRTEXEC_TIMES"):
        with open(os.environ["FAKE_TRTEXEC_TIMES"], "a") as fh:
            fh.write(f"{began} {time.time()}\n")
    out("Finished parsing network model. Parse time: 0.274727")
    out("[TRT] Local timing cache in use. Profiling results in this builder pass will not be stored.")
    out("[TRT] Detected 1 inputs and 1 output network tensors.")
    out("[TRT] Engine generation completed in 104.604 seconds.")
    out("Engine built in 104.774 sec.")
    out("Created engine with size: 231.019 MiB")
    if MODE != "noengine":
        engine = option("saveEngine")
        if engine:
            with open(engine, "wb") as fh:
                fh.write(ENGINE_TEXT)
        layers = option("exportLayerInfo")
        if layers:
            source = os.environ.get("FAKE_TRTEXEC_LAYERS")
            data = open(source).read() if source else json.dumps(DEFAULT_LAYERS)
            with open(layers, "w") as fh:
                fh.write(data)
            profile = option("exportProfile")
            if profile:
                source = os.environ.get("FAKE_TRTEXEC_PROFILE")
                with open(profile, "w") as fh:
                    fh.write(open(source).read() if source else json.dumps(DEFAULT_PROFILE))
    out("Starting inference")
    out("Warmup completed 2 queries over 200 ms")
    out("Timing trace has 29 queries over 3.34555 s")
    out("=== Performance summary ===")
    out("Throughput: 8.66824 qps")
    out("Latency: min = 110.946 ms, max = 115.703 ms, mean = 112.938 ms, median = 112.567 ms, percentile(90%) = 114.427 ms, percentile(95%) = 115.415 ms, percentile(99%) = 115.703 ms")
    out("Enqueue Time: min = 0.495506 ms, max = 0.953369 ms, mean = 0.733638 ms, median = 0.734863 ms, percentile(90%) = 0.802246 ms, percentile(95%) = 0.835693 ms, percentile(99%) = 0.953369 ms")
    out("H2D Latency: min = 0.612305 ms, max = 0.961426 ms, mean = 0.771373 ms, median = 0.769043 ms, percentile(90%) = 0.873108 ms, percentile(95%) = 0.873779 ms, percentile(99%) = 0.961426 ms")
    out("GPU Compute Time: min = 109.522 ms, max = 114.185 ms, mean = 111.557 ms, median = 111.208 ms, percentile(90%) = 113.02 ms, percentile(95%) = 114.115 ms, percentile(99%) = 114.185 ms")
    out("D2H Latency: min = 0.548096 ms, max = 0.763855 ms, mean = 0.61034 ms, median = 0.609924 ms, percentile(90%) = 0.709229 ms, percentile(95%) = 0.71228 ms, percentile(99%) = 0.763855 ms")
    out("Total Host Walltime: 3.34555 s")
    out("Total GPU Compute Time: 3.23514 s")
    out("* GPU compute time is unstable, with coefficient of variance = 1.08662%.", "W")
    out("Explanations of the performance metrics are printed in the verbose logs.")
    failed = accuracy_lines()
    sys.stdout.write(f"&&&& {'FAILED' if failed else 'PASSED'} TensorRT.trtexec {header()}\n")
    return 1 if failed else 0


def accuracy_lines() -> bool:
    refs = option("loadRefOutputs")
    if not refs:
        return False
    algorithm = option("accuracyAlgorithm") or "l0"
    threshold = float(option("accuracyThreshold") or 0)
    losses = dict(item.split("=") for item in os.environ.get("FAKE_TRTEXEC_ACCURACY", "").split(",") if item)
    failed = False
    for entry in refs.split(","):
        name = entry.rsplit(":", 1)[0]
        loss = float(losses.get(name, 0.0))
        # getAlgorithmName (samples/common/sampleUtils.h) and the stream's sticky std::fixed, setprecision(6)
        label = {"l0": "L0", "l1": "L1", "l2": "L2", "lInf": "LInf", "cos": "Cosine"}.get(algorithm, "Unknown")
        text = f"Accuracy loss for tensor {name} ({label}): {loss:.6f}"
        if threshold > 0 and loss >= threshold:
            text += f" [FAIL: >= threshold {threshold:.6f}]"
            failed = True
        out(text)
    return failed


if __name__ == "__main__":
    sys.exit(main())

"""The pin check on hand-written inspector JSON: "Format/Datatype" (10.x, and what the 11.1 tree's consumers
read) and the split "Format" / "Datatype" keys the 11.1 tree's perf-analysis validator also accepts."""

from __future__ import annotations

from trt_tui.core.build.pincheck import normalize_dtype, onnx_nodes_of, pin_check, tensor_dtype


def t10(fmt: str) -> dict:
    return {"Name": "t", "Location": "Device", "Dimensions": [1, 8], "Format/Datatype": fmt}


def t11(layout: str, dtype: str) -> dict:
    # the split form (keys compared case-insensitively): seen in no published file, accepted defensively
    return {"Name": "t", "Dimensions": [1, 8], "Format": layout, "DataType": dtype}


INSPECTOR_10 = {
    "Layers": [
        {"Name": "Reformatting CopyNode for Input Tensor 0 to /attn/Softmax", "LayerType": "Reformat",
         "Inputs": [t10("Row major linear FP16 format")], "Outputs": [t10("Row major linear FP32")],
         "Metadata": "[ONNX Layer: /attn/Softmax]"},
        {"Name": "/attn/Softmax", "LayerType": "CaskSoftMax", "Inputs": [t10("Row major linear FP32")],
         "Outputs": [t10("Row major linear FP32")], "Metadata": "[ONNX Layer: /attn/Softmax]"},
        {"Name": "/ln/ReduceMean + /ln/Sub", "LayerType": "PointWiseV2", "Inputs": [t10("Half")],
         "Outputs": [t10("Half")], "Metadata": "[ONNX Layer: /ln/ReduceMean]\x1e[ONNX Layer: /ln/Sub]"},
        {"Name": "/proj/MatMul", "LayerType": "CaskGemmMatrixMultiply", "Inputs": [t10("Channel major FP16 format where channel % 2 == 0")],
         "Outputs": [t10("Row major linear FP16 format")], "Metadata": "[ONNX Layer: /proj/MatMul]"},
        {"Name": "/dyn/Add", "LayerType": "ElementWise", "Inputs": [t10("N/A due to dynamic shapes")],
         "Outputs": [t10("N/A due to dynamic shapes")], "Metadata": "[ONNX Layer: /dyn/Add]"},
    ],
    "Bindings": ["x", "y"],
}


def test_dtype_normalization():
    assert normalize_dtype("Row major linear FP32") == "fp32"
    assert normalize_dtype("Float") == "fp32"
    assert normalize_dtype("Half") == "fp16"
    assert normalize_dtype("Channel major FP16 format where channel % 2 == 0") == "fp16"
    assert normalize_dtype("Row major linear BF16 format") == "bf16"
    assert normalize_dtype("Thirty-two wide channel vectorized row major Int8 format.") == "int8"
    assert normalize_dtype("N/A due to dynamic shapes") is None
    assert tensor_dtype(t11("Row major linear", "FP16")) == "fp16"
    assert tensor_dtype({"Format": "Row major linear", "Datatype": "Float"}) == "fp32"
    assert tensor_dtype({"Format/Datatype": "Row major linear FP16", "Datatype": "Float"}) == "fp16"  # the combined key first


def test_metadata_mapping():
    assert onnx_nodes_of({"Metadata": "[ONNX Layer: a]\x1f[ONNX Layer: b/c:0]"}) == ["a", "b/c:0"]
    assert onnx_nodes_of({"Name": "gemm [ONNX Layer: MatMul]"}) == ["MatMul"]
    assert onnx_nodes_of({"Name": "plain"}) == []


def test_pin_check_10x():
    pins = ["/attn/Softmax", "/ln/Sub", "/proj/MatMul", "/dyn/Add", "/folded/Constant"]
    report = pin_check(INSPECTOR_10, pins)
    status = {row["node"]: row["status"] for row in report["pins"]}
    assert status == {"/attn/Softmax": "fp32", "/ln/Sub": "fused", "/proj/MatMul": "mismatch",
                      "/dyn/Add": "unknown", "/folded/Constant": "not_found"}
    assert report["mismatches"] == ["/proj/MatMul"]
    softmax = report["pins"][0]
    assert [layer["name"] for layer in softmax["layers"]] == ["/attn/Softmax"]  # the reformat is not the node's math
    assert report["detailed"] and "5 FP32 pin(s)" in report["summary"]


def test_pin_check_split_11x_form():
    inspector = {"Layers": [
        {"Name": "/attn/Softmax", "LayerType": "kgen", "Inputs": [t11("Row major linear", "FP32")],
         "Outputs": [t11("Row major linear", "FP32")], "Metadata": "[ONNX Layer: /attn/Softmax]"},
        {"Name": "__myl_MulAdd", "LayerType": "kgen", "Inputs": [t11("Row major linear", "FP16")],
         "Outputs": [{"Name": "o", "Format": "Row major linear", "Datatype": "BF16"}],
         "Metadata": "[ONNX Layer: /mlp/Mul]"},
    ]}
    report = pin_check(inspector, ["/attn/Softmax", "/mlp/Mul"])
    assert [(r["node"], r["status"], r["precisions"]) for r in report["pins"]] == [
        ("/attn/Softmax", "fp32", ["fp32"]), ("/mlp/Mul", "mismatch", ["bf16", "fp16"])]


def test_pin_check_without_detail_says_so():
    report = pin_check({"Layers": ["/attn/Softmax", "/proj/MatMul"]}, ["/attn/Softmax"])
    assert not report["detailed"] and report["pins"][0]["status"] == "unknown"
    assert "DETAILED" in report["summary"]


def test_pin_check_falls_back_to_layer_names_without_metadata():
    inspector = {"Layers": [
        {"Name": "/a/Softmax + /a/Mul", "LayerType": "PointWise", "Inputs": [t10("Half")], "Outputs": [t10("Half")]},
        {"Name": "/b/Softmax", "LayerType": "SoftMax", "Inputs": [t10("Float")], "Outputs": [t10("Float")]},
    ]}
    status = {r["node"]: r["status"] for r in pin_check(inspector, ["/a/Softmax", "/b/Softmax"])["pins"]}
    assert status == {"/a/Softmax": "fused", "/b/Softmax": "fp32"}

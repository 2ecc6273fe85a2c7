"""Issue 12 items 2 and 8: compare never overwrites without --force (never its own inputs), and no
float flag of any command takes NaN or infinity."""

from __future__ import annotations

import pytest

from trt_tui.cli import main


def test_json_csv_refuse_to_overwrite_without_force(pair, tmp_path, capsys):
    ref, _ = pair
    out = tmp_path / "r.json"
    out.write_text("keep me")
    assert main(["compare", str(ref), "--candidate", f"onnx:{ref}", "--json", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["compare", str(ref), "--candidate", f"onnx:{ref}", "--csv", str(out)]) == 2
    assert out.read_text() == "keep me"
    assert main(["compare", str(ref), "--candidate", f"onnx:{ref}", "--json", str(out), "--force"]) == 0
    assert out.read_text().startswith("{")


def test_never_writes_over_its_own_model_even_with_force(pair, capsys):
    ref, _ = pair
    before = ref.read_bytes()
    for flags in (["--json", str(ref)], ["--csv", str(ref), "--force"], ["--json", str(ref), "--force"]):
        assert main(["compare", str(ref), "--candidate", f"onnx:{ref}", *flags]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("input of this comparison" in err or "already exists" in err)
    assert ref.read_bytes() == before


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "{m}", "--atol", "nan"],
        ["compare", "{m}", "--rtol", "inf"],
        ["compare", "{m}", "--atol", "-1"],
        ["compare", "{m}", "--error-quantile", "nan"],
        ["compare", "{m}", "--quantile", "2"],
        ["compare", "{m}", "--range", "x:5,1"],
        ["compare", "{m}", "--range", "x:0,nan"],
        ["convert", "{m}", "--precision", "fp16", "--init-max", "nan", "-o", "{t}/o.onnx"],
        ["build", "{m}", "--timeout", "nan"],
    ],
)
def test_non_finite_numbers_are_refused(pair, tmp_path, capsys, argv):
    ref, _ = pair
    argv = [a.format(m=ref, t=tmp_path) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's usage error
        rc = exc.code
    assert rc == 2
    assert "Traceback" not in capsys.readouterr().err

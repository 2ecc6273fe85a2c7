"""Worker progress lines stay raw in build.log but reach live views in words."""

from trt_tui.core.build.protocol import progress_line, readable_line


def test_progress_lines_read_as_words():
    assert readable_line(progress_line("writing the emulated ONNX", 0.5)) == "» writing the emulated ONNX (50%)"
    assert readable_line(progress_line("parsing", None)) == "» parsing"
    assert readable_line("[11/21/2026-15:00:00] [I] Engine built in 17.0 sec.") == (
        "[11/21/2026-15:00:00] [I] Engine built in 17.0 sec."
    )
    assert readable_line("@@trt_tui {not json") == "@@trt_tui {not json"

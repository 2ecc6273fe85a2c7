import shutil
from pathlib import Path

from tests.ui.helpers import SIZE, make_app, settle
from trt_tui.core.resources import data_path, demo_model_path
from trt_tui.ui.screens.streaming import StreamingScreen

CONTRACT = Path(__file__).parents[2] / "contracts" / "demo_streaming_encoder.contract.json"


async def test_streaming_check_fills_plots_live(tmp_path):
    app = make_app(demo_model_path(), tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, StreamingScreen)
        screen.query_one("#stream-contract").value = str(CONTRACT)
        screen.query_one("#stream-chunks").value = "8"
        await pilot.press("r")
        await settle(app, pilot)
        assert screen.report is not None and screen.report.chunks_run == 8
        assert len(screen.results) == 8 and "log_probs" in screen.series
        assert all(len(v) == 8 for v in screen.series.values())
        assert "chunks" in str(screen.query_one("#stream-status").render())


async def test_streaming_bad_contract_is_a_notification(tmp_path):
    bad = tmp_path / "bad.contract.json"
    bad.write_text("{not json")
    app = make_app(demo_model_path(), tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        app.screen.query_one("#stream-contract").value = str(bad)
        await pilot.press("r")
        await settle(app, pilot)
        assert app.is_running and not app.screen.running
        assert any("bad.contract.json" in str(n.message) for n in app._notifications), [n.message for n in app._notifications]


async def test_demo_contract_is_found_from_the_checkout_and_when_installed(tmp_path, monkeypatch):
    for cwd, expected in ((CONTRACT.parents[1], "contracts/demo_streaming_encoder.contract.json"),
                          (tmp_path, str(data_path(CONTRACT.name)))):  # fmt: skip
        monkeypatch.chdir(cwd)
        app = make_app(demo_model_path(), tmp_path=tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("5")
            assert app.screen.query_one("#stream-contract").value == expected


async def test_chosen_contract_is_checked_and_remembered(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = shutil.copy(CONTRACT, tmp_path / "mine.json")

    async def choose(app, pilot, path) -> None:
        await pilot.press("o")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = str(path)
        await pilot.press("enter")
        await settle(app, pilot)

    app = make_app(demo_model_path(), tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        box = app.screen.query_one("#stream-contract")
        before = box.value
        await choose(app, pilot, tmp_path / "missing.json")
        failed = [n for n in app._notifications if n.title == "streaming contract failed"]
        assert failed and failed[-1].message == f"{tmp_path / 'missing.json'}: no such file"
        assert box.value == before and app.is_running
        await choose(app, pilot, mine)
        assert box.value == "mine.json"
        assert any(n.message.startswith("mine.json fits demo_streaming_encoder.onnx") for n in app._notifications)

    app = make_app(demo_model_path(), tmp_path=tmp_path)  # the same state dir: a later session
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        assert app.screen.query_one("#stream-contract").value == "mine.json"


async def test_several_candidates_against_a_recorded_reference(tmp_path):
    """Issue 16: candidates in one run, one plot per candidate, the CLI's table with the answer against ORT."""
    import json

    import onnx

    from trt_tui.core.modelgen.cache_stream import cache_stream_model, contract_doc, record_reference

    model = tmp_path / "cache_stream.onnx"
    onnx.save(cache_stream_model(), model)
    contract = tmp_path / "cache_stream.contract.json"
    contract.write_text(json.dumps(contract_doc()))
    record_reference(tmp_path / "ref", 12)
    app = make_app(model, tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        screen = app.screen
        screen.query_one("#stream-contract").value = str(contract)
        screen.query_one("#stream-candidates").value = "emulate:fp16, emulate:bf16"
        screen.query_one("#stream-reference").value = f"recorded:{tmp_path / 'ref'}"
        await pilot.press("r")
        await settle(app, pilot)
        assert list(screen.reports) == ["onnxruntime fp32", "emulate fp16", "emulate bf16"]
        assert set(screen.series) == {f"{c}: encoder_output" for c in screen.reports}
        assert all(len(v) == 12 for v in screen.series.values())
        assert screen.query_one("#stream-summary") is not None
        from rich.console import Console

        con = Console(width=220, record=True)
        con.print(screen.summary)
        out = con.export_text()
        assert "p-value" in out and "threshold" in out and "emulate bf16" in out and "YES, worse than" in out, out


async def test_pin_from_the_streaming_screen(tmp_path):
    """Issue 18 item 6: pin a node or an op type from the Streaming screen; the next run uses the pins."""
    app = make_app(demo_model_path(), tmp_path=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        before = set(app.selection.pinned)
        await pilot.press("p")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = "op:Softmax"
        await pilot.press("enter")
        await settle(app, pilot)
        softmax = {n.name for n in app.index.nodes if n.op_type == "Softmax"}
        assert softmax and softmax <= set(app.selection.pinned) and set(app.selection.pinned) >= before
        await pilot.press("p")
        await pilot.pause()
        app.screen.query_one("#prompt-input").value = "/no/such/node"
        await pilot.press("enter")
        await settle(app, pilot)
        assert any("no node named '/no/such/node'" in str(n.message) for n in app._notifications)


def _failing_stream(monkeypatch, text):
    """stream_all that delivers two chunks, then fails the way ONNX Runtime does (bracketed text)."""
    import trt_tui.ui.screens.streaming as streaming
    from trt_tui.core.errors import UserError

    def stream_all(setup, *, mode, chunks, on_chunk, cancel):
        raise UserError(text)

    monkeypatch.setattr(streaming, "stream_all", stream_all)


async def test_failed_stream_keeps_the_error_on_screen_and_stops_progress(tmp_path, monkeypatch):
    error = "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : [ShapeInferenceError] node [/] broke"
    _failing_stream(monkeypatch, error)
    app = make_app(demo_model_path(), tmp_path=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        screen = app.screen
        screen.query_one("#stream-contract").value = str(CONTRACT)
        await pilot.press("r")
        await settle(app, pilot)
        status = screen.query_one("#stream-status")
        shown = str(status.render())
        assert error in shown and "see the notification" not in shown and not screen.running
        app.clear_notifications()  # the toast going away changes nothing here
        await pilot.pause()
        assert error in str(status.render())
        bar = screen.query_one("#stream-progress")
        assert bar.total is not None  # an indeterminate bar animates; a finished one does not
        assert any(error in e.text for e in app.messages.entries)  # and in the message log (L)


async def test_chunks_placeholder_fits_at_100x30(tmp_path):
    """The chunks field shows its whole placeholder (and the cursor) at the smallest supported size."""
    app = make_app(demo_model_path(), tmp_path=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        field = app.screen.query_one("#stream-chunks")
        assert field.content_region.width > len(field.placeholder), (field.content_region.width, field.placeholder)


async def test_placeholders_fit_their_fields_at_both_sizes(tmp_path):
    from trt_tui.ui.screens.streaming import PLACEHOLDERS

    for size in ((100, 30), (160, 48)):
        app = make_app(demo_model_path(), tmp_path=tmp_path)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            await pilot.press("5")
            await pilot.pause()
            for field_id, variants in PLACEHOLDERS.items():
                field = app.screen.query_one(f"#{field_id}")
                assert len(field.placeholder) < field.content_region.width, (size, field_id, field.placeholder)
            if size == (160, 48):  # wide: the full help text where it fits
                assert app.screen.query_one("#stream-candidates").placeholder == PLACEHOLDERS["stream-candidates"][0]

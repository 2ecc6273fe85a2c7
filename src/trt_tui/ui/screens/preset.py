"""Preset screen: edit precision/TRT/TF32/constraints/opt level, see IO formats, profiles, live validation
and the exact export (trtexec command, script, ...) for the current settings; new/open/save/save as/diff."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select, Static, Switch

from trt_tui.core.errors import UserError
from trt_tui.core.preset import FORMATS, Preset, diff_presets, export, load_preset, resolve_preset, validate_preset
from trt_tui.core.preset.roundtrip import ChangedOnDisk
from trt_tui.core.resources import data_path
from trt_tui.ui.plain import printable
from trt_tui.ui.screens.base import TrtScreen
from trt_tui.ui.widgets.fast_table import FastTable
from trt_tui.ui.widgets.choice_prompt import ChoicePrompt
from trt_tui.ui.widgets.path_prompt import PathPrompt
from trt_tui.ui.widgets.save_as_prompt import SaveAs, SaveAsPrompt

UNSET = "unset"
PRECISIONS = [("fp16", "fp16"), ("bf16", "bf16"), ("fp32", "fp32")]
TRT_MAJORS = [("TensorRT 10", 10), ("TensorRT 11", 11)]
CONSTRAINTS = [("(not set)", UNSET), ("obey", "obey"), ("prefer", "prefer"), ("none", "none")]
OPT_LEVELS = [("(default: 3)", UNSET)] + [(str(i), i) for i in range(6)]


class PresetScreen(TrtScreen):
    MODE_TITLE = "Preset"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="preset.save"),
        Binding("a", "save_as", "Save as", id="preset.save_as"),
        Binding("ctrl+o", "open", "Open", id="preset.open"),
        Binding("ctrl+n", "new", "New", id="preset.new"),
        Binding("d", "diff", "Diff vs file", id="preset.diff"),
        Binding("e", "next_format", "Export format", id="preset.export_format"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.export_format = "trtexec"

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="preset-body"):
            with VerticalScroll(id="preset-form"):
                yield Static("", id="preset-title")
                yield Label("precision")
                yield Select(PRECISIONS, allow_blank=False, value="fp16", id="preset-precision")
                yield Label("target TensorRT")
                yield Select(TRT_MAJORS, allow_blank=False, value=10, id="preset-trt")
                with Horizontal(classes="switch-row"):
                    yield Switch(True, id="preset-tf32")
                    yield Label("TF32")
                yield Label("precision constraints (10.x)")
                yield Select(CONSTRAINTS, allow_blank=False, value=UNSET, id="preset-constraints")
                yield Label("optimization level")
                yield Select(OPT_LEVELS, allow_blank=False, value=UNSET, id="preset-opt")
                yield Label("FP32 pins (edit them on the Model screen)")
                yield Static("", id="preset-pins", markup=False)
            with Vertical(id="preset-right"):
                yield Static("", id="preset-problems")
                with Horizontal(id="preset-tables"):
                    yield FastTable(id="preset-io")
                    yield FastTable(id="preset-profiles")
                yield Static("", id="preset-export-title")
                with VerticalScroll(id="preset-export"):
                    yield Static("", id="preset-export-text")

    def on_mount(self) -> None:
        io = self.query_one("#preset-io", FastTable)
        for label, key in (("binding", "name"), ("dir", "dir"), ("format", "fmt")):
            io.add_column(label, key, max_width=32)
        profiles = self.query_one("#preset-profiles", FastTable)
        for label, key in (("profile", "profile"), ("input", "input"), ("min", "min"), ("opt", "opt"), ("max", "max")):
            profiles.add_column(label, key, max_width=24)
        ws = self.workspace
        ws.preset_changed.subscribe(self, lambda _p: self.load_form())
        ws.pins_changed.subscribe(self, lambda _c: self.analyse())
        ws.model_changed.subscribe(self, lambda _i: self.analyse())
        self.load_form()

    # ---- form <-> preset -------------------------------------------------------------------------------
    def load_form(self) -> None:
        preset = self.workspace.preset
        if preset is None:
            self.query_one("#preset-title", Static).update("No preset yet: edit a field to start one (or ctrl+o).")
            self.analyse()
            return
        self.query_one("#preset-precision", Select).value = preset.precision.mode
        self.query_one("#preset-trt", Select).value = preset.trt if preset.trt in (10, 11) else 10
        self.query_one("#preset-tf32", Switch).value = preset.precision.tf32
        self.query_one("#preset-constraints", Select).value = preset.precision.constraints or UNSET
        level = preset.builder.optimization_level
        self.query_one("#preset-opt", Select).value = level if level is not None else UNSET
        self.analyse()

    @on(Select.Changed)
    @on(Switch.Changed)
    def _edited(self) -> None:
        constraints = self.query_one("#preset-constraints", Select).value
        level = self.query_one("#preset-opt", Select).value
        form = (
            str(self.query_one("#preset-precision", Select).value),
            int(self.query_one("#preset-trt", Select).value),
            self.query_one("#preset-tf32", Switch).value,
            None if constraints == UNSET else str(constraints),
            None if level == UNSET else int(level),
        )
        p = self.workspace.preset
        if p is not None and form == (
            p.precision.mode, p.trt, p.precision.tf32, p.precision.constraints, p.builder.optimization_level
        ):
            return  # the form only caught up with the preset (loading): not an edit
        preset = self.workspace.current_preset()
        (preset.precision.mode, preset.trt, preset.precision.tf32, preset.precision.constraints,
         preset.builder.optimization_level) = form  # fmt: skip
        self.workspace.mark_edited()
        self.analyse()

    def analyse(self) -> None:
        """Validate and resolve the current settings; show problems, IO formats, profiles and the export."""
        ws = self.workspace
        preset = ws.preset
        title = self.query_one("#preset-title", Static)
        problems_view = self.query_one("#preset-problems", Static)
        if preset is None:
            problems_view.update("")
            self.query_one("#preset-export-text", Static).update("")
            return
        if ws.selection is not None:
            preset.pins = ws.selection.rules
        title.update(Text(f"{preset.display_name}  ({ws.preset_label()})", style="bold"))
        rules = preset.pins
        pins = ", ".join([*(f"op:{o}" for o in rules.op_types), *(f"match:{p}" for p in rules.patterns),
                          *(f"name:{n}" for n in rules.names[:5])]) or "none"  # fmt: skip
        if len(rules.names) > 5:
            pins += f" … (+{len(rules.names) - 5} names)"
        if rules.exclude:
            pins += f"; excluding {len(rules.exclude)}"
        self.query_one("#preset-pins", Static).update(printable(pins))
        index = ws.index
        problems = validate_preset(preset, index, for_export=self.export_format)
        text = Text()
        for p in problems:
            text.append(("✗ " if p.is_error else "⚠ ") + printable(p.one_line()) + "\n", style="red" if p.is_error else "yellow")
        if not problems:
            text.append("✓ valid for " + self.export_format, style="green")
        problems_view.update(text)
        io = self.query_one("#preset-io", FastTable)
        profiles = self.query_one("#preset-profiles", FastTable)
        export_view = self.query_one("#preset-export-text", Static)
        self.query_one("#preset-export-title", Static).update(
            Text(f"export preview: {self.export_format} (e: next format of {', '.join(FORMATS)})", style="bold")
        )
        if any(p.is_error for p in problems):
            io.set_rows([])
            profiles.set_rows([])
            export_view.update(Text("fix the errors above to see the export", style="dim"))
            return
        try:
            resolved = resolve_preset(preset, index, for_export=self.export_format)
            base = preset.path.parent if preset.path else Path.cwd()
            preview = export(resolved, self.export_format, base_dir=base)
        except UserError as exc:
            export_view.update(Text(exc.one_line(), style="red"))
            return
        io.set_rows(
            [(f"in:{f.tensor}", (f.tensor, "in", f.trtexec_text())) for f in resolved.input_formats]
            + [(f"out:{f.tensor}", (f.tensor, "out", f.trtexec_text())) for f in resolved.output_formats]
        )
        rows = []
        for name, profile in zip(resolved.profile_names, resolved.profiles):
            for tensor, (lo, opt, hi) in profile.items():
                shape = lambda s: "x".join(map(str, s))  # noqa: E731
                rows.append((f"{name}:{tensor}", (name, tensor, shape(lo), shape(opt), shape(hi))))
        profiles.set_rows(rows)
        export_view.update(Text(printable(preview, keep_newlines=True)))

    # ---- file actions ----------------------------------------------------------------------------------
    def action_next_format(self) -> None:
        self.export_format = FORMATS[(FORMATS.index(self.export_format) + 1) % len(FORMATS)]
        self.analyse()

    def _in_package(self, path: str | None) -> bool:
        return path is not None and Path(path).resolve().parent == data_path("").resolve().parent / "data"

    def action_save(self, then=None) -> None:
        """Save into the preset's file (Save as for a new preset or a packaged one); `then()` runs once saved."""
        path = self.workspace.preset_path
        if path is None or self._in_package(path):
            self.action_save_as(then)
            return
        self._save(path, then=then)

    def _save(self, path: str, *, overwrite: bool = False, force: bool = False, then=None) -> None:
        try:
            target = self.workspace.save_preset(path, overwrite=overwrite, force=force)
        except ChangedOnDisk as exc:
            self._changed_on_disk(exc, then)
            return
        except UserError as exc:
            self.notify(exc.one_line(), title="preset not saved", severity="error", timeout=10)
            return
        self.notify(f"saved {target}")
        self.analyse()
        if then is not None:
            then()

    def _changed_on_disk(self, exc: ChangedOnDisk, then) -> None:
        path = self.workspace.preset_path

        def chosen(answer: str | None) -> None:
            if answer == "r":
                self.app.load_preset_file(path)
            elif answer == "o":
                self._save(path, force=True, then=then)
            elif answer == "a":
                self.action_save_as(then)

        self.app.push_screen(
            ChoicePrompt("The preset file changed on disk", exc.one_line(),
                         [("r", "reload it (drop my edits)"), ("o", "overwrite it with my edits"), ("a", "save as…")]),
            chosen,
        )  # fmt: skip

    def action_save_as(self, then=None) -> None:
        ws = self.workspace
        current = ws.preset_path
        preset = ws.current_preset()
        suggestion = str(Path.cwd() / (Path(current).name if current else "preset.toml"))

        def done(answer: SaveAs | None) -> None:
            if answer is None:
                return
            if (answer.name, answer.description) != (preset.name, preset.description):
                preset.name, preset.description = answer.name, answer.description
                ws.mark_edited()
            same = current is not None and Path(answer.path).absolute() == Path(current).absolute()
            self._save(answer.path, overwrite=same, then=then)

        self.app.push_screen(SaveAsPrompt(suggestion, preset.name or "", preset.description or ""), done)

    def action_open(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.app.load_preset_file(path)

        self.app.push_screen(PathPrompt("Open preset", self.workspace.preset_path or ""), done)

    def action_new(self) -> None:
        ws = self.workspace
        model = str(ws.index.path) if ws.index is not None else (ws.model_path or "model.onnx")
        ws.set_preset(Preset(model=model), source=None, dirty=True)  # no pins: the selection is cleared

    def action_diff(self) -> None:
        ws = self.workspace
        if ws.preset is None or not ws.preset_path:
            self.notify("Nothing to compare: the preset has no file yet.")
            return
        try:
            saved = load_preset(ws.preset_path)
        except UserError as exc:
            self.notify(exc.one_line(), severity="error")
            return
        name = Path(ws.preset_path).name
        changes = [c.one_line(name, "the edits") for c in diff_presets(saved, ws.current_preset())]
        self.notify("\n".join(changes) if changes else "no changes since the file was saved",
                    title=f"vs {name}", timeout=15)  # fmt: skip

"""Preset screen: edit precision/TRT/TF32/constraints/opt level, see IO formats, profiles, live validation
and the exact export (trtexec command, script, ...) for the current settings; new/open/save/save as/diff."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select, Static, Switch, TextArea

from trt_tui.core.errors import UserError
from trt_tui.core.preset import FORMATS, Preset, diff_presets, load_preset, resolve_preset, validate_preset
from trt_tui.core.preset.exports import export_for_user
from trt_tui.core.preset.model import Profile
from trt_tui.core.preset.roundtrip import ChangedOnDisk
from trt_tui.core.preset.toml_io import preset_to_dict
from trt_tui.core.fileio import atomic_write
from trt_tui.core.resources import data_path
from trt_tui.ui.plain import printable
from trt_tui.ui.preset_form import FIELDS, OUTPUTS_HELP, dynamic_dims, migrate_target, parse_triple, profiles_for_form, read_form, triple_text, write_form
from trt_tui.ui.screens.base import TrtScreen
from trt_tui.ui.widgets.fast_table import FLEX_CSS, FastTable
from trt_tui.ui.widgets.choice_prompt import ChoicePrompt
from trt_tui.ui.widgets.path_prompt import PathPrompt
from trt_tui.ui.widgets.save_as_prompt import SaveAs, SaveAsPrompt

class FlexTable(FastTable):
    DEFAULT_CSS = "FlexTable " + FLEX_CSS


def field_value(widget) -> object:
    return widget.text if isinstance(widget, TextArea) else widget.value


def set_field_value(widget, value: object) -> None:
    if isinstance(widget, TextArea):
        widget.load_text(str(value))
    else:
        widget.value = value


def _safe_id(dim: str) -> str:
    """A widget id for a dim name (ids allow letters, digits, '-' and '_')."""
    return "".join(c if c.isalnum() or c in "-_" else f"_{ord(c):x}_" for c in dim)


class PresetScreen(TrtScreen):
    MODE_TITLE = "Preset"
    AUTO_FOCUS = "#preset-precision"  # not a text field: digits still switch screens on arrival
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="preset.save"),
        Binding("a", "save_as", "Save as", id="preset.save_as"),
        Binding("ctrl+o", "open", "Open", id="preset.open"),
        Binding("ctrl+n", "new", "New", id="preset.new"),
        Binding("d", "diff", "Diff vs file", id="preset.diff"),
        Binding("e", "next_format", "Export format", id="preset.export_format"),
        Binding("y", "copy_export", "Copy export", id="preset.copy_export"),
        Binding("w", "write_export", "Write export", id="preset.write_export"),
        Binding("P", "add_profile", "Add profile", id="preset.add_profile", show=False),
        Binding("m", "focus_field('dims')", "Focus dims", id="preset.focus.dims", show=False),
        *(Binding(f.key, f"focus_field('{f.id}')", f"Focus {f.label}", id=f"preset.focus.{f.id}", show=False)
          for f in FIELDS),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.export_format = "trtexec"
        self.form_problems: list[str] = []
        self._resolved = None  # the last valid resolution and its export text (copy / write)
        self._export_text: str | None = None
        self._dims_shown: tuple = ((), ())  # (dims, profile names) the dims inputs were built for
        self._loading = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="preset-body"):
            with VerticalScroll(id="preset-form"):
                yield Static("", id="preset-title", markup=False)
                for field in FIELDS:
                    if field.kind == "switch":
                        with Horizontal(classes="switch-row"):
                            yield Switch(True, id=f"preset-{field.id}")
                            yield Label(f"{field.label} [{field.key}]", markup=False)
                        continue
                    yield Label(f"{field.label} [{field.key}]", markup=False)
                    if field.kind == "select":
                        yield Select(list(field.options), allow_blank=False, value=field.options[0][1], id=f"preset-{field.id}")
                    elif field.kind == "text":
                        yield TextArea("", id=f"preset-{field.id}", soft_wrap=False, show_line_numbers=False,
                                       tab_behavior="focus", classes="form-text")  # fmt: skip
                        yield Static(OUTPUTS_HELP, classes="form-help", markup=False)
                    else:
                        yield Input(placeholder=field.placeholder, id=f"preset-{field.id}")
                yield Label("profiles: min,opt,max per dim [m] (P: add one)", markup=False)
                yield Vertical(id="preset-dims")
                yield Label("FP32 pins (edit them on the Model screen)")
                yield Static("", id="preset-pins", markup=False)
            with Vertical(id="preset-right"):
                yield Static("", id="preset-problems")
                with Horizontal(id="preset-tables"):
                    yield FlexTable(id="preset-io")
                    yield FlexTable(id="preset-profiles")
                yield Static("", id="preset-export-title")
                with VerticalScroll(id="preset-export"):
                    yield Static("", id="preset-export-text")

    def on_mount(self) -> None:
        # names take what the other columns leave (eliding their middle): the formats and min/opt/max stay
        io = self.query_one("#preset-io", FastTable)
        io.add_column("binding", "name", max_width=40, flex=True, min_width=8, overflow="middle")
        io.add_column("dir", "dir", width=3)
        io.add_column("format", "fmt", max_width=12)
        profiles = self.query_one("#preset-profiles", FastTable)
        profiles.add_column("profile", "profile", max_width=12)
        profiles.add_column("input", "input", max_width=40, flex=True, min_width=8, overflow="middle")
        for label in ("min", "opt", "max"):
            profiles.add_column(label, label, max_width=24)
        ws = self.workspace
        ws.preset_changed.subscribe(self, lambda _p: self.load_form())
        ws.pins_changed.subscribe(self, lambda _c: self.analyse())
        ws.model_changed.subscribe(self, lambda _i: self.load_form())
        self.load_form()

    # ---- form <-> preset -------------------------------------------------------------------------------
    def load_form(self) -> None:
        preset = self.workspace.preset
        if preset is None:
            self.query_one("#preset-title", Static).update("No preset yet: edit a field to start one (or ctrl+o).")
        self._loading = True
        try:
            # no preset yet: the form shows a new preset's values, so only a real edit differs from them
            for field_id, value in read_form(preset or Preset(model="")).items():
                widget = self.query_one(f"#preset-{field_id}")
                if field_value(widget) != value:
                    set_field_value(widget, value)
            if preset is not None:
                self._show_dims(preset)
        finally:
            self.call_after_refresh(setattr, self, "_loading", False)  # the Changed events of the above first
        self.analyse()

    def _show_dims(self, preset: Preset) -> None:
        """One min,opt,max input per profile and dynamic dim (rebuilt only when that set changes)."""
        dims = dynamic_dims(self.workspace.index, preset)
        profiles = profiles_for_form(preset)
        shape = (tuple(dims), tuple(p.name for p in profiles))
        box = self.query_one("#preset-dims", Vertical)
        if shape != self._dims_shown:
            self._dims_shown = shape
            box.remove_children()
            widgets = []
            for pi, prof in enumerate(profiles):
                for dim in dims:
                    widgets.append(Label(printable(f"{prof.name}: {dim}"), classes="dim-label"))
                    widgets.append(Input(placeholder="min,opt,max", id=f"dim-{pi}-{_safe_id(dim)}", classes="dim-input"))
            if not dims:
                widgets.append(Static("no dynamic dims in this model", classes="dim-label"))
            box.mount_all(widgets)
            self.call_after_refresh(self._fill_dims, preset)
        else:
            self._fill_dims(preset)

    def _fill_dims(self, preset: Preset) -> None:
        dims, _names = self._dims_shown
        for pi, prof in enumerate(profiles_for_form(preset)):
            for dim in dims:
                for widget in self.query(f"#dim-{pi}-{_safe_id(dim)}"):
                    text = triple_text(prof.dims.get(dim))
                    if widget.value != text:
                        widget.value = text

    @on(Select.Changed)
    @on(Switch.Changed)
    @on(Input.Changed, "#preset-form Input")
    @on(TextArea.Changed, "#preset-form TextArea")
    def _edited(self) -> None:
        if self._loading or self.workspace.preset is None and not self.is_mounted:
            return
        ws = self.workspace
        values = {f.id: field_value(self.query_one(f"#preset-{f.id}")) for f in FIELDS}
        before_preset = ws.preset
        if before_preset is None and values == read_form(Preset(model="")):
            return  # the empty form: nothing edited yet
        preset = ws.current_preset()
        before = preset_to_dict(preset)
        problems = write_form(preset, values)
        problems += self._write_dims(preset)
        trt = int(values["trt"])
        if trt != preset.trt:
            self._migrate(preset, trt)
            return
        self.form_problems = problems
        if preset_to_dict(preset) != before:
            ws.mark_edited()
        self.analyse()

    def _write_dims(self, preset: Preset) -> list[str]:
        dims, names = self._dims_shown
        if not dims:
            return []
        problems = []
        if not preset.profiles:
            preset.profiles = profiles_for_form(preset)
        for pi, prof in enumerate(preset.profiles):
            for dim in dims:
                widget = next(iter(self.query(f"#dim-{pi}-{_safe_id(dim)}")), None)
                if widget is None:
                    continue
                try:
                    triple = parse_triple(widget.value, f"{prof.name}: {dim}")
                except ValueError as exc:
                    problems.append(str(exc))
                    widget.add_class("bad-value")
                    continue
                widget.remove_class("bad-value")
                if triple is None:
                    prof.dims.pop(dim, None)
                else:
                    prof.dims[dim] = triple
        if all(not p.dims and not p.shapes for p in preset.profiles) and names == ("default",):
            preset.profiles = []  # the form's starting profile, left empty: not written
        return problems

    def _migrate(self, preset: Preset, trt: int) -> None:
        moved = migrate_target(preset, trt)
        changes = [c.one_line("before", "after") for c in diff_presets(preset, moved)]
        preset.trt, preset.trt_minor, preset.precision = moved.trt, moved.trt_minor, moved.precision
        self.workspace.mark_edited()
        self.notify("\n".join(changes), title=f"migrated to TensorRT {trt}", timeout=12)
        self.load_form()

    def action_focus_field(self, field_id: str) -> None:
        if field_id == "dims":
            first = next(iter(self.query(".dim-input")), None)
            if first is not None:
                first.focus()
            return
        self.query_one(f"#preset-{field_id}").focus()

    def action_add_profile(self) -> None:
        def done(name: str | None) -> None:
            if not name:
                return
            preset = self.workspace.current_preset()
            if any(p.name == name for p in preset.profiles):
                self.notify(f"a profile named {name!r} exists", severity="warning")
                return
            if not preset.profiles:
                preset.profiles = profiles_for_form(preset)
            preset.profiles.append(Profile(name=name))
            self.workspace.mark_edited()
            self.load_form()

        self.app.push_screen(PathPrompt("New profile's name (e.g. first-chunk, next-chunk)", "next-chunk"), done)

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
        for line in self.form_problems:
            text.append(f"✗ {printable(line)} (not applied)\n", style="red")
        for p in problems:
            text.append(("✗ " if p.is_error else "⚠ ") + printable(p.one_line()) + "\n", style="red" if p.is_error else "yellow")
        if not problems and not self.form_problems:
            text.append("✓ valid for " + self.export_format, style="green")
        problems_view.update(text)
        io = self.query_one("#preset-io", FastTable)
        profiles = self.query_one("#preset-profiles", FastTable)
        export_view = self.query_one("#preset-export-text", Static)
        self.query_one("#preset-export-title", Static).update(
            Text(f"export preview: {self.export_format} (e: next format of {', '.join(FORMATS)})", style="bold")
        )
        self._resolved = self._export_text = None
        if any(p.is_error for p in problems):
            io.set_rows([])
            profiles.set_rows([])
            export_view.update(Text("fix the errors above to see the export", style="dim"))
            return
        try:
            resolved = resolve_preset(preset, index, for_export=self.export_format)
            # paths as `trt-tui preset export` prints them (one rule for both)
            preview = export_for_user(resolved, self.export_format)
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
        self._resolved, self._export_text = resolved, preview
        # no wrapping: a flag broken over two lines reads as two; the preview scrolls sideways instead
        export_view.update(Text(printable(preview, keep_newlines=True), no_wrap=True, overflow="ignore"))

    # ---- taking the export away ----------------------------------------------------------------------
    def action_copy_export(self) -> None:
        if not self._export_text:
            self.notify("No export yet: fix the preset's errors first.", severity="warning")
            return
        self.app.copy_to_clipboard(self._export_text)
        self.notify(f"{self.export_format} export copied through the terminal (OSC 52); if your terminal does not "
                    "support it, w writes it to a file")  # fmt: skip

    def action_write_export(self) -> None:
        resolved, fmt = self._resolved, self.export_format
        if resolved is None:
            self.notify("No export yet: fix the preset's errors first.", severity="warning")
            return
        stem = Path(self.workspace.preset_path).stem if self.workspace.preset_path else "preset"
        ext = {"script": ".sh", "trtexec": ".sh", "polygraphy": ".sh"}.get(fmt, ".txt")

        def done(path: str | None) -> None:
            if not path:
                return
            target = Path(path).absolute()
            try:
                atomic_write(target, export_for_user(resolved, fmt, target))  # as `preset export -o` does
                if fmt == "script":
                    target.chmod(target.stat().st_mode | 0o111)
            except UserError as exc:
                self.notify(exc.one_line(), title="export not written", severity="error")
                return
            except OSError as exc:
                self.notify(f"{target}: {exc.strerror or exc}", title="export not written", severity="error")
                return
            self.notify(f"wrote {target}")

        self.app.push_screen(PathPrompt(f"Write the {fmt} export to (an existing file is not replaced)",
                                        str(Path.cwd() / f"{stem}.{fmt}{ext}")), done)  # fmt: skip

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

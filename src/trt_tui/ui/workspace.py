"""The workspace: what every screen works on (the model, the preset being edited, its pins, whether it is
saved, the last comparison), with the signals that tell screens it changed.

Screens talk to this object (`self.workspace`), not to attributes of the app. The pins live in one place:
the model's PinSelection once a model is open (the preset's `pins` are written from it on every edit), the
preset's own rules before that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.signal import Signal

from trt_tui.core.backends import BackendStatus
from trt_tui.core.graph import GraphIndex
from trt_tui.core.preset import Preset
from trt_tui.core.preset.roundtrip import PresetSource, save_preset_keeping_layout
from trt_tui.core.selection import PinSelection

if TYPE_CHECKING:  # the UI side of these is only named in annotations
    from trt_tui.core.parity.results import CompareResult
    from trt_tui.ui.app import TrtTuiApp
    from trt_tui.ui.widgets.node_table import NodeRows


@dataclass
class PinEdit:
    """What one pin edit did: the names whose pin state changed and the pinned count before and after."""

    changed: set[str]
    before: int
    after: int


class Workspace:
    def __init__(
        self,
        app: TrtTuiApp,
        *,
        model_path: str | None,
        preset_path: str | None,
        backends: list[BackendStatus],
        state_dir: Path | None,
    ) -> None:
        self._app = app
        self.model_path = model_path
        self.preset_path = preset_path
        self.backends = backends
        self.state_dir = state_dir  # None: --state-dir rules of the CLI ($TRT_TUI_HOME, ./.trt_tui)
        self.index: GraphIndex | None = None
        self.node_rows: NodeRows | None = None
        self.scopes: list[str] = []
        self.selection: PinSelection | None = None
        self.preset: Preset | None = None
        self.dirty = False  # the preset has edits its file does not have
        self.preset_source: PresetSource | None = None  # the file's text when read: saving keeps its layout
        self.last_comparison: CompareResult | None = None  # drives the Model screen's drift column
        self.model_changed: Signal[GraphIndex] = Signal(app, "model-changed")
        self.pins_changed: Signal[set[str]] = Signal(app, "pins-changed")
        self.preset_changed: Signal[Preset | None] = Signal(app, "preset-changed")
        self.comparison_changed: Signal[object] = Signal(app, "comparison-changed")

    def _changed(self) -> None:
        self._app.status_version += 1  # the status bar watches this

    # ---- the model ------------------------------------------------------------------------------------
    def set_model(self, index: GraphIndex, rows: NodeRows, scopes: list[str], selection: PinSelection) -> None:
        self.index, self.node_rows, self.scopes, self.selection = index, rows, scopes, selection
        self.model_path = str(index.path)
        if self.preset is not None and self.preset.pins != selection.rules:  # the preset changed meanwhile
            selection.set_rules(self.preset.pins)
        self.model_changed.publish(index)
        self._changed()

    def model_label(self) -> str:
        if self.index is not None:
            return self.index.path.name
        return Path(self.model_path).name + " (loading)" if self.model_path else ""

    # ---- the preset -----------------------------------------------------------------------------------
    def set_preset(self, preset: Preset, *, source: PresetSource | None, dirty: bool) -> None:
        """Make `preset` the one being edited (opened, new, reloaded); its pins replace the selection's."""
        self.preset = preset
        self.preset_source = source
        self.preset_path = str(source.path) if source is not None else None
        self.dirty = dirty
        if self.selection is not None:
            self.edit_pins(lambda sel: sel.set_rules(preset.pins), mark_dirty=False)
        self.preset_changed.publish(preset)
        self._changed()

    def current_preset(self) -> Preset:
        """The preset being edited (a new one for the open model when none was opened), pins included."""
        if self.preset is None:
            model = str(self.index.path) if self.index is not None else (self.model_path or "model.onnx")
            self.preset = Preset(model=model)
            self.preset_changed.publish(self.preset)
        if self.selection is not None:
            self.preset.pins = self.selection.rules
        return self.preset

    def mark_edited(self) -> None:
        self.dirty = True
        self._changed()

    def save_preset(self, path: str | Path, *, overwrite: bool = False, force: bool = False) -> Path:
        """Save the preset being edited, keeping the opened file's comments and layout.

        Raises UserError (ChangedOnDisk when the file changed since it was read, unless `force`)."""
        preset = self.current_preset()
        self.preset_source = save_preset_keeping_layout(
            preset, path, source=self.preset_source, overwrite=overwrite, force=force
        )
        self.preset_path = str(self.preset_source.path)
        self.dirty = False
        self._changed()
        return self.preset_source.path

    def preset_label(self) -> str:
        if self.preset is None and not self.preset_path:
            return "none" + (" ●" if self.dirty else "")
        name = Path(self.preset_path).name if self.preset_path else "new (unsaved)"
        return name + (" ●" if self.dirty else "")

    # ---- pins -----------------------------------------------------------------------------------------
    def edit_pins(
        self, edit: Callable[[PinSelection], set[str]], *, mark_dirty: bool = True
    ) -> PinEdit | None:
        """Apply one pin edit (a core PinSelection method) and tell every screen what changed.

        None when no model is open; a UserError from the edit propagates (the caller says it)."""
        if self.selection is None:
            return None
        before = len(self.selection)
        changed = edit(self.selection)
        if changed:
            if mark_dirty:
                self.dirty = True
            if self.preset is not None:
                self.preset.pins = self.selection.rules
            self.pins_changed.publish(changed)
            self._changed()
        return PinEdit(set(changed), before, len(self.selection))

    def pinned_names(self) -> list[str]:
        return sorted(self.selection.pinned) if self.selection is not None else []

    # ---- comparisons ----------------------------------------------------------------------------------
    def set_last_comparison(self, result: CompareResult | None) -> None:
        self.last_comparison = result
        self.comparison_changed.publish(result)


def describe_pin_edit(edit: PinEdit, what: str) -> str:
    verb = "pinned" if edit.after >= edit.before else "unpinned"
    return f"{verb} {abs(edit.after - edit.before)} node(s): {what} (FP32 pins: {edit.after})"

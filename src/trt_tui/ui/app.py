"""The trt_tui app: thin on purpose (modes, global bindings, shared state, workers' error handling)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from trt_tui.core.backends import BackendStatus, detect
from trt_tui.core.errors import UserError
from trt_tui.core.graph import GraphIndex, load_graph
from trt_tui.core.preset import Preset, load_preset, save_preset
from trt_tui.core.selection import PinSelection, scopes_of
from trt_tui.ui.commands import TrtCommands
from trt_tui.ui.keymap import load_keymap
from trt_tui.ui.messages import ModelLoaded
from trt_tui.ui.screens.help import HelpScreen
from trt_tui.ui.screens.model import ModelScreen
from trt_tui.ui.widgets.node_table import NodeRows
from trt_tui.ui.screens.parity import ParityScreen
from trt_tui.ui.screens.builds import BuildsScreen
from trt_tui.ui.screens.streaming import StreamingScreen
from trt_tui.ui.screens.preset import PresetScreen

SCREENS_BY_MODE: dict[str, type[Screen]] = {
    "model": ModelScreen,
    "preset": PresetScreen,
    "builds": BuildsScreen,
    "parity": ParityScreen,
    "streaming": StreamingScreen,
}


class TrtTuiApp(App):
    TITLE = "trt_tui"
    CSS_PATH = "trt_tui.tcss"
    MODES = dict(SCREENS_BY_MODE)
    COMMANDS = App.COMMANDS | {TrtCommands}
    BINDINGS = [
        Binding("1", "switch_mode('model')", "Model", id="app.mode.model"),
        Binding("2", "switch_mode('preset')", "Preset", id="app.mode.preset"),
        Binding("3", "switch_mode('builds')", "Builds", id="app.mode.builds"),
        Binding("4", "switch_mode('parity')", "Parity", id="app.mode.parity"),
        Binding("5", "switch_mode('streaming')", "Streaming", id="app.mode.streaming"),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    status_version: reactive[int] = reactive(0, init=False)

    def __init__(
        self,
        model_path: str | None = None,
        preset_path: str | None = None,
        *,
        backends: list[BackendStatus] | None = None,
        keymap_file: Path | None = None,
        build_state_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.model_path = model_path
        self.preset_path = preset_path
        self.keymap_file = keymap_file
        self.build_state_dir = build_state_dir  # None: --state-dir rules of the CLI ($TRT_TUI_HOME, ./.trt_tui)
        self.build_manager = None  # started by the Builds screen on first visit
        self.index: GraphIndex | None = None
        self.node_rows: NodeRows | None = None
        self.scopes: list[str] = []
        self.selection: PinSelection | None = None
        self.preset_dirty = False
        self.backends = backends if backends is not None else detect()
        self.preset: Preset | None = None
        self.model_changed: Signal[GraphIndex] = Signal(self, "model-changed")
        self.pins_changed: Signal[set[str]] = Signal(self, "pins-changed")
        self.preset_changed: Signal[Preset | None] = Signal(self, "preset-changed")

    # ---- start-up ------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        gc.freeze()  # imports and start-up objects live forever: keep them out of every later GC pass
        try:
            keymap = load_keymap(self.keymap_file, known_ids={b.id for _, b in self.all_bindings() if b.id})
        except UserError as exc:
            self.notify(exc.one_line(), title="keymap ignored", severity="error", timeout=10)
        else:
            if keymap:
                self.set_keymap(keymap)
        self.switch_mode("model")
        if self.preset_path:
            self.load_preset_file(self.preset_path)  # opens the preset's model when no MODEL was given
        elif self.model_path:
            self.load_model(self.model_path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preset", name="load-preset")
    def load_preset_file(self, path: str) -> None:
        preset = load_preset(path)
        self.call_from_thread(self._preset_loaded, preset)

    def _preset_loaded(self, preset: Preset) -> None:
        self.preset = preset
        self.preset_path = str(preset.path) if preset.path else None
        self.preset_dirty = False
        if self.selection is not None:
            self.edit_pins(lambda sel: sel.set_rules(preset.pins), mark_dirty=False)
        elif not self.model_path:
            self.model_path = str(preset.model_path)
            self.load_model(self.model_path)
        elif self.model_path and self.index is None and not self._model_loading():
            self.load_model(self.model_path)
        self.preset_changed.publish(preset)
        self.status_version += 1

    def _model_loading(self) -> bool:
        return any(w.name == "load-model" and w.is_running for w in self.workers)

    @work(thread=True, exclusive=True, exit_on_error=False, group="model", name="load-model")
    def load_model(self, path: str) -> None:
        # Indexing allocates ~10^5 long-lived objects; with the collector on, each full pass walks all of
        # them while holding the GIL (measured: 250-300 ms UI stalls on a 10,000-node model). Collect
        # nothing while indexing, then freeze the result so later passes skip it.
        enabled = gc.isenabled()
        gc.disable()
        try:
            index = load_graph(path)
            pins = self.preset.pins if self.preset is not None else None
            message = ModelLoaded(index, NodeRows.build(index), scopes_of(index), PinSelection(index, pins))
        finally:
            gc.freeze()
            if enabled:
                gc.enable()
        self.post_message(message)

    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.index = message.index
        self.node_rows = message.rows
        self.scopes = message.scopes
        self.selection = message.selection
        if self.preset is not None and self.preset.pins != self.selection.rules:  # the preset changed meanwhile
            self.selection.set_rules(self.preset.pins)
        self.model_changed.publish(message.index)
        self.status_version += 1

    # ---- shared state --------------------------------------------------------------------------------
    def edit_pins(
        self, edit: Callable[[PinSelection], set[str]], describe: str | None = None, *, mark_dirty: bool = True
    ) -> None:
        """Apply one pin edit (a core PinSelection method) and tell every screen what changed."""
        if self.selection is None:
            self.notify("Open a model first.", severity="warning")
            return
        before = len(self.selection)
        try:
            changed = edit(self.selection)
        except UserError as exc:
            self.notify(exc.one_line(), severity="error")
            return
        if not changed:
            if describe:
                self.notify(f"No change: {describe}")
            return
        if mark_dirty:
            self.preset_dirty = True
        if self.preset is not None:
            self.preset.pins = self.selection.rules
        self.pins_changed.publish(changed)
        self.status_version += 1
        if describe:
            delta = len(self.selection) - before
            verb = "pinned" if delta >= 0 else "unpinned"
            self.notify(f"{verb} {abs(delta)} node(s): {describe} (FP32 pins: {len(self.selection)})")

    def current_preset(self) -> Preset:
        """The preset being edited (a new one for the open model when none was opened), pins included."""
        if self.preset is None:
            model = str(self.index.path) if self.index is not None else (self.model_path or "model.onnx")
            self.preset = Preset(model=model)
            self.preset_changed.publish(self.preset)
        if self.selection is not None:
            self.preset.pins = self.selection.rules
        return self.preset

    def mark_preset_edited(self) -> None:
        self.preset_dirty = True
        self.status_version += 1

    def save_preset_to(self, path: str | Path, *, overwrite: bool = False) -> Path | None:
        try:
            target = save_preset(self.current_preset(), path, overwrite=overwrite)
        except UserError as exc:
            self.notify(exc.one_line(), title="preset not saved", severity="error", timeout=10)
            return None
        self.preset_path = str(target)
        self.preset_dirty = False
        self.status_version += 1
        self.notify(f"saved {target}")
        return target

    def model_label(self) -> str:
        if self.index is not None:
            return self.index.path.name
        return Path(self.model_path).name + " (loading)" if self.model_path else ""

    def preset_label(self) -> str:
        if self.preset is None and not self.preset_path:
            return "none" + (" ●" if self.preset_dirty else "")
        name = Path(self.preset_path).name if self.preset_path else "new (unsaved)"
        return name + (" ●" if self.preset_dirty else "")

    # ---- bindings: help screen, palette, keymap ------------------------------------------------------
    def all_bindings(self, current: Screen | None = None) -> Iterator[tuple[str, Binding]]:
        """("global" | mode title, binding) for the app and every mode (or only the current screen)."""
        for b in self.BINDINGS:
            if isinstance(b, Binding):
                yield "global", b
        classes = [type(current)] if current is not None else list(SCREENS_BY_MODE.values())
        for cls in classes:
            title = getattr(cls, "MODE_TITLE", "") or cls.__name__
            for b in cls.__dict__.get("BINDINGS", []):
                if isinstance(b, Binding):
                    yield title, b

    def keys_for(self, binding: Binding) -> str:
        keys = self._keymap.get(binding.id, binding.key) if binding.id else binding.key
        return ", ".join(self.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # ---- the one error handler -----------------------------------------------------------------------
    @on(Worker.StateChanged)
    def worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors surface (screens forward theirs): a notification, never a crash."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            text = error.one_line() if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
            self.notify(text, title=f"{event.worker.name} failed", severity="error", timeout=10)

"""Pin search dialog (opened from the Parity screen): target, samples, budget; live evaluations; apply.

The search runs in a worker thread (`trt_tui.core.search.search_request`) on the Parity screen's
ComparisonRequest (the one `trt-tui search --preset P` builds: the preset's seed, OPT shapes, input data and
tolerances), made for the number of samples asked; every evaluation arrives as a message and adds a
row (pins vs error), the status line shows the best passing set so far. `a` applies the answer to the current
preset (its pin rules are replaced; the preset is marked unsaved), `c` cancels (the best set is kept).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Checkbox, DataTable, Input, Label, ProgressBar, Static

from trt_tui.core.errors import UserError
from trt_tui.core.search.strategy import Progress


class SearchProgress(Message):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress


class SearchDone(Message):
    def __init__(self, result) -> None:
        super().__init__()
        self.result = result


class SearchFailed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def worst_error(errors: dict[str, dict[str, float]]) -> float:
    """The largest rel_rms over the checked outputs (a stream's: its trend metric's maximum)."""
    values = []
    for metrics in errors.values():
        v = metrics.get("rel_rms", next((m for k, m in metrics.items() if k.endswith("_max")), None))
        if v is not None:
            values.append(math.inf if math.isnan(v) else v)
    return max(values, default=0.0)


def _count(text: str) -> int | None:
    """The whole number in an integer Input ('+5', '1_000': as int() reads them), else None ('-', '1_')."""
    try:
        return int(text)
    except ValueError:
        return None


class SearchScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    SearchScreen { align: center middle; }
    #search-body { width: 110; max-width: 100%; height: 34; max-height: 100%; border: thick $primary; background: $surface; padding: 0 1; }
    #search-form { height: 3; }
    #search-form Label { padding: 1 1 0 0; }
    #search-target { width: 1fr; }
    #search-samples { width: 20; }
    #search-budget { width: 10; }
    #search-minimal { width: auto; border: none; }
    #search-log { height: 1fr; }
    #search-status { height: 3; }
    """
    BINDINGS = [
        Binding("ctrl+r", "start", "Start", id="search.start"),
        Binding("c", "cancel", "Cancel", id="search.cancel"),
        Binding("a", "apply", "Apply to preset", id="search.apply"),
        Binding("escape", "close", "Close", id="search.close"),
    ]

    def __init__(self, request_for: Callable[[int], object], precision: str, samples: str = "1", target: str = "") -> None:
        """`request_for(n)`: the ComparisonRequest with n random samples (called in the worker thread)."""
        super().__init__()
        self.request_for = request_for
        self.precision = precision
        self.samples_text = samples
        self.target_text = target
        self.cancel_event = threading.Event()
        self.running = False
        self.result = None
        self.searched_targets: list[str] = []  # the last run's targets (none: the preset's tolerances)

    def compose(self) -> ComposeResult:
        with Vertical(id="search-body"):
            yield Label(f"Search FP32 pins · {self.precision} · Enter or ctrl+r starts, c cancels, a applies, Esc closes")
            with Horizontal(id="search-form"):
                yield Label("target")
                yield Input(self.target_text, placeholder="e.g. log_probs:rel_rms<=1e-3 (empty: the preset's tolerances)",
                            id="search-target")  # fmt: skip
                yield Label("samples")
                yield Input(self.samples_text, placeholder="N random, or a file/folder", id="search-samples")
                yield Label("budget")
                yield Input("", placeholder="none", id="search-budget", type="integer")
                yield Checkbox("minimal", id="search-minimal", tooltip="then drop each pin left alone if the set still passes "
                               "(one more evaluation per pin; often a smaller set)")  # fmt: skip
            yield ProgressBar(total=None, id="search-progress", show_eta=False)
            yield Static("idle", id="search-status")
            table = DataTable(id="search-log", cursor_type="row", zebra_stripes=True)
            table.add_columns("#", "phase", "pins", "worst error", "")
            yield table

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_start()

    # ---- running -------------------------------------------------------------------------------------
    def action_start(self) -> None:
        if self.running:
            self.notify("A search is running: cancel it (c) first.", severity="warning")
            return
        target = self.query_one("#search-target", Input).value.strip()
        samples = self.query_one("#search-samples", Input).value.strip() or "1"
        budget_text = self.query_one("#search-budget", Input).value.strip()
        preset = self.app.workspace.preset
        policy = preset.tolerance_policy() if preset is not None else None
        if not target and policy is None:
            self.notify("Give a target (e.g. rel_rms<=1e-3) or open a preset with tolerances.", severity="warning")
            return
        # an integer Input still takes a lone "-" (a negative number begun): never an int() that crashes the app
        budget = _count(budget_text) if budget_text else None
        if budget_text and (budget is None or budget < 1):
            self.notify("The budget is a number of evaluations, at least 1 (empty: no limit).", severity="warning")
            return
        if samples.isdecimal() and int(samples) < 1:  # isdecimal: what int() reads ('²' is a digit, no number)
            self.notify("Samples: at least 1 random sample, or a file or folder of them.", severity="warning")
            return
        self.query_one("#search-log", DataTable).clear()
        self.query_one("#search-progress", ProgressBar).update(total=budget, progress=0)
        self.query_one("#search-status", Static).update("preparing (FP32 reference)…")
        self.cancel_event = threading.Event()
        self.running = True
        self.result = None
        self.query_one("#search-log", DataTable).focus()  # keys (c, a) act on the dialog, not on an input
        minimal = self.query_one("#search-minimal", Checkbox).value
        self.run_search(target, samples, budget, self.cancel_event, minimal)

    @work(thread=True, exclusive=True, exit_on_error=False, group="search", name="pin-search")
    def run_search(self, target: str, samples: str, budget: int | None, cancel: threading.Event, minimal: bool = False) -> None:
        from trt_tui.core.search.session import search_request

        try:
            random = samples.isdecimal()
            request = self.request_for(int(samples) if random else 1)
            # the typed target, else the preset's output targets, else its tolerances (as `trt-tui search --preset`)
            targets = [target] if target else list(request.options.targets)
            self.searched_targets = targets  # what `a` writes into the preset with the pins (as search -o)
            job = search_request(request, targets=targets, samples=[] if random else [samples],
                                 budget=budget)  # fmt: skip
            for w in job.warnings:
                self.app.call_from_thread(self.notify, w, title="search", severity="warning")
            result = job.run(cancel=cancel, on_progress=lambda p: self.post_message(SearchProgress(p)), minimal=minimal)
            self.post_message(SearchDone(result))
        except UserError as exc:
            self.post_message(SearchFailed(exc.one_line()))
        finally:
            self.app.call_from_thread(setattr, self, "running", False)

    def on_search_progress(self, message: SearchProgress) -> None:
        p = message.progress
        ev = p.last
        if ev is None:
            return
        self.query_one("#search-log", DataTable).add_row(
            str(ev.number or "-"), ev.phase, str(len(ev.pins)), f"{worst_error(ev.verdict.errors):.3g}",
            "pass" if ev.passed else "fail",
        )  # fmt: skip
        self.query_one("#search-progress", ProgressBar).update(progress=p.evaluations)
        best = "none yet" if p.best is None else f"{len(p.best)} pins"
        self.query_one("#search-status", Static).update(
            f"evaluation {p.evaluations}{f'/{p.budget}' if p.budget else ''} · {p.phase} · {p.candidates} candidate nodes · best {best}"
        )

    def on_search_done(self, message: SearchDone) -> None:
        r = self.result = message.result
        self.running = False
        head = f"{r.message}: {len(r.pins)} pins ({r.rules.text()})" if r.passed else r.message
        self.query_one("#search-status", Static).update(
            f"{head} · {r.evaluations} evaluations, {r.elapsed_s:.1f} s" + (" · a applies it to the preset" if r.passed else "")
        )
        for reason in r.reasons:  # why nothing passed, or why a set that passed may not hold (fragile)
            self.notify(reason, title="search", severity="warning", timeout=20)

    def on_search_failed(self, message: SearchFailed) -> None:
        self.running = False
        self.query_one("#search-status", Static).update(message.text)
        self.notify(message.text, title="search", severity="error")

    def action_cancel(self) -> None:
        if self.running:
            self.cancel_event.set()
            self.query_one("#search-status", Static).update("cancelling after this evaluation (the best set is kept)…")

    def action_apply(self) -> None:
        r = self.result
        if r is None or not r.passed:
            self.notify("No passing pin set to apply yet.", severity="warning")
            return
        from trt_tui.core.search.preset_out import pins_as_rules
        from trt_tui.ui.workspace import describe_pin_edit

        rules = pins_as_rules(r)
        ws = self.app.workspace
        preset = ws.current_preset()  # a new preset for the model when none is open
        if self.searched_targets:  # compare judges the pins by what they were found for
            preset.comparison.targets = list(self.searched_targets)
        edit = ws.edit_pins(lambda sel: sel.set_rules(rules))
        ws.mark_edited()  # even when the pins were already these: the preset now holds the search's answer
        if edit is not None:
            self.notify(describe_pin_edit(edit, f"search result ({r.rules.text()})"))

    def action_close(self) -> None:
        if self.running:
            self.cancel_event.set()
        self.dismiss(None)

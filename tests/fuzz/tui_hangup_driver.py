"""Test driver (not a test): runs the TUI with one hanging trtexec build (the test double) submitted at
mount. argv: TMP_DIR. Used by test_tui_hangup.py inside a pseudo-terminal."""

import sys
from pathlib import Path

import trt_tui.ui.app as app_module
from trt_tui.ui.app import TrtTuiApp
from tests.core.builds.conftest import trtexec_request

TMP = Path(sys.argv[1])


class HangingBuildApp(TrtTuiApp):
    CSS_PATH = str(Path(app_module.__file__).parent / TrtTuiApp.CSS_PATH)  # relative to the subclass otherwise

    def on_mount(self) -> None:
        super().on_mount()
        self.run_worker(lambda: self.job_manager().submit(trtexec_request(TMP)), thread=True)


if __name__ == "__main__":
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, file=open(TMP / "stacks.txt", "w"), all_threads=True)
    app = HangingBuildApp(build_state_dir=TMP / "state")
    app.run()
    sys.exit(app.return_code or 0)

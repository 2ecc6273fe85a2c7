"""Where trt_tui keeps build state: `--state-dir`, else $TRT_TUI_HOME, else ./.trt_tui (git-ignored)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "TRT_TUI_HOME"


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path.cwd() / ".trt_tui"

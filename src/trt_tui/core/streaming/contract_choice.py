"""Which streaming contract goes with a model: the user's remembered choice, else one found by name.

    choices = ContractChoices(state_dir)
    path = choices.get(model) or find_contract(model)      # None: ask the user
    contract, warnings = check_contract(path, index)       # UserError when missing or invalid
    choices.remember(model, path)

A contract is found as `<model stem>.contract.json` next to the model, else in `./contracts/`, else among
the files shipped with trt_tui (the demo's contract, so `trt-tui demo` works when installed, not only from
a checkout). The shipped copy comes last so that a user's own copy of it (the checkout's
`contracts/`) wins.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from trt_tui.core import jsonio
from trt_tui.core.errors import UserError
from trt_tui.core.fileio import atomic_write
from trt_tui.core.graph import GraphIndex
from trt_tui.core.resources import data_path
from trt_tui.core.streaming.contract import Contract, ContractError, load_contract
from trt_tui.core.streaming.contract_model import check_against_model

CHOICES_FILE = "streaming_contracts.json"
SUFFIX = ".contract.json"


def find_contract(model: str | os.PathLike[str], cwd: Path | None = None) -> Path | None:
    name = Path(model).stem + SUFFIX
    shipped = data_path(name)
    beside = Path(model).with_name(name)
    candidates = [beside, (cwd or Path.cwd()) / "contracts" / name, shipped]
    if beside.resolve().parent == shipped.resolve().parent:
        candidates.remove(beside)  # the demo model is itself shipped: its neighbour is the fallback
    return next((c for c in candidates if c.is_file()), None)


def check_contract(contract: str | os.PathLike[str] | Contract, index: GraphIndex) -> tuple[Contract, list[str]]:
    """Load a contract (unless given one) and check it fits the model: (contract, warnings). A UserError
    names the file when it is missing, malformed, or binds tensors the model does not have."""
    c = contract if isinstance(contract, Contract) else load_contract(contract)
    problems, warnings = check_against_model(c, index)
    if problems:
        raise ContractError(problems, c.path)
    return c, list(c.warnings) + warnings


class ContractChoices:
    """Contract paths chosen per model (absolute paths), kept in a small JSON file in the state directory."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.path = Path(state_dir) / CHOICES_FILE

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            # Only remembered conveniences live here: a missing or damaged file means "nothing remembered",
            # and the next choice rewrites it whole.
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}

    def get(self, model: str | os.PathLike[str]) -> Path | None:
        """The remembered contract of `model`, if it still exists."""
        value = self._read().get(str(Path(model).resolve()))
        return Path(value) if value and Path(value).is_file() else None

    def remember(self, model: str | os.PathLike[str], contract: str | os.PathLike[str]) -> None:
        data = self._read()
        data[str(Path(model).resolve())] = str(Path(contract).resolve())
        try:
            atomic_write(self.path, jsonio.dumps(data, indent=2, sort_keys=True) + "\n", overwrite=True, make_parents=True)
        except OSError as exc:
            raise UserError(f"cannot remember the contract choice: {exc.strerror or exc}", self.path) from None

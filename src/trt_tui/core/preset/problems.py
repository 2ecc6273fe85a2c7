"""One validation finding: where in the preset (a key path such as `profiles[1].dims.T`), how bad, what."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Problem:
    key_path: str
    severity: str  # "error" blocks resolving and exporting; "warning" is reported and let through
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def one_line(self) -> str:
        return f"{self.severity}: {self.key_path}: {self.message}" if self.key_path else f"{self.severity}: {self.message}"

    def to_json(self) -> dict:
        return asdict(self)


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]

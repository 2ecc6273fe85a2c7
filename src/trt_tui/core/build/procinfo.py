"""Is this pid still the process we started? (pids are reused, so a pid alone proves nothing.)"""

from __future__ import annotations

import os


def start_ticks(pid: int) -> str | None:
    """The process start time in clock ticks since boot (Linux /proc), or None when unknown/gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def process_identity(pid: int) -> str:
    return start_ticks(pid) or ""


def is_same_process(pid: int | None, identity: str | None) -> bool:
    """True when `pid` is alive and (where /proc tells) started at the recorded time."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's: the identity check below decides
    now = start_ticks(pid)
    if now is None or not identity:
        return now is not None or not os.path.exists("/proc")  # no /proc: trust kill(0)
    return now == identity


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids whose process group is `pgid` (Linux /proc; [] elsewhere)."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members

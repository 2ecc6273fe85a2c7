"""The corpus table: every CLI route on every corpus model, ok or the one-line failure, wall time, peak memory.

Usage: python benchmarks/bench_corpus.py [--only ID ...] [--route NAME ...] [--markdown]
Fetch the corpus first (python benchmarks/corpus/fetch.py). Each route runs the real CLI in a child process
(benchmarks/corpus/routes.py: what is run and what is checked); time, CPU time (user + system) and peak RSS
are the checked CLI run's own. CPU time is what predicts CI on an idle machine when this one is shared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))

import fetch  # noqa: E402
import routes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], metavar="ID", help="only this model (repeatable)")
    parser.add_argument("--route", action="append", default=[], help="only this route (repeatable)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    entries = [e for e in fetch.load_manifest()["models"] if not args.only or e["id"] in args.only]
    missing = [e["id"] for e in entries if not fetch.is_present(e)]
    if missing:
        print(f"bench_corpus: not in the cache {fetch.cache_dir()}: {', '.join(missing)} "
              "(run python benchmarks/corpus/fetch.py)", file=sys.stderr)  # fmt: skip
        return 2
    rows, start = [], time.perf_counter()
    if args.markdown:
        print("| model | route | result | time s | CPU s | peak MB |\n| --- | --- | --- | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="trt_tui_bench_corpus_") as tmp:
        for entry in entries:
            work = Path(tmp) / entry["id"]
            work.mkdir()
            for route in routes.routes_for(entry):
                if args.route and route not in args.route:
                    continue
                r = routes.run_route(entry, fetch.model_path(entry), route, work)
                rows.append(r)
                if args.markdown:
                    print(f"| {r.model} | {r.route} | {r.message.replace('|', '/')} | {r.seconds:.1f} | {r.cpu_s:.1f} | {r.peak_mb:.0f} |")
                else:
                    print(f"{r.model:26} {r.route:14} {r.seconds:6.1f}s {r.cpu_s:6.1f}s cpu {r.peak_mb:6.0f}MB  {r.message}",
                          flush=True)  # fmt: skip
    ok = sum(r.ok for r in rows)
    print(f"\n{ok} ok, {len(rows) - ok} failing, of {len(rows)} routes on {len(entries)} models "
          f"({time.perf_counter() - start:.0f} s in all, one route at a time; the CLI runs used "
          f"{sum(r.cpu_s for r in rows):.0f} CPU s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

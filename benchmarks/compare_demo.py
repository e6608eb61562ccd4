"""Two ``geocorr demo`` outputs give the same numbers and the same report tables.

Run::

    .venv/bin/python benchmarks/compare_demo.py BEFORE_DIR AFTER_DIR [--rel-tol 0]

``BEFORE_DIR`` and ``AFTER_DIR`` are two ``geocorr demo --out`` folders (e.g.
the same command at seed 0 before and after a refactor). It compares their
``results.json`` key by key with
:func:`geocorr.demo.results.results_differences`: numbers must be equal
(``--rel-tol`` relaxes that), timing keys (``timings_s``, the adapters'
``seconds``) are skipped. Then it compares every ``<table>`` of their
``report.html`` (the test-pair, pseudo-label and stage-1 tables) as text.

Prints each difference and exits 1 when there is one, 0 when both agree,
2 when a file is missing or not JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from geocorr.demo.results import results_differences

_TABLE = re.compile(r"<table\b.*?</table>", re.DOTALL)


def report_tables(html: str) -> list[str]:
    """Every ``<table>...</table>`` of a report page, in page order."""
    return _TABLE.findall(html)


def compare(before: Path, after: Path, rel_tol: float = 0.0) -> list[str]:
    """The differences between two demo output folders (module doc); empty when they agree.

    Raises:
        ValueError: a ``results.json`` or ``report.html`` is missing, or not JSON.
    """
    docs, pages = [], []
    for d in (before, after):
        res, rep = d / "results.json", d / "report.html"
        for f in (res, rep):
            if not f.is_file():
                raise ValueError(f"{f}: not found (is {d} a `geocorr demo --out` folder?)")
        try:
            docs.append(json.loads(res.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{res}: not JSON ({exc})") from None
        pages.append(report_tables(rep.read_text(encoding="utf-8")))
    out = [f"results.json {x}" for x in results_differences(*docs, rel_tol=rel_tol)]
    (ta, tb) = pages
    if len(ta) != len(tb):
        out.append(f"report.html: {len(ta)} tables != {len(tb)} tables")
    out += [f"report.html table {i}: differs"
            for i, (x, y) in enumerate(zip(ta, tb, strict=False)) if x != y]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--rel-tol", type=float, default=0.0,
                   help="relative tolerance for numbers (default 0: identical)")
    args = p.parse_args(argv)
    try:
        diffs = compare(args.before, args.after, args.rel_tol)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for d in diffs:
        print(d)
    print(f"{len(diffs)} difference(s) between {args.before} and {args.after} "
          "(timing keys ignored)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())

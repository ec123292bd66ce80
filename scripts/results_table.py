"""Print the README results table from an evaluation's ``metrics.json``.

    python scripts/results_table.py REPORT_DIR/metrics.json
    python scripts/results_table.py REPORT_DIR/metrics.json --readme README.md

With ``--readme`` the text between ``<!-- results-table:start -->`` and
``<!-- results-table:end -->`` is replaced by the table (the markers stay), so the
README's numbers always come from a real ``insar-denoise evaluate`` run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from insar_denoise.evaluation.report import results_table

START = "<!-- results-table:start -->"
END = "<!-- results-table:end -->"


def replace_between_markers(text: str, table: str) -> str:
    """``text`` with everything between the START and END markers replaced by ``table``."""
    i, j = text.find(START), text.find(END)
    if i < 0 or j < 0 or j < i:
        raise ValueError(f"no {START} ... {END} block in the README")
    return text[: i + len(START)] + "\n" + table.strip() + "\n" + text[j:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", type=Path, help="metrics.json written by insar-denoise evaluate")
    parser.add_argument("--readme", type=Path, help="README to update in place between markers")
    args = parser.parse_args(argv)
    try:
        table = results_table(json.loads(args.metrics.read_text()))
        if args.readme is None:
            print(table)
            return 0
        text = replace_between_markers(args.readme.read_text(), table)
    except (OSError, ValueError, KeyError) as exc:
        print(f"results_table: error: {args.readme or args.metrics}: {exc}", file=sys.stderr)
        return 2
    args.readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m cbir.book`` (``make book``): assemble and build the course site into ``outputs/site/``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cbir import book


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cbir.book", description=__doc__)
    ap.add_argument("--out", type=Path, default=None, help="HTML folder (default outputs/site)")
    ap.add_argument("--src", type=Path, default=None, help="Sphinx source folder (default outputs/site-src)")
    ap.add_argument("-j", "--jobs", default="1", help="sphinx-build -j: processes (a number or auto)")
    ap.add_argument("--no-link-check", action="store_true", help="skip the check of the pages' links")
    a = ap.parse_args(argv)
    try:
        site = book.build(src=a.src, out=a.out, check_links=not a.no_link_check, jobs=a.jobs)
    except book.BookBuildError as e:
        print(e, file=sys.stderr)
        return 1
    print(site.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())

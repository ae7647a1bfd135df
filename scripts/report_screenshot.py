"""Screenshot a groklab report in headless Chromium (the picture of the report in docs/comparisons.md).

    python scripts/report_screenshot.py REPORT_DIR docs/report.png [--width 1280 --height 900]

Needs Debian's chromium (apt install chromium) and Playwright's Python client (pip install -e ".[dev]").
It also prints what the browser met: console errors, images that did not display, the table's rows.
"""

import argparse
import sys

from groklab.report import inspect_page


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", help="a folder written by groklab report")
    ap.add_argument("png", help="the screenshot to write")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    a = ap.parse_args()
    seen = inspect_page(f"{a.report}/index.html", a.png, a.width, a.height)
    broken = [i["src"] for i in seen["images"] if not (i["complete"] and i["width"] and i["height"])]
    print(f"{len(seen['images'])} images ({len(broken)} not displayed), {seen['rows']} table rows, "
          f"{len(seen['errors'])} console errors; wrote {a.png}")
    for msg in seen["errors"] + [f"not displayed: {b}" for b in broken]:
        print("  " + msg)
    return 1 if seen["errors"] or broken else 0


if __name__ == "__main__":
    sys.exit(main())

"""Pictures of the built manual: the home page and the tutorial, as a reader's browser shows them.

Serves site/ (what `make docs` built) on a loopback port, opens each page in headless Chromium
(Debian's chromium and chromium-driver, driven by selenium, as scripts/serve_screenshot.py) and
saves a screenshot of its first screen:

    make docs && .venv/bin/python scripts/site_screenshots.py      # → docs/img/site_*.png

the home page, the tutorial's top and its movie, and the notebook's page (executed by make notebook).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_screenshot import headless_chromium  # noqa: E402

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # no line per request
        pass


PAGES = {"site_home.png": "", "site_tutorial.png": "embeddings/",
         "site_tutorial_movie.png": "embeddings/#watch-the-rows-move",
         "site_notebook.png": "notebooks/embedding_lab/"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", default="site", help="the built manual (default site/, made by make docs)")
    ap.add_argument("--out", default="docs/img", help="the folder of the pictures (default docs/img)")
    ap.add_argument("--size", default="1280,900", help="the browser window, in pixels (default 1280,900)")
    args = ap.parse_args()
    site = Path(args.site)
    if not (site / "index.html").is_file():
        print(f"{site}/index.html: not found; build the manual first: make docs", file=sys.stderr)
        return 2
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    page = headless_chromium(args.size)
    try:
        for name, path in PAGES.items():
            page.get(url + path)
            time.sleep(1)  # the theme's fonts, the images and the scroll to an anchor settle
            out = Path(args.out) / name
            out.parent.mkdir(parents=True, exist_ok=True)
            page.save_screenshot(str(out))
            print(f"{out}: {page.title!r} ({url + path})")
    finally:
        page.quit()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's picture of the nmt serve page: start `nmt serve RUN` on a loopback port, open the
page in headless Chromium (Debian's chromium and chromium-driver, driven by selenium), translate a
sentence, click a source piece, save a screenshot, stop the server.

    python scripts/serve_screenshot.py runs/toy docs/img/serve_page.png
    python scripts/serve_screenshot.py runs/toy docs/img/serve_page.png --panel docs/img/serve_snapshots.png \
        --panel-words king,queen,boy,girl,father,mother,cat,dog,house,eats

--panel also saves the page's panel of the rows moving (the run's embedding snapshots) alone, at the
last validation, with --panel-words drawn.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import start_server, stop_server  # noqa: E402


def headless_chromium(size: str = "1100,1250"):
    """Debian's chromium and chromium-driver under selenium, headless, `size` pixels (default the README's).
    Exits with a one-line hint where one of them is missing; the browser test skips before calling it."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        sys.exit("needs selenium: pip install selenium")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        sys.exit("needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={size}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", nargs="?", default="runs/toy")
    ap.add_argument("out", nargs="?", default="docs/img/serve_page.png")
    ap.add_argument("--sentence", default="the old king eats a red apple .")
    ap.add_argument("--piece", default="\u2581king", help="the source piece to click (default ▁king)")
    ap.add_argument("--panel", default=None, metavar="OUT.png", help="also the panel of the rows moving, alone")
    ap.add_argument("--panel-words", default="", help="its words, comma-separated (default: the page's)")
    args = ap.parse_args()
    page = headless_chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        proc, url = start_server(args.run, [])
    except BaseException:
        page.quit()
        raise
    try:
        page.get(url + "/")
        page.find_element(By.ID, "text").send_keys(args.sentence)
        page.find_element(By.ID, "go").click()
        wait = WebDriverWait(page, 30)
        wait.until(lambda p: p.find_elements(By.CSS_SELECTOR, "#heatmap rect.cell"))
        pieces = [e for e in page.find_elements(By.CSS_SELECTOR, "#heatmap text.piece") if e.text == args.piece]
        if not pieces:
            sys.exit(f"--piece {args.piece!r} is not among the source pieces of {args.sentence!r}")
        pieces[0].click()
        wait.until(lambda p: p.find_elements(By.CSS_SELECTOR, "#nb-init li"))
        page.save_screenshot(args.out)
        if args.panel:
            wait.until(lambda p: p.find_elements(By.CSS_SELECTOR, "#mv-chart circle.dot"))
            if args.panel_words:
                field = page.find_element(By.ID, "mv-words")
                field.clear()
                field.send_keys(args.panel_words)
                page.find_element(By.CSS_SELECTOR, "#mv-form button").click()
                wanted = [w.strip() for w in args.panel_words.split(",") if w.strip()]
                from selenium.common.exceptions import StaleElementReferenceException

                redrawn = WebDriverWait(page, 30, ignored_exceptions=(StaleElementReferenceException,))
                redrawn.until(lambda p: [e.get_attribute("data-word").rstrip("*")
                                      for e in p.find_elements(By.CSS_SELECTOR, "#mv-chart circle.dot")] == wanted)
            page.set_window_size(1100, 2400)  # the whole panel in the window: Chromium draws no more
            page.find_element(By.ID, "movie").screenshot(args.panel)
            print(f"{args.panel}: {page.find_element(By.ID, 'mv-label').text}")
        print(f"{args.out}: {page.find_element(By.ID, 'translation').text!r}, neighbours of {args.piece}")
    finally:
        page.quit()
        stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

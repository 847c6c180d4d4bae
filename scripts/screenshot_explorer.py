"""Screenshot of the explorer for the README at 1280x720: a held-out face with its glasses removed and hair made
blond, beside it the edit on the photo, the true edited face and their difference.

    python scripts/screenshot_explorer.py --run runs/demo --probe probes/demo --out docs/figures/explorer.png

Needs Debian's chromium and chromium-driver and the selenium package (the test requirements)."""

import argparse
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cartoon_vae.explore import Explorer  # noqa: E402
from cartoon_vae.server import make_server  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--probe")
    p.add_argument("--face", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    server = make_server(Explorer(args.run, args.probe), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={tempfile.mkdtemp()}",
                 "--window-size=1280,720", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
        driver.execute_script(f"document.querySelectorAll('#faces img')[{args.face}].click()")
        for name, to in (("glasses", 5), ("hair_color", 5)):
            start = driver.execute_script("return document.getElementById('edited').src")
            driver.execute_script(f"const s = document.querySelector('select[data-attribute=\"{name}\"]'); s.value = '{to}';"
                                  "s.dispatchEvent(new Event('change'));"
                                  f"const r = document.querySelector('input[data-attribute=\"{name}\"]'); r.value = 1;"
                                  "r.dispatchEvent(new Event('input'));")
            wait.until(lambda d: d.execute_script("return document.getElementById('edited').src") != start)
        beside = "return [...document.querySelectorAll('figure.beside')].filter(f => !f.hidden).length"
        wait.until(lambda d: d.execute_script(beside) >= 1)  # the photo edit (and, embedded faces, the truth) shown
        driver.execute_script("return new Promise(r => setTimeout(r, 1500))")
        driver.save_screenshot(args.out)
    finally:
        driver.quit()
        server.shutdown()
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

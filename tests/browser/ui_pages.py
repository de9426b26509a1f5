"""Opens Prefect's web UI, served by pushpool, in headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium) as a person would, and reports per page what it
showed.

Usage: ``python ui_pages.py BASE_URL PAGES.json OUT_DIR`` where PAGES.json is a list of
``{"name", "path", "expect": [texts]}``. For each page it waits until every expected text is
on the rendered page (or 30 s), saves ``OUT_DIR/<name>.png``, and records the texts it
found, whether an error banner ("Something went wrong", "Method Not Allowed", ...) is
shown, and every API response with a status >= 400 from the browser's network log. It
writes ``OUT_DIR/report.json``; the Rust test asserts on it.
"""

from __future__ import annotations

import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ERROR_TEXTS = ["Something went wrong", "Method Not Allowed", "Internal Server Error"]


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1440,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def failed_responses(driver) -> list[dict]:
    """Responses >= 400 since the last call, with the request's method and body."""
    requests: dict[str, dict] = {}
    failed = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            requests[params["requestId"]] = params["request"]
        elif message.get("method") == "Network.responseReceived":
            response = params["response"]
            if response.get("status", 0) >= 400:
                request = requests.get(params["requestId"], {})
                failed.append(
                    {
                        "url": response["url"],
                        "status": response["status"],
                        "method": request.get("method"),
                        "body": request.get("postData"),
                    }
                )
    return failed


def main() -> int:
    base, pages_path, out = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    pages = json.load(open(pages_path))
    driver = browser()
    report = []
    try:
        for page in pages:
            driver.get_log("performance")  # drop what earlier pages logged
            driver.get(base + page["path"])
            deadline = time.time() + float(page.get("timeout", 30))
            found: list[str] = []
            while True:
                text = driver.find_element(By.TAG_NAME, "body").text
                found = [t for t in page["expect"] if t in text]
                if len(found) == len(page["expect"]) or time.time() > deadline:
                    break
                time.sleep(0.25)
            time.sleep(1.0)  # let the page's remaining requests finish
            text = driver.find_element(By.TAG_NAME, "body").text
            driver.save_screenshot(os.path.join(out, f"{page['name']}.png"))
            report.append(
                {
                    "name": page["name"],
                    "url": driver.current_url.removeprefix(base),
                    "title": driver.title,
                    "missing": [t for t in page["expect"] if t not in text],
                    "errors_shown": [t for t in ERROR_TEXTS if t in text],
                    "failed_responses": failed_responses(driver),
                }
            )
    finally:
        driver.quit()
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

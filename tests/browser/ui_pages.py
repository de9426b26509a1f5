"""Opens Prefect's web UI, served by pushpool, in headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by selenium) as a person would, and reports per page what it
showed.

Usage: ``python ui_pages.py BASE_URL SCENARIO.json OUT_DIR`` where SCENARIO.json is
``{"login": LOGIN?, "pages": [PAGE], "blocks": [BLOCK]}``, run in that order in one browser
session:

- LOGIN ``{"wrong": key, "key": key, "hidden": [texts]}`` (keys required): opens the UI, is sent
  to its login form, types the wrong key and submits, records what the page shows, the API
  responses the browser got meanwhile and whether the UI kept the credentials; then types
  the right key and submits, and records where the UI went.
- PAGE ``{"name", "path", "expect": [texts]}``: waits until every expected text is on the
  rendered page (or 30 s), and records the texts found, whether an error banner ("Something
  went wrong", "Method Not Allowed", ...) is shown, and every API response with a status >=
  400 from the browser's network log.
- BLOCK ``{"name", "slug", "fields": {label: text}, "expect": [texts]}``: opens the block
  type's create form from the catalog, types each text into the field with that label,
  clicks Save, waits for the new block's page and records its URL, the texts found and the
  failed responses (the form's name check, a 404 by design, is left out).

- POOL ``{"name", "type": pool type id, "pool": name, "strings": {label: text},
  "blocks": {label: block name}, "expect": [texts]}``: the work pool wizard: picks the
  infrastructure type, types the name, in the configuration step switches each labelled
  optional string field from "None" to "str" and types its text, selects for each labelled
  block field the block document of that name, clicks "Create Work Pool" and records where
  the UI went and what it shows.
- RUN ``{"name", "deployment": id, "custom": {"run_name", "job_variables": JSON text}?,
  "state": state name?, "expect": [texts], "lines": [texts]?, "task_runs": [texts]?}``: on
  the deployment's page, "Run" then "Quick run", or "Custom run" with the run name and job
  variables typed into the form; opens the new run's page from the UI's "View run" link,
  waits until it shows the state (default "Completed"), then reloads it until it shows the
  expected texts (its logs tab) or the step's timeout (180 s); records the state names shown
  and the page's lines holding one of `lines`; then, with `task_runs`, opens its task runs
  tab and waits for those texts.

Each step saves ``OUT_DIR/<name>.png``. It writes ``OUT_DIR/report.json``
(``{"login": ..., "pages": [...], "blocks": [...], "pools": [...], "runs": [...]}``); the Rust
test asserts on it.
"""

from __future__ import annotations

import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

ERROR_TEXTS = ["Something went wrong", "Method Not Allowed", "Internal Server Error"]
STATE_NAMES = ["Scheduled", "Pending", "Running", "Completed", "Failed", "Crashed", "Cancelled"]


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


def api_responses(driver) -> list[dict]:
    """Every API response since the last call: method, path and status."""
    requests: dict[str, dict] = {}
    seen = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            requests[params["requestId"]] = params["request"]
        elif message.get("method") == "Network.responseReceived":
            response = params["response"]
            if "/api/" in response["url"]:
                seen.append(
                    {
                        "method": requests.get(params["requestId"], {}).get("method"),
                        "path": response["url"].split("/api", 1)[1],
                        "status": response["status"],
                    }
                )
    return seen


def body_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def wait_for(driver, texts: list[str], timeout: float = 30, until=None) -> str:
    """Waits until every text is shown (and `until()` holds), or `timeout`; the page's text."""
    deadline = time.time() + timeout
    while True:
        text = body_text(driver)
        if (all(t in text for t in texts) and (until is None or until())) or (
            time.time() > deadline
        ):
            return text
        time.sleep(0.25)


def field(driver, label: str):
    """The input of the form field labelled `label` (its label may add " (Optional)")."""
    for element in driver.find_elements(By.TAG_NAME, "label"):
        first = element.text.strip().split("\n")[0]
        if first in (label, f"{label} (Optional)") and element.get_attribute("for"):
            return driver.find_element(By.ID, element.get_attribute("for"))
    raise LookupError(f"no field labelled {label!r}")


def type_text(element, text: str) -> None:
    """Types `text` into a text box as a person would, then looks at what it holds: a React
    form re-rendering on a slow machine can drop a keystroke (an endpoint URL lost a digit
    that way); the box is then emptied and the text typed again a key at a time, as a person
    corrects a typo. What the box finally holds is the API's to check."""
    element.send_keys(text)
    for _ in range(3):
        deadline = time.time() + 2
        while time.time() < deadline:
            if element.get_attribute("value") == text:
                return
            time.sleep(0.1)
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.DELETE)
        for key in text:
            element.send_keys(key)
            time.sleep(0.05)


def button(driver, text: str):
    for element in driver.find_elements(By.TAG_NAME, "button"):
        if element.is_displayed() and element.text.strip() == text:
            return element
    raise LookupError(f"no button {text!r}")


def login(driver, base: str, out: str, step: dict) -> dict:
    """The UI's own login form, as a person uses it: a wrong key, then the right one."""
    driver.get(base + "/v2/dashboard")
    wait_for(driver, ["Login"], until=lambda: driver.find_elements(By.CSS_SELECTOR, "input[type=password]"))
    login_url = driver.current_url.removeprefix(base)
    driver.get_log("performance")
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(step["wrong"])
    button(driver, "Login").click()
    text = wait_for(driver, ["Invalid credentials"], timeout=15)
    time.sleep(1.0)
    text = body_text(driver)
    driver.save_screenshot(os.path.join(out, "login-wrong-key.png"))
    wrong = {
        "url": driver.current_url.removeprefix(base),
        "shows_invalid_credentials": "Invalid credentials" in text,
        "hidden_shown": [t for t in step.get("hidden", []) if t in text],
        "stored_credentials": driver.execute_script(
            "return localStorage.getItem('prefect-password')"
        ),
        "api_responses": api_responses(driver),
    }
    box = driver.find_element(By.CSS_SELECTOR, "input[type=password]")
    box.clear()
    box.send_keys(step["key"])
    button(driver, "Login").click()
    wait_for(driver, ["Dashboard"], until=lambda: "/login" not in driver.current_url)
    time.sleep(1.0)
    driver.save_screenshot(os.path.join(out, "login.png"))
    return {
        "login_url": login_url,
        "wrong_key": wrong,
        "after_login_url": driver.current_url.removeprefix(base),
        "stored_credentials_set": bool(
            driver.execute_script("return localStorage.getItem('prefect-password')")
        ),
        "failed_responses": failed_responses(driver),
    }


def page(driver, base: str, out: str, step: dict) -> dict:
    driver.get_log("performance")  # drop what earlier steps logged
    driver.get(base + step["path"])
    wait_for(driver, step["expect"], timeout=float(step.get("timeout", 30)))
    time.sleep(1.0)  # let the page's remaining requests finish
    text = body_text(driver)
    driver.save_screenshot(os.path.join(out, f"{step['name']}.png"))
    return {
        "name": step["name"],
        "url": driver.current_url.removeprefix(base),
        "title": driver.title,
        "missing": [t for t in step["expect"] if t not in text],
        "errors_shown": [t for t in ERROR_TEXTS if t in text],
        "failed_responses": failed_responses(driver),
    }


def block(driver, base: str, out: str, step: dict) -> dict:
    """Creates a block document from its type's form in the catalog."""
    driver.get_log("performance")
    driver.get(base + "/v2/blocks/catalog")
    wait_for(driver, [step["type_name"]])
    driver.get(base + f"/v2/blocks/catalog/{step['slug']}/create")
    wait_for(driver, ["Save"], until=lambda: driver.find_elements(By.TAG_NAME, "label"))
    for label, text in step["fields"].items():
        type_text(field(driver, label), text)
    driver.save_screenshot(os.path.join(out, f"{step['name']}-form.png"))
    button(driver, "Save").click()
    text = wait_for(
        driver,
        step["expect"],
        until=lambda: "/blocks/block/" in driver.current_url,
    )
    time.sleep(1.0)
    text = body_text(driver)
    driver.save_screenshot(os.path.join(out, f"{step['name']}.png"))
    name = step["fields"].get("Name", "")
    return {
        "name": step["name"],
        "url": driver.current_url.removeprefix(base),
        "missing": [t for t in step["expect"] if t not in text],
        "hidden_shown": [t for t in step.get("hidden", []) if t in text],
        "errors_shown": [t for t in ERROR_TEXTS + ["Unknown error"] if t in text],
        "failed_responses": [
            r
            for r in failed_responses(driver)
            # The form checks the name is free: a 404 is the expected answer.
            if not (r["status"] == 404 and r["url"].endswith(f"/block_documents/name/{name}"))
        ],
    }


def pool(driver, base: str, out: str, step: dict) -> dict:
    """Creates a work pool with the UI's wizard."""
    driver.get_log("performance")
    driver.get(base + "/v2/work-pools/create")
    wait_for(driver, ["Infrastructure Type"], until=lambda: driver.find_elements(By.ID, step["type"]))
    driver.find_element(By.ID, step["type"]).click()
    button(driver, "Next").click()
    wait_for(driver, ["Name"], until=lambda: driver.find_elements(By.NAME, "name"))
    type_text(field(driver, "Name"), step["pool"])
    button(driver, "Next").click()
    wait_for(driver, ["Create Work Pool"], until=lambda: any(
        b.text.strip() == "Create Work Pool" for b in driver.find_elements(By.TAG_NAME, "button")))
    for label, text in step.get("strings", {}).items():
        type_text(optional_string(driver, label), text)
    for label, block_name in step.get("blocks", {}).items():
        wait_for(driver, [], until=lambda: field(driver, label).find_elements(
            By.CSS_SELECTOR, "button[aria-label='Select a block']"))
        field(driver, label).find_element(
            By.CSS_SELECTOR, "button[aria-label='Select a block']").click()
        wait_for(driver, [block_name], until=lambda: driver.find_elements(By.CSS_SELECTOR, "[role=option]"))
        next(o for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]")
             if o.text.strip() == block_name).click()
        time.sleep(0.5)
    driver.save_screenshot(os.path.join(out, f"{step['name']}-form.png"))
    button(driver, "Create Work Pool").click()
    wait_for(driver, step["expect"], until=lambda: "/create" not in driver.current_url)
    time.sleep(1.0)
    text = body_text(driver)
    driver.save_screenshot(os.path.join(out, f"{step['name']}.png"))
    return {
        "name": step["name"],
        "url": driver.current_url.removeprefix(base),
        "missing": [t for t in step["expect"] if t not in text],
        "errors_shown": [t for t in ERROR_TEXTS if t in text],
        "failed_responses": failed_responses(driver),
    }


def optional_string(driver, label: str):
    """The text box of an optional string field (`str | None`, shown as a "str"/"None"
    switch set to None): switches it to "str" and returns its text box."""
    for element in driver.find_elements(By.TAG_NAME, "label"):
        if element.text.strip().split("\n")[0] in (label, f"{label} (Optional)"):
            group = element.find_element(
                By.XPATH, "./ancestor::div[contains(concat(' ', @class, ' '), ' group ')][1]")
            next(t for t in group.find_elements(By.CSS_SELECTOR, "[role=tab]")
                 if t.text.strip() == "str").click()
            wait_for(driver, [], timeout=10, until=lambda: group.find_elements(
                By.CSS_SELECTOR, "[role=tabpanel] input, [role=tabpanel] textarea"))
            return group.find_element(
                By.CSS_SELECTOR, "[role=tabpanel] input, [role=tabpanel] textarea")
    raise LookupError(f"no field labelled {label!r}")


def menu_item(driver, text: str):
    wait_for(driver, [text], timeout=10)
    return next(e for e in driver.find_elements(By.CSS_SELECTOR, "[role=menuitem]")
                if e.text.strip() == text)


def run(driver, base: str, out: str, step: dict) -> dict:
    """Starts a run of a deployment from its page and watches it on the run's page."""
    driver.get_log("performance")
    driver.get(base + f"/v2/deployments/deployment/{step['deployment']}")
    wait_for(driver, ["Run"], until=lambda: any(
        b.text.strip() == "Run" for b in driver.find_elements(By.TAG_NAME, "button")))
    button(driver, "Run").click()
    custom = step.get("custom")
    if custom is None:
        menu_item(driver, "Quick run").click()
    else:
        menu_item(driver, "Custom run").click()
        wait_for(driver, ["Run Name"], until=lambda: "/run" in driver.current_url)
        name = field(driver, "Run Name")
        name.send_keys(Keys.CONTROL, "a")
        name.send_keys(custom["run_name"])
        button(driver, "Additional Options").click()
        wait_for(driver, ["Job Variables"], until=lambda: driver.find_elements(By.CSS_SELECTOR, ".cm-content"))
        editor = driver.find_element(By.CSS_SELECTOR, ".cm-content")
        editor.click()
        editor.send_keys(Keys.CONTROL, "a")
        editor.send_keys(Keys.DELETE)
        editor.send_keys(custom["job_variables"])
        driver.save_screenshot(os.path.join(out, f"{step['name']}-form.png"))
        button(driver, "Submit").click()
    wait_for(driver, ["View run"], timeout=30)
    created_text = body_text(driver)
    next(e for e in driver.find_elements(By.XPATH, "//*[normalize-space(text())='View run']")
         if e.is_displayed()).click()
    wait_for(driver, [], until=lambda: "/runs/flow-run/" in driver.current_url)
    run_url = driver.current_url.removeprefix(base)
    # The page follows the run's state by itself; its logs list is loaded once: reload the
    # page, as a person would, until it shows the lines expected (after the run reached its
    # state), or the step's timeout.
    state = step.get("state", "Completed")
    wanted = [state] + step["expect"]
    deadline = time.time() + float(step.get("timeout", 180))
    wait_for(driver, [state], timeout=max(deadline - time.time(), 1))
    while True:
        driver.refresh()
        text = wait_for(driver, wanted, timeout=min(20, max(deadline - time.time(), 1)))
        if all(t in text for t in wanted) or time.time() > deadline:
            break
    time.sleep(1.0)
    text = body_text(driver)
    driver.save_screenshot(os.path.join(out, f"{step['name']}.png"))
    missing = [t for t in wanted if t not in text]
    run_id = run_url.split("/runs/flow-run/")[1].split("?")[0]
    tasks_text = ""
    if "task_runs" in step:
        driver.get(base + f"/v2/runs/flow-run/{run_id}?tab=TaskRuns")
        tasks_text = wait_for(driver, step["task_runs"])
        driver.save_screenshot(os.path.join(out, f"{step['name']}-task-runs.png"))
    return {
        "name": step["name"],
        "created_toast": "Flow run created" in created_text,
        "run_id": run_id,
        "missing": missing,
        "task_runs_missing": [t for t in step.get("task_runs", []) if t not in tasks_text],
        "states_shown": [s for s in STATE_NAMES if s in text],
        "lines": [line for line in text.splitlines()
                  if any(p in line for p in step.get("lines", []))],
        "errors_shown": [t for t in ERROR_TEXTS if t in text or t in tasks_text],
        "failed_responses": failed_responses(driver),
    }


def main() -> int:
    base, scenario_path, out = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    scenario = json.load(open(scenario_path))
    driver = browser()
    report: dict = {"login": None, "pages": [], "blocks": [], "pools": [], "runs": []}
    try:
        if scenario.get("login"):
            report["login"] = login(driver, base, out, scenario["login"])
        for step in scenario.get("pages", []):
            report["pages"].append(page(driver, base, out, step))
        for step in scenario.get("blocks", []):
            report["blocks"].append(block(driver, base, out, step))
        for step in scenario.get("pools", []):
            report["pools"].append(pool(driver, base, out, step))
        for step in scenario.get("runs", []):
            report["runs"].append(run(driver, base, out, step))
    finally:
        with open(os.path.join(out, "report.json"), "w") as f:
            json.dump(report, f, indent=1)
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())

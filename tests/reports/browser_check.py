#!/usr/bin/python3
"""Opens gdnv report pages in Debian's headless Chromium and checks what a reviewer would see.

    browser_check.py ASSET_STATUS_FILE OUT_DIR REPORT.html...

For each page: every chart embedded (<body data-rendered> equals data-charts, each chart <div>
holds an <svg> with data marks), no console error or warning and no uncaught error (the page counts them into
<html data-console-errors>; Chromium's log shows them too), and no request leaves the file
(Chromium's NetLog has no request started by the page for anything but file:, data: or blob:).
Saves a screenshot of each page to OUT_DIR/<name>.png (a CI artifact).
Prints "skipped: ..." and exits 0 when Chromium or the chart libraries are missing.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-default-apps",
         "--disable-extensions", "--virtual-time-budget=30000"]


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def page_requests(netlog_path):
    """URLs the page itself asked for (its network isolation key is the file), other than local ones."""
    with open(netlog_path) as f:
        text = f.read()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # Chromium may leave the closing brackets out when killed
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    out = []
    for e in log["events"]:
        p = e.get("params", {})
        if e.get("type") != start or "url" not in p:
            continue
        from_page = "file://" in p.get("network_isolation_key", "") or p.get("initiator") in ("null", "file://")
        if from_page and not re.match(r"^(file|data|blob|about|chrome):", p["url"]):
            out.append(p["url"])
    return out


def check(browser, html, out_dir, work):
    name = os.path.splitext(os.path.basename(html))[0]
    url = "file://" + os.path.abspath(html)
    netlog = os.path.join(work, name + ".netlog.json")
    run = subprocess.run([browser, *FLAGS, "--enable-logging=stderr", "--v=0", "--user-data-dir=" + work + "/profile",
                          "--log-net-log=" + netlog, "--window-size=1400,2000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    dom = run.stdout
    problems = []
    if run.returncode != 0:
        problems.append(f"chromium exited {run.returncode}")
    body = re.search(r"<body([^>]*)>", dom)
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1))) if body else {}
    charts = int(attrs.get("data-charts", "-1"))
    if charts <= 0:
        problems.append(f"page declares {charts} charts (expected some)")
    if attrs.get("data-rendered") != str(charts):
        problems.append(f"rendered marker is {attrs.get('data-rendered')!r}, expected {charts}")
    divs = re.findall(r'<div class="chart[^"]*" id="([^"]+)"([^>]*)>(.*?)</div>\s*<figcaption', dom, re.S)
    if len(divs) != charts:
        problems.append(f"found {len(divs)} chart elements, expected {charts}")
    for cid, rest, inner in divs:
        if 'data-rendered="1"' not in rest or "<svg" not in inner:
            problems.append(f"chart {cid} has no drawing")
        # data marks, not only axes and the threshold rule: some mark group holds an element
        groups = re.findall(r'<g class="mark-(\w+) role-mark[^"]*"[^>]*>(<\w+)?', inner)
        if not any(kind != "rule" and child for kind, child in groups):
            problems.append(f"chart {cid} draws no data")
    html_tag = re.search(r"<html([^>]*)>", dom)
    errors = re.search(r'data-console-errors="(\d+)"', html_tag.group(1)) if html_tag else None
    if not errors or errors.group(1) != "0":
        listed = re.search(r'<pre id="gdnv-console"[^>]*>(.*?)</pre>', dom, re.S)
        problems.append("console errors in the page: " + (listed.group(1).strip() if listed else "(no count)"))
    console = [l for l in run.stderr.splitlines() if ":CONSOLE" in l]
    problems += ["console: " + l for l in console]
    if not os.path.exists(netlog):
        problems.append("chromium wrote no NetLog")
    else:
        problems += ["request left the file: " + u for u in page_requests(netlog)]

    # Screenshot of the whole page (its height was measured by the page after rendering).
    height = min(int(attrs.get("data-height", "4000") or 4000) + 40, 30000)
    png = os.path.join(out_dir, name + ".png")
    shot = subprocess.run([browser, *FLAGS, "--user-data-dir=" + work + "/profile", f"--window-size=1400,{height}",
                           "--screenshot=" + png, url], capture_output=True, text=True, timeout=120)
    if shot.returncode != 0 or not os.path.exists(png) or os.path.getsize(png) < 10000:
        problems.append("no screenshot: " + shot.stderr[-300:])
    print(f"{html}: {charts} charts rendered, {len(divs)} drawn, screenshot {png}" if not problems
          else f"{html}: FAILED")
    for p in problems:
        print("  " + p)
    return not problems


def main():
    status_file, out_dir, pages = sys.argv[1], sys.argv[2], sys.argv[3:]
    status = open(status_file).read().strip() if os.path.exists(status_file) else "no asset status file"
    if status != "ok":
        print(f"skipped: gdnv was built without the chart libraries ({status})")
        return 0
    browser = chromium()
    if not browser:
        print("skipped: chromium not installed (Debian package chromium)")
        return 0
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gdnv-browser-") as work:
        ok = all([check(browser, p, out_dir, work) for p in pages])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

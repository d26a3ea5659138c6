"""Board benchmark (issue 21): first render of the board with 5,000 open incidents.

    MUSTER_HOME=/work/main/.muster .venv/bin/python bench/board.py [--incidents 5000] [--runs 7]

1. Fills a bench database of its own (muster_bench_board, made anew each run) with N open
   incidents (a busy night: chains, escalations with their messages, four weeks of tension)
   by COPY (tests/board_data.py).
2. Starts one query process (`muster run query`) and, in headless Chromium at 1920x1080,
   loads the board signed in (the token already in the tab's session storage, as after the
   operator pasted it) and reads the Performance API: the time from the
   navigation's start to the `board:first-render` mark the page sets once its fragments are
   patched in (strip, list, map). Target: under 1 s.
3. In the same run, the ceilings: the framework's no-op page (GET /healthz in the same
   browser, to loadEventEnd) and the board's empty shell (signed out: HTML, CSS, JS, no
   data); and, from a client on the same machine, the screen fragment's server time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.projector import schema  # noqa: E402
from services.shared.auth import Role, mint_token  # noqa: E402
from services.shared.events import Agency  # noqa: E402
from services.shared.settings import Settings  # noqa: E402
from tests import board_data  # noqa: E402
from tests.support import free_port  # noqa: E402

BENCH_DB = "muster_bench_board"
TARGET_MS = 1000.0


def bench_dsn(settings: Settings) -> str:
    url = urlsplit(settings.database_url.get_secret_value())
    return urlunsplit((url.scheme, url.netloc, f"/{BENCH_DB}", url.query, url.fragment))


async def load(settings: Settings, n: int) -> tuple[float, dict]:
    admin = await asyncpg.connect(settings.database_url.get_secret_value().rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'drop database if exists "{BENCH_DB}" with (force)')
        await admin.execute(f'create database "{BENCH_DB}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(bench_dsn(settings))
    started = time.perf_counter()
    try:
        await schema.migrate(conn)
        seeded = await board_data.load(conn, incidents=n)
    finally:
        await conn.close()
    return time.perf_counter() - started, seeded


def browser():
    subprocess.run(["bash", str(ROOT / "tests/e2e/ensure_chromium.sh")], check=True, timeout=900)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1920,1200"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})  # every run fetches CSS and JS too
    return driver


def _until(driver, script: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError(script)


def navigation_ms(driver, url: str) -> float:
    driver.get("about:blank")
    driver.get(url)
    return _until(driver, "const n = performance.getEntriesByType('navigation')[0]; return n && n.loadEventEnd;")


def signed_in(driver, base: str, token: str) -> None:
    """The token in this origin's session storage, as the sign-in form leaves it (never in a URL)."""
    driver.get(f"{base}/board/static/board.css")
    driver.execute_script("sessionStorage.setItem('muster.token', arguments[0])", token)


def first_render_ms(driver, base: str, url: str, token: str) -> tuple[float, int]:
    signed_in(driver, base, token)
    driver.get(url)
    ms = _until(driver, "const m = performance.getEntriesByName('board:first-render')[0]; return m && m.startTime;")
    rows = driver.execute_script("return document.querySelectorAll('#list-body tr.chain').length")
    driver.execute_script("sessionStorage.clear()")  # the next shell is signed out again
    return ms, rows


def _shoot(driver, base: str, token: str, path: str, out: Path, then=None) -> None:
    signed_in(driver, base, token)
    driver.get(base + path)
    _until(driver, "return document.body.dataset.rendered === 'yes' && document.getElementById('live').textContent === 'live'")
    if then:
        then()
    time.sleep(0.5)
    driver.save_screenshot(str(out))
    print(f"saved {out}")


def screenshots(driver, base: str, token: str, settings: Settings, seeded: dict, where: Path) -> None:
    """Each view at 1920x1080, as docs/board.md shows them."""
    where.mkdir(parents=True, exist_ok=True)
    _shoot(driver, base, token, "/board", where / "board.png")

    def new_level3():  # as the projector writes one: the stream tells the page
        asyncio.run(_level3(settings))
        _until(driver, "return !document.getElementById('l3-alert').hidden")
    _shoot(driver, base, token, "/board", where / "board-new-level-3.png", new_level3)

    def ward():
        driver.find_element("css selector", '#map-body .tile[data-ward="E05009319"]').click()
        _until(driver, "return [...document.querySelectorAll('#list-body tr.chain')].every(r => r.dataset.ward === 'E05009319')")
    _shoot(driver, base, token, "/board", where / "board-ward.png", ward)
    _shoot(driver, base, token, "/board/analysis", where / "analysis.png")
    _shoot(driver, base, token, f"/board/incidents/{seeded['level3'][0]}", where / "incident.png")
    analyst = mint_token(settings, subject="bench-analyst", role=Role.ANALYST, agency=Agency.COUNCIL)
    _shoot(driver, base, analyst, f"/board/incidents/{seeded['level3'][1]}", where / "incident-analyst.png")


async def _level3(settings: Settings) -> None:
    conn = await asyncpg.connect(bench_dsn(settings))
    try:
        iid = await conn.fetchval(
            "update incidents set escalation_level = 3, severity = 5, category = 'fire', status = 'open', "
            "acknowledged_at = null where incident_id = (select incident_id from incidents where escalation_level = 0 "
            "and ward_code = 'E05009319' limit 1) returning incident_id")
        await conn.execute(
            "insert into escalations (incident_id, level, level_name, agencies, rule_id, reason, category, severity, "
            "ward_code, classification, mode, raised_at) values ($1, 3, 'major incident', '{fire,police,ambulance}', "
            "'bench-l3', 'screenshot', 'fire', 5, 'E05009319', 'OFFICIAL', 'live', now())", iid)
    finally:
        await conn.close()


def line(name: str, samples: list[float]) -> str:
    s = sorted(samples)
    return (f"{name:<52} median {statistics.median(s):7.1f} ms  best {s[0]:7.1f} ms  worst {s[-1]:7.1f} ms  "
            f"(n={len(s)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--screenshots", type=Path, help="also save a 1920x1080 PNG of each view here (docs/board/)")
    args = parser.parse_args()
    settings = Settings()
    took, seeded = asyncio.run(load(settings, args.incidents))
    print(f"loaded {args.incidents:,} open incidents into {BENCH_DB} in {took:.1f} s")
    port = free_port()
    env = {**os.environ, "MUSTER_DATABASE_URL": bench_dsn(settings), "MUSTER_QUERY_PORT": str(port),
           "MUSTER_LOG_LEVEL": "WARNING"}
    query = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "query"], env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    driver = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and query.poll() is None, "query service did not start"
            time.sleep(0.2)
        token = mint_token(settings, subject="bench-operator", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL)
        auth = {"Authorization": f"Bearer {token}"}
        server = []
        with httpx.Client(headers=auth, timeout=30) as client:
            for i in range(3 + args.runs):
                started = time.perf_counter()
                assert client.get(f"{base}/board/fragments/screen").status_code == 200
                if i >= 3:  # the first few warm the pool and the caches
                    server.append((time.perf_counter() - started) * 1000)
        driver = browser()
        noop, shell, board, rows = [], [], [], 0
        for _ in range(args.runs):
            noop.append(navigation_ms(driver, f"{base}/healthz"))
            shell.append(navigation_ms(driver, f"{base}/board"))
            ms, rows = first_render_ms(driver, base, f"{base}/board", token)
            board.append(ms)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        print(line("ceiling: the framework's no-op page (/healthz)", noop))
        print(line("ceiling: the board's empty shell (signed out)", shell))
        print(line("server: the screen fragment (/board/fragments/screen)", server))
        print(line(f"first render, {args.incidents:,} open incidents ({rows} rows shown)", board))
        median = statistics.median(board)
        print(f"first render / no-op page: {median / statistics.median(noop):.1f}x; "
              f"target < {TARGET_MS:.0f} ms: {'met' if median < TARGET_MS else 'NOT met'}")
        if args.screenshots:
            screenshots(driver, base, token, settings, seeded, args.screenshots)
    finally:
        if driver is not None:
            driver.quit()
        query.terminate()
        query.wait(timeout=15)


if __name__ == "__main__":
    main()

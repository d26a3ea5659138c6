"""The control-room board in headless Chromium against the real intake, projector and query
services (subprocesses on free ports, this run's topics and a database of their own):
raise an incident on the board, see it appear without a reload, acknowledge it, see the
status change. A second test blocks the board's stream and shows the incident then never
appears, so the first one fails whenever the board stops updating live."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from services.projector import schema
from services.shared.auth import Role, mint_token
from services.shared.events import Agency
from services.shared.settings import REPO_ROOT
from services.shared.wards import load_wards
from tests.support import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

HERE = os.path.dirname(__file__)
APPEAR_S = 30  # generous for a loaded 2-core machine; the stream's own bound is measured in bench/query.py


@pytest.fixture(scope="module")
def chromium():
    subprocess.run(["bash", os.path.join(HERE, "ensure_chromium.sh")], check=True, timeout=900)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    def start():
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
            options.add_argument(arg)
        return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))

    return start


@pytest.fixture(scope="module")
async def services(test_settings, topics, database):
    """intake, projector and query as `muster run ...` subprocesses sharing a fresh database."""
    url = urlsplit(database)
    name = f"{url.path.lstrip('/')}_board"
    dsn = urlunsplit((url.scheme, url.netloc, f"/{name}", url.query, url.fragment))
    admin = await asyncpg.connect(database)
    await admin.execute(f'drop database if exists "{name}"')
    await admin.execute(f'create database "{name}"')
    await admin.close()
    conn = await asyncpg.connect(dsn)
    await schema.migrate(conn)
    await conn.close()
    intake_port, query_port = free_port(), free_port()
    env = {
        **os.environ,
        "MUSTER_TOPIC_PREFIX": test_settings.topic_prefix,
        "MUSTER_DATABASE_URL": dsn,
        "MUSTER_INTAKE_PORT": str(intake_port),
        "MUSTER_QUERY_PORT": str(query_port),
        "MUSTER_INTAKE_URL": f"http://127.0.0.1:{intake_port}",
        "MUSTER_INTAKE_CORS_ORIGINS": f"http://127.0.0.1:{query_port}",
        "MUSTER_PROJECTOR_METRICS_PORT": "0",
        "MUSTER_PROJECTOR_CONSUMER_GROUP": f"board-test-{uuid.uuid4().hex[:8]}",
        "MUSTER_LOG_FORMAT": "json",
    }
    procs = [
        subprocess.Popen([sys.executable, "-m", "services.cli", "run", svc], env=env, cwd=REPO_ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for svc in ("intake", "projector", "query")
    ]
    try:
        deadline = time.monotonic() + 60
        for port in (intake_port, query_port):
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"service on {port} not ready"
                assert all(p.poll() is None for p in procs), "a service exited"
                time.sleep(0.2)
        yield {"query": f"http://127.0.0.1:{query_port}", "intake": f"http://127.0.0.1:{intake_port}", "dsn": dsn}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        admin = await asyncpg.connect(database)
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


def _operator_token(test_settings) -> str:
    return mint_token(test_settings, subject="op-board", role=Role.CONTROL_ROOM, agency=Agency.COUNCIL)


def _open_board(driver, services, token):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{services['query']}/board")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#signin button[type=submit]").click()
    WebDriverWait(driver, APPEAR_S).until(EC.text_to_be_present_in_element((By.ID, "live"), "live"))
    driver.execute_script("window.__sameDocument = true;")
    assert token not in driver.current_url
    assert not any(token in entry["name"] for entry in driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => ({name: e.name}))"))  # no URL carried it


def _raise(driver, description: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    form = driver.find_element(By.ID, "raise")
    Select(form.find_element(By.NAME, "category")).select_by_value("criminal_damage")
    Select(form.find_element(By.NAME, "severity")).select_by_value("5")
    Select(form.find_element(By.NAME, "ward_code")).select_by_value("E05009331")
    form.find_element(By.NAME, "description").send_keys(description)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def _raised_id(driver) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    out = WebDriverWait(driver, APPEAR_S).until(
        lambda d: d.find_element(By.ID, "raise-result") if d.find_element(By.ID, "raise-result").text else False
    )
    assert out.text.startswith("Raised "), out.text
    return out.get_attribute("data-incident-id")


def _row(driver, incident_id: str):
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f'#incidents tr[data-incident-id="{incident_id}"]')
    return rows[0] if rows else None


def test_an_incident_raised_on_the_board_appears_live_and_its_acknowledgement_shows(chromium, services, test_settings):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium()
    try:
        _open_board(driver, services, _operator_token(test_settings))
        description = f"Bus shelter smashed {uuid.uuid4().hex[:6]}"
        _raise(driver, description)
        incident_id = _raised_id(driver)
        row = WebDriverWait(driver, APPEAR_S).until(lambda d: _row(d, incident_id))
        assert description in row.text and load_wards()["E05009331"].name in row.text
        assert row.get_attribute("data-status") == "open"
        assert driver.execute_script("return window.__sameDocument === true")
        row.find_element(By.CSS_SELECTOR, "button.ack").click()
        WebDriverWait(driver, APPEAR_S).until(
            lambda d: (r := _row(d, incident_id)) is not None and r.get_attribute("data-status") == "acknowledged"
        )
        assert "acknowledged" in _row(driver, incident_id).text
        assert driver.execute_script("return window.__sameDocument === true")
    finally:
        driver.quit()


def test_a_board_whose_stream_is_cut_does_not_show_new_incidents(chromium, services, test_settings):
    """The control: the board shows a new incident only because the stream told it to."""
    driver = chromium()
    try:
        token = _operator_token(test_settings)
        _open_board(driver, services, token)
        driver.execute_script(  # cut the live stream; everything else keeps working
            "window.__realFetch = window.fetch;"
            "window.fetch = (u, o) => String(u).includes('/v1/stream') ? new Promise(() => {}) : window.__realFetch(u, o);"
            "document.getElementById('signin').dispatchEvent(new Event('submit', {cancelable: true}));"
        )
        _raise(driver, f"Graffiti on the underpass {uuid.uuid4().hex[:6]}")
        incident_id = _raised_id(driver)
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + APPEAR_S
        while httpx.get(f"{services['query']}/v1/incidents/{incident_id}", headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "the incident never reached the store"
            time.sleep(0.2)
        time.sleep(2)  # the live board shows it within 1 s of the store; give the cut one twice that
        assert _row(driver, incident_id) is None
        driver.refresh()  # a fresh page (stream not cut) shows it
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, APPEAR_S).until(lambda d: _row(d, incident_id))
    finally:
        driver.quit()

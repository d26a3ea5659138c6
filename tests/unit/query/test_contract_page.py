"""/contract renders the published contract from asyncapi.yaml on the server: every topic,
message and header is on the page, with nothing fetched from elsewhere, and the files it
names are served beside it."""

from __future__ import annotations

import re

import httpx
import yaml

from services.query.app import create_app
from services.shared.settings import REPO_ROOT, Settings

SPEC = yaml.safe_load((REPO_ROOT / "asyncapi.yaml").read_text())


def _client() -> httpx.AsyncClient:
    app = create_app(Settings())  # the lifespan (database) is not entered: /contract needs none
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://query")


async def test_the_contract_page_shows_every_topic_message_and_header_without_a_token():
    async with _client() as client:
        response = await client.get("/contract")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    for channel in SPEC["channels"].values():
        assert f"<code>{channel['address']}</code>" in page
    for message_id in SPEC["components"]["messages"]:
        assert f"id='{message_id}'" in page
    for header in ("event_type", "schema_version", "mode", "classification"):
        assert f"<code>{header}</code>" in page
    assert "<td><code>methane.number_of_casualties.serious</code></td>" in page  # nested payload fields
    assert "OFFICIAL-SENSITIVE" in page and "major incident" in page  # classification and levels explained


async def test_the_contract_page_loads_nothing_from_another_host_and_runs_no_script():
    async with _client() as client:
        page = (await client.get("/contract")).text
    assert "<script" not in page
    assert not re.findall(r"""(?:src|href)=['"](?:https?:)?//""", page)


async def test_the_files_the_contract_names_are_served_and_nothing_else():
    async with _client() as client:
        document = await client.get("/contract/asyncapi.yaml")
        schema = await client.get("/contract/schemas/EscalationRaised.v1.json")
        missing = await client.get("/contract/schemas/..%2Fpyproject.toml")
    assert yaml.safe_load(document.text) == SPEC
    assert schema.status_code == 200 and schema.json()["title"] == "EscalationRaised"
    assert missing.status_code == 404

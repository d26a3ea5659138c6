"""The evidence bundle read from the real log: what the pure chronology says, twice the same bytes."""

from __future__ import annotations

import pytest

from services.casework import bundle
from services.casework.cli import _events
from services.casework.config import load_config
from services.shared.topics import TopicCatalog
from tests.integration.tension_support import fresh_topics, produce
from tests.unit.casework.test_bundle import UPRN, history

pytestmark = [pytest.mark.kafka]


async def test_a_bundle_read_from_the_log_lists_the_property_and_is_byte_identical_on_a_second_read(test_settings, unique):
    settings = await fresh_topics(test_settings, unique)
    catalog = TopicCatalog.from_settings(settings)
    await produce(settings, catalog.name("incidents"), history(), raw=[(b"k", b"{not json")])
    config = load_config()
    first = bundle.render(UPRN, *bundle.chronology(await _events(settings), UPRN, config))
    second = bundle.render(UPRN, *bundle.chronology(await _events(settings), UPRN, config))
    assert first == second
    assert first == bundle.render(UPRN, *bundle.chronology(history(), UPRN, config))
    assert "Closure notice issued" in first and "Dealing from the &lt;front&gt; door" in first

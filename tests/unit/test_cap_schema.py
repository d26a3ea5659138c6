"""The vendored OASIS CAP 1.2 schema is the real one: OASIS's own example passes, and a
document it forbids fails."""

import pytest
from lxml import etree

from tests.cap_schema import CAP_EXAMPLE, CAP_XSD, assert_valid_cap, cap_schema

pytestmark = pytest.mark.unit


def test_the_schema_is_vendored_inside_the_repository():
    repo = CAP_XSD.parents[3]
    assert CAP_XSD.is_file() and (CAP_XSD.parent / "NOTICE.md").is_file()
    assert CAP_XSD.resolve().is_relative_to(repo.resolve())


def test_the_oasis_example_alert_validates():
    doc = assert_valid_cap(CAP_EXAMPLE.read_text())
    assert doc.tag == "{urn:oasis:names:tc:emergency:cap:1.2}alert"


def test_an_alert_with_an_unknown_status_does_not_validate():
    doc = etree.fromstring(CAP_EXAMPLE.read_bytes().replace(b"<status>Actual</status>", b"<status>Maybe</status>"))
    assert not cap_schema().validate(doc)

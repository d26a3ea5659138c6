"""The OASIS CAP 1.2 schema, vendored in tests/data/cap/ (see its NOTICE.md), and an
assertion that an XML document validates against it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree

CAP_DIR = Path(__file__).resolve().parent / "data" / "cap"
CAP_XSD = CAP_DIR / "CAP-v1.2.xsd"
CAP_EXAMPLE = CAP_DIR / "cap_example.xml"


@lru_cache(maxsize=1)
def cap_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(CAP_XSD)))


def assert_valid_cap(xml: str) -> etree._Element:
    doc = etree.fromstring(xml.encode())
    schema = cap_schema()
    assert schema.validate(doc), f"CAP XML does not validate: {schema.error_log}"
    return doc

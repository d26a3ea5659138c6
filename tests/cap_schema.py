"""The OASIS CAP 1.2 schema from the shared data directory (../shared from the repo root),
and an assertion that an XML document validates against it. Never copied into the repo."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree

from services.shared.settings import REPO_ROOT

RELATIVE = Path("shared") / "data" / "cap" / "CAP-v1.2.xsd"


@lru_cache(maxsize=1)
def cap_schema() -> etree.XMLSchema:
    # ../shared from the main checkout; a worktree sits one level deeper.
    for base in (REPO_ROOT.parent, *REPO_ROOT.parent.parents):
        if (base / RELATIVE).is_file():
            return etree.XMLSchema(etree.parse(str(base / RELATIVE)))
    raise FileNotFoundError(f"{RELATIVE} not found above {REPO_ROOT}")


def assert_valid_cap(xml: str) -> etree._Element:
    doc = etree.fromstring(xml.encode())
    schema = cap_schema()
    assert schema.validate(doc), f"CAP XML does not validate: {schema.error_log}"
    return doc

"""docs/intake.md's write-permission table is the one the code generates."""

from __future__ import annotations

from services.intake.permissions import write_table
from services.shared.settings import REPO_ROOT


def test_the_documented_write_table_is_generated_from_the_code():
    doc = (REPO_ROOT / "docs" / "intake.md").read_text()
    table = doc.split("<!-- write-table:start -->\n", 1)[1].split("<!-- write-table:end -->", 1)[0]
    assert table.strip() == write_table()

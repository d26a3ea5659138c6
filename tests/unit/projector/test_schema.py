"""Migration files are ordered, well named and numbered once."""

from __future__ import annotations

import pytest

from services.projector.schema import MigrationError, migrations


def test_the_shipped_migrations_are_in_order_from_one():
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))


def test_a_misnamed_migration_is_a_clear_error(tmp_path):
    (tmp_path / "1_first.sql").write_text("select 1")
    with pytest.raises(MigrationError, match="1_first.sql: a migration is named NNNN_name.sql"):
        migrations(tmp_path)


def test_a_version_used_twice_is_a_clear_error(tmp_path):
    (tmp_path / "0001_a.sql").write_text("select 1")
    (tmp_path / "0001_b.sql").write_text("select 1")
    with pytest.raises(MigrationError, match="0001_b.sql: version 0001 is already used by 0001_a"):
        migrations(tmp_path)

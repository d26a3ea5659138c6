"""The README is runnable: its configuration table is the one the code prints."""

from __future__ import annotations

from typer.testing import CliRunner

from services.cli import app
from services.shared.settings import REPO_ROOT


def test_readme_configuration_table_matches_the_settings():
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme.split("<!-- config-table:start -->\n", 1)[1].split("<!-- config-table:end -->", 1)[0]
    printed = CliRunner().invoke(app, ["config"]).output
    assert table.strip() == printed.strip()


def test_readme_gives_the_two_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme

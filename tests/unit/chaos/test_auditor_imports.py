"""The auditor is independent: it reads the published contract, never the services' code."""

from __future__ import annotations

import ast

import pytest

from services.shared.settings import REPO_ROOT

pytestmark = pytest.mark.unit
AUDIT = REPO_ROOT / "services" / "chaos" / "audit"


def _imports(path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the auditor's own package
                names.append("services.chaos.audit" + ("." + node.module if node.module else ""))
            else:
                names.append(node.module)
    return names


def test_the_auditor_imports_nothing_of_muster_but_itself():
    files = sorted(AUDIT.rglob("*.py"))
    assert files, "the auditor package is missing"
    foreign = {f"{p.relative_to(REPO_ROOT)}: {name}" for p in files for name in _imports(p)
               if name.split(".")[0] in ("services", "tests") and not name.startswith("services.chaos.audit")}
    assert not foreign, sorted(foreign)


def test_the_import_check_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from services.shared import events\nimport services.projector.rules as r\nfrom . import checks\n")
    assert _imports(bad) == ["services.shared", "services.projector.rules", "services.chaos.audit"]

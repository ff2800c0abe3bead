"""One-way data flow between the stages, checked on the source (``ast``), not by importing it.

``crawler/``, ``corpus/`` and ``tftrain/`` each import only themselves and ``common/``; ``common/``
imports none of them. What two stages share (file formats, the block-count rule) lives in
``common/``. ``bench/``, ``demo/`` and ``tests/`` may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {"crawler": {"crawler", "common"}, "corpus": {"corpus", "common"},
           "tftrain": {"tftrain", "common"}, "common": {"common"}}
FIRST_PARTY = {*ALLOWED, "bench", "demo", "tests"}


def imported_packages(source: str, package: str) -> set[tuple[str, int]]:
    """(first-party top-level package, line) of every import in ``source``, nested ones too."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [package] if node.level else [node.module or ""]
        else:
            continue
        found |= {(top, node.lineno) for top in (n.split(".")[0] for n in names)
                  if top in FIRST_PARTY}
    return found


def violations(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for top, line in imported_packages(path.read_text(encoding="utf-8"), package):
            if top not in ALLOWED[package]:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    return sorted(out)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_stage_imports_only_itself_and_common(package):
    assert list((ROOT / package).rglob("*.py")), f"{package}/ has no modules"
    assert violations(package) == []


def test_the_check_sees_every_import_form():
    source = ("import tftrain.data\nfrom tftrain.model import PRESETS\n"
              "def f():\n    from crawler import pipelines\n    import bench.report as r\n"
              "from . import sibling\nimport numpy\nfrom common.formats import SPLITS\n")
    assert imported_packages(source, "corpus") == {
        ("tftrain", 1), ("tftrain", 2), ("crawler", 4), ("bench", 5), ("corpus", 6),
        ("common", 8)}


PROJECT = ("common", "crawler", "corpus", "tftrain", "demo", "bench")
MAX_LINES = 500


def private_imports(source: str) -> list[tuple[int, str]]:
    """(line, what) for every first-party private name a module takes from another one:
    ``from a.b import _name`` or ``module._name`` on an imported first-party module."""
    tree, found, modules = ast.parse(source), [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FIRST_PARTY:
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
                modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name.split(".")[0] for alias in node.names
                        if alias.name.split(".")[0] in FIRST_PARTY}
    found += [(node.lineno, f"{node.value.id}.{node.attr}") for node in ast.walk(tree)
              if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id in modules and node.attr.startswith("_")
              and not node.attr.startswith("__")]
    return sorted(found)


def test_no_module_takes_another_modules_private_names():
    found = [f"{path.relative_to(ROOT)}:{line}: {what}"
             for package in PROJECT for path in sorted((ROOT / package).rglob("*.py"))
             for line, what in private_imports(path.read_text(encoding="utf-8"))]
    assert found == []


def test_the_private_check_sees_both_forms():
    source = ("from crawler.render import _group, pool\nimport corpus.build as b\nfrom tftrain import runs\n"
              "b._spill(1)\nruns._folder\nruns.model_folder\nimport numpy\nnumpy._core\n")
    assert private_imports(source) == [(1, "from crawler.render import _group"), (4, "b._spill"),
                                       (5, "runs._folder")]


def test_no_module_is_over_500_lines():
    """Each module stays readable whole (tests aside)."""
    long = {str(path.relative_to(ROOT)): lines for package in PROJECT
            for path in sorted((ROOT / package).rglob("*.py"))
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_architecture_names_every_module():
    """ARCHITECTURE.md draws the house: every module of the project has its line there."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [str(path.relative_to(ROOT)) for package in PROJECT
               for path in sorted((ROOT / package).rglob("*.py"))
               if path.name != "__init__.py" and f"`{path.name}`" not in text
               and f"/{path.name}`" not in text]
    assert missing == []

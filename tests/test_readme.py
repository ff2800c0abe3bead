"""The README against the code: targets, config keys, modules, spider arguments and tables.

Static checks only (fast, no subprocess): every ``make <target>`` and make variable it names
exists in the Makefile; its configuration reference lists exactly the keys of
``common.config.SCHEMA`` with their defaults; every dotted config key it mentions exists; every
``python -m <module>`` is a module file of the repo (or an installed module); every
``scrapy crawl <spider> -a <arg>=`` names a spider and an argument that spider handles; every
repository path it names exists; its size and memory tables match ``tftrain.model.PRESETS``
(block sizes: ``common.formats.BLOCK_SIZES``) and ``tftrain.memory.estimate``. The commands
themselves are run by ``make demo``, its test (``tests/test_demo_*``) and the stage tests, not here.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.config import SCHEMA, Field
from common.formats import BLOCK_SIZES
from tftrain import memory

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FILE_SUFFIXES = {"json", "jsonl", "py", "md", "txt", "toml", "png", "bin", "lock", "gz"}
SECTIONS = ("paths", "crawl", "corpus", "tokenizer", "train", "generate")


def _code(text: str) -> list[str]:
    """Fenced blocks (one string each) and inline code spans outside them."""
    fences = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return fences + re.findall(r"`([^`\n]+)`", prose)


CODE = _code(README)
CODE_LINES = [line for chunk in CODE for line in chunk.splitlines()]


def _section(title_start: str) -> str:
    match = re.search(rf"^## {re.escape(title_start)}.*?(?=^## |\Z)", README, flags=re.S | re.M)
    assert match, f"README has no section starting '## {title_start}'"
    return match.group(0)


def _schema_keys(schema: dict, prefix: str = "") -> dict[str, Field]:
    out: dict[str, Field] = {}
    for key, spec in schema.items():
        if isinstance(spec, dict):
            out.update(_schema_keys(spec, f"{prefix}{key}."))
        elif isinstance(spec, list):
            out.update(_schema_keys(spec[0], f"{prefix}{key}[]."))
        else:
            out[prefix + key] = spec
    return out


KEYS = _schema_keys(SCHEMA)
TABLES = {f"{s}.{k}" for s, table in SCHEMA.items() for k, v in table.items()
          if isinstance(v, dict | list)}  # crawl.bgwiki, crawl.news


def _cells(row: str) -> list[str]:
    """A Markdown table row's cells; ``\\|`` is a pipe inside a cell."""
    parts = re.split(r"(?<!\\)\|", row.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of every table in ``text`` whose header row starts with ``header``."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith(header):
            inside = True
        elif inside and line.startswith("|"):
            if not line.startswith("|---"):
                rows.append(_cells(line))
        else:
            inside = False
    return rows


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets: set[str] = set()
    for line in text.splitlines():
        match = re.match(r"^([a-z][\w -]*?):(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def test_make_targets_and_variables_exist():
    targets = _makefile_targets()
    variables = set(re.findall(r"^([A-Z_]+) \?=", (ROOT / "Makefile").read_text(), flags=re.M))
    named = [m for line in CODE_LINES for m in re.finditer(r"\bmake ((?:[a-z][\w-]*)(?:\s+[A-Z_]+=\S*)*)", line)]
    assert len(named) >= 15, "expected the README to name the make targets"
    for match in named:
        target, *assignments = match.group(1).split()
        assert target in targets, f"README names `make {target}`; the Makefile has no such target"
        for assignment in assignments:
            var = assignment.split("=", 1)[0]
            assert var in variables, f"README passes {var}= to make; the Makefile does not use it"
    for target in ("demo", "test", "crawl", "corpus", "tokenizer", "train", "eval", "generate",
                   "export-pt", "bench", "all"):
        assert any(m.group(1).split()[0] == target for m in named), f"`make {target}` undocumented"


def test_config_reference_lists_every_schema_key_with_its_default():
    rows = _table_rows(_section("Configuration reference"), "| key | default | meaning |")
    listed: dict[str, str] = {}
    for cells in rows:
        assert len(cells) == 3, f"config table row with {len(cells)} cells: {cells}"
        key = cells[0].strip("`")
        assert key not in listed, f"{key} listed twice"
        listed[key] = cells[1]
    assert set(listed) - set(KEYS) == set(), "README lists keys SCHEMA lacks"
    assert set(KEYS) - set(listed) == set(), "SCHEMA keys missing from the README reference"
    for key, cell in listed.items():
        default = KEYS[key].default
        if default is None:
            assert cell == "required", f"{key}: required in SCHEMA, README says {cell}"
            continue
        assert cell.startswith("`") and cell.endswith("`"), f"{key}: default {cell} not in code"
        value = tomllib.loads(f"v = {cell.strip('`')}")["v"]
        assert value == default and type(value) is type(default) or (
            isinstance(default, float) and value == default), (
            f"{key}: README default {cell}, SCHEMA default {default!r}")


def test_every_config_key_mentioned_exists():
    pattern = re.compile(rf"(?<![\w./-])((?:{'|'.join(SECTIONS)})\.[a-z_][a-z0-9_]*(?:\[\])?(?:\.[a-z_][a-z0-9_]*)?)")
    mentioned = {m.group(1) for chunk in CODE for m in pattern.finditer(chunk)}
    assert len(mentioned) > 50
    for name in sorted(mentioned):
        if importlib.util.find_spec(name.split(".")[0]) and _module_file(name):
            continue  # a module (corpus.build), not a key
        if name.rsplit(".", 1)[1] in FILE_SUFFIXES:
            continue  # a file name (tokenizer.json)
        assert name in KEYS or name.removesuffix("[]") in TABLES, (
            f"README mentions `{name}`, which is not a config key")


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_python_m_modules_exist():
    modules = {m.group(1) for line in CODE_LINES
               for m in re.finditer(r"python -m ([\w.]+)", line)}
    assert {"corpus.build", "corpus.tokenizer", "tftrain.train"} <= modules
    for name in sorted(modules):
        if (ROOT / name.split(".")[0]).is_dir():
            path = _module_file(name)
            assert path is not None, f"`python -m {name}`: no module file in the repo"
            source = path.read_text(encoding="utf-8")
            assert "__main__" in source, f"`python -m {name}`: {path} has no __main__ entry"
        else:
            assert importlib.util.find_spec(name), f"`python -m {name}`: not installed"


def _spider_sources() -> dict[str, str]:
    out = {}
    for path in (ROOT / "crawler" / "spiders").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for name in re.findall(r'^    name = "(\w+)"', source, flags=re.M):
            out[name] = source
    return out


def _handles(source: str, arg: str) -> bool:
    """The spider takes ``arg``: a keyword parameter or a kwargs key it pops."""
    return bool(re.search(rf'\b{arg}: str \| None = None|["\']{arg}["\']', source))


def test_spider_arguments_are_handled():
    spiders = _spider_sources()
    assert {"bgwiki", "news"} <= set(spiders)
    seen = 0
    for line in CODE_LINES:
        args = re.findall(r"-a (\w+)=", line)
        crawl = re.search(r"scrapy crawl (\w+)", line)
        if crawl:
            assert crawl.group(1) in spiders, f"README: no spider named {crawl.group(1)}"
        for arg in args:
            seen += 1
            names = [crawl.group(1)] if crawl else list(spiders)
            assert any(_handles(spiders[n], arg) for n in names), (
                f"README: `-a {arg}=` is not handled by {' or '.join(names)}")
    assert seen >= 6


def test_repository_paths_exist():
    tops = ("bench", "common", "corpus", "crawler", "demo", "requirements", "tftrain", "titles",
            "tests")
    named = {m.group(0).rstrip("/.") for chunk in CODE
             for m in re.finditer(rf"(?<![\w/])(?:{'|'.join(tops)})/[\w./-]*", chunk)}
    assert "titles/bgwiki.txt" in named
    for path in sorted(named):
        assert (ROOT / path).exists(), f"README names {path}, which is not in the repository"


def _presets() -> dict[str, dict]:
    tree = ast.parse((ROOT / "tftrain" / "model.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "PRESETS":
            return {ast.literal_eval(k): {kw.arg: ast.literal_eval(kw.value) for kw in v.keywords}
                    | {"block_size": BLOCK_SIZES[ast.literal_eval(k)]}
                    for k, v in zip(node.value.keys, node.value.values, strict=True)}
    raise AssertionError("PRESETS not found in tftrain/model.py")


PRESETS = _presets()


def _config(size: str, vocab: int = 32000) -> SimpleNamespace:
    p = PRESETS[size]
    return SimpleNamespace(n_layer=p["n_layer"], n_head=p["n_head"], n_embd=p["n_embd"],
                           n_positions=p["n_positions"], vocab_size=vocab)


def test_size_table_matches_presets():
    rows = _table_rows(README, "| SIZE | layers |")
    assert [r[0].strip("`") for r in rows] == list(PRESETS)
    for cells in rows:
        size = cells[0].strip("`")
        p = PRESETS[size]
        assert [int(c) for c in cells[1:6]] == [p["n_layer"], p["n_head"], p["n_embd"],
                                                p["n_positions"], p["block_size"]], size
        assert float(cells[6]) == p["dropout"], size
        shown = float(re.match(r"([\d.]+)", cells[7]).group(1))
        shown *= 1e9 if re.match(r"[\d.]+B", cells[7]) else 1e6
        actual = memory.param_count(_config(size))
        assert abs(shown - actual) / actual < 0.01, f"{size}: README {cells[7]}, counted {actual:,}"


# the memory table's columns: precision, optimizer, recompute, batch (block 1024, vocab 32000)
MEMORY_COLUMNS = [("bf16", "adamw", False, 8), ("bf16", "adafactor", True, 8),
                  ("bf16", "adafactor", True, 1), ("fp32", "adamw", False, 8)]


@pytest.mark.parametrize("column", range(len(MEMORY_COLUMNS)))
def test_memory_table_matches_estimate(column):
    header = next(line for line in README.splitlines() if line.startswith("| size | params |"))
    precision, optimizer, recompute, batch = MEMORY_COLUMNS[column]
    title = _cells(header)[2 + column]
    assert precision in title and f"batch {batch}" in title, title
    assert (optimizer == "adafactor") == ("Adafactor" in title), title
    assert recompute == ("recompute" in title), title
    rows = _table_rows(README, "| size | params |")
    assert [r[0].strip("`") for r in rows] == ["small", "medium", "large", "xl"]
    for cells in rows:
        size = cells[0].strip("`")
        est = memory.estimate(_config(size), batch, 1024, precision, optimizer, recompute)
        shown = float(cells[2 + column].removesuffix(" GiB"))
        assert shown == pytest.approx(est["total"] / memory.GIB, abs=0.051), (size, title)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_internal_links_point_at_headings():
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", README, flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links, "expected a table of contents"
    assert links <= anchors, f"links to missing headings: {sorted(links - anchors)}"


def test_shipped_config_differences_are_named():
    """The reference says which keys the shipped pipelines.toml sets away from the default."""
    shipped = tomllib.loads((ROOT / "pipelines.toml").read_text(encoding="utf-8"))
    reference = " ".join(_section("Configuration reference").split())

    def differing(data: dict, schema: dict, prefix: str):
        for key, value in data.items():
            spec = schema[key]
            if isinstance(spec, dict):
                yield from differing(value, spec, f"{prefix}{key}.")
            elif isinstance(spec, Field) and value != spec.default:
                yield f"{prefix}{key}", value

    for key, value in differing(shipped, SCHEMA, ""):
        shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
        assert f"`{key} = {shown}`" in reference, (
            f"pipelines.toml sets {key} = {value!r} (default {KEYS[key].default!r}); "
            "the README's configuration reference does not say so")

"""Load and validate ``pipelines.toml``, the one config for every stage.

Every key is declared in ``SCHEMA`` with its type, default and check. Loading fails with one line
naming the file and the key for an unknown key, a wrong type, a value out of range or a missing
file. Relative paths resolve against the config file's own folder. ``--set section.key=value``
overrides are validated the same way.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from common.atomic import atomic_write
from common.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "pipelines.toml"


class ConfigError(UserError):
    """A bad ``pipelines.toml`` value, named by file and key."""


@dataclass(frozen=True)
class Field:
    """One config key: its type, default and optional check.

    ``path``: resolve against the config folder; ``must_exist``: the file must be there
    (checked only when the value is not empty).
    """

    type: type | tuple[type, ...]
    default: Any
    check: Callable[[Any], bool] | None = None
    rule: str = ""
    path: bool = False
    must_exist: bool = False


def _positive(v) -> bool:
    return v > 0


def _non_negative(v) -> bool:
    return v >= 0


def _fraction(v) -> bool:
    return 0.0 <= v <= 1.0


def _one_of(*choices: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices)


POS = dict(check=_positive, rule="> 0")
NONNEG = dict(check=_non_negative, rule=">= 0")
FRAC = dict(check=_fraction, rule="between 0 and 1")
NUM = (int, float)
NGRAM_SHARES = dict(
    check=lambda v: all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], int) and p[0] > 0
                        and isinstance(p[1], int | float) and 0 <= p[1] <= 1 for p in v),
    rule="a list of [n, share] pairs: n > 0 words, share between 0 and 1")

def _http_url(v) -> bool:
    return isinstance(v, str) and v.startswith(("http://", "https://"))


def _date_template(v) -> bool:
    try:
        return _http_url(v) and v.format(date=date(2000, 1, 2)) != v
    except (ValueError, KeyError, IndexError, AttributeError):
        return False


def _archive_form(v) -> bool:
    """``{url = "http(s)://...", form = {field = "...", ...}}`` with a ``{date}`` in a field."""
    if not (isinstance(v, dict) and set(v) == {"url", "form"} and _http_url(v["url"])
            and isinstance(v["form"], dict) and v["form"]
            and all(isinstance(x, str) for x in v["form"].values())):
        return False
    try:
        return any(x.format(date=date(2000, 1, 2)) != x for x in v["form"].values())
    except (ValueError, KeyError, IndexError, AttributeError):
        return False


NEWS_SITE: dict[str, Field] = {
    "name": Field(str, None),
    "start_urls": Field(list, None),
    "allowed_domains": Field(list, None),
    "render": Field(str, "fallback", *_one_of("never", "fallback", "always")),
    # regex an article URL must match (search); empty: any same-domain page linked from a feed
    "article_pattern": Field(str, ""),
    # read by an archive crawl (-a since=/until=): robots.txt, sitemap index or sitemap URLs;
    # empty: https://<first allowed domain>/robots.txt's Sitemap: lines (unless archive_urls)
    "sitemaps": Field(list, [], check=lambda v: all(_http_url(u) for u in v),
                      rule="a list of http(s) URLs"),
    # daily "all news" page URL templates, walked day by day from -a since= to -a until=
    "archive_urls": Field(list, [], check=lambda v: all(_date_template(u) for u in v),
                          rule="a list of http(s) URL templates with {date} (YYYY-MM-DD) or "
                          "{date:%d.%m.%Y}-style strftime formats"),
    # daily pages reached by a form POST, walked like archive_urls: {url, form} inline tables
    "archive_forms": Field(list, [], check=lambda v: all(_archive_form(f) for f in v),
                           rule='a list of {url = "http(s)://...", form = {field = "{date}"}} '
                           "tables, a form field holding the {date} template"),
    # CSS selector of the article body, overriding trafilatura in the corpus stage
    "selector": Field(str, ""),
    "license": Field(str, "All rights reserved (publisher); research use"),
}

SCHEMA: dict[str, dict[str, Any]] = {
    "paths": {
        "data": Field(str, "data", path=True),
        "artifacts": Field(str, "artifacts", path=True),
    },
    "crawl": {
        "user_agent": Field(
            str,
            # a placeholder crawler.agent refuses for any host that is not loopback
            "bg-gpt2/0.1 (https://example.org/your-project; you@example.org)",
            check=lambda v: "(" in v and ("@" in v or "http" in v),
            rule="a descriptive agent with contact details, e.g. 'Name/1.0 (https://url; you@mail)'",
        ),
        "redis_url": Field(str, ""),  # empty: local scheduler; env REDIS_URL wins
        "shard_bytes": Field(int, 32_000_000, **POS),  # raw shard rotation (uncompressed bytes)
        "concurrency_per_domain": Field(int, 2, **POS),
        "download_delay": Field(NUM, 0.5, **NONNEG),
        "autothrottle": Field(bool, True),
        "max_page_bytes": Field(int, 10_000_000, **POS),
        "retry_times": Field(int, 5, **NONNEG),
        "backoff_max_seconds": Field(NUM, 120, **POS),  # cap on one wait for Retry-After/maxlag
        "redis_idle_seconds": Field(NUM, 5, **NONNEG),  # a Redis worker waits this long for new work
        "obey_robots": Field(bool, True),
        "render_min_chars": Field(int, 400, **NONNEG),  # fallback renders below this text size
        "render_settle_seconds": Field(NUM, 0.5, **NONNEG),  # late content: quiet this long = done
        "selenium_pool": Field(int, 2, **POS),
        "selenium_timeout": Field(NUM, 30, **POS),
        "chromium": Field(str, "/usr/bin/chromium"),
        "chromedriver": Field(str, "/usr/bin/chromedriver"),
        "bgwiki": {
            "api": Field(str, "https://bg.wikipedia.org/w/api.php"),
            "titles": Field(str, "titles/bgwiki.txt", path=True, must_exist=True),
            "batch": Field(int, 50, check=lambda v: 1 <= v <= 50, rule="between 1 and 50"),
            "maxlag": Field(int, 5, **POS),
            "category": Field(str, ""),
            "depth": Field(int, 1, **NONNEG),
            "limit": Field(int, 0, **NONNEG),  # 0: no limit
            "license": Field(str, "CC BY-SA 4.0"),
            # Enterprise HTML dump for `make wikidump`: a runs listing (URL ending in /: its newest
            # bgwiki dump), a dump URL, or a local .tar.gz (relative to this file)
            "dump": Field(str, "https://dumps.wikimedia.org/other/enterprise_html/runs/"),
            # bytes of disk to leave free beyond the dump and its import (checked before the download)
            "dump_keep_free": Field(int, 1_000_000_000, **NONNEG),
        },
        "news": [NEWS_SITE],
    },
    "corpus": {
        "workers": Field(int, 2, **POS),
        "shard_bytes": Field(int, 50_000_000, **POS),
        "min_chars": Field(int, 300, **NONNEG),
        "lang": Field(str, "bg"),
        "lang_min_confidence": Field(NUM, 0.5, **FRAC),
        "lang_sample_chars": Field(int, 2000, **POS),  # language ID reads this much of a document
        "min_cyrillic_ratio": Field(NUM, 0.6, **FRAC),
        "max_dup_line_ratio": Field(NUM, 0.3, **FRAC),
        "min_punct_line_ratio": Field(NUM, 0.3, **FRAC),
        "max_boilerplate_lines": Field(NUM, 0.2, **FRAC),
        # FineWeb-2 bul_Cyrl: >= 2 of its stop words; Gopher: mean word length, words with letters
        "stop_words": Field(list, ["на", "и", "в", "е", "от", "за", "се", "г.", "с", "през", "да", "по"],
                            check=lambda v: all(isinstance(w, str) and w for w in v),
                            rule="a list of non-empty strings"),
        "min_stop_words": Field(int, 2, **NONNEG),
        "min_avg_word_length": Field(NUM, 3, **NONNEG),
        "max_avg_word_length": Field(NUM, 10, **POS),
        "min_letter_word_ratio": Field(NUM, 0.756, **FRAC),
        # Gopher repetition, FineWeb-2 bul_Cyrl values: [n, share of characters] pairs
        "max_top_ngram_share": Field(list, [[2, 0.173], [3, 0.157], [4, 0.139]], **NGRAM_SHARES),
        "max_dup_ngram_share": Field(list, [[5, 0.17], [6, 0.158], [7, 0.144], [8, 0.131],
                                            [9, 0.12], [10, 0.108]], **NGRAM_SHARES),
        "dedup_threshold": Field(NUM, 0.8, **FRAC),
        "minhash_perm": Field(int, 128, **POS),
        "shingle": Field(int, 5, **POS),  # words per MinHash shingle
        "valid_ratio": Field(NUM, 0.01, **FRAC),
        "test_ratio": Field(NUM, 0.01, **FRAC),
        "split_seed": Field(str, "bg-gpt2"),
        "order_seed": Field(str, "bg-gpt2"),  # key of the hash that orders documents in shards
    },
    "tokenizer": {
        "vocab_size": Field(int, 32000, check=lambda v: v >= 300, rule=">= 300"),
        "min_frequency": Field(int, 2, **POS),
        "special_tokens": Field(
            list, ["<|endoftext|>"],
            check=lambda v: "<|endoftext|>" in v and all(isinstance(t, str) and t for t in v)
            and len(set(v)) == len(v),
            rule="a list of distinct non-empty strings that includes '<|endoftext|>'"),
        "batch_docs": Field(int, 1000, **POS),
        "token_shard_tokens": Field(int, 50_000_000, **POS),
        # folder of CoNLL-U files whose `# text =` lines measure fertility; absent: row skipped
        "heldout_dir": Field(str, "../shared/fixtures/bg_text/ud_bulgarian_btb", path=True),
    },
    "train": {
        "size": Field(str, "tiny", *_one_of("tiny", "small", "medium", "large", "xl")),
        "run_name": Field(str, ""),  # empty: the size name
        "init": Field(str, "", path=True),
        # preset overrides; 0 (or -1 for dropout) keeps the preset
        "n_layer": Field(int, 0, **NONNEG),
        "n_head": Field(int, 0, **NONNEG),
        "n_embd": Field(int, 0, **NONNEG),
        "block_size": Field(int, 0, **NONNEG),
        "dropout": Field(NUM, -1.0, check=lambda v: v == -1 or 0 <= v < 1, rule="-1 or in [0, 1)"),
        "batch_size": Field(int, 8, **POS),
        "accumulate": Field(int, 1, **POS),
        "epochs": Field(int, 1, **POS),
        "max_steps": Field(int, 0, **NONNEG),  # 0: epochs decide
        "buffer_size": Field(int, 5000, **POS),
        "buffer_budget_mb": Field(NUM, 2048, **POS),
        "precision": Field(str, "auto", *_one_of("auto", "fp32", "bf16", "fp16")),
        "xla": Field(str, "auto", *_one_of("auto", "on", "off")),
        "recompute": Field(bool, False),
        "strategy": Field(str, "auto", *_one_of("auto", "one", "mirrored", "multiworker", "tpu")),
        "tpu": Field(str, ""),
        "optimizer": Field(str, "adamw", *_one_of("adamw", "adafactor")),
        "lr": Field(NUM, 3e-4, **POS),
        "min_lr": Field(NUM, 3e-5, **NONNEG),
        "warmup_steps": Field(int, 100, **NONNEG),
        "weight_decay": Field(NUM, 0.1, **NONNEG),
        "beta1": Field(NUM, 0.9, **FRAC),
        "beta2": Field(NUM, 0.95, **FRAC),
        "eps": Field(NUM, 1e-8, **POS),
        "clip_norm": Field(NUM, 1.0, **NONNEG),  # 0: no clipping
        "seed": Field(int, 1234, **NONNEG),
        "deterministic": Field(bool, False),
        "checkpoint_every": Field(int, 500, **POS),
        "keep_checkpoints": Field(int, 3, **POS),
        "eval_every": Field(int, 500, **POS),
        "eval_tokens": Field(int, 1_000_000, **POS),  # validation budget (whole split if smaller)
        "log_every": Field(int, 10, **POS),
        "prompts": Field(list, ["България е", "Столицата на България"]),
        "sample_tokens": Field(int, 40, **POS),
    },
    "generate": {
        "max_new_tokens": Field(int, 60, **POS),
        "top_k": Field(int, 50, **NONNEG),
        "top_p": Field(NUM, 0.95, **FRAC),
        "temperature": Field(NUM, 0.9, **POS),
        "num_beams": Field(int, 1, **POS),
        "repetition_penalty": Field(NUM, 1.2, **POS),
        "xla": Field(bool, False),
        "seed": Field(int, 0, **NONNEG),
    },
}


class Section(dict):
    """A config table with attribute access: ``cfg.train.lr``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _type_name(t) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    if isinstance(t, tuple):
        return "a number"
    return names.get(t, t.__name__)


def _type_ok(value: Any, t) -> bool:
    if isinstance(value, bool) and t is not bool and bool not in (t if isinstance(t, tuple) else (t,)):
        return False
    return isinstance(value, t)


class _Validator:
    def __init__(self, source: Path):
        self.source = source
        self.base = source.parent

    def fail(self, key: str, msg: str) -> None:
        raise ConfigError(f"{self.source}: {key}: {msg}")

    def table(self, schema: dict[str, Any], data: dict[str, Any], prefix: str) -> Section:
        out = Section()
        for key in data:
            if key not in schema:
                self.fail(f"{prefix}{key}", f"unknown key (known: {', '.join(schema)})")
        for key, spec in schema.items():
            full = f"{prefix}{key}"
            if isinstance(spec, dict):
                value = data.get(key, {})
                if not isinstance(value, dict):
                    self.fail(full, "must be a table")
                out[key] = self.table(spec, value, full + ".")
            elif isinstance(spec, list):
                value = data.get(key, [])
                if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                    self.fail(full, "must be an array of tables ([[...]])")
                out[key] = [self.table(spec[0], v, f"{full}[{i}].") for i, v in enumerate(value)]
            else:
                out[key] = self.value(spec, data.get(key, spec.default), full, key in data)
        return out

    def value(self, spec: Field, value: Any, key: str, given: bool) -> Any:
        if value is None:
            self.fail(key, "is required")
        if not _type_ok(value, spec.type):
            self.fail(key, f"must be {_type_name(spec.type)}, got {value!r}")
        if spec.type == NUM:
            value = float(value)
        if spec.check is not None and not spec.check(value):
            self.fail(key, f"must be {spec.rule}, got {value!r}")
        if spec.path and value:
            path = Path(os.path.expanduser(value))
            value = path if path.is_absolute() else (self.base / path).resolve()
            if spec.must_exist and given and not value.exists():
                self.fail(key, f"file not found: {value}")
        return value


def parse_override(item: str) -> tuple[list[str], Any]:
    """``train.lr=1e-4`` -> (["train", "lr"], 1e-4); values parse as TOML, else as a string."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def load(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> Section:
    """Read, merge overrides into, and validate a config file; raise ConfigError on any fault."""
    source = Path(path or os.environ.get("BG_CONFIG") or DEFAULT_CONFIG).resolve()
    if not source.is_file():
        raise ConfigError(f"{source}: config file not found")
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {k} is not a table")
        node[keys[-1]] = value
    cfg = _Validator(source).table(SCHEMA, data, "")
    cfg["source"] = source
    return cfg


def _toml(value: Any) -> str:
    """A TOML value (string, number, bool, path, or a list or inline table of them); JSON's
    spelling of a string, number or bool is TOML's."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


def write(path: str | os.PathLike, tables: dict[str, dict[str, Any]], news: Iterable[dict] = (),
          header: str = "") -> Path:
    """Write a config file from ``{"section" or "a.b": {key: value}}`` tables and
    ``[[crawl.news]]`` sites (for the demo, tests and benchmarks); its path."""
    lines = [f"# {header}"] if header else []
    for name, table in tables.items():
        lines += [f"\n[{name}]", *(f"{k} = {_toml(v)}" for k, v in table.items())]
    for site in news:
        lines += ["\n[[crawl.news]]", *(f"{k} = {_toml(v)}" for k, v in site.items())]
    with atomic_write(path) as fh:
        fh.write("\n".join(lines).lstrip("\n") + "\n")
    return Path(path)


def data_dir(cfg: Section, *parts: str) -> Path:
    """A folder under ``paths.data`` (raw/, corpus/, tokens/)."""
    return Path(cfg.paths.data, *parts)


def artifacts_dir(cfg: Section, *parts: str) -> Path:
    """A folder under ``paths.artifacts`` (tokenizer/, runs/)."""
    return Path(cfg.paths.artifacts, *parts)


def add_config_args(parser) -> None:
    """The two options every stage's command takes: ``--config`` and repeatable ``--set``."""
    parser.add_argument("--config", default=None,
                        help="pipelines.toml to use (default: $BG_CONFIG or the repo's own)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override one config value")


def from_args(args) -> Section:
    """Load the config named by parsed ``add_config_args`` options."""
    return load(args.config, args.overrides)

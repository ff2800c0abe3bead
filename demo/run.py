"""``make demo``: every stage, for real and offline, on the bundled demo site.

Serves ``demo/site/wiki`` through the MediaWiki replay API and ``demo/site/news`` as a news site
(one article only JavaScript shows) on 127.0.0.1, then runs the same commands a user runs —
``scrapy crawl bgwiki``, ``scrapy crawl news``, ``corpus.build``, ``corpus.tokenizer``,
``tftrain.train`` (SIZE=tiny, CPU), ``tftrain.evaluate``, ``tftrain.generate`` — and writes
``<artifacts>/REPORT.md``. Running it again resumes or reuses what is there, and says so.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from common import config
from common.atomic import atomic_write
from common.errors import UserError, cli_main
from demo.replay.news import NewsReplay
from demo.replay.pages import load_site
from demo.replay.wiki import WikiReplay

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "demo" / "site"
HELDOUT = ROOT.parent / "shared" / "fixtures" / "bg_text" / "ud_bulgarian_btb"  # absent: skipped
NEWS_LICENSE = "CC BY-SA 4.0 (demo text written for this project)"


def write_config(path: Path, data: Path, artifacts: Path, api: str, feed: str,
                 max_steps: int) -> None:
    """The demo's pipelines.toml: the repo defaults, pointed at the local site, sized for a CPU."""
    tables = {
        "paths": {"data": data, "artifacts": artifacts},
        "crawl": {"download_delay": 0.0, "autothrottle": False, "concurrency_per_domain": 4,
                  "selenium_pool": 1},
        "crawl.bgwiki": {"api": api, "titles": ROOT / "titles" / "demo.txt"},
        "corpus": {"min_chars": 300, "valid_ratio": 0.12, "test_ratio": 0.12},
        "tokenizer": {"vocab_size": 2000, "min_frequency": 2, "heldout_dir": HELDOUT},
        "train": {"size": "tiny", "run_name": "demo", "batch_size": 8, "max_steps": max_steps,
                  "epochs": 1000, "lr": 2e-3, "min_lr": 2e-4,
                  "warmup_steps": max(1, max_steps // 10), "eval_every": max(1, max_steps // 4),
                  "checkpoint_every": max(1, max_steps // 4), "log_every": max(1, max_steps // 20),
                  "buffer_size": 1000, "seed": 1234, "deterministic": True,
                  "prompts": ["България е", "Софийският университет"], "sample_tokens": 30},
        "generate": {"max_new_tokens": 40, "seed": 7},
    }
    site = {"name": "demo-news", "start_urls": [feed], "allowed_domains": ["127.0.0.1"],
            "render": "fallback", "article_pattern": "/news/", "license": NEWS_LICENSE}
    config.write(path, tables, [site], header="Written by `make demo` for the bundled demo site; "
                 "edit the repo's pipelines.toml, not this.")


class Stage:
    """Runs the user-facing commands one after another, logging each and timing it.

    Every line a stage prints reaches the screen too (blank ones aside): the stages start quietly
    by themselves (Scrapy at ``-L WARNING``, the trainer's start-up noise held back by
    ``tftrain.logs``), so what is left is worth reading.
    """

    def __init__(self, config: Path, log_dir: Path):
        self.env = {**os.environ, "BG_CONFIG": str(config), "TF_USE_LEGACY_KERAS": "1",
                    "TF_CPP_MIN_LOG_LEVEL": "1", "PYTHONUNBUFFERED": "1"}
        self.config = config
        self.log_dir = log_dir
        self.timings: dict[str, float] = {}

    def run(self, name: str, cmd: list[str]) -> str:
        shown = " ".join(cmd)
        print(f"\n=== {name}: {shown}", flush=True)
        start = time.monotonic()
        log = self.log_dir / f"{name}.log"
        with open(log, "w", encoding="utf-8") as fh:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                if line.strip():
                    sys.stdout.write("  " + line)
            proc.wait()
        self.timings[name] = time.monotonic() - start
        if proc.returncode != 0:
            raise UserError(f"demo stage {name!r} failed (exit {proc.returncode}); log: {log}")
        return log.read_text(encoding="utf-8")

    def py(self, name: str, module: str, *args: str) -> str:
        return self.run(name, [sys.executable, "-m", module, "--config", str(self.config), *args])

    def scrapy(self, name: str, *args: str) -> str:
        return self.run(name, [sys.executable, "-m", "scrapy", "crawl", *args, "-L", "WARNING"])


def raw_counts(raw: Path) -> dict[str, Counter]:
    """Records per spider and how they were fetched, read back from the raw shards."""
    out: dict[str, Counter] = {}
    for shard in sorted(raw.glob("*/part-*.jsonl.gz")):
        with gzip.open(shard, "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                out.setdefault(shard.parent.name, Counter())[rec.get("via", "?")] += 1
    return out


def _embed(path: Path, art: Path) -> str:
    """Another stage's report.md inside ours: headings two levels down, its images copied beside."""
    if not path.is_file():
        return f"(missing: {path})"
    text = path.read_text(encoding="utf-8").strip()
    text = re.sub(r"^(#+) ", lambda m: "#" * min(len(m.group(1)) + 2, 6) + " ", text, flags=re.M)
    for image in re.findall(r"\]\(([^)/]+\.png)\)", text):
        if (path.parent / image).is_file():
            shutil.copyfile(path.parent / image, art / image)
    return text


def last_validation(metrics: Path) -> dict | None:
    """The run's last validation record in ``metrics.jsonl``; None when there is none."""
    if not metrics.is_file():
        return None
    records = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    return next((r for r in reversed(records) if r["kind"] == "valid"), None)


def write_report(art: Path, data: Path, stage: Stage, samples: str, evaluation: str,
                 first_run: bool) -> Path:
    run = art / "runs" / "demo"
    counts = raw_counts(data / "raw")
    crawl_rows = "\n".join(f"| {spider} | {sum(c.values())} | {c.get('http', 0)} | "
                           f"{c.get('selenium', 0)} |" for spider, c in sorted(counts.items()))
    timing_rows = "\n".join(f"| {k} | {v:.1f} |" for k, v in stage.timings.items())
    if (run / "loss.png").is_file():
        shutil.copyfile(run / "loss.png", art / "loss.png")
    scores = run / "eval-test.json"
    bpb = json.loads(scores.read_text(encoding="utf-8"))["bits_per_byte"] if scores.is_file() else None
    valid = last_validation(run / "metrics.jsonl")
    text = f"""# Demo report

{"First run" if first_run else "Re-run: crawl, corpus, tokenizer and training reused what was there"}
on the bundled demo site (`demo/site/`, written for this project, {NEWS_LICENSE}), served on
127.0.0.1. Config used: `{stage.config}`.

## Crawl (raw shards in `{data / "raw"}`)

| spider | pages | via http | via selenium |
|---|---|---|---|
{crawl_rows}

## Corpus (`{data / "corpus"}`)

{_embed(data / "corpus" / "report.md", art)}

## Tokenizer (`{art / "tokenizer"}`)

{_embed(art / "tokenizer" / "report.md", art)}

## Training (`{run}`)

![loss and learning rate](loss.png)

Final model (Hugging Face folder): `{run / "final"}`; TensorBoard logs: `{run / "tb"}`;
metrics: `{run / "metrics.jsonl"}`.

{"Validation: (missing)" if valid is None else
 f"Validation at step {valid['step']}: loss {valid['loss']:.4f}"
 + (f", {valid['bits_per_byte']:.4f} bits per byte." if "bits_per_byte" in valid else
    " (bits per byte: a run from before they were recorded).")}

## Evaluation on the test split

A smoke test, not a quality claim: the `tiny` model trained for a few minutes on a few dozen
short demo articles. Real figures need a real crawl (`make crawl`) and a bigger `SIZE`.
Bits per byte on the test split: {"(missing)" if bpb is None else f"{bpb:.4f}"} (total nats / ln 2
/ UTF-8 bytes: comparable across tokenizers, unlike perplexity).

```
{evaluation.strip()}
```

## Samples

```
{samples.strip()}
```

## Time per stage (seconds)

| stage | seconds |
|---|---|
{timing_rows}
"""
    report = art / "REPORT.md"
    with atomic_write(report) as fh:
        fh.write(text)
    return report


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="where data/demo and artifacts/demo go (default: the repo)")
    parser.add_argument("--max-steps", type=int, default=250,
                        help="training steps (tiny model). The bundled corpus is about 17 steps "
                             "an epoch: past ~250 the model memorises it and validation loss rises")
    parser.add_argument("--port", type=int, default=18765,
                        help="wiki API port; the news site takes the next one. Fixed, because "
                             "page URLs (and so what a re-run finds already crawled) include it")
    args = parser.parse_args(argv)
    data = (args.root / "data" / "demo").resolve()
    art = (args.root / "artifacts" / "demo").resolve()
    art.mkdir(parents=True, exist_ok=True)
    logs = art / "logs"
    logs.mkdir(exist_ok=True)
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not Path(tool).exists() and not shutil.which(Path(tool).name):
            raise UserError(f"{tool} not found: run `make setup` as root, or "
                            "`sudo apt-get install -y chromium chromium-driver`")
    first_run = not (art / "REPORT.md").exists()
    start = time.monotonic()
    try:
        servers = WikiReplay(load_site(SITE / "wiki"), args.port), \
            NewsReplay(SITE / "news", args.port + 1)
    except OSError as exc:
        raise UserError(f"cannot serve the demo site on 127.0.0.1:{args.port}-{args.port + 1} "
                        f"({exc.strerror}); pass --port N (make demo ARGS='--port N')") from None
    with servers[0] as wiki, servers[1] as news:
        config_path = art / "pipelines.toml"
        write_config(config_path, data, art, wiki.api, news.url("/rss.xml"), args.max_steps)
        stage = Stage(config_path, logs)
        print(f"demo site: wiki API {wiki.api}, news feed {news.url('/rss.xml')}")
        stage.scrapy("crawl-bgwiki", "bgwiki")
        stage.scrapy("crawl-news", "news")
    stage.py("corpus", "corpus.build")
    stage.py("tokenizer", "corpus.tokenizer")
    stage.py("train", "tftrain.train")
    evaluation = stage.py("eval", "tftrain.evaluate")
    samples = stage.py("generate", "tftrain.generate", "--prompt", "Рила е")
    report = write_report(art, data, stage, _tail(samples), _tail(evaluation), first_run)
    print(f"\nDemo finished in {time.monotonic() - start:.0f} s "
          f"({'first run' if first_run else 're-run: stages resumed or reused their outputs'}).")
    print(f"  report      {report}")
    print(f"  raw pages   {data / 'raw'}")
    print(f"  corpus      {data / 'corpus'}")
    print(f"  tokenizer   {art / 'tokenizer'}")
    print(f"  model       {art / 'runs' / 'demo' / 'final'}")
    print(f"  stage logs  {logs}")


def _tail(output: str, lines: int = 25) -> str:
    kept = [line for line in output.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


if __name__ == "__main__":
    main()

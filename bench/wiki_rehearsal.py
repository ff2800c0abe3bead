"""The real-size rehearsal's stages (``bench.wiki_real``), run by a fresh interpreter of their own.

Each stage is a process of the real CLI (``bench.scale.run_stage``: seconds, CPU seconds, peak RSS
of the process tree) in a new project on a local dump: ``wikidump`` (``--dump`` the file),
``corpus``, ``tokenizer`` (training and token shards), ``tokens`` (token shards alone); disk is
what the stage's output folders hold after it. The stages run from this small interpreter, apart
from the benchmark's process (which holds the sample pages and BeautifulSoup's high-water mark).

    python -m bench.wiki_rehearsal DUMP PROJECT JOBS   # prints the stages as JSON
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.scale import ROOT, run_stage
from common.config import write as write_config
from common.errors import UserError

VOCAB = 32_000
# What each stage writes, under the project folder.
OUTPUTS = {"wikidump": ("data/raw",), "corpus": ("data/corpus", "data/cache"),
           "tokenizer": ("artifacts/tokenizer", "data/tokens"), "tokens": ("data/tokens",)}


def folder_bytes(paths: list[Path]) -> int:
    return sum(f.stat().st_size for p in paths if p.exists() for f in p.rglob("*") if f.is_file())


def stages(dump: Path, project: Path, jobs: int) -> dict[str, dict]:
    """Every stage on ``dump`` in a new ``project``."""
    project.mkdir(parents=True)
    config = write_config(project / "pipelines.toml", {
        "paths": {"data": "data", "artifacts": "artifacts"}, "corpus": {"workers": jobs},
        "tokenizer": {"vocab_size": VOCAB, "heldout_dir": ""}})
    cfg = ["--config", str(config)]
    argv = {"wikidump": ["-m", "crawler.wikidump", *cfg, "--dump", str(dump)],
            "corpus": ["-m", "corpus.build", *cfg, "-j", str(jobs)],
            "tokenizer": ["-m", "corpus.tokenizer", *cfg],
            "tokens": ["-m", "corpus.tokenizer", *cfg, "--reuse-tokenizer", "--force"]}
    out = {}
    for name, args in argv.items():
        result = run_stage(args, project / f"{name}.log")
        result.pop("output")
        result["disk_bytes"] = folder_bytes([project / p for p in OUTPUTS[name]])
        out[name] = result
    return out


def rehearse(dump: Path, project: Path, jobs: int) -> dict[str, dict]:
    """``stages`` in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-m", "bench.wiki_rehearsal", str(dump), str(project), str(jobs)],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"the rehearsal failed: {tail}")
    return json.loads(proc.stdout)


if __name__ == "__main__":
    print(json.dumps(stages(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))))

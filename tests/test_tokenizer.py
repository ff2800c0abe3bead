"""``make tokenizer``: the trained Hugging Face folder, token shards, report, reuse, licences and
bad input.

The corpus is written here with ``format_docs`` from the real fake-news fixture text (NFC, as the
corpus stage writes it), plus a few documents of our own with typography, emoji and mixed scripts,
with the ``manifest.json``, ``docs.jsonl`` and ``ATTRIBUTION.md`` the corpus stage writes beside
them (the fields the tokens stage reads). ``tests/test_bench_scale.py`` runs the real corpus stage
into this one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from common.atomic import stage_lock
from common.errors import cli_main
from common.formats import ATTRIBUTION, DOC_END, SEPARATOR, SPLITS, format_docs, iter_docs
from corpus import tokenizer as stage
from tests.util import run_module, write_config

VOCAB = 1000
OWN_DOCS = [
    "„Здравей, свят!“ — каза тя… и се усмихна 🙂👍🏽",
    "Mixed: България, Ελλάδα, 日本, עברית, ASCII\ttabs  and   spaces\n\nнов ред",
    "Текст, в който се среща <|endoftext|> като обикновен текст, не като разделител.",
]


def _fake_news(fixtures: Path, limit: int) -> list[str]:
    path = fixtures / "bg_text" / "hack_the_fake_news" / "FN_Validation_Set.jsonl"
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = unicodedata.normalize("NFC", json.loads(line)["Content"]).strip()
        if text:
            docs.append(text)
    return docs[:limit]


LICENCES = {"bgwiki": "CC BY-SA 4.0", "news": "research use"}


def _write_corpus(root: Path, splits: dict[str, list[str]], per_shard: int = 100) -> None:
    for split, docs in splits.items():
        folder = root / "data" / "corpus" / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(0, len(docs), per_shard):
            (folder / f"shard-{i // per_shard:05d}.txt").write_text(
                format_docs(docs[i:i + per_shard]), encoding="utf-8")
    _seal(root / "data" / "corpus")


def _seal(corpus: Path, attribution: str = "# Sources\n") -> None:
    """The corpus stage's ``manifest.json``, ``docs.jsonl`` (every third document from bgwiki) and
    ``ATTRIBUTION.md`` for the shard files in ``corpus``."""
    manifest: dict = {"splits": {}}
    docs = []
    for split in SPLITS:
        shards = []
        for path in sorted((corpus / split).glob("shard-*.txt")):
            data = path.read_bytes()
            shards.append({"path": f"{split}/{path.name}", "documents": data.count(DOC_END.encode()),
                           "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        manifest["splits"][split] = {"documents": sum(s["documents"] for s in shards),
                                     "shards": shards}
        for n in range(manifest["splits"][split]["documents"]):
            source = "bgwiki" if len(docs) % 3 == 0 else "news"
            docs.append({"id": f"{split}{n}", "source": source, "license": LICENCES[source]})
    (corpus / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (corpus / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    (corpus / ATTRIBUTION).write_text(attribution, encoding="utf-8")


def _config(root: Path, fixtures: Path | None, **tok) -> Path:
    table = {"vocab_size": VOCAB, "token_shard_tokens": 60_000, "batch_docs": 64, **tok}
    if fixtures is not None:
        table["heldout_dir"] = fixtures / "bg_text" / "ud_bulgarian_btb"
    return write_config(root, {"tokenizer": table, "train": {"size": "tiny"}})


@pytest.fixture(scope="module")
def built(fixtures, tmp_path_factory):
    """One CLI run over a small corpus: (root, process, docs by split)."""
    root = tmp_path_factory.mktemp("tok")
    news = _fake_news(fixtures, 420)
    splits = {"train": news[:300] + OWN_DOCS, "valid": news[300:360] + OWN_DOCS,
              "test": news[360:]}
    _write_corpus(root, splits)
    proc = run_module("corpus.tokenizer", "--config", str(_config(root, fixtures)), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return root, proc, splits


def _load(root: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(root / "artifacts" / "tokenizer"))


def _meta(root: Path) -> dict:
    return json.loads((root / "data" / "tokens" / "meta.json").read_text("utf-8"))


def test_hf_folder_loads_with_special_token_counted(built):
    root, _, _ = built
    folder = root / "artifacts" / "tokenizer"
    assert all((folder / name).is_file() for name in stage.HF_FILES)
    tok = _load(root)
    vocab = tok.get_vocab()
    assert len(tok) == VOCAB == _meta(root)["vocab_size"]
    assert SEPARATOR in vocab and len(vocab) == len(tok)
    eos = vocab[SEPARATOR]
    assert tok.eos_token_id == tok.bos_token_id == tok.unk_token_id == eos == _meta(root)["eos_id"]
    assert tok.eos_token == SEPARATOR
    # every byte has a symbol, so nothing is ever unknown
    assert eos not in tok("\x00\x7f\U0001F600 ѝ", add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("text", [
    "„Съединението прави силата“ — девиз… на България.",
    "Й, ѝ, Ъ, ь, ю, я; „цитат в ‚цитат‘“ — 2024–2025 г., 5 %, № 3",
    "Emoji 🇧🇬🙂👩‍👩‍👧 and mixed scripts: Sofia/София/Σόφια/ソフィア",
    "  leading spaces, trailing spaces  \n\n\ttabs\r\nCRLF and\u00a0nbsp\u200b",
    "и\u0306 (not NFC) stays as written",
    "",
])
def test_roundtrip_exact(built, text):
    tok = _load(built[0])
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text


def test_prefix_space_decision(built):
    tok = _load(built[0])
    ids = tok("България", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids[:1]).startswith("Б")  # no space added in front of the first word
    assert tok(" България", add_special_tokens=False)["input_ids"] != ids


def test_token_shards_decode_to_documents(built):
    root, _, splits = built
    tok = _load(root)
    meta = _meta(root)
    eos = meta["eos_id"]
    assert meta["dtype"] == "<u2"
    for split in SPLITS:
        folder = root / "data" / "tokens" / split
        files = [folder / s["file"] for s in meta["splits"][split]["shards"]]
        ids = np.concatenate([np.fromfile(f, dtype=meta["dtype"]) for f in files])
        assert ids[-1] == eos
        cuts = np.flatnonzero(ids == eos)
        pieces = np.split(ids, cuts + 1)[:-1]
        decoded = [tok.decode(p[:-1].tolist()) for p in pieces]
        corpus = [d for p in sorted((root / "data" / "corpus" / split).glob("*.txt"))
                  for d in iter_docs(p)]
        assert decoded == corpus == splits[split]
    assert len(meta["splits"]["train"]["shards"]) > 1  # documents run across shard ends


def test_meta_counts_and_hashes(built):
    root, _, splits = built
    meta = _meta(root)
    tok_json = root / "artifacts" / "tokenizer" / "tokenizer.json"
    assert meta["tokenizer_sha256"] == hashlib.sha256(tok_json.read_bytes()).hexdigest()
    for split in SPLITS:
        entry = meta["splits"][split]
        shards = entry["shards"]
        assert entry["documents"] == sum(s["documents"] for s in shards) == len(splits[split])
        assert entry["tokens"] == sum(s["tokens"] for s in shards)
        for i, s in enumerate(shards):
            data = (root / "data" / "tokens" / split / s["file"]).read_bytes()
            assert s["file"] == f"shard-{i:05d}.bin"
            assert len(data) == 2 * s["tokens"]
            assert hashlib.sha256(data).hexdigest() == s["sha256"]
            assert s["tokens"] == meta["shard_tokens"] or i == len(shards) - 1


def test_report(built):
    root, proc, splits = built
    report = json.loads((root / "artifacts" / "tokenizer" / "report.json").read_text("utf-8"))
    valid = report["text"]["valid"]
    assert valid["documents"] == len(splits["valid"]) and valid["roundtrip_failures"] == 0
    assert valid["bytes_per_token"] > 1.0 and valid["tokens_per_word"] < valid["baseline_tokens_per_word"]
    ud = report["text"]["ud_bulgarian_btb"]
    assert ud["documents"] > 2000 and ud["roundtrip_failures"] == 0
    train = report["splits"]["train"]
    assert report["block_size"] == 128
    shards = _meta(root)["splits"]["train"]["shards"]
    assert 0 < train["sequences"] == sum(s["tokens"] // 128 - 1 for s in shards)
    assert "sequences of 128" in proc.stdout and "ud_bulgarian_btb" in proc.stdout
    md = (root / "artifacts" / "tokenizer" / "report.md").read_text("utf-8")
    assert f"{train['tokens']:,}" in md


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_licences_travel_forward(built):
    root, proc, splits = built
    tokens, corpus = root / "data" / "tokens", root / "data" / "corpus"
    assert (tokens / ATTRIBUTION).read_bytes() == (corpus / ATTRIBUTION).read_bytes()
    docs = sum(len(d) for d in splits.values())
    wiki = (docs + 2) // 3
    assert _meta(root)["licenses"] == {"bgwiki": {"CC BY-SA 4.0": wiki},
                                       "news": {"research use": docs - wiki}}
    md = (root / "artifacts" / "tokenizer" / "report.md").read_text("utf-8")
    assert f"bgwiki: CC BY-SA 4.0 ({wiki})" in md and "licences" in proc.stdout


def test_rerun_reuses_and_force_is_deterministic(built, fixtures, tmp_path, monkeypatch):
    root, _, _ = built
    tok_before = _tree(root / "artifacts" / "tokenizer")
    tokens_before = _tree(root / "data" / "tokens")
    hashed = []
    monkeypatch.setattr(stage, "sha256_file", lambda path: hashed.append(path) or _sha(path))
    checked = json.loads((root / "artifacts" / "tokenizer" / "report.json").read_text("utf-8"))
    monkeypatch.setattr(stage, "valid_docs", lambda corpus: pytest.fail("valid split encoded again"))
    report = stage.main(["--config", str(root / "pipelines.toml")])
    assert report["reused"] == {"tokenizer": True, "tokens": True}
    assert report["text"]["valid"] == checked["text"]["valid"]  # the last check's figures stand
    assert _tree(root / "data" / "tokens") == tokens_before
    # the corpus is known by its manifest's sha256: only tokenizer.json was hashed
    assert hashed and {p.name for p in hashed} == {"tokenizer.json"}
    monkeypatch.undo()

    shutil.copytree(root / "data" / "corpus", tmp_path / "data" / "corpus")
    report = stage.main(["--config", str(_config(tmp_path, fixtures)), "--force"])
    assert report["reused"] == {"tokenizer": False, "tokens": False}
    again = _tree(tmp_path / "artifacts" / "tokenizer")
    for name in stage.HF_FILES:
        assert again[name] == tok_before[name], name
    assert _tree(tmp_path / "data" / "tokens") == tokens_before


def test_changed_corpus_is_tokenised_again(built, fixtures, tmp_path):
    root, _, splits = built
    for part in ("data/corpus", "artifacts/tokenizer"):
        shutil.copytree(root / part, tmp_path / part)
    config = str(_config(tmp_path, fixtures))
    valid = tmp_path / "data" / "corpus" / "valid"
    shutil.rmtree(valid)
    valid.mkdir()
    (valid / "shard-00000.txt").write_text(format_docs(splits["valid"][:-1]), encoding="utf-8")
    _seal(tmp_path / "data" / "corpus")
    report = stage.main(["--config", config])
    assert report["reused"] == {"tokenizer": True, "tokens": False}  # the train split is unchanged
    assert report["splits"]["valid"]["documents"] == len(splits["valid"]) - 1
    assert report["text"]["valid"]["documents"] == len(splits["valid"]) - 1  # checked again

    _seal(tmp_path / "data" / "corpus", attribution="# Sources, licences corrected\n")
    report = stage.main(["--config", config])
    assert report["reused"] == {"tokenizer": True, "tokens": False}
    assert (tmp_path / "data" / "tokens" / ATTRIBUTION).read_text("utf-8").endswith("corrected\n")
    assert stage.main(["--config", config])["reused"] == {"tokenizer": True, "tokens": True}


def _fails(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli_main(stage.main)(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def _outputs(root: Path) -> list[Path]:
    return [p for p in (root / "artifacts", root / "data" / "tokens") if p.exists()]


def test_missing_corpus_exits_2_as_a_subprocess(tmp_path):
    proc = run_module("corpus.tokenizer", "--config", str(_config(tmp_path, None)))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "make corpus" in proc.stderr
    assert _outputs(tmp_path) == []


def test_empty_train_split(tmp_path, capsys):
    (tmp_path / "data" / "corpus" / "train").mkdir(parents=True, exist_ok=True)
    (tmp_path / "data" / "corpus" / "train" / "shard-00000.txt").write_text("", encoding="utf-8")
    _seal(tmp_path / "data" / "corpus")
    assert "no documents" in _fails(["--config", str(_config(tmp_path, None))], capsys)
    assert _outputs(tmp_path) == []


def test_shard_not_utf8(tmp_path, capsys):
    folder = tmp_path / "data" / "corpus" / "train"
    folder.mkdir(parents=True)
    (folder / "shard-00000.txt").write_bytes("текст".encode("cp1251") + b"\n\n<|endoftext|>\n")
    _seal(tmp_path / "data" / "corpus")
    assert "not UTF-8" in _fails(["--config", str(_config(tmp_path, None))], capsys)
    assert _outputs(tmp_path) == []


def test_corpus_that_disagrees_with_its_manifest(tmp_path, capsys):
    _write_corpus(tmp_path, {"train": OWN_DOCS})
    config = ["--config", str(_config(tmp_path, None))]
    corpus = tmp_path / "data" / "corpus"
    with open(corpus / "train" / "shard-00000.txt", "a", encoding="utf-8") as fh:
        fh.write(format_docs(["Документ, добавен след изграждането на корпуса."]))
    assert "manifest.json says" in _fails(config, capsys)
    _seal(corpus)
    (corpus / "docs.jsonl").write_text("", encoding="utf-8")
    assert "lists 0 documents, manifest.json 4" in _fails(config, capsys)
    manifest = json.loads((corpus / "manifest.json").read_text("utf-8"))
    del manifest["splits"]["valid"]["documents"]
    (corpus / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert "manifest.json: malformed (KeyError: 'documents')" in _fails(config, capsys)
    (corpus / "manifest.json").unlink()
    assert "manifest.json: missing" in _fails(config, capsys)
    assert not (tmp_path / "data" / "tokens").exists()


@pytest.mark.parametrize("override, words", [
    ("tokenizer.vocab_size=100", ">= 300"),
    ('tokenizer.special_tokens=["<pad>"]', "<|endoftext|>"),
    ("tokenizer.batch_docs=0", "> 0"),
])
def test_config_out_of_range(tmp_path, capsys, override, words):
    _write_corpus(tmp_path, {"train": OWN_DOCS})
    err = _fails(["--config", str(_config(tmp_path, None)), "--set", override], capsys)
    assert words in err
    assert _outputs(tmp_path) == []


def test_reuse_missing_or_other_vocab(built, tmp_path, capsys):
    root, _, _ = built
    _write_corpus(tmp_path, {"train": OWN_DOCS})
    config = str(_config(tmp_path, None))
    assert "not found" in _fails(["--config", config, "--reuse-tokenizer"], capsys)
    assert _outputs(tmp_path) == []

    shutil.copytree(root / "artifacts" / "tokenizer", tmp_path / "artifacts" / "tokenizer")
    err = _fails(["--config", config, "--reuse-tokenizer", "--set", "tokenizer.vocab_size=1200"],
                 capsys)
    assert "vocab size 1000" in err and "1200" in err
    assert not (tmp_path / "data" / "tokens").exists()

    report = stage.main(["--config", config, "--reuse-tokenizer"])
    assert report["reused"] == {"tokenizer": True, "tokens": False}
    assert report["splits"]["train"]["documents"] == len(OWN_DOCS)
    assert report["text"]["ud_bulgarian_btb"] is None and "not found" in report["heldout_note"]
    capsys.readouterr()

    (tmp_path / "artifacts" / "tokenizer" / "tokenizer_config.json").unlink()
    shutil.rmtree(tmp_path / "data" / "tokens")
    assert "missing tokenizer_config.json" in _fails(["--config", config, "--reuse-tokenizer"],
                                                     capsys)
    assert not (tmp_path / "data" / "tokens").exists()


def test_a_second_run_while_one_runs_stops_in_one_line_and_touches_nothing(built, tmp_path):
    """A running tokenizer stage holds ``data/.tokenizer.lock``; another would clear its temps."""
    root, _, _ = built
    for part in ("data/corpus", "artifacts/tokenizer", "data/tokens"):
        shutil.copytree(root / part, tmp_path / part)
    config = str(_config(tmp_path, None))
    before = _tree(tmp_path)
    with stage_lock(tmp_path / "data" / ".tokenizer.lock", "make tokenizer"):
        proc = run_module("corpus.tokenizer", "--config", config, "--force", timeout=120)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.startswith(f"error: another make tokenizer run (pid {os.getpid()}) is "
                                      f"working on {tmp_path / 'data'};") and proc.stderr.count("\n") == 1
        after = _tree(tmp_path)
        assert after.pop("data/.tokenizer.lock") == f"{os.getpid()}\n".encode() and after == before
    proc = run_module("corpus.tokenizer", "--config", config, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_tokens_command_alone_reuses_or_rewrites_the_same_shards(built, tmp_path):
    """``python -m corpus.tokens`` writes the token shards with the folder ``make tokenizer`` left."""
    root, _, _ = built
    for part in ("data/corpus", "artifacts/tokenizer", "data/tokens"):
        shutil.copytree(root / part, tmp_path / part)
    config = str(_config(tmp_path, None))
    before = _tree(tmp_path / "data" / "tokens")
    proc = run_module("corpus.tokens", "--config", config, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "reused" in proc.stdout and _tree(tmp_path / "data" / "tokens") == before
    shutil.rmtree(tmp_path / "data" / "tokens" / "valid")
    proc = run_module("corpus.tokens", "--config", config, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "written" in proc.stdout and _tree(tmp_path / "data" / "tokens") == before

    (tmp_path / "artifacts" / "tokenizer" / "tokenizer.json").unlink()
    proc = run_module("corpus.tokens", "--config", config, "--force", timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "make tokenizer" in proc.stderr
    assert _tree(tmp_path / "data" / "tokens") == before

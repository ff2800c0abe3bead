"""The shared pieces: config validation and overrides, atomic files and folders, shard format."""

from __future__ import annotations

import pytest

from common import atomic, config, formats
from tests.util import write_config


def test_defaults_load_and_paths_resolve_against_config_folder(tmp_path):
    (tmp_path / "t.txt").write_text("България\n", encoding="utf-8")
    path = write_config(tmp_path, {"paths": {"data": "d"}, "crawl.bgwiki": {"titles": "t.txt"}})
    cfg = config.load(path)
    assert cfg.paths.data == tmp_path / "d"
    assert cfg.crawl.bgwiki.titles == tmp_path / "t.txt"
    assert cfg.train.buffer_size == 5000
    assert isinstance(cfg.train.lr, float)


@pytest.mark.parametrize(
    ("sections", "needle"),
    [
        ({"train": {"sizee": "tiny"}}, "train.sizee: unknown key"),
        ({"train": {"batch_size": "8"}}, "train.batch_size: must be an integer"),
        ({"train": {"batch_size": 0}}, "train.batch_size: must be > 0"),
        ({"train": {"size": "huge"}}, "train.size: must be one of"),
        ({"train": {"deterministic": 1}}, "train.deterministic: must be true or false"),
        ({"crawl.bgwiki": {"titles": "nope.txt"}}, "crawl.bgwiki.titles: file not found"),
        ({"corpus": {"valid_ratio": 1.5}}, "corpus.valid_ratio: must be between 0 and 1"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, sections, needle):
    path = write_config(tmp_path, sections)
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    message = str(err.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_overrides_are_validated_like_the_file(tmp_path):
    path = write_config(tmp_path, {})
    cfg = config.load(path, ["train.size=medium", "train.lr=1e-4", "generate.top_k=5"])
    assert (cfg.train.size, cfg.train.lr, cfg.generate.top_k) == ("medium", 1e-4, 5)
    with pytest.raises(config.ConfigError, match="train.size: must be one of"):
        config.load(path, ["train.size=gigantic"])


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n", encoding="utf-8")
    with pytest.raises(config.ConfigError, match="invalid TOML"):
        config.load(bad)
    with pytest.raises(config.ConfigError, match="config file not found"):
        config.load(tmp_path / "none.toml")


def test_repo_default_config_is_valid():
    cfg = config.load(config.DEFAULT_CONFIG)
    assert cfg.crawl.bgwiki.api.startswith("https://bg.wikipedia.org/")
    assert cfg.crawl.bgwiki.titles.is_file()


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic.atomic_write(target) as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with atomic.atomic_write(target) as fh:
        fh.write("new")
    assert target.read_text(encoding="utf-8") == "new"


def test_atomic_dir_swaps_whole_folder(tmp_path):
    target = tmp_path / "corpus"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(ValueError), atomic.atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise ValueError
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_atomic_dir_killed_between_its_renames_gets_the_old_folder_back(tmp_path):
    target = tmp_path / "corpus"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    # what a run killed after setting the old folder aside, before renaming the new one in, leaves
    target.rename(tmp_path / ".corpus.old-1-ab")
    (tmp_path / ".corpus.tmp-1-cd").mkdir()
    with pytest.raises(ValueError), atomic.atomic_dir(target):
        assert (target / "a").read_text() == "1"  # back before the new build starts
        raise ValueError
    assert (target / "a").read_text() == "1"
    assert not list(tmp_path.glob(".corpus.old-*"))
    # a set-aside copy next to a folder that is there is stale: removed, the folder kept
    (tmp_path / ".corpus.old-2-ef").mkdir()
    with atomic.atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".corpus.tmp")) == [
        "corpus"]
    assert [p.name for p in target.iterdir()] == ["b"]


def test_remove_stale_temps(tmp_path):
    (tmp_path / ".x.tmp-1-ab").write_text("")
    (tmp_path / ".d.tmp-2-cd").mkdir()
    (tmp_path / "keep.txt").write_text("")
    assert atomic.remove_stale_temps(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_corpus_shard_round_trip(tmp_path):
    docs = ["Първи документ.\n\nВтори абзац — „цитат“.", "Втори документ."]
    shard = tmp_path / "shard-00000.txt"
    shard.write_text(formats.format_docs(docs), encoding="utf-8")
    assert list(formats.iter_docs(shard)) == docs
    assert formats.token_dtype(32000) == "<u2" and formats.token_dtype(70000) == "<u4"

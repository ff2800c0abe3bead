"""Where a run lives and how its model and tokenizer are loaded: the one place ``train``,
``evaluate``, ``generate`` and ``export_pt`` look them up.

A run folder is ``<artifacts>/runs/<run>/`` (``--run``, else ``train.run_name``, else
``train.size``) holding ``checkpoints/``, ``run.json``, ``model_config.json`` and, once training
has finished, ``final/`` (a Hugging Face folder: weights, tokenizer, model card).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from common import config as cfglib
from common.errors import UserError
from tftrain import checkpoint, hf_load


def run_name(cfg, name: str | None = None) -> str:
    """``name``, else ``train.run_name``, else the size."""
    return name or cfg.train.run_name or cfg.train.size


def run_dir(cfg, name: str | None = None, *parts: str) -> Path:
    """``<artifacts>/runs/<run>[/parts]``."""
    return cfglib.artifacts_dir(cfg, "runs", run_name(cfg, name), *parts)


def train_command(cfg, name: str | None = None) -> str:
    """The command that makes the run ``name`` (default: the config's run), for "no model here"
    messages."""
    name = name or cfg.train.run_name
    return f"make train SIZE={cfg.train.size}" + (f" RUN={name}" if name else "")


def load_tokenizer(folder: Path, missing: str = "run `make tokenizer` first"):
    """The fast GPT-2 tokenizer of ``folder``'s ``tokenizer.json``, its class checked
    (``hf_load.tokenizer_class``), not picked by ``AutoTokenizer``; a one-line error when it is
    missing, refused or broken. A ``config.json`` beside it is checked as a model's is:
    ``from_pretrained`` reads it through ``AutoConfig`` when no ``tokenizer_class`` is given."""
    import transformers

    if not (folder / "tokenizer.json").is_file():
        raise UserError(f"{folder}: tokenizer not found; {missing}")
    if (folder / "config.json").is_file():
        hf_load.read_config(folder)
    cls = getattr(transformers, hf_load.tokenizer_class(folder))
    try:
        return cls.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder}: cannot load the tokenizer ({exc})") from None


def tokenizer_sha256(folder: Path) -> str:
    return hashlib.sha256((folder / "tokenizer.json").read_bytes()).hexdigest()


@dataclass(frozen=True)
class Located:
    """A trained model on disk: ``path`` is a HF folder (kind "hf") or a checkpoint prefix
    (kind "checkpoint"); ``run`` is the run folder results are written to."""

    path: Path
    run: Path
    kind: str


def model_folder(path: Path) -> Path | None:
    """``path`` when it is a Hugging Face folder, else its ``final/`` when that is one, else None;
    the folder found is checked (``hf_load.check_folder``)."""
    for folder in (path, path / "final"):
        if (folder / "config.json").is_file():
            hf_load.check_folder(folder)
            return folder
    return None


def locate(cfg, ckpt: str | None) -> Located:
    """The model ``--ckpt`` names (a run folder, its ``final/`` or any HF folder), else the
    config's run: its ``final/``, else its latest checkpoint."""
    path = hf_load.local_path(ckpt) if ckpt else run_dir(cfg)
    folder = model_folder(path)
    if folder:
        return Located(folder, folder.parent if folder.name == "final" else folder, "hf")
    latest = checkpoint.latest(path)
    if latest and (path / "model_config.json").is_file():
        return Located(Path(latest), path, "checkpoint")
    raise UserError(f"{path}: no trained model (no final/ folder, config.json or checkpoint); "
                    "run `make train` first or pass CKPT=")


def hf_folder(cfg, ckpt: str | None, name: str | None = None) -> Path:
    """The Hugging Face folder ``--ckpt`` names (a ``final/`` or a run folder), else the run
    ``name``'s (default: the config's run's) ``final/``."""
    path = hf_load.local_path(ckpt) if ckpt else run_dir(cfg, name)
    folder = model_folder(path)
    if folder:
        return folder
    raise UserError(f"no Hugging Face model folder at {path} (config.json missing)" if ckpt
                    else f"no trained model at {path / 'final'} (config.json missing); make one "
                    f"with: {train_command(cfg, name)}")


def load_hf_model(path: Path):
    """The TF GPT-2 of a Hugging Face folder, read without running anything from it
    (``tftrain.hf_load``)."""
    return hf_load.load_model(path)


def load_model(found: Located):
    """The TF model of a located run: its HF folder, or its checkpoint's weights (only)."""
    if found.kind == "hf":
        return load_hf_model(found.path)
    import tensorflow as tf

    from tftrain import model

    net = model.build_model(hf_load.read_config(found.run / "model_config.json"))
    tf.train.Checkpoint(model=net).restore(str(found.path)).expect_partial()
    return net


def load_run_tokenizer(cfg, found: Located):
    """The tokenizer saved with the model (``final/``), else the config's tokenizer folder."""
    if found.kind == "hf" and (found.path / "tokenizer.json").is_file():
        return load_tokenizer(found.path)
    return load_tokenizer(cfglib.artifacts_dir(cfg, "tokenizer"))


def block_size(run: Path) -> int:
    """The block size the run trained with (``run.json``); 0 when unknown."""
    path = run / "run.json"
    return json.loads(path.read_text(encoding="utf-8"))["data"]["block_size"] if path.is_file() else 0

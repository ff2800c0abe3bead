"""``--init`` from GPT-2 folders saved by PyTorch transformers 5 (as the hub serves them), read by
``tftrain.hf_load`` without torch and without ``from_pretrained``; and what that loader refuses.

The PyTorch folders and their reference logits are written in ``.venv-pt`` (``tests/pt_gpt2.py``).
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.train import PT_PYTHON
from common.errors import UserError
from tests.tinymodel import build_tiny_model
from tests.train_fixtures import make_workspace, train_config
from tests.util import ROOT, run_module, unavailable
from tftrain import hf_load

IDS = [5, 17, 300, 42, 7, 0, 123]
SMALL = dict(layers=2, embd=64, heads=4, positions=128)


def _pt(*args: str) -> None:
    if not PT_PYTHON.exists():
        unavailable(str(PT_PYTHON), "run `make test`: it builds the PyTorch venv")
    done = subprocess.run([str(PT_PYTHON), str(ROOT / "tests" / "pt_gpt2.py"), *args],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def ws(tmp_path_factory, fixtures) -> Path:
    return make_workspace(tmp_path_factory.mktemp("init"), fixtures)


@pytest.fixture(scope="module")
def pt(ws) -> Path:
    """PyTorch-saved folders: ``single`` (fp32, vocab 900, no lm_head), ``sharded`` (fp16),
    ``bare`` (bf16, GPT2Model names, mask buffers, lm_head stored), ``upcast``
    (``reorder_and_upcast_attn``, its logits from PyTorch's eager attention, which honours it)
    and ``xl`` (gpt2-xl's width and heads at 2 layers, vocab of the workspace's tokenizer)."""
    from tftrain import runs

    vocab = len(runs.load_tokenizer(ws / "artifacts" / "tokenizer"))
    root = ws / "pt"
    folders = {"single": dict(vocab=900, **SMALL),
               "sharded": dict(vocab=vocab, dtype="fp16", shard_kb=60, **SMALL),
               "bare": dict(vocab=vocab, dtype="bf16", bare=True, lm_head=True, **SMALL),
               "upcast": dict(vocab=900, upcast=True, seed=1, **SMALL),
               "xl": dict(vocab=vocab, layers=2, embd=1600, heads=25, positions=128)}
    root.mkdir()
    spec = root / "spec.json"
    spec.write_text(json.dumps({"ids": IDS, "folders": {str(root / k): v
                                                         for k, v in folders.items()}}))
    _pt(str(spec))
    return root


def _logits(net, ids=IDS) -> np.ndarray:
    import tensorflow as tf

    return net(tf.constant([ids]), training=False).logits.numpy()


def _dtypes(folder: Path) -> set[str]:
    from safetensors import safe_open

    out = set()
    for path in hf_load.weight_files(folder):
        with safe_open(path, "np") as fh:
            out |= {fh.get_slice(k).get_dtype() for k in fh.keys()}  # noqa: SIM118
    return out


def test_pytorch_folders_load_with_pytorch_logits(pt):
    assert len(list((pt / "sharded").glob("model-*.safetensors"))) > 1
    assert (pt / "sharded" / "model.safetensors.index.json").is_file()
    assert _dtypes(pt / "single") == {"F32"} and _dtypes(pt / "sharded") == {"F16"}
    assert "BF16" in _dtypes(pt / "bare")
    for name in ("single", "sharded", "bare", "upcast"):
        net = hf_load.load_model(pt / name)
        assert {v.dtype.name for v in net.weights} == {"float32"}
        assert np.abs(_logits(net) - np.load(pt / f"{name}-logits.npy")).max() < 1e-4, name


def test_init_path_resizes_and_keeps_pytorch_logits(pt):
    """``build_model`` with ``--init`` and a 1,000-token tokenizer on a 900-row checkpoint:
    before any step the first 900 logits are PyTorch's."""
    from tftrain import model

    config = hf_load.read_config(pt / "single")
    config.vocab_size = 1000
    net = model.build_model(config, pt / "single")
    got = _logits(net)
    assert got.shape[-1] == 1000
    assert np.abs(got[..., :900] - np.load(pt / "single-logits.npy")).max() < 1e-4


def test_tf_folders_keep_loading(tmp_path, fixtures):
    """The trainer's own ``final/`` (TF-named safetensors) and a ``tf_model.h5`` folder give the
    logits transformers' own TF loader gives; a ``tf_model.h5`` damaged past the header h5py
    opens (its B-tree signatures) fails in one line."""
    from transformers import TFGPT2LMHeadModel
    from transformers.activations_tf import ACT2FN

    assert set(hf_load.ACTIVATIONS) == set(ACT2FN)
    tf_dir = build_tiny_model(tmp_path / "tf", fixtures)
    reference = TFGPT2LMHeadModel.from_pretrained(tf_dir)
    reference.save_pretrained(tmp_path / "h5", safe_serialization=False)
    assert (tmp_path / "h5" / "tf_model.h5").is_file()
    want = _logits(reference)
    for folder in (tf_dir, tmp_path / "h5"):
        assert np.abs(_logits(hf_load.load_model(folder)) - want).max() < 1e-6
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(tmp_path / "h5" / "config.json", broken)
    h5 = (tmp_path / "h5" / "tf_model.h5").read_bytes()
    (broken / "tf_model.h5").write_bytes(h5.replace(b"TREE", b"XXXX"))
    with pytest.raises(UserError, match="tf_model.h5: cannot read the weights"):
        hf_load.load_model(broken)


def _train(ws: Path, run: str, init: Path, **settings) -> str:
    config = train_config(ws, eval_tokens=256, **settings)
    done = run_module("tftrain.train", "--config", str(config), "--run", run, "--init", str(init))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_train_from_pytorch_folder_with_another_tokenizer(ws, pt):
    out = _train(ws, "from-pt", pt / "single", max_steps=4, log_every=2)
    assert f"init: 28 tensors from {pt / 'single'}; embedding rows: 900 kept, 100 drawn new" in out
    assert (ws / "artifacts" / "runs" / "from-pt" / "final" / "model.safetensors").is_file()


def test_xl_shape_recompute_adafactor_round_trip(ws, pt, tmp_path):
    """gpt2-xl's width (1600, 25 heads) at 2 layers: init from PyTorch safetensors, a step with
    recompute and Adafactor, ``final/``, export to PyTorch: transformers 5 gives its logits."""
    out = _train(ws, "xl", pt / "xl", max_steps=1, batch_size=2, block_size=32, recompute=True,
                 dropout=0.0, optimizer="adafactor", log_every=1)
    assert "embedding rows: 1,000 kept, 0 drawn new" in out
    final = ws / "artifacts" / "runs" / "xl" / "final"
    net = hf_load.load_model(final)
    trained = _logits(net)
    assert np.abs(trained - np.load(pt / "xl-logits.npy")).max() > 1e-4  # the step changed it
    exported = run_module("tftrain.export_pt", "--config", str(ws / "pipelines.toml"), "--run",
                          "xl")
    assert exported.returncode == 0, exported.stderr[-3000:]
    _pt("--logits", str(tmp_path / "pt.npy"), str(final.parent / "pt"), *map(str, IDS))
    assert np.abs(np.load(tmp_path / "pt.npy") - trained).max() < 1e-4


# --- what the loader refuses -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bad(ws, pt, tmp_path_factory) -> dict[str, Path]:
    """Folders a loader must refuse, made from the PyTorch ``single`` folder."""
    root = tmp_path_factory.mktemp("bad")
    out = {}

    def variant(name: str, config: dict | None = None, drop: str = "") -> Path:
        folder = root / name
        shutil.copytree(pt / "single", folder)
        settings = json.loads((folder / "config.json").read_text())
        settings = {k: v for k, v in {**settings, **(config or {})}.items() if k != drop}
        (folder / "config.json").write_text(json.dumps(settings))
        out[name] = folder
        return folder

    variant("attn", {"_attn_implementation_internal": "someone/kernels"})
    variant("attn_implementation", {"attn_implementation": "someone/kernels"})
    variant("private", {"_commit_hash": "0" * 40})
    variant("auto_map", {"auto_map": {"AutoModelForCausalLM": "x.Model"}})
    variant("trust", {"trust_remote_code": True})
    variant("llama", {"model_type": "llama"})
    variant("untyped", drop="model_type")
    variant("layer_idx", {"scale_attn_by_inverse_layer_idx": True})
    variant("unscaled", {"scale_attn_weights": False})
    variant("n_inner", {"n_inner": "256"})
    variant("epsilon", {"layer_norm_epsilon": "1e-5"})
    variant("named", {"_name_or_path": "gpt2"})  # loads: the one "_" key allowed
    variant("vocab", {"vocab_size": 1000})  # passes the checks, refused when loaded
    tok = variant("tokenizer")
    (tok / "tokenizer_config.json").write_text(json.dumps({"auto_map": {"AutoTokenizer": ["x"]}}))
    tok_class = variant("tokenizer_class")  # with the workspace's tokenizer files
    shutil.copytree(ws / "artifacts" / "tokenizer", tok_class, dirs_exist_ok=True)
    (tok_class / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "TransfoXLTokenizer"}))
    pickled = variant("pickle")
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(pickle.dumps({"weights": []}))
    shard = variant("shard")
    (shard / "model.safetensors").rename(root / "outside.safetensors")
    (shard / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"transformer.wte.weight": "../outside.safetensors"}}))
    return out


@pytest.mark.parametrize(("name", "message"), [
    ("attn", "'_attn_implementation_internal' makes transformers load code"),
    ("attn_implementation", "'attn_implementation' makes transformers load code"),
    ("private", "'_commit_hash' sets a transformers internal"),
    ("auto_map", "'auto_map' makes transformers load code"),
    ("trust", "'trust_remote_code' makes transformers load code"),
    ("llama", "model_type 'llama', not 'gpt2'"),
    ("untyped", 'no model_type; a GPT-2 folder says "model_type": "gpt2"'),
    ("layer_idx", "scale_attn_by_inverse_layer_idx=true: transformers' TensorFlow GPT-2 does not"),
    ("unscaled", "scale_attn_weights=false: transformers' TensorFlow GPT-2 does not"),
    ("n_inner", "n_inner must be a positive integer or null, not '256'"),
    ("epsilon", "layer_norm_epsilon must be a number from 0 to below 1, not '1e-5'"),
    ("tokenizer", "tokenizer_config.json: refused, 'auto_map'"),
    ("pickle", "only pickle weights (pytorch_model.bin); they are not loaded"),
    ("shard", "refused shard name '../outside.safetensors'"),
])
def test_loader_refuses(bad, name, message):
    with pytest.raises(UserError) as err:
        hf_load.check_folder(bad[name])
    assert message in str(err.value)


def test_loader_checks_what_it_loads(bad, pt):
    """``_name_or_path`` is read (and ignored); saved embedding rows must match ``vocab_size``
    outside ``--init``; a missing folder is named with its ``config.json``."""
    from tftrain import runs

    assert np.abs(_logits(hf_load.load_model(bad["named"]))
                  - np.load(pt / "single-logits.npy")).max() < 1e-4
    with pytest.raises(UserError, match="the embeddings have 900 rows but config.json says "
                                        "vocab_size 1,000"):
        hf_load.load_model(bad["vocab"])
    with pytest.raises(UserError, match=f"{bad['vocab'] / 'missing' / 'config.json'} missing"):
        hf_load.read_config(bad["vocab"] / "missing")
    with pytest.raises(UserError, match="refused, tokenizer_class 'TransfoXLTokenizer'"):
        runs.load_tokenizer(bad["tokenizer_class"])


def test_unreadable_weights_fail_in_one_line(pt, tmp_path):
    for name in ("model.safetensors", "tf_model.h5"):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(pt / "single" / "config.json", folder)
        (folder / name).write_bytes((pt / "single" / "model.safetensors").read_bytes()[:1000])
        with pytest.raises(UserError, match=f"{name}: cannot read the weights"):
            hf_load.load_model(folder)


def test_hub_id_gets_a_download_hint(tmp_path):
    with pytest.raises(UserError, match=r"no such local folder.*hf download "
                                        r"openai-community/gpt2-xl --include"):
        hf_load.local_path("openai-community/gpt2-xl")
    assert hf_load.local_path(str(tmp_path)) == tmp_path.resolve()
    # as the config gives train.init: already resolved against the config's folder
    with pytest.raises(UserError, match=r"if openai-community/gpt2-xl is a hub id.*hf download "
                                        r"openai-community/gpt2-xl --include"):
        hf_load.local_path(tmp_path / "openai-community" / "gpt2-xl")
    with pytest.raises(UserError, match=r"if gpt2 is a hub id.*hf download gpt2 --include"):
        hf_load.local_path(tmp_path / "gpt2")


def _refused(module: str, *args: str, config: Path) -> str:
    done = run_module(module, *args, config=config)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def test_every_command_refuses_in_one_line(ws, bad):
    config = train_config(ws, max_steps=1)
    assert "hf download gpt2" in _refused("tftrain.train", "--init", "gpt2", config=config)
    assert "hf download gpt2" in _refused("tftrain.train", "--set", "train.init=gpt2",
                                          config=config)
    assert "only pickle weights" in _refused("tftrain.train", "--init", str(bad["pickle"]),
                                             config=config)
    assert "_attn_implementation_internal" in _refused(
        "tftrain.evaluate", "--ckpt", str(bad["attn"]), config=config)
    assert "only pickle weights" in _refused("tftrain.generate", "--ckpt", str(bad["pickle"]),
                                             config=config)
    assert "'auto_map'" in _refused("tftrain.export_pt", "--src", str(bad["auto_map"]),
                                    config=config)
    assert not (ws / "artifacts" / "runs" / "tiny").exists()

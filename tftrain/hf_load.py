"""Read a Hugging Face GPT-2 folder without running anything from it: the one loader behind
``--init``, ``make eval CKPT=``, ``make generate CKPT=`` and ``make export-pt``.

transformers 4.57.6 is the last release with TensorFlow classes, and advisories against it
(``config.json`` keys that make ``from_pretrained`` fetch and run code) are fixed only in
transformers 5. So nothing here calls ``from_pretrained`` on a model or its config:

- only local folders are read (a hub id gets a hint to download the files first);
- ``config.json`` must describe a GPT-2 and carry no key that makes transformers load code or
  kernels (``auto_map``, ``trust_remote_code``, ``attn_implementation``, any key starting with
  ``_`` but ``_name_or_path``); the ``GPT2Config`` is built here from checked architecture keys
  alone, and options transformers' TF GPT-2 ignores (so the logits would differ) are refused;
- weights come from safetensors (read with ``safetensors.numpy``) or ``tf_model.h5`` (h5py) and
  are assigned by name; a folder with only pickle files (``pytorch_model.bin``, ``*.pt``,
  ``*.ckpt``) is refused and nothing is unpickled.

Names: PyTorch-format files (the hub's ``model.safetensors``, sharded or not, with or without
``transformer.`` and ``lm_head.weight``) and TF-format ones (``transformer/h_._0/ln_1/gamma:0``)
both map to the PyTorch name (``pt_name``), the one mapping ``tftrain.export_pt`` also writes with.
GPT-2's Conv1D keeps weights as (in, out) in both frameworks: nothing is transposed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

from common.errors import UserError

# architecture keys of a GPT2Config, the only ones passed on to transformers, with their types
INT_KEYS = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
FLOAT_KEYS = ("resid_pdrop", "embd_pdrop", "attn_pdrop", "layer_norm_epsilon",
              "initializer_range")
ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id")  # an int >= 0, or null
# options transformers 4.57.6's TF GPT-2 does not implement (it always scales by 1/sqrt(head
# size)): a PyTorch GPT-2 saved with them computes other logits, so they are refused.
# ``reorder_and_upcast_attn`` is kept: it only makes PyTorch's eager attention compute q.k in
# float32 with the scale folded in (and sdpa, PyTorch's default, ignores it); in float32 that is
# the same product up to rounding (a test compares the logits).
UNSUPPORTED = {"scale_attn_by_inverse_layer_idx": True, "scale_attn_weights": False}
OPTIONAL_KEYS = ("n_inner", "activation_function", *FLOAT_KEYS, *ID_KEYS,
                 "reorder_and_upcast_attn")
# the activations transformers' TF GPT-2 implements (``transformers.activations_tf.ACT2FN``)
ACTIVATIONS = ("gelu", "gelu_10", "gelu_fast", "gelu_new", "glu", "mish", "quick_gelu", "relu",
               "sigmoid", "silu", "swish", "tanh")
CODE_KEYS = ("auto_map", "trust_remote_code", "attn_implementation")  # and "_" keys
# the one "_" key allowed: older transformers wrote where a model was loaded from into every
# config it saved (many fine-tuned hub GPT-2s carry it); it is never passed on
NAME_KEY = "_name_or_path"
# tokenizer_class in tokenizer_config.json -> the class its tokenizer.json is loaded with
TOKENIZERS = {None: "GPT2TokenizerFast", "GPT2Tokenizer": "GPT2TokenizerFast",
              "GPT2TokenizerFast": "GPT2TokenizerFast",
              "PreTrainedTokenizerFast": "PreTrainedTokenizerFast"}
PICKLES = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_LAYER = re.compile(r"h_\._(\d+)")
_BUFFER = re.compile(r"transformer\.h\.\d+\.attn\.(bias|masked_bias)")  # causal-mask buffers
WTE, LM_HEAD = "transformer.wte.weight", "lm_head.weight"


def local_path(arg: str | Path) -> Path:
    """``arg`` as a resolved local path; a missing one that looks like a hub id gets a hint.

    ``arg`` is the text typed (``--init``, ``CKPT=``) or a path the config already resolved
    against its folder (``train.init``): then the hub id is guessed from its last component, or
    its last two when the folder above is missing too (``openai-community/gpt2-xl``).
    """
    path = Path(arg).expanduser().resolve()
    if path.exists():
        return path
    if isinstance(arg, str):
        hub = arg if _HUB_ID.fullmatch(arg) else None
    else:
        two = f"{path.parent.name}/{path.name}"
        hub = two if not path.parent.exists() and _HUB_ID.fullmatch(two) else (
            path.name if _HUB_ID.fullmatch(path.name) else None)
    if hub:
        raise UserError(f"{arg}: no such local folder; if {hub} is a hub id, fetch its files "
                        f"first (models are read from local folders only, nothing is "
                        f"downloaded): `hf download {hub} --include '*.safetensors' '*.json' "
                        f"'*.txt' --local-dir models/{hub.rsplit('/', 1)[-1]}`, and pass that "
                        "folder")
    return path


def check_keys(path: Path, settings: dict) -> None:
    """Refuse the keys that make transformers load code or kernels, and the other keys that set
    its internals (``_``)."""
    for key in settings:
        if key in CODE_KEYS or key.startswith("_attn_implementation"):
            raise UserError(f"{path}: refused, {key!r} makes transformers load code or kernels "
                            "(this project reads plain GPT-2 folders only)")
        if key.startswith("_") and key != NAME_KEY:
            raise UserError(f"{path}: refused, {key!r} sets a transformers internal (keys "
                            "starting with '_' are not read, as some load code); delete the line "
                            "if you trust the folder")


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; a one-line error when it is unreadable or not an object."""
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from None
    if not isinstance(settings, dict):
        raise UserError(f"{path}: not a JSON object")
    return settings


def read_config(path: Path):
    """A ``GPT2Config`` from a folder's ``config.json`` (or a run's ``model_config.json``),
    checked and built from the architecture keys only."""
    from transformers import GPT2Config

    path = path if path.suffix == ".json" else path / "config.json"
    if not path.is_file():
        raise UserError(f"no Hugging Face model folder: {path} missing")
    settings = read_json(path)
    check_keys(path, settings)
    if "model_type" not in settings:
        raise UserError(f'{path}: no model_type; a GPT-2 folder says "model_type": "gpt2" (add '
                        "the line if it is one)")
    if settings["model_type"] != "gpt2":
        raise UserError(f"{path}: model_type {settings['model_type']!r}, not 'gpt2' (only "
                        "GPT-2 folders are read)")
    check_types(path, settings)
    for key, refused in UNSUPPORTED.items():
        if settings.get(key, not refused) == refused:
            raise UserError(f"{path}: refused, {key}={json.dumps(refused)}: transformers' "
                            "TensorFlow GPT-2 does not implement it, so the logits would differ")
    act = settings.get("activation_function", "gelu_new")
    if act not in ACTIVATIONS:
        raise UserError(f"{path}: unknown activation_function {act!r}")
    if settings["n_embd"] % settings["n_head"]:
        raise UserError(f"{path}: n_embd {settings['n_embd']} is not a multiple of n_head "
                        f"{settings['n_head']}")
    kept = {k: settings[k] for k in (*INT_KEYS, *OPTIONAL_KEYS) if k in settings}
    return GPT2Config(**kept)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_types(path: Path, settings: dict) -> None:
    """One line for the first architecture value of the wrong type or range."""
    rules = [(INT_KEYS, lambda v: _is_int(v) and v > 0, "a positive integer"),
             (("n_inner",), lambda v: v is None or (_is_int(v) and v > 0),
              "a positive integer or null"),
             (ID_KEYS, lambda v: v is None or (_is_int(v) and v >= 0),
              "a non-negative integer or null"),
             (FLOAT_KEYS, lambda v: (_is_int(v) or isinstance(v, float)) and 0 <= v < 1,
              "a number from 0 to below 1"),
             ((*UNSUPPORTED, "reorder_and_upcast_attn"), lambda v: isinstance(v, bool),
              "true or false")]
    for keys, ok, what in rules:
        for key in keys:
            if (key in settings or key in INT_KEYS) and not ok(settings.get(key)):
                raise UserError(f"{path}: {key} must be {what}, not {settings.get(key)!r}")


def weight_files(folder: Path) -> list[Path]:
    """The folder's safetensors files (sharded or not), else its ``tf_model.h5``; refuses a
    folder with only pickle weights."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise UserError(f"{index}: no weight_map")
        names = sorted(set(map(str, weight_map.values())))
        for name in names:  # shard names stay inside the folder
            if Path(name).name != name or not name.endswith(".safetensors"):
                raise UserError(f"{index}: refused shard name {name!r}")
            if not (folder / name).is_file():
                raise UserError(f"{index}: shard {name} missing")
        return [folder / n for n in names]
    for name in ("model.safetensors", "tf_model.h5"):
        if (folder / name).is_file():
            return [folder / name]
    pickles = sorted(p.name for pattern in PICKLES for p in folder.glob(pattern))
    if pickles:
        raise UserError(f"{folder}: only pickle weights ({pickles[0]}); they are not loaded "
                        "(unpickling can run code): convert them to model.safetensors where you "
                        "trust them (transformers 5: GPT2LMHeadModel.from_pretrained(folder)"
                        ".save_pretrained(out)) or download the hub's model.safetensors")
    raise UserError(f"{folder}: no weights (model.safetensors, its index, or tf_model.h5)")


def check_folder(folder: Path):
    """``folder``'s config when it is a GPT-2 folder this project reads safely (config, tokenizer
    config, weight files); else a one-line error."""
    config = read_config(folder)
    check_tokenizer_keys(folder)
    weight_files(folder)
    return config


def check_tokenizer_keys(folder: Path) -> dict:
    """``folder``'s ``tokenizer_config.json`` (``{}`` when absent), refused when it has code
    keys (its class is checked when the tokenizer is loaded: ``--init`` does not use it)."""
    path = folder / "tokenizer_config.json"
    settings = read_json(path) if path.is_file() else {}
    check_keys(path, {k: v for k, v in settings.items() if k in CODE_KEYS})
    return settings


def tokenizer_class(folder: Path) -> str:
    """The fast tokenizer class that reads ``folder``'s ``tokenizer.json``, after checking its
    ``tokenizer_config.json``: no code keys, and a ``tokenizer_class`` of GPT-2's (or none).

    ``AutoTokenizer`` would pick whatever class the folder names, and slow ones read vocabulary
    files (``TransfoXLTokenizer`` unpickles its ``vocab.pkl``); the class is chosen here instead.
    """
    name = check_tokenizer_keys(folder).get("tokenizer_class")
    if name not in TOKENIZERS:
        raise UserError(f"{folder / 'tokenizer_config.json'}: refused, tokenizer_class "
                        f"{name!r}: only GPT-2's byte-level BPE is read "
                        f"({', '.join(filter(None, TOKENIZERS))})")
    return TOKENIZERS[name]


def pt_name(name: str) -> str:
    """Any saved GPT-2 tensor name -> its PyTorch ``GPT2LMHeadModel`` name:
    ``transformer/h_._0/ln_1/gamma:0`` (TF, also under a model scope) and ``h.0.ln_1.weight``
    (a bare ``GPT2Model``) -> ``transformer.h.0.ln_1.weight``."""
    if "/" in name:
        name = re.sub(r":\d+$", "", name)
        name = name[name.rindex("transformer/"):] if "transformer/" in name else name
        name = _LAYER.sub(r"h.\1", name).replace("/", ".")
        for tf_part, pt_part in ((".gamma", ".weight"), (".beta", ".bias"),
                                 (".embeddings", ".weight")):
            if name.endswith(tf_part):
                name = name[: -len(tf_part)] + pt_part
    if not name.startswith(("transformer.", "lm_head.")):
        name = "transformer." + name
    return name


def tensors(folder: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Every tensor of the folder's weight files, one at a time, by its saved name (fp16 and
    bf16 as saved: ``ml_dtypes`` gives numpy the bfloat16 that safetensors' numpy API uses)."""
    import ml_dtypes  # noqa: F401  (registers numpy's "bfloat16" dtype name)

    for path in weight_files(folder):
        if path.suffix == ".h5":
            yield from _h5_tensors(path)
            continue
        try:
            with safe_open(path, "np") as fh:
                for name in fh.keys():  # noqa: SIM118 (safe_open is not iterable)
                    yield name, fh.get_tensor(name)
        except (OSError, ValueError, TypeError, SafetensorError) as exc:
            raise UserError(f"{path}: cannot read the weights ({exc})") from None


def _h5_tensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: cannot read the weights ({exc})") from None
    with fh:
        names: list[str] = []
        try:
            fh.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset)
                          else None)
            for name in names:
                yield name, fh[name][()]
        except (OSError, RuntimeError, ValueError, KeyError) as exc:  # damaged past its header
            raise UserError(f"{path}: cannot read the weights ({exc})") from None


def file_format(folder: Path) -> str:
    """"pt" or "tf": the naming of the folder's weights (its safetensors metadata, else h5)."""
    first = weight_files(folder)[0]
    if first.suffix == ".h5":
        return "tf"
    try:
        with safe_open(first, "np") as fh:
            return (fh.metadata() or {}).get("format", "pt")
    except (OSError, SafetensorError) as exc:
        raise UserError(f"{first}: cannot read the weights ({exc})") from None


def fit(name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` reshaped to ``shape`` when only length-1 axes differ (TF's (1, n) biases)."""
    if array.shape != shape and [d for d in array.shape if d != 1] == [d for d in shape if d != 1]:
        array = array.reshape(shape)
    if array.shape != shape:
        raise UserError(f"weight {name!r} has shape {array.shape}, expected {shape}")
    return array


def load_weights(model, folder: Path) -> dict:
    """Assign the folder's weights to a built ``TFGPT2LMHeadModel`` by name.

    The embedding may differ in rows from the model's (another tokenizer): the first rows are
    kept, the rest stay as the model drew them. Returns counts: tensors, rows kept and new.
    """
    targets = {pt_name(v.name): v for v in model.weights}
    saved: dict[str, np.ndarray] = {}
    done = keep = 0
    for name, array in tensors(folder):
        key = pt_name(name)
        if _BUFFER.fullmatch(key):
            continue
        if key in (WTE, LM_HEAD):
            saved[key] = array
            continue
        if key not in targets:
            raise UserError(f"{folder}: unexpected weight {name!r} for a GPT-2 of this config")
        var = targets.pop(key)
        var.assign(fit(name, array, tuple(var.shape)).astype(var.dtype.as_numpy_dtype))
        done += 1
    wte = saved.get(WTE, saved.get(LM_HEAD))
    if wte is not None and LM_HEAD in saved and not np.array_equal(saved[LM_HEAD], wte):
        raise UserError(f"{folder}: lm_head.weight differs from the embeddings; GPT-2 here ties "
                        "them (an untied head cannot be loaded)")
    if wte is not None:
        var = targets.pop(WTE)
        rows, width = var.shape
        if wte.ndim != 2 or wte.shape[1] != width:
            raise UserError(f"{folder}: embeddings shaped {wte.shape}, expected (*, {width})")
        keep = min(rows, wte.shape[0])
        table = var.numpy()
        table[:keep] = wte[:keep].astype(table.dtype)
        var.assign(table)
        done += 1
    if targets:
        raise UserError(f"{folder}: {len(targets)} GPT-2 weights missing, e.g. "
                        f"{sorted(targets)[0]!r}")
    return {"tensors": done, "saved_rows": wte.shape[0], "kept": keep, "new": rows - keep}


def load_model(folder: Path):
    """A built ``TFGPT2LMHeadModel`` with a checked folder's config and weights."""
    import tensorflow as tf
    from transformers import TFGPT2LMHeadModel

    config = check_folder(folder)
    net = TFGPT2LMHeadModel(config)
    net(tf.zeros((1, 2), tf.int32))
    rows = load_weights(net, folder)["saved_rows"]
    if rows != config.vocab_size:  # only --init resizes (model.build_model)
        raise UserError(f"{folder}: the embeddings have {rows:,} rows but config.json says "
                        f"vocab_size {config.vocab_size:,}")
    return net

"""The trained model's ``final/`` folder: weights, tokenizer, model card and data licences.

Licences travel forward with the data (corpus -> tokens -> run): the token stage writes
``<tokens>/ATTRIBUTION.md`` and ``meta.json["licenses"]`` (``{source: {licence: documents}}``),
and the card reads them from there, never from the corpus folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from common import markdown
from common.atomic import atomic_dir
from common.formats import ATTRIBUTION

CARD_SETTINGS = ("optimizer", "lr", "min_lr", "warmup_steps", "weight_decay", "batch_size",
                 "accumulate", "clip_norm", "buffer_size", "seed")


def licences(tokens: Path, meta: dict) -> str:
    """The card's licence section: documents per source and licence, and the attribution file."""
    counts = meta.get("licenses") or {}
    rows = [[source, lic, f"{n:,}"] for source, by_lic in sorted(counts.items())
            for lic, n in sorted(by_lic.items())]
    parts = ["\n".join(markdown.table(["source", "licence", "documents"], rows))] if rows else []
    if (tokens / ATTRIBUTION).is_file():
        parts.append(f"Attribution for every source: [{ATTRIBUTION}]({ATTRIBUTION}) (copied from "
                     "the token folder).")
    if not parts:
        return (f"No licence record was found with the training data (`{tokens / ATTRIBUTION}`, "
                "`meta.json` \"licenses\"): the token folder predates it; re-run "
                "`make tokenizer` to write them, and check each source's terms "
                "before sharing this model.")
    return "\n\n".join(parts)


def model_card(plan, params: int, precision: str, result: dict, step: int) -> str:
    """``final/README.md``: data, configuration, validation loss / bits per byte, licences."""
    c, t = plan.config, plan.train
    data_table = "\n".join(markdown.table(
        ["split", "documents", "tokens", "UTF-8 bytes", "blocks"],
        [[s, f"{e['documents']:,}", f"{e['tokens']:,}", f"{e.get('bytes', 0):,}", f"{plan.blocks[s]:,}"]
         for s, e in plan.meta["splits"].items()]))
    settings = ", ".join(f"{k}={t[k]}" for k in CARD_SETTINGS)
    valid = result["valid"]  # tftrain.evaluate.Evaluator.split's figures
    scored = ("the whole valid split" if valid["whole"]
              else f"the first {valid['tokens']:,} tokens of the valid split")
    return f"""---
language: bg
library_name: transformers
pipeline_tag: text-generation
---
# Bulgarian GPT-2 ({t['size']}, {params / 1e6:.1f}M parameters)

A GPT-2 trained from {'`' + str(plan.init) + '`' if plan.init else 'scratch'} on Bulgarian web
text by the bg-gpt2 toolkit (TensorFlow `TFGPT2LMHeadModel`). Load it with
`TFAutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained`.

## Model
n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, n_positions={c.n_positions},
vocab={c.vocab_size} (ByteLevel BPE), block size {plan.block}, dropout {c.resid_pdrop}.

## Training
{step:,} steps of {plan.global_batch} blocks ({plan.tokens_per_step:,} tokens a step),
{precision}; {settings}.

## Data
{data_table}

## Evaluation
Validation loss {valid['loss']:.4f} nats a token, perplexity {valid['perplexity']:.2f},
{valid['bits_per_byte']:.4f} bits per byte ({scored}). Bits per byte (total nats / ln 2 / UTF-8
bytes of the text) compare across tokenizers; perplexity a token does not.

## Data licences
{licences(plan.tokens, plan.meta)}

Generated text may repeat or distort its sources; it is not fact-checked.
"""


def export_final(model, tokenizer, card: str, tokens: Path, out: Path) -> Path:
    """Write ``out/final/`` (safetensors weights, tokenizer, card, attribution) in one rename."""
    with atomic_dir(out / "final") as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        (tmp / "README.md").write_text(card, encoding="utf-8")
        if (tokens / ATTRIBUTION).is_file():
            shutil.copyfile(tokens / ATTRIBUTION, tmp / ATTRIBUTION)
    return out / "final"

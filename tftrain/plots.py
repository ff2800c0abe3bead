"""The loss, bits-per-byte and learning-rate curves of a run, from its ``metrics.jsonl``, as one
PNG."""

from __future__ import annotations

from pathlib import Path

from common.atomic import atomic_write
from tftrain.logs import read_metrics


def plot_curves(metrics: Path, png: Path) -> None:
    """Train and validation loss (left), bits per byte (middle) and learning rate (right) against
    the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics)
    train = [r for r in rows if r["kind"] == "train"]
    valid = [r for r in rows if r["kind"] == "valid"]
    fig, (ax_loss, ax_bpb, ax_lr) = plt.subplots(1, 3, figsize=(15, 4))
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    ax_loss.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", label="valid")
    ax_loss.set(xlabel="step", ylabel="loss (nats/token)", title="loss")
    ax_loss.legend()
    for name, rows_of, style in (("train", train, "-"), ("valid", valid, "o-")):
        kept = [r for r in rows_of if "bits_per_byte" in r]  # runs from before it was logged
        ax_bpb.plot([r["step"] for r in kept], [r["bits_per_byte"] for r in kept], style,
                    label=name)
    ax_bpb.set(xlabel="step", ylabel="bits per UTF-8 byte", title="bits per byte")
    ax_bpb.legend()
    ax_lr.plot([r["step"] for r in train], [r["lr"] for r in train])
    ax_lr.set(xlabel="step", ylabel="learning rate", title="learning rate")
    fig.tight_layout()
    with atomic_write(png, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)

"""What the trainer's start-up lets through, its progress output on and off a terminal, and the
model card's licence section (no TF needed).

The shape of a whole training run's output outside a terminal is checked on the main run of
``tests/test_train_run.py``.
"""

from __future__ import annotations

import io
import logging
import os
import sys

import pytest

from tftrain import card, logs, tfsetup

REAL = "W0000 00:00:1 op_kernel.cc:1] Resource exhausted: out of memory while allocating"
CPU_START = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1 port.cc:153] oneDNN custom operations are on. You may see slightly different",
    "I0000 00:00:1 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not "
    "be used.",
    "E0000 00:00:1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call "
    "to cuInit: UNKNOWN ERROR (303)",
]


def test_startup_noise_is_dropped_and_real_lines_kept():
    assert tfsetup.startup_noise([*CPU_START, REAL]) == [REAL]
    # with a CUDA driver installed, a failing cuInit is the user's business: kept
    gpu_box = [CPU_START[0], CPU_START[3]]
    assert tfsetup.startup_noise(gpu_box) == [CPU_START[3]]


def test_quiet_startup_holds_back_fd2_and_replays_what_matters(capfd):
    with tfsetup.quiet_startup():
        for line in (*CPU_START, REAL):
            os.write(2, (line + "\n").encode())
    err = capfd.readouterr().err
    assert err.splitlines() == [REAL]


def test_transformers_deprecation_dropped_other_warnings_kept():
    tfsetup.quiet_transformers()
    logger = logging.getLogger("transformers.modeling_tf_utils")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    try:
        logger.warning("TensorFlow and JAX classes are deprecated and will be removed in "
                       "Transformers v5. We recommend migrating to PyTorch classes.")
        logger.warning("All model checkpoint layers were used when initializing X.\n")
        logger.warning("Some layers of X were not initialized from the model checkpoint")
    finally:
        logger.removeHandler(handler)
    assert seen == ["Some layers of X were not initialized from the model checkpoint"]


def test_licences_come_from_the_token_folder(tmp_path):
    meta = {"licenses": {"bgwiki": {"CC BY-SA 4.0": 1200},
                         "bta": {"© БТА, all rights reserved; research use": 30}}}
    (tmp_path / card.ATTRIBUTION).write_text("# Attribution\n", encoding="utf-8")
    text = card.licences(tmp_path, meta)
    assert "| bgwiki | CC BY-SA 4.0 | 1,200 |" in text
    assert "| bta | © БТА, all rights reserved; research use | 30 |" in text
    assert f"[{card.ATTRIBUTION}]" in text

    (tmp_path / card.ATTRIBUTION).unlink()
    missing = card.licences(tmp_path, {})
    assert "No licence record" in missing and "make tokenizer" in missing
    assert str(tmp_path / card.ATTRIBUTION) in missing


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


FIGURES = dict(loss=5.4321, bpb=1.9876, lr=1e-3, tokens_per_s=12345.0, eta_s=125.0)


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    for stream in (_Terminal(), io.StringIO()):
        monkeypatch.setattr(sys, "stdout", stream)
        progress = logs.Progress(40, 0)
        for step in range(1, 41):
            progress.update(step, FIGURES if step % 20 == 0 else None)
            if step == 20:
                progress.say("step 20: validation loss 5.5")
        progress.close()
        out = stream.getvalue()
        assert "step 20: validation loss 5.5\n" in out
        if stream.isatty():  # one bar redrawn in place, figures beside it
            assert "\r" in out and "40/40" in out and "bits/byte=1.988" in out
            assert "ETA" not in out
        else:
            assert out.splitlines() == [
                "step 20/40  loss 5.4321  bits/byte 1.9876  lr 1.00e-03  tokens/s 12,345  "
                "ETA 2m05s",
                "step 20: validation loss 5.5",
                "step 40/40  loss 5.4321  bits/byte 1.9876  lr 1.00e-03  tokens/s 12,345  "
                "ETA 2m05s"]


class _Clock:
    """Time that moves only when the test says so."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_leaves_out_the_first_step_and_paused_time():
    """First step 30 s (tracing, compiling), then 1 s a step, a 5 s validation after step 10:
    at step 10 of 100 the ETA is 90 steps x 1 s, not 90 x 3.9 s as the window's pace says."""
    clock = _Clock()
    pace = logs.Pace(1000, clock)
    clock.now += 30
    pace.step()
    for _ in range(9):
        clock.now += 1
        pace.step()
    speed, eta = pace.figures(90)
    assert speed == pytest.approx(10 * 1000 / 39)  # the window's tokens/s: compilation in it
    assert eta == pytest.approx(90.0)
    with pace.pause():
        clock.now += 5
    for _ in range(10):
        clock.now += 2
        pace.step()
    speed, eta = pace.figures(80)
    assert speed == pytest.approx(500.0)  # 10 steps in 20 working seconds
    assert eta == pytest.approx(80 * 29 / 19)  # steps 2..20: 29 working seconds
    assert pace.median_speed() == pytest.approx(500.0)  # the compiling window left out


def test_eta_of_a_run_logged_every_step_starts_from_the_first_window():
    clock = _Clock()
    pace = logs.Pace(1000, clock)
    clock.now += 4
    pace.step()
    assert pace.figures(9) == (pytest.approx(250.0), pytest.approx(36.0))

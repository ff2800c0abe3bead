"""TensorFlow, set up in one place for every entry point: its environment and a quiet import.

The environment is set when the ``tftrain`` package is first imported (its ``__init__`` imports
this module), so no module of the package can import TensorFlow before it:
``TF_USE_LEGACY_KERAS=1`` (transformers' TF models need Keras 2, ``tf_keras``) and
``TF_CPP_MIN_LOG_LEVEL=1`` (INFO hidden, warnings shown); a value already set is kept.

Noise a user cannot act on is dropped at import, nothing else: the C++ start-up lines TensorFlow
prints while it loads and probes for devices (oneDNN notice, "Could not find cuda drivers", and on
a machine with no CUDA driver the ``cuInit`` error that follows), transformers' "TensorFlow and
JAX classes are deprecated" warning (this project pins transformers 4.x on purpose) and its
"All ... layers were used / initialized" notes on a load that went right. Every other line
written during start-up, and every other transformers warning (layers not used or newly
initialised among them), still comes through.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager

ENVIRONMENT = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "1"}
for _name, _value in ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

STARTUP_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
                 "Could not find cuda drivers", "Unable to register cuDNN factory",
                 "Unable to register cuFFT factory", "Unable to register cuBLAS factory",
                 "computation placer already registered",
                 "This TensorFlow binary is optimized to use available CPU instructions",
                 "rebuild TensorFlow with the appropriate compiler flags")
NO_DRIVER = "Could not find cuda drivers"
NO_DRIVER_ONLY = ("failed call to cuInit",)  # noise only when no CUDA driver is installed
# transformers warnings that say nothing is wrong
TRANSFORMERS_NOISE = ("TensorFlow and JAX classes are deprecated",
                      "All model checkpoint layers were used", "All the layers of ")


def startup_noise(lines: list[str]) -> list[str]:
    """The lines worth showing from what was written to stderr during start-up."""
    no_driver = any(NO_DRIVER in line for line in lines)
    return [line for line in lines
            if not any(tag in line for tag in STARTUP_NOISE)
            and not (no_driver and any(tag in line for tag in NO_DRIVER_ONLY))]


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TRANSFORMERS_NOISE)


def quiet_transformers() -> None:
    """Drop ``TRANSFORMERS_NOISE`` (only it) from the transformers loggers that emit it."""
    for name in ("transformers.modeling_tf_utils", "transformers.tokenization_utils_base"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())


@contextmanager
def quiet_startup():
    """Import TensorFlow and probe its devices inside this block: file descriptor 2 is held in a
    temporary file meanwhile and what is not start-up noise is written back afterwards."""
    quiet_transformers()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines()
            kept = startup_noise(lines)
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def import_tensorflow():
    """``tensorflow``, imported and its devices listed quietly (see ``quiet_startup``)."""
    with quiet_startup():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf

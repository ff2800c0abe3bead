"""GPT-2 training in TensorFlow. Importing the package sets TensorFlow's environment first
(``tftrain.tfsetup``), before any of its modules can import TensorFlow."""

from tftrain import tfsetup  # noqa: F401 (imported for the environment it sets)

"""Pieces every stage shares: the config, atomic writes, file formats, one-line errors."""

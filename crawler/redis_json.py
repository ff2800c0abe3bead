"""JSON serializer for scrapy-redis queues (``SCHEDULER_SERIALIZER``): readable, no pickle.

A request dict holds bytes (body, headers); they travel as ``{"__b64__": "..."}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any


def _encode(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return {"__b64__": base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, dict):
        return {key.decode("latin-1") if isinstance(key, bytes) else key: _encode(value)
                for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(value) for value in obj]
    return obj


def _decode(obj: dict) -> Any:
    if set(obj) == {"__b64__"}:
        return base64.b64decode(obj["__b64__"])
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_encode(obj), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return json.loads(text, object_hook=_decode)

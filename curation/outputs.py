"""Writing outputs: atomically, deterministically, and with form text made inert.

Only the CLI (and ``curate run``) calls these: library stages return plain data.
Every file is written to a temporary file in the same folder, then renamed over the target, so a
reader never sees half a file. Text that came from a form is made inert: a CSV or Excel cell
that would start with ``=``, ``+``, ``-`` (text), ``@``, tab or carriage return gets a leading
``'`` so that no spreadsheet evaluates it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def inert(value: Any) -> Any:
    """A text value made safe for a spreadsheet cell (numbers are left alone): control characters
    and bidirectional overrides dropped, and a leading ``'`` before ``=``, ``+``, ``-``, ``@``, tab or CR."""
    if isinstance(value, str):
        from .cells import strip_controls

        value = strip_controls(value)
        if value.startswith(_DANGEROUS):
            return "'" + value
    return value


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None) -> Path:
    """``path`` replaced by ``data`` at once: a temporary file beside it, then a rename (``mode``: its
    permission bits; default those mkstemp gives)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def dumps(obj: Any, *, compact: bool = False) -> str:
    """Deterministic JSON: sorted keys are not imposed (order is meaningful), NaN as null.
    ``compact``: no indentation, each item of a top-level list on a line of its own (large files);
    a top-level value may then be an iterator, whose items are converted one at a time."""
    def plain(v: Any) -> Any:
        return _nan_to_none(json.loads(json.dumps(v, default=_json_default, allow_nan=True)))

    if compact:
        def one(v: Any) -> str:
            return json.dumps(plain(v), ensure_ascii=False, allow_nan=False, separators=(",", ":"))

        def value(v: Any) -> str:
            if isinstance(v, (list, tuple)) or (hasattr(v, "__next__") and hasattr(v, "__iter__")):
                items = [one(x) for x in v]
                return "[\n" + ",\n".join(items) + "\n]" if items else "[]"
            return one(v)

        if isinstance(obj, dict):
            return "{\n" + ",\n".join(f"{one(k)}: {value(v)}" for k, v in obj.items()) + "\n}\n"
        return value(obj) + "\n"
    return json.dumps(plain(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, dumps(obj))


def csv_text(frame) -> str:
    """A DataFrame as CSV with form text made inert (numbers untouched)."""
    import pandas as pd

    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(inert)
    return safe.to_csv(index=False, lineterminator="\n")


def write_csv(path: str | os.PathLike, frame) -> Path:
    return write_text(path, csv_text(frame))

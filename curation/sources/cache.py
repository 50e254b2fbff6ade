"""Extracted article text kept by file hash: re-verifying after a form edit reads no article again.

The cache is a folder of JSON files named by the SHA-256 of the article's bytes and the extractor
version (:data:`.articles.EXTRACTOR_VERSION`). Default folder: the user's cache folder
(``platformdirs.user_cache_dir("curation")/sources``; ``$CURATION_CACHE_DIR/sources`` when set);
``cache_dir`` overrides it. JSON, never pickle: a cache file is read as data. An unwritable or
damaged cache is ignored (the article is read again), never an error.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .articles import EXTRACTOR_VERSION, Article, ArticleLimits, file_hash, read_article


def default_cache_dir() -> Path:
    env = os.environ.get("CURATION_CACHE_DIR")
    if env:
        return Path(env) / "sources"
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("curation")) / "sources"
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "curation" / "sources"


def _entry(cache_dir: Path, digest: str) -> Path:
    return cache_dir / f"{digest}.v{EXTRACTOR_VERSION}.json"


def load_cached(cache_dir: Path | None, digest: str, name: str) -> Article | None:
    if cache_dir is None:
        return None
    p = _entry(cache_dir, digest)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        if d.get("version") != EXTRACTOR_VERSION or d.get("sha256") != digest:
            return None
        return Article.from_dict(d, file=name)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(cache_dir: Path | None, article: Article) -> None:
    if cache_dir is None or not article.sha256:
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(article.to_dict(), fh, ensure_ascii=False)
        os.replace(tmp, _entry(cache_dir, article.sha256))
    except OSError:
        pass


def read_cached(path: str | Path, cache_dir: str | Path | None | bool = None, *,
                limits: ArticleLimits | None = None) -> tuple[Article, bool]:
    """An article from the cache when its bytes were read before, else read (and cached): ``(article, from_cache)``.

    ``cache_dir=False`` reads without a cache.
    """
    path = Path(path)
    limits = limits or ArticleLimits()
    cdir = None if cache_dir is False else (Path(cache_dir) if cache_dir else default_cache_dir())
    try:
        if path.stat().st_size > limits.max_mb * 1e6:
            return read_article(path, limits=limits), False
        data = path.read_bytes()
    except OSError:
        return read_article(path, limits=limits), False
    digest = file_hash(data)
    hit = load_cached(cdir, digest, path.name)
    if hit is not None:
        return hit, True
    art = read_article(path, data=data, limits=limits)
    store(cdir, art)
    return art, False


def _read_one(args: tuple[str, Any, Any]) -> tuple[dict[str, Any], bool]:
    path, cache_dir, limits = args
    art, hit = read_cached(path, cache_dir, limits=limits)
    return art.to_dict() | {"file": art.file}, hit


def read_many(paths: list[Path], cache_dir: str | Path | None | bool = None, *, jobs: int | None = None,
              limits: ArticleLimits | None = None) -> dict[str, Article]:
    """Read several articles (cached ones from the cache; the rest in parallel processes when there are many)."""
    out: dict[str, Article] = {}
    todo: list[Path] = []
    cdir = None if cache_dir is False else (Path(cache_dir) if cache_dir else default_cache_dir())
    for p in paths:
        try:
            if p.stat().st_size <= (limits or ArticleLimits()).max_mb * 1e6:
                hit = load_cached(cdir, file_hash(p.read_bytes()), p.name)
                if hit is not None:
                    out[str(p)] = hit
                    continue
        except OSError:
            pass
        todo.append(p)
    if jobs is None:
        jobs = min(os.cpu_count() or 1, len(todo)) if len(todo) >= 4 else 1
    if jobs <= 1:
        for p in todo:
            out[str(p)] = read_cached(p, cache_dir if cache_dir is not None else None, limits=limits)[0]
        return out
    from ..workers import process_pool

    with process_pool(jobs) as pool:
        futs = {str(p): pool.submit(_read_one, (str(p), cache_dir, limits)) for p in todo}
        for key, fut in futs.items():
            d, _ = fut.result()
            out[key] = Article.from_dict(d)
    return out

"""The local embedding model: WordLlama's weights and tokenizer, both inside its PyPI package.

Nothing is downloaded: the files are opened from the installed package (``disable_download``), and
the package's own lookup for its tokenizer looks in a folder it does not ship (``tokenizer/``
rather than ``tokenizers/``), so the package folder is passed as the cache folder where both are
found. Loaded once per process on first use, never at import: ``manage.py`` and workers that never
search pay nothing. Without the package, ``model_get`` returns None and search is lexical.

Pure (no Django): numpy comes with the model package and is imported only with it.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

# A catalogue word at least this close in meaning (cosine) to a question's word stands for it, if
# no other catalogue word comes within MARGIN of it. Chosen on the labelled questions in tests/.
MIN_SIMILARITY = 0.55
MARGIN = 0.03
WORD_CACHE_SIZE = 50_000


class Model:
    """The loaded model: unit vectors of words and short phrases, remembered once computed."""

    def __init__(self, inference: Any, load_seconds: float) -> None:
        self.inference = inference
        self.load_seconds = load_seconds
        self._vectors: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def vectors(self, texts: list[str]) -> Any:
        """Unit vectors of ``texts`` (rows of a numpy array), from the cache where known."""
        import numpy as np

        missing = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if missing:
            computed = self.inference.embed(missing, norm=True)
            with self._lock:
                for text, vector in zip(missing, computed, strict=True):
                    self._vectors[text] = vector
                while len(self._vectors) > WORD_CACHE_SIZE:
                    self._vectors.popitem(last=False)
        dim = self.inference.embedding.shape[1]
        return np.stack([self._vectors.get(t, np.zeros(dim, dtype=np.float32)) for t in texts])


class Neighbours:
    """The catalogue words closest in meaning to a word: the model's part of ``Matcher.lookup``."""

    def __init__(self, model: Model, terms: list[str]) -> None:
        self.model = model
        self.terms = terms
        self.matrix = model.vectors(terms) if terms else None

    def nearest(self, word: str) -> list[tuple[str, float]]:
        if self.matrix is None:
            return []
        similarities = self.matrix @ self.model.vectors([word])[0]
        top = min(2, len(self.terms))
        order = similarities.argpartition(-top)[-top:]
        order = order[similarities[order].argsort()[::-1]]
        best = float(similarities[order[0]])
        if best < MIN_SIMILARITY:
            return []
        if len(order) > 1 and best - float(similarities[order[1]]) < MARGIN:
            return []
        return [(self.terms[int(order[0])], best)]


_model: Model | None = None
_tried = False
_lock = threading.Lock()


def model_available() -> bool:
    """Whether the model package is installed (without loading it)."""
    return importlib.util.find_spec("wordllama") is not None


def model_get() -> Model | None:
    """The process's model, loaded on the first call; None when the package is not installed."""
    global _model, _tried
    if _tried:
        return _model
    with _lock:
        if not _tried:
            _model = _load() if model_available() else None
            _tried = True
    return _model


def _load() -> Model:
    started = time.perf_counter()
    import wordllama  # type: ignore[import-untyped]

    package = Path(wordllama.__file__).parent
    inference = wordllama.WordLlama.load(cache_dir=package, disable_download=True)
    return Model(inference, time.perf_counter() - started)

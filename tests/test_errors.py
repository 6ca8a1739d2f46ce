"""Bad input fails where it enters, with a message a user can act on."""

import pytest
import torch
from transformers import AutoConfig, AutoModel

from scalearn import HeadConfig, get_method, load_encoder
from scalearn.backbones import UnsupportedModelError, attach_sites, family_of, load_config
from scalearn.methods import UnknownMethodError


def test_unsupported_family_names_it_and_the_supported_ones(tmp_path):
    config = AutoConfig.for_model("gpt2", n_embd=32, n_layer=2, n_head=2, vocab_size=100)
    with pytest.raises(UnsupportedModelError) as error:
        family_of(config)
    message = str(error.value)
    assert "'gpt2'" in message
    for family in ("bert", "roberta", "xlm-roberta", "deberta-v2", "electra", "distilbert"):
        assert family in message
    # the same error from a local folder holding such a model, and from attaching to one
    config.save_pretrained(tmp_path)
    with pytest.raises(UnsupportedModelError, match="'gpt2'"):
        load_config(str(tmp_path))
    with pytest.raises(UnsupportedModelError, match="'gpt2'"):
        attach_sites(AutoModel.from_config(config))


def test_unknown_method_lists_the_registered_ones():
    with pytest.raises(UnknownMethodError, match="registered: adapter, adapter_m, adapter_soup, adapterfusion, compac"):
        get_method("prefix_tuning")
    with pytest.raises(UnknownMethodError, match="has no hyper-parameter 'omega_dropuot'"):
        get_method("scalearn", omega_dropuot=0.1)


def test_methods_check_their_sources(make_sources):
    encoder = load_encoder("tiny-bert")
    head = HeadConfig("classification", 32, 2)
    with pytest.raises(ValueError, match="transfers from source adapters"):
        get_method("scalearn").build(encoder, head)
    with pytest.raises(ValueError, match="does not use source adapters"):
        get_method("adapter").build(encoder, head, make_sources(encoder, 2))
    with pytest.raises(ValueError, match="one fixed weight per source"):
        get_method("probe", omega=[1.0]).build(encoder, head, make_sources(encoder, 2))


def test_bad_head_and_adapter_shapes():
    with pytest.raises(ValueError, match="head kind 'ranking' unknown"):
        HeadConfig("ranking", 32)
    with pytest.raises(ValueError, match="needs num_labels >= 2"):
        HeadConfig("classification", 32, num_labels=1)


def test_tiny_encoders_are_the_same_weights_every_time():
    a, b = load_encoder("tiny-electra"), load_encoder("tiny-electra")
    torch.manual_seed(123)  # a trial's seed must not change the "pretrained" weights
    c = load_encoder("tiny-electra")
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(p, q) and torch.equal(p, r), name

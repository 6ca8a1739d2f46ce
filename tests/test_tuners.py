"""The tuners compute their papers' equations: (IA)³ and LoRA equal a frozen encoder with the edit merged
into its weights; Compacter++'s PHM weight is Σ_i A_i ⊗ (s_i t_i) with the A_i shared."""

import pytest
import torch
from torch.nn import functional as F
from transformers import AutoConfig, AutoModel

from scalearn import TINY_CONFIGS, HeadConfig, get_method, load_encoder
from scalearn.tuners import Compacter, attach_linear_sites
from scalearn.tuners.sites import PROJECTIONS

FAMILIES = ["tiny-bert", "tiny-distilbert", "tiny-deberta-v2", "deberta-shared-keys"]


def encoder_of(family):
    """A tiny encoder; 'deberta-shared-keys' is DeBERTa-v2 with share_att_key (as deberta-v3-base), where the
    key and query projections also project the relative position embeddings."""
    if family != "deberta-shared-keys":
        return load_encoder(family)
    config = AutoConfig.for_model(**TINY_CONFIGS["tiny-deberta-v2"], share_att_key=True)
    torch.manual_seed(0)
    return AutoModel.from_config(config)


def projection(encoder, layer, role):
    names = PROJECTIONS[encoder.config.model_type]
    return encoder.get_submodule(f"{names['layers']}.{layer}.{names[role]}")


def tuned_and_merged(method_name, family):
    model = get_method(method_name).build(encoder_of(family), HeadConfig("classification", 32, 2)).eval()
    with torch.no_grad():
        for p in model.tuner.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if method_name == "ia3" else 0.0))
    return model, encoder_of(family).eval()


def assert_same_encoder(tuned, merged):
    ids = torch.randint(5, 1000, (3, 11), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    expected = merged(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(tuned(input_ids=ids, attention_mask=mask).last_hidden_state, expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_ia3_equals_rescaled_projections(family):
    """K = l_k ⊙ (W_k h + b_k), V likewise, FFN = W_2 (l_ff ⊙ γ(W_1 h)) + b_2: merged, diag(l) W and W diag(l_ff)."""
    model, merged = tuned_and_merged("ia3", family)
    tuner = model.tuner
    with torch.no_grad():
        for layer in range(tuner.num_layers):
            for role, scale in (("key", tuner.key_scale), ("value", tuner.value_scale)):
                linear = projection(merged, layer, role)
                linear.weight.mul_(scale[layer, :, None])
                linear.bias.mul_(scale[layer])
            projection(merged, layer, "ffn_out").weight.mul_(tuner.ffn_scale[layer])
    assert_same_encoder(model.encoder, merged)


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_equals_merged_low_rank_update(family):
    """y = W x + b + (α/r) B A x on query and value: merged, W + (α/r) B A (in eval, without dropout)."""
    model, merged = tuned_and_merged("lora", family)
    tuner = model.tuner
    assert tuner.scaling == 2.0 and tuner.targets == ("query", "value")
    with torch.no_grad():
        for layer in range(tuner.num_layers):
            for role in ("query", "value"):
                delta = tuner.scaling * getattr(tuner, f"{role}_B")[layer] @ getattr(tuner, f"{role}_A")[layer]
                torch.testing.assert_close(tuner.delta_weight(role, layer), delta)
                projection(merged, layer, role).weight.add_(delta)
    assert_same_encoder(model.encoder, merged)


def test_lora_init_kaiming_a_and_zero_b():
    tuner = get_method("lora").build(load_encoder("tiny-bert"), HeadConfig("classification", 32, 2)).tuner
    bound = 1 / 32**0.5  # Kaiming-uniform with a = √5 on a [r, d] matrix: U(-1/√d, 1/√d)
    for role in ("query", "value"):
        A, B = getattr(tuner, f"{role}_A"), getattr(tuner, f"{role}_B")
        assert A.shape == (2, 8, 32) and B.shape == (2, 32, 8)
        assert A.abs().max() <= bound and A.abs().max() > 0.8 * bound
        assert torch.count_nonzero(B) == 0


def test_lora_dropout_acts_on_the_low_rank_branch_only():
    model = get_method("lora", dropout=0.5).build(load_encoder("tiny-bert"), HeadConfig("classification", 32, 2))
    site = projection(model.encoder, 0, "query")
    with torch.no_grad():
        model.tuner.query_B.normal_()
    x = torch.randn(4, 32)
    model.train()
    torch.manual_seed(3)
    y = site(x)
    torch.manual_seed(3)
    dropped = F.dropout(x, 0.5, True)
    A, B = model.tuner.query_A[0], model.tuner.query_B[0]
    torch.testing.assert_close(y, site.frozen(x) + 2.0 * dropped @ A.T @ B.T, atol=1e-5, rtol=1e-5)


def test_compacter_phm_weight_is_a_sum_of_kronecker_products():
    compacter = Compacter(32, 3, reduction_factor=4, phm_dim=4, phm_rank=2)
    with torch.no_grad():
        compacter.rule.normal_()
        compacter.down_bias.normal_()
        compacter.up_bias.normal_()
    for layer in range(3):
        for projection_name, shape in (("down", (32, 8)), ("up", (8, 32))):
            left = getattr(compacter, f"{projection_name}_left")[layer]
            right = getattr(compacter, f"{projection_name}_right")[layer]
            by_hand = sum(torch.kron(compacter.rule[i], left[i] @ right[i]) for i in range(4))
            assert by_hand.shape == shape
            torch.testing.assert_close(compacter.phm_weight(layer, projection_name), by_hand, atol=1e-6, rtol=1e-5)
    x = torch.randn(2, 5, 32)
    layer = 1
    down = x @ compacter.phm_weight(layer, "down") + compacter.down_bias[layer]
    by_hand = F.gelu(down) @ compacter.phm_weight(layer, "up") + compacter.up_bias[layer]
    torch.testing.assert_close(compacter(layer, x), by_hand)


def test_compacter_slow_matrices_are_shared_by_every_layer_and_projection():
    compacter = Compacter(32, 3, reduction_factor=4)
    assert compacter.rule.shape == (4, 4, 4)
    sum(compacter(layer, torch.randn(2, 32)).sum() for layer in range(3)).backward()
    assert compacter.rule.grad is not None and compacter.rule.grad.abs().sum() > 0
    assert compacter.rule.std().item() == pytest.approx(1e-4, rel=0.5)  # N(0, 1e-4²): A starts near zero


def test_compacter_sits_after_the_ffn():
    """z from the Compacter enters the layer as LN(z + f + h_att), like the Pfeiffer adapter it replaces."""
    compacter_pp = get_method("compacter_pp", reduction_factor=4)  # d = 32: bottleneck 8, divisible by n = 4
    model = compacter_pp.build(load_encoder("tiny-bert"), HeadConfig("classification", 32, 2)).eval()
    site = model.sites[1]
    with torch.no_grad():
        model.tuner.rule.normal_()  # a clearly non-zero adapter
    intermediate, h_att = torch.randn(2, 5, 64), torch.randn(2, 5, 32)
    f = site.dense(intermediate)
    x = site.LayerNorm(f + h_att)
    torch.testing.assert_close(site(intermediate, h_att), site.LayerNorm(model.tuner(1, x) + f + h_att))
    plain = load_encoder("tiny-bert")
    assert model.encoder.state_dict().keys() == plain.state_dict().keys()


def test_compacter_refuses_a_bottleneck_that_n_does_not_divide():
    with pytest.raises(ValueError, match="bottleneck 32/16 = 2; choose a smaller reduction_factor"):
        get_method("compacter_pp").build(load_encoder("tiny-bert"), HeadConfig("classification", 32, 2))


def test_a_projection_is_edited_once():
    encoder = load_encoder("tiny-roberta")
    get_method("ia3").build(encoder, HeadConfig("classification", 32, 2))
    with pytest.raises(RuntimeError, match="key projection of layer 0 is already edited"):
        attach_linear_sites(encoder, "key", lambda layer, x, linear: linear(x))

"""The layers compute the paper's equations: checked against hand-written formulas and the oracles."""

import pytest
import torch
from torch.nn import functional as F

from scalearn import TINY_CONFIGS, HeadConfig, get_method, load_encoder
from scalearn.adapters import AdapterConfig, BottleneckAdapters
from scalearn.backbones import DECODER_TYPES, attach_sites
from scalearn.reference import LoopScaLearn, PerSourceFusion, adapter_outputs
from scalearn.transfer import AdapterFusion, ScaLearn


def bank(S=4, d=32, L=3, seed=0):
    adapters = BottleneckAdapters(AdapterConfig(d, L, reduction_factor=4), S)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapters.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return adapters


def test_batched_bank_equals_per_adapter_loop():
    adapters = bank()
    x = torch.randn(2, 7, 32)
    for layer in range(3):
        reference = adapter_outputs(adapters, layer, x)  # [2, 7, S, d]
        torch.testing.assert_close(adapters.outputs(layer, x), reference, atol=1e-6, rtol=1e-6)
        plain_sum = adapters.combine(layer, adapters.hidden(layer, x))
        torch.testing.assert_close(plain_sum, reference.sum(-2), atol=1e-6, rtol=1e-6)


def test_adapter_output_is_the_pfeiffer_formula():
    adapters = bank(S=1)
    x = torch.randn(5, 32)
    state = adapters.adapter_state(0)  # nn.Linear layout
    layer = 1
    by_hand = F.linear(
        torch.relu(F.linear(x, state["down.weight"][layer], state["down.bias"][layer])),
        state["up.weight"][layer],
        state["up.bias"][layer],
    )
    torch.testing.assert_close(adapters.combine(layer, adapters.hidden(layer, x)), by_hand, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape,shared", [("vector", False), ("scalar", False), ("vector", True), ("scalar", True)])
def test_scalearn_is_the_weighted_sum_of_adapter_outputs(shape, shared):
    adapters = bank()
    scalearn = ScaLearn(4, 32, 3, shape=shape, shared=shared, dropout=0.3).eval()
    with torch.no_grad():
        scalearn.omega.normal_()  # far from the init, signs mixed
    x = torch.randn(2, 7, 32)
    for layer in range(3):
        omega = scalearn.omega[0 if shared else layer]  # [S, d] or [S, 1]
        outputs = adapter_outputs(adapters, layer, x)  # [2, 7, S, d]
        by_hand = (omega * outputs).sum(-2)
        torch.testing.assert_close(scalearn(layer, x, adapters), by_hand, atol=1e-5, rtol=1e-5)
        loop = LoopScaLearn(4, 32, 3, shape=shape, shared=shared).eval()
        loop.load_state_dict(scalearn.state_dict())
        torch.testing.assert_close(loop(layer, x, adapters), by_hand, atol=1e-5, rtol=1e-5)


def test_omega_init_and_shapes():
    S, d, L = 8, 768, 12
    scalearn = ScaLearn(S, d, L)
    assert scalearn.omega.shape == (L, S, d)
    assert abs(scalearn.omega.mean().item() - 2 / S) < 1e-4
    assert abs(scalearn.omega.std().item() - 0.001) < 1e-4
    assert ScaLearn(S, d, L, shape="scalar", shared=True).omega.shape == (1, S, 1)
    assert ScaLearn(5, d, L, shape="scalar").omega.mean().item() == pytest.approx(0.4, abs=1e-3)


def test_dropout_acts_on_omega_with_one_mask_per_layer():
    torch.manual_seed(0)
    scalearn = ScaLearn(8, 16, 4, shape="scalar", shared=True, dropout=0.3).train()
    omega = scalearn.omega[0]
    masks = []
    for layer in range(4):
        w = scalearn.weights(layer)
        kept = w != 0
        torch.testing.assert_close(w[kept], omega[kept] / 0.7)  # inverted scaling
        masks.append(kept)
    assert any(not torch.equal(masks[0], m) for m in masks[1:]), "shared ω must still draw a mask per layer"
    scalearn.eval()
    assert torch.equal(scalearn.weights(2), omega)
    # dropout is on ω, not on activations: one source dropped means that source is absent for all tokens
    adapters = bank(S=8, d=16, L=4)
    x = torch.randn(3, 5, 16)
    scalearn.train()
    torch.manual_seed(1)
    z = scalearn(1, x, adapters)
    torch.manual_seed(1)
    w = scalearn.weights(1)
    torch.testing.assert_close(z, (w * adapter_outputs(adapters, 1, x)).sum(-2), atol=1e-5, rtol=1e-5)


def test_layer_shared_omega_collects_gradient_from_every_layer():
    adapters = bank()
    scalearn = ScaLearn(4, 32, 3, shared=True, dropout=0.0)
    x = torch.randn(2, 7, 32)
    total = sum(scalearn(layer, x, adapters).sum() for layer in range(3))
    total.backward()
    expected = sum(adapter_outputs(adapters, layer, x).sum((0, 1)) for layer in range(3))  # [S, d]
    torch.testing.assert_close(scalearn.omega.grad[0], expected, atol=1e-4, rtol=1e-5)


def fusion_pair(dropout=0.1):
    fast = AdapterFusion(32, 3, dropout=dropout)
    with torch.no_grad():
        for p in fast.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # biases and V away from their init
    reference = PerSourceFusion(32, 3, dropout=dropout)
    reference.load_state_dict(fast.state_dict())
    return fast, reference


def test_fusion_equals_the_per_source_reference_in_eval_and_in_training():
    adapters = bank()
    fast, reference = fusion_pair()
    x = torch.randn(2, 7, 32)
    for mode in ("eval", "train"):
        getattr(fast, mode)(), getattr(reference, mode)()
        for layer in range(3):
            torch.manual_seed(layer)
            expected = reference(layer, x, adapters)
            torch.manual_seed(layer)  # the same dropout mask on the scores
            torch.testing.assert_close(fast(layer, x, adapters), expected, atol=1e-5, rtol=1e-5)


def test_fusion_reference_is_the_paper_formula():
    adapters = bank()
    _, reference = fusion_pair()
    reference.eval()
    x = torch.randn(6, 32)
    layer = 2
    a = adapter_outputs(adapters, layer, x)  # [6, S, d]
    Q, K, V = reference.query[layer], reference.key[layer], reference.value[layer]
    z = torch.zeros(6, 32)
    for t in range(6):
        q = Q.weight @ x[t] + Q.bias
        scores = torch.stack([q @ (K.weight @ a[t, s] + K.bias) for s in range(4)])
        p = torch.softmax(scores, 0)
        z[t] = sum(p[s] * (V.weight @ a[t, s]) for s in range(4))
    torch.testing.assert_close(reference(layer, x, adapters), z, atol=1e-5, rtol=1e-5)


def test_fusion_init_value_identity_and_regulariser_in_the_same_step(make_sources):
    encoder = load_encoder("tiny-roberta")
    model = get_method("adapterfusion").build(encoder, HeadConfig("classification", 32, 2), make_sources(encoder, 3))
    value = model.transfer.value[0].weight
    assert value[0, 0].item() == 1.0 and value[0, 1].item() == pytest.approx(1e-6)
    assert model.regularization_loss().item() == pytest.approx(0.01 * 2 * 32 * 31 * 1e-12, rel=1e-3)
    with torch.no_grad():
        for v in model.transfer.value:
            v.weight.add_(torch.randn_like(v.weight) * 0.1)
    model.eval()
    ids = torch.randint(5, 1000, (4, 9))
    labels = torch.tensor([0, 1, 1, 0])

    logits = model(ids)
    task_grad = torch.autograd.grad(model.head.loss(logits, labels), model.transfer.value[1].weight)[0]
    model.zero_grad()
    model.loss(model(ids), labels).backward()  # the loss of this step includes the regulariser
    eye = torch.eye(32)
    reg_grad = 0.01 * 2 * (model.transfer.value[1].weight - eye)
    torch.testing.assert_close(model.transfer.value[1].weight.grad, task_grad + reg_grad, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("encoder_name", ["tiny-bert", "tiny-llama"])
def test_fusion_records_its_attention_over_the_real_tokens_whatever_the_batching(make_sources, encoder_name):
    """The mean attention over the test split counts real tokens only: rows padded into one batch record what
    the same rows record one at a time, unpadded (with padding counted, the batched mean moved by up to 0.2 here)."""
    encoder = load_encoder(encoder_name)
    model = get_method("adapterfusion").build(encoder, HeadConfig("classification", 32, 2), make_sources(encoder, 3))
    with torch.no_grad():  # attention far from uniform, so padding's share would show
        for linear in [*model.transfer.query, *model.transfer.key]:
            linear.weight.normal_(std=0.5)
    model.eval()
    ids = torch.randint(5, 1000, (3, 9))
    lengths = [9, 4, 6]
    mask = (torch.arange(9) < torch.tensor(lengths)[:, None]).long()

    def record(batches):
        model.transfer.start_recording()
        with torch.no_grad():
            for batch_ids, batch_mask in batches:
                model(batch_ids, batch_mask)
        model.transfer.stop_recording()
        return torch.tensor(model.transfer.mean_attention()), sum(model.transfer.attention_tokens.values())

    batched, tokens = record([(ids, mask)])
    alone, _ = record([(ids[i : i + 1, :n], mask[i : i + 1, :n]) for i, n in enumerate(lengths)])
    assert tokens == sum(lengths) * len(model.sites)
    torch.testing.assert_close(batched, alone, atol=1e-6, rtol=1e-5)
    assert model.transfer.real_tokens is None  # nothing kept once the recording stops


@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_sites_leave_the_encoder_unchanged_without_adapters(family):
    plain, patched = load_encoder(family), load_encoder(family)
    attach_sites(patched)
    plain.eval(), patched.eval()
    ids = torch.randint(5, 1000, (2, 9))
    torch.testing.assert_close(patched(input_ids=ids).last_hidden_state, plain(input_ids=ids).last_hidden_state)
    assert plain.state_dict().keys() == patched.state_dict().keys()


@pytest.mark.parametrize("family", ["tiny-bert", "tiny-distilbert", "tiny-deberta-v2"])
def test_site_output_is_layernorm_of_z_plus_ffn_plus_attention(family):
    """out = LN(z + f + h_att) with x = LN(f + h_att) fed to the mixer, LN the frozen pre-trained one."""
    encoder = load_encoder(family).eval()
    sites = attach_sites(encoder)
    site = sites[1]
    seen = {}

    def mixer(layer, x):
        seen["x"] = x
        return torch.sin(3 * x)  # any function of x

    site.mixer = mixer
    if family == "tiny-distilbert":
        block = encoder.transformer.layer[1]
        h_att = torch.randn(2, 5, 32)
        f = block.ffn.dropout(block.ffn.lin2(block.ffn.activation(block.ffn.lin1(h_att))))
        out = block.output_layer_norm(block.ffn(h_att) + h_att)
        ln = block.output_layer_norm
    else:
        intermediate, h_att = torch.randn(2, 5, 64), torch.randn(2, 5, 32)
        f = site.dense(intermediate)
        out = site(intermediate, h_att)
        ln = site.LayerNorm
    x = ln(f + h_att)
    torch.testing.assert_close(seen["x"], x)
    torch.testing.assert_close(out, ln(torch.sin(3 * x) + f + h_att))


DECODERS = sorted(name for name, config in TINY_CONFIGS.items() if config["model_type"] in DECODER_TYPES)


@pytest.mark.parametrize("family", DECODERS)
def test_decoder_site_is_adapterhubs_seq_bn_placement(family):
    """Decoders: x = f + h (Gemma: N₂(f + h)) feeds the mixer; out = x + z (Gemma: h + N₂(f + z)), with h the
    residual entering the FFN block and f the gated MLP's output (docs/method.md §1.2a)."""
    encoder = load_encoder(family).eval()
    layer = encoder.layers[1]
    gemma = hasattr(layer, "pre_feedforward_layernorm")
    pre_norm = layer.pre_feedforward_layernorm if gemma else layer.post_attention_layernorm
    site = attach_sites(encoder)[1]
    seen = {}
    site.mixer = lambda index, x: seen.setdefault("x", x) * 0 + torch.sin(3 * x)  # any function of x
    pre_norm.register_forward_pre_hook(lambda module, args: seen.setdefault("h", args[0]))
    layer.register_forward_hook(lambda module, args, output: seen.setdefault("out", output))
    encoder(input_ids=torch.randint(5, 1000, (2, 9)))

    h, n = seen["h"], pre_norm(seen["h"])
    f = site.down_proj(site.act_fn(site.gate_proj(n)) * site.up_proj(n))
    out = seen["out"][0] if isinstance(seen["out"], tuple) else seen["out"]
    if gemma:
        post = layer.post_feedforward_layernorm
        x = post(f + h)
        expected = h + post(f + torch.sin(3 * x))
    else:
        x = f + h
        expected = x + torch.sin(3 * x)
    torch.testing.assert_close(seen["x"], x)
    torch.testing.assert_close(out, expected)


# -- ScaLearn over LoRA sources (docs/method.md §1.7) ---------------------------------------------


@pytest.mark.parametrize("family", ["tiny-bert", "tiny-llama", "tiny-qwen3"])
@pytest.mark.parametrize("shape,shared", [("vector", False), ("scalar", True)])
def test_scalearn_over_lora_is_the_frozen_model_with_omega_scaled_updates_merged(family, shape, shared):
    """y = W x + Σ_s ω_s ⊙ (α_s / r_s · B_s A_s x): the model equals the plain encoder whose query and value
    weights are W + Σ_s diag(ω_s) (α_s / r_s) B_s A_s, merged by hand from the sources' own tensors."""
    from scalearn.tuners.lora_bank import LoRABank, LoRASources
    from scalearn.tuners.sites import PROJECTIONS

    encoder = load_encoder(family)
    sources = LoRASources.random(encoder, 3, rank=4)
    sources.configs[1] = {**sources.configs[1], "alpha": 4.0}  # sources may differ in α: c_s = α_s / r_s
    bank = LoRABank(sources, shape=shape, shared=shared, dropout=0.0)
    with torch.no_grad():
        for target in bank.targets:
            getattr(bank, f"{target}_omega").normal_(0.5, 0.3)
    variant = {("vector", False): "scalearn_lora", ("scalar", True): "scalearn_lora_uniform_pp"}[(shape, shared)]
    model = get_method(variant).build(load_encoder(family), HeadConfig("classification", 32, 2), sources)
    model.tuner.load_state_dict(bank.state_dict())
    model.eval()

    plain = load_encoder(family).eval()
    names = PROJECTIONS[plain.config.model_type]
    with torch.no_grad():
        for target in bank.targets:
            omega = getattr(bank, f"{target}_omega")
            for layer in range(plain.config.num_hidden_layers):
                linear = plain.get_submodule(f"{names['layers']}.{layer}.{names[target]}")
                for s, (config, tensors) in enumerate(zip(sources.configs, sources.tensors, strict=True)):
                    w = omega[0 if shared else layer, s]  # [d_out] or [1]
                    scale = config["alpha"] / config["rank"]
                    delta = scale * tensors[f"{target}_B"][layer] @ tensors[f"{target}_A"][layer]
                    linear.weight += w[:, None] * delta
    ids = torch.randint(5, 1000, (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        hidden = model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = plain(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(hidden, expected, atol=1e-5, rtol=1e-4)


def test_lora_bank_batched_equals_its_per_source_reference_in_training_too():
    from scalearn.tuners.lora_bank import LoRABank, LoRASources

    encoder = load_encoder("tiny-llama")
    bank = LoRABank(LoRASources.random(encoder, 5, rank=2), dropout=0.3).train()
    x = torch.randn(3, 7, 32)
    for layer in range(2):
        torch.manual_seed(layer)
        batched = bank._edit("value", layer, x, lambda t: torch.zeros(*t.shape[:-1], 16))
        torch.manual_seed(layer)  # the same ω dropout mask
        reference = bank.per_source("value", layer, x)
        torch.testing.assert_close(batched, reference, atol=1e-6, rtol=1e-5)
    assert set(bank.state_dict()) == {"query_omega", "value_omega"}  # the frozen sources stay out of checkpoints


def test_source_scales_are_each_sources_output_norm_over_its_layers_own(make_sources, caplog):
    """With ω at zero the layers see what the plain encoder gives them, so a source's ratio at a layer is
    mean ‖a_s(x_l)‖ / mean ‖x_l‖ over real tokens; a source scaled by 40 measures 40 times as much, and is named."""
    from scalearn.source_scale import SWAMPING_RATIO, source_scales, warn_if_swamping

    encoder = load_encoder("tiny-bert")
    sources = make_sources(encoder, 3)
    model = get_method("scalearn").build(encoder, HeadConfig("classification", 32, 2), sources)
    with torch.no_grad():
        model.transfer.omega.zero_()
    ids = torch.randint(5, 1000, (4, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # padding is left out of the means
    batch = {"input_ids": ids, "attention_mask": mask}
    captured = {}
    for site in model.sites:  # the layers' inputs to the adapters, from a forward without them
        site.mixer = lambda layer, x: captured.setdefault(layer, x) * 0
    model.eval()
    with torch.no_grad():
        model(ids, mask)
    for site in model.sites:
        site.mixer = model._mix
    real = mask.bool()

    def by_hand(index):
        ratios = {}
        for layer, x in captured.items():
            out = adapter_outputs(sources, layer, x)[..., index, :]  # [B, T, d]
            ratios[layer] = (out.norm(dim=-1)[real].mean() / x.norm(dim=-1)[real].mean()).item()
        layer = max(ratios, key=ratios.get)
        return ratios[layer], layer

    before = source_scales(model, batch)
    for index, name in enumerate(sources.names):
        ratio, layer = by_hand(index)
        assert before[name]["ratio"] == pytest.approx(ratio, rel=1e-3) and before[name]["layer"] == layer
    assert before["mixed"]["ratio"] == 0.0
    assert max(before[name]["ratio"] for name in sources.names) < SWAMPING_RATIO
    with torch.no_grad():
        sources.up_weight[:, 1] *= 40
        sources.up_bias[:, 1] *= 40
    after = source_scales(model, batch)
    assert after["task1"]["ratio"] == pytest.approx(40 * before["task1"]["ratio"], rel=1e-3)
    assert after["task0"] == before["task0"] and after["task2"] == before["task2"]
    assert warn_if_swamping(after, "tiny-bert") == ["task1"]
    assert "'task1' on tiny-bert puts out" in caplog.text
    assert not model.training  # left as it was (eval here)
    sources.names = ["same", "same", "same"]
    assert list(source_scales(model, batch)) == ["same#0", "same#1", "same#2", "mixed"]  # one entry each


def test_source_scales_of_source_loras_are_each_update_over_its_projections_output():
    """ScaLearn over LoRA: with ω at zero every projection gives W x, so a source's ratio is its update c_s B_s A_s x
    against W x; a source whose B is 40 times larger measures 40 times as much, the others the same."""
    from scalearn.source_scale import source_scales, warn_if_swamping
    from scalearn.tuners.lora_bank import LoRASources

    encoder = load_encoder("tiny-bert")
    model = get_method("scalearn_lora").build(
        encoder, HeadConfig("classification", 32, 2), LoRASources.random(encoder, 3, rank=4)
    )
    bank = model.tuner
    ids = torch.randint(5, 1000, (4, 9))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    started = source_scales(model, batch)
    assert started["mixed"]["ratio"] > 0  # ω starts at 2/S: the sources are in from the first step
    with torch.no_grad():
        for target in bank.targets:
            getattr(bank, f"{target}_omega").zero_()
    before = source_scales(model, batch)
    assert before["mixed"]["ratio"] == 0.0 and bank.observer is None  # measured, then unhooked
    with torch.no_grad():
        for target in bank.targets:
            getattr(bank, f"{target}_B")[:, :, bank.owner == 1] *= 40
    after = source_scales(model, batch)
    assert after["source1"]["ratio"] == pytest.approx(40 * before["source1"]["ratio"], rel=1e-3)
    assert after["source0"] == before["source0"] and after["source2"] == before["source2"]
    assert before["source1"]["ratio"] < 5 < after["source1"]["ratio"] and warn_if_swamping(after) == ["source1"]


def test_sources_of_another_backbone_are_refused_not_mixed_out_of_line(make_sources):
    """A source bank of a deeper backbone of the same width ran silently: layer l mixed the sources' layer l of
    another model, and ω had rows no layer used."""
    import copy

    from transformers import AutoModel

    from scalearn.tuners.lora_bank import LoRASources

    encoder = load_encoder("tiny-llama-m")  # 3 layers of width 128
    config = copy.deepcopy(encoder.config)
    config.num_hidden_layers = 4
    deeper = AutoModel.from_config(config)
    head = HeadConfig("classification", 128, 2)
    with pytest.raises(ValueError, match="adapters are for 4 layers of width 128; this backbone has 3 of width 128"):
        get_method("scalearn").build(encoder, head, make_sources(deeper, 2))
    with pytest.raises(ValueError, match="LoRA sources adapt 4 layers; this model has 3"):
        get_method("scalearn_lora").build(load_encoder("tiny-llama-m"), head, LoRASources.random(deeper, 2, rank=4))


def test_normalisation_weights_take_no_weight_decay_in_any_family():
    from scalearn.engines import make_optimizer

    for family in ("tiny-bert", "tiny-llama", "tiny-gemma3"):
        model = get_method("full_ft").build(load_encoder(family), HeadConfig("classification", 32, 2))
        decayed, plain = make_optimizer(model, 1e-3, 0.1).param_groups[:2]
        names = {id(p): n for n, p in model.trainable_parameters().items()}
        exempt = {names[id(p)] for p in plain["params"]}
        assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
        norms = {n for n in names.values() if "norm" in n.lower()}
        assert norms and norms <= exempt, sorted(norms - exempt)[:3]  # Llama's RMSNorm scales start at 1
        assert any(n.endswith("weight") and "norm" not in n.lower() for n in (names[id(p)] for p in decayed["params"]))

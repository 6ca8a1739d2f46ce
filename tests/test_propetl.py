"""ProPETL: one prototype adapter, a top-(1 − sparsity) binary mask per layer and projection, trained
straight-through; mask scores get their own learning rate; masks come back exactly from saved scores."""

import pytest
import torch
from torch.nn import functional as F

from scalearn import HeadConfig, get_method, load_encoder
from scalearn.engines import linear_schedule, make_optimizer
from scalearn.io import load_model_state, save_model
from scalearn.tuners import ProPETL


def build(seed=0, family="tiny-bert", **overrides):
    torch.manual_seed(seed)
    return get_method("propetl", **overrides).build(load_encoder(family), HeadConfig("classification", 32, 2))


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, 1000, (8, 10), generator=g), torch.randint(0, 2, (8,), generator=g)


def masks(tuner):
    return {(layer, p): tuner.mask(layer, p) for layer in range(tuner.num_layers) for p in ("down", "up")}


def test_defaults_cite_reference_section_3():
    method = get_method("propetl")
    hyper = {k: getattr(method, k) for k in ("learning_rate", "mask_learning_rate", "sparsity", "weight_decay")}
    assert hyper == {"learning_rate": 1e-3, "mask_learning_rate": 5e-3, "sparsity": 0.5, "weight_decay": 0.1}
    tuner = build().tuner
    assert tuner.bottleneck == 2 and tuner.activation == "relu"  # d / 16 on the tiny d = 32


def test_one_prototype_and_per_layer_scores_train():
    model = build()
    trainable = {name for name in model.trainable_parameters() if not name.startswith("head.")}
    prototype = {f"tuner.{p}_{part}" for p in ("down", "up") for part in ("weight", "bias")}
    assert trainable == prototype | {"tuner.down_scores", "tuner.up_scores"}
    tuner = model.tuner
    assert tuner.down_weight.shape == (32, 2) and tuner.up_weight.shape == (2, 32)
    assert tuner.down_scores.shape == (2, 32, 2) and tuner.up_scores.shape == (2, 2, 32)  # L = 2


@pytest.mark.parametrize("sparsity", [0.5, 0.3, 0.0])
def test_each_mask_keeps_exactly_the_top_fraction_of_its_scores(sparsity):
    tuner = ProPETL(32, 3, reduction_factor=4, sparsity=sparsity)
    for (layer, projection), mask in masks(tuner).items():
        scores = getattr(tuner, f"{projection}_scores")[layer].abs()
        n = scores.numel()
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert int(mask.sum()) == n - int(sparsity * n)
        if sparsity:
            assert scores[mask == 1].min() > scores[mask == 0].max()


def test_masks_rank_absolute_scores_and_break_ties_stably():
    tuner = ProPETL(8, 1, reduction_factor=4, sparsity=0.5)
    with torch.no_grad():
        tuner.down_scores.copy_(torch.tensor([[-9.0, 1.0]] * 4 + [[0.5, 0.5]] * 4).view(1, 8, 2))
    mask = tuner.mask(0, "down")
    assert mask[:4, 0].tolist() == [1, 1, 1, 1]  # |−9| ranks highest
    assert torch.equal(mask, tuner.mask(0, "down"))


def test_layer_output_is_the_masked_prototype_after_the_ffn():
    """z_l = ReLU(x (W_down ⊙ M_l) + b_down) (W_up ⊙ M_l) + b_up, entering the layer as LN(z + f + h_att)."""
    model = build().eval()
    tuner, site = model.tuner, model.sites[1]
    with torch.no_grad():
        for p in (tuner.down_bias, tuner.up_bias, tuner.down_weight, tuner.up_weight):
            p.normal_()
    x = torch.randn(2, 5, 32)
    down = tuner.down_weight * tuner.mask(1, "down")
    up = tuner.up_weight * tuner.mask(1, "up")
    torch.testing.assert_close(tuner(1, x), F.relu(x @ down + tuner.down_bias) @ up + tuner.up_bias)
    intermediate, h_att = torch.randn(2, 5, 64), torch.randn(2, 5, 32)
    f = site.dense(intermediate)
    expected = site.LayerNorm(tuner(1, site.LayerNorm(f + h_att)) + f + h_att)
    torch.testing.assert_close(site(intermediate, h_att), expected)
    assert model.encoder.state_dict().keys() == load_encoder("tiny-bert").state_dict().keys()


def test_scores_get_the_straight_through_gradient():
    """dL/dS = dL/dM · sign(S): the hard mask's gradient passed on as if M were |S|."""
    tuner = ProPETL(32, 2, reduction_factor=4)
    upstream = torch.randn(32, 8)
    (tuner.masked_weight(1, "down") * upstream).sum().backward()
    expected = torch.zeros_like(tuner.down_scores)
    expected[1] = tuner.down_weight.detach() * upstream * tuner.down_scores[1].detach().sign()
    torch.testing.assert_close(tuner.down_scores.grad, expected, rtol=0, atol=0)
    assert tuner.down_weight.grad is not None


def test_mask_scores_get_their_own_learning_rate_and_weight_decay():
    model = build()
    optimizer = make_optimizer(model, 1e-3, 0.1)
    linear_schedule(optimizer, 10, 0.0)
    by_id = {id(p): name for name, p in model.named_parameters()}
    groups = [(g["lr"], g["weight_decay"], sorted(by_id[id(p)] for p in g["params"])) for g in optimizer.param_groups]
    assert [(lr, wd) for lr, wd, _ in groups] == [(1e-3, 0.1), (1e-3, 0.0), (5e-3, 0.1)]
    assert groups[2][2] == ["tuner.down_scores", "tuner.up_scores"]
    assert "tuner.down_weight" in groups[0][2] and "tuner.down_bias" in groups[1][2]
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(model.trainable_parameters())


def test_other_methods_keep_two_groups_at_one_learning_rate():
    """Without ``learning_rates`` the groups are HF's: decayed weights, then biases and LayerNorms, one LR."""
    model = get_method("adapter").build(load_encoder("tiny-bert"), HeadConfig("classification", 32, 2))
    optimizer = make_optimizer(model, 3e-4, 0.01)
    trainable = model.trainable_parameters()
    decayed = [p for name, p in trainable.items() if not name.endswith("bias")]
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [(3e-4, 0.01), (3e-4, 0.0)]
    assert [id(p) for p in optimizer.param_groups[0]["params"]] == [id(p) for p in decayed]
    assert len(optimizer.param_groups[1]["params"]) == len(trainable) - len(decayed)


def test_training_moves_the_masks_and_layers_keep_different_ones():
    model = build().train()
    method = get_method("propetl")
    optimizer = make_optimizer(model, method.learning_rate, method.weight_decay)
    before = {key: mask.clone() for key, mask in masks(model.tuner).items()}
    ids, labels = batch()
    for _ in range(20):
        model.loss(model(ids, torch.ones_like(ids)), labels).backward()
        optimizer.step()
        optimizer.zero_grad()
    after = masks(model.tuner)
    assert any(not torch.equal(before[key], after[key]) for key in after), "no mask entry flipped"
    for projection in ("down", "up"):
        assert not torch.equal(after[(0, projection)], after[(1, projection)])


def test_saved_scores_reproduce_the_masks_exactly(tmp_path):
    model = build().eval()
    with torch.no_grad():
        for p in model.tuner.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    ids, _ = batch()
    expected_logits, expected_masks = model(ids), masks(model.tuner)
    save_model(tmp_path / "ckpt", model, metadata={"method": "propetl"})
    other = build(seed=1).eval()
    assert any(not torch.equal(expected_masks[k], m) for k, m in masks(other.tuner).items())
    load_model_state(tmp_path / "ckpt", other)
    for key, mask in masks(other.tuner).items():
        assert torch.equal(mask, expected_masks[key])
    torch.testing.assert_close(other(ids), expected_logits, rtol=0, atol=0)


def test_counted_parameters_are_the_prototype_plus_mask_bits():
    model = build()
    d, r, L = 32, 2, 2
    counts = model.parameter_counts()
    assert counts["transfer"] == (2 * d * r + r + d) + L * 2 * d * r // 32
    assert counts["trainable"] == (2 * d * r + r + d) + L * 2 * d * r + counts["head"]


def test_sparsity_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"sparsity: must be a number in \[0, 1\) \(got 1.0\)"):
        build(sparsity=1.0)

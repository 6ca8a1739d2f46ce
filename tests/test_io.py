"""Artifacts: adapters and models as safetensors + JSON, atomic, never unpickled, checked on load."""

import json

import pytest
import torch

from scalearn import HeadConfig, get_method, load_encoder
from scalearn.io import ArtifactError, load_adapter, load_model_state, load_source_bank, save_adapter, save_model


def trained_adapter_model(seed):
    torch.manual_seed(seed)
    encoder = load_encoder("tiny-roberta")
    model = get_method("adapter").build(encoder, HeadConfig("classification", 32, 2))
    with torch.no_grad():
        for p in model.adapters.parameters():
            p.normal_(std=0.1)
    return model


def test_stage_one_adapters_become_a_source_bank(tmp_path):
    folders = []
    for seed in range(3):
        model = trained_adapter_model(seed)
        folder = tmp_path / f"task{seed}"
        save_adapter(folder, model.adapters, metadata={"task": f"task{seed}"})
        folders.append(folder)
        manifest = json.loads((folder / "adapter.json").read_text())
        assert manifest["config"]["reduction_factor"] == 16 and manifest["metadata"]["task"] == f"task{seed}"
    # target's own adapter last
    bank = load_source_bank([folders[1], folders[2], folders[0]], names=["b", "c", "a"])
    assert bank.num_adapters == 3 and bank.names == ["b", "c", "a"]
    assert not any(p.requires_grad for p in bank.parameters())
    x = torch.randn(4, 32)
    for position, seed in enumerate([1, 2, 0]):
        single = trained_adapter_model(seed).adapters
        for layer in range(2):
            torch.testing.assert_close(bank.outputs(layer, x)[:, position], single.outputs(layer, x)[:, 0])


def test_mismatched_sources_are_refused(tmp_path):
    save_adapter(tmp_path / "a", trained_adapter_model(0).adapters)
    encoder = load_encoder("tiny-bert")
    encoder.config.num_hidden_layers = 2
    other = get_method("adapter", reduction_factor=8).build(encoder, HeadConfig("classification", 32, 2))
    save_adapter(tmp_path / "b", other.adapters)
    with pytest.raises(ArtifactError, match="differs from the first source"):
        load_source_bank([tmp_path / "a", tmp_path / "b"])


def test_incomplete_artifact_is_not_read(tmp_path):
    save_adapter(tmp_path / "a", trained_adapter_model(0).adapters)
    (tmp_path / "a" / "adapter.json").unlink()  # as if the writer died before the manifest
    with pytest.raises(ArtifactError, match="missing"):
        load_adapter(tmp_path / "a")


def test_checkpoint_for_another_method_is_refused(tmp_path, make_sources):
    encoder = load_encoder("tiny-roberta")
    sources = make_sources(encoder, 3)
    save_model(tmp_path / "m", get_method("scalearn").build(encoder, HeadConfig("classification", 32, 2), sources))
    probe = get_method("probe", omega=[1, 1, 1]).build(
        load_encoder("tiny-roberta"), HeadConfig("classification", 32, 2), sources
    )
    with pytest.raises(ArtifactError, match="does not fit the model"):
        load_model_state(tmp_path / "m", probe)


def test_layer_shared_omega_is_in_the_checkpoint(tmp_path, make_sources):
    """The original code loses ω of the ++ variants (docs/method.md §7.1, bug 1); here it is saved."""
    encoder = load_encoder("tiny-bert")
    model = get_method("scalearn_pp").build(encoder, HeadConfig("classification", 32, 2), make_sources(encoder, 4))
    save_model(tmp_path / "m", model)
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "m" / "transfer.safetensors")
    assert saved["omega"].shape == (1, 4, 32)
    torch.testing.assert_close(saved["omega"], model.transfer.omega.detach())
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    assert manifest["transfer"]["shared"] is True and manifest["sources"] == ["task0", "task1", "task2", "task3"]
    assert not (tmp_path / "m" / "adapter.safetensors").exists()  # sources are referenced, not copied


def test_nothing_is_pickled(tmp_path):
    save_model(tmp_path / "m", trained_adapter_model(0))
    for path in (tmp_path / "m").iterdir():
        assert path.suffix in (".safetensors", ".json"), path
        assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"


def test_a_saved_file_is_checked_against_the_models_whole_shapes(tmp_path, make_sources):
    from safetensors.torch import load_file, save_file

    from scalearn.io import verify_saved, whole_shapes

    encoder = load_encoder("tiny-llama")
    model = get_method("scalearn").build(encoder, HeadConfig("classification", 32, 2), make_sources(encoder, 3))
    shapes = whole_shapes(model)
    assert shapes["transfer"] == {"omega": (2, 3, 32)} and set(shapes) == {"head", "transfer"}
    save_model(tmp_path, model)
    files = {tmp_path / f"{name}.safetensors": expected for name, expected in shapes.items()}
    verify_saved(files)  # as written: fits
    # what a ZeRO-3 rank writes when it saves outside the gather: an empty shard in place of ω
    save_file({"omega": torch.empty(0)}, tmp_path / "transfer.safetensors")
    with pytest.raises(ArtifactError, match=r"transfer.safetensors: .*omega: \(0,\) \(needs \(2, 3, 32\)\)"):
        verify_saved(files)
    # a tensor missing from the file
    head = load_file(tmp_path / "head.safetensors")
    save_file(dict(list(head.items())[:-1]), tmp_path / "head.safetensors")
    with pytest.raises(ArtifactError, match=r"head.safetensors: 3 tensors where the model has 4, .*absent"):
        verify_saved({tmp_path / "head.safetensors": shapes["head"]})

    adapter = get_method("adapter").build(load_encoder("tiny-llama"), HeadConfig("classification", 32, 2))
    r = adapter.adapters.config.bottleneck
    assert whole_shapes(adapter)["adapter"] == {
        "down.weight": (2, r, 32),
        "down.bias": (2, r),
        "up.weight": (2, 32, r),
        "up.bias": (2, 32),
    }
    save_adapter(tmp_path / "a", adapter.adapters)
    verify_saved({tmp_path / "a" / "adapter.safetensors": whole_shapes(adapter)["adapter"]})

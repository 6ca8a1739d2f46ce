"""Figures: one heatmap cell per layer × source with labelled axes; the summary's shares sum to one per row;
mixing weights read back from a real checkpoint's safetensors."""

import numpy as np
import pytest

from harness.plots import (
    OWN,
    curves_figure,
    layer_source_matrix,
    mixing_figure,
    omega_figure,
    read_mixing,
    source_shares,
    summary_figure,
)


def vector_mixing(layers=6, sources=4, dims=8):
    rng = np.random.default_rng(0)
    return {"kind": "omega", "shared": False, "weights": rng.normal(0.5, 0.1, (layers, sources, dims))}


def test_a_vector_omega_figure_has_one_cell_per_layer_and_source_and_its_spread():
    mixing = vector_mixing()
    figure = mixing_figure(mixing, ["rte", "mnli", "sst2", "rte"], "rte", "scalearn · rte")
    heatmaps = [a for a in figure.axes if a.images and a.get_xlabel() == "source adapter"]
    mean_axis, spread_axis = heatmaps
    per_layer = next(a for a in figure.axes if a.lines)
    mean, spread = layer_source_matrix(mixing["weights"])
    np.testing.assert_allclose(mean_axis.images[0].get_array(), mean)
    np.testing.assert_allclose(spread_axis.images[0].get_array(), spread)
    assert mean_axis.images[0].get_array().shape == (6, 4)
    assert [t.get_text() for t in mean_axis.get_xticklabels()] == ["rte", "mnli", "sst2", f"rte {OWN}"]
    assert mean_axis.get_xlabel() == "source adapter" and mean_axis.get_ylabel() == "layer"
    sums = per_layer.lines[0].get_ydata()
    np.testing.assert_allclose(sums, mean.sum(1))  # Σ_s ω per layer
    np.testing.assert_allclose(per_layer.lines[1].get_ydata(), mean[:, -1])  # the target's own adapter


def test_shared_scalar_omega_has_one_row_and_no_spread_panel():
    mixing = {"kind": "omega", "shared": True, "weights": np.array([[[0.2], [0.6]]])}
    figure = mixing_figure(mixing, ["a", "b"], "b", "scalearn_uniform_pp · b")
    heatmaps = [a for a in figure.axes if a.images and a.get_xlabel() == "source adapter"]
    assert len(heatmaps) == 1 and heatmaps[0].images[0].get_array().shape == (1, 2)
    assert [t.get_text() for t in heatmaps[0].get_yticklabels()] == ["all (shared)"]


def test_shares_sum_to_one_and_follow_the_weights():
    mixing = {"kind": "omega", "shared": False, "weights": np.array([[[3.0], [1.0]], [[1.0], [1.0]]])}
    np.testing.assert_allclose(source_shares(mixing), [(0.75 + 0.5) / 2, (0.25 + 0.5) / 2])


def test_figures_are_written_as_png(tmp_path):
    omega = omega_figure(vector_mixing(), ["a", "b", "c", "d"], "d", "t", tmp_path / "o.png")
    summary = summary_figure(
        {"scalearn · d": np.array([0.1, 0.2, 0.3, 0.4])}, ["a", "b", "c", OWN], "s", tmp_path / "s.png"
    )
    curves = curves_figure({"adapter": {0: [0.5, 0.6], 1: [0.7, 0.8]}}, "accuracy", "c", tmp_path / "c.png")
    for path in (omega, summary, curves):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_read_mixing_from_a_saved_scalearn_checkpoint(tmp_path, make_sources):
    torch = pytest.importorskip("torch")
    from scalearn.backbones import load_encoder
    from scalearn.heads import HeadConfig
    from scalearn.io import save_model
    from scalearn.methods import get_method

    encoder = load_encoder("tiny-bert")
    bank = make_sources(encoder, 3)
    model = get_method("scalearn").build(encoder, HeadConfig("classification", encoder.config.hidden_size, 2), bank)
    with torch.no_grad():
        model.transfer.omega.fill_(0.25)
    save_model(tmp_path, model)
    mixing = read_mixing(tmp_path)
    assert mixing["kind"] == "omega" and not mixing["shared"]
    assert mixing["weights"].shape == (encoder.config.num_hidden_layers, 3, encoder.config.hidden_size)
    np.testing.assert_allclose(mixing["weights"], 0.25)
    assert mixing["initial"] == pytest.approx(2.0 / 3)  # ω starts at init_scale / S, the paper's sum of 2


def test_read_mixing_from_a_saved_scalearn_over_lora_checkpoint(tmp_path):
    """ScaLearn over source LoRAs keeps an ω per adapted projection in tuner.safetensors: read side by side."""
    torch = pytest.importorskip("torch")
    from scalearn.backbones import load_encoder
    from scalearn.heads import HeadConfig
    from scalearn.io import save_model
    from scalearn.methods import get_method
    from scalearn.tuners.lora_bank import LoRASources

    encoder = load_encoder("tiny-bert")
    sources = LoRASources.random(encoder, 4, rank=4)
    model = get_method("scalearn_lora").build(encoder, HeadConfig("classification", 32, 2), sources)
    with torch.no_grad():
        for value, target in enumerate(model.tuner.targets):
            getattr(model.tuner, f"{target}_omega").fill_(0.1 * (value + 1))
    save_model(tmp_path, model)
    mixing = read_mixing(tmp_path)
    layers, hidden = encoder.config.num_hidden_layers, encoder.config.hidden_size
    assert mixing["kind"] == "omega" and mixing["weights"].shape == (layers, 4, 2 * hidden)  # query, value
    np.testing.assert_allclose(mixing["weights"][..., :hidden], 0.1)
    np.testing.assert_allclose(mixing["weights"][..., hidden:], 0.2)
    assert mixing["initial"] == pytest.approx(2.0 / 4) and not mixing["shared"]


def test_omega_is_coloured_about_where_it_started_so_a_small_drift_stays_pale():
    """A ±1% drift from ω's start fills at most a twenty-fifth of the colour scale (it spans at least ±25% of the
    start); a weight that moved far sets the scale itself. The spread panel starts at 0 on the same reach."""
    rng = np.random.default_rng(0)
    mixing = {"kind": "omega", "shared": False, "initial": 0.5, "weights": 0.5 + rng.uniform(-0.005, 0.005, (4, 3, 8))}
    figure = mixing_figure(mixing, ["a", "b", "t"], "t", "scalearn · t")
    mean_axis, spread_axis = [a for a in figure.axes if a.images and a.get_xlabel() == "source adapter"]
    low, high = mean_axis.images[0].get_clim()
    assert (low, high) == pytest.approx((0.375, 0.625)) and mean_axis.images[0].get_cmap().name == "RdBu_r"
    assert spread_axis.images[0].get_clim() == pytest.approx((0.0, 0.125))
    mixing["weights"][1, 0] += 0.4  # one weight moved far: the scale reaches it, still centred on the start
    low, high = mixing_figure(mixing, ["a", "b", "t"], "t", "x").axes[0].images[0].get_clim()
    assert high - 0.5 == pytest.approx(0.5 - low) and high >= mixing["weights"][1, 0].mean()


def test_omega_json_holds_what_the_figure_shows(tmp_path):
    from harness.plots import mixing_record

    mixing = vector_mixing(layers=3, sources=2, dims=4) | {"initial": 1.0}
    record = mixing_record(mixing, ["rte", "rte"], "rte")
    mean, spread = layer_source_matrix(mixing["weights"])
    assert record["sources"] == ["rte", f"rte {OWN}"] and record["initial"] == 1.0
    np.testing.assert_allclose(record["mean"], mean, atol=1e-6)
    np.testing.assert_allclose(record["sd"], spread, atol=1e-6)
    np.testing.assert_allclose(record["sum_over_sources"], mean.sum(1), atol=1e-5)
    np.testing.assert_allclose(record["own"], mean[:, -1], atol=1e-6)


def test_curves_of_a_run_evaluated_within_epochs_are_by_step_one_point_an_evaluation(tmp_path):
    import dataclasses

    from harness.plan import expand
    from harness.plots import dev_curves
    from harness.spec import ExperimentSpec
    from harness.store import Store

    spec = dict(version=1, models=["tiny-bert"], methods=["adapter"], benchmark="synthetic", targets=["syn_a"])
    (trial,) = expand(ExperimentSpec.model_validate(spec))
    store = Store(tmp_path)
    history = [{"epoch": 0, "step": s, "dev_accuracy": s / 100} for s in (5, 10, 15)] + [
        {"epoch": 1, "step": 20, "dev_accuracy": 0.3}
    ]
    store.write_result(trial.key, {"trial": trial.summary(), "test": {}, "history": history})
    by_epoch, x = dev_curves({"adapter": [trial]}, store, "accuracy")
    assert x == "epoch" and by_epoch == {"adapter": {0: [0.05, 0.1, 0.15], 1: [0.3]}}  # evaluated once an epoch
    stepped = dataclasses.replace(trial, config=trial.config.with_loop(eval_every_steps=5))
    by_step, x = dev_curves({"adapter": [stepped]}, store, "accuracy")
    assert x == "step" and by_step == {"adapter": {5: [0.05], 10: [0.1], 15: [0.15], 20: [0.3]}}

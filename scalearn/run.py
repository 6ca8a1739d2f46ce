"""One trial, from its typed config: the door the harness calls for every trial.

    from scalearn.resolve import create_config
    from scalearn.run import run, train_task, train_joint

    config = create_config("adapter", "rt_polarity", model="minilm", seed=0, overrides={"epochs": 2})
    result, model = run(config, out_dir="runs/rt-adapter")

    # the same from names, in a notebook:
    result, model = train_task("rt_polarity", method="adapter", model="minilm", seed=0, epochs=2)
    result, model = train_joint(["syn_a", "syn_b"], method="adapter_m", model="tiny-bow", max_steps=50)

``run`` does, in this order: tokenise the task(s) → let the method prepare from the data (AdapterSoup's
similarities) → seed → load the encoder and the source bank → build → the one loop (``scalearn.train.fit``)
→ result.json beside the checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from scalearn.backbones import head_dropout, load_encoder, load_tokenizer
from scalearn.config import TrialConfig
from scalearn.data import tokenized_task
from scalearn.fingerprint import weights_fingerprint
from scalearn.heads import HeadConfig
from scalearn.io import load_source_bank, source_names, write_json
from scalearn.methods import method_class, method_names
from scalearn.provenance import reset_peak_memory
from scalearn.resolve import create_config, method_of
from scalearn.tasks import get_task
from scalearn.train import TrainResult, default_device, fit, rank_and_world, seed_everything


def head_config(spec, encoder) -> HeadConfig:
    num_labels = spec.num_labels if spec.kind in ("classification", "multi_label") else 1
    return HeadConfig(spec.kind, encoder.config.hidden_size, num_labels, dropout=head_dropout(encoder.config))


def run(
    config: TrialConfig,
    sources: list[str | Path] | None = None,
    out_dir: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    callback=None,
    device=None,
    stop_after_evaluations: int | None = None,
    pause_at: float | None = None,
    checkpoint_every: int = 1,
    write_result: bool = True,
) -> tuple[TrainResult, object]:
    """Train the trial ``config`` describes; returns (result, trained model).

    ``sources``: the stage-1 adapter folders of a transfer trial, in ``config.sources`` order (the target's
    own last). With ``out_dir``: writes the model checkpoint, for a single-task adapter the adapter artifact
    that stage 2 consumes, and (unless ``write_result`` is off: the harness stores the result itself, once)
    result.json. ``stop_after_evaluations`` interrupts the run as a crash would, after its checkpoint (for
    tests of resuming); ``pause_at`` pauses it at a rung of successive halving (``fit``): nothing is saved to
    ``out_dir`` but the checkpoint in ``checkpoint_dir`` it goes on from. ``checkpoint_every``: evaluations
    between checkpoints (0: only a rung's pause writes one). The result's peak memory is this trial's, from
    loading its backbone to its test, though the process ran others before."""
    peak_from = "trial" if reset_peak_memory(default_device(device)) else "process"
    built = build(config, sources, data_dir=data_dir, cache_dir=cache_dir)
    method, specs, data, model, source_tasks = built.method, built.specs, built.data, built.model, built.source_tasks
    metadata = {"task": config.task, "method": config.method, "model": config.model, "seed": config.seed}
    if method.joint:
        metadata["tasks"] = ",".join(specs)
    save_dir = Path(out_dir) if out_dir is not None else None
    result = fit(
        model,
        specs,
        data,
        config.loop,
        seed=config.seed,
        name=config.task,
        callback=callback,
        checkpoint_dir=checkpoint_dir,
        device=device,
        save_dir=save_dir,
        metadata=metadata,
        stop_after_evaluations=stop_after_evaluations,
        pause_at=pause_at,
        checkpoint_every=checkpoint_every,
    )
    result.provenance.update(weights=built.weights, peak_memory_from=peak_from)
    trial = config.model_dump(mode="json")
    trial["method_config"] = method.settings()  # as prepared: AdapterSoup's similarities included
    result.config = {**trial, "sources": [str(s) for s in sources or []], "source_tasks": source_tasks}
    if save_dir is not None and write_result and result.paused_at is None and rank_and_world()[0] == 0:
        # rank 0's alone (each rank's would overwrite the others' with its own peak memory and provenance)
        write_json(save_dir / "result.json", json.loads(json.dumps(result.to_dict(), default=str)))
    return result, model


@dataclass
class Built:
    """A trial's model as built before its first step, with what built it."""

    method: object
    """The method, prepared from the data (AdapterSoup's similarities)."""
    specs: dict
    data: dict
    model: object
    source_tasks: list[str]
    weights: str
    """The backbone's weights fingerprint, taken before anything was attached or cast."""


def build(config: TrialConfig, sources=None, *, data_dir=None, cache_dir=None) -> Built:
    """Everything ``run`` does before the loop: check the config, tokenise the task(s), let the method prepare,
    seed, load the encoder and the source bank, build. The same config builds the same model (ω and heads drawn
    from the trial's seed)."""
    method = method_of(config)
    names = list(config.tasks) or [config.task]
    specs = {name: get_task(name) for name in names}
    stale = {name: v for name, v in config.task_versions.items() if specs[name].version != v}
    if stale:
        raise ValueError(f"the trial was planned for other versions of {sorted(stale)}: plan it again")
    if method.uses_sources and not sources:
        raise ValueError(f"method {config.method!r} transfers from source adapters: pass `sources`")
    if sources and not method.uses_sources:
        raise ValueError(f"method {config.method!r} does not use source adapters")
    if sources and config.sources and len(sources) != len(config.sources):
        raise ValueError(f"{len(sources)} source folders for the {len(config.sources)} sources {config.sources}")
    tokenizer = load_tokenizer(config.model)
    data = {
        name: tokenized_task(
            spec,
            tokenizer,
            max_length=config.data.max_length,
            few_shot_k=config.data.few_shot,
            max_dev=config.data.max_dev_examples,
            sample=config.data.sample,
            data_dir=data_dir,
            cache_dir=cache_dir,
        )
        for name, spec in specs.items()
    }
    lora_sources = bool(sources) and method.source_method == "lora"
    if lora_sources:
        from scalearn.tuners.lora_bank import load_lora_sources

        source_tasks = list(config.sources) or load_lora_sources(sources).names
    else:
        source_tasks = list(config.sources) or (source_names(sources) if sources else [])
    method = method.prepare(config.task, source_tasks, data_dir=data_dir, cache_dir=cache_dir)

    seed_everything(config.seed)  # before building (and after anything that may draw): the seed draws heads and ω
    encoder = load_encoder(config.model)
    weights = weights_fingerprint(encoder)  # before anything is attached or cast
    if lora_sources:
        bank = load_lora_sources(sources, names=source_tasks)
    else:
        bank = load_source_bank(sources) if sources else None
    heads = {name: head_config(spec, encoder) for name, spec in specs.items()}
    model = method.build(encoder, heads if method.joint else heads[config.task], bank)
    return Built(method, specs, data, model, source_tasks, weights)


def remeasure(config: TrialConfig, sources=None, model_dir=None, *, data_dir=None, cache_dir=None) -> dict:
    """The checks ``fit`` records, measured again from a finished trial's config and artifacts (for a trial
    recorded before they existed): ``constant_dev_loss`` per task; for a transfer model, ``source_scales`` at its
    start (built from the trial's seed, so ω starts where it started); for a single trained adapter,
    ``adapter_scale`` with its trained state loaded from ``model_dir``. Only what applies to the trial is
    returned, as ``fit`` measures it: on the first training rows, in eval mode."""
    from scalearn.io import load_model_state
    from scalearn.metrics import constant_loss
    from scalearn.source_scale import is_measured, source_scales
    from scalearn.train import collate

    built = build(config, sources, data_dir=data_dir, cache_dir=cache_dir)
    model = built.model
    found: dict = {"constant_dev_loss": {}}
    for name, spec in built.specs.items():
        dev = built.data[name].splits.get("dev")
        value = constant_loss(spec.kind, dev["label"]) if dev is not None and len(dev) else None
        if value is not None:
            found["constant_dev_loss"][name] = value
    if built.method.joint:
        return found
    train = built.data[config.task].splits["train"]
    rows = list(train.select(range(min(config.loop.batch_size, len(train)))))
    batch = collate(rows, model.encoder.config.pad_token_id or 0, built.specs[config.task].kind)
    if is_measured(model):
        found["source_scales"] = source_scales(model, batch)
    trained_one = model.adapters is not None and model.transfer is None and model.adapter_role == "trained"
    if trained_one and model.adapters.num_adapters == 1 and model_dir is not None:
        load_model_state(model_dir, model)
        found["adapter_scale"] = source_scales(model, batch).get(model.adapters.names[0], {})
    return found


def _from_names(method: str, model: str, seed: int, source_dirs, output_dir, kwargs: dict, **what) -> tuple:
    """Build the TrialConfig from names and keyword arguments, then run it. ``kwargs``: the options of ``run``
    (where data lives, callbacks) and hyper-parameters (everything else, checked by the method's model)."""
    options = (
        *("data_dir", "cache_dir", "checkpoint_dir", "checkpoint_every", "callback", "device"),
        *("stop_after_evaluations", "pause_at"),
    )
    run_options = {k: kwargs.pop(k) for k in options if k in kwargs}
    config = create_config(method, model=model, seed=seed, overrides=kwargs, **what)
    return run(config, source_dirs, output_dir, **run_options)


def train_task(
    task: str,
    method: str = "adapter",
    model: str = "minilm",
    seed: int = 0,
    *,
    sources: list[str | Path] | None = None,
    output_dir: str | Path | None = None,
    few_shot_k: int | None = None,
    max_length: int | None = None,
    max_dev_examples: int | None = None,
    **kwargs,
) -> tuple[TrainResult, object]:
    """Train one method on one task from names; returns (result, trained model). ``sources``: stage-1 adapter
    folders, the target's own last. ``few_shot_k``, ``max_length``, ``max_dev_examples``: the data options of
    an experiment file's `data:` block. ``kwargs``: hyper-parameters of the method or the loop (checked), and
    the options of ``run`` (data_dir, cache_dir, checkpoint_dir, callback, device)."""
    if method_class(method).joint:
        raise ValueError(f"method {method!r} trains several tasks at once: use train_joint")
    where = {"task": task, "max_length": max_length, "few_shot": few_shot_k, "max_dev_examples": max_dev_examples}
    names = source_names(sources) if sources else []
    return _from_names(method, model, seed, sources, output_dir, dict(kwargs), sources=names, **where)


def train_joint(
    tasks: list[str],
    method: str = "adapter_m",
    model: str = "minilm",
    seed: int = 0,
    *,
    name: str = "joint",
    output_dir: str | Path | None = None,
    few_shot_k: int | None = None,
    max_length: int | None = None,
    max_dev_examples: int | None = None,
    **kwargs,
) -> tuple[TrainResult, object]:
    """Train a joint multi-task method (FT-m, Adapter-m, ProPETL-m, HyperFormer(++)) on ``tasks`` at once;
    returns (result, trained model). The result holds one entry per task in ``result.tasks``; with
    ``output_dir`` it is written there as result.json beside the model checkpoint."""
    if not method_class(method).joint:
        joint = ", ".join(name for name in method_names() if method_class(name).joint)
        raise ValueError(f"method {method!r} trains one task: use train_task (joint methods: {joint})")
    where = {"tasks": tasks, "label": name, "max_length": max_length, "few_shot": few_shot_k}
    where["max_dev_examples"] = max_dev_examples
    return _from_names(method, model, seed, None, output_dir, dict(kwargs), **where)

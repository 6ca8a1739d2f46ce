"""One trial from names: task, method, model, seed (and source adapters for stage 2).

    from scalearn.run import train_task, train_joint
    result, model = train_task("rt_polarity", method="adapter", model="minilm", seed=0, epochs=2)
    result, model = train_joint(["syn_a", "syn_b"], method="adapter_m", model="tiny-bow", max_steps=50)

This is the door the harness calls for every trial; it is also the way to train from a notebook.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from scalearn.backbones import head_dropout, load_encoder, load_tokenizer
from scalearn.data import tokenized_task
from scalearn.heads import HeadConfig
from scalearn.io import load_source_bank, source_names, write_json
from scalearn.methods import get_method
from scalearn.methods.base import METHODS
from scalearn.tasks import get_task
from scalearn.train import TrainConfig, TrainResult, fit, seed_everything


def split_overrides(method_name: str, overrides: dict) -> tuple[dict, dict]:
    """Hyper-parameters of the method (e.g. omega_dropout) vs of the loop (e.g. precision, max_steps)."""
    if method_name not in METHODS:
        get_method(method_name)  # raises the registry's error
    method_fields = {f.name for f in fields(METHODS[method_name][0]) if f.init}
    loop_fields = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - method_fields - loop_fields)
    if unknown:
        raise ValueError(f"unknown hyper-parameter {unknown[0]!r} for method {method_name!r}")
    method_kw = {k: v for k, v in overrides.items() if k in method_fields}
    loop_kw = {k: v for k, v in overrides.items() if k in loop_fields and k not in method_fields}
    return method_kw, loop_kw


def resolve(method: str, seed: int, overrides: dict):
    """(the method with its hyper-parameters, the loop's TrainConfig) from a method name and overrides."""
    method_kw, loop_kw = split_overrides(method, overrides)
    resolved = get_method(method, **method_kw)
    return resolved, TrainConfig.for_method(resolved, seed=seed, **loop_kw)


def _head_config(spec, encoder) -> HeadConfig:
    num_labels = spec.num_labels if spec.kind in ("classification", "multi_label") else 1
    return HeadConfig(spec.kind, encoder.config.hidden_size, num_labels, dropout=head_dropout(encoder.config))


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
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    callback=None,
    device=None,
    **overrides,
) -> tuple[TrainResult, object]:
    """Train one method on one task; returns (result, trained model). ``sources``: stage-1 adapter folders,
    the target's own last. With ``output_dir``: writes result.json, the model checkpoint and, for a
    single-task adapter, the adapter artifact that stage 2 consumes."""
    spec = get_task(task)
    trial_method, config = resolve(method, seed, overrides)
    data = tokenized_task(
        spec,
        load_tokenizer(model),
        max_length=max_length,
        few_shot_k=few_shot_k,
        data_dir=data_dir,
        cache_dir=cache_dir,
    )

    if getattr(trial_method, "joint", False):
        raise ValueError(f"method {method!r} trains several tasks at once: use train_joint")
    if getattr(trial_method, "weighting", None) == "similarity" and trial_method.similarities is None and sources:
        from scalearn.similarity import task_similarities  # AdapterSoup: weights from the sources' task names

        trial_method.similarities = task_similarities(
            task,
            source_names(sources),
            trial_method.similarity_model,
            max_sentences=trial_method.similarity_sentences,
            data_dir=data_dir,
            cache_dir=cache_dir,
        )

    seed_everything(seed)  # before building (and after anything that may draw): the seed draws the head and ω
    encoder = load_encoder(model)
    bank = load_source_bank(sources) if sources else None
    trained = trial_method.build(encoder, _head_config(spec, encoder), bank)
    metadata = {"task": task, "method": method, "model": model, "seed": seed}
    save_dir = Path(output_dir) if output_dir is not None else None
    result = fit(
        trained,
        spec,
        data,
        config,
        callback=callback,
        checkpoint_dir=checkpoint_dir,
        device=device,
        save_dir=save_dir,
        metadata=metadata,
    )
    result.config.update(
        {
            "method": method,
            "method_config": trial_method.to_dict(),
            "model": model,
            "task": task,
            "seed": seed,
            "few_shot": few_shot_k,
            "sources": [str(s) for s in sources or []],
        }
    )
    if save_dir is not None:
        write_json(save_dir / "result.json", json.loads(json.dumps(result.to_dict(), default=str)))
    return result, trained


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
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    callback=None,
    device=None,
    **overrides,
) -> tuple[TrainResult, object]:
    """Train a joint multi-task method (FT-m, Adapter-m, ProPETL-m, HyperFormer(++)) on ``tasks`` at once;
    returns (result, trained model). The result holds one entry per task in ``result.tasks``; with
    ``output_dir`` it is written there as result.json beside the model checkpoint."""
    from scalearn.joint import fit_joint

    if len(tasks) < 1 or len(set(tasks)) != len(tasks):
        raise ValueError(f"a joint run needs distinct tasks, got {tasks}")
    specs = {task: get_task(task) for task in tasks}
    trial_method, config = resolve(method, seed, overrides)
    if not getattr(trial_method, "joint", False):
        raise ValueError(
            f"method {method!r} trains one task: use train_task (joint methods: "
            f"{', '.join(n for n, (cls, _) in METHODS.items() if getattr(cls, 'joint', False))})"
        )
    tokenizer = load_tokenizer(model)
    data = {
        task: tokenized_task(
            spec, tokenizer, max_length=max_length, few_shot_k=few_shot_k, data_dir=data_dir, cache_dir=cache_dir
        )
        for task, spec in specs.items()
    }

    seed_everything(seed)  # before building: the seed draws the heads and the shared modules
    encoder = load_encoder(model)
    trained = trial_method.build(encoder, {task: _head_config(spec, encoder) for task, spec in specs.items()})
    metadata = {"task": name, "tasks": ",".join(tasks), "method": method, "model": model, "seed": seed}
    save_dir = Path(output_dir) if output_dir is not None else None
    result = fit_joint(
        trained,
        specs,
        data,
        config,
        name=name,
        callback=callback,
        checkpoint_dir=checkpoint_dir,
        device=device,
        save_dir=save_dir,
        metadata=metadata,
    )
    result.config.update(
        {
            "method": method,
            "method_config": trial_method.to_dict(),
            "model": model,
            "task": name,
            "tasks": list(tasks),
            "seed": seed,
            "few_shot": few_shot_k,
        }
    )
    if save_dir is not None:
        write_json(save_dir / "result.json", json.loads(json.dumps(result.to_dict(), default=str)))
    return result, trained

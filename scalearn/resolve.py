"""Trial configs by name: the layer above the registries (methods, tasks, the model catalogue).

``scalearn.config`` is the contract at the bottom: typed values that import nothing of scalearn. What needs a
registry lives here, as PEFT keeps its config classes below and the name → class mapping above them:

    config = create_config("adapter", "rt_polarity", model="minilm", seed=0, overrides={"epochs": 2})
    method = method_of(config)          # the method with exactly these settings (checks them)
    key_fields(config)                  # what the content key hashes
    checked(stored)                     # a stored config, read and checked against its method again
"""

from __future__ import annotations

from scalearn.catalog import canonical_name
from scalearn.config import DataConfig, LoopConfig, TrialConfig, at_default, outside_key
from scalearn.methods import get_method, method_class
from scalearn.tasks import get_task


def create_config(
    method: str,
    task: str | None = None,
    *,
    tasks: list[str] | tuple[str, ...] = (),
    label: str | None = None,
    model: str,
    seed: int = 0,
    overrides: dict | None = None,
    max_length: int | None = None,
    few_shot: int | None = None,
    sources: list[str] | tuple[str, ...] = (),
    max_dev_examples: int | None = None,
    sample: str = "first",
) -> TrialConfig:
    """The resolved config: the method's defaults, then ``overrides`` (method or loop settings, validated by
    the method's model). A single-task trial gives ``task``; a joint one ``tasks`` (and a ``label``)."""
    resolved = get_method(method, **(overrides or {}))
    if resolved.joint:
        if task is not None and not tasks:
            raise ValueError(f"method {method!r} trains several tasks at once: give `tasks`, not one task")
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError(f"a joint run needs distinct tasks, got {list(tasks)}")
        names, task = tuple(tasks), label or "joint"
    else:
        if tasks:
            raise ValueError(f"method {method!r} trains one task: give `task`, not `tasks`")
        if task is None:
            raise ValueError(f"method {method!r} needs a task")
        names = ()
    versions = {name: get_task(name).version for name in (names or (task,))}
    if max_length is None and not names:
        max_length = get_task(task).max_length
    return TrialConfig(
        method=method,
        method_config=resolved.settings(),
        loop=resolved.loop_config(),
        data=DataConfig(max_length=max_length, few_shot=few_shot, max_dev_examples=max_dev_examples, sample=sample),
        model=canonical_name(model),
        task=task,
        tasks=names,
        task_versions=versions,
        seed=seed,
        sources=tuple(sources),
    )


def method_of(config: TrialConfig):
    """The method with exactly these settings and this loop (a ``scalearn.methods.Method``); raises on a setting
    the method does not have or a value out of its range."""
    return get_method(config.method, **config.method_config, **config.loop.model_dump())


def checked(config: TrialConfig | dict) -> TrialConfig:
    """A config (or its stored JSON form) checked against its method's own hyper-parameter model, as
    `create_config` checks a new one."""
    config = config if isinstance(config, TrialConfig) else TrialConfig(**config)
    method_of(config)
    return config


def key_fields(config: TrialConfig) -> dict:
    """What the content key hashes: everything but the fields marked ``in_key=False``; a setting added after
    keys were in use stays out of them at its default, so old trials keep their keys."""
    outside = {name for name, info in LoopConfig.model_fields.items() if outside_key(info)}
    exclude = {
        "loop": outside | at_default(LoopConfig.model_fields, config.loop.model_dump()),
        "data": at_default(DataConfig.model_fields, config.data.model_dump()),
        "method_config": at_default(method_class(config.method).model_fields, config.method_config),
    }
    return config.model_dump(mode="json", exclude=exclude)

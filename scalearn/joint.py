"""THE joint multi-task loop: one model, every task of a benchmark at once (reference §3 notes).

    schedule   every micro-batch belongs to one task, drawn with p_t ∝ n_t^(1/T) (T = 1: proportional to the
               task's training set); the draws are a function of the seed alone, as is each task's
               shuffled order in each of its passes, so a resumed run sees exactly the same batches
    train      the batch goes through its task's head (and task-conditioned modules), AdamW steps as
               ``scalearn.train``: same engines, clipping, accumulation, schedule; the other tasks' heads take
               the step on a zero gradient (as DeepSpeed's flat buffers, and HF's Trainer when it zeroed
               gradients rather than dropping them), so torch and DeepSpeed ZeRO 0–2 train alike
    evaluate   every ``eval_every_steps`` on every task's dev split; select on the mean dev loss over tasks
               (unweighted: each task counts once; ReCoRD left out, as ScaLearn's run_multi.py) or the mean
               main metric; stop after ``patience`` evaluations without improvement
    finish     restore the best state; score every task's test split(s): one result per task

Where ScaLearn's sampler differs (reference §3 notes; src/tasks/multitask_sampler.py): it draws a batch's
examples uniformly with replacement and seeds its draws with the epoch alone (the same batches for every
training seed); here each task is walked through in shuffled passes without replacement, seeded by the
trial's seed. The task draws, p_t ∝ n_t^(1/T) per batch, are the same rule.

Steps: at most ``max_steps``, and at most ``epochs`` passes over the sum of the tasks' batches. Without
``eval_every_steps`` the run evaluates once per such pass. Resuming: with ``checkpoint_dir``, every
evaluation writes a checkpoint (``scalearn.checkpoint``) from which a restarted run continues on the same
loss curve.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import torch

from scalearn import provenance
from scalearn.checkpoint import load_checkpoint, load_trainable_state
from scalearn.engines import ENGINES
from scalearn.model import TransferModel
from scalearn.tasks.base import TaskSpec
from scalearn.train import (
    Callback,
    TrainConfig,
    TrainResult,
    _better,
    _global_mean,
    _rank_and_world,
    book_evaluation,
    collate,
    evaluate_split,
    prepare,
    save_trained,
)


def task_probabilities(sizes: dict[str, int], temperature: float) -> dict[str, float]:
    """p_t ∝ n_t^(1/T): T = 1 proportional to size, T → ∞ uniform."""
    if temperature <= 0:
        raise ValueError(f"sampling_temperature must be > 0, got {temperature}")
    weights = {task: size ** (1.0 / temperature) for task, size in sizes.items()}
    total = sum(weights.values())
    return {task: weight / total for task, weight in weights.items()}


def task_schedule(sizes: dict[str, int], temperature: float, seed: int, length: int) -> torch.Tensor:
    """The task index of each of the run's first ``length`` micro-batches (indices into ``sizes``' order)."""
    probabilities = torch.tensor(list(task_probabilities(sizes, temperature).values()), dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + 17)
    return torch.multinomial(probabilities, length, replacement=True, generator=generator)


class TaskStreams:
    """Each task's batches in order: pass p of task t is a permutation drawn from (seed, t, p)."""

    def __init__(self, datasets: dict[str, object], batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.datasets, self.batch_size, self.seed = datasets, batch_size, seed
        self.rank, self.world = rank, world
        # with several ranks an incomplete batch is dropped: every rank must take part in every step
        self.batches_per_pass = {
            task: (len(split) // batch_size if world > 1 else math.ceil(len(split) / batch_size))
            for task, split in datasets.items()
        }
        for task, count in self.batches_per_pass.items():
            if count < 1:
                raise ValueError(
                    f"task {task!r}: its training split ({len(datasets[task])}) is smaller than "
                    f"one batch ({batch_size}) on {world} ranks"
                )
        self._orders: dict[str, tuple[int, list[int]]] = {}

    def order(self, task: str, index: int, epoch: int) -> list[int]:
        cached = self._orders.get(task)
        if cached is None or cached[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index * 10_007 + epoch)
            cached = (epoch, torch.randperm(len(self.datasets[task]), generator=generator).tolist())
            self._orders[task] = cached
        return cached[1]

    def rows(self, task: str, index: int, occurrence: int) -> list[int]:
        """The example indices of this rank's share of task ``task``'s ``occurrence``-th batch."""
        epoch, position = divmod(occurrence, self.batches_per_pass[task])
        order = self.order(task, index, epoch)
        rows = order[position * self.batch_size : (position + 1) * self.batch_size]
        if self.world > 1:
            share = self.batch_size // self.world
            rows = rows[self.rank * share : (self.rank + 1) * share]
        return rows


def fit_joint(
    model: TransferModel,
    tasks: dict[str, TaskSpec],
    data: dict[str, object],
    config: TrainConfig,
    *,
    name: str = "joint",
    callback: Callback | None = None,
    checkpoint_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    save_dir: str | Path | None = None,
    metadata: dict | None = None,
    stop_after_evaluations: int | None = None,
) -> TrainResult:
    """Train a joint model (``TaskHeads``, one per task of ``tasks``) on all of ``data`` (task → TokenizedData).

    Returns one TrainResult: ``tasks`` holds each task's best dev and test scores, ``test`` the same flat as
    "<task>/<metric>", ``history`` one row per evaluation with the mean dev loss and each task's scores."""
    start = time.perf_counter()
    names = list(tasks)
    if model.tasks != names:
        raise ValueError(f"the model's heads {model.tasks} are not the tasks trained {names}")
    if config.engine == "deepspeed" and config.zero_stage == 3 and len(names) > 1:
        raise ValueError(
            "a joint run takes DeepSpeed ZeRO stages 0-2: under ZeRO-3 the parameters of the tasks "
            "absent from a step update unlike under torch (cf. DeepSpeed #1355)"
        )
    device = prepare(model, config, device, checkpoint_dir)
    notify = callback or (lambda event, payload: None)
    pad_id = model.encoder.config.pad_token_id or 0
    select_by = "loss" if config.select_by == "auto" else config.select_by
    rank, world = _rank_and_world()
    train = {task: data[task].splits["train"] for task in names}
    streams = TaskStreams(train, config.batch_size, config.seed, rank, world)
    batches_per_pass = sum(streams.batches_per_pass.values())
    steps_per_pass = math.ceil(batches_per_pass / config.gradient_accumulation)
    total_steps = steps_per_pass * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    eval_every = config.eval_every_steps or steps_per_pass
    # ReCoRD selects on its test split in the paper; ScaLearn's joint runs leave it out of the mean dev loss
    selecting = [t for t in names if not tasks[t].selects_on_test] or names
    schedule = task_schedule(
        {t: len(train[t]) for t in names},
        config.sampling_temperature,
        config.seed,
        total_steps * config.gradient_accumulation,
    ).tolist()
    engine = ENGINES[config.engine](model, config, total_steps, device)

    result = TrainResult(
        task=name,
        selected_by=select_by,
        parameters=model.parameter_counts(),
        data_key=",".join(getattr(data[t], "key", "") for t in names),
        config={**asdict(config), "tasks": names},
    )
    progress = {
        "micro": 0,
        "step": 0,
        "evaluations": 0,
        "since_best": 0,
        "history": [],
        "best": None,
        "last_eval_step": -1,
        "losses": [],
    }
    best_state = None
    checkpoint = Path(checkpoint_dir) / "last" if checkpoint_dir is not None else None
    if checkpoint is not None and (checkpoint / "checkpoint.json").exists():
        progress, best_state = load_checkpoint(checkpoint, model, engine.optimizer, engine.scheduler)
        notify("resume", {"step": progress["step"]})

    def evaluate_and_select() -> bool:
        nonlocal best_state
        scores = {}
        for task in names:
            model.set_task(task)
            scores[task] = evaluate_split(model, engine, tasks[task], data[task].splits["dev"], config, pad_id)
        mean = {
            "loss": sum(scores[t]["loss"] for t in selecting) / len(selecting),
            "score": sum(scores[t][tasks[t].metric] for t in selecting) / len(selecting),
        }
        record = {
            "step": progress["step"],
            "epoch": progress["step"] / steps_per_pass,
            **{f"dev_{k}": v for k, v in mean.items()},
            **{f"dev_{t}/{k}": v for t, s in scores.items() for k, v in s.items()},
        }
        best = None
        if _better(mean, progress["best"] and progress["best"]["mean"], "loss" if select_by == "loss" else "score"):
            best = {"mean": mean, "tasks": scores, "step": progress["step"], "evaluation": progress["evaluations"]}
        stop, best_state = book_evaluation(
            progress,
            record,
            best,
            best_state,
            model=model,
            engine=engine,
            config=config,
            checkpoint=checkpoint,
            notify=notify,
            stop_after_evaluations=stop_after_evaluations,
        )
        return stop

    # A step updates every trainable tensor, the heads of the tasks absent from it on a zero gradient (their
    # moments decay, weight decay applies), as DeepSpeed's flat gradient buffers do: both engines agree.
    # (Task-conditioned tensors hold every task in one tensor, so they always get a gradient.)
    zero_fill = config.engine == "torch"
    heads = [p for p in model.head.parameters() if p.requires_grad]
    counts = [0] * len(names)  # how many batches of each task the run has taken so far
    for index in schedule[: progress["micro"]]:
        counts[index] += 1
    stop = progress["since_best"] >= config.patience
    model.train()
    while not stop and progress["step"] < total_steps:
        index = schedule[progress["micro"]]
        task = names[index]
        rows = list(train[task].select(streams.rows(task, index, counts[index])))
        counts[index] += 1
        progress["micro"] += 1
        batch = {k: v.to(device) for k, v in collate(rows, pad_id, tasks[task].kind).items()}
        labels = batch.pop("labels")
        model.set_task(task)
        loss = model.loss(engine.forward(batch).float(), labels)
        if zero_fill:
            for parameter in heads:
                if parameter.grad is None:
                    parameter.grad = torch.zeros_like(parameter)
        if not engine.backward_and_step(loss):
            continue
        progress["step"] += 1
        step_loss = _global_mean(loss.detach(), world)
        progress["losses"].append(step_loss)
        if progress["step"] % config.log_every_steps == 0 or progress["step"] == 1:
            notify(
                "step",
                {
                    "step": progress["step"],
                    "task": task,
                    "train_loss": step_loss,
                    "learning_rate": engine.learning_rate(),
                },
            )
        if progress["step"] % eval_every == 0 or progress["step"] >= total_steps:
            stop = evaluate_and_select()
            model.train()
    if progress["last_eval_step"] != progress["step"] and not stop:
        evaluate_and_select()
    result.history, result.steps, result.losses = progress["history"], progress["step"], progress["losses"]
    if stop_after_evaluations is not None and progress["evaluations"] >= stop_after_evaluations:
        return result  # interrupted on purpose: no restore, no test

    if best_state is not None:
        load_trainable_state(model, best_state, engine)
    best = progress["best"] or {"mean": {}, "tasks": {}, "step": -1, "evaluation": -1}
    result.best_step, result.best_epoch = best["step"], best["evaluation"]  # best_epoch: the evaluation's number
    result.best_dev = dict(best["mean"])
    for task in names:
        model.set_task(task)
        test = {}
        for split in ["test", *tasks[task].extra_test_splits]:
            if split in data[task].splits:
                scores = evaluate_split(model, engine, tasks[task], data[task].splits[split], config, pad_id)
                test.update({(k if split == "test" else f"{k}_{split[5:]}"): v for k, v in scores.items()})
        result.tasks[task] = {"best_dev": best["tasks"].get(task, {}), "test": test, "metric": tasks[task].metric}
        result.test.update({f"{task}/{k}": v for k, v in test.items()})
    if save_dir is not None:
        save_trained(Path(save_dir), model, engine, rank, metadata or {})
    result.wall_seconds = time.perf_counter() - start
    result.peak_memory_mb = provenance.peak_memory_mb(device)
    result.provenance = {**provenance.collect(device), "engine": config.engine, "world_size": world}
    notify("end", {"best_step": result.best_step, "test": result.test})
    return result

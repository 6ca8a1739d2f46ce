"""THE training loop: every method, one task or several at once, one code path (docs/method.md §2, §4.3, §8).

    setup     model on its device → engine (AdamW, schedule, ZeRO) → the batch schedule: epochs over one task,
              or temperature-sampled tasks (``scalearn.schedule``)
    train     micro-batches in the schedule's order (a function of the seed), AdamW steps with clipping and
              accumulation, the regulariser in the same step's loss
    evaluate  when the schedule says (every epoch, or every N steps) on every task's dev split; keep the best
              state by dev loss or the task metric (a joint run: their unweighted mean over tasks); stop
              after ``patience`` evaluations without improvement
    finish    restore the best state (every trainable tensor: ω of the ++ variants included) and score it on
              every task's test split(s)

The loop knows nothing of MLflow or Ray: it reports to an optional ``callback(event, payload)``.
Resuming: with ``checkpoint_dir`` set, every evaluation (or every ``checkpoint_every``-th) writes the trainable
state, the optimizer, the schedule, the best state so far, the RNG states and the ``RunState``; a restarted run
continues from there on the same loss curve.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from scalearn import provenance
from scalearn.checkpoint import (
    load_trainable_state,
    read_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    trainable_state,
)
from scalearn.config import LoopConfig
from scalearn.engines import ENGINES
from scalearn.evaluation import evaluate
from scalearn.io import LORA_WEIGHTS, save_adapter, save_lora, save_model, verify_saved, whole_shapes, write_json
from scalearn.layout import ADAPTER_WEIGHTS, ATTENTION, LAST_CHECKPOINT, LIVE_PROGRESS
from scalearn.metrics import constant_loss
from scalearn.model import TransferModel
from scalearn.result import TrialResult
from scalearn.schedule import EpochSchedule, MicroBatch, RunState, SampledSchedule
from scalearn.source_scale import is_measured, source_scales, warn_if_swamping
from scalearn.tasks.base import TaskSpec

Callback = Callable[[str, dict], None]


TrainResult = TrialResult
"""The loop's result: the typed, versioned record of scalearn.result (the name the core has always used)."""


def _dataset_record(data) -> dict:
    """What a tracker says of a task's data: its fingerprint and each split's number of rows."""
    splits = getattr(data, "splits", {})
    return {"fingerprint": getattr(data, "key", ""), "rows": {name: len(split) for name, split in splits.items()}}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- batches ----------------------------------------------------------------------------------------


def collate(rows: list[dict], pad_id: int, kind: str) -> dict:
    """Pad a list of tokenised rows to the longest; multiple-choice rows become [B, choices, T]."""
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in rows[0]]
    nested = kind == "multiple_choice"
    longest = max(len(seq) for row in rows for seq in (row["input_ids"] if nested else [row["input_ids"]]))
    batch = {}
    for key in keys:
        fill = pad_id if key == "input_ids" else 0

        def pad(seq, fill=fill):
            return list(seq) + [fill] * (longest - len(seq))

        values = [[pad(s) for s in row[key]] if nested else pad(row[key]) for row in rows]
        batch[key] = torch.tensor(values, dtype=torch.long)
    labels = [row["label"] for row in rows]
    dtype = torch.float if kind in ("regression", "multi_label") else torch.long
    batch["labels"] = torch.tensor(labels, dtype=dtype)
    return batch


def rows_of(split, indices: list[int]) -> list[dict]:
    """The split's rows at ``indices``, in that order, as dicts. One read of the columns, not a `select` walked row by
    row: 4.6× faster for a batch of 32 (benchmarks/loop_overhead.py), which matters on the tiny backbones."""
    columns = split[indices]
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def batches(split, batch_size: int, pad_id: int, kind: str, order: list[int] | None = None):
    indices = order if order is not None else list(range(len(split)))
    for start in range(0, len(indices), batch_size):
        yield collate(rows_of(split, indices[start : start + batch_size]), pad_id, kind)


def _global_mean(value: torch.Tensor, world: int) -> float:
    """A rank's loss averaged over the ranks: the loss of the global batch, for the record."""
    if world > 1:
        value = value.clone()
        torch.distributed.all_reduce(value)
        value /= world
    return value.item()


def rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


# -- evaluation and state ---------------------------------------------------------------------------


@torch.no_grad()
def evaluate_split(model: TransferModel, engine, task: TaskSpec, split, config: LoopConfig, pad_id: int) -> dict:
    """Mean loss (regulariser excluded) and every task metric on one split. Its rows go longest first, so that
    a batch pads to rows of about its own length (half the padded tokens of a shuffled split on the offline
    tasks), and their logits are put back in the split's order before scoring."""
    model.eval()
    logits, total, count = [], 0.0, 0
    order = by_length(split)
    for batch in batches(split, config.eval_batch_size, pad_id, task.kind, order):
        batch = {k: v.to(engine.device) for k, v in batch.items()}
        labels = batch.pop("labels")
        out = engine.forward(batch)
        total += model.head.loss(out.float(), labels).item() * len(labels)
        count += len(labels)
        logits.append(out.float().cpu())
    ordered = torch.empty_like(gathered := torch.cat(logits))
    ordered[torch.tensor(order)] = gathered
    return {"loss": total / max(count, 1), **evaluate(task, split, ordered)}


def by_length(split) -> list[int]:
    """The split's row indices, longest first (a multiple-choice row by its longest choice); ties keep their
    order."""
    lengths = [max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids) for ids in split["input_ids"]]
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def _better(candidate: float, best: float | None, select_by: str) -> bool:
    if best is None:
        return True
    return candidate < best if select_by == "loss" else candidate > best


class EvaluationSet:
    """The tasks a run evaluates, and how their dev scores become one history row and one value to select on.

    A single-task run: the task's scores as "dev_<metric>", selected on its loss or metric. A joint run: the
    unweighted mean dev loss and main metric over the tasks that select on dev (ReCoRD selects on its test
    split in the paper, so ScaLearn's run_multi.py leaves it out), then each task's as "dev_<task>/<metric>".
    """

    def __init__(self, tasks: dict[str, TaskSpec], joint: bool):
        self.tasks, self.joint = tasks, joint
        self.selecting = [t for t, spec in tasks.items() if not spec.selects_on_test] or list(tasks)

    def summary(self, scores: dict[str, dict]) -> tuple[dict, dict]:
        """(what the history row says, what selection compares: {"loss", "score"})."""
        if not self.joint:
            ((task, dev),) = scores.items()
            return {f"dev_{k}": v for k, v in dev.items()}, {"loss": dev["loss"], "score": dev[self.tasks[task].metric]}
        count = len(self.selecting)
        mean = {
            "loss": sum(scores[t]["loss"] for t in self.selecting) / count,
            "score": sum(scores[t][self.tasks[t].metric] for t in self.selecting) / count,
        }
        per_task = {f"dev_{t}/{k}": v for t, dev in scores.items() for k, v in dev.items()}
        return {**{f"dev_{k}": v for k, v in mean.items()}, **per_task}, mean


def save_trained(directory: Path, model: TransferModel, engine, rank: int, metadata: dict) -> None:
    """Write the model's own state (and a single-task trained adapter as a stage-1 artifact), gathered whole."""
    owned = [model.head, model.transfer, model.tuner]
    if model.adapters is not None and model.adapter_role != "sources":
        owned.append(model.adapters)
    if any(p.requires_grad for p in model.encoder.parameters()):
        owned.append(model.encoder)
    parameters = [p for module in owned if module is not None for p in module.parameters()]
    shapes = whole_shapes(model)
    files = {directory / "model" / f"{name}.safetensors": expected for name, expected in shapes.items()}
    with engine.gathered(parameters):
        if rank == 0:
            save_model(directory / "model", model, metadata=metadata)
            if model.adapters is not None and model.adapter_role == "trained" and model.tasks is None:
                save_adapter(directory / "adapter", model.adapters, metadata=metadata)
                files[directory / "adapter" / ADAPTER_WEIGHTS] = shapes["adapter"]
            if getattr(model.tuner, "kind", None) == "lora" and model.tasks is None:  # a source of ScaLearn-LoRA
                state = model.tuner.state_dict()
                save_lora(directory / "adapter", model.tuner.config(), state, metadata.get("task", "task"), metadata)
                files[directory / "adapter" / LORA_WEIGHTS] = shapes["tuner"]
    if rank == 0:
        verify_saved(files)  # before any result is written on top of these files
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


# -- the loop ---------------------------------------------------------------------------------------


FROZEN_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def store_frozen_as(model: torch.nn.Module, dtype: torch.dtype) -> int:
    """Store every frozen floating-point parameter in ``dtype`` (before the move to the device, so the fp32 copy
    never lands there); trained parameters and buffers (RoPE's frequencies) stay as they are. Returns how
    many parameters changed."""
    frozen = [p for p in model.parameters() if not p.requires_grad and p.is_floating_point() and p.dtype != dtype]
    for parameter in frozen:
        parameter.data = parameter.data.to(dtype)
    return len(frozen)


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device a run trains on: the one asked for, else CUDA where there is one, else the CPU."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _native_bf16(device: torch.device) -> bool:
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # a torch without the argument: Ampere (compute capability 8) or later
        return torch.cuda.get_device_capability(device)[0] >= 8


def prepare(model: TransferModel, config: LoopConfig, device, checkpoint_dir) -> torch.device:
    """Move the model to its device, check the precision and resuming fit, switch on gradient checkpointing."""
    device = default_device(device)
    if config.precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    if config.precision == "bf16" and device.type == "cuda" and not _native_bf16(device):
        # a GPU before Ampere (V100, T4) emulates bf16: it runs, slowly, and its timings mislead
        raise ValueError(f"precision bf16: {torch.cuda.get_device_name(device)} has no native bf16; use fp16 or fp32")
    if config.backbone_dtype != "fp32":
        store_frozen_as(model, FROZEN_DTYPES[config.backbone_dtype])
    model.to(device)
    if config.gradient_checkpointing:
        kwargs = {"use_reentrant": False}  # frozen inputs: the re-entrant variant would drop adapter gradients
        if hasattr(model.encoder, "activation_checkpointing_enable"):  # transformers ≥ 5.x
            model.encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if checkpoint_dir is not None and config.engine != "torch":
        raise ValueError(
            "resuming (checkpoint_dir) needs engine torch: DeepSpeed's optimizer checkpoints are "
            "pickles, which this project never loads"
        )
    return device


def fit(
    model: TransferModel,
    tasks: TaskSpec | dict[str, TaskSpec],
    data,
    config: LoopConfig,
    *,
    seed: int = 0,
    name: str | None = None,
    callback: Callback | None = None,
    checkpoint_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    save_dir: str | Path | None = None,
    metadata: dict | None = None,
    stop_after_evaluations: int | None = None,
    pause_at: float | None = None,
    checkpoint_every: int = 1,
) -> TrainResult:
    """Train ``model`` and return the result. ``tasks`` is one TaskSpec with its TokenizedData (``data``), or,
    for a joint model (``TaskHeads``, one head per task), task → TaskSpec with task → TokenizedData.

    A joint result holds each task's best dev and test scores in ``tasks`` (``test`` has them flat as
    "<task>/<metric>"), and one history row per evaluation with the mean dev loss and each task's scores.
    With ``save_dir``, the restored best model is saved there (``model/``, and ``adapter/`` when the model
    trained its own single-task adapter: the stage-1 artifact), its partitions gathered first under ZeRO-3.
    ``stop_after_evaluations`` ends the run early without finishing it, as a crash would (tests of resuming).
    ``pause_at`` (successive halving's rung, a share of the run's dev evaluations, < 1): the run pauses after
    that many evaluations (``floor(share × evaluations)``, at least one), its checkpoint written, with its best dev
    scores so far and ``paused_at`` set, and nothing restored or tested; run again with the same
    ``checkpoint_dir``, it goes on from there on the curve of a run never paused.
    ``checkpoint_every``: evaluations between the checkpoints written to ``checkpoint_dir`` (0: only at a rung's
    pause); a run stopped between two goes on from the last, on the same curve.
    """
    start = time.perf_counter()
    joint = model.tasks is not None
    if isinstance(tasks, TaskSpec):
        tasks, data = {tasks.name: tasks}, {tasks.name: data}
    names = list(tasks)
    if joint and model.tasks != names:
        raise ValueError(f"the model's heads {model.tasks} are not the tasks trained {names}")
    if not joint and len(names) != 1:
        raise ValueError(f"a single-task model trains one task, got {names}: build a joint method for several")
    if joint and config.engine == "deepspeed" and config.zero_stage == 3 and len(names) > 1:
        raise ValueError(
            "a joint run takes DeepSpeed ZeRO stages 0-2: under ZeRO-3 the parameters of the tasks "
            "absent from a step update unlike under torch (cf. DeepSpeed #1355)"
        )
    device = prepare(model, config, device, checkpoint_dir)
    notify = callback or (lambda event, payload: None)
    pad_id = model.encoder.config.pad_token_id or 0
    rank, world = rank_and_world()
    if world > 1 and config.engine != "deepspeed":  # the torch engine never averages gradients across ranks
        raise ValueError(f"{world} ranks need engine deepspeed: with engine {config.engine} each would train alone")
    train = {task: data[task].splits["train"] for task in names}
    if joint:
        schedule = SampledSchedule(train, config, seed, rank, world)
        select_by = "loss" if config.select_by == "auto" else config.select_by  # run_multi.py: mean dev loss
    else:
        schedule = EpochSchedule(names[0], len(train[names[0]]), config, seed, rank, world)
        select_by = tasks[names[0]].select_by if config.select_by == "auto" else config.select_by
    evaluation_set = EvaluationSet(tasks, joint)
    pause_after = _pause_after(schedule.evaluations(), pause_at, checkpoint_dir)
    counts = model.parameter_counts()  # before the engine: ZeRO-3 partitions the parameters it counts
    engine = ENGINES[config.engine](model, config, schedule.total_steps, device)

    result = TrainResult(
        task=name or (names[0] if not joint else "joint"),
        selected_by=select_by,
        selects_on_test=not joint and tasks[names[0]].selects_on_test,
        parameters=counts,
        data_key=",".join(getattr(data[t], "key", "") for t in names),
        datasets={t: _dataset_record(data[t]) for t in names},
        config={**config.model_dump(), "seed": seed, **({"tasks": names} if joint else {})},
    )
    for task in names:  # the floor a trial must go below to have learned anything (metrics.constant_loss)
        dev = data[task].splits.get("dev")
        constant = constant_loss(tasks[task].kind, dev["label"]) if dev is not None and len(dev) else None
        if constant is not None:
            result.constant_dev_loss[task] = constant
    if is_measured(model) and not joint:
        result.source_scales = _source_scales(model, engine, train[names[0]], tasks[names[0]], config, pad_id, device)
    state, best_state = RunState(), None
    checkpoint = Path(checkpoint_dir) / LAST_CHECKPOINT if checkpoint_dir is not None else None
    scaler = getattr(engine, "scaler", None)  # fp16's loss scale goes on too
    if checkpoint is not None and (found := read_checkpoint(checkpoint)) is not None:
        saved, best_state = restore_checkpoint(found, model, engine.optimizer, engine.scheduler, scaler)
        state = RunState(**saved)
        notify("resume", {"epoch": state.epoch, "step": state.step})
        if pause_after is not None and state.evaluations > pause_after:  # a rung lowered since it paused
            raise ValueError(
                f"its checkpoint is past this rung: {state.evaluations} of {schedule.evaluations()} evaluations "
                f"done, the rung pauses after {pause_after} (a first rung lowered below where its points paused)"
            )
    # a resumed run's time counts from its checkpoint; only what no earlier record counted goes in this one
    base, already = state.seconds, state.recorded_seconds
    checkpointed_at = state.evaluations if state.evaluations else None  # what a stopped run would go on from

    def elapsed() -> float:  # the run's own time, earlier stretches included (``RunState.seconds``)
        return base + time.perf_counter() - start

    def evaluate_and_select(batch: MicroBatch | None) -> bool:
        """Evaluate on dev, keep the best state, checkpoint; True when training should stop."""
        nonlocal best_state, checkpointed_at
        scores = {}
        for task in names:
            model.set_task(task)
            scores[task] = evaluate_split(model, engine, tasks[task], data[task].splits["dev"], config, pad_id)
        summary, selected = evaluation_set.summary(scores)
        epoch = schedule.epoch_of(state, batch)
        record = {"epoch": epoch, "step": state.step, **summary}
        state.history.append(record)
        state.evaluation_times.append(time.time())
        state.evaluations += 1
        state.last_eval_step = state.step
        previous = state.best["selected"][selected_key] if state.best else None
        if _better(selected[selected_key], previous, select_by):
            at = state.evaluations - 1 if joint else epoch
            state.best = {"scores": scores, "selected": selected, "step": state.step, "epoch": at}
            state.since_best = 0
            best_state = trainable_state(model, engine)
        else:
            state.since_best += 1
        notify("evaluation", record)
        state.seconds = elapsed()
        pausing = pause_after is not None and state.evaluations >= pause_after
        if pausing:  # this stretch's record counts it all
            state.recorded_seconds = state.seconds
        due = checkpoint_every > 0 and state.evaluations % checkpoint_every == 0  # a rung's pause always writes one
        if checkpoint is not None and (due or pausing):
            save_checkpoint(checkpoint, model, engine.optimizer, engine.scheduler, asdict(state), best_state, scaler)
            checkpointed_at = state.evaluations
        if checkpoint is not None and rank == 0:  # for `harness status`, at every evaluation
            live = {"step": state.step, "evaluations": state.evaluations, "best": state.best}
            live.update(evaluation_time=state.evaluation_times[-1], checkpointed_at=checkpointed_at)
            write_json(checkpoint.parent / LIVE_PROGRESS, live)
        return state.since_best >= config.patience or interrupted()

    def interrupted() -> bool:
        """Stopped on purpose before the end: a test's crash, or successive halving's pause at a rung."""
        limits = [n for n in (stop_after_evaluations, pause_after) if n is not None]
        return bool(limits) and state.evaluations >= min(limits)

    selected_key = "loss" if select_by == "loss" else "score"
    # A joint step updates every trainable tensor, the heads of the tasks absent from it on a zero gradient
    # (their moments decay, weight decay applies), as DeepSpeed's flat gradient buffers do: both engines agree.
    fill_absent = joint and engine.name == "torch"
    stop = state.since_best >= config.patience or interrupted()  # resumed where it had stopped: nothing more
    model.train()
    accumulated = []  # the losses of the step's micro-batches so far: a step's train loss is their mean
    for batch in schedule.micro_batches(state) if not stop else ():
        rows = collate(rows_of(train[batch.task], batch.rows), pad_id, tasks[batch.task].kind)
        inputs = {k: v.to(device) for k, v in rows.items()}
        labels = inputs.pop("labels")
        model.set_task(batch.task)
        # the regulariser is part of the loss, so it reaches this step's update (and the fp16 scaler)
        loss = model.loss(engine.forward(inputs).float(), labels)
        if fill_absent:
            model.head.fill_absent_gradients()
        stepped = engine.backward_and_step(loss, flush=batch.flush)
        accumulated.append(loss.detach())
        if stepped:
            state.step += 1
            step_loss = _global_mean(torch.stack(accumulated).mean(), world)
            accumulated.clear()
            state.losses.append(step_loss)
            state.step_times.append(time.time())
            if state.step % config.log_every_steps == 0 or state.step == 1:
                event = {"step": state.step, "epoch": batch.epoch, "task": batch.task, "train_loss": step_loss}
                notify("step", {**event, "learning_rate": engine.learning_rate()})
        schedule.advance(state, batch)
        if schedule.evaluation_due(state, batch, stepped):
            stop = evaluate_and_select(batch)
            model.train()
        if stop or state.step >= schedule.total_steps:
            break
    if not stop and state.last_eval_step != state.step:
        evaluate_and_select(None)
    result.history, result.steps, result.losses = state.history, state.step, state.losses
    result.step_times, result.evaluation_times = state.step_times, state.evaluation_times
    best = state.best or {"scores": {}, "selected": {}, "step": -1, "epoch": -1}
    result.best_epoch, result.best_step = best["epoch"], best["step"]
    # what selection compares: a joint run's mean over its tasks, a single task's own scores
    result.best_dev = dict(best["selected"]) if joint else dict(best["scores"].get(names[0], {}))

    def measured(result: TrialResult) -> TrialResult:  # what a stretch cost, and where it ran: a pause's too
        result.wall_seconds = elapsed() - already
        result.peak_memory_mb = provenance.peak_memory_mb(device)
        result.provenance = {**provenance.collect(device), "engine": config.engine, "world_size": world}
        return result

    if interrupted() and not (state.since_best >= config.patience):
        if pause_after is not None and state.evaluations >= pause_after:
            result.paused_at = state.evaluations
        return measured(result)  # interrupted on purpose: no restore, no test

    if best_state is not None:
        load_trainable_state(model, best_state, engine)
    trained_one = model.adapters is not None and model.transfer is None and model.adapter_role == "trained"
    if trained_one and model.adapters.num_adapters == 1 and not joint:  # a future source: is it in scale?
        scales = _source_scales(model, engine, train[names[0]], tasks[names[0]], config, pad_id, device)
        result.adapter_scale = scales.get(model.adapters.names[0], {})
    tests, tested, test_start = {}, 0, time.perf_counter()
    for task in names:
        model.set_task(task)
        tests[task] = test_scores(model, engine, tasks[task], data[task].splits, config, pad_id, record=not joint)
        tested += sum(len(split) for name, split in data[task].splits.items() if name.startswith("test"))
    # inference cost: a transfer model runs every source adapter here, as it would when deployed
    result.test_seconds_per_example = (time.perf_counter() - test_start) / max(tested, 1)
    for task in names:  # one entry per task, whatever the method: a single-task run is a joint run of one
        best_dev = best["scores"].get(task, {})
        result.tasks[task] = {"metric": tasks[task].metric, "best_dev": best_dev, "test": tests[task]}
    # the test scores flat: a joint run's under "<task>/<metric>"
    result.test = {f"{t}/{k}" if joint else k: v for t in names for k, v in tests[t].items()}
    if save_dir is not None:
        save_trained(Path(save_dir), model, engine, rank, metadata or {})
        recorded = model.transfer.recorded() if model.transfer is not None else None
        if recorded is not None and rank == 0:
            write_json(Path(save_dir) / "model" / ATTENTION, {"split": "test", **recorded})
    measured(result)
    notify("end", {"best_epoch": result.best_epoch, "best_step": result.best_step, "test": result.test})
    return result


def _source_scales(model, engine, train, task: TaskSpec, config: LoopConfig, pad_id: int, device) -> dict:
    """Each source's output against its layer's on the first training rows (``scalearn.source_scale``); warns about
    a swamping one. A transfer model's sources are measured before any step (and before a resumed run's checkpoint
    loads, so a resumed run records what an uninterrupted one does), a trained adapter once its best state is back.
    Left out under ZeRO-3, whose partitioned parameters a forward outside the engine's step would have to gather."""
    if engine.name == "deepspeed" and config.zero_stage == 3:
        return {}
    rows = collate(rows_of(train, list(range(min(config.batch_size, len(train))))), pad_id, task.kind)
    scales = source_scales(model, {k: v.to(device) for k, v in rows.items()}, forward=engine.forward)
    warn_if_swamping(scales)
    return scales


def _pause_after(evaluations: int, pause_at: float | None, checkpoint_dir) -> int | None:
    """The evaluation after which a run paused at a rung stops (None: it runs to its end)."""
    if pause_at is None or pause_at >= 1:
        return None
    if checkpoint_dir is None:
        raise ValueError("a run paused at a rung needs a checkpoint_dir to go on from")
    count = math.floor(evaluations * pause_at + 1e-9)
    if count < 1:
        raise ValueError(
            f"a rung at {pause_at:.3g} of the budget is shorter than one of this run's {evaluations} evaluations"
        )
    return count


def test_scores(model, engine, task: TaskSpec, splits, config: LoopConfig, pad_id: int, record: bool) -> dict:
    """The task's test split and its further reported ones ("test_mm" → "<metric>_mm"); with ``record``, the
    transfer layer records what it does on the test split (AdapterFusion: its attention)."""
    scores = {}
    for split in ["test", *task.extra_test_splits]:
        if split not in splits:
            continue
        recording = record and split == "test" and model.transfer is not None
        if recording:
            model.transfer.start_recording()
        found = evaluate_split(model, engine, task, splits[split], config, pad_id)
        if recording:
            model.transfer.stop_recording()
        scores.update({(k if split == "test" else f"{k}_{split[5:]}"): v for k, v in found.items()})
    return scores

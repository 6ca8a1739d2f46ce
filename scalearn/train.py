"""THE training loop: every method, every task, one code path (reference §2, §4.3, §8).

    setup     seed → model (head and ω init drawn from the seed) → data → optimizer and schedule
    train     per epoch: shuffled batches (order from (seed, epoch)), AdamW steps with clipping and
              accumulation, the regulariser in the same step's loss
    evaluate  on dev every epoch (or every N steps); keep the best state by dev loss or a task metric;
              stop after `patience` evaluations without improvement
    finish    restore the best state (every trainable tensor: ω of the ++ variants included) and score
              it on the test split(s)

The loop knows nothing of MLflow or Ray: it reports to an optional ``callback(event, payload)``.
Resuming: with ``checkpoint_dir`` set, every evaluation writes the trainable state, the optimizer,
the schedule, the best state so far and the RNG states; a restarted run continues from there on the
same loss curve.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from scalearn import provenance
from scalearn.checkpoint import load_checkpoint, load_trainable_state, save_checkpoint, trainable_state
from scalearn.engines import ENGINES
from scalearn.evaluation import evaluate
from scalearn.io import save_adapter, save_model, write_json
from scalearn.model import TransferModel
from scalearn.tasks.base import TaskSpec

Callback = Callable[[str, dict], None]
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """How to train; defaults come from the method (``TrainConfig.for_method``), overrides from the trial."""

    learning_rate: float = 3e-4
    epochs: int = 30
    patience: int = 5
    batch_size: int = 32
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0
    gradient_accumulation: int = 1
    max_steps: int | None = None
    """Stop after this many optimizer steps (few-shot: 1,000, reference §4.5)."""
    eval_every_steps: int | None = None
    """Evaluate every N optimizer steps instead of every epoch."""
    sampling_temperature: float = 1.0
    """Joint multi-task runs: task sampling p_t ∝ n_t^(1/T) (``scalearn.joint``)."""
    select_by: str = "auto"
    """'loss' (dev loss), 'metric' (the task's reported metric), or 'auto': metric for HumSet, loss else."""
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    engine: str = "torch"
    """'torch', or 'deepspeed' (ZeRO; multi-process under a launcher or Ray Train)."""
    zero_stage: int = 2
    offload_optimizer: bool = False
    zero3_persistence_threshold: int = 100_000
    """ZeRO-3 keeps parameters smaller than this whole on every rank (DeepSpeed's default)."""
    eval_batch_size: int = 64
    seed: int = 0
    log_every_steps: int = 20

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {sorted(ENGINES)}, got {self.engine!r}")
        if self.zero_stage not in (0, 1, 2, 3):
            raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {self.zero_stage}")
        if self.select_by not in ("auto", "loss", "metric"):
            raise ValueError(f"select_by must be 'auto', 'loss' or 'metric', got {self.select_by!r}")

    @classmethod
    def for_method(cls, method, **overrides) -> TrainConfig:
        """The method's paper defaults (LR, epochs, patience, …; a joint method's steps and sampling too), then
        ``overrides``."""
        shared = {
            k: getattr(method, k)
            for k in (
                "learning_rate",
                "epochs",
                "patience",
                "batch_size",
                "weight_decay",
                "warmup_ratio",
                "max_grad_norm",
            )
        }
        shared.update(
            {
                k: getattr(method, k)
                for k in ("max_steps", "eval_every_steps", "sampling_temperature")
                if hasattr(method, k)
            }
        )
        return cls(**{**shared, **overrides})


@dataclass
class TrainResult:
    task: str
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_step: int = -1
    best_dev: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    selected_by: str = "loss"
    selects_on_test: bool = False
    parameters: dict = field(default_factory=dict)
    steps: int = 0
    wall_seconds: float = 0.0
    peak_memory_mb: float = 0.0
    data_key: str = ""
    losses: list[float] = field(default_factory=list)
    """Training loss of every optimizer step."""
    tasks: dict = field(default_factory=dict)
    """Joint multi-task runs: per task, its best dev scores, test scores and main metric."""
    provenance: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


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


def batches(split, batch_size: int, pad_id: int, kind: str, order: list[int] | None = None):
    indices = order if order is not None else list(range(len(split)))
    for start in range(0, len(indices), batch_size):
        rows = split.select(indices[start : start + batch_size])
        yield collate(list(rows), pad_id, kind)


def shard(order: list[int], batch_size: int, rank: int, world: int) -> list[int]:
    """This rank's share of every global batch, so N ranks see exactly the batches of one rank.

    With several ranks the last, incomplete global batch is dropped (every rank must take part in every
    step)."""
    if world == 1:
        return order
    share = batch_size // world
    mine = []
    for start in range(0, len(order) - batch_size + 1, batch_size):
        mine.extend(order[start + rank * share : start + (rank + 1) * share])
    return mine


def _global_mean(value: torch.Tensor, world: int) -> float:
    """A rank's loss averaged over the ranks: the loss of the global batch, for the record."""
    if world > 1:
        value = value.clone()
        torch.distributed.all_reduce(value)
        value /= world
    return value.item()


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of an epoch: a function of (seed, epoch) only, so a resumed run sees the same."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(size, generator=generator).tolist()


# -- evaluation and state ---------------------------------------------------------------------------


@torch.no_grad()
def evaluate_split(model: TransferModel, engine, task: TaskSpec, split, config: TrainConfig, pad_id: int) -> dict:
    """Mean loss (regulariser excluded) and every task metric on one split."""
    model.eval()
    logits, total, count = [], 0.0, 0
    for batch in batches(split, config.eval_batch_size, pad_id, task.kind):
        batch = {k: v.to(engine.device) for k, v in batch.items()}
        labels = batch.pop("labels")
        out = engine.forward(batch)
        total += model.head.loss(out.float(), labels).item() * len(labels)
        count += len(labels)
        logits.append(out.float().cpu())
    return {"loss": total / max(count, 1), **evaluate(task, split, torch.cat(logits))}


def book_evaluation(
    progress: dict,
    record: dict,
    best: dict | None,
    best_state,
    *,
    model,
    engine,
    config,
    checkpoint: Path | None,
    notify,
    stop_after_evaluations: int | None,
):
    """Book one evaluation in ``progress`` (``best``: the new best entry, or None when it is no better), keep the
    best state, notify, checkpoint. Returns (stop?, best state): out of patience, or interrupted on purpose."""
    progress["history"].append(record)
    progress["evaluations"] += 1
    progress["last_eval_step"] = progress["step"]
    if best is not None:
        progress["best"], progress["since_best"] = best, 0
        best_state = trainable_state(model, engine)
    else:
        progress["since_best"] += 1
    notify("evaluation", record)
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, engine.optimizer, engine.scheduler, progress, best_state)
    out_of_patience = progress["since_best"] >= config.patience
    interrupted = stop_after_evaluations is not None and progress["evaluations"] >= stop_after_evaluations
    return out_of_patience or interrupted, best_state


def _better(candidate: dict, best: dict | None, key: str) -> bool:
    if best is None:
        return True
    return candidate[key] < best[key] if key == "loss" else candidate[key] > best[key]


def save_trained(directory: Path, model: TransferModel, engine, rank: int, metadata: dict) -> None:
    """Write the model's own state (and a single-task trained adapter as a stage-1 artifact), gathered whole."""
    owned = [model.head, model.transfer, model.tuner]
    if model.adapters is not None and model.adapter_role != "sources":
        owned.append(model.adapters)
    if any(p.requires_grad for p in model.encoder.parameters()):
        owned.append(model.encoder)
    parameters = [p for module in owned if module is not None for p in module.parameters()]
    with engine.gathered(parameters):
        if rank == 0:
            save_model(directory / "model", model, metadata=metadata)
            if model.adapters is not None and model.adapter_role == "trained" and model.tasks is None:
                save_adapter(directory / "adapter", model.adapters, metadata=metadata)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


# -- the loop ---------------------------------------------------------------------------------------


def prepare(model: TransferModel, config: TrainConfig, device, checkpoint_dir) -> torch.device:
    """Move the model to its device, check the precision and resuming fit, switch on gradient checkpointing."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    if config.precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
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
    task: TaskSpec,
    data,
    config: TrainConfig,
    *,
    callback: Callback | None = None,
    checkpoint_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    save_dir: str | Path | None = None,
    metadata: dict | None = None,
    stop_after_evaluations: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``task`` (``data``: a TokenizedData from scalearn.data), return the result.

    With ``save_dir``, the restored best model is saved there (``model/``, and ``adapter/`` when the model
    trained its own adapter: the stage-1 artifact), its partitions gathered first under ZeRO-3.
    ``stop_after_evaluations`` ends the run early without finishing it, as a crash would (for tests of
    resuming).
    """
    start = time.perf_counter()
    device = prepare(model, config, device, checkpoint_dir)
    notify = callback or (lambda event, payload: None)
    splits = data.splits
    train = splits["train"]
    pad_id = model.encoder.config.pad_token_id or 0
    select_by = config.select_by
    if select_by == "auto":
        select_by = "metric" if task.benchmark == "humset" else "loss"
    select_key = "loss" if select_by == "loss" else task.metric
    batches_per_epoch = math.ceil(len(train) / config.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    engine = ENGINES[config.engine](model, config, total_steps, device)
    rank, world = _rank_and_world()
    if world > 1:
        batches_per_epoch = len(train) // config.batch_size  # every rank needs its share of every batch

    result = TrainResult(
        task=task.name,
        selected_by=select_by,
        selects_on_test=task.selects_on_test,
        parameters=model.parameter_counts(),
        data_key=getattr(data, "key", ""),
        config=asdict(config),
    )
    progress = {
        "epoch": 0,
        "position": 0,
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
        notify("resume", {"epoch": progress["epoch"], "step": progress["step"]})

    def evaluate_and_select(epoch: int) -> bool:
        """Evaluate on dev, keep the best state, checkpoint; True when training should stop."""
        nonlocal best_state
        dev = evaluate_split(model, engine, task, splits["dev"], config, pad_id)
        record = {"epoch": epoch, "step": progress["step"], **{f"dev_{k}": v for k, v in dev.items()}}
        best = {**dev, "epoch": epoch, "step": progress["step"]} if _better(dev, progress["best"], select_key) else None
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

    def finished() -> bool:
        return progress["epoch"] >= config.epochs or progress["step"] >= total_steps

    stop = progress["since_best"] >= config.patience
    while not stop and not finished():
        epoch = progress["epoch"]
        model.train()
        order = shard(epoch_order(len(train), config.seed, epoch), config.batch_size, rank, world)
        micro_batch = config.batch_size // world
        skip = progress.get("position", 0) * micro_batch  # resuming mid-epoch
        for batch in batches(train, micro_batch, pad_id, task.kind, order[skip:]):
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            logits = engine.forward(batch)
            # the regulariser is part of the loss, so it reaches this step's update (and the fp16 scaler)
            loss = model.loss(logits.float(), labels)
            progress["position"] = progress.get("position", 0) + 1
            if not engine.backward_and_step(loss, flush=progress["position"] == batches_per_epoch):
                continue
            progress["step"] += 1
            step_loss = _global_mean(loss.detach(), world)
            progress["losses"].append(step_loss)
            if progress["step"] % config.log_every_steps == 0 or progress["step"] == 1:
                notify(
                    "step",
                    {
                        "step": progress["step"],
                        "epoch": epoch,
                        "train_loss": step_loss,
                        "learning_rate": engine.learning_rate(),
                    },
                )
            if config.eval_every_steps and progress["step"] % config.eval_every_steps == 0:
                stop = evaluate_and_select(epoch)
            if stop or progress["step"] >= total_steps:
                break
        else:
            progress["epoch"], progress["position"] = epoch + 1, 0  # the epoch ran to its end
        if stop:
            break
        if progress["step"] >= total_steps:
            progress["epoch"], progress["position"] = epoch + 1, 0
        if not config.eval_every_steps or (finished() and progress["last_eval_step"] != progress["step"]):
            stop = evaluate_and_select(epoch)
    result.history, result.steps, result.losses = progress["history"], progress["step"], progress["losses"]
    if stop_after_evaluations is not None and progress["evaluations"] >= stop_after_evaluations:
        return result  # interrupted on purpose: no restore, no test

    if best_state is not None:
        load_trainable_state(model, best_state, engine)
    best = progress["best"] or {}
    result.best_epoch, result.best_step = best.get("epoch", -1), best.get("step", -1)
    result.best_dev = {k: v for k, v in best.items() if k not in ("epoch", "step")}
    recording = hasattr(model.transfer, "record_attention")  # AdapterFusion: its attention over the test split
    if recording:
        model.transfer.record_attention, model.transfer.attention, model.transfer.attention_tokens = True, {}, {}
    for name in ["test", *task.extra_test_splits]:
        if name in splits:
            scores = evaluate_split(model, engine, task, splits[name], config, pad_id)
            result.test.update({(k if name == "test" else f"{k}_{name[5:]}"): v for k, v in scores.items()})
        if recording:
            model.transfer.record_attention = False
    if save_dir is not None:
        save_trained(Path(save_dir), model, engine, rank, metadata or {})
        if recording and rank == 0 and model.transfer.attention:
            write_json(
                Path(save_dir) / "model" / "attention.json",
                {"split": "test", "mean_attention": model.transfer.mean_attention()},
            )
    result.wall_seconds = time.perf_counter() - start
    result.peak_memory_mb = provenance.peak_memory_mb(device)
    result.provenance = {**provenance.collect(device), "engine": config.engine, "world_size": world}
    notify("end", {"best_epoch": result.best_epoch, "test": result.test})
    return result

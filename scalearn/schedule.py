"""Which batch comes next, and when to evaluate: the one thing single-task and joint runs do differently.

    EpochSchedule     one task: epochs over its training split, each shuffled by (seed, epoch); evaluation
                      after every epoch, or every N steps; the paper's single-task protocol
    SampledSchedule   several tasks (joint multi-task baselines, docs/method.md §3 notes): every micro-batch
                      belongs to one task, drawn with p_t ∝ n_t^(1/T) (T = 1: proportional to the task's
                      training set); each task walked in shuffled passes without replacement; evaluation
                      every N steps (default: one pass over the tasks' batches)

Both are functions of the seed and the run state alone, so a resumed run sees exactly the batches it would
have seen. Both share a global batch over ranks so that N ranks take exactly the steps of one rank (an
incomplete batch is dropped with several ranks: every rank must take part in every step).

Where ScaLearn's joint sampler differs (src/tasks/multitask_sampler.py): it draws a batch's examples
uniformly with replacement and seeds its draws with the epoch alone (the same batches for every training
seed); the task draws, p_t ∝ n_t^(1/T) per batch, are the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch


@dataclass
class RunState:
    """Where a run stands; written with every checkpoint, so a restarted run continues from it."""

    step: int = 0
    """Optimizer steps taken."""
    epoch: int = 0
    """Single task: the epoch in progress (joint runs count passes by steps)."""
    position: int = 0
    """Micro-batches taken: in the epoch in progress (single task), in the whole run (joint)."""
    evaluations: int = 0
    since_best: int = 0
    last_eval_step: int = -1
    best: dict | None = None
    """The best evaluation so far: its scores per task, what it selected on, its step and epoch."""
    history: list[dict] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    """Training loss of every optimizer step."""
    step_times: list[float] = field(default_factory=list)
    """When each optimizer step ended (Unix seconds), for the trackers' time axes."""
    evaluation_times: list[float] = field(default_factory=list)
    """When each evaluation of ``history`` ended (Unix seconds)."""
    seconds: float = 0.0
    """The run's own time up to this checkpoint, over every stretch it ran (a run stopped midway and resumed, or
    paused at rungs of successive halving)."""
    recorded_seconds: float = 0.0
    """Of ``seconds``, what the record of a pause already counts: the next stretch's record counts the rest."""


@dataclass
class MicroBatch:
    task: str
    rows: list[int]
    """Example indices into the task's training split (this rank's share)."""
    epoch: int
    flush: bool = False
    """Take an optimizer step after this micro-batch whatever the accumulation count (an epoch's last)."""
    ends_epoch: bool = False


def epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of an epoch: a function of (seed, epoch) only, so a resumed run sees the same."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(size, generator=generator).tolist()


def shard(order: list[int], batch_size: int, rank: int, world: int) -> list[int]:
    """This rank's share of every global batch, so N ranks see exactly the batches of one rank."""
    if world == 1:
        return order
    share = batch_size // world
    mine = []
    for start in range(0, len(order) - batch_size + 1, batch_size):
        mine.extend(order[start + rank * share : start + (rank + 1) * share])
    return mine


class EpochSchedule:
    """One task, epoch by epoch."""

    def __init__(self, task: str, size: int, config, seed: int, rank: int = 0, world: int = 1):
        self.task, self.size, self.config, self.seed, self.rank, self.world = task, size, config, seed, rank, world
        # several ranks take whole global batches only (`shard`): the steps are planned from what they take
        batches = size // config.batch_size if world > 1 else math.ceil(size / config.batch_size)
        if batches < 1:
            raise ValueError(
                f"task {task!r}: its training split ({size}) is smaller than one batch ({config.batch_size}) on "
                f"{world} ranks"
            )
        steps_per_epoch = math.ceil(batches / config.gradient_accumulation)
        self.total_steps = steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self._steps_per_epoch = steps_per_epoch
        self.batches_per_epoch = batches

    def micro_batches(self, state: RunState) -> Iterator[MicroBatch]:
        micro = self.config.batch_size // self.world
        while not self.finished(state):
            epoch = state.epoch
            order = shard(epoch_order(self.size, self.seed, epoch), self.config.batch_size, self.rank, self.world)
            starts = range(state.position * micro, len(order), micro)  # resuming mid-epoch: skip what was taken
            for index, start in enumerate(starts, start=state.position + 1):
                last = index == self.batches_per_epoch
                yield MicroBatch(self.task, order[start : start + micro], epoch, flush=last, ends_epoch=last)

    def advance(self, state: RunState, batch: MicroBatch) -> None:
        state.position += 1
        if batch.ends_epoch or state.step >= self.total_steps:
            state.epoch, state.position = batch.epoch + 1, 0

    def finished(self, state: RunState) -> bool:
        return state.epoch >= self.config.epochs or state.step >= self.total_steps

    def evaluation_due(self, state: RunState, batch: MicroBatch, stepped: bool) -> bool:
        every = self.config.eval_every_steps
        if every is None:
            return batch.ends_epoch or state.step >= self.total_steps
        if stepped and state.step % every == 0:
            return True
        return self.finished(state) and state.last_eval_step != state.step

    def epoch_of(self, state: RunState, batch: MicroBatch | None) -> float:
        return batch.epoch if batch is not None else state.epoch

    def evaluations(self) -> int:
        """How many times a run that never runs out of patience evaluates on dev: once per epoch it starts, or
        every ``eval_every_steps`` and at its last step."""
        every = self.config.eval_every_steps or self._steps_per_epoch
        return math.ceil(self.total_steps / every)


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


class SampledSchedule:
    """Several tasks, a task drawn for every micro-batch. Steps: at most ``max_steps``, and at most ``epochs``
    passes over the sum of the tasks' batches."""

    def __init__(self, splits: dict[str, object], config, seed: int, rank: int = 0, world: int = 1):
        self.names, self.config = list(splits), config
        self.streams = TaskStreams(splits, config.batch_size, seed, rank, world)
        batches_per_pass = sum(self.streams.batches_per_pass.values())
        self.steps_per_pass = math.ceil(batches_per_pass / config.gradient_accumulation)
        self.total_steps = self.steps_per_pass * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.eval_every = config.eval_every_steps or self.steps_per_pass
        sizes = {task: len(split) for task, split in splits.items()}
        length = self.total_steps * config.gradient_accumulation
        self.draws = task_schedule(sizes, config.sampling_temperature, seed, length).tolist()

    def micro_batches(self, state: RunState) -> Iterator[MicroBatch]:
        taken = [0] * len(self.names)  # how many batches of each task the run has taken so far
        for index in self.draws[: state.position]:
            taken[index] += 1
        while state.step < self.total_steps:
            index = self.draws[state.position]
            task = self.names[index]
            rows = self.streams.rows(task, index, taken[index])
            taken[index] += 1
            yield MicroBatch(task, rows, epoch=0)

    def advance(self, state: RunState, batch: MicroBatch) -> None:
        state.position += 1

    def finished(self, state: RunState) -> bool:
        return state.step >= self.total_steps

    def evaluation_due(self, state: RunState, batch: MicroBatch, stepped: bool) -> bool:
        return stepped and (state.step % self.eval_every == 0 or state.step >= self.total_steps)

    def evaluations(self) -> int:
        """How many times a run that never runs out of patience evaluates: every ``eval_every`` steps and at its
        last step."""
        return math.ceil(self.total_steps / self.eval_every)

    def epoch_of(self, state: RunState, batch: MicroBatch | None) -> float:
        return state.step / self.steps_per_pass

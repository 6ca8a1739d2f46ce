"""Experiment files: YAML → a validated ExperimentSpec, or one line `FILE:key.path: what is wrong (expected)`.

version: 1
name: glue-roberta-base          # the MLflow experiment; default: the file's stem
include: base.yaml               # optional; a top-level key here replaces the included file's whole (not merged)
models: [roberta-base]
methods: [adapter, adapterfusion, scalearn, scalearn_pp]
benchmark: glue                  # or `tasks: [...]` (then sources default to those tasks)
targets: [rte, mrpc]             # default: every task of the benchmark
sources: [mnli, qnli, rte]       # default: every task of the benchmark; the target's own goes last
seeds: 3                         # a count (0..n-1) or a list
seeds_per_task: {rte: 10}        # the paper: 10 seeds for small tasks, 3 for large ones
joint_seeds: 3                   # joint multi-task methods (FT-m, HyperFormer, …): one trial per seed trains
                                 # every task of `tasks`/`benchmark` at once; default: `seeds`
source_seed: 0                   # stage-1 adapters used as sources (the paper always uses seed 0)
hyperparameters:                 # per method, or `all`; method fields or training-loop fields
  all: {epochs: 30}
  scalearn: {learning_rate: 0.006}
search:                          # per method, or `all`: values per hyper-parameter, chosen on dev
  all: {learning_rate: [0.0001, 0.001, 0.01]}   # a grid: every combination of the lists
  # sampler: random                # or tpe (Optuna): `trials` points per group, drawn with `seed`; a field
  # trials: 8                      # may then be a range, e.g. learning_rate: {low: 0.0001, high: 0.01, log: true}
search_seeds: 1                  # seeds each point trains (the first final seeds); the chosen point then
                                 # trains every seed (a search trial at a final seed is that final trial)
model_hyperparameters:           # per backbone (a name of `models`): what must change with its size; these
  roberta-large: {batch_size: 16, gradient_accumulation: 2}   # win over `hyperparameters` and a task's block
data: {max_length: 128, few_shot: null, max_dev_examples: null}   # the paper's few-shot runs: 5000
resources: {cpus: 1, gpus: 0, memory_gb: 4}
model_resources:                 # per backbone: what one of its trials needs instead (unset keys: `resources`)
  roberta-large: {gpus: 1, memory_gb: 16}
source_adapters:                 # sources trained elsewhere, in place of their stage-1 trials: a folder (ours,
  rte: AdapterHub/roberta-base-pf-rte   # AdapterHub's or PEFT's layout; relative: to this file) or a hub id;
  mnli: {roberta-base: ./adapters/mnli} # per backbone where the sweep has several
retries: 1
checkpoint_every: 1              # evaluations between a trial's checkpoints, which a stopped trial goes on from;
                                 # 0: none (a stopped trial starts again), but successive halving's pauses

The package in three parts: `schema` (the typed file), `checks` (what needs the registries: names that
exist, values that fit, sets that agree), `loading` (YAML, `include`, `--set` overrides and the one-line
errors).
"""

from harness.spec.checks import semantic_errors
from harness.spec.loading import apply_overrides, load_spec, parse_override
from harness.spec.schema import (
    SPEC_VERSION,
    DataOptions,
    ExperimentSpec,
    ModelResources,
    Range,
    Resources,
    SearchSpec,
    SpecError,
)

__all__ = [
    "SPEC_VERSION",
    "DataOptions",
    "ExperimentSpec",
    "ModelResources",
    "Range",
    "Resources",
    "SearchSpec",
    "SpecError",
    "apply_overrides",
    "load_spec",
    "parse_override",
    "semantic_errors",
]

"""Task data: load the raw splits, apply the paper's protocol, build examples, tokenise once.

Where raw data comes from, in this order:
1. a local folder in the hub's own layout, ``DATA_DIR/<hub id>/<config>/<split>-*.parquet``, given as
   ``data_dir`` or by ``SCALEARN_DATA_DIR`` (what ``harness data prepare`` writes; for clusters without
   internet);
2. the Hugging Face cache or hub, through ``datasets.load_dataset(hub_id, config)``;
3. for data shipped in packages or generated (the offline and synthetic benchmarks), the task's loader.

Tokenised splits are cached as Arrow files under ``CACHE_DIR/tokenized/<task>/<key>``, where the key
hashes the task (name, version, protocol, max length, few-shot k), the tokenizer and the raw source.
An entry is written to a temporary folder and renamed into place, so concurrent workers never see a
half-written entry, and changing any part of the key makes a new entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scalearn.atomic import atomic_write
from scalearn.tasks import get_task
from scalearn.tasks.base import EXAMPLE_COLUMNS, TaskSpec

DATA_DIR_ENV, CACHE_DIR_ENV = "SCALEARN_DATA_DIR", "SCALEARN_CACHE_DIR"
SPLIT_SEED, DEV_FRACTION = 42, 0.1  # docs/method.md §4.1
FEW_SHOT_SIZES = (4, 16, 32, 100)  # docs/method.md §4.5
CACHE_FORMAT = 1


class DataNotAvailableError(RuntimeError):
    """A task's raw data is neither in the data folder, nor in the HF cache, nor reachable on the hub."""


# -- raw data ---------------------------------------------------------------------------------------


def _raw_split_names(task: TaskSpec) -> list[str]:
    return list(dict.fromkeys(task.splits.values()))


def local_folder(task: TaskSpec, data_dir: str | Path) -> Path:
    return Path(data_dir) / task.dataset / (task.config or "default")


def _local_files(task: TaskSpec, data_dir: str | Path) -> dict[str, list[str]] | None:
    folder = local_folder(task, data_dir)
    if not folder.is_dir():
        return None
    files = {split: sorted(str(p) for p in folder.glob(f"{split}-*.parquet")) for split in _raw_split_names(task)}
    missing = [split for split, paths in files.items() if not paths]
    if missing:
        raise DataNotAvailableError(
            f"task {task.name}: {folder} lacks split(s) {', '.join(missing)} ({missing[0]}-*.parquet)"
        )
    return files


def load_raw(task: TaskSpec, data_dir: str | Path | None = None):
    """The raw splits a task needs, keyed by their names in the source (``task.splits`` values)."""
    from datasets import DatasetDict, load_dataset

    if task.loader is not None:
        return task.loader()
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV)
    if data_dir and (files := _local_files(task, data_dir)) is not None:
        return load_dataset("parquet", data_files=files)
    try:
        loaded = load_dataset(task.dataset, task.config)
    except Exception as error:  # offline, not cached, wrong id: datasets raises many types here
        looked = f"{local_folder(task, data_dir)} and " if data_dir else ""
        raise DataNotAvailableError(
            f"task {task.name}: raw data {task.dataset}/{task.config} not found in {looked}the HF cache, and the hub "
            f"is not reachable ({error.__class__.__name__}); on a machine with internet run "
            f"`harness data prepare {task.name} --out DIR`, then pass --data-dir DIR or set {DATA_DIR_ENV}=DIR"
        ) from None
    return DatasetDict({split: loaded[split] for split in _raw_split_names(task)})


def source_fingerprint(task: TaskSpec, data_dir: str | Path | None = None) -> str:
    """A cheap identity of the raw data: file names, sizes and times, or the task's own version."""
    from importlib.metadata import PackageNotFoundError, version

    if task.loader is not None:
        package = getattr(task.loader, "package", None)
        try:
            package_version = version(package) if package else ""
        except PackageNotFoundError:
            package_version = "missing"
        return f"loader:{task.name}:v{task.version}:{package}={package_version}"
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV)
    if data_dir and (files := _local_files(task, data_dir)) is not None:
        stats = [(Path(p).name, os.stat(p).st_size, os.stat(p).st_mtime_ns) for paths in files.values() for p in paths]
        return "local:" + hashlib.sha256(json.dumps(sorted(stats)).encode()).hexdigest()[:16]
    raw = load_raw(task, data_dir)
    return "hub:" + hashlib.sha256("".join(raw[s]._fingerprint for s in sorted(raw)).encode()).hexdigest()[:16]


# -- the paper's protocol ---------------------------------------------------------------------------


def protocol_splits(task: TaskSpec, raw):
    """train / dev / test (and extra test sets such as MNLI's test_mm) as the paper builds them."""
    from datasets import ClassLabel, DatasetDict

    train = raw[task.splits["train"]]
    extra = {name: raw[source] for name, source in task.extra_test_splits.items()}
    if task.protocol == "official":
        return DatasetDict({"train": train, "dev": raw[task.splits["dev"]], "test": raw[task.splits["test"]], **extra})
    test = raw[task.splits["test"]]
    if task.protocol == "record":  # full train; dev = test = the official validation set
        return DatasetDict({"train": train, "dev": test, "test": test, **extra})
    stratify = None
    if task.stratify:
        if not isinstance(train.features[task.label_field], ClassLabel):
            train = train.cast_column(task.label_field, ClassLabel(num_classes=task.num_labels))
        stratify = task.label_field
    parts = train.train_test_split(test_size=DEV_FRACTION, seed=SPLIT_SEED, stratify_by_column=stratify)
    return DatasetDict({"train": parts["train"], "dev": parts["test"], "test": test, **extra})


def few_shot(train, k: int, sample: str = "first"):
    """k examples of the (90%) train split, the same for every seed (docs/method.md §4.5): the first, or
    (``sample="spread"``) those whose text hashes first, kept in the split's order."""
    if k < 1:
        raise ValueError(f"few-shot k must be >= 1, got {k}")
    return train.select(sampled_rows(train, k, sample))


SAMPLE_SALT = "scalearn-sample-v1"


def sampled_rows(split, count: int, sample: str) -> list[int]:
    """The indices of the ``count`` rows ``sample`` keeps (`DataConfig.sample`), in the split's order."""
    count = min(count, len(split))
    if sample == "first":
        return list(range(count))
    if sample != "spread":
        raise ValueError(f"sample {sample!r}: expected 'first' or 'spread'")
    texts = split["text"] if "text" in split.column_names else [str(row) for row in split]
    ranked = sorted(range(len(split)), key=lambda i: (hashlib.sha256(f"{SAMPLE_SALT}|{texts[i]}".encode()).digest(), i))
    return sorted(ranked[:count])


def to_examples(task: TaskSpec, split):
    """Rows of a raw split → the shared example columns (see scalearn.tasks.base)."""
    # our own cache keys the result; a fingerprint given here spares datasets from hashing the function
    fingerprint = hashlib.sha256(f"{split._fingerprint}:{task.name}:v{task.version}".encode()).hexdigest()[:16]
    examples = split.map(task.preprocess, batched=True, remove_columns=split.column_names, new_fingerprint=fingerprint)
    missing = set(EXAMPLE_COLUMNS) - set(examples.column_names)
    if missing:
        raise ValueError(f"task {task.name}: preprocessing did not produce {sorted(missing)}")
    return examples


def task_examples(
    task: TaskSpec | str,
    data_dir=None,
    few_shot_k: int | None = None,
    max_dev: int | None = None,
    sample: str = "first",
):
    """DatasetDict of examples per split (train, dev, test, …) under the paper's protocol; ``max_dev``: only the
    first rows of the dev split (the few-shot runs' cap, docs/method.md §4.5); ``sample``: which rows both keep
    (`DataConfig.sample`)."""
    from datasets import DatasetDict

    task = get_task(task) if isinstance(task, str) else task
    splits = protocol_splits(task, load_raw(task, data_dir))
    if few_shot_k is not None:
        whole, splits["train"] = splits["train"], few_shot(splits["train"], few_shot_k, sample)
        if few_shot_k > len(whole):
            logging.getLogger(__name__).warning(
                "%s: few_shot %d is more than its %d training rows: all are used", task.name, few_shot_k, len(whole)
            )
        if task.kind == "classification" and "label" in whole.column_names:
            kept, every = set(splits["train"]["label"]), set(whole["label"])
            if len(kept) == 1 < len(every):  # a split stored by label: the first rows are one class
                raise ValueError(
                    f"task {task.name}: the {len(splits['train'])} training rows data.sample {sample!r} keeps hold "
                    f"only label {kept.pop()} of its {len(every)}; set data.sample: spread (a fixed sample spread "
                    "over the split)"
                )
    if max_dev is not None and "dev" in splits:
        splits["dev"] = splits["dev"].select(sampled_rows(splits["dev"], max_dev, sample))
    return DatasetDict({name: to_examples(task, split) for name, split in splits.items()})


# -- tokenise once ----------------------------------------------------------------------------------


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of everything that decides a tokenizer's output: its class, vocabulary and rules."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        # calling a tokenizer leaves its last truncation/padding settings in the backend; not identity
        state.pop("truncation", None), state.pop("padding", None)
        body = json.dumps(state, sort_keys=True)
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    digest.update(body.encode())
    digest.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _tokenize_batch(batch: dict, tokenizer, max_length: int, task: TaskSpec) -> dict:
    truncation = "only_first" if task.protocol == "record" else True  # ReCoRD truncates the passage
    if task.kind == "multiple_choice":
        encoded: dict[str, list] = {}
        for text, choices in zip(batch["text"], batch["choices"], strict=True):
            per_choice = tokenizer([text] * len(choices), choices, truncation=truncation, max_length=max_length)
            for key in ("input_ids", "attention_mask", "token_type_ids"):
                if key in per_choice:
                    encoded.setdefault(key, []).append(per_choice[key])
        return encoded
    pairs = batch["text_pair"] if any(batch["text_pair"]) else None
    encoded = tokenizer(batch["text"], pairs, truncation=truncation, max_length=max_length)
    return {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded}


@dataclass
class TokenizedData:
    splits: object  # DatasetDict: input_ids, attention_mask[, token_type_ids], label, group, candidate, answers
    key: str
    path: Path
    hit: bool
    seconds: float
    manifest: dict


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "scalearn")


def cache_key(
    task: TaskSpec,
    tokenizer_fp: str,
    max_length: int,
    few_shot_k: int | None,
    source_fp: str,
    max_dev: int | None = None,
    sample: str = "first",
) -> str:
    parts = {
        "format": CACHE_FORMAT,
        "task": task.name,
        "task_version": task.version,
        "protocol": task.protocol,
        "split_seed": SPLIT_SEED,
        "dev_fraction": DEV_FRACTION,
        "stratify": task.stratify,
        "max_length": max_length,
        "few_shot": few_shot_k,
        "tokenizer": tokenizer_fp,
        "source": source_fp,
    }
    if max_dev is not None:  # (entries cut before this option existed keep their keys)
        parts["max_dev"] = max_dev
    if sample != "first":  # (likewise)
        parts["sample"] = sample
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def tokenized_task(
    task: TaskSpec | str,
    tokenizer,
    *,
    max_length: int | None = None,
    few_shot_k: int | None = None,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    max_dev: int | None = None,
    sample: str = "first",
) -> TokenizedData:
    """The task's tokenised splits, from the cache when this exact entry exists, else built and cached."""
    from datasets import DatasetDict, load_from_disk
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()  # a sweep runs thousands of these; the harness shows its own progress
    start = time.perf_counter()
    task = get_task(task) if isinstance(task, str) else task
    max_length = max_length or task.max_length
    source = source_fingerprint(task, data_dir)
    key = cache_key(task, tokenizer_fingerprint(tokenizer), max_length, few_shot_k, source, max_dev, sample)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / "tokenized" / task.name / key
    hit = (final / "manifest.json").exists()
    if not hit:
        examples = task_examples(task, data_dir, few_shot_k, max_dev, sample)
        tokenized = DatasetDict(
            {
                name: split.map(
                    _tokenize_batch,
                    batched=True,
                    fn_kwargs={"tokenizer": tokenizer, "max_length": max_length, "task": task},
                    remove_columns=["text", "text_pair", "choices"],
                    new_fingerprint=hashlib.sha256(f"{key}:{name}".encode()).hexdigest()[:16],
                )
                for name, split in examples.items()
            }
        )
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}."))
        try:
            tokenized.save_to_disk(str(staging / "data"))
            manifest = {
                "key": key,
                "task": task.name,
                "max_length": max_length,
                "few_shot": few_shot_k,
                "max_dev": max_dev,
                "sample": sample,
                "sizes": {name: len(split) for name, split in tokenized.items()},
                "selects_on_test": task.selects_on_test,
            }
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
            os.rename(staging, final)  # atomic; fails if another worker got there first
        except OSError:
            if not (final / "manifest.json").exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    manifest = json.loads((final / "manifest.json").read_text())
    splits = load_from_disk(str(final / "data"))
    return TokenizedData(splits, key, final, hit, time.perf_counter() - start, manifest)


# -- for clusters without internet ------------------------------------------------------------------


def prepare(task: TaskSpec | str, out: str | Path, data_dir: str | Path | None = None) -> list[Path]:
    """Write a task's raw splits in the hub's layout under ``out``, for use as a data folder elsewhere.

    Run where the hub (or an HF cache holding the data) is reachable. Tasks whose data ships in packages or
    is generated need nothing and write nothing.
    """
    task = get_task(task) if isinstance(task, str) else task
    if task.loader is not None:
        return []
    raw = load_raw(task, data_dir)
    folder = local_folder(task, out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for split in _raw_split_names(task):
        path = folder / f"{split}-00000-of-00001.parquet"
        atomic_write(path, lambda tmp, split=split: raw[split].to_parquet(tmp))
        written.append(path)
    return written

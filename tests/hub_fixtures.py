"""Schema-exact synthetic stand-ins for the Hugging Face datasets used by ScaLearn (docs/method.md §4.1).

Nothing here touches the network. ``HUB_SCHEMAS`` records, per ``(hub_id, config)``, the features and split
names of the dataset as the hub serves it today; ``write_hub_fixture`` writes small synthetic data with exactly
those features as parquet files (features embedded in the parquet metadata by ``Dataset.to_parquet``) in the
layout ``root/<hub_id>/<config>/<split>-00000-of-00001.parquet``.

Where the schemas come from (looked up in stored copies of public material, not live):

* ``nyu-mll/glue`` -- confirmed. The hub card's ``dataset_info`` / ``configs`` YAML (nyu-mll/glue ``README.md``
  after the parquet conversion: feature order ``<text columns>, label, idx``; split names; data_files patterns
  ``<config>/<split>-*``) and ``huggingface/datasets:datasets/glue/glue.py`` (``_info``: text columns as
  ``string``, ``label`` a ``ClassLabel`` or ``float32`` for STS-B, ``idx`` ``int32``; unlabeled test rows get
  ``label = -1``, i.e. ``-1.0`` for STS-B).
  Real layout (main branch): ``<config>/<split>-00000-of-00001.parquet``, e.g.
  https://huggingface.co/datasets/nyu-mll/glue/tree/main/mrpc holds ``train-00000-of-00001.parquet``,
  ``validation-00000-of-00001.parquet``, ``test-00000-of-00001.parquet``; MNLI uses ``mnli/validation_matched-*``
  etc. The layout written here is the same.
* ``aps/super_glue`` -- confirmed. The super_glue card's ``dataset_info`` YAML (version with ``entity_spans`` in
  ReCoRD and ``configs: data_files: <config>/<split>-*``), ``huggingface/datasets:datasets/super_glue/super_glue.py``
  (``_info``; unlabeled test rows ``label = -1``; COPA labels ``choice1``/``choice2``; ReCoRD test ``answers``
  empty) and the 1.0.3 script that added ``entity_spans`` (``end`` is exclusive: ``entity["end"] + 1``).
  Real layout: the last stored snapshot of https://huggingface.co/datasets/aps/super_glue/tree/main is script
  based (``super_glue.py`` + ``README.md``, no data files); the parquet data then lives only on the
  ``refs/convert/parquet`` branch as ``<config>/<split>/0000.parquet`` (earlier
  ``<config>/super_glue-<split>.parquet``), which is what ``datasets>=4`` reads for script datasets. A
  parquet-converted card (``<config>/<split>-*``) also exists. We write ``<config>/<split>-00000-of-00001.parquet``.
* ``nlp-thedeep/humset`` config ``1.0.0`` -- columns, split names and all label-name lists confirmed from the
  HumSet card (README ``dataset_info``, incl. the 33 ``subpillars_1d`` and 18 ``subpillars_2d`` names) and its
  "Data Fields" text ("reported as arrays of strings"). The label columns' dtype is INFERRED as a list of strings:
  the README YAML still says ``sequence: class_label`` (a stale, pre-script version), but ``humset.py`` commit
  1031baf ("add version 2 and default") removed the ``ClassLabel`` definitions from ``FIRST_FEATURES`` (the
  ``1.0.0`` features); the replacement line itself was not visible. ``created_at``/``document``/``project_title``
  value formats are from memory.
  Real layout: main holds ``humset.py`` + ``data/{train,validation,test}.jsonl`` (2.0.0: ``data/*_1_1.jsonl``);
  the parquet export is ``refs/convert/parquet``: ``1.0.0/<split>/0000.parquet`` (earlier
  ``1.0.0/humset-<split>.parquet``). We write ``1.0.0/<split>-00000-of-00001.parquet``.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, Features, Sequence, Value

__all__ = [
    "HUB_SCHEMAS",
    "HUMSET_LABELS",
    "HUMSET_LABEL_COLUMNS",
    "REAL_HUB_LAYOUT",
    "fixture_path",
    "write_all_fixtures",
    "write_hub_fixture",
]

GLUE = "nyu-mll/glue"
SUPER_GLUE = "aps/super_glue"
HUMSET = "nlp-thedeep/humset"

_S = Value("string")
_I32 = Value("int32")
_TVT = ["train", "validation", "test"]
_BOOL = ["False", "True"]


def _glue(text_cols: list[str], label) -> Features:
    # glue.py _info: text columns, then label, then idx.
    return Features({**{c: _S for c in text_cols}, "label": label, "idx": _I32})


def _sg(text_cols: list[str], names: list[str]) -> Features:
    # super_glue.py _info: text columns, then idx, then label.
    return Features({**{c: _S for c in text_cols}, "idx": _I32, "label": ClassLabel(names=names)})


# HumSet label names, in the card's order (README dataset_info of nlp-thedeep/humset, confirmed).
HUMSET_LABELS: dict[str, list[str]] = {
    "sectors": [
        "Agriculture",
        "Cross",
        "Education",
        "Food Security",
        "Health",
        "Livelihoods",  # early card revisions spell it "Livelihood"; the current card and DEEP tags say "Livelihoods"
        "Logistics",
        "Nutrition",
        "Protection",
        "Shelter",
        "WASH",
    ],
    "pillars_1d": [
        "Casualties",
        "Context",
        "Covid-19",
        "Displacement",
        "Humanitarian Access",
        "Information And Communication",
        "Shock/Event",
    ],
    "pillars_2d": [
        "At Risk",
        "Capacities & Response",
        "Humanitarian Conditions",
        "Impact",
        "Priority Interventions",
        "Priority Needs",
    ],
    "subpillars_1d": [
        "Casualties->Dead",
        "Casualties->Injured",
        "Casualties->Missing",
        "Context->Demography",
        "Context->Economy",
        "Context->Environment",
        "Context->Legal & Policy",
        "Context->Politics",
        "Context->Security & Stability",
        "Context->Socio Cultural",
        "Covid-19->Cases",
        "Covid-19->Contact Tracing",
        "Covid-19->Deaths",
        "Covid-19->Hospitalization & Care",
        "Covid-19->Restriction Measures",
        "Covid-19->Testing",
        "Covid-19->Vaccination",
        "Displacement->Intentions",
        "Displacement->Local Integration",
        "Displacement->Pull Factors",
        "Displacement->Push Factors",
        "Displacement->Type/Numbers/Movements",
        "Humanitarian Access->Number Of People Facing Humanitarian Access Constraints/Humanitarian Access Gaps",
        "Humanitarian Access->Physical Constraints",
        "Humanitarian Access->Population To Relief",
        "Humanitarian Access->Relief To Population",
        "Information And Communication->Communication Means And Preferences",
        "Information And Communication->Information Challenges And Barriers",
        "Information And Communication->Knowledge And Info Gaps (Hum)",
        "Information And Communication->Knowledge And Info Gaps (Pop)",
        "Shock/Event->Hazard & Threats",
        "Shock/Event->Type And Characteristics",
        "Shock/Event->Underlying/Aggravating Factors",
    ],
    "subpillars_2d": [
        "At Risk->Number Of People At Risk",
        "At Risk->Risk And Vulnerabilities",
        "Capacities & Response->International Response",
        "Capacities & Response->Local Response",
        "Capacities & Response->National Response",
        "Capacities & Response->Number Of People Reached/Response Gaps",
        "Humanitarian Conditions->Coping Mechanisms",
        "Humanitarian Conditions->Living Standards",
        "Humanitarian Conditions->Number Of People In Need",
        "Humanitarian Conditions->Physical And Mental Well Being",
        "Impact->Driver/Aggravating Factors",
        "Impact->Impact On People",
        "Impact->Impact On Systems, Services And Networks",
        "Impact->Number Of People Affected",
        "Priority Interventions->Expressed By Humanitarian Staff",
        "Priority Interventions->Expressed By Population",
        "Priority Needs->Expressed By Humanitarian Staff",
        "Priority Needs->Expressed By Population",
    ],
}
HUMSET_LABEL_COLUMNS = ("sectors", "pillars_1d", "pillars_2d", "subpillars_1d", "subpillars_2d")

HUB_SCHEMAS: dict[tuple[str, str], dict] = {
    # ---- nyu-mll/glue: confirmed from the hub card dataset_info (README.md) and datasets/glue/glue.py ----
    (GLUE, "cola"): {
        "features": _glue(["sentence"], ClassLabel(names=["unacceptable", "acceptable"])),
        "splits": _TVT,
    },
    (GLUE, "sst2"): {
        "features": _glue(["sentence"], ClassLabel(names=["negative", "positive"])),
        "splits": _TVT,
    },
    (GLUE, "mrpc"): {
        "features": _glue(["sentence1", "sentence2"], ClassLabel(names=["not_equivalent", "equivalent"])),
        "splits": _TVT,
    },
    (GLUE, "qqp"): {
        "features": _glue(["question1", "question2"], ClassLabel(names=["not_duplicate", "duplicate"])),
        "splits": _TVT,
    },
    (GLUE, "stsb"): {
        "features": _glue(["sentence1", "sentence2"], Value("float32")),
        "splits": _TVT,
    },
    (GLUE, "mnli"): {
        "features": _glue(["premise", "hypothesis"], ClassLabel(names=["entailment", "neutral", "contradiction"])),
        "splits": ["train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched"],
    },
    (GLUE, "qnli"): {
        "features": _glue(["question", "sentence"], ClassLabel(names=["entailment", "not_entailment"])),
        "splits": _TVT,
    },
    (GLUE, "rte"): {
        "features": _glue(["sentence1", "sentence2"], ClassLabel(names=["entailment", "not_entailment"])),
        "splits": _TVT,
    },
    # ---- aps/super_glue: confirmed from the super_glue card dataset_info and super_glue.py (1.0.2 / 1.0.3) ----
    (SUPER_GLUE, "boolq"): {"features": _sg(["question", "passage"], _BOOL), "splits": _TVT},
    (SUPER_GLUE, "cb"): {
        "features": _sg(["premise", "hypothesis"], ["entailment", "contradiction", "neutral"]),
        "splits": _TVT,
    },
    (SUPER_GLUE, "copa"): {
        "features": _sg(["premise", "choice1", "choice2", "question"], ["choice1", "choice2"]),
        "splits": _TVT,
    },
    (SUPER_GLUE, "multirc"): {
        "features": Features(
            {
                "paragraph": _S,
                "question": _S,
                "answer": _S,
                "idx": {"paragraph": _I32, "question": _I32, "answer": _I32},
                "label": ClassLabel(names=_BOOL),
            }
        ),
        "splits": _TVT,
    },
    (SUPER_GLUE, "record"): {
        # No label column; entities/answers are lists of strings; entity_spans is Sequence(dict), i.e. a struct of
        # lists (datasets>=4 shows it as {"text": List(string), "start": List(int32), "end": List(int32)}).
        "features": Features(
            {
                "passage": _S,
                "query": _S,
                "entities": Sequence(_S),
                "entity_spans": Sequence({"text": _S, "start": _I32, "end": _I32}),
                "answers": Sequence(_S),
                "idx": {"passage": _I32, "query": _I32},
            }
        ),
        "splits": _TVT,
    },
    (SUPER_GLUE, "rte"): {
        # On the hub, but ScaLearn's SuperGLUE RTE loads GLUE RTE (docs/method.md §4.1).
        "features": _sg(["premise", "hypothesis"], ["entailment", "not_entailment"]),
        "splits": _TVT,
    },
    (SUPER_GLUE, "wic"): {
        "features": Features(
            {
                "word": _S,
                "sentence1": _S,
                "sentence2": _S,
                "start1": _I32,
                "start2": _I32,
                "end1": _I32,
                "end2": _I32,
                "idx": _I32,
                "label": ClassLabel(names=_BOOL),
            }
        ),
        "splits": _TVT,
    },
    (SUPER_GLUE, "wsc"): {
        "features": Features(
            {
                "text": _S,
                "span1_index": _I32,
                "span2_index": _I32,
                "span1_text": _S,
                "span2_text": _S,
                "idx": _I32,
                "label": ClassLabel(names=_BOOL),
            }
        ),
        "splits": _TVT,
    },
    # ---- nlp-thedeep/humset 1.0.0: columns/splits/label names confirmed (card); label dtype inferred (see top) ----
    (HUMSET, "1.0.0"): {
        "features": Features(
            {
                "entry_id": _S,
                "lead_id": _S,
                "project_id": _S,
                "lang": _S,
                "n_tokens": Value("int64"),
                "project_title": _S,
                "created_at": _S,
                "document": _S,
                "excerpt": _S,
                **{c: Sequence(_S) for c in HUMSET_LABEL_COLUMNS},
            }
        ),
        "splits": _TVT,
    },
}
# wsc.fixed: same features and splits as wsc (confirmed); only the span texts were repaired upstream.
HUB_SCHEMAS[(SUPER_GLUE, "wsc.fixed")] = {
    "features": HUB_SCHEMAS[(SUPER_GLUE, "wsc")]["features"].copy(),
    "splits": list(_TVT),
}

# Where the real files live on the hub (for documentation; this module always writes the layout of fixture_path).
REAL_HUB_LAYOUT: dict[str, str] = {
    GLUE: "main: <config>/<split>-00000-of-00001.parquet (same as the fixtures)",
    SUPER_GLUE: "main: super_glue.py only; refs/convert/parquet: <config>/<split>/0000.parquet",
    HUMSET: "main: humset.py + data/<split>.jsonl; refs/convert/parquet: 1.0.0/<split>/0000.parquet",
}


def fixture_path(root: Path, hub_id: str, config: str, split: str) -> Path:
    """The parquet file written for one split: ``root/<hub_id>/<config>/<split>-00000-of-00001.parquet``."""
    return Path(root) / hub_id / config / f"{split}-00000-of-00001.parquet"


# ------------------------------------------------------------------------------------------------ word banks

_PEOPLE = [
    "Maria Lopez",
    "John Carter",
    "Aisha Khan",
    "David Chen",
    "Elena Petrova",
    "Samuel Okafor",
    "Laura Schmidt",
    "Kenji Watanabe",
    "Fatima Haddad",
    "Peter Novak",
]
_PLACES = ["London", "Nairobi", "Lima", "Oslo", "Hanoi", "Toronto", "Cairo", "Madrid", "Dhaka", "Quito"]
_COUNTRIES = {
    "London": "England",
    "Nairobi": "Kenya",
    "Lima": "Peru",
    "Oslo": "Norway",
    "Hanoi": "Vietnam",
    "Toronto": "Canada",
    "Cairo": "Egypt",
    "Madrid": "Spain",
    "Dhaka": "Bangladesh",
    "Quito": "Ecuador",
}
_ORGS = ["United Nations", "Red Cross", "World Bank", "European Union", "World Health Organization", "UNICEF"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
# (past tense, base form, object)
_ACTIONS = [
    ("visited", "visit", "the new hospital"),
    ("opened", "open", "a community school"),
    ("signed", "sign", "the trade agreement"),
    ("repaired", "repair", "the old bridge"),
    ("bought", "buy", "a small farm"),
    ("painted", "paint", "the town hall"),
    ("won", "win", "the regional election"),
    ("led", "lead", "the rescue team"),
]
_POS_ADJ = ["moving", "funny", "beautiful", "clever", "warm", "gripping", "charming", "brilliant"]
_NEG_ADJ = ["dull", "clumsy", "tedious", "shallow", "predictable", "bland", "messy", "forgettable"]
_FILM_NOUNS = ["film", "movie", "story", "drama", "comedy", "thriller"]
_TASKS = [
    "learn to play the guitar",
    "improve my English writing",
    "lose weight without dieting",
    "start a small business",
    "prepare for a job interview",
    "save money on groceries",
    "fix a slow laptop",
    "grow tomatoes indoors",
]
_FEATURES = ["museums", "markets", "old harbour", "parks", "street food", "university"]


def _rng_for(seed: int, *parts: str) -> np.random.RandomState:
    key = zlib.crc32("\x1f".join(parts).encode("utf-8"))
    return np.random.RandomState((int(seed) * 1_000_003 + key) % (2**32))


def _pick(rng: np.random.RandomState, seq):
    return seq[int(rng.randint(len(seq)))]


def _two(rng: np.random.RandomState, seq) -> tuple:
    i, j = rng.choice(len(seq), size=2, replace=False)
    return seq[int(i)], seq[int(j)]


def _balanced(rng: np.random.RandomState, n: int, k: int) -> np.ndarray:
    """n labels in 0..k-1, as balanced as n allows, in random order."""
    return rng.permutation(np.arange(n) % k)


def _is_test(split: str) -> bool:
    return split.startswith("test")


# ------------------------------------------------------------------------------------------------ GLUE


def _event(rng):
    person, other = _two(rng, _PEOPLE)
    past, base, obj = _pick(rng, _ACTIONS)
    place = _pick(rng, _PLACES)
    day = _pick(rng, _DAYS)
    return {"person": person, "other": other, "past": past, "base": base, "obj": obj, "place": place, "day": day}


def _nli_pair(rng, relation: str) -> tuple[str, str]:
    e = _event(rng)
    premise = f"{e['person']} {e['past']} {e['obj']} in {e['place']} on {e['day']}, local reporters said."
    if relation == "not_entailment":
        relation = _pick(rng, ["neutral", "contradiction"])
    if relation == "entailment":
        hyp = _pick(
            rng, [f"{e['person']} was in {e['place']} on {e['day']}.", f"{e['person']} {e['past']} {e['obj']}."]
        )
    elif relation == "contradiction":
        hyp = f"{e['person']} did not {e['base']} {e['obj']} on {e['day']}."
    else:  # neutral
        hyp = f"{e['person']} {e['past']} {e['obj']} together with {e['other']}."
    return premise, hyp


def _glue_rows(config: str, split: str, n: int, rng) -> dict:
    names = HUB_SCHEMAS[(GLUE, config)]["features"]["label"]
    k = names.num_classes if isinstance(names, ClassLabel) else 0
    test = _is_test(split)
    labels = [-1] * n if test or not k else [int(x) for x in _balanced(rng, n, k)]
    # The text is generated from a (hidden, for test rows) label so that it stays label-consistent.
    hidden = [int(x) for x in _balanced(rng, n, k)] if k else []
    rows: dict[str, list] = {c: [] for c in HUB_SCHEMAS[(GLUE, config)]["features"]}
    for i in range(n):
        lab = labels[i] if labels[i] >= 0 else (hidden[i] if k else -1)
        if config == "cola":
            e = _event(rng)
            if lab == 1:
                s = f"{e['person']} {e['past']} {e['obj']} in {e['place']}."
            else:
                s = _pick(
                    rng,
                    [
                        f"{e['person']} {e['obj']} {e['past']} in {e['place']}.",
                        f"{e['person']} have {e['past']} {e['obj']} yesterday tomorrow.",
                        f"{e['obj'].capitalize()} {e['person']} the {e['past']}.",
                    ],
                )
            rows["sentence"].append(s)
        elif config == "sst2":
            adj = _pick(rng, _POS_ADJ if lab == 1 else _NEG_ADJ)
            adj2 = _pick(rng, _POS_ADJ if lab == 1 else _NEG_ADJ)
            noun = _pick(rng, _FILM_NOUNS)
            rows["sentence"].append(
                f"a {adj} and {adj2} {noun} that {'rewards' if lab == 1 else 'wastes'} its audience "
            )
        elif config in ("mrpc", "rte"):
            if config == "rte":
                s1, s2 = _nli_pair(rng, "entailment" if lab == 0 else "not_entailment")
            else:
                e = _event(rng)
                s1 = f"{e['person']} {e['past']} {e['obj']} in {e['place']} on {e['day']}, officials said."
                if lab == 1:
                    s2 = f"On {e['day']}, {e['person']} {e['past']} {e['obj']} in {e['place']}, according to officials."
                else:
                    f = _event(rng)
                    s2 = f"{f['person']} {f['past']} {f['obj']} in {e['place']} last year, officials said."
            rows["sentence1"].append(s1)
            rows["sentence2"].append(s2)
        elif config == "qqp":
            t1, t2 = _two(rng, _TASKS)
            q1 = f"How can I {t1}?"
            q2 = f"What is the best way to {t1}?" if lab == 1 else f"How can I {t2}?"
            rows["question1"].append(q1)
            rows["question2"].append(q2)
        elif config == "stsb":
            score = float(np.round(rng.uniform(0.0, 5.0), 1))
            if not test:
                labels[i] = score
            e = _event(rng)
            s1 = f"{e['person']} {e['past']} {e['obj']} in {e['place']}."
            if score >= 4.0:
                s2 = f"In {e['place']}, {e['person']} {e['past']} {e['obj']}."
            elif score >= 2.0:
                s2 = f"{e['person']} {e['past']} something in {e['place']}."
            else:
                f = _event(rng)
                s2 = f"{f['other']} {f['past']} {f['obj']} in {f['place']}."
            rows["sentence1"].append(s1)
            rows["sentence2"].append(s2)
        elif config == "mnli":
            p, h = _nli_pair(rng, ["entailment", "neutral", "contradiction"][lab])
            rows["premise"].append(p)
            rows["hypothesis"].append(h)
        elif config == "qnli":
            e = _event(rng)
            q = f"Where did {e['person']} {e['base']} {e['obj']}?"
            if lab == 0:
                s = f"On {e['day']}, {e['person']} {e['past']} {e['obj']} in {e['place']}."
            else:
                s = f"{e['place']} is one of the largest cities in {_COUNTRIES[e['place']]}."
            rows["question"].append(q)
            rows["sentence"].append(s)
        else:  # pragma: no cover - guarded by HUB_SCHEMAS
            raise KeyError(config)
    rows["label"] = [float(x) for x in labels] if config == "stsb" else labels
    rows["idx"] = list(range(n))
    return rows


# ------------------------------------------------------------------------------------------------ SuperGLUE

_COPA = [
    ("The ground was wet in the morning.", "cause", "It had rained overnight.", "The sun had been shining all night."),
    ("The man lost his balance on the ladder.", "effect", "He fell to the ground.", "He painted the ceiling."),
    ("The woman felt thirsty.", "effect", "She drank a glass of water.", "She closed the window."),
    ("The children laughed loudly.", "cause", "The clown tripped over his shoes.", "The teacher gave a test."),
    ("The bread went stale.", "cause", "It was left out for days.", "It was baked that morning."),
    ("The driver pressed the brakes.", "effect", "The car slowed down.", "The radio got louder."),
    ("My phone battery died.", "cause", "I forgot to charge it.", "I bought a new case."),
    ("The crowd cheered.", "cause", "The team scored a goal.", "The stadium lights were on."),
    ("The pond froze over.", "cause", "The temperature dropped below zero.", "The fish swam quickly."),
    ("The student studied all night.", "effect", "She passed the exam.", "She missed the bus."),
]

# WSC templates: (text, candidate A, candidate B, pronoun, referent is A?)
_WSC = [
    ("The trophy did not fit into the suitcase because it was too big.", "The trophy", "the suitcase", "it", True),
    ("The trophy did not fit into the suitcase because it was too small.", "The trophy", "the suitcase", "it", False),
    (
        "The city councilmen refused the demonstrators a permit because they feared violence.",
        "The city councilmen",
        "the demonstrators",
        "they",
        True,
    ),
    (
        "The city councilmen refused the demonstrators a permit because they advocated violence.",
        "The city councilmen",
        "the demonstrators",
        "they",
        False,
    ),
    ("Joan made sure to thank Susan for all the help she had given.", "Joan", "Susan", "she", False),
    ("Joan made sure to thank Susan for all the help she had received.", "Joan", "Susan", "she", True),
    (
        "The lawyer asked the witness a question, but he was reluctant to repeat it.",
        "The lawyer",
        "the witness",
        "he",
        True,
    ),
    (
        "The lawyer asked the witness a question, but he was reluctant to answer it.",
        "The lawyer",
        "the witness",
        "he",
        False,
    ),
    ("The dog chased the cat up the tree because it was barking loudly.", "The dog", "the cat", "it", True),
    ("The dog chased the cat up the tree because it was scared.", "The dog", "the cat", "it", False),
]

# WiC: word -> (two sentences with sense A, two sentences with sense B); the word occurs verbatim.
_WIC = [
    (
        "bank",
        ("She sat on the bank of the river.", "They walked along the muddy bank at dawn."),
        ("He deposited his salary at the bank.", "The bank approved the loan quickly."),
    ),
    (
        "bark",
        ("The bark of the old oak was rough.", "Beetles live under the bark of dead trees."),
        ("The dog let out a loud bark.", "We heard a bark from the garden."),
    ),
    (
        "match",
        ("He struck a match to light the candle.", "She kept a match in her pocket."),
        ("The match ended in a draw.", "We watched the football match together."),
    ),
    (
        "light",
        ("The light from the window woke me.", "Turn on the light in the hall."),
        ("This bag is very light to carry.", "She packed a light jacket for the trip."),
    ),
    (
        "run",
        ("I run five miles every morning.", "They run to catch the last bus."),
        ("They run a small bakery downtown.", "She will run the company next year."),
    ),
    (
        "plant",
        ("Water the plant on the balcony.", "The plant grew toward the sun."),
        ("The power plant employs many workers.", "He works at a car plant near the city."),
    ),
]


def _word_span(sentence: str, word: str) -> tuple[int, int]:
    m = re.search(rf"\b{re.escape(word)}\b", sentence)
    if m is None:  # pragma: no cover - templates guarantee a match
        raise ValueError(f"{word!r} not in {sentence!r}")
    return m.start(), m.end()


def _multirc_group_sizes(rng, n: int) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(int(rng.randint(2, 5)))
    sizes[-1] -= sum(sizes) - n
    if sizes[-1] < 2 and len(sizes) > 1:  # never leave a single-answer question
        last = sizes.pop()
        sizes[-1] += last
    return sizes


def _record_passage(rng, pid: int) -> dict:
    p1, p2 = _two(rng, _PEOPLE)
    place, place2 = _two(rng, _PLACES)
    org = _pick(rng, _ORGS)
    topic = _pick(rng, ["the water supply", "the new budget", "the refugee response", "the rail project"])
    day = _pick(rng, _DAYS)
    passage = (
        f"({place}) -- {p1} met {p2} in {place} on {day} to discuss {topic}. "
        f"{p1} said the talks with the {org} were productive and that {p2} had agreed to a second meeting. "
        f"{p2} is expected to travel to {place2} next week.\n"
        f"@highlight\n{p1} and {p2} met in {place} on {day}\n"
        f"@highlight\nThe {org} will review {topic} in {place2}"
    )
    entities = [p1, p2, place, place2, org]
    spans = sorted(
        (m.start(), m.end(), ent) for ent in set(entities) for m in re.finditer(rf"\b{re.escape(ent)}\b", passage)
    )
    queries = [
        (f"@placeholder said the talks with the {org} were productive.", [p1]),
        (f"{p2} is expected to travel to @placeholder next week.", [place2]),
        (f"The {org} met @placeholder and {p2} on {day}.", [p1]),
        (f"Officials in @placeholder hosted the meeting on {day}.", [place]),
    ]
    return {
        "passage": passage,
        "entities": sorted(set(entities)),
        "entity_spans": {"text": [s[2] for s in spans], "start": [s[0] for s in spans], "end": [s[1] for s in spans]},
        "queries": queries,
        "pid": pid,
    }


def _superglue_rows(config: str, split: str, n: int, rng) -> dict:
    feats = HUB_SCHEMAS[(SUPER_GLUE, config)]["features"]
    test = _is_test(split)
    rows: dict[str, list] = {c: [] for c in feats}
    if config == "record":
        qid = 0
        pid = 0
        while qid < n:
            p = _record_passage(rng, pid)
            order = rng.permutation(len(p["queries"]))[: int(rng.randint(1, 4))]
            for j in order:
                if qid >= n:
                    break
                query, answers = p["queries"][int(j)]
                rows["passage"].append(p["passage"])
                rows["query"].append(query)
                rows["entities"].append(p["entities"])
                rows["entity_spans"].append(p["entity_spans"])
                rows["answers"].append([] if test else answers)  # the hub's test rows have no answers
                rows["idx"].append({"passage": pid, "query": qid})
                qid += 1
            pid += 1
        return rows
    if config == "multirc":
        aid = n_true = n_false = 0
        for q_no, size in enumerate(_multirc_group_sizes(rng, n)):
            pid = q_no // 2  # two questions per paragraph
            if q_no % 2 == 0:
                person, friend = _two(rng, _PEOPLE)
                place, other_place = _two(rng, _PLACES)
                past, _, obj = _pick(rng, _ACTIONS)
            paragraph = (
                f"{person} grew up in {place}. After finishing school, {person} {past} {obj} with {friend}. "
                f"Later they moved to {other_place}, where {friend} opened a bakery. "
                f"{person} still visits {place} every summer."
            )
            if q_no % 2 == 0:
                question = f"Where did {person} grow up?"
                good, bad = [place, f"In {place}", f"{place}, before moving"], [other_place, "In a small village"]
            else:
                question = f"Who opened a bakery in {other_place}?"
                good, bad = [friend, f"{person}'s friend {friend}"], [person, "Nobody", f"The mayor of {place}"]
            # At least one true and one false answer per question; keep True/False balanced over the split.
            n_good = size // 2 if n_true > n_false else (size + 1) // 2
            n_true, n_false = n_true + n_good, n_false + size - n_good
            answers = [(a, 1) for a in good[:n_good]] + [(a, 0) for a in bad[: size - n_good]]
            while len(answers) < size:
                answers.append((f"Somewhere near {other_place}", 0))
            for k in rng.permutation(len(answers)):
                text, lab = answers[int(k)]
                rows["paragraph"].append(paragraph)
                rows["question"].append(question)
                rows["answer"].append(text)
                rows["idx"].append({"paragraph": pid, "question": q_no, "answer": aid})
                rows["label"].append(-1 if test else lab)
                aid += 1
        return rows

    k = feats["label"].num_classes
    hidden = [int(x) for x in _balanced(rng, n, k)]
    for i in range(n):
        lab = hidden[i]
        if config == "boolq":
            place = _pick(rng, _PLACES)
            country = _COUNTRIES[place]
            other = _pick(rng, [c for c in _COUNTRIES.values() if c != country])
            feature = _pick(rng, _FEATURES)
            rows["passage"].append(
                f"{place} is a large city in {country}. It is known for its {feature} and attracts many visitors "
                f"each year. The city has grown quickly since the 1990s."
            )
            rows["question"].append(f"is {place.lower()} a city in {(country if lab == 1 else other).lower()}")
        elif config in ("cb", "rte"):
            names = feats["label"].names
            p, h = _nli_pair(rng, names[lab])
            if config == "cb":
                p = f"A: Did you hear the news? B: Yes. {p} I don't think anyone expected that."
            rows["premise"].append(p)
            rows["hypothesis"].append(h)
        elif config == "copa":
            premise, question, correct, wrong = _COPA[int(rng.randint(len(_COPA)))]
            rows["premise"].append(premise)
            rows["question"].append(question)
            rows["choice1"].append(correct if lab == 0 else wrong)
            rows["choice2"].append(wrong if lab == 0 else correct)
        elif config == "wic":
            word, sense_a, sense_b = _WIC[int(rng.randint(len(_WIC)))]
            s1 = _pick(rng, sense_a)
            s2 = _pick(rng, [s for s in sense_a if s != s1]) if lab == 1 else _pick(rng, sense_b)
            if rng.rand() < 0.5:
                s1, s2 = s2, s1
            st1, en1 = _word_span(s1, word)
            st2, en2 = _word_span(s2, word)
            rows["word"].append(word)
            rows["sentence1"].append(s1)
            rows["sentence2"].append(s2)
            rows["start1"].append(st1)
            rows["start2"].append(st2)
            rows["end1"].append(en1)
            rows["end2"].append(en2)
        elif config in ("wsc", "wsc.fixed"):
            # Pick a template whose candidate A/B choice yields the wanted label.
            text, cand_a, cand_b, pronoun, a_is_referent = _WSC[int(rng.randint(len(_WSC)))]
            span1 = cand_a if (lab == 1) == a_is_referent else cand_b
            words = text.split()
            n1 = len(span1.split())
            s1 = next(j for j in range(len(words)) if words[j : j + n1] == span1.split())
            s2 = next(j for j in range(len(words)) if j > s1 and words[j] == pronoun)
            rows["text"].append(text)
            rows["span1_index"].append(s1)
            rows["span2_index"].append(s2)
            rows["span1_text"].append(span1)
            rows["span2_text"].append(pronoun)
        else:  # pragma: no cover - guarded by HUB_SCHEMAS
            raise KeyError(config)
        rows["idx"].append(i)
        rows["label"].append(-1 if test else lab)
    return rows


# ------------------------------------------------------------------------------------------------ HumSet

_HUMSET_PROJECTS = [
    ("2225", "IMMAP/DFS Syria"),
    ("2170", "IMMAP/DFS Colombia"),
    ("2311", "IMMAP/DFS Bangladesh"),
    ("1183", "Nigeria Situation Monitoring"),
    ("2098", "Venezuela Regional Crisis"),
]
_HUMSET_TEMPLATES = {
    "en": "According to {org}, {num} people in {place} were affected; the report highlights {topics}.",
    "fr": "Selon {org}, {num} personnes à {place} ont été touchées ; le rapport souligne {topics}.",
    "es": "Según {org}, {num} personas en {place} fueron afectadas; el informe destaca {topics}.",
}


def _humset_pick(rng, pool: list[str], queue: list[str]) -> list[str]:
    """0-3 distinct labels: from ``queue`` first (so train covers every name), then from ``pool``."""
    m = min(int(rng.choice([0, 1, 1, 2, 3])), len(set(pool) | set(queue)))
    out: list[str] = []
    while len(out) < m and queue:
        name = queue.pop()
        if name not in out:
            out.append(name)
    while len(out) < m:
        name = pool[int(rng.randint(len(pool)))]
        if name not in out:
            out.append(name)
    return out


def _humset_rows(split: str, n: int, rng, allowed: dict[str, list[str]]) -> dict:
    rows: dict[str, list] = {c: [] for c in HUB_SCHEMAS[(HUMSET, "1.0.0")]["features"]}
    queues = (
        {c: [str(x) for x in rng.permutation(allowed[c])] for c in ("sectors", "subpillars_1d", "subpillars_2d")}
        if split == "train"
        else {c: [] for c in ("sectors", "subpillars_1d", "subpillars_2d")}
    )
    base = {"train": 100000, "validation": 200000, "test": 300000}.get(split, 400000)
    for i in range(n):
        lang = str(rng.choice(["en", "en", "en", "fr", "es"]))
        project_id, project_title = _HUMSET_PROJECTS[int(rng.randint(len(_HUMSET_PROJECTS)))]
        labels = {c: _humset_pick(rng, allowed[c], queues[c]) for c in ("sectors", "subpillars_1d", "subpillars_2d")}
        # Pillars are the parents of the sub-pillars (as in the DEEP framework).
        labels["pillars_1d"] = sorted({s.split("->")[0] for s in labels["subpillars_1d"]})
        labels["pillars_2d"] = sorted({s.split("->")[0] for s in labels["subpillars_2d"]})
        topics = [s.split("->")[-1].lower() for s in labels["subpillars_1d"] + labels["subpillars_2d"]]
        topics += [s.lower() for s in labels["sectors"]]
        excerpt = _HUMSET_TEMPLATES[lang].format(
            org=_pick(rng, _ORGS),
            num=int(rng.randint(50, 50000)),
            place=_pick(rng, _PLACES),
            topics=", ".join(topics) if topics else "the general situation",
        )
        lead = base + 10 * (i // 3)
        rows["entry_id"].append(str(base * 10 + i))
        rows["lead_id"].append(str(lead))
        rows["project_id"].append(project_id)
        rows["lang"].append(lang)
        rows["n_tokens"].append(len(excerpt.split()))
        rows["project_title"].append(project_title)
        rows["created_at"].append(
            f"20{int(rng.randint(19, 22))}-{int(rng.randint(1, 13)):02d}-{int(rng.randint(1, 29)):02d}"
            f"T{int(rng.randint(0, 24)):02d}:{int(rng.randint(0, 60)):02d}:{int(rng.randint(0, 60)):02d}Z"
        )
        rows["document"].append(f"https://reliefweb.int/report/{lead}/situation-update-{lead}")
        rows["excerpt"].append(excerpt)
        for c in HUMSET_LABEL_COLUMNS:
            rows[c].append(labels[c])
    return rows


# ------------------------------------------------------------------------------------------------ writers


def _resolve_config(hub_id: str, config: str | None) -> str:
    configs = [c for h, c in HUB_SCHEMAS if h == hub_id]
    if not configs:
        raise KeyError(f"no schema for hub id {hub_id!r}; known: {sorted({h for h, _ in HUB_SCHEMAS})}")
    if config is None:
        if len(configs) != 1:
            raise ValueError(f"{hub_id} has several configs {configs}; name one")
        return configs[0]
    if config not in configs:
        raise KeyError(f"no schema for {hub_id!r} config {config!r}; known: {configs}")
    return config


def write_hub_fixture(root: Path, hub_id: str, config: str | None, rows_per_split: int = 40, seed: int = 0) -> Path:
    """Write every split of one hub dataset/config as parquet; returns ``root/<hub_id>/<config>``.

    Files: ``root/<hub_id>/<config>/<split>-00000-of-00001.parquet`` with the exact hub features embedded.
    Deterministic for a given ``(seed, hub_id, config, split, rows_per_split)``.
    """
    config = _resolve_config(hub_id, config)
    if rows_per_split < 2:
        raise ValueError("rows_per_split must be at least 2")
    schema = HUB_SCHEMAS[(hub_id, config)]
    features: Features = schema["features"]
    out_dir = Path(root) / hub_id / config
    out_dir.mkdir(parents=True, exist_ok=True)
    allowed = {c: list(HUMSET_LABELS[c]) for c in ("sectors", "subpillars_1d", "subpillars_2d")}
    for split in schema["splits"]:
        rng = _rng_for(seed, hub_id, config, split)
        if hub_id == GLUE:
            rows = _glue_rows(config, split, rows_per_split, rng)
        elif hub_id == SUPER_GLUE:
            rows = _superglue_rows(config, split, rows_per_split, rng)
        else:
            rows = _humset_rows(split, rows_per_split, rng, allowed)
            if split == "train":  # later splits only use label names observed in train (as ScaLearn assumes)
                allowed = {c: sorted({x for ls in rows[c] for x in ls}) for c in allowed}
        Dataset.from_dict(rows, features=features).to_parquet(str(fixture_path(root, hub_id, config, split)))
    return out_dir


def write_all_fixtures(root: Path, rows_per_split: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    """Write every dataset/config in ``HUB_SCHEMAS``; returns the ``(hub_id, config)`` pairs written."""
    written = []
    for hub_id, config in HUB_SCHEMAS:
        write_hub_fixture(root, hub_id, config, rows_per_split=rows_per_split, seed=seed)
        written.append((hub_id, config))
    return written

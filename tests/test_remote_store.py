"""A store at an fsspec URL: S3, served on 127.0.0.1 by moto's S3 server (S3 itself cannot run here; s3fs,
Ray, MLflow and training are real). Records, exclusive leases, and a whole tiny sweep whose source
adapters travel through the bucket from the trials that train them to the trials that consume them."""

import json
import os
import time

import pytest

from harness.store import Store


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import fsspec

    from scalearn.ports import free_port

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # Ray workers started after this inherit it
    fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = endpoint  # this process read its config already
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("sweeps")
    yield fs
    fsspec.config.conf["s3"].pop("endpoint_url", None)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


def test_records_and_leases_live_in_the_bucket(s3):
    store = Store("s3://sweeps/records")
    assert store.remote and not store.is_done("k1") and store.state("k1") == "pending"
    owner = store.acquire("k1")
    assert owner and store.acquire("k1") is None and store.state("k1") == "running"  # exclusive create
    store.write_failure("k1", 1, "Traceback…\nRuntimeError: boom")
    store.release("k1", owner)
    assert store.state("k1") == "failed" and store.failure("k1")["attempts"] == 1
    (store.trial_dir("k1") / "artifacts" / "adapter").mkdir(parents=True)
    (store.trial_dir("k1") / "artifacts" / "adapter" / "weights.bin").write_bytes(b"\x00\x01")
    store.write_result("k1", {"test": {"accuracy": 0.5}})
    assert s3.cat_file("sweeps/records/trials/k1/artifacts/adapter/weights.bin") == b"\x00\x01"
    assert store.is_done("k1") and store.state("k1") == "done" and store.failure("k1") is None
    assert store.done_keys(["k1", "k2", "nope"]) == {"k1"}  # one listing
    assert json.loads(s3.cat_file("sweeps/records/trials/k1/result.json"))["test"] == {"accuracy": 0.5}
    expired = {"owner": "gone", "expires": time.time() - 1}
    s3.pipe_file("sweeps/records/trials/k2/lease.json", json.dumps(expired).encode())
    assert store.acquire("k2") is not None  # a dead owner's lease is taken over


def test_a_fresh_machine_pulls_a_finished_trial(s3, tmp_path, monkeypatch):
    writer = Store("s3://sweeps/pull")
    (writer.trial_dir("k") / "artifacts" / "model").mkdir(parents=True)
    (writer.trial_dir("k") / "artifacts" / "model" / "head.safetensors").write_bytes(b"tensors")
    writer.checkpoint_dir("k").mkdir(parents=True)
    (writer.checkpoint_dir("k") / "progress.json").write_text("{}")
    writer.write_result("k", {"test": {}})
    assert not writer.checkpoint_dir("k").exists() and not s3.exists("sweeps/pull/trials/k/artifacts/checkpoint")
    monkeypatch.setenv("SCALEARN_CACHE_DIR", str(tmp_path / "elsewhere"))  # another machine: an empty mirror
    reader = Store("s3://sweeps/pull")
    assert reader.root != writer.root and not reader.trial_dir("k").exists()
    folder = reader.pull("k")
    assert (folder / "artifacts" / "model" / "head.safetensors").read_bytes() == b"tensors"
    assert json.loads((folder / "result.json").read_text())["test"] == {}
    # a machine where an attempt at the trial was killed (it left its checkpoint) pulls the finished trial whole
    monkeypatch.setenv("SCALEARN_CACHE_DIR", str(tmp_path / "killed-here"))
    killed = Store("s3://sweeps/pull")
    (killed.checkpoint_dir("k") / "last").mkdir(parents=True)
    (killed.checkpoint_dir("k") / "last" / "checkpoint.json").write_text("{}")
    folder = killed.pull("k")
    assert (folder / "artifacts" / "model" / "head.safetensors").read_bytes() == b"tensors"
    assert not killed.checkpoint_dir("k").exists() and killed.is_done("k")


def test_a_trial_paused_on_one_machine_goes_on_from_its_checkpoint_on_another(s3, tmp_path, monkeypatch):
    """Successive halving on a remote store: the next rung may run on another node, which downloads the pause's
    checkpoint (it trained from the start again) and keeps a checkpoint of its own."""
    monkeypatch.setenv("SCALEARN_CACHE_DIR", str(tmp_path / "first"))
    first = Store("s3://sweeps/rungs")
    (first.checkpoint_dir("k") / "last").mkdir(parents=True)
    (first.checkpoint_dir("k") / "last" / "checkpoint.json").write_text('{"at": "rung 0"}')
    (first.checkpoint_dir("k") / "last" / "state.safetensors").write_bytes(b"tensors")
    first.write_rung("k", 1 / 9, {"best_dev": {"loss": 0.5}})
    monkeypatch.setenv("SCALEARN_CACHE_DIR", str(tmp_path / "second"))
    second = Store("s3://sweeps/rungs")
    second.pull_checkpoint("k")
    last = second.checkpoint_dir("k") / "last"
    assert (last / "checkpoint.json").read_text() == '{"at": "rung 0"}' and (last / "state.safetensors").exists()
    (last / "checkpoint.json").write_text('{"at": "further, here"}')  # this machine's own, newer
    second.pull_checkpoint("k")
    assert (last / "checkpoint.json").read_text() == '{"at": "further, here"}'


def test_a_two_stage_sweep_through_s3_then_a_resubmit_runs_nothing(own_ray, s3, tmp_path, capsys):
    from pathlib import Path

    from harness.cli import main
    from harness.plan import expand
    from harness.spec import load_spec

    tiny = Path(__file__).resolve().parent.parent / "experiments" / "tiny.yaml"
    assert main(["submit", str(tiny), "--store", "s3://sweeps/tiny", "--num-cpus", "2"]) == 0
    trials = expand(load_spec(tiny))
    assert f"{len(trials)} to run" in capsys.readouterr().out
    for trial in trials:
        assert s3.exists(f"sweeps/tiny/trials/{trial.key}/result.json")
        kind = "adapter" if trial.method == "adapter" else "model"
        assert s3.find(f"sweeps/tiny/trials/{trial.key}/artifacts/{kind}")
    assert main(["submit", str(tiny), "--store", "s3://sweeps/tiny"]) == 0
    assert f"{len(trials)} already done, 0 to run" in capsys.readouterr().out
    assert main(["status", str(tiny), "--store", "s3://sweeps/tiny"]) == 0
    assert f"stage 2: {sum(t.stage == 2 for t in trials)} done" in capsys.readouterr().out


def test_an_unknown_protocol_is_one_clear_error():
    with pytest.raises(ValueError, match=r"--store nosuch://x: .*nosuch"):
        Store("nosuch://x")

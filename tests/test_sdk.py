"""The SDK as a user writes it, on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import snapshot

import lineage
from lineage.client import Client


@pytest.fixture
def env(backend, workdir, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    return backend


def write(path: str | Path, data: bytes | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def log_model(
    run: lineage.Run, content: bytes, name: str = "policy", **kw: object
) -> lineage.ArtifactVersion:
    write("weights.bin", content)
    art = lineage.Artifact(name, type="model", **kw)  # type: ignore[arg-type]
    art.add_file("weights.bin", name="weights.bin")
    return run.log_artifact(art)


def test_the_issue_example(env) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="surgery", job_type="pretrain") as run:
        for step in range(4):
            log_model(run, f"weights {step}".encode())
    with lineage.init(project="surgery", job_type="finetune", config={"lr": 3e-5}) as run:
        base = run.use_artifact("policy:latest")
        assert base.ref == "surgery/policy:v3"
        path = base.download()
        assert (path / "weights.bin").read_bytes() == b"weights 3"
        write("weights.bin", b"after surgery 3")
        art = lineage.Artifact(
            "policy", type="model", description="after surgery 3", metadata={"step": 3}
        )
        art.add_file("weights.bin", name="weights.bin")
        v = run.log_artifact(art, aliases=["candidate"])
        assert v.ref == "surgery/policy:v4"
        assert v.version == "v4" and v.type == "model" and v.name == "policy"
        assert v.metadata == {"step": 3} and v.size == len(b"after surgery 3")
        assert set(v.aliases) == {"candidate", "latest"}
        assert [f.path for f in v.files()] == ["weights.bin"]
        run_id = run.id
    assert run.state == "finished"

    api = lineage.Api()
    g = api.lineage("surgery/policy:v4", direction="upstream", depth=20)
    kinds = {n.id: n.kind for n in g.nodes}
    assert kinds["surgery/policy:v4"] == "artifact_version"
    assert kinds[run_id] == "run"
    assert {(e.source, e.target, e.kind) for e in g.edges} >= {
        ("surgery/policy:v3", run_id, "consumed_by"),
        (run_id, "surgery/policy:v4", "produced"),
    }
    t = api.tree("surgery/policy:v3", depth=20)
    assert [(e.source, e.target, e.run) for e in t.edges] == [
        ("surgery/policy:v3", "surgery/policy:v4", run_id)
    ]
    assert [r.id for r in api.artifact_version("surgery/policy:v4").logged_by()] == [run_id]
    assert [r.id for r in api.artifact_version("policy:v3").used_by()] == [run_id]


def test_refs_resolve_every_way(env) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p") as run:
        log_model(run, b"a")
        v1 = log_model(run, b"b")
        v1.set_alias("prod")
        log_model(run, b"c")
    api = lineage.Api(project="p")
    assert api.artifact_version("policy").ref == "p/policy:v2"
    assert api.artifact_version("policy:prod").ref == "p/policy:v1"
    assert api.artifact_version("p/policy:v0").ref == "p/policy:v0"
    with pytest.raises(
        lineage.VersionNotFound,
        match=r"nearest versions of p/policy: v0, v1 \(prod\), v2 \(latest\)",
    ):
        api.artifact_version("policy:v7")
    with pytest.raises(lineage.VersionNotFound, match="did you mean policy"):
        api.artifact_version("polcy:v0")
    with pytest.raises(lineage.InvalidRef):
        api.artifact_version("p/policy:v1:v2")


def test_identical_bytes_return_the_existing_version(env) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p") as first:
        v0 = log_model(first, b"same bytes")
    stores = Client.shared().stores
    blobs_before = set(stores.blobs.digests())
    with lineage.init(project="p") as second:
        again = log_model(second, b"same bytes")
    assert again.ref == v0.ref
    assert set(stores.blobs.digests()) == blobs_before  # no new bytes
    assert [r.id for r in again.logged_by()] == [first.id, second.id]  # a reproduction
    assert len(lineage.Api().versions("policy", project="p")) == 1


def test_reproducing_an_ancestor_is_an_event_not_a_cycle(env) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p") as a:
        v0 = log_model(a, b"original")
    with lineage.init(project="p") as b:
        b.use_artifact("policy:v0")
        back = log_model(b, b"original")  # re-creates the exact bytes it consumed
    assert back.ref == v0.ref
    api = lineage.Api(project="p")
    assert [r.id for r in api.artifact_version("policy:v0").logged_by()] == [a.id]
    events = api.events("policy:v0")
    assert [(e.kind, e.actor) for e in events] == [("version.reproduced", b.id)]


def test_consuming_your_own_output_is_refused(env) -> None:  # type: ignore[no-untyped-def]
    stores = Client.shared().stores
    with lineage.init(project="p") as run:
        v0 = log_model(run, b"mine")
        before = snapshot(stores.graph, stores.blobs)
        with pytest.raises(lineage.CycleError, match="acyclic"):
            run.use_artifact(v0.ref)
        assert snapshot(stores.graph, stores.blobs) == before
    # a descendant too
    with lineage.init(project="p") as child:
        child.use_artifact(v0)
        log_model(child, b"child")
    with lineage.init(project="p") as grandchild:
        grandchild.use_artifact("policy:v1")
    with pytest.raises(lineage.RunNotActive):
        run.use_artifact("policy:v1")


def test_logging_after_finish_is_refused(env) -> None:  # type: ignore[no-untyped-def]
    run = lineage.init(project="p")
    run.finish()
    with pytest.raises(lineage.RunNotActive, match="finished"):
        log_model(run, b"late")
    with pytest.raises(lineage.RunNotActive):
        run.use_artifact("policy")
    assert lineage.Api(project="p").artifacts() == []


def test_an_exception_marks_the_run_failed(env) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError), lineage.init(project="p", job_type="train") as run:
        raise RuntimeError("out of memory on step 7")
    record = lineage.Api().run(run.id)
    assert record.state == "failed"
    assert "RuntimeError: out of memory on step 7" in (record.error or "")
    assert record.finished_at is not None


def test_run_records_config_git_and_host(env, workdir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sys, "argv", ["-c"])  # no script file: the working directory's repo
    subprocess.run(["git", "init", "-q"], check=True)
    write(".gitignore", ".lineage/\n")  # the stat cache of a server store lands there
    subprocess.run(["git", "add", ".gitignore"], check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "-m", "x"], check=True)  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    with lineage.init(project="p", config={"lr": 0.1}, tags=["a"], notes="n") as run:
        run.log({"acc": 0.9})
    record = lineage.Api().run(run.id)
    assert record.code is not None and record.code.commit == commit and not record.code.dirty
    assert record.config == {"lr": 0.1} and record.summary == {"acc": 0.9}
    assert record.tags == ("a",) and record.notes == "n" and record.pid == os.getpid()


def test_aliases_move_with_events_and_latest_moves_itself(env) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p") as run:
        v0 = log_model(run, b"0")
        v0.set_alias("best")
        v1 = log_model(run, b"1")
        assert "latest" in v1.aliases
        v1.set_alias("best")
    api = lineage.Api(project="p")
    assert api.artifact_version("policy:v0").aliases == ()
    assert api.artifact_version("policy:best").ref == "p/policy:v1"
    moves = [(e.kind, e.old, e.new) for e in api.events("policy")]
    assert moves == [
        ("alias.moved", None, {"alias": "best", "version": "v0"}),
        ("alias.moved", {"alias": "best", "version": "v0"}, {"alias": "best", "version": "v1"}),
    ]
    with pytest.raises(lineage.InvalidInput, match="latest"):
        api.set_alias("policy:v0", "latest")
    with pytest.raises(lineage.InvalidName, match="reserved"):
        api.set_alias("policy:v0", "v3")


def test_metadata_and_description_edits_are_logged(env) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p") as run:
        v = log_model(run, b"m", metadata={"a": 1}, description="first")
    v.update(metadata={"a": 2}, description="second")
    api = lineage.Api(project="p")
    again = api.artifact_version("policy:v0")
    assert again.metadata == {"a": 2} and again.description == "second"
    assert [(e.kind, e.old, e.new) for e in api.events("policy:v0")] == [
        ("metadata.updated", {"a": 1}, {"a": 2}),
        ("description.updated", "first", "second"),
    ]


def test_delete_and_gc(env) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p") as run:
        keep = log_model(run, b"keep")
        drop = log_model(run, b"drop" * 1000)
        drop.set_alias("prod")
    api = lineage.Api(project="p")
    with pytest.raises(lineage.AliasedVersion, match="prod"):
        api.delete("policy:v1")
    api.delete("policy:v1", force=True)
    assert api.artifact_version("policy:latest").ref == keep.ref
    with pytest.raises(lineage.VersionNotFound, match="deleted"):
        api.artifact_version("policy:v1")
    blobs = Client.shared().stores.blobs
    dropped = drop.files()[0].digest
    assert dropped in set(blobs.digests())
    report = api.gc(grace=0)
    assert report.blobs_removed >= 2  # the file and the manifest
    assert dropped not in set(blobs.digests())
    api.artifact_version(keep.ref).verify()  # what is live is untouched
    # lineage of the deleted version stays
    assert run.id in api.lineage("policy:v1").ids


def test_corrupt_blob_is_named_by_verify_and_download(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write("data/a.txt", "alpha")
    write("data/b.txt", "bravo")
    with lineage.init(project="p") as run:
        art = lineage.Artifact("ds", type="dataset")
        art.add_dir("data")
        v = run.log_artifact(art)
    digest = next(f.digest for f in v.files() if f.path == "b.txt")
    blob = Path(env.blobs) / digest[:2] / digest[2:]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"bravX")
    with pytest.raises(lineage.IntegrityError, match=r"b\.txt"):
        v.verify()
    with pytest.raises(lineage.DigestMismatch, match=r"b\.txt"):
        v.download(tmp_path / "out")
    assert not (tmp_path / "out" / "b.txt").exists()


def test_download_skips_files_already_present(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        write(f"data/{i}.txt", f"file {i}")
    with lineage.init(project="p") as run:
        art = lineage.Artifact("ds", type="dataset")
        art.add_dir("data", prefix="train")
        v = run.log_artifact(art)
    out = v.download(tmp_path / "out")
    assert sorted(p.name for p in (out / "train").iterdir()) == [f"{i}.txt" for i in range(5)]
    inodes = {p.name: p.stat().st_ino for p in (out / "train").iterdir()}
    (out / "train" / "3.txt").write_text("edited by hand")
    v.download(tmp_path / "out")
    assert (out / "train" / "3.txt").read_text() == "file 3"  # repaired
    after = {p.name: p.stat().st_ino for p in (out / "train").iterdir()}
    assert {k for k in inodes if inodes[k] != after[k]} == {"3.txt"}  # others untouched


def test_reference_artifacts_track_without_copying(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = write(tmp_path / "bucket" / "shard-0.bin", b"x" * 1000)
    write(tmp_path / "bucket" / "sub" / "shard-1.bin", b"y" * 10)
    with lineage.init(project="p") as run:
        art = lineage.Artifact("raw", type="dataset")
        assert art.add_reference((tmp_path / "bucket").as_uri(), name="raw") == 2
        v = run.log_artifact(art)
    files = {f.path: f for f in v.files()}
    assert set(files) == {"raw/shard-0.bin", "raw/sub/shard-1.bin"}
    assert files["raw/shard-0.bin"].uri == source.as_uri() and files["raw/shard-0.bin"].size == 1000
    assert files["raw/shard-0.bin"].digest not in set(Client.shared().stores.blobs.digests())
    out = v.download(tmp_path / "out")
    assert (out / "raw" / "shard-0.bin").read_bytes() == b"x" * 1000
    source.write_bytes(b"z" * 1000)  # the source changed behind our back
    with pytest.raises(lineage.DigestMismatch, match=r"shard-0\.bin"):
        v.download(tmp_path / "out2")
    with pytest.raises(lineage.IntegrityError, match=r"shard-0\.bin"):
        v.verify()
    with pytest.raises(lineage.InvalidPath, match="max_objects"):
        lineage.Artifact("raw", type="dataset").add_reference(
            (tmp_path / "bucket").as_uri(), max_objects=1
        )


def test_a_dead_process_leaves_a_running_run_until_reaped(env, workdir) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import os, lineage\n"
        "run = lineage.init(project='p', job_type='train')\n"
        "print(run.id, flush=True)\n"
        "os._exit(9)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ
    )
    run_id = done.stdout.strip()
    api = lineage.Api(project="p")
    assert api.run(run_id).state == "running"
    reaped = api.reap_stale()
    assert [r.id for r in reaped] == [run_id]
    assert api.run(run_id).state == "crashed"


def _log_in_child(store: str, blobs: str, workdir: str, n: int) -> None:
    os.chdir(workdir)
    with lineage.init(project="p", store=store, blobs=blobs) as run:
        path = Path(f"w{n}.bin")
        path.write_bytes(f"worker {n}".encode())
        art = lineage.Artifact("shared", type="model")
        art.add_file(path)
        run.log_artifact(art)


def test_concurrent_log_artifact_from_processes(env, workdir) -> None:  # type: ignore[no-untyped-def]
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_log_in_child, args=(env.store, env.blobs, str(workdir), n))
        for n in range(6)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    versions = lineage.Api(project="p").versions("shared")
    assert [v.index for v in versions] == list(range(6))
    assert len({v.digest for v in versions}) == 6
    contents = sorted(json.dumps(f.path) for v in versions for f in v.files())
    assert len(contents) == 6


def test_an_error_message_with_a_lone_surrogate_propagates_unchanged(env) -> None:  # type: ignore[no-untyped-def]
    error = OSError("bad\udcff")
    with pytest.raises(OSError) as raised, lineage.init(project="p") as run:
        raise error
    assert raised.value is error and raised.value.args == ("bad\udcff",)
    record = lineage.Api().run(run.id)
    assert record.state == "failed"
    assert (record.error or "").startswith("OSError: bad\\udcff")


def test_finish_twice_is_forgiving(env) -> None:  # type: ignore[no-untyped-def]
    run = lineage.init(project="p")
    run.finish(summary={"acc": 0.9})
    first = lineage.Api().run(run.id)
    run.finish()  # the same state again: nothing happens
    with pytest.warns(lineage.LineageWarning, match=r"already ended finished.*failed"):
        run.finish(state="failed", error="too late")  # a run ends once
    assert lineage.Api().run(run.id) == first
    assert run.state == "finished"
    with pytest.raises(lineage.InvalidInput, match="running"):
        run.finish(state="running")


def test_a_second_init_finishes_the_first(env, caplog) -> None:  # type: ignore[no-untyped-def]
    first = lineage.init(project="p", job_type="explore")
    with caplog.at_level("WARNING", logger="lineage.run"):
        second = lineage.init(project="p", job_type="explore")
    assert first.state == "finished"
    api = lineage.Api()
    assert api.run(first.id).state == "finished"
    assert api.run(second.id).state == "running"
    assert any(first.id in message and "finished" in message for message in caplog.messages)
    second.finish()
    assert api.run(second.id).state == "finished"


def test_an_init_in_another_thread_leaves_this_threads_run_alone(env) -> None:  # type: ignore[no-untyped-def]
    import threading

    mine = lineage.init(project="p", job_type="sweep")
    theirs: list[lineage.Run] = []
    worker = threading.Thread(target=lambda: theirs.append(lineage.init(project="p")))
    worker.start()
    worker.join(60)
    assert [mine.state, theirs[0].state] == ["running", "running"]  # concurrent runs may be
    mine.finish()
    theirs[0].finish()


def test_relogging_identical_bytes_warns_and_keeps_what_was_offered(env) -> None:  # type: ignore[no-untyped-def]
    with lineage.init(project="p") as first:
        v0 = log_model(first, b"same", metadata={"lr": 0.1}, description="first try")
    with lineage.init(project="p") as second:
        with pytest.warns(
            lineage.LineageWarning,
            match=r"p/policy:v0 already holds these exact bytes.*metadata and description",
        ):
            again = log_model(second, b"same", metadata={"lr": 0.2}, description="second try")
        assert again.ref == v0.ref  # the dedup stays
        assert again.metadata == {"lr": 0.1} and again.description == "first try"
        log_model(second, b"same", metadata={"lr": 0.1})  # nothing new offered: no warning
    relogged = [e for e in lineage.Api().events("p/policy:v0") if e.kind == "version.relogged"]
    assert [(e.actor, e.old, e.new) for e in relogged] == [
        (
            second.id,
            {"metadata": {"lr": 0.1}, "description": "first try"},
            {"run": second.id, "metadata": {"lr": 0.2}, "description": "second try"},
        )
    ]
    assert lineage.Api().artifact_version("p/policy:v0").metadata == {"lr": 0.1}


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path (the download marker included)."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def log_files(project: str, name: str, files: dict[str, str]) -> lineage.ArtifactVersion:
    folder = Path(f"src-{project}-{name}-{len(files)}-{sorted(files)[0].replace('/', '_')}")
    for path, content in files.items():
        write(folder / path, content)
    with lineage.init(project=project) as run:
        art = lineage.Artifact(name, type="model")
        art.add_dir(folder)
        return run.log_artifact(art)


MARKER = ".lineage-download.json"


def test_default_download_folders_are_per_project(env) -> None:  # type: ignore[no-untyped-def]
    churn = log_files("churn", "model", {"weights.bin": "churn"})
    vision = log_files("vision", "model", {"weights.bin": "vision", "labels.txt": "cat"})
    assert churn.version == vision.version == "v0"
    a, b = churn.download(), vision.download()
    assert a == Path("artifacts") / "churn" / "model:v0"
    assert b == Path("artifacts") / "vision" / "model:v0"
    assert set(tree(a)) == {"weights.bin", MARKER} and (a / "weights.bin").read_text() == "churn"
    assert set(tree(b)) == {"weights.bin", "labels.txt", MARKER}
    assert (b / "weights.bin").read_text() == "vision"


def test_a_download_over_an_earlier_version_leaves_only_the_new_files(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    v0 = log_files("p", "model", {"a.txt": "a0", "b.txt": "b0", "deep/c.txt": "c0"})
    v1 = log_files("p", "model", {"a.txt": "a1", "d/e.txt": "e1"})
    out = tmp_path / "model"
    v0.download(out)
    (out / "deep" / "notes.txt").write_text("mine")  # a folder lineage downloaded into is its own
    v1.download(out)
    assert {k: v for k, v in tree(out).items() if k != MARKER} == {
        "a.txt": b"a1",
        "d/e.txt": b"e1",
    }
    assert not (out / "deep").exists()
    v0.download(out)  # and back
    assert {k for k in tree(out) if k != MARKER} == {"a.txt", "b.txt", "deep/c.txt"}


def test_a_download_refuses_a_folder_that_holds_something_else(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    churn = log_files("churn", "model", {"weights.bin": "churn"})
    vision = log_files("vision", "model", {"weights.bin": "vision", "labels.txt": "cat"})
    mine = tmp_path / "mine"
    write(mine / "train.py", "print('my code')")
    with pytest.raises(lineage.Conflict, match=r"train\.py"):
        churn.download(mine)
    assert tree(mine) == {"train.py": b"print('my code')"}  # untouched
    shared = tmp_path / "shared"
    churn.download(shared)
    before = tree(shared)
    with pytest.raises(lineage.Conflict, match="churn/model"):
        vision.download(shared)  # another project's artifact: its files would mix
    assert tree(shared) == before
    # a folder holding only files of the version (say, copied by hand) is fine
    write(tmp_path / "copied" / "weights.bin", "stale")
    assert (churn.download(tmp_path / "copied") / "weights.bin").read_text() == "churn"


def test_the_download_marker_is_never_logged(env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    v0 = log_files("p", "model", {"w.bin": "w"})
    out = v0.download(tmp_path / "models" / "base")
    assert (out / MARKER).exists()
    (out / "w.bin").write_text("fine-tuned")
    with lineage.init(project="p") as run:
        art = lineage.Artifact("model", type="model")
        assert art.add_dir(tmp_path / "models") == 1
        v1 = run.log_artifact(art)
    assert [f.path for f in v1.files()] == ["base/w.bin"]

"""The wheel, installed into a fresh venv, works on its own: not only an editable checkout.

The wheel is built from this checkout (``pip wheel``, as ``make dist`` does) and installed with
pip into a new venv, offline. Its dependencies come from the test's own venv through a ``.pth``
line (a path, so that venv's editable ``lineage`` is not on it); every check runs outside the
checkout and first proves that ``lineage`` is imported from the new venv.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
from ports import free_port

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lineage"
SCRIPT = """
import lineage, pathlib
from importlib import resources
queries = resources.files("lineage.server.graphql") / "queries"
print(json.dumps({
    "file": lineage.__file__,
    "version": lineage.__version__,
    "queries": sorted(p.name for p in queries.iterdir()),
}))
pathlib.Path("w.bin").write_bytes(b"weights" * 100)
with lineage.init(project="wheel", job_type="train", store="store") as run:
    art = lineage.Artifact("model", type="model")
    art.add_file("w.bin", name="w.bin")
    print(json.dumps({"ref": run.log_artifact(art).ref}))
"""


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def test_the_wheel_installed_in_a_fresh_venv_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINEAGE_", "PYTHON"))}
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(ROOT)], ROOT, env)
    (wheel,) = dist.glob("lineage_graph-*-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [
        "lineage/py.typed",
        "lineage/server/templates/base.html",
        "lineage/server/graphql/queries/upstream_lineage.graphql",
        "lineage/server/static/graphiql/index.html",
        "lineage/server/static/graphiql/graphiql.min.js",
        "lineage/server/static/graphiql/react-dom.production.min.js",
        "lineage/server/static/graphiql/LICENSE.graphiql",
        "lineage/server/static/graphiql/LICENSE.react",
    ]
    assert [n for n in shipped if n not in names] == []

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python, command = venv / "bin" / "python", venv / "bin" / "lineage"
    site = Path(
        run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            tmp_path, env).strip()
    )  # fmt: skip
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # no --no-deps: pip checks the wheel's declared dependencies, offline
    run([*pip, "--python", str(python), "install", "--no-index", str(wheel)], tmp_path, env)

    work = tmp_path / "work"
    work.mkdir()
    first, second = run([str(python), "-c", "import json" + SCRIPT], work, env).splitlines()
    facts = json.loads(first)
    assert Path(facts["file"]).is_relative_to(site), facts["file"]  # the wheel's, not ours
    assert wheel.name.startswith(f"lineage_graph-{facts['version']}-")  # lineage.__version__
    assert facts["queries"] == sorted(
        p.name for p in (PACKAGE / "server/graphql/queries").iterdir()
    )
    ref = json.loads(second)["ref"]
    assert ref == "wheel/model:v0"

    assert "wheel/model" in run([str(command), "--store", "store", "ls"], work, env)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(command), "--store", "store", "server", "--port", str(port)],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the wheel's server did not start"
                time.sleep(0.1)
        index = httpx.get(f"{url}/")
        assert index.status_code == 200 and "model" in index.text
        assert 'href="/graphql"' in index.text
        page = httpx.get(f"{url}/versions/wheel/model/0")
        assert page.status_code == 200 and "model:v0" in page.text
        ide = httpx.get(f"{url}/graphql", headers={"accept": "text/html"})
        assert ide.status_code == 200 and "/static/graphiql/graphiql.min.js" in ide.text
        assert "unpkg.com" not in ide.text
        for name in ("graphiql.min.js", "graphiql.min.css", "react.production.min.js"):
            asset = httpx.get(f"{url}/static/graphiql/{name}")
            assert asset.status_code == 200
            assert asset.content == (PACKAGE / "server/static/graphiql" / name).read_bytes()
        query = (site / "lineage/server/graphql/queries/upstream_lineage.graphql").read_text()
        answer = httpx.post(
            f"{url}/graphql", json={"query": query, "variables": {"ref": ref, "depth": 5}}
        ).json()
        assert "errors" not in answer, answer
        refs = {n["ref"] for n in answer["data"]["lineage"]["nodes"] if n["ref"]}
        assert refs == {ref}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

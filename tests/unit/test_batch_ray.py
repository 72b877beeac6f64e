"""The batch command on a local Ray (2 CPUs, 2 workers): the same rows as a local run, resume, a killed worker."""

from __future__ import annotations

import os
import signal
import threading
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from captioner.batch.outputs import read_records
from captioner.batch.parquet_folder import ParquetFolder
from tests.unit.batch_files import image_bytes

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # Ray starts in a minute; each job starts its workers and loads the model in each

ROOT = Path(__file__).resolve().parents[2]
WORKER_TITLE = "MapBatches(RayCaptioner)"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """Images of several kinds, a broken one, a zip with an entry it skips, a list with references."""
    root = tmp_path_factory.mktemp("ray-inputs")
    (root / "photos").mkdir()
    for i in range(6):
        (root / "photos" / f"{i}.png").write_bytes(image_bytes(colour=(40 * i, 200 - 30 * i, 90), size=(60 + 7 * i, 50)))
    (root / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    with zipfile.ZipFile(root / "more.zip", "w") as z:
        z.writestr("inside/a.jpg", image_bytes("JPEG", colour=(10, 10, 200)))
        z.writestr("notes.md", "not an image")
    (root / "listed").mkdir()
    (root / "listed" / "x.png").write_bytes(image_bytes(colour=(200, 0, 0)))
    (root / "listed" / "y.webp").write_bytes(image_bytes("WEBP", colour=(0, 0, 200), size=(90, 90)))
    (root / "refs.csv").write_text("path,reference\nlisted/x.png,a red dot | a circle\nlisted/y.webp,a blue ball\n")
    return [str(root / "photos"), str(root / "more.zip"), str(root / "refs.csv")]


def rows_of(out: Path) -> list[dict]:
    records = list(ParquetFolder(str(out)).records()) if out.is_dir() else list(read_records(str(out), "parquet"))
    rows = [r for chunk in records for r in chunk]
    return sorted(({k: v for k, v in r.items() if k != "timings"} for r in rows), key=lambda r: r["path"])


def same_rows(a: list[dict], b: list[dict]) -> bool:
    """Equal rows; scores to float rounding (a worker with one thread sums in another order than two threads)."""

    def exact(rows):
        return [{k: v for k, v in r.items() if not isinstance(v, float)} for r in rows]

    def floats(rows):
        return [v for r in rows for v in r.values() if isinstance(v, float)]

    return exact(a) == exact(b) and floats(a) == pytest.approx(floats(b), rel=1e-5)


def test_a_ray_run_writes_the_rows_a_local_run_writes_and_resumes(run_cli, inputs, tmp_path):
    local_status, _ = run_cli(*inputs, "--out", tmp_path / "local.parquet", "--batch-size", "3")
    ray_out = (tmp_path / "on-ray").as_uri()  # a URI, as s3://... would be: written through pyarrow's filesystems
    ray_status, err = run_cli(*inputs, "--out", ray_out, "--ray", "--workers", "2", "--batch-size", "3")
    local, on_ray = rows_of(tmp_path / "local.parquet"), rows_of(tmp_path / "on-ray")
    assert local_status == ray_status == 1  # broken.jpg and the zip's notes.md
    assert len(on_ray) == 11 and same_rows(on_ray, local)
    assert (tmp_path / "on-ray.metrics.json").exists() and (tmp_path / "local.metrics.json").exists()

    status, err = run_cli(*inputs, "--out", ray_out, "--ray", "--workers", "2", "--batch-size", "3")
    assert status == 1 and "skipped 9 images" in err  # the two errors are tried again...
    assert same_rows(rows_of(tmp_path / "on-ray"), local)  # ...and replace their old rows

    # References that arrive on a later run are merged into the rows; a name that is not UTF-8 is captioned.
    photo = str(Path(inputs[0]) / "0.png")
    (tmp_path / "later.csv").write_text(f"path,reference\n{photo},a late reference\n")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / os.fsdecode(b"caf\xe9.png")).write_bytes(image_bytes(colour=(5, 5, 5)))
    status, err = run_cli(tmp_path / "later.csv", tmp_path / "odd", "--out", ray_out, "--ray", "--workers", "2")
    rows = {r["path"]: r for r in rows_of(tmp_path / "on-ray")}
    assert status == 0 and len(rows) == 12 and rows[photo]["references"] == ["a late reference"]
    assert rows[str(tmp_path / "odd") + "/caf\\xe9.png"]["status"] == "ok"


def test_a_killed_worker_is_retried_and_every_image_written_once(run_cli, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(24):
        (folder / f"{i:02d}.png").write_bytes(image_bytes(colour=(10 * i, 240 - 10 * i, 120), size=(50 + i, 40)))
    result: dict = {}
    job = threading.Thread(
        target=lambda: result.update(
            status=run_cli(folder, "--out", tmp_path / "out", "--ray", "--workers", "2", "--batch-size", "2")[0]
        )
    )
    job.start()
    victim = None
    deadline = time.monotonic() + 240
    while victim is None and job.is_alive():
        assert time.monotonic() < deadline, "no worker started captioning"
        victim = next(
            (
                p
                for p in psutil.process_iter(["pid", "cmdline"])
                if f"{WORKER_TITLE}).submit" in " ".join(p.info["cmdline"] or [])
            ),
            None,
        )
        time.sleep(0.05)
    assert victim is not None, "the job ended before a worker could be killed"
    os.kill(victim.pid, signal.SIGKILL)  # in the middle of a batch
    job.join(timeout=300)
    assert not job.is_alive() and result["status"] == 0
    assert not psutil.pid_exists(victim.pid) or victim.status() == psutil.STATUS_ZOMBIE
    rows = rows_of(tmp_path / "out")
    assert [r["path"] for r in rows] == [str(folder / f"{i:02d}.png") for i in range(24)]  # each exactly once
    assert all(r["status"] == "ok" for r in rows)

"""Fixtures: each storage test runs on SQLite and on a throwaway PostgreSQL database.

PostgreSQL comes from `RETRAIN_TEST_PG_URL` (default: the local server, database `postgres`, as an
admin connection used to create and drop `retrain_test_*` databases). Unreachable, it skips those
tests, except with `CI=true`, where it fails them.

An initialised database is a copy of one initialised once per session: a file copy on SQLite.
On PostgreSQL, a `slow` test (it starts processes that may outlive it) gets a database of its
own, created from the template; the other tests take turns on one database copied from the
template, emptied before each test (connections ended, every table emptied, the default configs
seeded as `db init` seeds them), because creating a database costs a test 0.1-0.5 s.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner, Result

from retrain_cli.cli.app import app
from retrain_cli.core.durations import utcnow
from retrain_cli.db.models import Base
from retrain_cli.db.schema import init_database, seed_default_configs
from retrain_cli.db.session import SCHEMA_REVISION, make_engine, session_scope
from tests.helpers import StoreGate

PG_ADMIN_URL = os.environ.get(
    "RETRAIN_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        message = f"PostgreSQL unreachable at {make_url(PG_ADMIN_URL)!r}: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        engine.dispose()
    return PG_ADMIN_URL


def _url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def _database(admin_url: str, template: str | None = None, kind: str = "") -> Iterator[str]:
    """A new database, empty or a copy of `template`, dropped with its connections after the
    block: its name."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"retrain_test_{kind}{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        try:
            yield name
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def new_pg_database(pg_admin_url: str) -> Iterator[Callable[..., str]]:
    """Make fresh PostgreSQL databases, empty or copies of `template`; all are dropped after
    the test."""
    with ExitStack() as stack:

        def create(template: str | None = None) -> str:
            return _url(pg_admin_url, stack.enter_context(_database(pg_admin_url, template)))

        yield create


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'retrain.db'}"
    create: Callable[..., str] = request.getfixturevalue("new_pg_database")
    return create()


@pytest.fixture(scope="session")
def pg_initialised(pg_admin_url: str) -> Iterator[str]:
    """One PostgreSQL database after `db init`, the template every test's database copies
    (copying is faster than migrating each one)."""
    with _database(pg_admin_url, kind="template_") as name:
        engine = make_engine(_url(pg_admin_url, name))
        try:
            init_database(engine, utcnow())
        finally:
            engine.dispose()  # a template must have no connections
        yield name


@pytest.fixture(scope="session")
def pg_shared(pg_admin_url: str, pg_initialised: str) -> Iterator[str]:
    """The database the fast PostgreSQL tests take turns on (emptied before each by `_reset`)."""
    with _database(pg_admin_url, pg_initialised, kind="shared_") as name:
        yield _url(pg_admin_url, name)


def _reset(url: str) -> None:
    """Bring the shared database back to what `db init` leaves: no other connection, every
    table empty, its identities restarted, the schema's revision, the default configs. (DELETE
    rather than TRUNCATE: for a few rows it is twice as fast.) The registry's id stays: it is
    the database's, not a fact a test recorded."""
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name != "registry_identity"]
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            sequences = conn.scalars(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
            )
            statements = [f'DELETE FROM "{table.name}"' for table in tables]
            statements += [f'ALTER SEQUENCE "{name}" RESTART' for name in sequences]
            statements += ["DELETE FROM alembic_version"]
            conn.execute(text("; ".join(statements)))
            head = {"head": SCHEMA_REVISION}
            conn.execute(text("INSERT INTO alembic_version VALUES (:head)"), head)
            with Session(bind=conn) as session:
                seed_default_configs(session, utcnow())
                session.flush()
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database file after `db init`, copied by every test that needs one."""
    path = tmp_path_factory.mktemp("template") / "retrain.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        init_database(engine, utcnow())
    finally:
        engine.dispose()  # the last connection's close folds the WAL into the file
    assert not path.with_name("retrain.db-wal").exists()
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database after `db init`, on each backend."""
    if request.param == "postgresql":
        if request.node.get_closest_marker("slow") is None:
            url: str = request.getfixturevalue("pg_shared")
            _reset(url)
            return url
        create: Callable[..., str] = request.getfixturevalue("new_pg_database")
        return create(request.getfixturevalue("pg_initialised"))
    path = tmp_path / "retrain.db"
    shutil.copy(request.getfixturevalue("sqlite_initialised"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def session(db_url: str) -> Iterator[Callable[[], AbstractContextManager[Session]]]:
    """Open a committed unit of work on the test database: `with session() as s: ...`."""
    engine = make_engine(db_url)
    yield lambda: session_scope(engine)
    engine.dispose()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own RETRAIN_HOME and no inherited settings."""
    path = tmp_path / "home"
    monkeypatch.setenv("RETRAIN_HOME", str(path))
    inherited = ("RETRAIN_DATABASE_URL", "RETRAIN_CONFIG", "XDG_DATA_HOME", "RETRAIN_LOG")
    for name in (*inherited, "RETRAIN_DASK_SCHEDULER"):
        monkeypatch.delenv(name, raising=False)
    return path


class Cli:
    """Run `retrain-cli` in-process against one database."""

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self.runner = CliRunner()

    def __call__(self, *args: str, url: bool = True) -> Result:
        argv = list(args)
        if url and self.database_url and argv and argv[0] not in ("--help", "--version"):
            argv += ["--database-url", self.database_url]
        return self.runner.invoke(app, argv)


@pytest.fixture
def cli(db_url: str) -> Cli:
    """`retrain-cli` bound to an initialised database on each backend."""
    return Cli(db_url)


def as_another_database(
    cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch, *args: str
) -> Result:
    """`args` (default `jobs list`) run from `home` against a second, new SQLite database:
    what a prefix or a home claimed by the first database refuses."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("RETRAIN_HOME", str(home))
    elsewhere = f"sqlite:///{home / 'other.db'}"
    assert cli("db", "init", "--database-url", elsewhere, url=False).exit_code == 0
    return cli(*(args or ("jobs", "list")), "--database-url", elsewhere, url=False)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def require_distributed() -> None:
    """Skip without the dask extra; with CI=true, fail (CI runs the cluster tests)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("the dask extra is not installed (CI runs the cluster tests)")
        pytest.skip("the dask extra is not installed: pip install 'retrain-cli[dask]'")


def require_program(name: str, package: str) -> str:
    """The path of `name` on PATH; skip where it is missing, except with CI=true (`.ci/setup`
    installs Debian's `package`), where it fails."""
    import shutil

    found = shutil.which(name)
    if found is None:
        why = f"{name} is not installed (Debian's {package} package; .ci/setup installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """The address of a real Dask cluster: two worker processes over TCP, for one test module
    (stopped after it, so that idle workers do not share the cores with the rest)."""
    require_distributed()
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def unreachable_scheduler(home: Path) -> str:
    """A config file whose Dask scheduler nothing answers (2 s timeout); its address."""
    import yaml

    require_distributed()
    address = "tcp://127.0.0.1:9"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        yaml.safe_dump({"dask": {"scheduler": address, "timeout": 2}})
    )
    return address


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server recording every POST (path, headers, body)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _fast_tests_train_no_model_and_start_no_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast loop (`-m "not slow"`) trains no real model and starts no process: a test that
    does fails here, saying to mark it `slow`."""
    if "slow" in request.node.keywords:
        return
    import subprocess

    from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer
    from retrain_cli.trainers.torch_trainer import SequenceTrainer

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            pytest.fail(f"a fast test {what}: mark it @pytest.mark.slow")

        return refused

    monkeypatch.setattr(LightGBMTrainer, "fit", refuse("trains a LightGBM model"))
    monkeypatch.setattr(SequenceTrainer, "fit", refuse("trains a PyTorch model"))
    real_popen = subprocess.Popen.__init__
    started = refuse("starts a process")

    def popen(self: Any, args: Any, *more: Any, **kwargs: Any) -> Any:
        program = os.path.basename(str(args[0] if isinstance(args, list | tuple) else args))
        if program in LIBRARY_PROBES:  # a library asking the system, not the test starting work
            return real_popen(self, args, *more, **kwargs)
        return started()

    monkeypatch.setattr(subprocess.Popen, "__init__", popen)


# what libraries run on their own when first used: platform.architecture, ctypes.util, and
# matplotlib's font cache in a new environment
LIBRARY_PROBES = frozenset({"file", "uname", "ldconfig", "gcc", "cc", "ld", "objdump", "fc-list"})


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A real S3-protocol server on 127.0.0.1 (moto's standalone server, a process of its own)
    for one test module, and the standard environment that points S3 clients at it (the
    endpoint, and credentials the server accepts). Its URL."""
    import socket
    import subprocess
    import sys
    import time

    try:
        import moto.server  # noqa: F401
        import s3fs
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("s3fs and moto[server] are not installed (CI runs the object-store tests)")
        pytest.skip("s3fs and moto[server] are not installed: pip install -e '.[dev]'")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    environment = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "retrain-test-key",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-never-printed",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()  # fsspec keeps one per arguments, not endpoint
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.1)
            yield url
        finally:
            server.kill()
            server.wait()


@pytest.fixture
def bucket(s3_server: str) -> str:
    """A fresh prefix in the test bucket: `s3://retrain-test/<random>`."""
    import s3fs

    fs = s3fs.S3FileSystem()
    if not fs.exists("retrain-test"):
        fs.mkdir("retrain-test")
    return f"s3://retrain-test/{uuid.uuid4().hex}"


@pytest.fixture
def store_gate(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreGate]:
    """S3 clients of this process pointed at a `StoreGate` in front of the S3 server."""
    import s3fs

    gate = StoreGate(s3_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", gate.url)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield gate
    finally:
        gate.close()
        s3fs.S3FileSystem.clear_instance_cache()

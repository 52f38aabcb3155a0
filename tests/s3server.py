"""A real S3-compatible server on 127.0.0.1 for tests and benchmarks, always stopped afterwards.

Two back-ends:

* ``s3proxy`` (default): S3Proxy (Jetty, in-memory "transient" store) from the jar that
  ``make objectstore-jars`` downloads to ``.cache/jars/`` (override with ``S3PROXY_JAR``). Answers requests
  concurrently; needs Java 17 (``JAVA_HOME`` or ``java`` on PATH). ``version``: "4.0.0" (default), which
  honours ``If-None-Match: *`` (a put-if-absent), or "2.6.0", which ignores it.
* ``moto``: moto's standalone server (``python -m moto.server``), for machines without Java.

    with s3_server() as s3:                      # s3: S3Endpoint
        fs = s3fs.S3FileSystem(**s3fs_storage_options(s3.env()))
        fs.pipe(f"{s3.bucket}/a", b"x")

From a conftest:

    from tests.s3server import s3_server_fixture
    s3 = s3_server_fixture(scope="session")     # a fixture named `s3`, yielding an S3Endpoint

The tests share one S3Proxy 4.0.0 for the run (tests/conftest.py: `shared_s3`, started on first use); a test
module takes a bucket of its own on it, emptied when the module ends:

    from tests.s3server import s3_bucket_fixture
    s3 = s3_bucket_fixture(scope="module")      # a fixture named `s3`: an S3Endpoint with a new bucket
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
S3PROXY_VERSIONS = ("4.0.0", "2.6.0")
DEFAULT_S3PROXY_VERSION = "4.0.0"
DEFAULT_JAR_CACHE = REPO / ".cache" / "jars"

# S3Proxy rejects the CRC checksums (aws-chunked trailers) that botocore >= 1.36 sends by default.
CHECKSUM_ENV = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}


@dataclass(frozen=True)
class S3Endpoint:
    """Where a running test server answers, and the credentials it accepts."""

    url: str
    bucket: str
    access_key: str = "testkey"
    secret_key: str = "testsecret"
    region: str = "us-east-1"
    backend: str = "s3proxy"
    log_path: Path | None = field(default=None, compare=False)

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def env(self, url: str | None = None) -> dict[str, str]:
        """Standard AWS variables that point a client at this server (or at `url`, e.g. a proxy in front of it)."""
        return {
            "AWS_ENDPOINT_URL": url or self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **CHECKSUM_ENV,
        }


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def s3proxy_jar(version: str = DEFAULT_S3PROXY_VERSION) -> Path:
    """The S3Proxy jar of `version`: $S3PROXY_JAR (the default version only) or .cache/jars/; tells how to get it
    when it is missing."""
    if version not in S3PROXY_VERSIONS:
        raise ValueError(f"unknown S3Proxy version {version!r}: use one of {', '.join(S3PROXY_VERSIONS)}")
    cached = DEFAULT_JAR_CACHE / f"s3proxy-{version}-jar-with-dependencies.jar"
    jar = Path(os.environ.get("S3PROXY_JAR") or cached) if version == DEFAULT_S3PROXY_VERSION else cached
    if not jar.is_file():
        raise FileNotFoundError(f"{jar} is missing: run `make objectstore-jars` (or set S3PROXY_JAR)")
    return jar


def java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return str(Path(home, "bin", "java"))
    for candidate in ("/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/java-17-openjdk-arm64"):
        if Path(candidate, "bin", "java").exists():
            return str(Path(candidate, "bin", "java"))
    found = shutil.which("java")
    if not found:
        raise FileNotFoundError("no Java: set JAVA_HOME to a Java 17")
    return found


def _s3proxy_command(workdir: Path, port: int, access_key: str, secret_key: str, store: str, version: str) -> list[str]:
    props = workdir / "s3proxy.conf"
    lines = [
        f"s3proxy.endpoint=http://127.0.0.1:{port}",
        "s3proxy.authorization=aws-v2-or-v4",
        f"s3proxy.identity={access_key}",
        f"s3proxy.credential={secret_key}",
        f"jclouds.provider={store}",
        f"jclouds.identity={access_key}",
        f"jclouds.credential={secret_key}",
    ]
    if store.startswith("filesystem"):
        (workdir / "data").mkdir()
        lines.append(f"jclouds.filesystem.basedir={workdir / 'data'}")
    props.write_text("\n".join(lines) + "\n")
    return [java_executable(), "-Xmx1g", "-jar", str(s3proxy_jar(version)), "--properties", str(props)]


def _moto_command(port: int) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _wait_until_answers(url: str, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"S3 server exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            urllib.request.urlopen(url + "/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # 403 for an unsigned request: it answers
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"S3 server did not answer on {url} within {timeout:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def create_bucket(endpoint: S3Endpoint, bucket: str | None = None) -> None:
    """Create `bucket` (default: the endpoint's) with botocore, which s3fs brings."""
    import botocore.session
    from botocore.config import Config

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint.url,
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name=endpoint.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )
    client.create_bucket(Bucket=bucket or endpoint.bucket)


@contextlib.contextmanager
def s3_server(
    backend: str | None = None,
    bucket: str = "test-bucket",
    store: str = "transient",
    startup_timeout: float = 60.0,
    version: str = DEFAULT_S3PROXY_VERSION,
) -> Iterator[S3Endpoint]:
    """Start an S3 server on 127.0.0.1 (a free port), create `bucket`, yield its S3Endpoint, always stop it.

    backend: "s3proxy" (default, or $TEST_S3_BACKEND) or "moto". store (S3Proxy only): "transient" keeps objects
    in the JVM heap; "filesystem" in a temporary folder. version (S3Proxy only): "4.0.0" or "2.6.0".
    """
    backend = backend or os.environ.get("TEST_S3_BACKEND", "s3proxy")
    access_key, secret_key = "testkey", "testsecret"
    with tempfile.TemporaryDirectory(prefix=f"s3server-{backend}-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        if backend == "s3proxy":
            cmd = _s3proxy_command(workdir, port, access_key, secret_key, store, version)
        elif backend == "moto":
            cmd = _moto_command(port)
        else:
            raise ValueError(f"unknown S3 test server back-end {backend!r}: use 's3proxy' or 'moto'")
        log_path = workdir / "server.log"
        endpoint = S3Endpoint(
            url=f"http://127.0.0.1:{port}",
            bucket=bucket,
            access_key=access_key,
            secret_key=secret_key,
            backend=backend,
            log_path=log_path,
        )
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp)
        try:
            _wait_until_answers(endpoint.url, proc, log_path, startup_timeout)
            create_bucket(endpoint)
            yield endpoint
        finally:
            _stop(proc)


def s3_server_fixture(scope: str = "session", name: str = "s3", **kwargs):
    """A pytest fixture (to assign in a conftest or test module) that yields a running server's S3Endpoint.

    The server starts on first use and is stopped when the scope ends, whatever the tests did.
    """
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def _fixture() -> Iterator[S3Endpoint]:
        with s3_server(**kwargs) as endpoint:
            yield endpoint

    return _fixture


def s3_bucket_fixture(scope: str = "module", name: str = "s3"):
    """A pytest fixture that yields the shared server's S3Endpoint (the session fixture `shared_s3` of
    tests/conftest.py) with a new bucket of its own; the bucket is emptied when the scope ends.

    One server for the run instead of one per module: each start of S3Proxy is a JVM (about 7 s on a busy
    2-core machine); a bucket per scope keeps the modules from seeing each other's objects.
    """
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def _fixture(shared_s3: S3Endpoint) -> Iterator[S3Endpoint]:
        endpoint = dataclasses.replace(shared_s3, bucket=f"test-{uuid.uuid4().hex[:16]}")
        create_bucket(endpoint)
        yield endpoint
        _empty_bucket(endpoint)

    return _fixture


def _empty_bucket(endpoint: S3Endpoint) -> None:
    """Delete every object of the endpoint's bucket: the in-memory store lives as long as the shared server."""
    from dataset.object_store import s3_filesystem

    fs = s3_filesystem(endpoint.env())
    keys = fs.find(endpoint.bucket)
    if keys:
        fs.rm(keys)

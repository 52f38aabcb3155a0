"""An HTTP/1.1-aware TCP proxy on loopback that delays every request and counts requests by method and S3 kind.

Used by the object-store tests (count CopyObject requests: a commit must copy no object) and by the read benchmark
(every request pays a fixed latency, so overlapping reads must win). It runs its own asyncio loop in a background
thread; use it as a context manager:

    with LatencyProxy("127.0.0.1", server_port, delay_ms=20) as proxy:
        client(endpoint_url=proxy.endpoint) ...
        assert proxy.counts()["copy"] == 0

Requests are parsed (request line, headers, a body by Content-Length or chunked) only to find where each one ends;
bytes go through unchanged, so signatures computed for the proxy's Host stay valid. Responses are piped back as they
come. Each request waits `delay_ms` before it is forwarded; requests on different connections wait concurrently.

``process=True`` runs the proxy in a child process (this file as a script) that logs each request as a JSON line:
needed when the client holds the GIL while it waits on the network (TensorFlow's C++ file systems do:
``tf.io.TFRecordWriter`` through an in-process proxy deadlocks).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

_MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Request:
    """One request as the proxy saw it."""

    method: str
    target: str
    kind: str
    headers: dict[str, str]


def s3_kind(method: str, target: str, headers: dict[str, str]) -> str:
    """The S3 operation family of a request: copy, put, get, head, list, delete, multipart, post or other."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    # path style: /bucket or /bucket/key...
    has_key = "/" in parts.path.lstrip("/")
    if method == "PUT":
        if "x-amz-copy-source" in headers:
            return "copy"  # CopyObject and UploadPartCopy
        return "put"
    if method == "GET":
        return "get" if has_key else "list"
    if method == "HEAD":
        return "head"
    if method == "DELETE":
        return "delete"
    if method == "POST":
        if "uploads" in query or "uploadId" in query:
            return "multipart"
        if "delete" in query:
            return "delete"
        return "post"
    return "other"


class LatencyProxy:
    """Forward 127.0.0.1:<port> to upstream_host:upstream_port, adding `delay_ms` to each request and counting them."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        delay_ms: float = 0.0,
        host: str = "127.0.0.1",
        process: bool = False,
        log_path: str | None = None,
    ) -> None:
        self.process = process
        self._log_path = log_path
        self._log_offset = 0
        self._proc: subprocess.Popen | None = None
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        self._log_file = None
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.delay_s = delay_ms / 1000.0
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._waiting = 0
        self.peak_in_flight = 0  # (in-process proxy with a delay) most requests delayed at the same time

    # ---- public API -------------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The proxy's URL, for clients (``http://127.0.0.1:<port>``)."""
        return f"http://{self.host}:{self.port}"

    def requests(self) -> list[Request]:
        """All requests seen so far, in arrival order."""
        if self._proc is not None:
            return self._read_child_log()
        with self._lock:
            return list(self._requests)

    def counts(self) -> collections.Counter:
        """Requests seen so far by kind (copy, put, get, head, list, delete, multipart, ...) and by method."""
        c: collections.Counter = collections.Counter()
        for r in self.requests():
            c[r.kind] += 1
            c[r.method] += 1
            c["total"] += 1
        return c

    def reset(self) -> None:
        """Forget the requests counted so far."""
        if self._proc is not None:
            self._log_offset = os.path.getsize(self._child_log)
        with self._lock:
            self._requests.clear()
        self.peak_in_flight = 0

    def start(self) -> "LatencyProxy":
        if self.process:
            return self._start_child()
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError("latency proxy failed to start") from self._error
        if not self._ready.is_set():
            raise RuntimeError("latency proxy did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._stop_child()
            return
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(self._shutdown)
            thread.join(10)
        self._thread = None

    def __enter__(self) -> "LatencyProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- child process mode -------------------------------------------------------------------------------------
    @property
    def _child_log(self) -> str:
        assert self._log_path is not None
        return self._log_path

    def _start_child(self) -> "LatencyProxy":
        if self._log_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="latency-proxy-")
            self._log_path = os.path.join(self._tmpdir.name, "requests.jsonl")
        open(self._log_path, "w").close()
        cmd = [sys.executable, os.path.abspath(__file__), "--upstream", f"{self.upstream_host}:{self.upstream_port}"]
        cmd += ["--delay-ms", str(self.delay_s * 1000.0), "--host", self.host, "--log", self._log_path]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self._proc.stdout.readline() if self._proc.stdout else ""
        if not line.strip().isdigit():
            self._stop_child()
            raise RuntimeError(f"latency proxy process did not start: {line!r}")
        self.port = int(line)
        return self

    def _stop_child(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            if proc.stdout:
                proc.stdout.close()
            # keep what was counted readable after stop
            self._requests = self._read_log(self._child_log, self._log_offset)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def _read_child_log(self) -> list[Request]:
        return self._read_log(self._child_log, self._log_offset)

    @staticmethod
    def _read_log(path: str, offset: int) -> list[Request]:
        out = []
        with open(path, encoding="utf-8") as f:
            f.seek(offset)
            for line in f:
                if line.endswith("\n"):
                    d = json.loads(line)
                    out.append(Request(d["method"], d["target"], d["kind"], d["headers"]))
        return out

    # ---- event loop ---------------------------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, 0, backlog=1024, limit=_MAX_HEADER_BYTES)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _record(self, request: Request) -> None:
        if self._log_file is not None:
            self._log_file.write(json.dumps(request.__dict__) + "\n")
            self._log_file.flush()
            return
        with self._lock:
            self._requests.append(request)

    def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()

        async def _drain() -> None:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            asyncio.get_running_loop().stop()

        asyncio.ensure_future(_drain())

    def _track(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        try:
            ureader, uwriter = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            cwriter.close()
            return
        pipe = self._track(self._pipe(ureader, cwriter))
        try:
            while True:
                head = await self._read_head(creader)
                if head is None:
                    break
                method, target, headers = _parse_head(head)
                self._record(Request(method, target, s3_kind(method, target, headers), headers))
                if self.delay_s:
                    self._waiting += 1  # requests inside their added delay at once: how many the client overlaps
                    self.peak_in_flight = max(self.peak_in_flight, self._waiting)
                    try:
                        await asyncio.sleep(self.delay_s)
                    finally:
                        self._waiting -= 1
                uwriter.write(head)
                await uwriter.drain()
                await self._forward_body(creader, uwriter, headers)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass  # client went away, or the proxy is stopping
        finally:
            uwriter.close()
            try:
                await asyncio.wait_for(pipe, 30)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pipe.cancel()
            try:
                cwriter.close()
            except RuntimeError:
                pass
            self._tasks.discard(asyncio.current_task())

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
        try:
            return await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if e.partial.strip():
                raise
            return None

    @staticmethod
    async def _forward_body(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: dict[str, str]
    ) -> None:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = await reader.readuntil(b"\r\n")
                writer.write(size_line)
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:  # trailers, then an empty line
                    while True:
                        line = await reader.readuntil(b"\r\n")
                        writer.write(line)
                        if line == b"\r\n":
                            break
                    break
                writer.write(await reader.readexactly(size + 2))
                await writer.drain()
        else:
            remaining = int(headers.get("content-length", "0") or 0)
            while remaining:
                chunk = await reader.read(min(remaining, 1 << 20))
                if not chunk:
                    raise asyncio.IncompleteReadError(b"", remaining)
                writer.write(chunk)
                remaining -= len(chunk)
                await writer.drain()
        await writer.drain()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(1 << 20)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except RuntimeError:
                pass


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return method.upper(), target, headers


def main(argv: list[str] | None = None) -> None:
    """Child-process mode: print the port, then log each request as a JSON line until terminated."""
    p = argparse.ArgumentParser(description="HTTP latency/counting proxy on loopback")
    p.add_argument("--upstream", required=True, help="host:port")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--log", required=True)
    a = p.parse_args(argv)
    host, port = a.upstream.rsplit(":", 1)
    proxy = LatencyProxy(host, int(port), delay_ms=a.delay_ms, host=a.host)
    import signal

    with open(a.log, "a", encoding="utf-8") as log:
        proxy._log_file = log
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with proxy:
            print(proxy.port, flush=True)
            while not stop.wait(0.5):
                pass


if __name__ == "__main__":
    main()

"""Starting a local Spark whose JVM keeps the console quiet until it is up.

pyspark starts its JVM with spark-submit, which first resolves `spark.jars.packages` with Ivy: when
a package cannot be had, Ivy's report and a Java stack trace reach the console before Python learns
that the JVM exited. Here the JVM's stdout and stderr go through pipes: held while it starts, passed
on as they come once it is up, dropped when the failure is an unresolved package (raised as one
`UnresolvedPackages` line), replayed as they were for any other failure.
"""

from __future__ import annotations

import os
import re
import threading

from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from dataset.errors import SparkSetupError

# spark-submit's RuntimeException: "[unresolved dependency: group#artifact;version: not found, ...]"
_UNRESOLVED = re.compile(r"unresolved dependency: ([^\s#]+)#([^\s;]+);([^\s:,\]]+)(?::\s*([^,\]\r\n]+))?")
_DRAIN_SECONDS = 10  # how long a JVM that exited may take to close its pipes


class UnresolvedPackages(SparkSetupError):
    """spark-submit could not resolve `spark.jars.packages`; the message names what it missed."""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Relay(threading.Thread):
    """Copies a pipe to a file descriptor: holds what it reads until `pass_on`, then copies as it reads."""

    def __init__(self, source: int, target: int) -> None:
        super().__init__(daemon=True)
        self._source, self._target = source, target
        self._held: list[bytes] = []
        self._passing = False
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            for chunk in iter(lambda: os.read(self._source, 65536), b""):
                with self._lock:
                    if self._passing:
                        _write_all(self._target, chunk)
                    else:
                        self._held.append(chunk)
        finally:
            os.close(self._source)

    def pass_on(self) -> None:
        """Write what was held, then copy from now on."""
        with self._lock:
            _write_all(self._target, b"".join(self._held))
            self._held, self._passing = [], True

    def held(self) -> bytes:
        """What was held, once the pipe is closed (or after a bounded wait)."""
        self.join(_DRAIN_SECONDS)
        with self._lock:
            return b"".join(self._held)


def start_quietly(conf: dict[str, str]) -> SparkSession:
    """A new local SparkSession with `conf` (spark.master, spark.app.name... included), its JVM's
    console output held until the JVM is up.

    Raises:
        UnresolvedPackages: spark-submit did not resolve `spark.jars.packages`; nothing was printed.
    """
    spark_conf = SparkConf().setAll(list(conf.items()))
    relays = []
    ends = {}
    for target in (1, 2):  # the JVM's stdout and stderr, relayed to ours
        read_end, write_end = os.pipe()
        relays.append(_Relay(read_end, target))
        ends[target] = write_end
    for relay in relays:
        relay.start()
    try:
        gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": ends[1], "stderr": ends[2]})
    except Exception as err:  # pyspark's JAVA_GATEWAY_EXITED (PySparkRuntimeError, RuntimeError in 3.4-)
        for end in ends.values():
            os.close(end)
        held = [relay.held() for relay in relays]
        missing = [
            f"{group}:{artifact}:{version}" + (f" ({why.strip()})" if why else "")
            for group, artifact, version, why in _UNRESOLVED.findall(b"".join(held).decode("utf-8", "replace"))
        ]
        if missing:  # as Maven coordinates, each once
            raise UnresolvedPackages(", ".join(dict.fromkeys(missing))) from err
        for relay in relays:
            relay.pass_on()  # any other failure: its output as spark-submit printed it
        raise
    for end in ends.values():
        os.close(end)  # the JVM has its own copies
    for relay in relays:
        relay.pass_on()
    SparkContext(conf=spark_conf, gateway=gateway)
    return SparkSession.builder.getOrCreate()

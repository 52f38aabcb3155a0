"""The object-store hot paths through obstore (Python bindings of Rust's `object_store`): whole-object reads,
downloads, uploads and listings on S3, at about a tenth of s3fs/botocore's client CPU per request
(benchmarks/object_store.py, section `clients`).

Every function here either does the whole job or declines (returns None or False) and lets s3fs do it, so callers
keep s3fs's behaviour wherever obstore could differ:

* the store's settings come from the standard AWS variables, through the same translation as s3fs's
  (:func:`dataset.object_store.object_store_from_env` / :func:`s3fs_storage_options`); without keys there
  (botocore's profiles, instance roles) s3fs serves;
* keys obstore would read differently (a trailing ``/``, empty, ``.`` or ``..`` segments, control characters: its
  paths refuse or normalise them) go to s3fs;
* on any obstore error, the request is made again by s3fs, whose errors (and their messages) callers already handle;
* listings that hold a zero-byte object go to s3fs: obstore lists a folder marker (``a/``) as a zero-byte object
  ``a``, which s3fs leaves out.

``USE_OBSTORE=0`` turns the module off (every request through s3fs). Nothing here sends checksum headers
(``checksum_algorithm`` unset), so servers that refuse botocore >= 1.36's CRC headers (S3Proxy) accept it; its
connection pool has no per-host cap (botocore's 10 needed ``MAX_POOL_CONNECTIONS``).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from dataset.store_env import OBSTORE_VARIABLE, ObjectStore, is_s3_url, object_store_from_env

TRANSFER_THREADS = 8  # whole-file downloads or uploads at once (large objects: bandwidth, not round trips)
LIST_CHUNK = 1_000  # objects per listing page (S3's page size)
_STREAM_CHUNK = 8 << 20  # bytes a download writes at a time
# timeouts: connect like S3A's establish timeout; a whole transfer may take long, a stalled read may not
_CLIENT_OPTIONS = {"connect_timeout": "10s", "timeout": "24h", "read_timeout": "60s"}
# botocore's legacy mode: 5 attempts; obstore's default retries for 3 minutes, which a test sees as a hang
_RETRY = {
    "max_retries": 4,
    "retry_timeout": timedelta(seconds=60),
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# s3fs storage options that this module knows how to reproduce; any other option makes it decline
_S3FS_OPTIONS = {"key", "secret", "token", "client_kwargs", "config_kwargs", "use_ssl", "skip_instance_cache"}
_S3FS_CLIENT_KWARGS = {"endpoint_url", "region_name"}


@dataclass(frozen=True)
class StoreConfig:
    """One S3 bucket as obstore should reach it (hashable: a process keeps one store, so one pool, per config)."""

    bucket: str
    endpoint_url: str | None
    region: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether obstore serves the hot paths: installed, and not turned off by ``USE_OBSTORE=0``."""
    value = (os.environ if env is None else env).get(OBSTORE_VARIABLE, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    try:
        import obstore  # noqa: F401
    except ImportError:
        return False
    return True


def config_for(bucket: str, store: ObjectStore) -> StoreConfig | None:
    """The obstore settings for `bucket` of `store`, or None when s3fs must serve (no keys: botocore's chain)."""
    if not (store.access_key and store.secret_key) or not bucket:
        return None
    return StoreConfig(
        bucket, store.endpoint_url, store.region, store.access_key, store.secret_key, store.session_token
    )


def config_from_env(bucket: str, env: Mapping[str, str] | None = None) -> StoreConfig | None:
    """:func:`config_for` the store the standard AWS variables in `env` name; None when obstore is off."""
    return config_for(bucket, object_store_from_env(env)) if enabled(env) else None


def config_from_s3fs(fs: Any, bucket: str) -> StoreConfig | None:
    """:func:`config_for` the store an s3fs filesystem made by :func:`s3fs_storage_options` talks to; None for other
    filesystems, other options (anonymous, profiles, extra request arguments) or when obstore is off."""
    options = getattr(fs, "storage_options", None)
    if "s3" not in _protocols(fs) or not isinstance(options, Mapping) or not enabled():
        return None
    client = options.get("client_kwargs") or {}
    if set(options) - _S3FS_OPTIONS or set(client) - _S3FS_CLIENT_KWARGS:
        return None
    endpoint = client.get("endpoint_url")
    store = ObjectStore(
        endpoint_url=endpoint.rstrip("/") if endpoint else None,
        access_key=options.get("key"),
        secret_key=options.get("secret"),
        session_token=options.get("token"),
        region=client.get("region_name") or ObjectStore.region,
    )
    return config_for(bucket, store)


def _protocols(fs: Any) -> set[str]:
    protocols = getattr(fs, "protocol", ())
    return {protocols} if isinstance(protocols, str) else set(protocols)


@functools.lru_cache(maxsize=64)
def s3_store(config: StoreConfig) -> Any:
    """The process's `obstore.store.S3Store` for `config` (one per config, so its connections are reused)."""
    from obstore.store import S3Store

    settings: dict[str, Any] = {
        "region": config.region,
        "access_key_id": config.access_key,
        "secret_access_key": config.secret_key,
        # S3-compatible servers take path-style requests (as s3fs and S3A are told); AWS itself virtual-hosted
        # ones, except for bucket names with dots, which TLS certificates do not cover (botocore does the same)
        "virtual_hosted_style_request": not config.endpoint_url and "." not in config.bucket,
    }
    if config.session_token:
        settings["session_token"] = config.session_token
    client = dict(_CLIENT_OPTIONS)
    if config.endpoint_url:
        settings["endpoint"] = config.endpoint_url
        client["allow_http"] = config.endpoint_url.lower().startswith("http://")
    return S3Store(config.bucket, client_options=client, retry_config=_RETRY, **settings)


# ---- paths -----------------------------------------------------------------------------------------------------------
def split_path(path: str) -> tuple[str, str]:
    """`(bucket, key)` of an s3fs path (``bucket/key``) or URL (``s3://``, ``s3a://``, ``s3n://``)."""
    _, sep, rest = str(path).partition("://")
    bucket, _, key = (rest if sep else str(path)).lstrip("/").partition("/")
    return bucket, key


def plain_key(key: str) -> bool:
    """Whether obstore reaches exactly the object `key` names (its paths refuse or rewrite the others)."""
    if not key or key.startswith("/") or key.endswith("/") or _CONTROL.search(key):
        return False
    return all(part not in ("", ".", "..") for part in key.split("/"))


def _obstore_errors() -> tuple[type[BaseException], ...]:
    from obstore.exceptions import BaseError

    # ValueError: a path obstore refuses; OSError: NotFound (a FileNotFoundError) and I/O errors it maps
    return (BaseError, ValueError, OSError)


# ---- reads -----------------------------------------------------------------------------------------------------------
Reader = Callable[[str], "bytes | OSError"]


def object_reader(fs: Any, fallback: Reader) -> Reader | None:
    """A function that reads one whole object of the s3fs filesystem `fs` (path ``bucket/key``) through obstore,
    handing to `fallback` (s3fs) each path obstore cannot serve exactly or fails on; None when obstore cannot serve
    `fs` at all. Thread-safe: obstore releases the GIL while it waits."""
    if config_from_s3fs(fs, "any-bucket") is None:  # options obstore cannot reproduce, or obstore is off
        return None
    import obstore

    errors = _obstore_errors()
    stores: dict[str, Any] = {}  # bucket -> store (None: s3fs); two threads may fill one entry, with equal values

    def store_of(bucket: str) -> Any:
        if bucket not in stores:
            config = config_from_s3fs(fs, bucket)
            stores[bucket] = s3_store(config) if config else None
        return stores[bucket]

    def read(path: str) -> bytes | OSError:
        bucket, key = split_path(path)
        store = store_of(bucket) if plain_key(key) else None
        if store is None:
            return fallback(path)
        try:
            return bytes(obstore.get(store, key).bytes())
        except errors:  # a missing object, a refused request: s3fs's own error (and its message) for it, below
            pass
        return fallback(path)

    return read


# ---- downloads and uploads -------------------------------------------------------------------------------------------
def download(urls: Sequence[str], local: Sequence[str], env: Mapping[str, str] | None = None) -> bool:
    """Copy each object of `urls` to the local path at the same place in `local` (folders exist), `TRANSFER_THREADS`
    at a time, each through a ``.part`` file renamed when whole. False, with nothing to show for it, when obstore
    cannot serve one of them or fails: the caller copies them all with s3fs then."""
    stores = _stores_for(urls, env)
    if stores is None:
        return False
    import obstore

    def fetch(pair: tuple[str, str]) -> None:
        url, dest = pair
        bucket, key = split_path(url)
        part = f"{dest}.part"
        with open(part, "wb") as out:
            for chunk in obstore.get(stores[bucket], key).stream(min_chunk_size=_STREAM_CHUNK):
                out.write(chunk)
        os.replace(part, dest)

    try:
        _each(fetch, list(zip(urls, local)))
    except _obstore_errors():
        for dest in local:
            _remove(f"{dest}.part")
        return False
    return True


def upload(files: Sequence[str | os.PathLike[str]], urls: Sequence[str], env: Mapping[str, str] | None = None) -> bool:
    """PUT each local file of `files` to the URL at the same place in `urls` (overwriting; large files in parts),
    `TRANSFER_THREADS` at a time. False when obstore cannot serve one of them or fails: the caller uploads them all
    with s3fs then (a PUT is atomic, so no half object is left either way)."""
    stores = _stores_for(urls, env)
    if stores is None:
        return False
    import obstore

    def send(pair: tuple[str | os.PathLike[str], str]) -> None:
        path, url = pair
        bucket, key = split_path(url)
        obstore.put(stores[bucket], key, Path(path))

    try:
        _each(send, list(zip(files, urls)))
    except _obstore_errors():
        return False
    return True


def _stores_for(urls: Iterable[str], env: Mapping[str, str] | None) -> dict[str, Any] | None:
    """One store per bucket of `urls`, or None when obstore cannot serve every one of them exactly."""
    stores: dict[str, Any] = {}
    for url in urls:
        bucket, key = split_path(url)
        if not is_s3_url(url) or not plain_key(key):
            return None
        if bucket not in stores:
            config = config_from_env(bucket, env)
            if config is None:
                return None
            stores[bucket] = s3_store(config)
    return stores


def _each(work: Callable[[Any], None], items: list) -> None:
    if len(items) <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(min(TRANSFER_THREADS, len(items)), thread_name_prefix="transfer") as pool:
        for _ in pool.map(work, items):
            pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---- listing ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Top:
    """A folder's first level: its sub-folders' keys and the objects directly in it (key, size, ETag)."""

    folders: tuple[str, ...]
    objects: tuple[tuple[str, int, str | None], ...]


def list_top(fs: Any, root: str) -> Top | None:
    """The first level under `root` (``bucket/prefix``) of the s3fs filesystem `fs`; None when obstore declines or
    fails (s3fs then lists), or when it holds a zero-byte object (maybe a folder marker: s3fs tells them apart)."""
    bucket, prefix = split_path(root)
    config = config_from_s3fs(fs, bucket)
    if config is None or (prefix and not plain_key(prefix)):
        return None
    import obstore

    try:
        found = obstore.list_with_delimiter(s3_store(config), prefix or None)
    except _obstore_errors():
        return None
    objects = tuple((meta["path"], int(meta["size"]), meta.get("e_tag")) for meta in found["objects"])
    if any(size == 0 for _, size, _ in objects):
        return None
    return Top(tuple(found["common_prefixes"]), objects)


def list_folder(fs: Any, folder: str) -> list[Any] | None:
    """Every object under the key `folder` (``bucket/prefix``) of `fs`, recursively, as Arrow record batches (columns
    ``path``, ``size``, ``e_tag``: keys without the bucket); None when obstore declines or fails, or the folder holds
    a zero-byte object (see :func:`list_top`) or one without an ETag."""
    import pyarrow as pa
    import pyarrow.compute as pc

    bucket, prefix = split_path(folder)
    config = config_from_s3fs(fs, bucket)
    if config is None or not plain_key(prefix):
        return None
    import obstore

    try:
        stream = obstore.list(s3_store(config), prefix, chunk_size=LIST_CHUNK, return_arrow=True)
        batches = [pa.record_batch(chunk).select(["path", "size", "e_tag"]) for chunk in stream]
    except (*_obstore_errors(), ImportError):  # ImportError: arro3-core, which Arrow results need, is missing
        return None
    for batch in batches:
        if not batch.num_rows:
            continue
        # a zero-byte object may be a folder marker; s3fs stamps an object without an ETag by its time
        if pc.min(batch.column("size")).as_py() == 0 or batch.column("e_tag").null_count:
            return None
        if not pc.all(pc.starts_with(batch.column("path"), f"{prefix}/")).as_py():
            return None
    return batches

"""Where the S3-compatible object store is and how to sign in, read from the standard AWS variables (see
`dataset.object_store`, which translates it for each client), and which URLs are on it. A module of its own so
that both clients' modules (`dataset.object_store`, `dataset.obstore_io`) import it and not each other."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_REGION = "us-east-1"
S3_SCHEMES = ("s3", "s3a", "s3n")

# "0" sends the hot paths (dataset/obstore_io.py) through s3fs too; read there, defined here for client_env()
OBSTORE_VARIABLE = "USE_OBSTORE"


@dataclass(frozen=True)
class ObjectStore:
    """Where the object store is and how to sign in, as read from the standard AWS variables."""

    endpoint_url: str | None = None
    access_key: str | None = field(default=None, repr=False)  # keys never in a repr, a log or a traceback
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str = DEFAULT_REGION

    @property
    def custom_endpoint(self) -> bool:
        """True for an S3-compatible server (path-style addressing), False for AWS itself."""
        return bool(self.endpoint_url)

    @property
    def secure(self) -> bool:
        """Whether the endpoint speaks TLS (from the URL's scheme; AWS itself always does)."""
        return not self.endpoint_url or urlsplit(self.endpoint_url).scheme.lower() != "http"

    @property
    def host_port(self) -> str | None:
        """The endpoint without its scheme (``127.0.0.1:9000``), as Hadoop and older tools want it."""
        return urlsplit(self.endpoint_url).netloc if self.endpoint_url else None


def _get(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value.strip()
    return None


def object_store_from_env(env: Mapping[str, str] | None = None) -> ObjectStore:
    """Read the standard AWS variables (see the module doc) from `env` (default ``os.environ``)."""
    env = os.environ if env is None else env
    endpoint = _get(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    if endpoint and "://" not in endpoint:
        raise ValueError(f"AWS_ENDPOINT_URL must be a URL with a scheme (http:// or https://), got {endpoint!r}")
    return ObjectStore(
        endpoint_url=endpoint.rstrip("/") if endpoint else None,
        access_key=_get(env, "AWS_ACCESS_KEY_ID"),
        secret_key=_get(env, "AWS_SECRET_ACCESS_KEY"),
        session_token=_get(env, "AWS_SESSION_TOKEN"),
        region=_get(env, "AWS_REGION", "AWS_DEFAULT_REGION") or DEFAULT_REGION,
    )


def is_s3_url(url: str) -> bool:
    """Whether `url` is on S3 (``s3://``, ``s3a://`` or ``s3n://``)."""
    return urlsplit(str(url)).scheme.lower() in S3_SCHEMES

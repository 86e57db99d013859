"""How ``dtk`` commands prove who they are to the nodes, and trust them back.

Credentials come, first found first, from:

1. the flags ``--user`` and ``--password`` (``--password -`` reads it from
   standard input, which keeps it out of the process list and shell history);
2. the environment: ``DTK_USER`` and ``DTK_PASSWORD``;
3. a credentials file: ``--credentials FILE``, else ``$DTK_CREDENTIALS``, else
   ``credentials.toml`` in the cluster directory (``dtk cluster up --auth`` or
   ``--tls`` writes it)::

       user = "admin"
       password = "..."
       tls = true               # the nodes' client ports speak TLS
       ca = "tls/ca.crt"         # the authority that signed their certificates
       cert = "tls/client.crt"   # optional: a client certificate
       key = "tls/client.key"

   Relative paths are relative to the file. A file holding a password must be
   readable by its owner only (mode 0600), as ssh asks of its keys.

A password is never printed: :class:`Credentials` leaves it out of its
``repr``.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import stat
import tomllib
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit_server.tls import client_context

__all__ = [
    "CREDENTIALS_FILE",
    "ENV_CREDENTIALS",
    "ENV_PASSWORD",
    "ENV_USER",
    "Credentials",
    "http_get",
    "resolve_credentials",
    "write_credentials",
]

ENV_USER = "DTK_USER"
ENV_PASSWORD = "DTK_PASSWORD"
ENV_CREDENTIALS = "DTK_CREDENTIALS"
#: The credentials file of a cluster directory.
CREDENTIALS_FILE = "credentials.toml"
_KEYS = {"user", "password", "tls", "ca", "cert", "key"}


@attrs.frozen
class Credentials:
    """Who a client is (``user``, ``password``) and how it reaches the nodes (TLS)."""

    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    tls: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context (checking the nodes against ``ca``), or ``None``."""
        if not self.tls:
            return None
        return client_context(self.ca, self.cert, self.key)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~dynamo_toolkit_server.client.Client`."""
        return {"user": self.user, "password": self.password, "tls": self.tls_context()}

    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self.tls else "http"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        mode = path.stat().st_mode
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"credentials file {path}: {exc}") from exc
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigurationError(f"credentials file {path}: unknown key(s) {sorted(unknown)}")
    if "password" in data and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"credentials file {path} holds a password and others may read it; "
            f"make it private with: chmod 600 {path}"
        )
    for name in ("ca", "cert", "key"):
        if name in data:
            data[name] = path.parent / str(data[name])
    return data


def resolve_credentials(
    user: str | None = None,
    password: str | None = None,
    file: Path | None = None,
    directory: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """The credentials to use: flags, then environment, then a file (see the module)."""
    env = os.environ if environ is None else environ
    if file is None and env.get(ENV_CREDENTIALS):
        file = Path(env[ENV_CREDENTIALS])
    if file is None and directory is not None and (directory / CREDENTIALS_FILE).exists():
        file = directory / CREDENTIALS_FILE
    data = _read_file(file) if file is not None else {}
    chosen_user = user or env.get(ENV_USER) or data.get("user")
    chosen_password = password or env.get(ENV_PASSWORD) or data.get("password")
    if chosen_user is not None and chosen_password is None:
        raise ConfigurationError(
            f"user {chosen_user!r} given without a password (--password, ${ENV_PASSWORD} "
            "or a credentials file)"
        )
    if chosen_password is not None and chosen_user is None:
        chosen_user = "default"  # as redis-cli's -a: the password of the default user
    return Credentials(
        user=chosen_user,
        password=chosen_password,
        tls=bool(data.get("tls", False)),
        ca=data.get("ca"),
        cert=data.get("cert"),
        key=data.get("key"),
    )


def write_credentials(path: Path, values: Mapping[str, Any]) -> None:
    """Write a credentials file readable by its owner only (created 0600, never widened)."""
    lines = []
    for name, value in values.items():
        if name not in _KEYS:
            raise ValueError(f"unknown credentials key {name!r}")
        # A JSON string is a valid TOML basic string (quotes and backslashes escaped).
        text = ("true" if value else "false") if isinstance(value, bool) else json.dumps(str(value))
        lines.append(f"{name} = {text}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)


def http_get(
    address: str, path: str, credentials: Credentials | None = None, timeout: float = 2.0
) -> bytes:
    """GET ``path`` from a node's HTTP port with the credentials; ``OSError`` on failure."""
    creds = credentials or Credentials()
    request = urllib.request.Request(f"{creds.scheme}://{address}{path}")
    if creds.user is not None and creds.password is not None:
        token = base64.b64encode(f"{creds.user}:{creds.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout, context=creds.tls_context()) as reply:
        return reply.read()  # type: ignore[no-any-return]

"""Users, password hashes and the credentials of dtk commands."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from dynamo_toolkit.errors import ConfigurationError
from dynamo_toolkit_server.auth import (
    LOCKED,
    Authenticator,
    Role,
    User,
    allowed,
    hash_password,
    verify_password,
)
from dynamo_toolkit_server.credentials import resolve_credentials, write_credentials

HASH = hash_password("correct horse")


def test_a_hash_checks_its_password_only() -> None:
    assert HASH.startswith("scrypt$14$8$1$")
    assert "correct horse" not in HASH
    assert verify_password(b"correct horse", HASH)
    assert not verify_password(b"correct horsf", HASH)
    assert not verify_password(b"", LOCKED)
    # A new salt each time: equal passwords do not give equal hashes.
    assert hash_password("correct horse") != HASH


def test_roles_are_ordered_and_parsed() -> None:
    assert allowed(Role.ADMIN, Role.READWRITE)
    assert allowed(Role.READWRITE, Role.READ)
    assert not allowed(Role.READ, Role.READWRITE)
    assert Role.parse("ReadWrite") is Role.READWRITE
    with pytest.raises(ConfigurationError, match="expected one of read, readwrite, admin"):
        Role.parse("root")


def test_bad_users_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="bad user name"):
        User("two words", Role.READ, HASH)
    with pytest.raises(ConfigurationError, match="scrypt"):
        User("alice", Role.READ, "hunter2")
    assert "scrypt" not in repr(User("alice", Role.READ, HASH))


def test_the_authenticator_logs_in_counts_failures_and_remembers() -> None:
    async def scenario() -> None:
        alice = User("alice", Role.READ, HASH)
        authenticator = Authenticator([alice])
        assert authenticator.enabled
        assert not Authenticator().enabled
        assert await authenticator.authenticate("alice", b"correct horse") is alice
        assert await authenticator.authenticate("alice", b"wrong") is None
        assert await authenticator.authenticate("mallory", b"correct horse") is None
        assert authenticator.failures == 2
        # Remembered under a keyed hash, never the password itself.
        assert all(b"correct horse" not in token for _, token in authenticator._remembered)
        assert await authenticator.authenticate("alice", b"correct horse") is alice

    asyncio.run(scenario())


def test_credentials_come_from_flags_then_environment_then_file(tmp_path: Path) -> None:
    file = tmp_path / "credentials.toml"
    write_credentials(file, {"user": "filer", "password": "from-file", "tls": True, "ca": "ca.crt"})
    assert os.stat(file).st_mode & 0o777 == 0o600
    from_dir = resolve_credentials(directory=tmp_path, environ={})
    assert (from_dir.user, from_dir.password, from_dir.tls) == ("filer", "from-file", True)
    assert from_dir.ca == tmp_path / "ca.crt"
    assert "from-file" not in repr(from_dir)
    env = {"DTK_USER": "envy", "DTK_PASSWORD": "from-env"}
    from_env = resolve_credentials(directory=tmp_path, environ=env)
    assert (from_env.user, from_env.password) == ("envy", "from-env")
    flags = resolve_credentials("flag", "from-flag", directory=tmp_path, environ=env)
    assert (flags.user, flags.password) == ("flag", "from-flag")
    assert resolve_credentials(password="pw", environ={}).user == "default"
    with pytest.raises(ConfigurationError, match="without a password"):
        resolve_credentials("someone", environ={})


def test_a_password_file_others_can_read_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "credentials.toml"
    file.write_text('user = "a"\npassword = "b"\n')
    file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        resolve_credentials(file=file, environ={})
    file.write_text('nickname = "a"\n')
    with pytest.raises(ConfigurationError, match="unknown key"):
        resolve_credentials(file=file, environ={})

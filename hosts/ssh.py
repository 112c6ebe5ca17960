"""SSH to Photon hosts with asyncssh: the pinned host key, bounded concurrency,
atomic file writes.

The host key is the one a person confirmed (``Host.ssh_host_key``) and nothing
else: ``known_hosts=(trusted, [], [])`` makes any other key fail the login
(``HostKeyNotVerifiable``). Files are written with SFTP to a temporary name in
the same directory, then ``posix_rename``d over the target (a plain SFTP
rename fails when the target exists, and the rename is atomic, so a reader or
a crash never sees half a file).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shlex
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, cast

import asyncssh

if TYPE_CHECKING:
    from hosts.models import Host

T = TypeVar("T")
R = TypeVar("R")

#: How many hosts are talked to at once (the lab: 20 logins in ~3 s, server CPU bound).
CONCURRENCY = 25
CONNECT_TIMEOUT = 10.0
COMMAND_TIMEOUT = 120.0


class SSHError(Exception):
    """A host could not be reached, refused the login, or a command failed; the
    message is fit to show a person."""


class HostUnreachable(SSHError):
    pass


class KeyRefused(HostUnreachable):
    """The host answered and refused the login key (not: it could not be reached)."""


@dataclass(frozen=True)
class Access:
    """What connecting to one host needs, read from the database beforehand so
    the async code never touches the ORM."""

    name: str
    address: str
    port: int
    user: str
    private_key: str = field(repr=False)
    host_key: str

    @classmethod
    def of(cls, host: Host, *, port: int | None = None) -> Access:
        return cls(
            name=host.name,
            address=host.address,
            port=port or host.ssh_port,
            user=host.ssh_user or "root",
            private_key=str(host.ssh_private_key or ""),
            host_key=host.ssh_host_key,
        )

    def __repr__(self) -> str:
        return f"Access({self.user}@{self.address}:{self.port})"


@dataclass(frozen=True)
class RemoteFile:
    path: str
    exists: bool
    data: bytes = b""
    mode: int = 0o644


@contextlib.asynccontextmanager
async def connect(
    access: Access, *, timeout: float = CONNECT_TIMEOUT
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    if not access.address:
        raise HostUnreachable(f"{access.name} has no SSH address")
    if not access.host_key:
        raise HostUnreachable(f"{access.name} has no pinned SSH host key: confirm it first")
    if not access.private_key:
        raise HostUnreachable(f"{access.name} has no SSH private key")
    try:
        trusted = asyncssh.import_public_key(access.host_key)
        client_key = asyncssh.import_private_key(access.private_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise HostUnreachable(f"{access.name}: a stored key cannot be read ({exc})") from None
    try:
        conn = await asyncssh.connect(
            access.address,
            port=access.port,
            username=access.user,
            known_hosts=([trusted], [], []),
            client_keys=[client_key],
            agent_path=None,
            password=None,
            connect_timeout=timeout,
            login_timeout=timeout,
            keepalive_interval=15,
        )
    except asyncssh.HostKeyNotVerifiable:
        raise HostUnreachable(
            f"{access.name}: the host key does not match the pinned one (a different machine, or a reinstall)"
        ) from None
    except asyncssh.PermissionDenied:
        raise KeyRefused(f"{access.name}: {access.user} was refused (key not authorized)") from None
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        raise HostUnreachable(
            f"{access.name} unreachable at {access.address}:{access.port}: {exc or type(exc).__name__}"
        ) from None
    try:
        yield conn
    finally:
        conn.close()
        with contextlib.suppress(Exception):
            await conn.wait_closed()


async def run(
    conn: asyncssh.SSHClientConnection, command: str, *, timeout: float = COMMAND_TIMEOUT
) -> asyncssh.SSHCompletedProcess:
    """Run ``command``; a non-zero exit is returned, not raised (callers decide)."""
    try:
        return await conn.run(command, check=False, timeout=timeout)
    except asyncssh.TimeoutError:
        raise SSHError(f"`{command}` did not finish within {timeout:.0f}s") from None
    except (OSError, asyncssh.Error) as exc:
        raise HostUnreachable(f"lost the connection during `{command}`: {exc}") from None


def output(result: asyncssh.SSHCompletedProcess) -> str:
    # run() decodes with the connection's encoding (utf-8): str here, never bytes.
    text = f"{result.stdout or ''}{result.stderr or ''}"  # type: ignore[str-bytes-safe]
    return text.strip()


@contextlib.asynccontextmanager
async def sftp_client(conn: asyncssh.SSHClientConnection) -> AsyncIterator[asyncssh.SFTPClient]:
    try:
        async with conn.start_sftp_client() as sftp:
            yield sftp
    except (OSError, asyncssh.Error) as exc:
        raise HostUnreachable(f"SFTP failed: {exc}") from None


async def read_files(sftp: asyncssh.SFTPClient, paths: Iterable[str]) -> dict[str, RemoteFile]:
    files: dict[str, RemoteFile] = {}
    for path in paths:
        try:
            attrs = await sftp.stat(path)
        except asyncssh.SFTPNoSuchFile:
            files[path] = RemoteFile(path, exists=False)
            continue
        async with sftp.open(path, "rb") as handle:
            # "rb": asyncssh reads bytes (a "b" in the mode drops the encoding).
            data = cast(bytes, await handle.read())
        files[path] = RemoteFile(path, exists=True, data=data, mode=stat.S_IMODE(attrs.permissions or 0o644))
    return files


def temp_name(path: str) -> str:
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}.portal-{secrets.token_hex(4)}"


async def write_temp(sftp: asyncssh.SFTPClient, path: str, data: bytes, mode: int) -> str:
    """Write ``data`` next to ``path`` under a temporary name (created 0600, then ``mode``)."""
    directory = path.rpartition("/")[0]
    temp = temp_name(path)
    try:
        await sftp.makedirs(directory, exist_ok=True)
        async with sftp.open(temp, "wb", asyncssh.SFTPAttrs(permissions=0o600)) as handle:
            await handle.write(data)
        await sftp.chmod(temp, mode)
    except (OSError, asyncssh.Error) as exc:
        raise SSHError(f"writing {path} failed: {exc}") from None
    return temp


async def rename_into_place(sftp: asyncssh.SFTPClient, temp: str, path: str) -> None:
    try:
        await sftp.posix_rename(temp, path)
    except (OSError, asyncssh.Error) as exc:
        raise SSHError(f"moving {path} into place failed: {exc}") from None


async def write_atomic(sftp: asyncssh.SFTPClient, path: str, data: bytes, mode: int) -> None:
    await rename_into_place(sftp, await write_temp(sftp, path, data, mode), path)


async def remove(conn: asyncssh.SSHClientConnection, path: str) -> None:
    await run(conn, f"rm -f -- {shlex.quote(path)}")


async def bounded(
    items: Iterable[T], work: Callable[[T], Awaitable[R]], *, limit: int = CONCURRENCY
) -> list[R]:
    """``work`` over ``items``, at most ``limit`` at once, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def login_works(access: Access, *, wait_for_listener: float = 0.0) -> str:
    """A fresh login and a command: "" when it works, else why not.

    ``wait_for_listener``: seconds to keep trying while nothing answers. A reloaded sshd
    closes its listener and executes itself again, so for a moment a connection is refused;
    a refused key is an answer and is never tried again."""
    deadline = asyncio.get_running_loop().time() + wait_for_listener
    while True:
        try:
            async with connect(access) as conn:
                result = await run(conn, "true", timeout=20)
                return "" if result.exit_status == 0 else f"a command after login failed: {output(result)}"
        except KeyRefused as exc:
            return str(exc)
        except SSHError as exc:
            if asyncio.get_running_loop().time() >= deadline:
                return str(exc)
        await asyncio.sleep(0.05)

"""The agent's command token: a random secret in a file only its owner can read.

Snapshots are public on the loopback interface (like ``/metrics``), but a command changes
the running app, so it must carry the token. The agent creates the file at its first start
(``$XDG_RUNTIME_DIR/pwtop/agent.token``, mode 0600, in a 0700 directory) and reuses it
afterwards, so pwtop run by the same user reads it without any set-up; another user on the
machine cannot. A file that others can read is refused rather than trusted.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from pwtop.config import runtime_dir
from pwtop.errors import PwtopError, TargetError

TOKEN_BYTES = 32
FILE_NAME = "agent.token"


def default_token_path() -> Path:
    return runtime_dir() / FILE_NAME


def token_path(configured: str | os.PathLike[str] | None = None) -> Path:
    """The token file: ``configured`` ([target] agent_token_file) or the default location."""
    if configured:
        return Path(configured).expanduser()
    return default_token_path()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _check_private(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise TargetError(f"{path}: the agent token file is not a regular file; remove it")
    if st.st_mode & 0o077:
        raise TargetError(f"{path}: the agent token file is readable by others (mode "
                          f"{stat.S_IMODE(st.st_mode):04o}); run 'chmod 600 {path}' or delete "
                          f"it so the agent makes a new one")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise TargetError(f"{path}: the agent token file belongs to another user; delete it or "
                          f"set [target] agent_token_file")


def read_token(path: str | os.PathLike[str]) -> str:
    """The token stored at ``path``; TargetError (one line) when it cannot be used."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise TargetError(f"{path}: no agent token file (the agent writes it when it starts; "
                          f"start the app or set [target] agent_token_file)") from None
    except OSError as exc:
        raise TargetError(f"{path}: cannot read the agent token file ({exc.strerror})") from exc
    try:
        _check_private(path, os.fstat(fd))
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    token = data.decode("utf-8", "replace").strip()
    if not token:
        raise TargetError(f"{path}: the agent token file is empty; delete it so the agent makes "
                          f"a new one")
    return token


def load_or_create(path: str | os.PathLike[str] | None = None) -> tuple[str, Path]:
    """The token at ``path`` (default location when None), created 0600 if missing.

    Two apps starting at once end up sharing one token instead of overwriting each
    other's.
    """
    path = token_path(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise TargetError(f"{path.parent}: cannot create the directory for the agent token "
                          f"({exc.strerror}); set XDG_RUNTIME_DIR or a token file") from exc
    if path.exists() or path.is_symlink():
        return read_token(path), path
    # Written whole into a private temporary file, then linked into place: link() fails
    # when the name exists, so a reader never sees a half-written token.
    token = new_token()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (token + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return read_token(path), path
    except OSError as exc:
        raise TargetError(f"{path}: cannot create the agent token file ({exc.strerror})") \
            from exc
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return token, path


def resolve(token: str | None, token_file: str | os.PathLike[str] | None,
            who: str) -> tuple[str, Path | None]:
    """The token a server checks commands against: ``token`` when given in code (at
    least 16 characters; no file then), else the token file's (created if missing).
    ``who`` names the server in the error line."""
    if token is None:
        return load_or_create(token_file)
    if not isinstance(token, str) or len(token) < 16:
        raise PwtopError(f"{who}: a token must be a string of at least 16 characters")
    return token, None


def same_token(expected: str, given: object) -> bool:
    """Constant-time comparison; anything but a non-empty string is a mismatch."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))

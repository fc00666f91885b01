"""``pwtop serve``'s two tokens: one to read (beyond loopback), one to command.

Each lives in a file only its owner can read. A file named in ``[serve]`` must exist and
be private; an empty setting means a file in pwtop's runtime directory, created (random,
mode 0600) the first time it is needed, which the fleet side reads or is given a copy of.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pwtop.agent.token import load_or_create
from pwtop.config import runtime_dir
from pwtop.errors import PwtopError

READ_FILE = "serve-read.token"
COMMAND_FILE = "serve-command.token"
#: A token shorter than this is refused: guessable.
MIN_LENGTH = 16


def path_of(configured: str, default_name: str) -> Path:
    return Path(configured).expanduser() if configured.strip() else runtime_dir() / default_name


def load(configured: str, default_name: str, setting: str) -> tuple[str, Path]:
    """The token and its file: ``configured`` (``[serve] <setting>``) must be there and
    private; the default file is created when missing. PwtopError in one line else."""
    path = path_of(configured, default_name)
    what = f"token file ([serve] {setting})"
    if not configured.strip() and not os.path.lexists(path):
        try:
            return load_or_create(path)
        except PwtopError as exc:
            raise PwtopError(f"{path}: cannot create the {what}: {exc.message}") from None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise PwtopError(f"{path}: no such {what}; write a token of {MIN_LENGTH} characters "
                         f"or more into it (chmod 600), or leave the setting empty for a "
                         f"generated one") from None
    except OSError as exc:
        raise PwtopError(f"{path}: cannot read the {what} ({exc.strerror or exc}); check "
                         f"its owner and mode") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PwtopError(f"{path}: the {what} is not a regular file")
        if st.st_mode & 0o077:
            raise PwtopError(f"{path}: the {what} is readable by others (mode "
                             f"{stat.S_IMODE(st.st_mode):04o}); run 'chmod 600 {path}'")
        data = os.read(fd, 4096)
    except OSError as exc:
        raise PwtopError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    token = data.decode("utf-8", "replace").strip()
    if len(token) < MIN_LENGTH:
        held = f"a token of {len(token)} characters" if token else "no token"
        raise PwtopError(f"{path}: the {what} holds {held}; it needs {MIN_LENGTH} or more")
    return token, path

"""The rigs a fleet watches: ``[[fleet.rigs]]`` tables and ``--rig NAME=URL`` flags.

A rig whose entry is wrong (a malformed URL, a missing name) is not an error that stops
the fleet: it becomes a :class:`Rig` with ``problem`` set, shown as its row's one line,
while the other rigs are watched. Only a fleet with no rig at all, or two rigs of one
name, is refused as a whole (there is nothing to show, or rows would be ambiguous).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

from pwtop.config import Settings
from pwtop.errors import ConfigError, TargetError
from pwtop.serve import protocol as proto

#: Keys a ``[[fleet.rigs]]`` table may have.
RIG_KEYS = ("name", "url", "token_file", "group", "command_token_file")


@dataclass(frozen=True)
class Rig:
    """One rig: where its daemon answers and how to reach it.

    ``kind`` is "ws" (``ws://``, ``wss://``, ``http(s)://`` or ``HOST:PORT``), "ssh"
    (``ssh://[user@]host[:port]``) or "bad" (then ``problem`` says what is wrong)."""

    name: str
    url: str
    group: str = ""
    token_file: str = ""
    command_token_file: str = ""
    kind: str = "ws"
    stream: str = ""          # ws(s)://host:port/v1/stream for kind "ws"
    ssh_target: str = ""      # user@host for kind "ssh"
    ssh_port: int | None = None
    problem: str = ""

    def token(self) -> str | None:
        """The read token from ``token_file`` (read at each connection: it may be
        replaced), None without a file; a file that cannot be read is a TargetError."""
        return _read_token(self.token_file, "token_file")

    def command_token(self) -> str:
        """The command token (optimize, acknowledge) from ``command_token_file``."""
        token = _read_token(self.command_token_file, "command_token_file")
        if token is None:
            raise TargetError(f"commands to rig {self.name} need its command token: set "
                              "command_token_file in its [[fleet.rigs]] table (a copy of "
                              "the rig's [serve] command token file)")
        return token


def _read_token(name: str, key: str) -> str | None:
    if not name:
        return None
    path = Path(name).expanduser()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TargetError(f"cannot read the rig's {key} {path} "
                          f"({exc.strerror or exc})") from None
    return text or None


def rig(name: str, url: str, *, group: str = "", token_file: str = "",
        command_token_file: str = "") -> Rig:
    """A :class:`Rig` from its address; a malformed one is a Rig with ``problem``."""
    raw = url.strip()
    base = dict(name=name, url=raw, group=group, token_file=token_file,
                command_token_file=command_token_file)
    if raw.startswith("ssh://"):
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError as exc:
            return Rig(**base, kind="bad", problem=f"malformed URL {raw!r}: {exc}")
        if not parts.hostname:
            return Rig(**base, kind="bad", problem=f"malformed URL {raw!r}: no host "
                       "(expected ssh://user@host)")
        if parts.path not in ("", "/"):
            return Rig(**base, kind="bad", problem=f"malformed URL {raw!r}: an ssh:// rig "
                       "takes no path (expected ssh://user@host[:port])")
        target = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        return Rig(**base, kind="ssh", ssh_target=target, ssh_port=port)
    try:
        ends = proto.endpoints(raw)
    except ValueError as exc:
        return Rig(**base, kind="bad", problem=f"malformed URL {raw!r}: {exc}")
    return Rig(**base, kind="ws", stream=ends.stream)


def parse_flag(text: str) -> Rig:
    """``--rig NAME=URL``; without ``NAME=`` the URL's host names the rig."""
    name, sep, url = text.partition("=")
    if not sep or "://" in name:
        url, name = text, ""
    name = name.strip()
    if not name:
        try:
            name = urlsplit(url if "://" in url else "ws://" + url).hostname or url
        except ValueError:
            name = url
    return rig(name, url)


def from_settings(settings: Settings) -> list[Rig]:
    """The ``[[fleet.rigs]]`` tables of the config (checked here: the config loader only
    knows they are tables)."""
    origin = str(settings.path) if settings.path else "config"
    out = []
    for n, table in enumerate(settings.fleet.rigs, start=1):
        where = f"{origin}: [[fleet.rigs]] #{n}"
        unknown = [k for k in table if k not in RIG_KEYS]
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: "
                              f"{', '.join(RIG_KEYS)})")
        values = {}
        for key in RIG_KEYS:
            value = table.get(key, "")
            if not isinstance(value, str):
                raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
            values[key] = value.strip()
        if not values["name"]:
            raise ConfigError(f"{where}: a rig needs a name")
        if not values["url"]:
            out.append(Rig(values["name"], "", values["group"], values["token_file"],
                           values["command_token_file"], kind="bad",
                           problem=f"no url in {where}"))
            continue
        out.append(rig(values["name"], values["url"], group=values["group"],
                       token_file=values["token_file"],
                       command_token_file=values["command_token_file"]))
    return out


def fleet_rigs(settings: Settings, flags: Iterable[str] = ()) -> list[Rig]:
    """The config's rigs, then the ``--rig`` flags' (a flag's name replaces a config rig
    of the same name: the command line wins, as everywhere)."""
    rigs: dict[str, Rig] = {r.name: r for r in from_settings(settings)}
    names = [r.name for r in from_settings(settings)]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ConfigError(f"{settings.path or 'config'}: two [[fleet.rigs]] are named "
                          f"{dup!r}; names must differ")
    for text in flags:
        r = parse_flag(text)
        rigs[r.name] = r
    if not rigs:
        raise ConfigError("no rigs to watch: add [[fleet.rigs]] tables (name, url) to the "
                          "config or give --rig NAME=URL")
    return list(rigs.values())


def connect_rig(settings: Settings, text: str) -> Rig:
    """``pwtop --connect X``: the ``[[fleet.rigs]]`` rig named X (with its token file), or
    the rig at URL X; a malformed URL is one error line."""
    named = {r.name: r for r in from_settings(settings)}
    found = named.get(text) or next((r for r in named.values() if r.url == text), None)
    if found is None:
        found = parse_flag(text)
    if found.kind == "bad":
        raise TargetError(f"--connect: {found.problem}")
    return found


def remote_settings(settings: Settings, r: Rig) -> Settings:
    """The settings a remote rig's tabs are drawn with: this host's, with the rig's
    address where the header names the database watched (in memory only)."""
    copied = copy.deepcopy(settings)
    copied.target.database = r.url
    return copied

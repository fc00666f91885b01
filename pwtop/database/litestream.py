"""Is Litestream replicating this database? Its tables, its process, its config file.

Litestream (streaming replication of a SQLite file to S3, SFTP or another disk) keeps a
read transaction open on the database and does the checkpoints itself: it copies each
WAL segment to its replica before the WAL is reset. A TRUNCATE or RESTART checkpoint run
by someone else resets the WAL behind its back, and a VACUUM rewrites every page: either
breaks the replica's chain and forces a new *generation* (a full snapshot upload), or
worse (Litestream issues #752, #547, #724, #1536). So before optimize touches a database
it asks here, and where Litestream is found it checkpoints PASSIVE only and refuses
VACUUM and TRUNCATE/RESTART unless asked with :data:`FLAG` (``pwtop.database.apply``).

Three kinds of evidence, each said in words (:class:`pwtop.database.model.Replication`):

* **its tables**: Litestream creates ``_litestream_seq`` and ``_litestream_lock`` in every
  database it has replicated. They outlive it (a stopped Litestream left them), so they
  are evidence that it replicates or did; optimize still treats them as "present".
* **its process**: a ``litestream replicate`` command line in /proc that names this file
  (``litestream replicate DB REPLICA_URL``) or whose config file lists it. When its config
  cannot be read the process may replicate this file: counted as present, and said so.
* **its config file**: ``$LITESTREAM_CONFIG`` (a container convention pwtop honours) or
  Litestream's default ``/etc/litestream.yml``, when it lists this file.

The config is YAML; only its ``dbs:`` list is read, for each entry's ``path`` (or ``dir``
with ``pattern`` and ``recursive``), after the ``$VAR``/``${VAR}`` expansion Litestream
itself performs. pwtop carries no YAML library for this: the reader below understands the
block style Litestream's documentation uses, and says "malformed" (with the line) for
anything else rather than guess. An unreadable or malformed file is a problem reported
with the rest, never an exception out of :func:`detect`.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import time
from pathlib import Path
from typing import Iterable, Mapping

from pwtop.database.model import LitestreamConfig, LitestreamProcess, LockHolder, Replication

TABLES = ("_litestream_seq", "_litestream_lock")
DEFAULT_CONFIG = "/etc/litestream.yml"
#: How long a monitor reuses its list of Litestream processes (see :class:`ProcessScan`).
PROCESS_SCAN_S = 15.0
CONFIG_ENV = "LITESTREAM_CONFIG"
#: The optimize flag that lets VACUUM and TRUNCATE/RESTART checkpoints run anyway.
FLAG = "--break-litestream-replica"
#: The same, as a field of ``POST /performance/optimize``'s JSON body.
BODY_FIELD = "break_litestream_replica"
#: ``ActionResult.error`` of an action optimize refused because Litestream is there.
REFUSED_ERROR = "refused: Litestream replicates this database"
# `litestream replicate` flags that take a value (Go's flag package: -f V, -f=V, --f V).
_VALUE_FLAGS = {"config", "exec", "log-level", "addr"}
_ENV_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_KEY = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_-]*)\s*:(?:\s+(?P<value>.*))?$")
_MAX_CONFIG_BYTES = 1 << 20


def _resolve(path: str | Path, base: str | Path | None = None) -> str:
    p = Path(os.path.expanduser(str(path)))
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return os.path.realpath(p)


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` replaced as Litestream does (unset: empty)."""
    return _ENV_VAR.sub(lambda m: environ.get(m["braced"] or m["bare"], ""), text)


def _scalar(raw: str) -> str:
    """A YAML scalar's value: quotes removed, a trailing comment dropped."""
    raw = raw.strip()
    if raw[:1] in ("'", '"'):
        q = raw[0]
        end = raw.find(q, 1)
        if end < 0:
            raise ValueError(f"unterminated {q}-quoted value")
        return raw[1:end]
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def parse_config(text: str) -> tuple[list[str], list[tuple[str, str, bool]]]:
    """(database paths, (dir, pattern, recursive) entries) of a config's ``dbs:`` list.

    Raises ValueError with the line number for what this reader does not understand."""
    paths: list[str] = []
    dirs: list[tuple[str, str, bool]] = []
    lines = text.splitlines()
    in_dbs = False
    item: dict[str, str] | None = None
    item_col = -1
    found = False

    def close() -> None:
        if item is None:
            return
        if "path" in item and item["path"]:
            paths.append(item["path"])
        elif "dir" in item and item["dir"]:
            dirs.append((item["dir"], item.get("pattern", "*"),
                         item.get("recursive", "").lower() in ("true", "yes", "on")))
        else:
            raise ValueError("a dbs entry has neither path nor dir")

    for n, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if line[indent:indent + 1] == "\t":
            raise ValueError(f"line {n}: a tab in the indentation (YAML allows spaces only)")
        if indent == 0 and not (in_dbs and (stripped.startswith("- ") or stripped == "-")):
            close()
            item, in_dbs = None, False
            m = _KEY.match(stripped)
            if m is None:
                raise ValueError(f"line {n}: {stripped[:40]!r} is not a 'key: value' line")
            if m["key"] == "dbs":
                found = True
                value = (m["value"] or "").strip()
                if value.startswith("#"):
                    value = ""
                if value == "[]":
                    continue
                if value:
                    raise ValueError(f"line {n}: dbs is written inline; pwtop reads the "
                                     "block form ('dbs:' then '- path: ...' lines)")
                in_dbs = True
            continue
        if not in_dbs:
            continue
        body = stripped
        if body.startswith("- ") or body == "-":
            if item is not None and indent + 2 > item_col:
                continue  # a list inside the entry (replicas:), not a new entry
            close()
            item, item_col = {}, indent + 2
            body = body[2:].strip()
            if not body:
                continue
            indent = item_col
        if item is None:
            raise ValueError(f"line {n}: dbs must be a list of entries ('- path: ...')")
        if indent != item_col:
            continue  # nested under a key of the entry (replica:, replicas:)
        m = _KEY.match(body)
        if m is None:
            raise ValueError(f"line {n}: {body[:40]!r} is not a 'key: value' line")
        if m["key"] in ("path", "dir", "pattern", "recursive"):
            item[m["key"]] = _scalar(m["value"] or "")
    close()
    if not found:
        raise ValueError("no dbs: list")
    return paths, dirs


def _read_regular(path: str | Path) -> bytes | str:
    """The first bytes of a regular file, or "missing" / "unreadable (why)". Anything
    but a regular file is not opened: a FIFO would block the read forever."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return ("unreadable (Is a directory)" if os.path.isdir(path) else
                    "unreadable (not a regular file)")
        with open(path, "rb") as fh:
            return fh.read(_MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"


def read_config(path: str | Path, db: str, environ: Mapping[str, str] | None = None, *,
                expand: bool = True, base: str | Path | None = None) -> LitestreamConfig:
    """The config file at ``path`` and whether it lists ``db`` (a resolved path).

    Never raises: a file that is missing, unreadable or malformed comes back with
    ``problem`` set and ``names_database`` None (cannot tell)."""
    environ = os.environ if environ is None else environ
    out = LitestreamConfig(str(path))
    raw = _read_regular(path)
    if isinstance(raw, str):
        out.problem = raw
        return out
    if len(raw) > _MAX_CONFIG_BYTES:
        out.problem = f"malformed (over {_MAX_CONFIG_BYTES // 1024} KiB: not a Litestream config)"
        return out
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        out.problem = "malformed (not UTF-8 text)"
        return out
    if expand:
        text = expand_env(text, environ)
    try:
        paths, dirs = parse_config(text)
    except ValueError as exc:
        out.problem = f"malformed ({exc})"
        return out
    here = base if base is not None else Path(path).parent
    out.databases = [_resolve(p, here) for p in paths]
    out.directories = [f"{d} ({pattern}{', recursive' if rec else ''})" for d, pattern, rec
                       in dirs]
    out.names_database = db in out.databases or any(
        _in_dir(db, _resolve(d, here), pattern, rec) for d, pattern, rec in dirs)
    return out


def _in_dir(db: str, directory: str, pattern: str, recursive: bool) -> bool:
    parent = os.path.dirname(db)
    if parent != directory and not (recursive and parent.startswith(directory + os.sep)):
        return False
    return fnmatch.fnmatch(os.path.basename(db), pattern)


def _flag_name(arg: str) -> str | None:
    if not arg.startswith("-") or arg in ("-", "--"):
        return None
    return arg.lstrip("-").split("=", 1)[0]


def _read_proc(pid: str, name: str, proc: str) -> bytes | None:
    try:
        with open(os.path.join(proc, pid, name), "rb") as fh:
            return fh.read()
    except OSError:
        return None


def replicate_processes(db: str, environ: Mapping[str, str], proc: str = "/proc",
                        configs: dict[str, LitestreamConfig] | None = None
                        ) -> list[LitestreamProcess]:
    """Every ``litestream replicate`` in ``proc`` and whether it replicates ``db``."""
    configs = {} if configs is None else configs
    found = []
    me = str(os.getpid())
    try:
        pids = [e for e in os.listdir(proc) if e.isdigit() and e != me]
    except OSError:
        return []
    for pid in pids:
        raw = _read_proc(pid, "cmdline", proc)
        if not raw:
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")]
        if os.path.basename(argv[0]) != "litestream":
            continue
        config, positional, expand, skip = None, [], True, False
        for i, arg in enumerate(argv[1:], start=1):
            if skip:
                skip = False
                continue
            name = _flag_name(arg)
            if name is None:
                positional.append(arg)
            elif name == "no-expand-env":
                expand = False
            elif name in _VALUE_FLAGS and "=" not in arg:
                skip = True
                if name == "config" and i + 1 < len(argv):
                    config = argv[i + 1]
            elif name == "config":
                config = arg.split("=", 1)[1]
        if not positional or positional[0] != "replicate":
            continue
        cwd = os.path.join(proc, pid, "cwd")
        try:
            cwd = os.readlink(cwd)
        except OSError:
            cwd = None
        command = " ".join(argv)
        named_path = positional[1] if len(positional) > 1 else config
        if cwd is None and named_path and not os.path.isabs(os.path.expanduser(named_path)):
            found.append(LitestreamProcess(
                int(pid), command, None, f"names {named_path} relative to its working "
                "directory, which cannot be read: it may replicate this database"))
            continue
        if len(positional) > 1:  # litestream replicate DB REPLICA_URL...
            named = _resolve(positional[1], cwd) == db
            how = ("names it on its command line" if named else
                   f"replicates {positional[1]} (named on its command line)")
            found.append(LitestreamProcess(int(pid), command, named, how))
            continue
        env = {}
        raw_env = _read_proc(pid, "environ", proc)
        if raw_env:
            env = dict(e.decode("utf-8", "replace").split("=", 1)
                       for e in raw_env.split(b"\0") if b"=" in e)
        if config is None:
            config = env.get(CONFIG_ENV) or DEFAULT_CONFIG
        path = _resolve(config, cwd)
        key = f"{path}|{expand}"
        if key not in configs:
            # expanded with the process's environment when it can be read, else pwtop's
            configs[key] = read_config(path, db, env or environ, expand=expand)
        cfg = configs[key]
        if cfg.names_database is None:
            how = f"its config {path} is {cfg.problem}: it may replicate this database"
        elif cfg.names_database:
            how = f"its config {path} lists it"
        else:
            how = f"its config {path} does not list it"
        found.append(LitestreamProcess(int(pid), command, cfg.names_database, how))
    return sorted(found, key=lambda p: p.pid)


class ProcessScan:
    """The last scan of ``/proc`` for ``litestream replicate``, reused for ``max_age``
    seconds by a monitor that collects every few seconds.

    Why: the scan reads the command line of every process on the host, and it was about a
    seventh of ``pwtop serve``'s idle CPU (the database is collected every 3 s there).
    Litestream is a daemon that rarely starts or stops, so a process list up to
    :data:`PROCESS_SCAN_S` old (``looked_at`` says how often it is listed) loses nothing; the tables check
    and the read locks are still read at every collect."""

    def __init__(self, max_age: float = 0.0) -> None:
        self.max_age = max_age
        self._last: tuple[float, tuple[str, str], list[LitestreamProcess],
                          dict[str, LitestreamConfig]] | None = None

    def processes(self, db: str, environ: Mapping[str, str], proc: str,
                  configs: dict[str, LitestreamConfig]) -> tuple[list[LitestreamProcess], float]:
        """The processes (fresh, or from a scan younger than ``max_age``) and the scan's age."""
        now = time.monotonic()
        last = self._last
        if last is not None and last[1] == (db, proc) and now - last[0] < self.max_age:
            configs.update(last[3])
            return list(last[2]), now - last[0]
        found = replicate_processes(db, environ, proc, configs)
        self._last = (now, (db, proc), found, dict(configs))
        return list(found), 0.0


def detect(path: str | Path, table_names: Iterable[str] | None, *,
           environ: Mapping[str, str] | None = None, proc: str = "/proc",
           scan: ProcessScan | None = None) -> Replication:
    """Look for Litestream around the database at ``path``; never raises.

    ``table_names``: the database's tables (None: they could not be read, said as a
    problem). ``scan``: a :class:`ProcessScan` whose recent process list may be reused
    (default: the processes are listed now). ``environ``: where ``$LITESTREAM_CONFIG`` and the config's variables come
    from (pwtop's own environment by default)."""
    environ = os.environ if environ is None else environ
    db = _resolve(path)
    rep = Replication()
    rep.looked_at = ["its tables " + " / ".join(TABLES),
                     "a `litestream replicate` process in /proc"]
    if table_names is None:
        rep.problems.append("the database's tables could not be read")
    else:
        names = set(table_names)
        rep.tables = [t for t in TABLES if t in names]
        if rep.tables:
            rep.evidence.append(f"its table{'s' if len(rep.tables) > 1 else ''} "
                                f"{' and '.join(rep.tables)} in the database")
    configs: dict[str, LitestreamConfig] = {}
    rep.processes, _ = (scan or ProcessScan()).processes(db, environ, proc, configs)
    if scan is not None and scan.max_age > 0:
        rep.looked_at[1] += f" (listed every {scan.max_age:g} s)"
    for p in rep.processes:
        if p.names_database is None:
            rep.evidence.append(f"process pid {p.pid} (`{p.command}`): {p.how}")
            rep.problems.append(f"pid {p.pid}: {p.how}")
        elif p.names_database:
            rep.evidence.append(f"process pid {p.pid} (`{p.command}`) {p.how}")
    given = environ.get(CONFIG_ENV)
    config = _resolve(given) if given else DEFAULT_CONFIG
    rep.looked_at.append(f"its config {config}" + (f" (${CONFIG_ENV})" if given else ""))
    cfg = next((c for k, c in configs.items() if k.startswith(config + "|")), None)
    if cfg is None:
        cfg = read_config(config, db, environ)
    rep.configs = [c for c in configs.values()]
    if cfg not in rep.configs:
        rep.configs.append(cfg)
    if cfg.names_database:
        rep.evidence.append(f"its config {config} lists this database")
    elif cfg.problem == "missing":
        if given:
            rep.problems.append(f"${CONFIG_ENV} names {config}, which does not exist")
    elif cfg.problem:
        rep.problems.append(f"config {config} is {cfg.problem}")
    rep.present = bool(rep.evidence)
    return rep


def attribute(rep: Replication, holders: Iterable[LockHolder]) -> None:
    """Fill ``rep.reader_pids``: Litestream's processes among the readers of the file.

    A process counts as Litestream's when its command line was found (any
    ``litestream replicate``, even one whose config could not be read) or, for a
    database carrying Litestream's tables, when its name is ``litestream``."""
    mine = {p.pid for p in rep.processes if p.names_database is not False}
    pids = []
    for h in holders:
        if h.pid is None or not h.role.startswith("reader"):
            continue
        if h.pid in mine or (rep.tables and h.process == "litestream"):
            if h.pid not in pids:
                pids.append(h.pid)
    rep.reader_pids = pids


def held_by(rep: Replication | None) -> str | None:
    """"held by Litestream's read transaction (pid N)" when its process holds a read lock:
    the WAL grows because Litestream has not checkpointed yet, not because of an unnamed
    reader of the app."""
    if rep is None or not rep.reader_pids:
        return None
    pids = ", ".join(str(p) for p in rep.reader_pids)
    return f"held by Litestream's read transaction (pid {pids}), which checkpoints itself"


def summary(rep: Replication) -> str:
    """One line for the Database tab and ``pwtop analyze``."""
    if rep.present:
        text = "Litestream replicates this database (detected by: " + "; ".join(rep.evidence)
        text += "); optimize checkpoints PASSIVE only and refuses VACUUM and TRUNCATE/" \
                f"RESTART checkpoints without {FLAG}"
    else:
        text = "no Litestream found (looked for " + ", ".join(rep.looked_at) + ")"
    if rep.problems:
        text += "; " + "; ".join(p for p in rep.problems if p not in text)
    return text


def refusal(rep: Replication, what: str, why: str) -> str:
    """The one line optimize answers when ``what`` would break Litestream's replica."""
    return (f"refused: {what} {why}; Litestream replicates this database (detected by: "
            f"{'; '.join(rep.evidence)}); nothing was run. Pass {FLAG} (HTTP: "
            f'"{BODY_FIELD}": true) to run it anyway and let Litestream start a new '
            "generation of its replica")

"""Snapshots back from the wire: ``to_jsonable`` dicts into the dataclasses they came from.

``pwtop serve`` sends every component's snapshot as :func:`pwtop.model.to_jsonable` made
it (dataclasses as dicts, levels as their labels, enums as their values). The TUI's tabs
and presenters read typed dataclasses (``snapshot.detail.file.wal_bytes``), so a remote
snapshot must become the same objects a local collect returns. This decoder walks each
dataclass's own field annotations, so a field added to a detail class is decoded without
a change here, and a value of the wrong shape is reported (``DecodeError``, naming where)
instead of reaching a presenter as a dict.

What cannot come back: fields marked :data:`pwtop.model.INTERNAL` are never sent; they
take their defaults (working data, e.g. a histogram kept for the next diff). Keys this
pwtop does not know (a newer server) are ignored and counted in ``Decoder.unknown``. A
plain value of another type than its field declares is kept as it came and named once in
``Decoder.problems`` (the sender's own objects sometimes hold more than their annotation
says: ``Loop.busy_ratio`` holds a (rate, window) pair); a structure that cannot be built
(an object without a required field, a list where an object belongs) is a DecodeError.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from typing import Any, Mapping

from pwtop.agent.details import AsyncDetail, RealtimeDetail
from pwtop.database.model import DatabaseDetail
from pwtop.errors import PwtopError
from pwtop.model import Level, Snapshot
from pwtop.system.component import SystemDetail

#: Which dataclass a component's ``Snapshot.detail`` is (its annotation is ``Any``).
DETAIL_TYPES: dict[str, type] = {
    "database": DatabaseDetail, "system": SystemDetail,
    "async": AsyncDetail, "realtime": RealtimeDetail,
}


class DecodeError(PwtopError):
    """A value that does not fit the type its field declares (``where`` names it)."""


_NONE = type(None)


class Decoder:
    """Decodes plain JSON data into a declared type. Field types are resolved once per
    class (``typing`` annotations are strings under ``from __future__ import annotations``)."""

    def __init__(self) -> None:
        self._fields: dict[type, list[tuple[str, Any, bool]]] = {}
        self.unknown: dict[str, int] = {}
        self.problems: dict[str, str] = {}

    # ------------------------------------------------------------ the one entry point

    def decode(self, tp: Any, value: Any, where: str = "") -> Any:
        if tp is Any or tp is object:
            return value
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            return self._union(typing.get_args(tp), value, where)
        if value is None:
            if tp is _NONE:
                return None
            raise DecodeError(f"{where or 'value'}: null where {_name(tp)} was expected")
        if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
            return self._sequence(tp, origin or tp, value, where)
        if origin is dict or tp is dict:
            args = typing.get_args(tp) or (str, Any)
            if not isinstance(value, dict):
                raise DecodeError(f"{where}: expected an object, got {type(value).__name__}")
            return {self._key(args[0], k): self.decode(args[1], v, f"{where}.{k}")
                    for k, v in value.items()}
        if origin is typing.Literal:
            if value not in typing.get_args(tp):
                raise DecodeError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
            return value
        if isinstance(tp, type):
            if dataclasses.is_dataclass(tp):
                return self._dataclass(tp, value, where)
            if issubclass(tp, Level):
                return self._level(value, where)
            if issubclass(tp, enum.Enum):
                try:
                    return tp(value)
                except ValueError:
                    raise DecodeError(f"{where}: {value!r} is not a {tp.__name__}") from None
            return self._scalar(tp, value, where)
        return value  # a typing construct this decoder does not know: passed as it came

    # ------------------------------------------------------------ the parts

    def _union(self, options: tuple[Any, ...], value: Any, where: str) -> Any:
        if value is None:
            if _NONE in options:
                return None
            raise DecodeError(f"{where}: null where a value was expected")
        real = [o for o in options if o is not _NONE]
        for option in real:  # a plain value of an allowed type is taken as it is
            if option in (int, float, str, bool) and _fits(option, value):
                return value
        errors = []
        for option in sorted(real, key=_scalar_last):
            try:
                return self.decode(option, value, where)
            except DecodeError as exc:
                errors.append(exc.message)
        raise DecodeError(errors[0] if len(errors) == 1 else
                          f"{where}: {type(value).__name__} fits none of "
                          f"{', '.join(_name(o) for o in real)}")

    def _sequence(self, tp: Any, kind: type, value: Any, where: str) -> Any:
        if not isinstance(value, list):
            raise DecodeError(f"{where}: expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        if kind is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise DecodeError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(self.decode(a, v, f"{where}[{i}]")
                         for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [self.decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if kind is list else kind(items)

    def _dataclass(self, cls: type, value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise DecodeError(f"{where or cls.__name__}: expected an object for "
                              f"{cls.__name__}, got {type(value).__name__}")
        kwargs = {}
        fields = self.fields(cls)
        known = set()
        for name, tp, required in fields:
            known.add(name)
            if name in value:
                kwargs[name] = self.decode(tp, value[name], f"{where}.{name}" if where else name)
            elif required:
                raise DecodeError(f"{where or cls.__name__}: {cls.__name__} without "
                                  f"{name!r}")
        for key in value:
            if key not in known:
                label = f"{cls.__name__}.{key}"
                self.unknown[label] = self.unknown.get(label, 0) + 1
        return cls(**kwargs)

    def fields(self, cls: type) -> list[tuple[str, Any, bool]]:
        """(name, resolved type, required) of each field the wire carries."""
        found = self._fields.get(cls)
        if found is None:
            module = sys.modules.get(cls.__module__)
            namespace = dict(vars(module)) if module is not None else {}
            found = []
            for f in dataclasses.fields(cls):
                if not f.init or not f.metadata.get("json", True):
                    continue
                tp = f.type
                if isinstance(tp, str):
                    tp = _hint(tp, namespace, cls)
                required = (f.default is dataclasses.MISSING
                            and f.default_factory is dataclasses.MISSING)
                found.append((f.name, tp, required))
            self._fields[cls] = found
        return found

    @staticmethod
    def _level(value: Any, where: str) -> Level:
        if isinstance(value, int) and not isinstance(value, bool):
            return Level(value)
        if isinstance(value, str):
            try:
                return Level.parse(value)
            except ValueError as exc:
                raise DecodeError(f"{where}: {exc}") from None
        raise DecodeError(f"{where}: expected a level, got {type(value).__name__}")

    @staticmethod
    def _key(tp: Any, key: str) -> Any:
        if tp is int:
            return int(key)
        if tp is float:
            return float(key)
        return key

    def _scalar(self, tp: type, value: Any, where: str) -> Any:
        if _fits(tp, value):
            return float(value) if tp is float else value
        if len(self.problems) < 100:
            self.problems.setdefault(where, f"expected {_name(tp)}, got {type(value).__name__}")
        return value


def _hint(annotation: str, namespace: dict[str, Any], owner: type) -> Any:
    """One field's annotation resolved as ``typing.get_type_hints`` does (nested names
    too: ``list["Flag"]``); a name only imported under TYPE_CHECKING reads as Any."""
    holder = type("_Field", (), {"__annotations__": {"x": annotation}})
    try:
        return typing.get_type_hints(holder, globalns=namespace,
                                     localns={owner.__name__: owner})["x"]
    except Exception:
        return Any


def _scalar_last(tp: Any) -> bool:
    """Structured options are tried before plain ones (which take anything, noted)."""
    return tp in (int, float, str, bool)


def _fits(tp: type, value: Any) -> bool:
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def decode_snapshot(data: Mapping[str, Any], decoder: Decoder | None = None) -> Snapshot:
    """A component's snapshot as ``to_jsonable`` sent it, with its typed ``detail``.

    ``monotonic`` is the sender's clock and means nothing here: the caller sets it on this
    host's clock (see :func:`local_monotonic`)."""
    decoder = decoder or Decoder()
    if not isinstance(data, dict):
        raise DecodeError(f"snapshot: expected an object, got {type(data).__name__}")
    component = data.get("component")
    detail = data.get("detail")
    snapshot = decoder.decode(Snapshot, {k: v for k, v in data.items() if k != "detail"},
                              str(component or "snapshot"))
    cls = DETAIL_TYPES.get(str(component))
    if detail is not None and cls is not None:
        snapshot.detail = decoder.decode(cls, detail, f"{component}.detail")
    else:
        snapshot.detail = detail
    return snapshot


def local_monotonic(taken_at: float, received_mono: float, received_wall: float) -> float:
    """The local monotonic reading that matches a remote snapshot's ``taken_at``.

    The sender's monotonic clock is another machine's; its wall clock (``taken_at``) is
    comparable to ours only as far as the clocks agree. The age measured on the wall
    clocks is used when it is plausible (0 to an hour), else the moment it arrived."""
    age = received_wall - taken_at
    if not 0.0 <= age <= 3600.0:
        age = 0.0
    return received_mono - age

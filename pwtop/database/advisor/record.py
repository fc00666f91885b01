"""The index advisor's calibration record: what each check measured, for later runs.

One small JSON file (``[database] advice_record``, by default
``$XDG_STATE_HOME/pwtop/advisor-record.json``), written after every check on a scratch
copy (:mod:`.measure`) and read by the next run on the same database. Format
(``"format": "pwtop-advisor-record/1"``)::

    {
      "format": "pwtop-advisor-record/1",
      "databases": {
        "/real/path/of/app.db": {
          "updated": "2026-12-07T23:10:00Z",      # UTC, when the check ran
          "seconds_per_cost": 2.1e-07,              # median measured seconds per unit of
                                                    # the model's cost, over the statements
                                                    # timed on the copy (null: none)
          "check": "checked on a snapshot ...",     # Check.describe()
          "recommended": [                          # the indexes the run recommended
            {"table": "t", "columns": [["a", false], ["b", true]], "name": "pwtop_t_a_b_desc",
             "where": [["acked", "eq", "0"]],       # a partial index's terms ([]: none)
             "saving_s": 0.012, "low_s": 0.010, "high_s": 0.013, "write_price_s": 0.0004,
             "measured": true}
          ],
          "statements": {                           # by statement fingerprint id
            "3f2a9c01de": {"name": "top", "predicted_ratio": 0.001, "measured_ratio": 0.02,
                           "before_s": 0.091, "after_s": 0.0018, "disagrees": true}
          },
          "disagreements": ["top: the model predicted x0.001 ..."]
        }
      }
    }

Later runs read it for two things. **Prices**: ``seconds_per_cost`` converts the model's
cost of a statement that cannot be timed now (no parameter values, or a rollback-journal
file with a writer holding a lock and no room for a snapshot) into seconds, instead of a
guess; such a weight is still labelled an estimate. **Stability**: the indexes in
``recommended`` are measured again even when the model leaves them out, and they stay
recommended unless the new measurement contradicts them (:func:`.measure._verdict`), so
a saving near the threshold does not appear and disappear from run to run. A record that
cannot be read (missing, damaged, another format) is treated as empty and replaced; one
that cannot be written leaves the advice as it is and says so in the report's notes.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from pwtop.config import state_home
from pwtop.database.advisor.candidates import IndexKey
from pwtop.database.advisor.sqltext import fingerprint, fingerprint_id

FORMAT = "pwtop-advisor-record/1"
MAX_DATABASES = 32          # the oldest entries are forgotten beyond this


def record_path(setting: str = "") -> Path:
    return Path(setting).expanduser() if setting else state_home() / "advisor-record.json"


def _db_key(db: str | Path) -> str:
    return os.path.realpath(os.path.expanduser(str(db)))


def load(path: Path) -> dict[str, Any]:
    """The whole record; empty when missing or unreadable (see the module doc)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": FORMAT, "databases": {}}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(
            data.get("databases"), dict):
        return {"format": FORMAT, "databases": {}}
    return data


def entry(path: Path, db: str | Path) -> dict[str, Any]:
    found = load(path)["databases"].get(_db_key(db))
    return found if isinstance(found, dict) else {}


def recommended_keys(found: Mapping[str, Any]) -> list[IndexKey]:
    out = []
    for r in found.get("recommended") or []:
        try:
            out.append(IndexKey(str(r["table"]), tuple((str(c), bool(d))
                                                       for c, d in r["columns"]),
                                tuple((str(c), str(op), str(lit))
                                      for c, op, lit in r.get("where") or ())))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def seconds_per_cost(found: Mapping[str, Any]) -> float | None:
    v = found.get("seconds_per_cost")
    return float(v) if isinstance(v, (int, float)) and v > 0 else None


def statement_id(sql: str) -> str:
    try:
        return fingerprint_id(fingerprint(sql))
    except Exception:  # a text the tokenizer cannot read: keyed by its raw text
        return fingerprint_id(sql)


def save(path: Path, db: str | Path, new: Mapping[str, Any]) -> str | None:
    """Replace ``db``'s entry (atomically: a temp file renamed); None, or why it failed."""
    data = load(path)
    dbs = data["databases"]
    dbs[_db_key(db)] = dict(new, updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if len(dbs) > MAX_DATABASES:
        for old in sorted(dbs, key=lambda k: str(dbs[k].get("updated", "")))[:-MAX_DATABASES]:
            del dbs[old]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".advisor-record-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        return f"{path}: calibration record not written ({exc.strerror or exc})"
    return None


def from_check(check: Any, report: Any, cost: Mapping[str, float]) -> dict[str, Any]:
    """The entry for one run: its check, what it recommended, its statements' figures."""
    statements = {}
    sql_of = {q.name: q.sql for q in report.queries}
    ratios = []
    for sc in check.statements:
        if sc.name in sql_of:
            statements[statement_id(sql_of[sc.name])] = {
                "name": sc.name, "predicted_ratio": sc.predicted_ratio,
                "measured_ratio": sc.measured_ratio, "before_s": sc.before_s,
                "after_s": sc.after_s, "disagrees": sc.disagrees}
        if cost.get(sc.name, 0) > 0 and sc.before_s > 0:
            ratios.append(sc.before_s / cost[sc.name])
    recommended = []
    for a in report.creates:
        ic = check.verdict(a.name)
        band = ic.saving if ic is not None else None
        recommended.append({
            "table": a.key.table, "columns": [[c, d] for c, d in a.key.columns],
            "where": [list(t) for t in a.key.where], "name": a.name, "measured": band is not None,
            "saving_s": band.median if band is not None else a.saving_seconds,
            "low_s": band.low if band is not None and band.low > -1e300 else None,
            "high_s": band.high if band is not None and band.high < 1e300 else None,
            "write_price_s": ic.write_price_s if ic is not None else None})
    return {"seconds_per_cost": statistics.median(ratios) if ratios else None,
            "check": check.describe(), "recommended": recommended,
            "statements": statements, "disagreements": list(check.disagreements)}

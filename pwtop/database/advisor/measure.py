"""Check the chosen index set by measurement, on a scratch copy, before it is recommended.

The cost model predicts plans and their costs from sampled statistics; it can be wrong by
orders of magnitude (a skip-scan predicted at 5 µs for a statement that takes 79 ms).
So before the advice is shown, :func:`check` builds the chosen indexes and a few close
runners-up on one snapshot of the live file (:mod:`.snapshot`, within the ``[database]
snapshot_*`` bounds and ``advice_check_budget``) and times the workload's read
statements there in several *states* of that one copy:

* ``base``: without any new index (the schema as it is);
* ``advised``: the chosen set, with the indexes it makes redundant dropped;
* ``-name``: the advised set without one chosen index (what that index is worth);
* ``+name``: the advised set plus one runner-up (what it would add).

A state is made inside a transaction: ``BEGIN; DROP INDEX`` the ones the state lacks,
run the statements, ``ROLLBACK``. The rollback puts the dropped indexes back without
rebuilding them, so every state is timed on the same pages. A statement whose plan in a
state is the one it has in ``advised`` is not run again there (its time is the same).
A DROP inside a transaction does not expire the statements prepared before it, so each
state runs its own text of every statement (a comment naming the state): a statement
prepared in one state is never run in another. The rollback expires them, so a statement
faster than :data:`TWICE_S` runs twice in its state and the faster run counts: the times
compare executions, not re-preparations (as in an app whose statements are cached), and
a moment the process was not scheduled (a loaded machine) lands on one run, not both.
The floor of one call (``SELECT 1`` through the same connection) is measured with them
and given with the figures: a statement's time is never below it.

Every round times every state once, the order of the states changing from round to
round, so a burst of load lands on all of them alike. An index's measured saving is, per
round, the weighted workload time without it minus with it; over the rounds that gives a
median and a distribution-free band (a sign-test confidence interval, :func:`band`, at
:data:`CONFIDENCE`). **The measurement decides**: a new index is recommended only when
the band's low end exceeds the write price the model puts on it (so its benefit is above
the measured noise) and the median saving is at least the minimum gain. Between runs the
advice changes only when the evidence does: the indexes the last run recommended (the
calibration record, :mod:`.record`) are preferred by the model's choice (they need a net
gain of zero, not the minimum gain) and, once chosen, stay recommended unless the band's
high end falls below their price; one the model still leaves out is measured as a
runner-up and must clear the noise again. A runner-up whose band clears its price is
recommended although the model left it out. Where
the model and the measurement disagree, the check says so (:attr:`Check.disagreements`)
and the record keeps it.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

from pwtop.database import plans
from pwtop.database.advisor.candidates import IndexKey
from pwtop.database.advisor.choose import Choice, Chooser, Evaluation
from pwtop.database.advisor.snapshot import Bounds, SnapshotRefused, snapshot
from pwtop.database.inspect import quote
from pwtop.database.scratch import open_readonly
from pwtop.errors import TargetError
from pwtop.units import human_seconds

ROUNDS_MIN = 5            # the least rounds a sign-test band at CONFIDENCE needs (n=5: 97 %)
ROUNDS_MAX = 21           # more while an index's band still straddles its threshold
CONFIDENCE = 0.95
RUNNERS_UP = 3            # close runners-up built and timed beside the chosen set
RUNNER_EVALUATIONS = 60   # at most this many model evaluations to find them
RUN_CAP_S = 2.0           # one run of one statement is interrupted after this
DISAGREE_FACTOR = 2.0     # model and measurement disagree beyond this factor...
DISAGREE_FLOORS = 2.0     # ... and by more than this many call floors in seconds
TWICE_S = 0.05            # a statement faster than this runs twice per state, min counts


@dataclass
class Band:
    """A measured quantity over paired rounds: median and a sign-test confidence band."""

    median: float
    low: float                    # -inf when too few rounds for the confidence
    high: float
    rounds: int

    @property
    def noise(self) -> float:
        """Half the band's width (inf with too few rounds)."""
        return (self.high - self.low) / 2

    def describe(self) -> str:
        if not math.isfinite(self.low) or not math.isfinite(self.high):
            return f"{_s(self.median)} (too few rounds, {self.rounds}, for a band)"
        return (f"{_s(self.median)} ({_s(self.low)} to {_s(self.high)} at "
                f"{CONFIDENCE:.0%} over {self.rounds} rounds)")


def band(values: Sequence[float], confidence: float = CONFIDENCE) -> Band:
    """Median and the sign-test band of ``values``: the k-th smallest and the k-th
    largest, k the largest order with P(Binomial(n, 1/2) < k) <= 1 - ``confidence`` (so
    the true median lies below the low end, or above the high end, with at most that
    probability each). It assumes nothing about the timing noise's distribution (a load
    burst makes a long right tail); with fewer than 5 values there is no such k at 95 %
    and the band is unbounded."""
    vals = sorted(values)
    n = len(vals)
    if not n:
        return Band(0.0, -math.inf, math.inf, 0)
    alpha = 1.0 - confidence
    k = 0
    tail = 0.0
    for j in range(n):
        tail += math.comb(n, j) / 2 ** n   # P(X <= j)
        if tail > alpha:
            break
        k = j + 1
    mid = statistics.median(vals)
    if k == 0:
        return Band(mid, -math.inf, math.inf, n)
    return Band(mid, vals[k - 1], vals[n - k], n)


@dataclass
class IndexCheck:
    key: IndexKey
    name: str
    role: str                      # "chosen", "runner-up", "recommended last run"
    predicted_saving_s: float      # the model's (marginal) saving per workload run
    write_price_s: float           # the price of its writes per workload run
    statements: list[str] = field(default_factory=list)   # timed where its plan changes
    saving: Band | None = None     # measured; None: nothing it changes could be timed
    recommend: bool | None = None  # the verdict; None: not measured (model stands)
    why: str = ""
    write_units: float = 0.0       # the share-weighted write units it adds per insert

    def describe(self) -> str:
        if self.saving is None:
            return f"{self.name}: not measured ({self.why})"
        return (f"{self.name}: measured saving {self.saving.describe()}, write price "
                f"{_s(self.write_price_s)} (model), predicted {_s(self.predicted_saving_s)}: "
                f"{self.why}")


@dataclass
class StatementCheck:
    name: str
    before_s: float
    after_s: float
    predicted_ratio: float          # the model's cost after / before
    runs: int
    capped: bool = False            # a run hit RUN_CAP_S (its time is at least that)
    floor_s: float = 0.0            # the time of one call that does nothing (SELECT 1)

    @property
    def measured_ratio(self) -> float:
        return self.after_s / self.before_s if self.before_s > 0 else 1.0

    @property
    def disagrees(self) -> bool:
        """The ratios differ by more than DISAGREE_FACTOR, and the predicted time after by
        more than DISAGREE_FLOORS call floors from the measured one (a prediction of 1 µs
        for a statement whose call alone takes 10 µs is not a disagreement of the plan)."""
        p, m = max(self.predicted_ratio, 1e-9), max(self.measured_ratio, 1e-9)
        predicted_after = self.before_s * self.predicted_ratio
        return (max(p / m, m / p) > DISAGREE_FACTOR
                and abs(predicted_after - self.after_s) > DISAGREE_FLOORS * self.floor_s)


@dataclass
class Check:
    """What the check on the scratch copy did and found (``done`` False: why not)."""

    done: bool
    why: str
    rounds: int = 0
    seconds: float = 0.0
    copy: str = ""
    workload_before: Band | None = None     # weighted seconds per workload run
    workload_after: Band | None = None
    noise_s: float | None = None            # half the IQR of the advised state's rounds
    floor_s: float | None = None            # one call that does nothing (SELECT 1), median
    price_share: float | None = None        # see check(): write units priced per workload
    indexes: list[IndexCheck] = field(default_factory=list)
    statements: list[StatementCheck] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.done:
            return f"not checked by measurement: {self.why}"
        parts = [f"checked on {self.copy}: {self.rounds} rounds in {self.seconds:.1f} s"]
        if self.workload_before is not None and self.workload_after is not None:
            parts.append(f"workload {_s(self.workload_before.median)} -> "
                         f"{_s(self.workload_after.median)} per run measured")
        if self.noise_s is not None:
            parts.append(f"noise ±{_s(self.noise_s)} per run (half the interquartile range "
                         "of the rounds)")
        if self.floor_s is not None:
            parts.append(f"one call's floor {_s(self.floor_s)}")
        return "; ".join(parts)

    def verdict(self, name: str) -> IndexCheck | None:
        return next((c for c in self.indexes if c.name == name), None)


def _s(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    return sign + human_seconds(abs(seconds))


# ---------------------------------------------------------------- the states


@dataclass
class _State:
    label: str
    hidden: set[str]
    statements: list[str] = field(default_factory=list)   # timed in this state


def _runners_up(chooser: Chooser, choice: Choice, cands: Sequence[Any],
                also: Collection[IndexKey]) -> list[tuple[IndexKey, Evaluation, str]]:
    """The close runners-up: candidates not chosen whose addition the model scores
    highest (below the minimum gain, or it would have chosen them), and the indexes the
    last run recommended that the model left out this time."""
    final = choice.final
    base_net = chooser.net(final)
    scored: list[tuple[float, IndexKey, Evaluation]] = []
    seen = set(choice.chosen)
    for key in also:
        if key in seen or chooser._useless(key, final):
            continue
        seen.add(key)
        scored.append((math.inf, key, chooser.evaluate(choice.chosen + [key])))
    tried = 0
    for c in cands:
        if tried >= RUNNER_EVALUATIONS:
            break
        key = c.key
        if key in seen or chooser._useless(key, final):
            continue
        seen.add(key)
        tried += 1
        ev = chooser.evaluate(choice.chosen + [key], only_tables={key.table.lower()},
                              previous=final)
        if ev.benefit > final.benefit and not any(
                f.index.name == key.default_name() for f in ev.drops):
            scored.append((chooser.net(ev) - base_net, key, ev))
    scored.sort(key=lambda t: -t[0])
    out, taken = [], 0
    for score, key, ev in scored:
        if score == math.inf:
            out.append((key, ev, "recommended last run"))
        elif taken < RUNNERS_UP:
            out.append((key, ev, "runner-up"))
            taken += 1
    return out


def _skeletons(chooser: Chooser, choice: Choice,
               runners: list[tuple[IndexKey, Evaluation, str]]) -> list[IndexCheck]:
    """The indexes to measure, each with the model's saving and write price (per run)."""
    final = choice.final
    out = []
    for key in choice.chosen:
        without = chooser.evaluate([k for k in choice.chosen if k != key])
        units = final.write_total - without.write_total
        out.append(IndexCheck(key, key.default_name(), "chosen", choice.marginal.get(key, 0.0),
                              chooser.price * units, write_units=units))
    for key, ev, role in runners:
        units = ev.write_total - final.write_total
        out.append(IndexCheck(key, key.default_name(), role, ev.benefit - final.benefit,
                              chooser.price * units, write_units=units))
    return out


def _plan_text(conn: sqlite3.Connection, sql: str, params: Any) -> str:
    return "\n".join(plans.render(plans.explain(conn, sql, params)))


def _in(sql: str, label: str) -> str:
    """The statement's text for one state (see the module doc: one prepared statement per
    state)."""
    return f"{sql}\n/* pwtop check state {label} */"


class _Timer:
    """Runs statements on the copy, each run cut at RUN_CAP_S."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.until = math.inf
        self.capped: set[str] = set()
        conn.set_progress_handler(lambda: 1 if time.perf_counter() > self.until else 0, 2000)

    def run(self, name: str, sql: str, params: Any, twice: bool = False) -> float:
        if twice:
            return min(self.run(name, sql, params), self.run(name, sql, params))
        t0 = time.perf_counter()
        self.until = t0 + RUN_CAP_S
        try:
            cur = self.conn.execute(sql, params)
            while cur.fetchmany(1000):
                pass
        except sqlite3.OperationalError as exc:
            if "interrupt" not in str(exc):
                raise
            self.capped.add(name)
            return RUN_CAP_S
        finally:
            self.until = math.inf
        return time.perf_counter() - t0


def _in_state(conn: sqlite3.Connection, state: _State, fn: Callable[[], Any]) -> Any:
    conn.execute("BEGIN")
    try:
        for name in sorted(state.hidden):
            conn.execute(f"DROP INDEX IF EXISTS {quote(name)}")
        return fn()
    finally:
        conn.execute("ROLLBACK")


# ---------------------------------------------------------------- the check


def check(path: str | Path, chooser: Chooser, choice: Choice, cands: Sequence[Any],
          statements: Sequence[Any], *, timeable: Mapping[str, Any],
          frequency: Mapping[str, float], bounds: Bounds, budget_s: float,
          analyze: bool, previous: Collection[IndexKey] = (),
          min_gain_share: float = 0.005, extra_bytes: int = 0,
          price_share: float | None = None) -> Check:
    """Measure ``choice`` (and runners-up) on a snapshot of ``path``; see the module doc.

    ``timeable``: statement name -> its parameter values, for the read statements that
    can be run (the others are left to the model); ``frequency``: runs per workload run.
    ``analyze``: run ANALYZE on the copy first (the live file has no statistics, and the
    model assumed the ones ANALYZE gives). ``previous``: the indexes the last run
    recommended (kept unless the measurement contradicts them). ``price_share``: the
    insert rate is unknown and the model prices a write unit at this share of the
    workload (UNKNOWN_RATE_PRICE): the check prices it as that share of the workload it
    measured, not of the live timings the model was given (on a loaded machine those
    moved the price, and the verdict, from run to run); None: the model's absolute
    price (a known insert rate) stands.
    """
    t0 = time.monotonic()
    keys = list(choice.chosen)
    out = Check(done=False, why="", price_share=price_share)
    if budget_s <= 0:
        out.why = "advice_check_budget is 0 (checks are off)"
        return out
    runners = _runners_up(chooser, choice, cands, previous)
    if not keys and not runners:
        out.why = "nothing to check (no index chosen, no runner-up)"
        return out
    by_name = {s.name: s for s in statements}
    reads = [n for n in timeable if n in by_name]
    if not reads:
        out.why = "no statement of the workload can be timed (none has parameter values)"
        return out
    drops = {f.index.name: f.kept.name for f in choice.final.drops}
    try:
        src = open_readonly(Path(path).expanduser())
    except TargetError as exc:
        out.why = exc.message
        return out
    open_src = True
    try:
        with snapshot(src, bounds, extra_bytes=extra_bytes) as snap:
            src.close()  # the copy is made: the live file is not held while it is used
            open_src = False
            out.copy = snap.describe()
            conn = sqlite3.connect(snap.path, isolation_level=None, cached_statements=1024)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                _measure(conn, out, _skeletons(chooser, choice, runners), choice, drops,
                         by_name, reads, timeable, frequency, analyze, previous,
                         min_gain_share, t0 + budget_s)
            finally:
                conn.close()
    except SnapshotRefused as exc:
        out.why = exc.message
    except sqlite3.Error as exc:
        out.done, out.why = False, f"SQLite failed on the copy ({' '.join(str(exc).split())})"
    finally:
        if open_src:
            src.close()
    out.seconds = time.monotonic() - t0
    return out


def _measure(conn: sqlite3.Connection, out: Check, checks: list[IndexCheck], choice: Choice,
             drops: dict[str, str], by_name: Mapping[str, Any], reads: list[str],
             timeable: Mapping[str, Any], frequency: Mapping[str, float], analyze: bool,
             previous: Collection[IndexKey], min_gain_share: float, until: float) -> None:
    for ic in checks:
        conn.execute(ic.key.sql(ic.name).replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1))
        if time.monotonic() > until:
            out.why = "advice_check_budget ran out while the indexes were built on the copy"
            return
    if analyze:
        conn.execute("ANALYZE")
        out.notes.append("ANALYZE was run on the copy (the live file has no statistics; "
                         "the advice assumes the ones ANALYZE gives)")
    chosen_names = {ic.name for ic in checks if ic.role == "chosen"}
    extra = {ic.name for ic in checks if ic.role != "chosen"}
    states = [_State("base", chosen_names | extra), _State("advised", extra | set(drops))]
    for ic in checks:
        if ic.role == "chosen":
            kept_back = {d for d, k in drops.items() if k == ic.name}
            states.append(_State(f"-{ic.name}",
                                 extra | (set(drops) - kept_back) | {ic.name}))
        else:
            states.append(_State(f"+{ic.name}", (extra - {ic.name}) | set(drops)))
    # plans per state: a statement is timed in a state only where its plan differs
    plan_of: dict[str, dict[str, str]] = {}
    for st in states:
        plan_of[st.label] = _in_state(conn, st, lambda st=st: {
            n: _plan_text(conn, _in(by_name[n].sql, st.label), timeable[n]) for n in reads})
    advised = plan_of["advised"]
    for st in states:
        st.statements = (list(reads) if st.label == "advised" else
                         [n for n in reads if plan_of[st.label][n] != advised[n]])
    label_of = {st.label: st for st in states}
    for ic in checks:
        ic.statements = list(label_of[("-" if ic.role == "chosen" else "+") + ic.name]
                             .statements)
    timer = _Timer(conn)
    times: dict[str, dict[str, list[float]]] = {st.label: {} for st in states}
    last: dict[str, float] = {}
    floor: list[float] = []

    def one_round(record: bool, order: list[_State]) -> None:
        for st in order:
            def go(st: _State = st) -> None:
                for n in st.statements:
                    dt = timer.run(n, _in(by_name[n].sql, st.label), timeable[n],
                                   twice=last.get(n, 0.0) < TWICE_S)
                    last[n] = dt
                    if record:
                        times[st.label].setdefault(n, []).append(dt)
            _in_state(conn, st, go)
        floor.append(timer.run("floor", "SELECT 1", (), twice=True))

    one_round(False, states)  # warm-up: the copy's pages into the cache
    rounds = 0
    while rounds < ROUNDS_MAX and time.monotonic() < until:
        order = states[rounds % len(states):] + states[:rounds % len(states)]
        one_round(True, order if rounds % 2 == 0 else order[::-1])
        rounds += 1
        if rounds >= ROUNDS_MIN and _decided(out, checks, states, times, rounds, frequency,
                                             previous, min_gain_share):
            break
    out.rounds = rounds
    if rounds < ROUNDS_MIN:
        out.why = (f"advice_check_budget ran out after {rounds} timing round(s); at least "
                   f"{ROUNDS_MIN} are needed to tell a saving from the noise")
        return
    _decided(out, checks, states, times, rounds, frequency, previous, min_gain_share)
    out.done = True
    out.floor_s = statistics.median(floor)
    if timer.capped:
        out.notes.append(f"runs cut at {RUN_CAP_S:g} s (counted as {RUN_CAP_S:g} s): "
                         + ", ".join(sorted(timer.capped)))
    queries = {}
    for st in choice.final.estimates:
        base_est = choice.base.estimates.get(st)
        if base_est is not None and base_est.cost > 0:
            queries[st] = choice.final.estimates[st].cost / base_est.cost
    per_state = _per_round(states, times, rounds, frequency, statement_level=True)
    for n in reads:
        before = [per_state["base"][n][r] for r in range(rounds)]
        after = [per_state["advised"][n][r] for r in range(rounds)]
        out.statements.append(StatementCheck(
            n, statistics.median(before), statistics.median(after), queries.get(n, 1.0),
            rounds, n in timer.capped, out.floor_s))
    for sc in out.statements:
        if sc.disagrees:
            out.disagreements.append(
                f"{sc.name}: the model predicted x{sc.predicted_ratio:.3g} of its time with the "
                f"advised set, measured x{sc.measured_ratio:.3g} ({_s(sc.before_s)} -> "
                f"{_s(sc.after_s)})")
    for ic in out.indexes:
        if ic.recommend is None:
            continue
        if ic.role == "chosen" and not ic.recommend:
            out.disagreements.append(f"{ic.name}: chosen by the model (saving "
                                     f"{_s(ic.predicted_saving_s)} predicted), not by the "
                                     f"measurement ({ic.why})")
        elif ic.role == "runner-up" and ic.recommend:
            out.disagreements.append(f"{ic.name}: left out by the model, recommended by the "
                                     f"measurement ({ic.why})")


def _per_round(states: list[_State], times: dict[str, dict[str, list[float]]], rounds: int,
               frequency: Mapping[str, float], statement_level: bool = False
               ) -> dict[str, Any]:
    """Per state, per round: the weighted workload time (statement times not measured in
    a state are those of ``advised`` in the same round)."""
    adv = times["advised"]
    out: dict[str, Any] = {}
    for st in states:
        per: dict[str, list[float]] = {}
        for n, series in adv.items():
            own = times[st.label].get(n)
            use = own if own is not None and len(own) >= rounds else series
            per[n] = [use[r] * frequency.get(n, 1.0) for r in range(rounds)]
        if statement_level:
            out[st.label] = {n: [v / max(frequency.get(n, 1.0), 1e-12) for v in vals]
                             for n, vals in per.items()}
        else:
            out[st.label] = [sum(v[r] for v in per.values()) for r in range(rounds)]
    return out


def _decided(out: Check, checks: list[IndexCheck], states: list[_State],
             times: dict[str, dict[str, list[float]]], rounds: int,
             frequency: Mapping[str, float], previous: Collection[IndexKey],
             min_gain_share: float) -> bool:
    """Fill the bands and verdicts from the rounds so far; True when every measured
    index's band lies wholly on one side of its threshold (more rounds change nothing)."""
    w = _per_round(states, times, rounds, frequency)
    adv = w["advised"]
    out.workload_before = band(w["base"])
    out.workload_after = band(adv)
    q1, _, q3 = (statistics.quantiles(adv, n=4, method="inclusive") if rounds > 1
                 else (adv[0], adv[0], adv[0]))
    out.noise_s = (q3 - q1) / 2
    # the minimum gain is a share of the workload as the least disturbed round saw it: a
    # burst of load inflates the median, and with it the bar, on a noisy machine
    min_gain = min_gain_share * min(w["base"])
    if out.price_share is not None:
        for ic in checks:
            ic.write_price_s = out.price_share * min(w["base"]) * ic.write_units
    out.indexes = checks
    decided = True
    for ic in checks:
        if ic.statements and ic.role == "chosen":
            ic.saving = band([a - b for a, b in zip(w[f"-{ic.name}"], adv)])
        elif ic.statements:
            ic.saving = band([a - b for a, b in zip(adv, w[f"+{ic.name}"])])
        decided &= _verdict(ic, min_gain, ic.key in previous)
    _substitutes(checks)
    return decided


def _substitutes(checks: list[IndexCheck]) -> None:
    """Leave one chosen index out at a time, and two that serve the same statements each
    measure a saving near zero (the other takes over): refusing both would refuse what
    either gives. So the refusals go one at a time, the smallest saving first, and one
    whose statements a refused index also served is kept as the model chose it: its own
    saving was measured with that one present, never alone."""
    refused = sorted((ic for ic in checks if ic.role == "chosen" and ic.recommend is False
                      and ic.saving is not None), key=lambda ic: ic.saving.median)
    served: dict[str, str] = {}
    for ic in refused:
        other = next((served[n] for n in ic.statements if n in served), None)
        if other is not None:
            ic.recommend = True
            ic.why = (f"kept as the model chose it: its saving was measured with {other} "
                      "present, which serves the same statements and is refused, never alone")
            continue
        for n in ic.statements:
            served[n] = ic.name


def _verdict(ic: IndexCheck, min_gain: float, was_recommended: bool) -> bool:
    """Set ``ic.recommend`` and ``ic.why``; True when more rounds could not change it."""
    if ic.saving is None:
        ic.why = "no timed statement's plan changes with it"
        ic.recommend = None
        return True
    s, price = ic.saving, ic.write_price_s
    net_low, net_mid, net_high = s.low - price, s.median - price, s.high - price
    if was_recommended and ic.role == "chosen":
        ic.recommend = net_high > 0
        ic.why = ("recommended by the last run, and the measurement does not contradict it"
                  if ic.recommend else "recommended by the last run, but measured worth less "
                  "than its write price even at the band's high end")
        ic.why += f" (measured saving {s.describe()}, write price {_s(price)})"
        return net_high <= 0 or net_low > 0
    ic.recommend = net_low > 0 and net_mid >= min_gain
    saving = f"measured saving {s.describe()}, write price {_s(price)}"
    if ic.recommend:
        ic.why = f"{saving}: above the noise and the write price"
    elif net_low > 0:
        ic.why = f"{saving}: above the noise, but below the minimum gain ({_s(min_gain)})"
    else:
        ic.why = f"{saving}: not above the measured noise and the write price"
    return net_low > 0 or net_high <= 0

"""Choose the index set that saves the whole workload the most, net of what its writes cost.

A PiWardrive rig inserts all day, and every index costs every insert a b-tree update, so
an index is worth having only for what it saves the workload. The choice is greedy and
measured at each step against the current set (:mod:`~pwtop.database.advisor.whatif`):

* **benefit** of a set: for every statement, its weight (frequency x measured seconds)
  times the share of its estimated cost the set removes; a plan that gets worse counts
  against the set;
* **write cost** of a set, per table: every index costs ``1 + entry bytes / 64`` units
  per insert (a b-tree descent plus the bytes it writes), scaled by the table's share
  of all inserts (from captured INSERT counts when the app's statements were captured,
  else from its share of all rows, which the inserts put there). Dropping an index gives
  its units back;
* indexes that become **redundant** (a left prefix or a duplicate of another, by the
  rules of :mod:`pwtop.database.indexes`) are dropped in every evaluated set, so a wide
  index that replaces two narrow ones is judged by the net write cost;
* the write cost is **priced in the benefit's currency** (seconds per workload window),
  so that reads and writes trade against each other on every table alike: when the
  insert rate is known (the app's captured INSERT counts, or INSERT statements with a
  ``-- pwtop: weight=`` annotation, counted over the same window as the reads), one
  write unit of one inserted row costs ``WRITE_UNIT_S``; when it is not known, one
  share-weighted write unit is priced at ``UNKNOWN_RATE_PRICE`` of the workload (1 %),
  so an index must save that share of the workload per unit it adds, times the share of
  the inserts its table receives. (An earlier rule refused any growth of an
  "insert-heavy" table's write cost; with insert shares inferred from row counts every table of a
  database with a few comparable tables was insert-heavy, and only the one table whose
  redundant indexes could pay got advice.)

Each step adds the candidate with the highest **net gain** (seconds saved minus the
price of the write units it adds; a candidate that lowers the write cost earns its
price back) while that is at least ``min_gain_share`` of the workload. Then two passes:
**merge** two chosen indexes of one table into one that serves both when the net gain
(write saving included) does not drop, and **prune** any index whose removal loses less than the
minimum gain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from pwtop.database import indexes as index_rules
from pwtop.database.advisor.candidates import Candidate, IndexKey, merged
from pwtop.database.advisor.shape import Shape
from pwtop.database.advisor.whatif import Estimate, WhatIf
from pwtop.database.model import PlanNode

# Seconds one write unit (a b-tree descent plus 64 bytes) adds to one inserted row,
# measured (bench/bench_advisor_families.py --calibrate): rows like each table's own
# inserted in 50-row transactions into a copy as it is and one with up to three of the
# table's candidate indexes added, the extra seconds per row over the extra units, for
# the 16 tables the tuned families touch on both databases (WAL demo, rollback-journal
# field). Median 2.9 - 3.9 us over four calibration runs; per table it runs from about
# 0 (small tables, in cache) to 28 - 43 us (the demo's 100k-row wifi_detections, the
# field's gps under a rollback journal), and single tables swing by 2x between runs.
# (It was 20 us, the whole per-row cost of the demo's inserts divided by its units.)
WRITE_UNIT_S = 3e-6
# Insert rate unknown: one share-weighted write unit costs this share of the workload.
# Fitted on the tuned families of bench/bench_advisor_families.py (both databases, each
# statement counted once, no insert rate): of 0.01, 0.02 and 0.05 the largest price at
# which the advisor keeps, on every tuned family, the indexes that make it at least as
# fast as .expert's set. At 0.02 it merged the field join family's gps(scan_id, time)
# into gps(time, scan_id) (0.44 instead of 0.01 ms for the MAX under a filter: 0.92x
# .expert's speed-up); the insert cost against .expert's measured within noise at all
# three (geometric mean 0.88 - 0.91). The held-out family played no part.
UNKNOWN_RATE_PRICE = 0.01
MIN_GAIN_SHARE = 0.005      # an index must save this share of the workload's time
ENTRY_UNIT_BYTES = 64.0
MAX_STEPS = 12


@dataclass
class Statement:
    """A workload statement ready for evaluation."""

    name: str
    sql: str
    params: object
    shape: Shape
    weight: float                   # seconds per workload run (frequency x seconds)
    tables: list[str]


@dataclass
class Evaluation:
    chosen: list[IndexKey]
    drops: list[index_rules.Finding]
    estimates: dict[str, Estimate]
    plans: dict[str, list[PlanNode]]
    saved: dict[str, float]         # statement -> seconds saved per run (may be < 0)
    write: dict[str, float]         # table -> write units per insert (share-weighted)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def benefit(self) -> float:
        return sum(self.saved.values())

    @property
    def write_total(self) -> float:
        return sum(self.write.values())


@dataclass
class Choice:
    base: Evaluation                # the schema as it is
    final: Evaluation               # with the chosen indexes and the drops
    chosen: list[IndexKey]
    marginal: dict[IndexKey, float]  # seconds per run lost if this one were left out
    candidates: int
    evaluations: int
    steps: list[str] = field(default_factory=list)


class Chooser:
    def __init__(self, wi: WhatIf, statements: Sequence[Statement],
                 candidates: Sequence[Candidate], insert_share: Mapping[str, float], *,
                 inserted_rows: float | None = None,
                 min_gain_share: float = MIN_GAIN_SHARE,
                 prefer: Sequence[IndexKey] = ()) -> None:
        """``insert_share``: each table's share of the inserts; ``inserted_rows``: rows
        inserted over the window the statements' weights cover (None: not known);
        ``prefer``: the indexes the last run recommended (the calibration record): they
        are chosen and kept with a net gain of zero or more instead of the minimum gain,
        so that advice near the threshold does not flip from run to run."""
        self.wi = wi
        self.statements = list(statements)
        self.candidates = list(candidates)
        self.share = dict(insert_share)
        total = sum(s.weight for s in self.statements)
        self.min_gain = max(total * min_gain_share, 1e-9)
        # seconds per workload window of one share-weighted write unit
        self.price = (inserted_rows * WRITE_UNIT_S if inserted_rows is not None
                      else UNKNOWN_RATE_PRICE * total)
        self.base_write = 0.0
        self._memo: dict[tuple, tuple[list[PlanNode], Estimate] | str] = {}
        self.evaluations = 0
        self.base_cost: dict[str, float] = {}
        self.prefer = frozenset(prefer)

    def _bonus(self, key: IndexKey) -> float:
        return self.min_gain if key in self.prefer else 0.0

    # ------------------------------------------------------------ one state

    def _units(self, table: str, cols: Sequence[str]) -> float:
        st = self.wi.stats.get(table)
        entry = st.entry_bytes(cols) if st is not None else 9.0 * (len(cols) + 1)
        return 1.0 + entry / ENTRY_UNIT_BYTES

    def key_units(self, key: IndexKey) -> float:
        """Write units per insert into the key's table: a partial index is written only
        by the inserts its WHERE holds (their share measured on the sample)."""
        units = self._units(key.table, key.names)
        st = self.wi.stats.get(key.table)
        if key.where and st is not None:
            units *= st.selectivity(key.predicate())
        return units

    def _plan(self, st: Statement) -> tuple[list[PlanNode], Estimate] | str:
        key = (st.name, self.wi.state_key(st.tables))
        found = self._memo.get(key)
        if found is None:
            try:
                roots = self.wi.explain(st.sql, st.params)
                found = (roots, self.wi.estimate(roots, st.shape))
            except Exception as exc:  # sqlite3.Error, or a plan the estimate cannot read
                found = " ".join(str(exc).split()) or type(exc).__name__
            self._memo[key] = found
        return found

    def evaluate(self, chosen: Sequence[IndexKey], *, drop_redundant: bool = True,
                 only_tables: set[str] | None = None, previous: Evaluation | None = None
                 ) -> Evaluation:
        """Plans, costs and write units with ``chosen`` added (and redundant ones dropped)."""
        self.evaluations += 1
        add = {k.default_name(): k for k in chosen}
        self.wi.set_state(add, ())
        drops: list[index_rules.Finding] = []
        if drop_redundant:
            drops = [f for f in index_rules.find_redundant(self.wi.table_infos())
                     if f.index.name in self.wi.existing]
        self.wi.set_state(add, {f.index.name for f in drops})
        ev = Evaluation(list(chosen), drops, {}, {}, {}, {})
        for st in self.statements:
            if (only_tables is not None and previous is not None
                    and not only_tables.intersection(t.lower() for t in st.tables)):
                if st.name in previous.estimates:
                    ev.estimates[st.name] = previous.estimates[st.name]
                    ev.plans[st.name] = previous.plans[st.name]
                    ev.saved[st.name] = previous.saved[st.name]
                elif st.name in previous.errors:
                    ev.errors[st.name] = previous.errors[st.name]
                continue
            found = self._plan(st)
            if isinstance(found, str):
                ev.errors[st.name] = found
                continue
            roots, est = found
            ev.plans[st.name], ev.estimates[st.name] = roots, est
            base = self.base_cost.get(st.name)
            if base is None or base <= 0:
                ev.saved[st.name] = 0.0
            else:
                ev.saved[st.name] = st.weight * (1.0 - est.cost / base)
        dropped = {f.index.name for f in drops}
        for t in self.wi.tables:
            share = self.share.get(t, 0.0)
            units = 1.0  # the table's own b-tree
            for ix in self.wi.existing.values():
                if ix.table == t and ix.name not in dropped:
                    units += self._units(t, [c.name or "" for c in ix.columns])
            for k in chosen:
                if k.table == t:
                    units += self.key_units(k)
            ev.write[t] = share * units
        return ev

    # ------------------------------------------------------------ the choice

    def _useless(self, key: IndexKey, state: Evaluation) -> bool:
        """Already provided: a prefix (or duplicate) of an index the state keeps."""
        dropped = {f.index.name for f in state.drops}
        for ix in self.wi.existing.values():
            if ix.name in dropped or ix.partial or ix.table.lower() != key.table.lower():
                continue
            if any(c.name is None or c.collation.upper() != "BINARY" for c in ix.columns):
                continue
            have = IndexKey(ix.table, tuple((c.name or "", c.desc) for c in ix.columns))
            if key.is_prefix_of(have):
                return True
        return any(key.is_prefix_of(k) for k in state.chosen)

    def net(self, ev: Evaluation) -> float:
        """Seconds per window the state saves, less the price of the writes it adds."""
        return ev.benefit - self.price * (ev.write_total - self.base_write)

    def run(self) -> Choice:
        wi = self.wi
        wi.set_state({}, ())
        base = Evaluation([], [], {}, {}, {}, {})
        for st in self.statements:
            found = self._plan(st)
            if isinstance(found, str):
                base.errors[st.name] = found
                continue
            base.plans[st.name], base.estimates[st.name] = found
            self.base_cost[st.name] = found[1].cost
            base.saved[st.name] = 0.0
        current = self.evaluate([], drop_redundant=False)
        base.write = current.write
        self.base_write = current.write_total
        state = self.evaluate([])
        steps: list[str] = []
        chosen: list[IndexKey] = []
        pool = [c for c in self.candidates]
        for _ in range(MAX_STEPS):
            best: tuple[float, IndexKey, Evaluation] | None = None
            for cand in pool:
                key = cand.key
                if key in chosen or self._useless(key, state):
                    continue
                ev = self.evaluate(chosen + [key], only_tables={key.table.lower()},
                                   previous=state)
                if any(f.index.name == key.default_name() for f in ev.drops):
                    continue
                score = self.net(ev) - self.net(state) + self._bonus(key)
                if score < self.min_gain or ev.benefit <= state.benefit:
                    continue
                if best is None or score > best[0]:
                    best = (score, key, ev)
            if best is None:
                break
            _, key, ev = best
            steps.append(f"add {key.table}({key.text()}): saves "
                         f"{(ev.benefit - state.benefit) * 1000:.2f} ms per run, write units "
                         f"{state.write_total:.3f} -> {ev.write_total:.3f}")
            chosen.append(key)
            state = self.evaluate(chosen)
        chosen, state = self._merge(chosen, state, steps)
        chosen, state = self._prune(chosen, state, steps)
        marginal = {}
        for key in chosen:
            without = self.evaluate([k for k in chosen if k != key])
            marginal[key] = state.benefit - without.benefit
        state = self.evaluate(chosen)
        return Choice(base=base, final=state, chosen=chosen, marginal=marginal,
                      candidates=len(self.candidates), evaluations=self.evaluations,
                      steps=steps)

    def _merge(self, chosen: list[IndexKey], state: Evaluation, steps: list[str]
               ) -> tuple[list[IndexKey], Evaluation]:
        changed = True
        while changed:
            changed = False
            for i, a in enumerate(chosen):
                for b in chosen[i + 1:]:
                    if a.table != b.table:
                        continue
                    for m in merged(a, b):
                        rest = [k for k in chosen if k not in (a, b)]
                        if m in rest:
                            continue
                        ev = self.evaluate(rest + [m])
                        # no loss of net gain allowed: the write saving is already in
                        # it, and a tolerance (it was half the minimum gain) let a merge
                        # that loses reads flip in and out with the timings' noise
                        if (self.net(ev) >= self.net(state)
                                and ev.write.get(a.table, 0.0) < state.write.get(a.table, 0.0)):
                            steps.append(f"merge {a.table}({a.text()}) and ({b.text()}) into "
                                         f"({m.text()})")
                            chosen, state, changed = rest + [m], ev, True
                            break
                    if changed:
                        break
                if changed:
                    break
        return chosen, state

    def _prune(self, chosen: list[IndexKey], state: Evaluation, steps: list[str]
               ) -> tuple[list[IndexKey], Evaluation]:
        for key in list(chosen):
            rest = [k for k in chosen if k != key]
            ev = self.evaluate(rest)
            if self.net(state) - self.net(ev) + self._bonus(key) < self.min_gain:
                steps.append(f"prune {key.table}({key.text()}): the others give "
                             "(nearly) the same")
                chosen, state = rest, ev
        return chosen, state

"""What a statement asks of each table: equality and range filters, order, columns read.

An index can only serve what the statement's text asks for, so candidates start here:
``WHERE a = ? AND b > ?`` on table t gives "t: a equal, b range", ``ORDER BY c DESC``
gives "t: ordered by c descending", and every column the statement mentions says what a
covering index would have to hold. The analysis is deliberately shallow (conjuncts of
the WHERE and ON clauses, plain columns in ORDER BY and GROUP BY); anything it does not
understand is simply not used for candidates. It never decides what the planner does:
:mod:`pwtop.database.advisor.whatif` asks SQLite's own planner about every candidate.

Parameters are resolved to the values the workload binds (``?``, ``?N``, ``:name``), so
that :mod:`~pwtop.database.advisor.whatif` can measure a range's selectivity on the sample
instead of guessing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from pwtop.database.advisor.sqltext import KEYWORDS, Token, literal_value, tokenize

UNKNOWN = object()  # a value the workload does not bind (or an expression)

_CLAUSES = {"SELECT", "FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "WINDOW",
            "UNION", "INTERSECT", "EXCEPT", "RETURNING", "SET", "VALUES", "ON", "USING"}
_JOIN_WORDS = {"JOIN", "NATURAL", "LEFT", "RIGHT", "FULL", "INNER", "OUTER", "CROSS"}
_COMPARE = {"=": "eq", "==": "eq", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq"}
_AGGREGATES = {"COUNT", "SUM", "AVG", "MIN", "MAX", "TOTAL", "GROUP_CONCAT"}


@dataclass
class Constraint:
    """One usable conjunct on one column: ``column op value`` (values resolved if known)."""

    column: str
    op: str                      # "eq", "in", "lt", "le", "gt", "ge", "notnull", "isnull"
    values: list[Any] = field(default_factory=list)   # UNKNOWN where not known
    join: bool = False           # the value is another table's column (a join condition)
    # The constant as the statement writes it ("'open'", "0", "-1", "NULL" for IS [NOT]
    # NULL), when it is a literal in the text rather than a parameter: the same in every
    # run of the statement, so a partial index can be made for it (``WHERE status =
    # 'open'``), and SQLite uses one only when the statement's WHERE has the same term.
    literal: str | None = None

    @property
    def equality(self) -> bool:
        return self.op in ("eq", "in", "isnull")

    @property
    def range(self) -> bool:
        return self.op in ("lt", "le", "gt", "ge", "notnull")


@dataclass
class TableUse:
    """What one statement (one query block) asks of one table."""

    table: str
    alias: str
    constraints: list[Constraint] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)   # (column, desc)
    order_complete: bool = False     # the whole ORDER BY is plain columns of this table
    group: list[str] = field(default_factory=list)
    group_complete: bool = False
    columns: set[str] | None = field(default_factory=set)         # None: every column (*)
    outer: bool = True               # the only table of its block (no join)
    # LIMIT (+ OFFSET) of the query block this use is in, and whether that block
    # aggregates: a subquery's own ``ORDER BY t DESC LIMIT 1`` stops its loop early
    # on every run, as the outermost LIMIT does
    limit: int | None = None
    grouped: bool = False
    minmax: list[str] = field(default_factory=list)   # columns read as MIN(c) / MAX(c)
    maxes: list[str] = field(default_factory=list)    # those of them read as MAX(c)

    @property
    def eq_columns(self) -> list[str]:
        return list(dict.fromkeys(c.column for c in self.constraints if c.equality))

    @property
    def range_columns(self) -> list[str]:
        eq = set(self.eq_columns)
        return list(dict.fromkeys(c.column for c in self.constraints
                                  if c.range and c.column not in eq))


@dataclass
class Shape:
    """The analysis of one statement."""

    kind: str                                    # "select", "delete", "update", "insert", ...
    uses: list[TableUse] = field(default_factory=list)
    limit: int | None = None                     # LIMIT + OFFSET of the outermost block
    aggregate: bool = False                      # outermost block aggregates (COUNT, ...)
    written_table: str | None = None             # INSERT/UPDATE/DELETE target
    updated_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def tables(self) -> list[str]:
        return list(dict.fromkeys(u.table for u in self.uses))


class _Params:
    """Bound values of the statement's parameters, found by their place in the text.

    SQLite numbers ``?`` left to right, ``?N`` explicitly, and gives a named parameter
    the next free number at its first use; values are looked up the same way.
    """

    def __init__(self, tokens: list[Token],
                 params: Sequence[Any] | Mapping[str, Any] | None) -> None:
        self.by_pos: dict[int, Any] = {}
        numbers: dict[str, int] = {}
        last = 0
        for tok in tokens:
            if tok.kind != "param":
                continue
            text = tok.text
            if text == "?":
                last += 1
                number = last
            elif text[0] == "?":
                number = int(text[1:])
                last = max(last, number)
            else:
                if text not in numbers:
                    last += 1
                    numbers[text] = last
                number = numbers[text]
            if params is None:
                value = UNKNOWN
            elif isinstance(params, Mapping):
                value = params.get(text[1:], UNKNOWN) if text[0] != "?" else UNKNOWN
            else:
                value = params[number - 1] if 0 < number <= len(params) else UNKNOWN
            self.by_pos[tok.pos] = value

    def value(self, tok: Token) -> Any:
        return self.by_pos.get(tok.pos, UNKNOWN)


def _split_top(tokens: list[Token], sep: str) -> list[list[Token]]:
    """Split on ``sep`` (an op like "," or a keyword like "AND") at parenthesis depth 0."""
    out: list[list[Token]] = [[]]
    depth = 0
    between = False
    for tok in tokens:
        if tok.kind == "op" and tok.text == "(":
            depth += 1
        elif tok.kind == "op" and tok.text == ")":
            depth -= 1
        if depth == 0:
            if tok.kind == "word" and tok.upper == "BETWEEN":
                between = True
            is_sep = (tok.text == sep) if tok.kind == "op" else (tok.upper == sep)
            if is_sep and sep == "AND" and between:
                between = False  # the AND of BETWEEN x AND y
            elif is_sep:
                out.append([])
                continue
        out[-1].append(tok)
    return [part for part in out if part]


def _strip_parens(tokens: list[Token]) -> list[Token]:
    while (len(tokens) >= 2 and tokens[0].text == "(" and tokens[-1].text == ")"
           and _closing(tokens, 0) == len(tokens) - 1):
        tokens = tokens[1:-1]
    return tokens


def _closing(tokens: list[Token], start: int) -> int:
    depth = 0
    for i in range(start, len(tokens)):
        t = tokens[i]
        if t.kind == "op" and t.text == "(":
            depth += 1
        elif t.kind == "op" and t.text == ")":
            depth -= 1
            if depth == 0:
                return i
    return len(tokens) - 1


class _Block:
    """One SELECT (or the WHERE part of a DELETE/UPDATE) at one nesting level."""

    def __init__(self, analyser: "_Analyser", tokens: list[Token]) -> None:
        self.a = analyser
        self.tokens = tokens
        self.clauses: dict[str, list[Token]] = {}
        self.uses: dict[str, TableUse] = {}   # alias (lower) -> use
        self.result_aliases: set[str] = set()

    def split_clauses(self) -> None:
        current = "SELECT"
        depth = 0
        i = 0
        toks = self.tokens
        self.clauses = {current: []}
        while i < len(toks):
            t = toks[i]
            if t.kind == "op" and t.text == "(":
                depth += 1
            elif t.kind == "op" and t.text == ")":
                depth -= 1
            if depth == 0 and t.kind == "word" and t.upper in _CLAUSES and t.upper not in (
                    "ON", "USING", "SET", "VALUES"):
                name = t.upper
                if name in ("GROUP", "ORDER") and i + 1 < len(toks) and toks[i + 1].upper == "BY":
                    i += 1
                if name in ("UNION", "INTERSECT", "EXCEPT"):
                    self.a.nested(toks[i + 1:])
                    break
                current = name
                self.clauses.setdefault(current, [])
                i += 1
                continue
            self.clauses[current].append(t)
            i += 1

    # ------------------------------------------------------------ FROM

    def read_from(self, tokens: list[Token], ons: list[list[Token]]) -> None:
        """Table references, joined by commas or JOIN; ON conditions go to ``ons``."""
        refs: list[list[Token]] = [[]]
        depth = 0
        i = 0
        while i < len(tokens):
            t = tokens[i]
            if t.kind == "op" and t.text == "(":
                depth += 1
            elif t.kind == "op" and t.text == ")":
                depth -= 1
            if depth == 0 and ((t.kind == "op" and t.text == ",") or
                               (t.kind == "word" and t.upper in _JOIN_WORDS)):
                if refs[-1]:
                    refs.append([])
                i += 1
                continue
            refs[-1].append(t)
            i += 1
        for ref in refs:
            if not ref:
                continue
            # "name [AS alias] [ON expr | USING (...)]"
            on_at = next((k for k, t in enumerate(ref) if t.kind == "word"
                          and t.upper in ("ON", "USING")), len(ref))
            head, tail = ref[:on_at], ref[on_at:]
            if tail and tail[0].upper == "ON":
                ons.append(tail[1:])
            if head and head[0].text == "(":
                inner = _strip_parens(head[:_closing(head, 0) + 1])
                self.a.nested(inner)
                continue
            names = [t for t in head if t.kind in ("word", "ident")]
            if not names:
                continue
            # schema.table
            if len(head) >= 3 and head[1].text == ".":
                table_tok = head[2]
                rest = head[3:]
            else:
                table_tok = head[0]
                rest = head[1:]
            if len(rest) >= 2 and rest[0].text == "(":  # table-valued function
                continue
            table = table_tok.name or ""
            alias = table
            rest = [t for t in rest if not (t.kind == "word" and t.upper in ("AS", "INDEXED",
                                                                           "NOT", "BY"))]
            if rest and rest[0].kind in ("word", "ident"):
                alias = rest[0].name or table
            real = self.a.table_name(table)
            if real is None:
                cte = table.lower() in self.a.ctes
                self.a.note(f"{table}: " + ("a WITH table" if cte else "not a table of "
                                             "this database"))
                continue
            self.uses[alias.lower()] = TableUse(real, alias)

    # ------------------------------------------------------------ columns

    def column_at(self, tokens: list[Token], i: int) -> tuple[TableUse, str, int] | None:
        """The column reference starting at ``tokens[i]`` (with its use), and its length."""
        t = tokens[i]
        if t.kind not in ("word", "ident") or (t.kind == "word" and t.upper in KEYWORDS
                                               and t.upper not in ("KEY", "ROWID")):
            return None
        if i + 1 < len(tokens) and tokens[i + 1].text == "(":
            return None  # a function name
        if i > 0 and tokens[i - 1].text == ".":
            return None  # handled from its qualifier
        if i + 2 < len(tokens) and tokens[i + 1].text == "." and tokens[i + 2].kind in (
                "word", "ident"):
            use = self.uses.get((t.name or "").lower())
            col = tokens[i + 2].name or ""
            if use is not None and self.a.has_column(use.table, col):
                return use, self.a.column_name(use.table, col), 3
            return None
        name = t.name or ""
        if t.kind == "word" and name.lower() in self.result_aliases:
            return None
        owners = [u for u in self.uses.values() if self.a.has_column(u.table, name)]
        if len(owners) == 1:
            return owners[0], self.a.column_name(owners[0].table, name), 1
        return None

    def mark_columns(self, tokens: list[Token]) -> None:
        i = 0
        while i < len(tokens):
            t = tokens[i]
            if t.text == "*" and (i == 0 or tokens[i - 1].text in (",",)) and \
                    (i + 1 == len(tokens) or tokens[i + 1].text == ","):
                for use in self.uses.values():
                    use.columns = None
            elif (t.kind in ("word", "ident") and i + 2 < len(tokens)
                  and tokens[i + 1].text == "." and tokens[i + 2].text == "*"):
                use = self.uses.get((t.name or "").lower())
                if use is not None:
                    use.columns = None
            hit = self.column_at(tokens, i)
            if hit:
                use, col, n = hit
                if use.columns is not None:
                    use.columns.add(col)
                i += n
                continue
            i += 1

    # ------------------------------------------------------------ WHERE / ON

    def read_conditions(self, tokens: list[Token]) -> None:
        for term in _split_top(tokens, "AND"):
            term = _strip_parens(term)
            if any(t.kind == "word" and t.upper == "OR" for t in _depth0(term)):
                continue
            self.read_term(term)

    def read_term(self, term: list[Token]) -> None:
        hit = self.column_at(term, 0)
        if hit is None:
            # "value op column": flip it
            ops = [k for k, t in enumerate(term) if t.kind == "op" and t.text in _COMPARE
                   and _depth_at(term, k) == 0]
            if len(ops) == 1:
                k = ops[0]
                right = self.column_at(term, k + 1)
                if right is not None and k + 1 + right[2] == len(term):
                    use, col, _ = right
                    value = self.value_of(term[:k], use)
                    if value is not None:
                        op = _FLIP[_COMPARE[term[k].text]]
                        use.constraints.append(Constraint(col, op, [value]))
            return
        use, col, n = hit
        rest = term[n:]
        # COLLATE on the column: an index with another collation would not serve it
        if rest and rest[0].upper == "COLLATE":
            return
        if not rest:
            return
        word = rest[0].upper if rest[0].kind == "word" else rest[0].text
        if rest[0].kind == "op" and word in _COMPARE:
            value = self.value_of(rest[1:], use)
            other = self.column_at(rest, 1)
            join = other is not None and other[2] == len(rest) - 1 and other[0] is not use
            if value is not None:
                use.constraints.append(Constraint(
                    col, _COMPARE[word], [value], join=join,
                    literal=_literal_text(rest[1:]) if word in ("=", "==") else None))
            if join and other is not None:  # a.x = b.y also constrains b.y, for b's indexes
                other[0].constraints.append(
                    Constraint(other[1], _FLIP[_COMPARE[word]], [UNKNOWN], join=True))
        elif word == "IS":
            tail = [t.upper for t in rest[1:]]
            if tail == ["NOT", "NULL"]:
                use.constraints.append(Constraint(col, "notnull", literal="NULL"))
            elif tail == ["NULL"]:
                use.constraints.append(Constraint(col, "isnull", [None], literal="NULL"))
            elif tail and tail[0] != "NOT":
                value = self.value_of(rest[1:], use)
                if value is not None:
                    use.constraints.append(Constraint(col, "eq", [value]))
        elif word == "NOTNULL" and len(rest) == 1:
            use.constraints.append(Constraint(col, "notnull"))
        elif word == "ISNULL" and len(rest) == 1:
            use.constraints.append(Constraint(col, "isnull", [None]))
        elif word == "NOT" and len(rest) == 2 and rest[1].upper == "NULL":
            use.constraints.append(Constraint(col, "notnull"))
        elif word == "IN" and len(rest) >= 2 and rest[1].text == "(":
            inner = rest[2:-1] if rest[-1].text == ")" else rest[2:]
            if inner and inner[0].upper in ("SELECT", "WITH", "VALUES"):
                self.a.nested(inner)
                use.constraints.append(Constraint(col, "in", [UNKNOWN]))
            else:
                values = [self.value_of(part, use) for part in _split_top(inner, ",")]
                if values and all(v is not None for v in values):
                    use.constraints.append(Constraint(col, "in", values))
        elif word == "BETWEEN":
            parts = _split_between(rest[1:])
            if parts:
                lo, hi = (self.value_of(p, use) for p in parts)
                if lo is not None and hi is not None:
                    use.constraints.append(Constraint(col, "ge", [lo]))
                    use.constraints.append(Constraint(col, "le", [hi]))

    def value_of(self, tokens: list[Token], use: TableUse) -> Any:
        """A constant for ``use``'s table (None: it depends on that table's own columns)."""
        tokens = _strip_parens(tokens)
        if not tokens:
            return None
        for k in range(len(tokens)):
            hit = self.column_at(tokens, k)
            if hit is not None and hit[0] is use:
                return None
        if len(tokens) == 1:
            t = tokens[0]
            if t.kind == "param":
                return self.a.params.value(t)
            if t.kind in ("str", "num"):
                return literal_value(t)
            if t.kind == "word" and t.upper == "NULL":
                return None
        if len(tokens) == 2 and tokens[0].text == "-" and tokens[1].kind == "num":
            v = literal_value(tokens[1])
            return -v if isinstance(v, (int, float)) else UNKNOWN
        return UNKNOWN

    # ------------------------------------------------------------ ORDER / GROUP

    def read_order(self, tokens: list[Token]) -> None:
        items = _split_top(tokens, ",")
        seen: list[tuple[TableUse, str, bool]] = []
        complete = True
        for item in items:
            hit = self.column_at(item, 0)
            if hit is None:
                complete = False
                break
            use, col, n = hit
            rest = [t.upper for t in item[n:]]
            if rest and rest[0] == "COLLATE":
                complete = False
                break
            desc = "DESC" in rest
            if "NULLS" in rest:
                complete = False
                break
            seen.append((use, col, desc))
        owners = {id(u) for u, _, _ in seen}
        if len(owners) == 1 and seen:
            use = seen[0][0]
            use.order = [(c, d) for _, c, d in seen]
            use.order_complete = complete
        elif owners:
            first = seen[0][0]
            prefix = []
            for u, c, d in seen:
                if u is not first:
                    break
                prefix.append((c, d))
            first.order = prefix
            first.order_complete = False

    def read_group(self, tokens: list[Token]) -> None:
        items = _split_top(tokens, ",")
        cols: list[tuple[TableUse, str]] = []
        complete = True
        for item in items:
            hit = self.column_at(item, 0)
            if hit is None or hit[2] != len(item):
                complete = False
                continue
            cols.append((hit[0], hit[1]))
        owners = {id(u) for u, _ in cols}
        if len(owners) == 1 and cols:
            use = cols[0][0]
            use.group = list(dict.fromkeys(c for _, c in cols))
            use.group_complete = complete

    # ------------------------------------------------------------ whole block

    def analyse_select(self, outermost: bool) -> None:
        self.split_clauses()
        ons: list[list[Token]] = []
        self.read_from(self.clauses.get("FROM", []), ons)
        select_list = self.clauses.get("SELECT", [])
        for item in _split_top(select_list, ","):
            if len(item) >= 2 and item[-2].kind == "word" and item[-2].upper == "AS":
                self.result_aliases.add((item[-1].name or "").lower())
            elif (len(item) >= 2 and item[-1].kind in ("word", "ident")
                  and item[-2].text == ")"):
                self.result_aliases.add((item[-1].name or "").lower())
        self._nested_in(select_list)
        calls = [k for k, t in enumerate(select_list[:-1]) if t.kind == "word"
                 and t.upper in _AGGREGATES and select_list[k + 1].text == "("]
        # SQLite answers a lone MIN(c)/MAX(c) with one index seek when c follows the
        # equality columns in an index key; with any other aggregate beside it, it scans
        for k in (calls if len(calls) == 1 else []):
            fn = select_list[k]
            if (fn.kind == "word" and fn.upper in ("MIN", "MAX")
                    and select_list[k + 1].text == "(" and k + 2 < len(select_list)):
                hit = self.column_at(select_list, k + 2)
                if hit is not None and k + 2 + hit[2] < len(select_list) and \
                        select_list[k + 2 + hit[2]].text == ")":
                    hit[0].minmax.append(hit[1])
                    if fn.upper == "MAX":
                        hit[0].maxes.append(hit[1])
        for name in ("WHERE", "HAVING"):
            self._nested_in(self.clauses.get(name, []))
        for part in self.clauses.values():
            self.mark_columns(part)
        for on in ons:
            self.mark_columns(on)
        self.read_conditions(self.clauses.get("WHERE", []))
        for on in ons:
            self.read_conditions(on)
        if "GROUP" in self.clauses:
            self.read_group(self.clauses["GROUP"])
        if "ORDER" in self.clauses:
            self.read_order(self.clauses["ORDER"])
        single = len(self.uses) == 1
        limit = self.read_limit(self.clauses["LIMIT"]) if "LIMIT" in self.clauses else None
        grouped = "GROUP" in self.clauses or any(
            t.kind == "word" and t.upper in _AGGREGATES and k + 1 < len(select_list)
            and select_list[k + 1].text == "(" for k, t in enumerate(select_list))
        for use in self.uses.values():
            use.outer = single
            use.limit, use.grouped = limit, grouped
        if outermost:
            s = self.a.shape
            s.aggregate = grouped
            s.limit = limit
        self.a.shape.uses.extend(self.uses.values())

    def _nested_in(self, tokens: list[Token]) -> None:
        i = 0
        while i < len(tokens):
            if tokens[i].text == "(" and i + 1 < len(tokens) and tokens[i + 1].upper in (
                    "SELECT", "WITH"):
                end = _closing(tokens, i)
                self.a.nested(tokens[i + 1:end])
                i = end + 1
                continue
            i += 1

    def read_limit(self, tokens: list[Token]) -> int | None:
        parts = _split_top(tokens, ",")
        if len(parts) == 2:  # LIMIT offset, count
            offset, count = parts
        else:
            offset_at = next((k for k, t in enumerate(tokens) if t.upper == "OFFSET"), None)
            count = tokens[:offset_at] if offset_at is not None else tokens
            offset = tokens[offset_at + 1:] if offset_at is not None else []
        total = 0
        for part in (offset, count) if len(parts) == 2 else (count, offset):
            if not part:
                continue
            v = self.value_of(part, TableUse("", ""))
            if not isinstance(v, int) or isinstance(v, bool):
                return None
            total += v
        return total


def _literal_text(tokens: list[Token]) -> str | None:
    """The text of a literal constant (a string, a number, a negative number), or None
    for anything else (a parameter, a column, an expression)."""
    tokens = _strip_parens(tokens)
    if len(tokens) == 1 and tokens[0].kind in ("str", "num"):
        return tokens[0].text
    if len(tokens) == 2 and tokens[0].text == "-" and tokens[1].kind == "num":
        return "-" + tokens[1].text
    return None


def _depth0(tokens: list[Token]) -> list[Token]:
    out, depth = [], 0
    for t in tokens:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0:
            out.append(t)
    return out


def _depth_at(tokens: list[Token], k: int) -> int:
    depth = 0
    for t in tokens[:k]:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
    return depth


def _split_between(tokens: list[Token]) -> tuple[list[Token], list[Token]] | None:
    depth = 0
    for k, t in enumerate(tokens):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0 and t.kind == "word" and t.upper == "AND":
            return tokens[:k], tokens[k + 1:]
    return None


class _Analyser:
    def __init__(self, columns: Mapping[str, Sequence[str]],
                 params: Sequence[Any] | Mapping[str, Any] | None) -> None:
        self.columns = {t.lower(): {c.lower(): c for c in cols} for t, cols in columns.items()}
        self.tables = {t.lower(): t for t in columns}
        self.raw_params = params
        self.params = _Params([], None)
        self.shape = Shape(kind="other")
        self.ctes: set[str] = set()
        self.depth = 0

    def note(self, text: str) -> None:
        if text not in self.shape.notes:
            self.shape.notes.append(text)

    def table_name(self, name: str) -> str | None:
        return self.tables.get(name.lower())

    def has_column(self, table: str, col: str) -> bool:
        cols = self.columns.get(table.lower(), {})
        return col.lower() in cols or col.lower() in ("rowid", "oid", "_rowid_")

    def column_name(self, table: str, col: str) -> str:
        return self.columns.get(table.lower(), {}).get(col.lower(), col)

    def nested(self, tokens: list[Token]) -> None:
        if self.depth > 20 or not tokens:
            return
        self.depth += 1
        try:
            tokens = self.strip_with(tokens)
            if tokens and tokens[0].upper == "SELECT":
                _Block(self, tokens[1:]).analyse_select(outermost=False)
            elif tokens and tokens[0].upper == "VALUES":
                pass
        finally:
            self.depth -= 1

    def strip_with(self, tokens: list[Token]) -> list[Token]:
        """Analyse WITH tables as nested blocks; return the statement after them."""
        if not tokens or tokens[0].upper != "WITH":
            return tokens
        i = 1
        if i < len(tokens) and tokens[i].upper == "RECURSIVE":
            i += 1
        while i < len(tokens):
            name = tokens[i].name
            if name:
                self.ctes.add(name.lower())
            # name [(cols)] AS [NOT] [MATERIALIZED] ( select )
            while i < len(tokens) and tokens[i].upper != "AS":
                i += 1
            i += 1
            while i < len(tokens) and tokens[i].upper in ("NOT", "MATERIALIZED"):
                i += 1
            if i >= len(tokens) or tokens[i].text != "(":
                return tokens[i:]
            end = _closing(tokens, i)
            self.nested(tokens[i + 1:end])
            i = end + 1
            if i < len(tokens) and tokens[i].text == ",":
                i += 1
                continue
            return tokens[i:]
        return []

    def run(self, sql: str) -> Shape:
        tokens = tokenize(sql)
        self.params = _Params(tokens, self.raw_params)
        while tokens and tokens[-1].text == ";":
            tokens = tokens[:-1]
        if tokens and tokens[0].upper == "EXPLAIN":
            tokens = tokens[1:]
            if len(tokens) >= 2 and tokens[0].upper == "QUERY" and tokens[1].upper == "PLAN":
                tokens = tokens[2:]
        tokens = self.strip_with(tokens)
        if not tokens:
            return self.shape
        word = tokens[0].upper
        s = self.shape
        if word == "SELECT":
            s.kind = "select"
            _Block(self, tokens[1:]).analyse_select(outermost=True)
        elif word == "VALUES":
            s.kind = "select"
        elif word == "DELETE":
            s.kind = "delete"
            rest = tokens[2:] if len(tokens) > 1 and tokens[1].upper == "FROM" else tokens[1:]
            self._write_block(rest)
        elif word == "UPDATE":
            s.kind = "update"
            rest = tokens[1:]
            while rest and rest[0].upper in ("OR", "ROLLBACK", "ABORT", "REPLACE", "FAIL",
                                             "IGNORE"):
                rest = rest[1:]
            self._write_block(rest)
        elif word in ("INSERT", "REPLACE"):
            s.kind = "insert"
            k = next((i for i, t in enumerate(tokens) if t.upper == "INTO"), None)
            if k is not None and k + 1 < len(tokens):
                name = tokens[k + 1].name or ""
                if k + 3 < len(tokens) and tokens[k + 2].text == ".":
                    name = tokens[k + 3].name or ""
                s.written_table = self.table_name(name)
            sel = next((i for i, t in enumerate(tokens) if t.upper == "SELECT"), None)
            if sel is not None:
                self.nested(tokens[sel:])
        else:
            s.kind = word.lower() or "other"
        return s

    def _write_block(self, rest: list[Token]) -> None:
        """``table [AS a] [SET ...] [WHERE ...]`` of a DELETE or UPDATE."""
        if not rest:
            return
        where = next((i for i, t in enumerate(rest) if t.upper == "WHERE"
                      and _depth_at(rest, i) == 0), len(rest))
        set_at = next((i for i, t in enumerate(rest) if t.upper == "SET"
                       and _depth_at(rest, i) == 0), where)
        head = rest[:min(set_at, where)]
        block = _Block(self, [])
        block.read_from(head, [])
        tail_end = next((i for i, t in enumerate(rest) if t.upper in ("RETURNING", "ORDER",
                                                                      "LIMIT")
                         and _depth_at(rest, i) == 0 and i > where), len(rest))
        if block.uses:
            use = next(iter(block.uses.values()))
            self.shape.written_table = use.table
            if set_at < where:
                for item in _split_top(rest[set_at + 1:where], ","):
                    if item and item[0].kind in ("word", "ident"):
                        self.shape.updated_columns.append(
                            self.column_name(use.table, item[0].name or ""))
                block.mark_columns(rest[set_at + 1:where])
            cond = rest[where + 1:tail_end]
            block._nested_in(cond)
            block.mark_columns(cond)
            block.read_conditions(cond)
            self.shape.uses.extend(block.uses.values())


def analyse(sql: str, columns: Mapping[str, Sequence[str]],
            params: Sequence[Any] | Mapping[str, Any] | None = None) -> Shape:
    """The :class:`Shape` of ``sql`` for a schema given as ``{table: [columns]}``."""
    return _Analyser(columns, params).run(sql)

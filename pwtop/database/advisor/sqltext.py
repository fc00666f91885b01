"""SQL text as tokens, and statement fingerprints with the literals taken out.

Both the candidate generator and the in-app capture hook need to look at SQL without
executing it: the first to find which columns a statement filters, orders and reads, the
second to count ``WHERE id = 7`` and ``WHERE id = 8`` as one statement. A tokenizer that
knows SQLite's lexical rules (strings, quoted identifiers, comments, blobs, numbers,
parameters) is all both need; it never parses plans (that is
:mod:`pwtop.database.plans`) and never decides anything the planner decides: every
candidate it helps produce is checked by SQLite's own ``EXPLAIN QUERY PLAN``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|$))
  | (?P<blob>[xX]'(?:[0-9a-fA-F]{2})*')
  | (?P<str>'(?:[^']|'')*'?)
  | (?P<qident>"(?:[^"]|"")*"?|`(?:[^`]|``)*`?|\[[^\]]*\]?)
  | (?P<num>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))
  | (?P<param>\?\d*|[:@$][A-Za-z_][A-Za-z0-9_]*)
  | (?P<word>[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*)
  | (?P<op>\|\||<<|>>|<=|>=|==|!=|<>|->>|->|[-+*/%<>=~&|(),.;!])
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class Token:
    kind: str   # "str", "blob", "num", "param", "word", "ident" (quoted), "op", "other"
    text: str
    pos: int = 0  # offset in the statement (tells two equal tokens apart)

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text

    @property
    def name(self) -> str | None:
        """The identifier this token names (quotes removed), or None."""
        if self.kind == "word":
            return self.text
        if self.kind == "ident":
            body, q = self.text[1:-1], self.text[0]
            if q == '"':
                return body.replace('""', '"')
            if q == "`":
                return body.replace("``", "`")
            return body
        return None


def tokenize(sql: str) -> list[Token]:
    """Tokens of ``sql`` without whitespace and comments."""
    out: list[Token] = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        if kind in ("ws", "comment"):
            continue
        out.append(Token("ident" if kind == "qident" else kind, m.group(), m.start()))
    return out


def literal_value(tok: Token) -> object:
    """The Python value of a literal token (strings unquoted, numbers parsed)."""
    if tok.kind == "str":
        return tok.text[1:-1].replace("''", "'")
    if tok.kind == "num":
        text = tok.text
        try:
            if text.lower().startswith("0x"):
                return int(text, 16)
            if any(c in text for c in ".eE"):
                return float(text)
            return int(text)
        except ValueError:
            return None
    if tok.kind == "word" and tok.upper == "NULL":
        return None
    return None


def fingerprint(sql: str) -> str:
    """``sql`` with every literal replaced by ``?`` and lists of them collapsed.

    ``WHERE id = 7`` and ``WHERE id = 8`` give the same text; so do ``IN (1, 2, 3)`` and
    ``IN (4)`` (both ``IN (?)``). Keywords are upper-cased and whitespace is one space;
    identifiers keep their spelling. Comments are dropped.
    """
    parts: list[str] = []
    glued: list[bool] = []  # written against the previous token (a call: "count(")
    prev_end = -1
    for tok in tokenize(sql):
        if tok.kind in ("str", "num", "blob", "param"):
            text = "?"
        elif tok.kind == "word" and tok.upper in ("NULL", "TRUE", "FALSE"):
            text = "?"
        elif tok.kind == "word":
            text = tok.upper if tok.upper in _KEYWORDS else tok.text
        else:
            text = tok.text
        if text == "?" and parts and parts[-1] == "-" and (
                len(parts) < 2 or parts[-2] in ("(", ",", "=", "<", ">", "<=", ">=", "!=",
                                                "<>", "==", "AND", "OR", "BETWEEN",
                                                "WHEN", "THEN", "ELSE", "SELECT",
                                                "LIMIT", "OFFSET", "VALUES", "IN", "IS")):
            parts.pop()  # a negative number is one literal
            glued.pop()
        call = (text == "(" and tok.pos == prev_end and parts
                and parts[-1] not in _KEYWORDS and parts[-1] not in ("?", ",", "(", ")"))
        parts.append(text)
        glued.append(bool(call))
        prev_end = tok.pos + len(tok.text)
    out = ""
    for i, text in enumerate(parts):
        if i == 0 or glued[i] or text in (",", ")") or parts[i - 1] == "(":
            out += text
        else:
            out += " " + text
    # collapse "(?, ?, ?)" and repeated "(?, ?), (?, ?)" value lists
    out = re.sub(r"\(\?(?:, \?)*\)", "(?)", out)
    out = re.sub(r"\(\?\)(?:, \(\?\))+", "(?)", out)
    return out.rstrip(" ;").strip()


def fingerprint_id(fp: str) -> str:
    """A short stable id of a fingerprint (for names and JSON keys)."""
    return hashlib.sha1(fp.encode()).hexdigest()[:10]


def first_keyword(tokens: list[Token]) -> str:
    for tok in tokens:
        if tok.kind == "word":
            return tok.upper
        if tok.kind != "op" or tok.text != "(":
            return ""
    return ""


_KEYWORDS = frozenset("""
ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE BEGIN
BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT CREATE CROSS
CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT DEFERRABLE DEFERRED
DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT EXCLUDE EXCLUSIVE EXISTS
EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL GENERATED GLOB GROUP GROUPS HAVING
IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER INSERT INSTEAD INTERSECT INTO IS ISNULL
JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF
OFFSET ON OR ORDER OTHERS OUTER OVER PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE
RANGE RECURSIVE REFERENCES REGEXP REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT
ROLLBACK ROW ROWS SAVEPOINT SELECT SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER
UNBOUNDED UNION UNIQUE UPDATE USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT
""".split())

KEYWORDS = _KEYWORDS

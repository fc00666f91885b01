"""`pwtop export grafana` and `pwtop export prometheus-rules`: a Grafana dashboard and
Prometheus alerting rules for fleets that outgrow one screen.

Both are generated, never written by hand, from the two definitions pwtop itself runs on:
the metric catalog (:mod:`pwtop.metric_names`: every figure's label, unit and its PromQL
over the families ``/metrics`` exports) and the alert rules (:mod:`pwtop.alerts.rules`,
with the config's ``[[alerts.rules]]`` applied), so a renamed metric, a new rule or a
changed threshold reaches the dashboard and the rules at the next export. A test checks
that every expression names a family a real ``/metrics`` exports and runs
``promtool check rules`` on the output.

The catalog's PromQL is written for one app (``sum(rate(pwtop_operations_total[10s]))``);
for a fleet every aggregation keeps ``job`` and ``instance`` (one series per rig), the
dashboard's selectors take its ``job`` and ``instance`` (rig) variables, and windows
shorter than a scrape allows are widened (``$__rate_interval`` in Grafana, at least 1 m
in the rules): pwtop's own figure uses the catalog's window, Prometheus' the wider one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

from pwtop import metric_names
from pwtop.alerts.rules import LEVELS, Rule, rules_from_settings
from pwtop.asgi.views import SessionCollector
from pwtop.config import Settings
from pwtop.errors import PwtopError
from pwtop.model import Level
from pwtop.units import format_metric

#: The labels that tell rigs apart in Prometheus: every aggregation keeps them.
RIG_LABELS = ("job", "instance")
DASHBOARD_UID = "pwtop-rigs"
#: Families every pwtop /metrics has one of (the app's agent, the session's): the
#: dashboard's variables list the jobs and rigs from them.
PRESENCE = ("pwtop_agent_info", "pwtop_component_up")
AGGREGATIONS = ("sum", "max", "min", "avg", "count")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\[[^\]]*\]|[A-Za-z_:][A-Za-z0-9_:]*|\s+|.', re.S)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: pwtop's units -> Grafana's unit ids.
GRAFANA_UNITS = {"bytes": "bytes", "bytes/s": "Bps", "seconds": "s",
                 "ratio 0..1": "percentunit", "percent": "percent", "°C": "celsius",
                 "packets/s": "pps", "operations/s": "ops", "1/s": "suffix:/s", "": "short"}
#: pwtop's units -> Prometheus' template function that writes a value in it.
HUMANIZE = {"bytes": "humanize1024", "seconds": "humanizeDuration",
            "ratio 0..1": "humanizePercentage"}
LEVEL_COLOURS = {Level.OK: "green", Level.INFO: "blue", Level.WARNING: "yellow",
                 Level.CRITICAL: "red", Level.EMERGENCY: "dark-red"}


# ---------------------------------------------------------------- PromQL


def expression(name: str) -> str | None:
    """PromQL for the figure ``name`` in the catalog's unit, over the families /metrics
    exports, or None when no /metrics carries it (pwtop's own link to the agent, the
    probes it runs itself)."""
    info = metric_names.catalog().get(name)
    if info is None:
        return None
    if info.prometheus:
        return info.prometheus
    if info.component not in SessionCollector.COMPONENTS or name in SessionCollector.SKIP:
        return None
    kind, family, scale = metric_names.session_family(name)
    sample = family + ("_total" if kind == "counter" else "")
    return sample if scale == 1.0 else f"{1 / scale:g} * {sample}"


def _seconds(text: str) -> float | None:
    match = _DURATION.match(text)
    return float(match.group(1)) * _SECONDS[match.group(2)] if match else None


def per_rig(expr: str, *, matchers: str = "", window: str | None = None,
            min_window: float = 0.0) -> str:
    """``expr`` for a fleet: every aggregation keeps :data:`RIG_LABELS`, every selector
    gets ``matchers`` (``instance=~"$instance"``), and each range becomes ``window`` or,
    when shorter than ``min_window`` seconds, that."""
    out: list[str] = []
    tokens = _TOKEN.findall(expr)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = next((t for t in tokens[i + 1:] if not t.isspace()), "")
        if tok in AGGREGATIONS and nxt in ("(", "by"):
            out.append(tok)
            if nxt == "(":
                out.append(f" by ({', '.join(RIG_LABELS)}) ")
            else:  # sum by (le) (...): add the rig labels to the kept ones
                close = tokens.index(")", i)
                kept = [t for t in tokens[i + 1:close] if re.match(r"[A-Za-z_]", t)][1:]
                out.append(f" by ({', '.join([*kept, *RIG_LABELS])})")
                i = close
        elif re.match(r"(pwtop|process)_", tok) and nxt != "(":
            out.append(tok)
            if matchers and nxt == "{":
                i = tokens.index("{", i)
                out.append("{" + matchers + ("" if tokens[i + 1] == "}" else ", "))
            elif matchers:
                out.append("{" + matchers + "}")
        elif tok.startswith("["):
            seconds = _seconds(tok[1:-1])
            if window is not None:
                out.append(f"[{window}]")
            elif seconds is not None and seconds < min_window:
                out.append(f"[{_duration(min_window)}]")
            else:
                out.append(tok)
        else:
            out.append(tok)
        i += 1
    return _either_side("".join(out))


def _either_side(expr: str) -> str:
    """``sum(A) + sum(B)`` that still adds up on a rig with only one of them: PromQL's
    ``+`` drops a rig missing either side (an app with WebSockets and no SSE stream), so
    each side falls back to the other times 0."""
    depth, parts, start = 0, [], 0
    for n, char in enumerate(expr):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and expr.startswith(" + ", n):
            parts.append(expr[start:n])
            start = n + 3
    parts.append(expr[start:])
    if len(parts) != 2 or not all(p.split(" ", 1)[0] in AGGREGATIONS for p in parts):
        return expr
    left, right = parts
    return f"({left} or 0 * {right}) + ({right} or 0 * {left})"


def _duration(seconds: float) -> str:
    """A Prometheus duration: ``90s``, ``1m``, ``250ms``."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    return f"{whole // 60}m" if whole and whole % 60 == 0 else f"{whole}s"


def _number(value: float) -> str:
    return repr(float(value))


_NAME = re.compile(r"\b(?:pwtop|process)_[A-Za-z0-9_]*\b(?!\s*\()")


def families_named(expr: str) -> set[str]:
    """The sample names a PromQL expression reads (``pwtop_*`` and ``process_*``), quoted
    strings (label values) left out: what a test compares with a real /metrics."""
    return set(_NAME.findall(re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)))


# ---------------------------------------------------------------- Prometheus rules


def alert_name(rule: Rule) -> str:
    return "Pwtop" + "".join(part.capitalize() for part in rule.name.split("_"))


def prometheus_rules(settings: Settings) -> tuple[dict[str, Any], list[str]]:
    """({"groups": [...]}, the rules left out and why): one alerting rule per pwtop rule
    and level, labelled ``severity`` (the level) and ``pwtop_rule``."""
    rules: list[dict[str, Any]] = []
    left_out: list[str] = []
    for rule in rules_from_settings(settings):
        expr = expression(rule.metric)
        if expr is None:
            left_out.append(f"{rule.name}: {rule.metric} is pwtop's own figure, on no "
                            "/metrics")
            continue
        value = per_rig(expr, min_window=60.0)
        stand_down = ""
        if rule.unless is not None:
            metric, op, limit = rule.unless
            other = expression(metric)
            if other is None:
                left_out.append(f"{rule.name}: its unless metric {metric} is on no /metrics")
                continue
            stand_down = (f" unless on ({', '.join(RIG_LABELS)}) "
                          f"({per_rig(other, min_window=60.0)} {op} {_number(limit)})")
        humanize = HUMANIZE.get(metric_names.info(rule.metric).unit, "humanize")
        for level, threshold in rule.thresholds:
            item: dict[str, Any] = {
                "alert": alert_name(rule),
                "expr": f"({value}) {rule.op} {_number(threshold)}{stand_down}"}
            if rule.for_seconds:
                item["for"] = _duration(rule.for_seconds)
            if rule.clear_seconds:
                item["keep_firing_for"] = _duration(rule.clear_seconds)
            item["labels"] = {"severity": level.label, "pwtop_rule": rule.name,
                              "metric": rule.metric}
            item["annotations"] = {
                "summary": f"{rule.title or rule.name} on {{{{ $labels.instance }}}}",
                "description": (f"{rule.metric} is {{{{ $value | {humanize} }}}} "
                                f"({rule.op} {format_metric(rule.metric, threshold)} for "
                                f"{level.label}). {rule.advice}").strip()}
            rules.append(item)
    return {"groups": [{"name": "pwtop", "rules": rules}]}, left_out


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """YAML block style for dicts, lists and scalars; strings double-quoted as JSON
    writes them (a JSON string is a valid YAML double-quoted scalar)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines += _yaml(item, indent + 2)
            else:
                lines.append(f"{pad}{key}: {json.dumps(item, ensure_ascii=False)}")
    elif isinstance(value, list):
        for item in value:
            sub = _yaml(item, indent + 2)
            lines.append(f"{pad}- {sub[0].lstrip()}")
            lines += sub[1:]
    else:
        lines.append(pad + json.dumps(value, ensure_ascii=False))
    return lines


def prometheus_rules_text(settings: Settings) -> str:
    data, left_out = prometheus_rules(settings)
    head = ["# Prometheus alerting rules generated by `pwtop export prometheus-rules` from",
            "# pwtop's alert rules (pwtop/alerts/rules.py and the config's [[alerts.rules]]).",
            "# Regenerate instead of editing. One rule per pwtop rule and level (label",
            "# severity); pwtop's hysteresis has no Prometheus equivalent, its `clear` is",
            "# keep_firing_for (Prometheus >= 2.42)."]
    head += [f"# left out: {line}" for line in left_out]
    return "\n".join(head + _yaml(data)) + "\n"


# ---------------------------------------------------------------- Grafana


def dashboard_metrics(rules: Iterable[Rule]) -> dict[str, list[str]]:
    """component -> the figures the dashboard charts, in order: the key figures, the
    monitor's columns, the figures alert rules watch and their evidence; only those a
    /metrics carries."""
    rules = list(rules)
    out: dict[str, list[str]] = {}
    for component in ("database", "system", "async", "realtime"):
        names = [*metric_names.key_figures(component),
                 *(m for _, m in metric_names.MONITOR_COLUMNS.get(component, ())),
                 *(r.metric for r in rules),
                 *(m for r in rules for m in r.evidence)]
        chosen: list[str] = []
        for name in names:
            if name not in chosen and metric_names.component_of(name) == component and \
                    expression(name) is not None:
                chosen.append(name)
        out[component] = chosen
    return out


def _thresholds(rule: Rule | None) -> dict[str, Any]:
    """Grafana threshold steps from a rule's levels (ascending values, as Grafana wants)."""
    if rule is None:
        return {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
    steps = sorted(rule.thresholds, key=lambda lt: lt[1])
    if rule.op in (">", ">="):
        out = [{"color": LEVEL_COLOURS[Level.OK], "value": None}]
        out += [{"color": LEVEL_COLOURS[level], "value": value} for level, value in steps]
    else:  # below the lowest threshold is the worst level
        out = [{"color": LEVEL_COLOURS[steps[0][0]], "value": None}]
        for (_, value), (better, _) in zip(steps, [*steps[1:], (Level.OK, 0.0)]):
            out.append({"color": LEVEL_COLOURS[better], "value": value})
    return {"mode": "absolute", "steps": out}


_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_SELECT = 'job=~"$job", instance=~"$instance"'


def _target(expr: str, legend: str, ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"datasource": _DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref,
            **extra}


def _panel(kind: str, title: str, targets: list[dict[str, Any]], grid: dict[str, int],
           **extra: Any) -> dict[str, Any]:
    return {"type": kind, "title": title, "datasource": _DATASOURCE, "targets": targets,
            "gridPos": grid, **extra}


def _metric_panel(name: str, rule: Rule | None, grid: dict[str, int]) -> dict[str, Any]:
    info = metric_names.info(name)
    expr = per_rig(expression(name) or "", matchers=_SELECT, window="$__rate_interval")
    description = f"pwtop's `{name}`: {info.help}."
    if rule is not None:
        description += (f" Alert rule `{rule.name}`: " + ", ".join(
            f"{lv.label} {rule.describe_threshold(lv)}" for lv in LEVELS
            if rule.threshold(lv) is not None) + ".")
    return _panel("timeseries", info.label, [_target(expr, "{{instance}}")], grid,
                  description=description,
                  fieldConfig={"defaults": {
                      "unit": GRAFANA_UNITS.get(info.unit, "short"),
                      "thresholds": _thresholds(rule),
                      "custom": {"thresholdsStyle": {
                          "mode": "line" if rule is not None else "off"}}},
                      "overrides": []},
                  options={"legend": {"displayMode": "list", "placement": "bottom"},
                           "tooltip": {"mode": "multi"}})


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": _DATASOURCE,
            "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
            "multi": True, "includeAll": True, "current": {}, "sort": 1}


def grafana_dashboard(settings: Settings) -> dict[str, Any]:
    """The dashboard: alerts and component state first, then a row per component with a
    chart per figure (thresholds drawn from the alert rule watching it)."""
    rules = rules_from_settings(settings)
    watching = {}
    for rule in rules:
        watching.setdefault(rule.metric, rule)
    panels: list[dict[str, Any]] = []
    y = 0

    def row(title: str) -> None:
        nonlocal y
        panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        y += 1

    row("Alerts")
    alert = metric_names.ALERT_ACTIVE_FAMILY
    panels.append(_panel(
        "table", "Active alerts",
        [_target(f"max by (instance, rule, metric, level) ({alert}{{{_SELECT}}})", "",
                 format="table", instant=True)],
        {"h": 8, "w": 12, "x": 0, "y": y},
        description="pwtop's alerts active on each rig (its own rules, judged on the rig).",
        options={"showHeader": True}))
    panels.append(_panel(
        "stat", "Active alerts by level",
        [_target(f"sum by (level) (pwtop_alerts_active{{{_SELECT}}})", "{{level}}")],
        {"h": 4, "w": 12, "x": 12, "y": y},
        fieldConfig={"defaults": {"unit": "short"}, "overrides": []},
        options={"reduceOptions": {"calcs": ["lastNotNull"]}}))
    panels.append(_panel(
        "state-timeline", "Components with figures",
        [_target(f"pwtop_component_up{{{_SELECT}}}", "{{instance}} {{component}}")],
        {"h": 4, "w": 12, "x": 12, "y": y + 4},
        description="1 while a component has figures, 0 while it is unavailable.",
        fieldConfig={"defaults": {"unit": "short", "min": 0, "max": 1}, "overrides": []},
        options={}))
    y += 8
    for component, names in dashboard_metrics(rules).items():
        row(component.capitalize() if component != "async" else "Async")
        for n, name in enumerate(names):
            if n and n % 3 == 0:
                y += 8
            panels.append(_metric_panel(name, watching.get(name),
                                        {"h": 8, "w": 8, "x": 8 * (n % 3), "y": y}))
        y += 8
    for n, panel in enumerate(panels, 1):
        panel["id"] = n
    presence = "|".join(PRESENCE)
    return {
        "uid": DASHBOARD_UID, "title": "pwtop: PiWardrive rigs",
        "description": "Generated by `pwtop export grafana` from pwtop's metric catalog and "
                       "alert rules; regenerate instead of editing.",
        "tags": ["pwtop", "piwardrive"], "editable": True, "schemaVersion": 39,
        "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser", "graphTooltip": 1,
        "annotations": {"list": []},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0},
            _variable("job", "job", f'label_values({{__name__=~"{presence}"}}, job)'),
            _variable("instance", "rig",
                      f'label_values({{__name__=~"{presence}", job=~"$job"}}, instance)'),
        ]},
        "panels": panels,
    }


# ---------------------------------------------------------------- the verb


def _write(text: str, output: str | None) -> None:
    if output in (None, "-"):
        sys.stdout.write(text)
        return
    path = Path(output).expanduser()
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PwtopError(f"{path}: cannot write the export ({exc.strerror}); choose "
                         "another --output") from None
    print(f"wrote {path}", file=sys.stderr)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.export_verb == "grafana":
        text = json.dumps(grafana_dashboard(settings), indent=2, ensure_ascii=False) + "\n"
    else:
        text = prometheus_rules_text(settings)
    _write(text, args.output)
    return 0

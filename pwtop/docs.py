"""Generated documentation: the configuration reference and the command list.

Run ``python -m pwtop.docs`` after changing a setting or a verb; tests fail while the files
in docs/ differ from what this module generates.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pwtop import config as cfg
from pwtop.alerts.notify import notify_reference
from pwtop.alerts.rules import alerts_reference
from pwtop.cli import VERBS
from pwtop.components import NAMES
from pwtop.metric_names import metrics_reference
from pwtop.seed_settings import reference as seed_settings_reference


def configuration_reference() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `pwtop/config.py` by `python -m pwtop.docs`; do not edit by hand.",
        "",
        "pwtop reads one TOML file: `--config PATH`, else `$PWTOP_CONFIG`, else",
        "`$XDG_CONFIG_HOME/pwtop/config.toml` (`~/.config/pwtop/config.toml`), else defaults.",
        "`pwtop config init` writes a documented file; `pwtop config show` prints every",
        "effective value and where it came from; `pwtop config check` validates a file.",
        "Command-line flags override a value for one run and are never written back.",
    ]
    sections = [(f"[{group}]", klass) for group, (_, klass) in cfg.GROUPS.items()]
    sections += [(f"[[{name}]]", klass) for name, klass in cfg.TABLES.items()]
    for heading, klass in sections:
        lines += ["", f"## {heading}", "", "| key | default | meaning |", "| --- | --- | --- |"]
        for f in dataclasses.fields(klass):
            meta = f.metadata
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            notes = [meta["help"]]
            if meta.get("unit"):
                notes.append(f"Unit: {meta['unit']}.")
            if meta.get("choices"):
                notes.append("One of: " + ", ".join(f"`{c}`" for c in meta["choices"]) + ".")
            rng = cfg.range_text(meta.get("min"), meta.get("max"))
            if rng:
                notes.append(f"Range: {rng}.")
            lines.append(f"| `{f.name}` | `{cfg.render_value(default)}` | {' '.join(notes)} |")
    return "\n".join(lines) + "\n"


def commands_reference() -> str:
    lines = ["# Commands", "", "Generated from `pwtop/cli.py` by `python -m pwtop.docs`.", "",
             "| verb | what it does |", "| --- | --- |"]
    lines += [f"| `pwtop {verb}` | {text} |" for verb, (_, text) in VERBS.items()]
    lines += ["", "Components, for `--component NAME` (repeatable) or `--all`: "
              + ", ".join(f"`{name}`" for name in NAMES) + ".",
              "", "Run `pwtop VERB --help` for the options of each verb."]
    return "\n".join(lines) + "\n"


GENERATED = {
    "docs/configuration.md": configuration_reference,
    "docs/commands.md": commands_reference,
    "config.example.toml": cfg.example_toml,
    "docs/metrics.md": metrics_reference,
    "docs/alerts.md": lambda: alerts_reference() + notify_reference(),
    "docs/seed-settings.md": seed_settings_reference,
}


def write_all(root: Path) -> list[Path]:
    written = []
    for rel, make in GENERATED.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make(), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover
    for p in write_all(Path(__file__).resolve().parent.parent):
        print(f"wrote {p}")

"""The optimize dialog: the dry-run plan, a choice of actions, then before and after.

Opening the dialog measures the component afresh, asks for its recommendations and has
``apply(..., dry_run=True)`` plan them, so what is shown is what would run now. Nothing is
selected at first; Space selects (each row reads ``[x]`` or ``[ ]``, which says it
without colour), Enter applies the selection one action at a time with progress, then the
measurements before and after are shown and the footer offers only Close. Esc before
Enter changes nothing. While the dialog is open the component is not polled (``hold``), so it is never
asked to collect and apply at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncContextManager, Callable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widgets import DataTable, ProgressBar, SelectionList, Static
from textual.widgets._toggle_button import ToggleButton
from textual.widgets.selection_list import Selection

from pwtop.database.litestream import REFUSED_ERROR as LITESTREAM_ERROR
from pwtop.errors import PwtopError
from pwtop.model import INSERT_COST_ERROR, ActionResult, Recommendation
from pwtop.tui.bindings import textual_bindings
from pwtop.tui.widgets.footer import footer_for
from pwtop.units import format_metric

log = logging.getLogger("pwtop.tui")


def _fmt(name: str, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_metric(name, value)
    return "-" if value is None else str(value)


def describe(rec: Recommendation, plan: ActionResult | None) -> Text:
    """Everything a person needs to decide on one action."""
    text = Text()
    text.append(f"{rec.title}\n", "bold")
    text.append(f"{rec.level.label} · {rec.kind} · {rec.target} · id {rec.id}\n")
    if not rec.applicable:
        text.append("advice for the app's own code: pwtop cannot apply it from outside\n",
                    "italic")
    if rec.evidence:
        text.append("evidence: ", "bold")
        text.append(", ".join(f"{k}={_fmt(k, v)}" for k, v in rec.evidence.items()) + "\n")
    if rec.impact:
        text.append("impact:   ", "bold")
        text.append(rec.impact + "\n")
    if rec.risk:
        text.append("risk:     ", "bold")
        text.append(rec.risk + "\n")
    if rec.action:
        text.append("action:   ", "bold")
        text.append(rec.action + "\n")
    if rec.code:
        text.append("code for the app:\n", "bold")
        text.append(rec.code + "\n")
    if plan is not None:
        text.append("dry run:  ", "bold")
        text.append((plan.message or ("ok" if plan.ok else "would fail")) + "\n")
        for stmt in plan.executed:
            text.append(f"  would run: {stmt}\n")
        if plan.error:
            text.append(f"  problem: {plan.error}\n")
    return text


def result_rows(results: list[ActionResult]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for res in results:
        state = "done" if res.ok else "FAILED"
        keys = list(dict.fromkeys([*res.before, *res.after]))
        if not keys:
            rows.append((res.recommendation_id, state, res.error or res.message, "", ""))
        for n, key in enumerate(keys):
            rows.append((res.recommendation_id if n == 0 else "", state if n == 0 else "", key,
                         _fmt(key, res.before.get(key)), _fmt(key, res.after.get(key))))
        if res.error and keys:
            rows.append(("", "", f"error: {res.error}", "", ""))
    return rows


class CheckList(SelectionList[str]):
    """A selection list whose rows read ``[x]`` or ``[ ]``: Textual's toggle button
    (``▐X▌``) tells selected from not by the colour of the X alone, which is lost under
    NO_COLOR and on a monochrome screen."""

    def render_line(self, y: int) -> Strip:
        line = super().render_line(y)
        segments = list(line)
        button = (ToggleButton.BUTTON_LEFT, ToggleButton.BUTTON_INNER,
                  ToggleButton.BUTTON_RIGHT)
        if len(segments) < 4 or tuple(s.text for s in segments[:3]) != button:
            return line
        index = self.scroll_offset.y + y
        selected = self.get_option_at_index(index).value in self._selected
        style = (segments[3].style or Style()) + Style(meta={"option": index})
        segments[:3] = [Segment("[", style), Segment("x" if selected else " ", style),
                        Segment("]", style)]
        return Strip(segments, line.cell_length)


class OptimizeScreen(ModalScreen[list[ActionResult] | None]):
    """Plan, choose, apply, show before/after; the result is what was applied (or None)."""

    BINDINGS = textual_bindings("optimize")

    def __init__(self, name: str, title: str, component: Any,
                 hold: Callable[[], AsyncContextManager[None]] | None = None) -> None:
        super().__init__()
        self.component_name = name
        self.title_text = title
        self.component = component
        self.hold = hold or contextlib.nullcontext
        self._phase = "planning"
        self.recommendations: dict[str, Recommendation] = {}
        self.plans: dict[str, ActionResult] = {}
        self.results: list[ActionResult] = []
        self._decision: asyncio.Future[list[str] | None] | None = None
        self._question: asyncio.Future[bool] | None = None

    @property
    def phase(self) -> str:
        """planning, ready, asking, applying, then done; or empty / failed."""
        return self._phase

    @phase.setter
    def phase(self, value: str) -> None:
        self._phase = value
        if self.is_mounted:
            self.refresh_bindings()  # the footer offers what this phase can do

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Apply and Cancel until the dialog is finished, Close after (hidden, not greyed:
        the footer must not offer Enter Apply once everything was applied)."""
        finished = self.phase in ("done", "empty", "failed")
        if action == "close":
            return finished
        if action in ("apply", "cancel", "toggle"):
            if finished:
                return False
            if action == "apply":
                return True if self.phase in ("ready", "asking") else None
        return True

    def compose(self) -> ComposeResult:
        with Vertical(id="optimize-dialog"):
            yield Static(Text(f"Optimize {self.title_text}: dry run, nothing has changed yet"),
                         id="optimize-title")
            yield Static("measuring and planning…", id="optimize-status")
            yield CheckList(id="optimize-actions")
            with VerticalScroll(id="optimize-detail-box"):
                yield Static("", id="optimize-detail")
            yield ProgressBar(id="optimize-progress", show_eta=False)
            yield DataTable(id="optimize-results", cursor_type="row")
        yield footer_for("optimize")

    def on_mount(self) -> None:
        self.query_one("#optimize-progress").display = False
        self.query_one("#optimize-results").display = False
        self.run_worker(self._flow(), group="optimize", exit_on_error=False)

    # ------------------------------------------------------------ the flow

    def _status(self, text: str) -> None:
        self.query_one("#optimize-status", Static).update(Text(text))

    async def _flow(self) -> None:
        async with self.hold():
            try:
                await self._plan()
            except PwtopError as exc:
                self.phase = "failed"
                self._status(f"cannot plan: {exc.message}  (Esc closes)")
                return
            except Exception as exc:
                log.exception("planning the %s optimization failed", self.component_name)
                self.phase = "failed"
                self._status(f"planning failed: {type(exc).__name__}: {exc}  (Esc closes)")
                return
            if self.phase != "ready":
                return
            self._decision = asyncio.get_running_loop().create_future()
            chosen = await self._decision
            if chosen is None:
                return
            await self._apply(chosen)

    async def _plan(self) -> None:
        snapshot = await self.component.collect()
        recs = await asyncio.to_thread(self.component.recommend, snapshot)
        self.recommendations = {r.id: r for r in recs}
        applicable = [r for r in recs if r.applicable]
        plans = await self.component.apply(applicable, dry_run=True) if applicable else []
        self.plans = {p.recommendation_id: p for p in plans}
        actions = self.query_one("#optimize-actions", SelectionList)
        for rec in recs:
            mark = "" if rec.applicable else "  (advice for the app)"
            plan = self.plans.get(rec.id)
            if plan is not None and plan.error == LITESTREAM_ERROR:
                # the refusal line itself is in the detail pane (describe: "dry run: ...")
                mark = "  (refused: Litestream replicates this file)"
            actions.add_option(Selection(Text(f"[{rec.level.label}] {rec.title}{mark}"), rec.id,
                                         False, disabled=not rec.applicable))
        if not recs:
            self.phase = "empty"
            self._status("nothing to optimize: no recommendations  (Esc closes)")
            actions.display = False
            return
        if not applicable:
            self.phase = "empty"
            self._status(f"{len(recs)} recommendation(s), all advice for the app's own code "
                         "(pwtop cannot apply them)  (Esc closes)")
        else:
            self.phase = "ready"
            self._status(f"{len(applicable)} action(s) pwtop can apply. Space selects, "
                         "Enter applies the selection, Esc cancels.")
        actions.focus()
        actions.highlighted = 0
        self._show_detail(recs[0].id)

    async def _apply(self, chosen: list[str]) -> None:
        self.phase = "applying"
        self.query_one("#optimize-title", Static).update(
            Text(f"Optimize {self.title_text}: applying the selected actions"))
        actions = self.query_one("#optimize-actions", SelectionList)
        actions.disabled = True
        progress = self.query_one("#optimize-progress", ProgressBar)
        progress.display = True
        progress.update(total=len(chosen), progress=0)
        for n, rec_id in enumerate(chosen, start=1):
            rec = self.recommendations[rec_id]
            self._status(f"applying {n}/{len(chosen)}: {rec.title}")
            try:
                batch = await self.component.apply([rec], dry_run=False)
                contested = [r for r in batch if r.error == INSERT_COST_ERROR]
                if contested and await self._ask_insert_cost(rec, contested[0]):
                    self._status(f"applying {n}/{len(chosen)} anyway: {rec.title}")
                    batch = await self.component.apply([rec], dry_run=False)
                self.results += batch
            except PwtopError as exc:
                self.results.append(ActionResult(rec_id, ok=False, dry_run=False,
                                                 error=exc.message))
            except Exception as exc:
                log.exception("applying %s failed", rec_id)
                self.results.append(ActionResult(rec_id, ok=False, dry_run=False,
                                                 error=f"{type(exc).__name__}: {exc}"))
            progress.advance(1)
        failed = sum(1 for r in self.results if not r.ok)
        self.phase = "done"
        self.query_one("#optimize-title", Static).update(
            Text(f"Optimize {self.title_text}: done"))
        self._status(f"applied {len(self.results) - failed} of {len(self.results)}"
                     + (f", {failed} FAILED" if failed else "") + ": before and after below "
                     "(Enter or Esc closes)")
        table = self.query_one("#optimize-results", DataTable)
        table.add_columns("action", "result", "measure", "before", "after")
        table.add_rows(result_rows(self.results))
        actions.display = False
        self.query_one("#optimize-detail-box").display = False
        table.display = True
        table.focus()

    async def _ask_insert_cost(self, rec: Recommendation, res: ActionResult) -> bool:
        """Inserts measured costlier than predicted: Enter applies anyway, Esc skips.

        On yes the id joins the component's ``accept_insert_cost`` (the CLI's
        --accept-insert-cost) and the action is validated and applied again."""
        accept = getattr(self.component, "accept_insert_cost", None)
        if not isinstance(accept, set):
            return False
        self.phase = "asking"
        self.query_one("#optimize-detail", Static).update(
            Text(f"{rec.title}\n{res.message or res.error}"))
        self._status("Inserts measured costlier than predicted (below). Enter applies "
                     "anyway, Esc skips.")
        self._question = asyncio.get_running_loop().create_future()
        yes = await self._question
        self._question = None
        self.phase = "applying"
        if yes:
            accept.add(rec.id)
        return yes

    # ------------------------------------------------------------ events and keys

    def _show_detail(self, rec_id: str) -> None:
        rec = self.recommendations.get(rec_id)
        if rec is not None:
            self.query_one("#optimize-detail", Static).update(
                describe(rec, self.plans.get(rec_id)))

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        if self.phase == "ready":  # in words too: the checkbox colour is lost under NO_COLOR
            chosen = len(event.selection_list.selected)
            applicable = sum(1 for r in self.recommendations.values() if r.applicable)
            self._status(f"{chosen} of {applicable} action(s) selected. Space selects, "
                         "Enter applies the selection, Esc cancels.")

    def on_selection_list_selection_highlighted(
            self, event: SelectionList.SelectionHighlighted) -> None:
        self._show_detail(str(event.selection.value))

    def action_toggle(self) -> None:
        actions = self.query_one("#optimize-actions", SelectionList)
        if self.phase == "ready" and actions.highlighted is not None:
            option = actions.get_option_at_index(actions.highlighted)
            if not option.disabled:
                actions.toggle(option.value)

    def _answer(self, yes: bool) -> bool:
        if self.phase == "asking" and self._question is not None and not self._question.done():
            self._question.set_result(yes)
            return True
        return False

    def action_apply(self) -> None:
        if self._answer(True):
            return
        if self.phase != "ready" or self._decision is None:
            return
        chosen = list(self.query_one("#optimize-actions", SelectionList).selected)
        if not chosen:
            self.notify("nothing selected: press Space on the actions to apply first",
                        severity="warning")
            return
        self._decision.set_result(chosen)

    def action_close(self) -> None:
        self.dismiss(self.results or None)

    def action_cancel(self) -> None:
        if self._answer(False):
            return
        if self.phase == "applying":
            self.notify("applying: wait for the current action to finish", severity="warning")
            return
        if self._decision is not None and not self._decision.done():
            self._decision.set_result(None)
        self.dismiss(self.results or None)

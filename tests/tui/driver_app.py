"""A minimal Textual app on pwtop's quiet input driver, run in a pseudo-terminal by
test_driver.py. It prints READY once its input is live and exits 0 on Escape (1 after
10 s without it).

    python driver_app.py plain     # just wait for Escape
    python driver_app.py suspend   # suspend and resume first (Ctrl+Z does the same)
    python driver_app.py stall     # the input thread stalls 0.3 s right after the tick
                                   # that follows an Escape (a busy Pi, SIGSTOP/SIGCONT)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from textual import events  # noqa: E402
from textual.app import App  # noqa: E402

from pwtop.tui import driver  # noqa: E402

MODE = sys.argv[1] if len(sys.argv) > 1 else "plain"

if MODE == "stall":
    original_tick = driver.XTermParser.tick
    stalled = []

    def stalling_tick(self):  # type: ignore[no-untyped-def]
        events_ = list(original_tick(self))
        if not stalled and self._timeout_time is not None:
            stalled.append(True)
            time.sleep(0.3)  # longer than the escape delay and the thread's margin
        return events_

    driver.XTermParser.tick = stalling_tick  # type: ignore[method-assign]


class DriverApp(App[int]):
    def get_driver_class(self):  # type: ignore[no-untyped-def]
        return driver.QuietLinuxDriver

    def on_mount(self) -> None:
        self.set_timer(10.0, lambda: self.exit(1))
        if MODE == "suspend":
            self.call_after_refresh(self._suspend_and_resume)
        else:
            self.call_after_refresh(self._announce)

    def _suspend_and_resume(self) -> None:
        with self.suspend():
            pass
        self.call_after_refresh(self._announce)

    def _announce(self) -> None:
        sys.__stdout__.write("READY")
        sys.__stdout__.flush()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape":
            self.exit(0)


if __name__ == "__main__":
    app = DriverApp()
    result = app.run()  # None when the app crashed
    raise SystemExit(result if result is not None else (app.return_code or 3))

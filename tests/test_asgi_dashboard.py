"""The dashboard: one offline page, drawn in the real headless chromium from the live
``events`` stream, read twice over the DevTools protocol to see the figures change."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import websockets

from tests.asgi_serving import make_db, serve

def dashboard_bytes() -> bytes:
    from importlib import resources

    return resources.files("pwtop.asgi").joinpath("dashboard.html").read_bytes()


def test_the_page_is_one_small_offline_file():
    page = dashboard_bytes()
    assert len(page) < 60 * 1024
    text = page.decode()
    # nothing fetched from elsewhere: no external script, style, font or image
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "@import" not in text and "url(" not in text
    assert "innerHTML" not in text  # the server's text (table names, queries) stays text
    assert "new EventSource(\"events\")" in text  # relative: works under any mount


class DevTools:
    """A page in chromium, driven over the DevTools protocol with ``websockets``."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = 0
        self.events: list[dict[str, Any]] = []

    async def _receive(self) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
        if "method" in message:
            self.events.append(message)
        return message

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.ids += 1
        await self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            reply = await self._receive()
            if reply.get("id") == self.ids:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    async def event(self, method: str) -> dict[str, Any]:
        """The first ``method`` event not yet taken, waiting for it."""
        while True:
            for i, message in enumerate(self.events):
                if message["method"] == method:
                    return self.events.pop(i)
            await self._receive()

    async def open(self, url: str) -> None:
        await self.call("Page.enable")
        await self.call("Page.navigate", url=url)
        await self.event("Page.loadEventFired")

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression,
                                 awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(result["exceptionDetails"])
        return result["result"].get("value")


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[DevTools]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    proc = await asyncio.create_subprocess_exec(
        exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-extensions", "--remote-debugging-port=0", f"--user-data-dir={profile}",
        "--window-size=1400,1000", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    try:
        browser_ws = None
        assert proc.stderr is not None
        while browser_ws is None:
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert line, "chromium exited before opening DevTools"
            found = re.search(rb"DevTools listening on (ws://\S+)", line)
            if found:
                browser_ws = found.group(1).decode()
        drain = asyncio.ensure_future(proc.stderr.read())
        port = int(re.search(r":(\d+)/", browser_ws).group(1))
        targets = await asyncio.to_thread(_json_list, port)
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            yield DevTools(ws)
        drain.cancel()
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except asyncio.TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()


def _json_list(port: int) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
        return json.load(resp)


#: Waits (a MutationObserver, no polling) until the page has drawn an event other than
#: the one it shows now, then returns what it shows.
NEXT_DRAWN = """
new Promise((resolve, reject) => {
  const seq = document.getElementById("seq");
  const before = seq.textContent;
  const read = () => ({
    seq: seq.textContent,
    status: document.getElementById("status").textContent,
    cards: [...document.querySelectorAll("section.card[data-component]")].map(
      c => [c.dataset.component, c.querySelector("h2 .state").textContent]),
    figures: Object.fromEntries([...document.querySelectorAll("tr.row[data-metric]")].map(
      r => [r.closest("[data-component]").dataset.component + "/" + r.dataset.metric,
            r.querySelector("td.v").textContent])),
    sparklines: document.querySelectorAll("svg.spark polyline").length,
    recommendations: document.querySelectorAll("ul.recs li .id").length,
    banner: document.getElementById("banner").textContent,
  });
  const seen = new MutationObserver(() => {
    if (seq.textContent !== before) { seen.disconnect(); resolve(read()); }
  });
  seen.observe(seq, {childList: true, characterData: true, subtree: true});
  setTimeout(() => { seen.disconnect(); reject(new Error("no new event drawn")); }, 20000);
})
"""


@pytest.mark.slow
@pytest.mark.parametrize("worker", [True, False], ids=["worker-process", "in-process"])
async def test_the_dashboard_draws_live_figures_in_chromium(tmp_path, worker):
    db = make_db(tmp_path / "app.db", wal=False)  # advice to show: switch to WAL

    async with serve(db, interval=0.3, worker=worker) as served:
        stop = asyncio.Event()

        async def busy() -> None:  # the app at work: operations whose counts move
            n = 0
            while not stop.is_set():
                n += 1
                async with served.optimizer.monitor_operation("scan"):
                    await asyncio.sleep(0.002 * (n % 7))

        work = asyncio.ensure_future(busy())
        try:
            url = f"http://127.0.0.1:{served.port}/performance/dashboard"
            async with chromium(tmp_path / "profile") as page:
                await page.open(url)
                first = await page.evaluate(NEXT_DRAWN)
                second = await page.evaluate(NEXT_DRAWN)
                second = await page.evaluate(NEXT_DRAWN)
                shot = await page.call("Page.captureScreenshot", format="png")
        finally:
            stop.set()
            await work

    assert first["status"] == "live"
    assert [c for c, _ in first["cards"]] == ["database", "async", "realtime", "system"]
    assert all(state == "live" for _, state in second["cards"]), second["cards"]
    assert int(second["seq"]) > int(first["seq"]) >= 1
    for figure in ("database/database_file_bytes", "async/async_operations_per_second",
                   "system/system_cpu_percent"):
        assert figure in second["figures"] and second["figures"][figure] != "n/a", figure
    assert second["figures"]["database/database_file_bytes"].endswith("KiB")
    changed = [k for k in second["figures"] if k.startswith("async/")
               and second["figures"][k] != first["figures"].get(k)]
    assert changed, (first["figures"], second["figures"])
    assert second["sparklines"] > 0 and second["recommendations"] >= 1
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    keep = os.environ.get("PWTOP_DASHBOARD_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(png)

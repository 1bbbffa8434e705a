"""Headless Chromium driven over the Chrome DevTools Protocol (CDP), for the report.html tests.

The browser is Debian's `chromium` (CI installs it; no downloaded browser bundle). It starts with
`--remote-debugging-port=0` in a new, empty user-data dir, writes the port it chose into
`DevToolsActivePort` there, and `websocket-client` speaks CDP to it: one browser connection, one
flattened session per page. Input goes through CDP's `Input` domain (real key and mouse events);
what is shown is read back with `Runtime.evaluate`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = shutil.which("chromium")

# As /work/.library/env/machines/python.md describes: no sandbox (root), no GPU, and nothing that
# phones home, so the only requests are the page's own.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    "--window-size=1400,1000",
)
STARTUP_SECONDS = 20.0
CALL_SECONDS = 15.0


class DevToolsError(RuntimeError):
    pass


class DevTools:
    """A CDP connection: numbered calls, with the events that arrive meanwhile kept in order."""

    def __init__(self, url: str) -> None:
        # Chromium refuses WebSocket upgrades that carry an Origin it was not told to allow.
        self._socket = websocket.create_connection(url, timeout=CALL_SECONDS,
                                                   suppress_origin=True)
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        self._socket.close()

    def _receive(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from Chromium")
        self._socket.settimeout(remaining)
        message: dict[str, Any] = json.loads(self._socket.recv())
        return message

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._socket.send(json.dumps(message))
        deadline = time.monotonic() + CALL_SECONDS
        while True:
            reply = self._receive(deadline)
            if reply.get("id") != self._next_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise DevToolsError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def wait_for(self, method: str, session: str | None = None,
                 timeout: float = CALL_SECONDS) -> dict[str, Any]:
        """The first event `method` of `session` not yet waited for (it may have come already)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for index in range(seen, len(self.events)):
                event = self.events[index]
                if event.get("method") == method and event.get("sessionId") == session:
                    del self.events[index]
                    return event
            seen = len(self.events)
            self.events.append(self._receive(deadline))


class Page:
    """One tab, attached with its own CDP session."""

    def __init__(self, devtools: DevTools) -> None:
        self.devtools = devtools
        self.target = devtools.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = devtools.call("Target.attachToTarget", targetId=self.target,
                                     flatten=True)["sessionId"]

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.devtools.call(method, self.session, **params)

    def close(self) -> None:
        with suppress(DevToolsError, TimeoutError, OSError):
            self.devtools.call("Target.closeTarget", targetId=self.target)

    def open(self, url: str, before_load: str = "") -> None:
        """Load `url` with the network recorded from the first request; run `before_load`
        (outside the page's Content-Security-Policy) before any of the page's own script."""
        self.call("Page.enable")
        self.call("Network.enable")
        self.call("Runtime.enable")
        if before_load:
            self.call("Page.addScriptToEvaluateOnNewDocument", source=before_load)
        self.call("Page.navigate", url=url)
        self.devtools.wait_for("Page.loadEventFired", self.session)

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for since it was opened (CDP Network.requestWillBeSent)."""
        return [e["params"]["request"]["url"] for e in self.devtools.events
                if e.get("sessionId") == self.session
                and e.get("method") == "Network.requestWillBeSent"]

    def console_errors(self) -> list[str]:
        return [json.dumps(e["params"]) for e in self.devtools.events
                if e.get("sessionId") == self.session
                and (e.get("method") == "Runtime.exceptionThrown"
                     or (e.get("method") == "Runtime.consoleAPICalled"
                         and e["params"].get("type") == "error"))]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited, returned as JSON)."""
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                          awaitPromise=True)
        if "exceptionDetails" in reply:
            raise DevToolsError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the element and type `text` as keyboard input (it fires real input events)."""
        assert self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                             " e.focus(); return document.activeElement === e; })()")
        self.call("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) in the middle of the element."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"],
                      button="left", clickCount=1)

    def screenshot(self, path: Path) -> Path:
        """The whole page, not only the window, as a PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": size["width"],
                               "height": size["height"], "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@contextmanager
def browser(user_data: Path) -> Iterator[DevTools]:
    """A headless Chromium for the block; it and its child processes end with the block."""
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed")
    user_data.mkdir(parents=True, exist_ok=True)
    log = user_data.parent / f"{user_data.name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={user_data}", "--remote-debugging-port=0",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True)
    devtools: DevTools | None = None
    try:
        devtools = DevTools(_endpoint(user_data, process, log))
        yield devtools
    finally:
        if devtools is not None:
            with suppress(OSError, websocket.WebSocketException):
                devtools.close()
        _stop(process)


def _endpoint(user_data: Path, process: subprocess.Popen[bytes], log: Path) -> str:
    """The browser's WebSocket URL, from the DevToolsActivePort file it writes when ready."""
    active = user_data / "DevToolsActivePort"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        lines = active.read_text().split() if active.exists() else []
        if len(lines) == 2:
            port, path = lines
            return f"ws://127.0.0.1:{port}{path}"
        time.sleep(0.05)
    raise TimeoutError(f"chromium did not open its DevTools port within {STARTUP_SECONDS} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the browser: SIGTERM lets it close and reap its own children; then SIGKILL whatever
    is left of the process group it was started in (by the browser's id, nothing else)."""
    process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(5)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        process.wait(5)

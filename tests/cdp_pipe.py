"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (no websocket
library): Chromium reads NUL-terminated JSON commands on fd 3 and writes replies and events on
fd 4. Enough to load a page, record every request the page makes, and take a full-page
screenshot."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Browser:
    def __init__(self, chromium: str, profile: str, extra_flags: list[str] = ()):
        cmd_r, self._cmd_w = os.pipe()  # we write commands, Chromium reads fd 3
        self._out_r, out_w = os.pipe()  # Chromium writes fd 4, we read
        # bash puts the pipe ends on fds 3 and 4 (dash takes only one-digit fds), then becomes Chromium
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{cmd_r} 4>&{out_w}', chromium, *FLAGS, *extra_flags,
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(cmd_r, out_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from Chromium")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 120) -> dict:
        """One command; events that arrive meanwhile are kept in ``self.events``."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            e = self._read_message(deadline)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._cmd_w)
        os.close(self._out_r)


def load_and_screenshot(chromium: str, url: str, png: str, profile: str, width: int = 1280,
                        settle_s: float = 1.0) -> list[str]:
    """Open ``url`` in a fresh tab, wait for its load event, save a full-page PNG; returns the
    URL of every request the page made (documents, images, scripts, fetches)."""
    b = Browser(chromium, profile)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.send("Network.enable", session=session)
        b.send("Page.enable", session=session)
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        b.send("Page.navigate", {"url": url}, session=session)
        b.wait_event("Page.loadEventFired")
        time.sleep(settle_s)  # late requests (none expected) would still be recorded
        shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                      session=session)
        with open(png, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return [e["params"]["request"]["url"] for e in b.events
                if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == session]
    finally:
        b.close()

"""Headless Chromium driven over the DevTools protocol (its JSON messages on a WebSocket; the
client is aiohttp's), for tests that click through a page: navigate, evaluate, screenshot, and
the URL of every request the page made."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI containers
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Any name lookup fails (127.0.0.1 is mapped too unless excluded): the page must work from
    # the run's own address alone.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    # A failure, not a skip: `make test` installs it (`make deps`), and a skipped test proves nothing.
    assert found, "headless Chromium is needed for this test: apt-get install -y chromium"
    return found


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = message.json()
            if "id" in data and data["id"] in self.waiting:
                self.waiting.pop(data["id"]).set_result(data)
            elif data.get("method") == "Network.requestWillBeSent":
                url = data["params"]["request"]["url"]
                if not url.startswith("data:"):  # inline images are no fetch
                    self.requests.append(url)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        self.waiting[n] = asyncio.get_running_loop().create_future()
        await self.ws.send_json({"id": n, "method": method, "params": params})
        answer = await asyncio.wait_for(self.waiting[n], 30)
        assert "error" not in answer, answer
        result: dict[str, Any] = answer["result"]
        return result

    async def evaluate(self, expression: str) -> Any:
        answer = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in answer, answer
        return answer["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 15.0) -> Any:
        """Evaluate until the value is truthy (an exception counts as not yet: the page may
        still be loading)."""
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        async with asyncio.timeout(timeout_s):
            # Polling the page is the point: there is no event to wait on from here.
            while not (value := await self.evaluate(guarded)):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        return value

    async def screenshot(self) -> bytes:
        return base64.b64decode((await self.send("Page.captureScreenshot", format="png"))["data"])


@contextlib.asynccontextmanager
async def open_page(url: str, profile: Path, width: int = 1200, height: int = 900) -> AsyncIterator[Page]:
    """Chromium with a fresh profile, one tab at ``url``; network requests recorded."""
    proc = await asyncio.create_subprocess_exec(
        chromium(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
        "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        # Chromium says where it listens on stderr: "DevTools listening on ws://127.0.0.1:PORT/...".
        assert proc.stderr is not None
        async with asyncio.timeout(60):
            while b"DevTools listening on" not in (line := await proc.stderr.readline()):
                assert line, "Chromium ended before it listened"
        port = int(line.split(b"ws://127.0.0.1:")[1].split(b"/")[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with session.ws_connect(ws_url, max_msg_size=0) as ws:
                page = Page(ws)
                await page.send("Network.enable")
                await page.send("Page.enable")
                await page.send("Page.navigate", url=url)
                try:
                    yield page
                finally:
                    page.reader.cancel()
    finally:
        proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()

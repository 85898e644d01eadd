"""
Test helpers: Debian's Chromium, headless, driven by Playwright's sync API
in one thread of its own (Playwright's objects belong to the thread that
made them), while the node under test runs in the trial reactor.

    browser = Browser()
    await browser.start()              # in setUp; stop() at cleanup
    page = await browser.newPage()
    await browser.run(page.goto, url)  # any Playwright call, in its thread
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import reactor, threads
from twisted.python.threadpool import ThreadPool

from tests.prosody import skipOutsideCI

#: Debian's Chromium (package chromium); scripts/setup-system installs it.
CHROMIUM = os.environ.get("XMPPNETGRAPH_CHROMIUM", "/usr/bin/chromium")

#: Flags for a quiet, reproducible headless Chromium on a closed network
#: (see shared/notes/graph-renderers.md): no background connections, and
#: software WebGL (SwiftShader) where there is no GPU.
FLAGS = (
    "--no-sandbox",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
)

T = TypeVar("T")


def browserAvailable() -> str | None:
    """
    @return: why the browser tests cannot run here, or L{None}.
    """
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/setup-system does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (the test extra: scripts/venv test)"
    return None


def browserSkip() -> str | None:
    """
    @return: a class-level C{skip} for browser tests: why they cannot run,
        or L{None} (also in CI, where L{Browser.start} then fails).
    """
    return skipOutsideCI(browserAvailable())


class Browser:
    """
    One headless Chromium with a fresh profile, and the thread that talks
    to it.
    """

    def __init__(
        self, viewport: tuple[int, int] = (1280, 800), flags: tuple[str, ...] = ()
    ) -> None:
        """
        @param viewport: the page's size in CSS pixels.
        @param flags: Chromium flags besides L{FLAGS} (e.g. to turn WebGL off).
        """
        self.viewport = viewport
        self.flags = flags
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="browser")
        self._playwright: Any = None
        self._context: Any = None
        self._profile = ""

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Any:
        """
        Call C{f} in the browser's thread.

        @return: a L{Deferred} of its result.
        """
        return threads.deferToThreadPool(reactor, self._pool, f, *args, **kwargs)

    async def start(self) -> None:
        """
        Launch Chromium.

        @raise RuntimeError: if it cannot run here.
        """
        reason = browserAvailable()
        if reason is not None:
            raise RuntimeError(f"the browser tests need Chromium and Playwright: {reason}")
        self._pool.start()
        await self.run(self._launch)

    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        self._profile = tempfile.mkdtemp(prefix="xng-chromium-")
        self._playwright = sync_playwright().start()
        width, height = self.viewport
        self._context = self._playwright.chromium.launch_persistent_context(
            self._profile,
            executable_path=CHROMIUM,
            headless=True,
            args=[*FLAGS, *self.flags],
            viewport={"width": width, "height": height},
        )

    async def newPage(self) -> Any:
        """
        @return: a new tab; every console error and page error it shows is
            collected in its C{errors} list.
        """

        def make() -> Any:
            page = self._context.new_page()
            page.errors = []
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.on(
                "console",
                lambda message: (
                    page.errors.append(message.text) if message.type == "error" else None
                ),
            )
            return page

        return await self.run(make)

    async def stop(self) -> None:
        """
        Close Chromium and the thread.
        """

        def close() -> None:
            if self._context is not None:
                self._context.close()
            if self._playwright is not None:
                self._playwright.stop()

        try:
            if self._pool.started:
                await self.run(close)
        finally:
            self._pool.stop()
            if self._profile:
                shutil.rmtree(self._profile, ignore_errors=True)

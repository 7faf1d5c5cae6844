"""The demo's supervisor at the console: headless Chromium logs in as wang (their own login,
made by ``shian-cloud supervisors add``) and works the kitchen's alert from the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class BrowserUser:
    """An officer in headless Chromium, logged in with their own login at ``start``; what the
    page's console said is kept in ``said``."""

    def __init__(self, base: str, name: str, password: str, shots: Path, start: str,
                 ready: str, **page: Any) -> None:  # fmt: skip
        from playwright.sync_api import sync_playwright

        from shared.browser import CHROMIUM_ARGS, chromium

        exe = chromium()
        if exe is None:
            raise RuntimeError("Chromium is not installed (make demo installs it)")
        self.base, self.shots = base, shots
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        self.page: Any = self._browser.new_page(**page)
        self.said: list[str] = []
        self.page.on("console", lambda m: self.said.append(f"{m.type}: {m.text}"[:200]))
        self.page.goto(f"{base}{start}")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", password)
        self.page.click("form button")
        self.page.wait_for_selector(ready)

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()


class ConsoleUser(BrowserUser):
    def __init__(self, base: str, name: str, password: str, shots: Path) -> None:
        super().__init__(base, name, password, shots, "/console/login", "#alerts",
                         viewport={"width": 1280, "height": 900})  # fmt: skip

    def act(self, alert_id: str, action: str, note: str = "", due_h: int | None = None) -> str:
        """Do ``action`` from the alert's page; what the page then says."""
        self.page.goto(f"{self.base}/console/alerts/{alert_id}")
        form = f"form[data-action={action}]"
        if note:
            self.page.fill(f"{form} input[name=note]", note)
        if due_h is not None:
            self.page.fill(f"{form} input[name=due_h]", str(due_h))
        self.page.click(f"{form} button")
        return str(self.page.inner_text("#message")).strip()

    def screenshot(self, alert_id: str) -> Path:
        self.page.goto(f"{self.base}/console/alerts/{alert_id}")
        path = self.shots / "console-alert.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def centre(self) -> tuple[Path, int]:
        """Open the command-centre wall; once its ticker and plan are drawn, a screenshot (and
        how many alerts the ticker shows)."""
        self.page.set_viewport_size({"width": 1920, "height": 1080})
        self.page.goto(f"{self.base}/centre")
        self.page.wait_for_selector("#ticker li")
        self.page.wait_for_function(  # a kitchen playing, or its latest snapshot
            "(() => { const v = document.querySelector('#screen video');"
            " return (v && v.currentTime > 0.5) || document.querySelector('#screen img'); })()",
            timeout=30_000,
        )
        path = self.shots / "centre-wall.png"
        self.page.screenshot(path=str(path))
        return path, int(self.page.locator("#ticker li").count())

    def screen_text(self) -> str:
        """What the wall's screen holds, and the state it was drawn from (when it failed)."""
        shown = str(self.page.inner_html("#screen")).strip()[:300]
        state = self.page.evaluate("fetch('/console/centre.json').then(r => r.text())")
        return f"{shown} (its state: {str(state)[-400:]}; the page said: {self.said[-5:]})"

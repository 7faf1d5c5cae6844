"""The demo's patrol: the operator gives the canteen a patrol; inspector zhao works it on a
phone-sized page in headless Chromium, fails an item with a note and a phone photo (shrunk by
the page before it is sent), and signs the report; the hazard reaches the kitchen's box, the
canteen answers there with a photo, and zhao verifies it from the report."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.demo_console import BrowserUser
from cloud.demo_setup import KITCHEN, SITES
from shared.secretfiles import write_secret

if TYPE_CHECKING:
    from cloud.demo import Demo
    from cloud.store import Store

FAILED = "pests"
"""The item the demo's inspector finds wrong (every shipped canteen checklist has it)."""


class Inspector(BrowserUser):
    """An inspector's phone: headless Chromium at a phone's size, logged in at /patrol."""

    def __init__(self, base: str, name: str, password: str, shots: Path) -> None:
        super().__init__(base, name, password, shots, "/patrol", "a.task",
                         viewport={"width": 390, "height": 844}, is_mobile=True,
                         has_touch=True)  # fmt: skip

    def visit(self, task: str, note: str, photo: Path) -> str:
        """Pass every item but one, fail that one with a note and a photo, sign the report;
        the hazard's id."""
        p = self.page
        p.goto(f"{self.base}/console/patrol/{task}")
        for item in p.eval_on_selector_all("form.item", "fs => fs.map(f => f.dataset.item)"):
            if item != FAILED:
                p.check(f"#i-{item} input[value=pass]")
                p.click(f"#i-{item} button")
                p.wait_for_selector(f"#i-{item}.pass")
        p.check(f"#i-{FAILED} input[value=fail]")
        p.fill(f"#i-{FAILED} textarea[name=note]", note)
        p.set_input_files(f"#i-{FAILED} input[type=file]", str(photo))
        p.wait_for_selector(f"#i-{FAILED} .thumbs img", timeout=30_000)
        p.click(f"#i-{FAILED} button")
        p.wait_for_selector(f"#i-{FAILED}.fail")
        p.click("#finish button")
        p.wait_for_selector("[data-hazard]")
        return str(p.get_attribute("[data-hazard]", "data-hazard"))

    def verify(self, task: str, note: str) -> tuple[str, Path]:
        """Verify the rectified hazard from the report; its state then, and a screenshot."""
        p = self.page
        p.goto(f"{self.base}/console/patrol/{task}/report")
        p.fill("form[data-action=verify] textarea[name=note]", note)
        p.click("form[data-action=verify] button")
        p.wait_for_selector("#message.ok")
        path = self.shots / "patrol-report.png"
        p.screenshot(path=str(path), full_page=True)
        return str(p.inner_text("[data-hazard] .hazard-state")).strip(), path


def phone_photo(path: Path) -> Path:
    """A 12-megapixel photo, as a phone's camera makes one."""
    from PIL import Image

    Image.effect_noise((4000, 3000), 40).convert("RGB").save(path, "JPEG", quality=92)
    return path


def story(demo: Demo, store: Store, say: Any, wait: Any) -> bool:
    """True when the hazard went round the loop and was closed."""
    conf = str(demo.w / "cloud.toml")
    site = SITES[KITCHEN]
    out = demo.run_cli("cloud.cli", "supervisors", "add", "zhao", "--district", "xianan",
                       "--role", "inspector", "--json", "--config", conf)  # fmt: skip
    password = json.loads(out)["password"]
    write_secret(demo.w / "zhao.password", password + "\n")
    due = datetime.fromtimestamp(time.time() + 2 * 86400, timezone(timedelta(hours=8)))
    task = demo.run_cli("cloud.cli", "patrols", "assign", site, "--inspector", "zhao",
                        "--due", due.strftime("%Y-%m-%d"), "--config", conf).strip()  # fmt: skip
    say(f"the operator gives {site} a patrol (task {task}) to inspector zhao, due "
        f"{due:%Y-%m-%d}: shian-cloud patrols assign")  # fmt: skip
    base = f"http://127.0.0.1:{demo.s.web_port}"
    say(f"  zhao opens {base}/patrol on a phone (password in {demo.w}/zhao.password)")
    zhao = Inspector(base, "zhao", password, demo.w)
    try:
        photo = phone_photo(demo.w / "phone-photo.jpg")
        hazard = zhao.visit(task, "储藏间墙角有鼠粪 droppings in the store room", photo)
        kept = store.db.query(
            "SELECT size FROM snapshots WHERE device = 'officer.zhao' ORDER BY received DESC"
        )
        say(f"  zhao fails 'pests' with a note and a photo ({photo.stat().st_size // 1000} KB "
            f"on the phone, {kept[0]['size'] // 1000} KB sent) and signs the report: hazard "
            f"{hazard}, rectification requested of the canteen")  # fmt: skip
        demo.rectify_from_box(store, hazard, str(demo.w / f"{KITCHEN}.toml"),
                              "mouse holes sealed, traps set")  # fmt: skip
        state, shot = zhao.verify(task, "复查合格 checked on the next visit")
    finally:
        zhao.close()
    say(f"  zhao verifies from the report: {state} (the report: {base}/console/patrol/{task}"
        f"/report, screenshot {shot}; shian-cloud patrols report {task})")  # fmt: skip
    return "已闭环" in state

"""What ``shian-cloud demo`` sets up: configs, keys, the stall's catalog, the virtual scale."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.secretfiles import write_secret
from shared.signing import write_key

KITCHEN, STALL = "kitchen-1", "stall-7"
SITES = {KITCHEN: "canteen-001", STALL: "market-huaxin-07"}
SAMPLE_EVERY = {KITCHEN: 0.5, STALL: 1.0}

CATALOG = """plu,name,name_en,goods_code,unit,unit_price,origin,supplier,batch,inspection_item,inspection_result,inspection_date,inspection_lab
101,白菜,Chinese cabbage,1010101,kg,3.80,湖北咸宁 Xianning,咸宁蔬菜合作社,HX20261125-03,农药残留 pesticide residue,合格 pass,2026-11-25,咸宁市食品检验所
102,猪肉,Pork,2010101,kg,28.00,湖北通山 Tongshan,通山生猪屠宰场,TS20261126-01,瘦肉精 clenbuterol,未检出 not found,2026-11-26,通山县动物卫生监督所
201,鸡蛋,Eggs,,piece,0.90,湖北嘉鱼 Jiayu,嘉鱼蛋禽场,JY-77,,,,
"""

# Real data when the shared test data is beside the project (a scale capture, photos for the
# kitchen cameras, the Open Images SSD); the stall falls back to made-up frames without it, and
# the kitchen is left out.
# SHIAN_TESTDATA names another folder (or a missing one, to run without it).
TESTDATA = Path(
    os.environ.get("SHIAN_TESTDATA") or Path(__file__).resolve().parents[2] / "shared" / "testdata"
)
CAPTURE = TESTDATA / "scale" / "qhw_st_gs_grams.bin"
PHOTOS = TESTDATA / "images"
SSD_MODEL = TESTDATA / "models" / "ssd_mobilenetv2_oidv4_fp16.tflite"


def has_kitchen_data() -> bool:
    return PHOTOS.exists() and SSD_MODEL.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoSetup:
    workdir: Path
    broker_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    stall_api_port: int = field(default_factory=free_port)
    hall_port: int = field(default_factory=free_port)
    live_section: str = ""
    """The collector's ``[live]`` (cloud.demo_live), when the media server runs."""
    live_cameras: str = ""
    sensors: str = ""
    """The kitchen box's ``[[sensors]]`` (the demo's fridge)."""
    """The kitchen box's public camera(s), as ``[[kitchen.cameras]]`` tables."""

    @property
    def assets_dir(self) -> Path:
        """Beside the demo's folder (which each run wipes), where the tests keep them too."""
        return self.workdir.parent / ".cache" / "web-assets"

    @property
    def scale_link(self) -> Path:
        return self.workdir / "ttyScale"

    @property
    def printer_file(self) -> Path:
        return self.workdir / "printer.bin"

    def scale_args(self) -> list[str]:
        """``shian-edge scale simulate`` arguments for the stall's virtual scale."""
        args = ["--link", str(self.scale_link)]
        if CAPTURE.exists():
            return ["--profile", "qhw_st_gs", "--capture", str(CAPTURE), *args]
        return ["--profile", "ad_st_gs", "--grams", "1234", *args]

    @property
    def videos(self) -> Path:
        return self.workdir / "videos"

    def kitchen_steps(self) -> list[list[str]]:
        """``shian-edge`` commands that prepare the kitchen: videos and its model."""
        return [
            ["cameras", "demo-videos", "--photos", str(PHOTOS), "--out", str(self.videos)],
            [
                "models",
                "install",
                "--model",
                "ssd_oidv4",
                "--from",
                str(SSD_MODEL),
                "--models-dir",
                str(self.workdir / KITCHEN / "models"),
            ],
        ]

    def write(self) -> None:
        """The collector's config and the stall's catalog (the boxes' configs come from their
        bundles: ``write_boxes``)."""
        w = self.workdir
        (w / "products.csv").write_text(CATALOG, encoding="utf-8")
        (w / "cloud.toml").write_text(
            f'data_dir = "{w}"  # the database, keys, broker files and bundles\n\n'
            f"[embedded_broker]\nport = {self.broker_port}\n\n"
            f"[web]\nport = {self.web_port}\n"
            f'assets_dir = "{self.assets_dir}"  # browser libraries, kept between runs\n\n'
            f'[fleet]\nfiles_url = "http://127.0.0.1:{self.web_port}/fleet/files"\n\n'
            f"[provisioning]\n"
            f'device_broker_url = "mqtt://127.0.0.1:{self.broker_port}"\n'
            f'ticket_base_url = "http://127.0.0.1:{self.web_port}"\n' + self.live_section
        )

    def register_args(self, device: str) -> list[str]:
        """``shian-cloud devices add`` arguments for one of the demo's boxes."""
        args = [device, "--site", SITES[device], "--district", "xianan"]
        if device == STALL:
            return [*args, "--role", "stall", "--market", "华信农贸市场", "--stall-no", "A-07",
                    "--retailer", "李四"]  # fmt: skip
        return [*args, "--role", "kitchen"]

    def write_boxes(self, bundles: dict[str, dict[str, Any]]) -> None:
        """Each box's config, with the broker login and ticket key from its bundle."""
        w = self.workdir
        for device, site in SITES.items():
            b = bundles[device]
            write_secret(w / device / "mqtt_password", b["mqtt"]["password"] + "\n")
            text = (
                f'device = "{device}"\nsite = "{site}"\ndata_dir = "{w / device}"\n\n'
                f'[mqtt]\nurl = "{b["mqtt"]["url"]}"\nbackoff_max_s = 2\n'
                f'username = "{device}"\npassword_file = "{w / device / "mqtt_password"}"\n'
                '# the embedded broker speaks MQTT 3.1.1 only; "auto" would find that out in 3 s\n'
                'protocol = "3.1.1"\n\n'
                f"[sync]\nheartbeat_s = 5\n\n[demo]\nsample_every_s = {SAMPLE_EVERY[device]}\n\n"
                f'[fleet]\npublic_key = "{b["fleet_public_key"]}"  # updates signed by the cloud\n'
            )
            if device == STALL:
                write_key(w / STALL / "ticket.key", bytes.fromhex(b["ticket_key"]))
                profile = "qhw_st_gs" if CAPTURE.exists() else "ad_st_gs"
                s = b["stall"]
                text += (
                    f'\n[stall]\nmarket = "{s["market"]}"\nstall_no = "{s["stall_no"]}"\n'
                    f'retailer = "{s["retailer"]}"\n'
                    f'ticket_base_url = "{b["ticket_base_url"]}"\n'
                    f'ticket_key_file = "{w / STALL / "ticket.key"}"\n'
                    f'ticket_key_id = "{b["ticket_key_id"]}"\n'
                    "\n"
                    f'[stall.scale]\nport = "{self.scale_link}"\nprofile = "{profile}"\n\n'
                    f'[stall.printer]\nconnection = "file:{self.printer_file}"\n'
                )
            if device == KITCHEN and has_kitchen_data():
                text += (
                    '\n[kitchen]\nmodel = "ssd_oidv4"\nfull_frame_every_s = 5\n\n'
                    '[[kitchen.cameras]]\nname = "cam1"\n'
                    f'source = "{self.videos / "cam1_cat.avi"}"\n\n'
                    '[[kitchen.cameras]]\nname = "cam2"\n'
                    f'source = "{self.videos / "cam2_still.avi"}"\n\n'
                    '[[kitchen.cameras]]\nname = "cam3"\n'
                    f'source = "{self.videos / "cam3_still.avi"}"\n\n'
                    + self.live_cameras
                    + '[[kitchen.rules]]\nviolation = "animal_in_kitchen"\n'
                    'labels = ["Cat", "Dog"]\nmin_score = 0.5\ncooldown_s = 600\n'
                )
            elif device == KITCHEN and self.live_cameras:  # cameras only, no detection
                text += "\n[kitchen]\n\n" + self.live_cameras
            if device == KITCHEN:
                text += self.sensors
                text += f'\n[ledger]\ntrace_url = "http://127.0.0.1:{self.web_port}"\n'
            port = self.stall_api_port if device == STALL else self.hall_port
            text += f"\n[display]\nport = {port}\n"
            (w / f"{device}.toml").write_text(text, encoding="utf-8")

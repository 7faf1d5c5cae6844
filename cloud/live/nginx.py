"""The media server: nginx with its RTMP module (Debian: nginx, libnginx-mod-rtmp).

Boxes push a camera over RTMP while somebody watches; nginx cuts it into HLS and serves it to
viewers, asking the collector first (``auth_request``) whether each fetch belongs to a live
viewer, and asking before each publish (``on_publish``) whether the box's key is right. The
same server proxies everything else to the collector, so a phone sees one address.

:func:`config` writes the configuration (``shian-cloud live nginx-config`` prints it for an
operator); :class:`MediaServer` runs one for the demo and the tests, like Mosquitto.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from shared.procs import die_with_parent, end

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
HLS_LOCATION = r"^/hls/[0-9a-f]{32}/(?<file>[a-z0-9]{16,32}(\.m3u8|-[0-9]{1,12}\.ts))$"
"""What a player may fetch: /hls/{viewer token}/{stream}.m3u8 and its segments."""


def config(
    *,
    rtmp_listen: str,
    http_listen: str,
    collector: str,
    hls_dir: Path,
    run_dir: Path,
    as_root: bool = False,
) -> str:
    """An nginx.conf. ``collector``: host:port of the collector's web server; ``run_dir``:
    pid, logs and temporary files."""
    user = "user root;\n" if as_root else ""
    temps = "\n".join(
        f"    {kind}_temp_path {run_dir}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# Shian's media server (docs/live.md). Written by shian-cloud; nginx -t checks it.
load_module {RTMP_MODULE};
{user}worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/error.log warn;
events {{ worker_connections 1024; }}

rtmp {{
    server {{
        listen {rtmp_listen};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            allow play 127.0.0.1;
            deny play all;
            drop_idle_publisher 10s;
            on_publish http://{collector}/live/publish;
            on_publish_done http://{collector}/live/publish_done;
            hls on;
            hls_path {hls_dir};
            hls_fragment 1s;
            hls_playlist_length 4s;
        }}
    }}
}}

http {{
    access_log off;
{temps}
    server_tokens off;
    server {{
        listen {http_listen};
        location ~ "{HLS_LOCATION}" {{
            auth_request /_live_auth;
            types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
            alias {hls_dir}/$file;
            add_header Cache-Control no-cache;
        }}
        location /hls/ {{ return 404; }}
        location = /_live_auth {{
            internal;
            proxy_pass http://{collector}/live/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }}
        location ~ "^/live/(auth|publish|publish_done)$" {{ return 404; }}
        location = /media-stat {{
            allow 127.0.0.1;
            deny all;
            rtmp_stat all;
        }}
        location / {{
            proxy_pass http://{collector};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> str | None:
    """Why nginx with the RTMP module cannot run here, or None."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        return "nginx is not installed (Debian: nginx)"
    if not RTMP_MODULE.exists():
        return "nginx's RTMP module is not installed (Debian: libnginx-mod-rtmp)"
    return None


class MediaServer:
    """An nginx of its own on free loopback ports, in ``work``."""

    def __init__(self, work: Path, collector: str) -> None:
        self.work, self.collector = work, collector
        self.hls_dir = work / "hls"
        self.rtmp_port, self.http_port = free_port(), free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def rtmp_url(self) -> str:
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 10) -> None:
        why = available()
        if why is not None:
            raise RuntimeError(why)
        self.hls_dir.mkdir(parents=True, exist_ok=True)
        conf = self.work / "nginx.conf"
        conf.write_text(
            config(
                rtmp_listen=f"127.0.0.1:{self.rtmp_port}",
                http_listen=f"127.0.0.1:{self.http_port}",
                collector=self.collector,
                hls_dir=self.hls_dir,
                run_dir=self.work,
                as_root=os.geteuid() == 0,
            )
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        cmd = [nginx, "-c", str(conf), "-p", f"{self.work}/", "-e", str(self.work / "error.log")]
        self._proc = subprocess.Popen(
            [*cmd, "-g", "daemon off;"], stderr=subprocess.PIPE, preexec_fn=die_with_parent
        )
        deadline = time.monotonic() + timeout
        while not all(_listening(p) for p in (self.rtmp_port, self.http_port)):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                self.stop()
                raise RuntimeError(f"nginx did not start: {err.strip()[-500:]}")
            time.sleep(0.05)

    def publishing(self) -> list[str]:
        """The streams being published now (their playlists exist)."""
        return sorted(p.stem for p in self.hls_dir.glob("*.m3u8"))

    def stop(self) -> None:
        if self._proc is not None:
            end(self._proc, 10)
            self._proc = None


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0

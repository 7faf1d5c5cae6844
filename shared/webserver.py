"""Running an ASGI app (Starlette) under uvicorn in a background thread, for the collector's
public pages and the box's local screens."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("shian.web")


class WebServer:
    def __init__(self, app: Any, host: str, port: int, name: str = "web") -> None:
        import uvicorn

        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,  # live streams end with the server
        )
        self.server = uvicorn.Server(self.config)
        self.name = name
        self._thread = threading.Thread(target=self.server.run, name=name, daemon=True)

    def start(self, timeout: float = 10) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name}: cannot serve on {self.config.host}:{self.config.port}"
                )
            time.sleep(0.01)
        log.info("%s serving on http://%s:%d", self.name, self.config.host, self.port)

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", [])
        if servers and servers[0].sockets:
            return int(servers[0].sockets[0].getsockname()[1])
        return int(self.config.port)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10)

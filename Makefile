# Shian: `make demo` runs the whole system on this machine; `make test` runs every check.
# Both set themselves up from nothing: a virtual environment in .venv, and (for the tests)
# the Mosquitto broker from Debian's packages when it is missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_SECONDS ?= 60

.PHONY: demo test lint typecheck pytest bench docs system-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Shian needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shian-cloud demo --seconds $(DEMO_SECONDS)

# The tests' real parts, from Debian's packages: the Mosquitto broker, the PostgreSQL server
# (the tests start a cluster of their own with its initdb, on a free port), headless Chromium
# (with CJK fonts) for the page tests, openssl for the TLS tests, systemd-analyze; for live
# views, the media server (nginx and its RTMP module), FFmpeg (the box copies a camera with
# it) and GStreamer's RTSP server with x264 (the stand-in H.264 camera, edge/live/testcam.py).
SYSTEM_PACKAGES := mosquitto postgresql chromium fonts-noto-cjk openssl systemd \
	nginx libnginx-mod-rtmp ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly

system-deps:
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do \
		dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing from Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP) system-deps
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/stall.py
	$(BIN)/python bench/vision.py
	$(BIN)/python bench/alerts.py
	$(BIN)/python bench/display.py
	$(BIN)/python bench/city.py

docs: $(STAMP)
	$(BIN)/python -m shared.configdoc > docs/config.md

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache

# Shian: `make demo` runs the whole system on this machine; `make test` runs every check.
# Both set themselves up from nothing: a virtual environment in .venv, and what each needs
# from Debian's packages when it is missing (the lists below).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_SECONDS ?= 60

.PHONY: demo test lint typecheck pytest bench docs system-deps demo-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Shian needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP) demo-deps
	$(BIN)/shian-cloud demo --seconds $(DEMO_SECONDS)

# What the demo needs from Debian's packages: headless Chromium (with CJK fonts) as the phone,
# and for live views the media server (nginx and its RTMP module), FFmpeg (the box copies a
# camera with it) and GStreamer's RTSP server with x264 (the stand-in H.264 camera,
# edge/live/testcam.py), and nats-server for the province (three nodes, cloud/demo_province.py).
# The tests need those and their other real parts: the Mosquitto broker,
# the PostgreSQL server (the tests start a cluster of their own with its initdb, on a free
# port), openssl for the TLS tests, systemd-analyze.
DEMO_PACKAGES := chromium fonts-noto-cjk nginx libnginx-mod-rtmp ffmpeg python3-gi nats-server \
	gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-ugly
SYSTEM_PACKAGES := mosquitto postgresql openssl systemd $(DEMO_PACKAGES)

# $(call apt_install,PACKAGES): install those of PACKAGES that are missing.
define apt_install
	@missing=""; \
	for pkg in $(1); do \
		dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing from Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

system-deps:
	$(call apt_install,$(SYSTEM_PACKAGES))

demo-deps:
	$(call apt_install,$(DEMO_PACKAGES))

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
	$(BIN)/python bench/live.py

docs: $(STAMP)
	$(BIN)/python -m shared.configdoc > docs/config.md

clean:
	rm -rf $(VENV) .demo .cache .pytest_cache .mypy_cache .ruff_cache

# Two commands do all the set-up on a fresh Debian machine (README):
#   make studio   install everything and open the app on the shipped default model
#                 (no display: generate a demo sticker headlessly into out/ and print its path)
#   make test     install everything (plus the Debian packages Qt offscreen needs) and run the tests
# Both are idempotent and work as root on a CPU-only machine with only the package registries reachable.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# CPU build of PyTorch (taken from local disk on the project's machines). CUDA users: see README "GPU install".
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

APT_PKGS := fonts-noto-color-emoji fonts-dejavu-core libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 \
	libfontconfig1 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
	libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 imagemagick ffmpeg webp xvfb xauth

.PHONY: studio test setup sysdeps lint bench clean screenshots fluent-data bundle

studio: sysdeps setup
	$(PY) -m app --or-demo

test: sysdeps setup
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check rdtf_engine app tests benchmarks tools
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider --timeout=900 tests

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[app,dev,cpu-fast]"
	rm -f $(VENV)/.installed-* && touch $@

# Debian packages: the emoji font for builtin:emoji, Qt's offscreen/xcb libraries, and independent decoders
# (ImageMagick identify, ffprobe, webpmux) used by the I/O tests. Skipped when already present.
sysdeps:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  echo "installing Debian packages: $$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Training data only (never needed to generate): the animated Fluent Emoji (MIT) via npm, which is installed from
# Debian here only when missing (it is not in APT_PKGS: it pulls in Node.js, too much for everyone's set-up).
fluent-data: setup
	@command -v npm >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null; }
	$(PY) -m rdtf_engine data fetch fluent

lint: setup
	$(VENV)/bin/ruff check rdtf_engine app tests benchmarks tools

bench: setup
	$(PY) benchmarks/export.py

screenshots: sysdeps setup
	$(PY) packaging/screenshots.py

# The one-folder desktop bundle (PyInstaller) in dist/rdtf-studio/, then its smoke test (packaging/smoke_test.py).
# ≈ 15–20 min on 2 cores, so not part of `make test` (which checks the spec's consistency instead): run it before
# a change to packaging/ or to the dependencies lands, and before a release (docs/packaging.md).
# binutils: the spec strips the libraries with `strip`. The bundle samples with PyTorch on the CPU (the cpu-fast
# extra's ONNX Runtime would add ≈ 60 MB to a folder held under 800 MB; the engine falls back without it).
bundle: sysdeps setup
	@command -v strip >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq binutils >/dev/null; }
	$(PIP) install -q -e ".[app,bundle]"
	PY=$(PY) bash packaging/build.sh

clean:
	rm -rf $(VENV) out .pytest_cache

#!/usr/bin/env bash
# Build the one-folder desktop bundle into dist/rdtf-studio/ and smoke-test it.
#   bash packaging/build.sh            (uses .venv; installs the [packaging] extra into it)
# Build in a clean venv that has only this project's deps: PyInstaller picks up whatever is importable
# (even system PySide6). The torch in that venv decides the flavour: CPU torch → CPU bundle, CUDA torch → CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
"$PY" -m pip install -q -e ".[app,packaging]"
"$PY" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/rdtf_studio.spec
# Prune Qt translations: the UI is English-only (tens of MB).
find dist/rdtf-studio -path '*PySide6/Qt/translations' -type d -prune -exec rm -rf {} + || true
"$PY" packaging/smoke_test.py dist/rdtf-studio
echo "built: dist/rdtf-studio/ ($(du -sh dist/rdtf-studio | cut -f1))"

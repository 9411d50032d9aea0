#!/usr/bin/env bash
# Build the one-folder desktop bundle into dist/rdtf-studio/ and smoke-test it (`make bundle` runs this).
#   bash packaging/build.sh                 uses .venv; installs the [packaging] extra into it when missing
#   PY=/path/to/python bash packaging/build.sh
#   SMOKE=0 bash packaging/build.sh         build only
# Build in a venv that has only this project's deps: PyInstaller picks up whatever is importable. The torch in
# that venv decides the flavour: CPU torch → CPU bundle, CUDA torch → CUDA bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
"$PY" -c "import PyInstaller, PySide6, qasync" 2>/dev/null || "$PY" -m pip install -q -e ".[app,packaging]"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
  packaging/rdtf_studio.spec
# Linux builds one executable (the spec says why); the console name the docs and the smoke test use links to it.
if [ ! -e dist/rdtf-studio/rdtf-studio-console ]; then ln -s rdtf-studio dist/rdtf-studio/rdtf-studio-console; fi
if [ "${SMOKE:-1}" != 0 ]; then
  "$PY" packaging/smoke_test.py dist/rdtf-studio
fi
echo "built: dist/rdtf-studio/ ($(du -sh dist/rdtf-studio | cut -f1))"

#!/usr/bin/env bash
# Build the one-folder desktop bundle into dist/rdtf-studio/ and smoke-test it (`make bundle` runs this).
#   bash packaging/build.sh                 uses .venv; installs the [app,bundle] extras into it when missing
#   PY=/path/to/python bash packaging/build.sh
#   SMOKE=0 bash packaging/build.sh         build only
# Build in the project's venv: PyInstaller picks up whatever is importable, and packaging/bundle_trim.py
# excludes what the app never imports. The torch in that venv decides the flavour: CPU torch → CPU bundle,
# CUDA torch → CUDA bundle. docs/packaging.md has the sizes and when to run this.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
"$PY" -c "import PyInstaller, PySide6, qasync" 2>/dev/null || "$PY" -m pip install -q -e ".[app,bundle]"
if [ "$(uname -s)" = Linux ] && ! command -v strip >/dev/null; then
  echo "error: 'strip' not found (Debian: apt-get install binutils); the spec strips the libraries" >&2
  exit 2
fi
start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller \
  packaging/rdtf_studio.spec
# Linux builds one executable (the spec says why); the console name the docs and the smoke test use links to it.
if [ ! -e dist/rdtf-studio/rdtf-studio-console ]; then ln -s rdtf-studio dist/rdtf-studio/rdtf-studio-console; fi
built=$(date +%s)
echo "built dist/rdtf-studio/ in $(( (built - start) / 60 )) min $(( (built - start) % 60 )) s:" \
  "$(du -sm dist/rdtf-studio | cut -f1) MB; largest parts (MB):"
du -sm dist/rdtf-studio/rdtf-studio dist/rdtf-studio/_internal/* | sort -rn | head -12 | sed 's|dist/rdtf-studio/||'
if [ "${SMOKE:-1}" != 0 ]; then
  "$PY" packaging/smoke_test.py dist/rdtf-studio
  echo "smoke test: $(( $(date +%s) - built )) s"
fi

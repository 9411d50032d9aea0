#!/usr/bin/env bash
# Make room in a GPU call's 64 MiB transfer (device tool: the working tree travels with every call) by moving what
# no GPU job reads out of the tree for the call, and back afterwards. With the tree slimmed (≈ 43 MB), .gpu (the
# text encoder, ≈ 16 MB), .whl (≈ 2.4 MB) and one 12 fps test pack (tools/make_test_packs.py --every 2, ≈ 4.8 MB)
# travel in one call beside it: no staging call (tools/gpu_parts.sh) is needed for a pack measurement.
#
#   bash tools/gpu_slim.sh hide      → docs/images, the model card's sample sheets and tests/ into .slim/ (ignored)
#   bash tools/gpu_slim.sh restore   → everything back (run it right after the call; `git status` must be clean)
#   bash tools/gpu_slim.sh size [PATHS…]   → bytes the call would carry: the tree plus the carried PATHS
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
MOVED=(docs/images resources/models/default/samples.jpg resources/models/default/samples-real.jpg tests)
case "${1:?hide, restore or size}" in
  hide)
    for p in "${MOVED[@]}"; do
      [ -e "$p" ] || continue
      mkdir -p ".slim/$(dirname "$p")" && mv "$p" ".slim/$p"
    done ;;
  restore)
    for p in "${MOVED[@]}"; do
      [ -e ".slim/$p" ] || continue
      [ ! -e "$p" ] || { echo "$p exists in the tree and in .slim/: left both, compare them"; exit 3; }
      mkdir -p "$(dirname "$p")" && mv ".slim/$p" "$p"
    done
    rm -rf .slim ;;
  size)
    shift
    { git ls-files -z; git ls-files -z --others --exclude-standard
      [ $# -eq 0 ] || find "$@" -type f -print0; } | du -cb --files0-from=- 2>/dev/null | tail -1 ;;
  *) echo "unknown command $1"; exit 2 ;;
esac

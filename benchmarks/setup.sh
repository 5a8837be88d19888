#!/usr/bin/env bash
# Install the competitor tools used by benchmarks/run.py (Debian 12 packages).
# Idempotent: does nothing when borg, restic and hyperfine are already present.
set -euo pipefail

need=()
command -v borg >/dev/null 2>&1 || need+=(borgbackup)
command -v restic >/dev/null 2>&1 || need+=(restic)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)

if [ ${#need[@]} -eq 0 ]; then
    echo "setup.sh: borg, restic and hyperfine already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when a competitor is missing.
if ! command -v borg >/dev/null 2>&1 || ! command -v restic >/dev/null 2>&1; then
    $SUDO apt-get update
fi
$SUDO apt-get install -y borgbackup restic hyperfine

#!/usr/bin/env bash
# Installs what the cluster tests need on a fresh machine besides the Python
# extras: Debian's redis-server (the tests start their own on a free port; the
# package's system service is not used). Idempotent: does nothing when present.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v redis-server >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
fi

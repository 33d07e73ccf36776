#!/usr/bin/env bash
# Installs what the browser tests need on a fresh machine: Debian's Chromium
# (playwright-core drives it; it does not download browsers itself) and the
# npm packages in tests/js (playwright-core, socket.io-client).
# Idempotent: does nothing when both are already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
fi

if [ ! -d tests/js/node_modules/playwright-core ] || [ ! -d tests/js/node_modules/socket.io-client ]; then
  (cd tests/js && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi

#!/usr/bin/env bash
# Installs what the reverse-proxy tests (tests/proxy) need on a fresh machine:
# Debian's nginx and the openssl command line (the tests make their own
# self-signed certificate). Only the binaries are used: the tests start nginx
# themselves on 127.0.0.1 with a config of their own, and stop it after.
# Idempotent: does nothing when both are already there. Needs root or sudo.
set -euo pipefail

have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
have_openssl() { command -v openssl >/dev/null 2>&1; }

if ! have_nginx || ! have_openssl; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx openssl
  # Installed for its binary only: if the package started the system's nginx, stop it.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    $SUDO systemctl stop nginx || true
  fi
fi

#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the browser
# tests need (Debian's chromium), then runs `cargo test`. Extra arguments go
# to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium for the browser tests (apt-get)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
  else
    echo "The browser tests need Chromium; install it and set CHROMIUM=/path/to/chromium" >&2
    exit 1
  fi
fi

cargo test "$@"

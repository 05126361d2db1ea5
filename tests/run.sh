#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the browser
# and proxy tests need, then runs `cargo test`. Extra arguments go to cargo
# test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests drive: a browser (web client), nginx
# (docs/nginx.conf) and slowhttptest (slow-client attacks on the REST
# port). Installed only when missing.
missing=()
command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1 || missing+=(chromium fonts-noto-color-emoji)
[ -x "${NGINX:-/usr/sbin/nginx}" ] || missing+=(nginx-light)
command -v slowhttptest >/dev/null 2>&1 || missing+=(slowhttptest)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]} for the browser, proxy and slow-client tests (apt-get)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "The tests need ${missing[*]}; install them (or set CHROMIUM / NGINX to their paths)" >&2
    exit 1
  fi
fi

cargo test "$@"

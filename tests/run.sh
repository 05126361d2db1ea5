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

# Python packages the push tests check the server's pushes with
# (tests/push_receiver.py: implementations the server does not use).
# Installed only when missing.
if ! python3 -c "import http_ece, cryptography" >/dev/null 2>&1; then
  echo "== installing http_ece and cryptography for the push tests (PyPI)"
  python3 -m pip install -q "http_ece==1.2.1" "cryptography>=42"
fi

cargo test "$@"

#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (never Playwright's own download).
# Install it when missing and we can; otherwise say so: the browser tests then skip locally and
# fail under CI=true, so a CI run can never pass without them.
set -euo pipefail
# Several checkouts may run this at once: wait for apt's lock instead of failing on it.
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "Installing Debian's chromium for the browser tests ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 chromium >/dev/null
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests (sudo) ..."
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 chromium >/dev/null
  exit 0
fi
echo "Chromium is not installed at /usr/bin/chromium and cannot be installed here:" >&2
echo "browser tests will be skipped (and fail when CI=true)." >&2

#!/usr/bin/env bash
# Debian packages the tests run: Chromium for the browser tests (driven through Playwright, never
# Playwright's own download) and HAProxy for the deployment test (deploy/haproxy.cfg).
# Install what is missing when we can; otherwise say so: those tests then skip locally and fail
# under CI=true, so a CI run can never pass without them.
set -euo pipefail
# program that must exist -> the Debian package that provides it
declare -A NEEDED=([/usr/bin/chromium]=chromium [/usr/sbin/haproxy]=haproxy)
missing=()
for program in "${!NEEDED[@]}"; do
  [ -x "$program" ] || missing+=("${NEEDED[$program]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
# Several checkouts may run this at once: wait for apt's lock instead of failing on it.
install() {
  "$@" apt-get update -qq
  "$@" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    "${missing[@]}" >/dev/null
}
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "Installing Debian's ${missing[*]} for the tests ..."
  install
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  echo "Installing Debian's ${missing[*]} for the tests (sudo) ..."
  install sudo
  exit 0
fi
echo "Missing and cannot be installed here: ${missing[*]}." >&2
echo "The tests that need them will be skipped (and fail when CI=true)." >&2

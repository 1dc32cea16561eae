#!/usr/bin/env bash
# System packages for the real-thing tests: headless Chromium (test/server/dashboard.test.ts) and
# Prometheus (test/telemetry/prometheus.test.ts). Idempotent: installs only what is missing, and runs
# `apt-get update` at most once. Those tests skip with a message where these are absent.
set -euo pipefail

packages=()
for pkg in chromium prometheus; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    packages+=("$pkg")
  fi
done

if [ "${#packages[@]}" -eq 0 ]; then
  echo "setup-system: chromium and prometheus already installed"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: no apt-get; not installing ${packages[*]} (the tests that need them will skip)" >&2
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "setup-system: not root and no sudo; not installing ${packages[*]} (the tests that need them will skip)" >&2
    exit 0
  fi
fi

echo "setup-system: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# --no-install-recommends: Chromium's and Prometheus' recommends pull in desktop and exporter
# packages the tests do not use. Debian's prometheus package would also start a service where
# systemd runs; on CI containers policy-rc.d usually prevents that, and the test starts its own.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"

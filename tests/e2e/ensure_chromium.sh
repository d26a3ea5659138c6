#!/usr/bin/env bash
# What the browser tests need: headless Chromium and its driver from Debian's packages, and
# axe-core (pinned in tests/e2e/package.json and package-lock.json) installed with npm ci
# into tests/e2e/node_modules. Nothing is loaded from a CDN.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
need=()
command -v chromium >/dev/null && command -v chromedriver >/dev/null || need+=(chromium chromium-driver)
command -v npm >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${need[@]}"
fi
if [ ! -f "$here/node_modules/axe-core/axe.min.js" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --silent)
fi

#!/usr/bin/env bash
# Provision one VM: Node.js 20 from Debian's nodejs is too old (18), so take it from the npm
# registry's `node` package via the distro npm, then run the project's own bootstrap.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
  npm install -g --no-audit --no-fund node@20 >/dev/null
  hash -r
fi
cd /podwire
bash scripts/bootstrap

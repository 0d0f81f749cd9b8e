#!/usr/bin/env bash
# Makes a fresh checkout runnable: installs npm dependencies when they are missing or older than the
# lock file, then compiles to dist/ (incremental, so a second run is quick) and builds the console's
# pages. Server binaries are handled by scripts/with-servers.ts, which every entry point runs next.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1; then
  echo "Node.js 20 or newer is needed: sudo apt-get install -y nodejs npm" >&2
  exit 1
fi
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[bootstrap] installing npm dependencies…" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc -p tsconfig.build.json
# The console's pages, rebuilt only when a file of console/ is newer than the last build.
if [ ! -f dist/console/index.html ] || [ -n "$(find console -type f -newer dist/console/index.html -print -quit)" ]; then
  npx --no-install vite build --config console/vite.config.ts --logLevel warn >&2
fi

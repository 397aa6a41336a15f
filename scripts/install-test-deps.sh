#!/usr/bin/env bash
# Installs what the test suite needs, idempotently, outside the repo:
# - the pinned Claude Code CLI from npm into $AGENTFLOW_CACHE_DIR/claude-code
# - Chromium and ChromeDriver from Debian (for the dashboard browser test)
set -euo pipefail
CLAUDE_CODE_VERSION="2.1.331"
cache="${AGENTFLOW_CACHE_DIR:-$HOME/.cache/agentflow}"
prefix="$cache/claude-code/$CLAUDE_CODE_VERSION"

if [ ! -x "$prefix/node_modules/.bin/claude" ]; then
  echo "claude-code: installing $CLAUDE_CODE_VERSION into $prefix"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
fi
"$prefix/node_modules/.bin/claude" --version

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "chromium: installing from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromium --version

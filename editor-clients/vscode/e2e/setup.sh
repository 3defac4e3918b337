#!/usr/bin/env bash
# Installs what tests/test_vscode_e2e.py needs: code-server (VS Code for the browser, from npm) and puppeteer-core,
# as pinned in package-lock.json. code-server 4.100.3 is the last release that runs on Node 20. Its native modules
# build against /usr's Node headers and the Debian packages libkrb5-dev pkg-config libx11-dev libxkbfile-dev
# libsecret-1-dev; its @vscode/ripgrep downloads rg from GitHub, which may not be reachable: Debian's rg (package
# ripgrep) is put where that download is cached, so the postinstall takes it instead. The test drives Chromium
# (package chromium). Without these (`.ci/run` installs them as root) it says so and installs nothing.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
for tool in node chromium rg pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if command -v pkg-config >/dev/null 2>&1 && ! pkg-config --exists krb5-gssapi x11 xkbfile libsecret-1; then
  missing+=("the -dev packages")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "note: code-server is not installed, so the VS Code end-to-end test will be skipped: missing ${missing[*]}" \
    "(as root: apt-get install -y libkrb5-dev pkg-config libx11-dev libxkbfile-dev libsecret-1-dev ripgrep chromium)" >&2
  exit 0
fi
# @vscode/ripgrep 1.15.11 (code-server 4.100.3's) looks for ripgrep v13.0.0-10 in this cache before downloading.
case "$(node -p process.arch)" in
  x64) target=x86_64-unknown-linux-musl ;;
  arm64) target=aarch64-unknown-linux-musl ;;
  *) target="" ;;
esac
if [ -n "$target" ]; then
  cache="$(node -p 'require("os").tmpdir()')/vscode-ripgrep-cache-1.15.11"
  mkdir -p "$cache"
  tar czf "$cache/ripgrep-v13.0.0-10-$target.tar.gz" -C "$(dirname "$(command -v rg)")" rg
fi
npm_config_unsafe_perm=true npm_config_yes=true npm_config_nodedir=/usr \
  npm ci --no-audit --no-fund --loglevel=error
touch node_modules/.installed

#!/usr/bin/env bash
# Installs the policy toolchains `bouncer build` drives, into a cache outside the
# repository keyed by version, so only the first run pays:
#   componentize-js   npm package @bytecodealliance/componentize-js (JavaScript)
#   componentize-py   PyPI package componentize-py, in a virtualenv (Python)
#   wasm32-wasip2     the Rust target (rustup)
# The versions must equal host/src/authoring/build.rs (a test checks).
# Prints a PATH fragment holding both tools on its last line.
# Exit status 3: npm or Python is missing (the tests then skip loudly).
set -euo pipefail

COMPONENTIZE_JS_VERSION="0.23.0"
COMPONENTIZE_PY_VERSION="0.25.1"
CACHE="${BOUNCER_AUTHORING_CACHE:-$HOME/.cache/bouncer-authoring}"
log() { echo "authoring tools: $*" >&2; }

if command -v rustup >/dev/null; then
    rustup target add wasm32-wasip2 >&2
fi

js="$CACHE/componentize-js-$COMPONENTIZE_JS_VERSION"
if [[ ! -x "$js/node_modules/.bin/componentize-js" ]]; then
    if ! command -v npm >/dev/null; then
        log "npm is not installed: cannot install componentize-js"
        exit 3
    fi
    log "installing @bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION into $js"
    rm -rf "$js.tmp" && mkdir -p "$js.tmp"
    npm install --prefix "$js.tmp" --no-audit --no-fund --loglevel=error \
        "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >&2
    rm -rf "$js" && mv "$js.tmp" "$js"
fi

py="$CACHE/componentize-py-$COMPONENTIZE_PY_VERSION"
if [[ ! -x "$py/bin/componentize-py" ]]; then
    if ! command -v python3 >/dev/null; then
        log "python3 is not installed: cannot install componentize-py"
        exit 3
    fi
    log "installing componentize-py==$COMPONENTIZE_PY_VERSION into $py"
    rm -rf "$py"
    python3 -m venv "$py"
    "$py/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
fi

log "componentize-js $("$js/node_modules/.bin/componentize-js" --version), componentize-py $COMPONENTIZE_PY_VERSION"
echo "$js/node_modules/.bin:$py/bin"

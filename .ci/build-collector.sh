#!/usr/bin/env bash
# Builds the binaries that test/collector.test.ts runs, only when they are missing:
#
#   .cache/otelcol/otelcol-llm-meter   an OpenTelemetry Collector built with the official
#                                      Collector Builder from deploy/collector/builder-config.yaml
#   .cache/jaeger/jaeger               Jaeger v2 (its cmd/jaeger), built with `go install`
#
# Idempotent: a binary that is there is kept (the collector is rebuilt when its manifest
# changed). Without Go it builds nothing and exits 0: the collector tests then skip, saying so.
#
# Usage: .ci/build-collector.sh [all|collector|jaeger]   (default: all)
# Env:   SKIP_JAEGER=1 builds the collector only.
set -euo pipefail
cd "$(dirname "$0")/.."

# Versions. The builder stays on the same minor release as the core modules in the manifest.
# Jaeger's Go module carries v1.x tags; its cmd/jaeger at module v1.76.0 is the Jaeger v2 binary.
BUILDER_VERSION=0.165.0
JAEGER_MODULE_VERSION=v1.76.0

ROOT=$PWD
MANIFEST=deploy/collector/builder-config.yaml
OTELCOL_DIR=$ROOT/.cache/otelcol
OTELCOL_BIN=$OTELCOL_DIR/otelcol-llm-meter
OTELCOL_STAMP=$OTELCOL_BIN.manifest-sha256
JAEGER_DIR=$ROOT/.cache/jaeger
JAEGER_BIN=$JAEGER_DIR/jaeger
JAEGER_STAMP=$JAEGER_BIN.version

what=${1:-all}
case "$what" in
  all | collector | jaeger) ;;
  *)
    echo "usage: $0 [all|collector|jaeger]" >&2
    exit 2
    ;;
esac

log() { echo "[build-collector] $*"; }

if ! command -v go >/dev/null 2>&1; then
  log "Go is not installed: not building the collector or Jaeger (the collector tests will skip)."
  exit 0
fi
log "using $(go version)"

# Strip symbols: smaller binaries and a faster link; nothing here needs a debugger.
LDFLAGS='-s -w'

build_collector() {
  local want
  want=$(sha256sum "$MANIFEST" | cut -d' ' -f1)
  if [[ -x $OTELCOL_BIN && -f $OTELCOL_STAMP && $(cat "$OTELCOL_STAMP") == "$want" ]]; then
    log "collector: $OTELCOL_BIN is there and matches $MANIFEST; nothing to do."
    return 0
  fi
  mkdir -p "$OTELCOL_DIR/bin"
  local builder=$OTELCOL_DIR/bin/builder
  if [[ ! -x $builder || $("$builder" version 2>/dev/null || true) != *"$BUILDER_VERSION"* ]]; then
    log "collector: installing the OpenTelemetry Collector Builder v$BUILDER_VERSION into $OTELCOL_DIR/bin"
    GOBIN=$OTELCOL_DIR/bin go install "go.opentelemetry.io/collector/cmd/builder@v$BUILDER_VERSION"
  fi
  log "collector: building from $MANIFEST (a cold build takes minutes)"
  local start=$SECONDS
  rm -rf "$OTELCOL_DIR/build" # the manifest's output_path, relative to this (the repository root)
  "$builder" --config "$MANIFEST" --ldflags "$LDFLAGS"
  mv -f "$OTELCOL_DIR/build/otelcol-llm-meter" "$OTELCOL_BIN"
  echo "$want" >"$OTELCOL_STAMP"
  log "collector: built $OTELCOL_BIN in $((SECONDS - start)) s"
  "$OTELCOL_BIN" --version
}

build_jaeger() {
  if [[ -x $JAEGER_BIN && -f $JAEGER_STAMP && $(cat "$JAEGER_STAMP") == "$JAEGER_MODULE_VERSION" ]]; then
    log "jaeger: $JAEGER_BIN ($JAEGER_MODULE_VERSION) is there; nothing to do."
    return 0
  fi
  log "jaeger: go install github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_MODULE_VERSION into $JAEGER_DIR (a cold build takes minutes)"
  local start=$SECONDS
  mkdir -p "$JAEGER_DIR"
  GOBIN=$JAEGER_DIR go install -ldflags "$LDFLAGS" "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_MODULE_VERSION"
  echo "$JAEGER_MODULE_VERSION" >"$JAEGER_STAMP"
  log "jaeger: built $JAEGER_BIN in $((SECONDS - start)) s"
  "$JAEGER_BIN" version 2>/dev/null | head -n 3 || true
}

if [[ $what == all || $what == collector ]]; then build_collector; fi
if [[ $what == jaeger || ($what == all && ${SKIP_JAEGER:-} != 1) ]]; then build_jaeger; fi

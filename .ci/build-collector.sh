#!/usr/bin/env bash
# Builds the binaries that test/deploy/collector.test.ts runs, only when they are missing:
#
#   .cache/otelcol/otelcol-llm-meter   an OpenTelemetry Collector built with the official
#                                      Collector Builder from deploy/collector/builder-config.yaml
#   .cache/jaeger/jaeger               Jaeger v2 (its cmd/jaeger), built with `go build` (see below
#                                      why not `go install`)
#
# Idempotent: a binary that is there is kept (the collector is rebuilt when its manifest
# changed). Without Go it builds nothing and exits 0: the collector tests then skip, saying so.
#
# Usage: .ci/build-collector.sh [all|collector|jaeger]   (default: all)
# Env:   SKIP_JAEGER=1 builds the collector only.
set -euo pipefail
cd "$(dirname "$0")/.."

# Versions. The builder stays on the same minor release as the core modules in the manifest.
# Jaeger releases v1.x and v2.x together from one Go module, which carries the v1.x tags: its
# cmd/jaeger at module v1.76.0 is the Jaeger v2.13.0 binary (the version it reports).
BUILDER_VERSION=0.165.0
JAEGER_MODULE_VERSION=v1.76.0
JAEGER_VERSION=v2.13.0

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
  local stamp="$JAEGER_VERSION (module $JAEGER_MODULE_VERSION)"
  if [[ -x $JAEGER_BIN && -f $JAEGER_STAMP && $(cat "$JAEGER_STAMP") == "$stamp" ]]; then
    log "jaeger: $JAEGER_BIN, Jaeger $stamp, is there; nothing to do."
    return 0
  fi
  # `go install github.com/jaegertracing/jaeger/cmd/jaeger@VERSION` refuses this module: its
  # go.mod has a replace directive ("must not contain directives that would cause it to be
  # interpreted differently than if it were the main module"). So the binary is built from a
  # throwaway module that requires Jaeger as a tool and carries Jaeger's own replace
  # directives, which builds exactly what Jaeger's go.mod resolves to.
  local pkg=github.com/jaegertracing/jaeger/cmd/jaeger
  local src=$JAEGER_DIR/src
  log "jaeger: building Jaeger $JAEGER_VERSION ($pkg@$JAEGER_MODULE_VERSION) into $JAEGER_DIR (a cold build takes minutes)"
  local start=$SECONDS
  rm -rf "$src"
  mkdir -p "$src"
  (
    cd "$src"
    go mod init llm-meter.local/jaeger-build >/dev/null 2>&1
    local gomod
    gomod=$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION" |
      sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
    # Jaeger's replace directives, as `go mod edit -replace` arguments.
    local replaces
    replaces=$(go mod edit -json "$gomod" | node -e '
      let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
        const at = (m) => m.Path + (m.Version ? "@" + m.Version : "");
        for (const r of JSON.parse(s).Replace ?? []) console.log(`-replace=${at(r.Old)}=${at(r.New)}`);
      });')
    if [[ -n $replaces ]]; then
      log "jaeger: applying Jaeger's replace directives: $(echo $replaces)"
      # shellcheck disable=SC2086 # one argument per line
      go mod edit $replaces
    fi
    go get -tool "$pkg@$JAEGER_MODULE_VERSION"
    go build -o "$JAEGER_BIN" \
      -ldflags "$LDFLAGS -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$JAEGER_VERSION" "$pkg"
  )
  echo "$stamp" >"$JAEGER_STAMP"
  rm -rf "$src"
  log "jaeger: built $JAEGER_BIN in $((SECONDS - start)) s"
  "$JAEGER_BIN" version 2>/dev/null | head -n 3 || true
}

if [[ $what == all || $what == collector ]]; then build_collector; fi
if [[ $what == jaeger || ($what == all && ${SKIP_JAEGER:-} != 1) ]]; then build_jaeger; fi

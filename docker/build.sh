#!/usr/bin/env bash
# Builds the rtprelay container image.
#
#   docker/build.sh [-t TAG] [--builder auto|classic|buildkit] [--no-base-images] [DOCKER BUILD ARGS...]
#
# It assembles the build context under docker/.build/context (gitignored): the workspace manifests with stub
# targets, the crates vendored with `cargo vendor` (redone only when Cargo.lock or a manifest changes), an offline
# cargo config, our sources, and the files of the runtime stage. The build then needs no access to crates.io.
# Base images that are missing and cannot be pulled (no registry) are created locally by
# docker/tests/make-base-images.sh, unless --no-base-images is given.
# Other arguments go to `docker build` as they are (e.g. --build-arg RUST_IMAGE=rust:1.85-bookworm, --no-cache).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DOCKER=${DOCKER:-docker}
TAG=rtprelay:latest
BUILDER=auto
BASE_IMAGES=1
BUILD_ARGS=()
RUST_IMAGE=rust:1-bookworm
RUNTIME_IMAGE=debian:bookworm-slim

usage() { sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
log() { printf '[build] %s\n' "$*" >&2; }
die() { printf '[build] error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        -t | --tag) TAG=${2:?-t needs a tag}; shift 2 ;;
        --tag=*) TAG=${1#--tag=}; shift ;;
        --builder) BUILDER=${2:?--builder needs auto, classic or buildkit}; shift 2 ;;
        --builder=*) BUILDER=${1#--builder=}; shift ;;
        --no-base-images) BASE_IMAGES=0; shift ;;
        -h | --help) usage; exit 0 ;;
        --build-arg)
            BUILD_ARGS+=("$1" "${2:?--build-arg needs NAME=VALUE}")
            case "$2" in RUST_IMAGE=*) RUST_IMAGE=${2#*=} ;; RUNTIME_IMAGE=*) RUNTIME_IMAGE=${2#*=} ;; esac
            shift 2 ;;
        --) shift; BUILD_ARGS+=("$@"); break ;;
        *) BUILD_ARGS+=("$1"); shift ;;
    esac
done

command -v cargo >/dev/null || die "cargo not found: it vendors the crates on this machine before the build"
$DOCKER version >/dev/null 2>&1 || die "no Docker engine answers ($DOCKER version failed)"

BUILD_DIR=${RTPRELAY_BUILD_DIR:-$HERE/.build}
CTX=$BUILD_DIR/context
mkdir -p "$BUILD_DIR"
START=$(date +%s)
cd "$ROOT"

# --- Cargo.lock and vendored crates ----------------------------------------------------------------------------
if [ ! -f Cargo.lock ]; then
    log "no Cargo.lock in the repository: generating one for this build (commit it so that builds are reproducible)"
    cargo generate-lockfile
fi

# The workspace members' manifests and every target's source path, from cargo itself (paths relative to the root).
METADATA=$(cargo metadata --no-deps --format-version 1 --offline 2>/dev/null || cargo metadata --no-deps --format-version 1)
json_paths() { grep -o "\"$1\":\"[^\"]*\"" <<<"$METADATA" | sed "s/^\"$1\":\"//; s/\"\$//; s|^$ROOT/||"; }
MANIFESTS=$( { echo Cargo.toml; json_paths manifest_path; } | sort -u)
TARGETS=$(json_paths src_path | sort -u)

# shellcheck disable=SC2086
VENDOR_KEY=$(cat Cargo.lock $MANIFESTS | sha256sum | cut -d' ' -f1)
VENDOR=$BUILD_DIR/vendor
if [ "$(cat "$BUILD_DIR/vendor.key" 2>/dev/null)" != "$VENDOR_KEY" ] || [ ! -d "$VENDOR" ]; then
    log "cargo vendor (Cargo.lock or a manifest changed)"
    rm -rf "$VENDOR" "$BUILD_DIR/vendor.key"
    # From crates.io, or from the local cargo cache when this machine is offline.
    cargo vendor --locked --versioned-dirs "$VENDOR" >"$BUILD_DIR/cargo-vendor.toml" \
        || cargo vendor --offline --locked --versioned-dirs "$VENDOR" >"$BUILD_DIR/cargo-vendor.toml" \
        || die "cargo vendor failed"
    echo "$VENDOR_KEY" >"$BUILD_DIR/vendor.key"
else
    log "vendored crates are up to date"
fi

# --- build context ---------------------------------------------------------------------------------------------
log "assembling the build context in $CTX"
rm -rf "$CTX/manifests" "$CTX/source"
mkdir -p "$CTX/manifests" "$CTX/source"
# Hard links keep the vendored tree free to copy; a plain copy where links cannot cross file systems.
if [ ! -d "$CTX/vendor" ] || [ "$(cat "$CTX/vendor.key" 2>/dev/null)" != "$VENDOR_KEY" ]; then
    rm -rf "$CTX/vendor"
    cp -al "$VENDOR" "$CTX/vendor" 2>/dev/null || cp -a "$VENDOR" "$CTX/vendor"
    echo "$VENDOR_KEY" >"$CTX/vendor.key"
fi
{
    # Source replacement as printed by cargo vendor, pointed at the context's vendor/ directory.
    sed 's|^directory = .*|directory = "vendor"|' "$BUILD_DIR/cargo-vendor.toml"
    printf '\n[net]\noffline = true\n'
} >"$CTX/cargo-config.toml"

# Manifests + lock + a stub for every target: the dependency layer of the Dockerfile builds from these only.
cp Cargo.lock "$CTX/manifests/"
for m in $MANIFESTS; do
    mkdir -p "$CTX/manifests/$(dirname "$m")"
    cp "$m" "$CTX/manifests/$m"
done
for t in $TARGETS; do
    mkdir -p "$CTX/manifests/$(dirname "$t")"
    printf '#![allow(dead_code)]\nfn main() {}\n' >"$CTX/manifests/$t"
done

# Sources: tracked and untracked-but-not-ignored files from git (so target/ and friends stay out), else a copy
# without the usual build outputs. docker/ is left out: the runtime stage takes its files from the context root.
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard -- . ':!docker' \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf - | tar -xf - -C "$CTX/source"
else
    tar --exclude=./target --exclude=./.git --exclude=./docker --exclude='./fuzz/target' -cf - . \
        | tar -xf - -C "$CTX/source"
fi
for f in Dockerfile rtprelay.conf rtprelay-recording.conf docker-entrypoint.sh rtprelay-healthcheck; do
    cp -p "$HERE/$f" "$CTX/$f"
done

# --- base images -----------------------------------------------------------------------------------------------
for image in "$RUST_IMAGE" "$RUNTIME_IMAGE"; do
    $DOCKER image inspect "$image" >/dev/null 2>&1 && continue
    log "pulling $image"
    $DOCKER pull "$image" >&2 && continue
    case "$image" in
        rust:1-bookworm | debian:bookworm-slim | debian:bookworm)
            [ "$BASE_IMAGES" = 1 ] || die "$image is missing and cannot be pulled (--no-base-images)"
            log "no registry: creating the base images locally"
            DOCKER=$DOCKER "$HERE/tests/make-base-images.sh"
            ;;
        *) die "$image is missing and cannot be pulled" ;;
    esac
done

# --- build -----------------------------------------------------------------------------------------------------
case "$BUILDER" in
    auto)
        # The docker CLI uses BuildKit when the buildx plugin is installed, the classic builder otherwise.
        if $DOCKER buildx version >/dev/null 2>&1; then BUILDER=buildkit; else BUILDER=classic; fi ;;
    classic | buildkit) ;;
    *) die "--builder must be auto, classic or buildkit" ;;
esac
if [ "$BUILDER" = buildkit ]; then
    export DOCKER_BUILDKIT=1
    BUILD_ARGS=(--progress=plain "${BUILD_ARGS[@]}")
else
    export DOCKER_BUILDKIT=0
fi
log "docker build ($BUILDER builder) -t $TAG"
$DOCKER build -t "$TAG" "${BUILD_ARGS[@]}" "$CTX"

SIZE=$($DOCKER image inspect -f '{{.Size}}' "$TAG")
log "built $TAG in $(($(date +%s) - START)) s; image size $((SIZE / 1000000)) MB ($SIZE bytes)"

#!/usr/bin/env bash
# Creates the base images the Dockerfile needs when no registry is reachable:
#   debian:bookworm and debian:bookworm-slim (debootstrap + docker import), and
#   rust:1-bookworm (the host's Rust toolchain copied onto debian:bookworm).
# Idempotent: an image that already exists is left alone. Usage: make-base-images.sh [--force]
set -euo pipefail

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
DOCKER=${DOCKER:-docker}
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

log() { printf '[base-images] %s\n' "$*" >&2; }
have_image() { [ "$FORCE" = 0 ] && $DOCKER image inspect "$1" >/dev/null 2>&1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rtprelay-base.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

make_debian() {
    if have_image "debian:$SUITE" && have_image "debian:$SUITE-slim"; then
        log "debian:$SUITE and debian:$SUITE-slim exist"
        return
    fi
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
    fi
    local root="$WORK/rootfs"
    log "debootstrap --variant=minbase $SUITE from $MIRROR"
    debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
        tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    # Same sources layout as the official images; plain HTTP works inside builds here.
    rm -f "$root/etc/apt/sources.list"
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$MIRROR" "$SUITE" "$SUITE" >"$root/etc/apt/sources.list.d/debian.sources"
    # Like the official images: no cached package lists or .debs, no recommends.
    printf 'APT::Install-Recommends "false";\n' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/log/* "$root"/tmp/*
    : >"$root/etc/hostname"
    if ! have_image "debian:$SUITE"; then
        log "importing debian:$SUITE"
        tar -C "$root" --numeric-owner -c . | $DOCKER import -c 'CMD ["bash"]' - "debian:$SUITE" >/dev/null
    fi
    if ! have_image "debian:$SUITE-slim"; then
        # The official slim variant drops docs, man pages and locales, and keeps dpkg from adding them back.
        rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
            "$root"/usr/share/groff/* "$root"/usr/share/lintian/*
        printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
            'path-exclude /usr/share/man/*' 'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
            'path-exclude /usr/share/lintian/*' 'path-exclude /usr/share/locale/*' \
            >"$root/etc/dpkg/dpkg.cfg.d/docker"
        log "importing debian:$SUITE-slim"
        tar -C "$root" --numeric-owner -c . | $DOCKER import -c 'CMD ["bash"]' - "debian:$SUITE-slim" >/dev/null
    fi
}

make_rust() {
    if have_image "rust:1-$SUITE"; then
        log "rust:1-$SUITE exists"
        return
    fi
    command -v rustc >/dev/null || { log "rustc not found on the host: install a Rust toolchain (rustup) first"; exit 1; }
    local sysroot ctx="$WORK/rust-ctx"
    sysroot=$(rustc --print sysroot)
    log "copying the host toolchain $(rustc --version) from $sysroot"
    mkdir -p "$ctx/rust"
    # bin + lib + libexec is what rustc/cargo need; docs (share/) and rust-src are left out.
    for d in bin lib libexec etc; do
        [ -d "$sysroot/$d" ] && cp -a "$sysroot/$d" "$ctx/rust/"
    done
    rm -rf "$ctx/rust/lib/rustlib/src" "$ctx/rust/lib/rustlib/"*/analysis
    # Make everything readable/writable now: a chmod -R inside the image would copy every file into a second layer.
    chmod -R u+w,go+rX "$ctx/rust"
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM debian:$SUITE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        ca-certificates gcc libc6-dev make pkg-config git \\
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:\$PATH
COPY rust /usr/local/rust
RUN mkdir -p /usr/local/cargo/bin && rustc --version && cargo --version
DOCKERFILE
    log "building rust:1-$SUITE"
    DOCKER_BUILDKIT=0 $DOCKER build -q -t "rust:1-$SUITE" "$ctx" >/dev/null
}

make_debian
make_rust
$DOCKER image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E "^(debian:$SUITE|rust:1-$SUITE)" >&2 || true

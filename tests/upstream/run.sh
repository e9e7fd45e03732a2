#!/bin/bash
# Run the plain-relay cases of rtpengine's own NG daemon test suite against a
# daemon binary (rtprelay by default) and print "N passed, M failed".
#
# rtpengine is GPL, so its suite is never stored in this repository: --source
# names a tarball or a directory holding t/ and perl/ (the 10.5 suites in
# ../shared/upstream/, or a newer tag extracted outside the repository);
# without it, the suite is taken from Debian's rtpengine source package (the
# version that matches Debian's rtpengine binary, so the suite can be
# validated against it).  Tarballs are unpacked into .upstream/ at the
# repository root (gitignored).  Newer suites work too (checked with
# mr26.2.1.1); split_cases.py adds the glue their harness needs.
#
# Setup is idempotent and needs root on a fresh Debian box (bookworm): it
# adds a deb-src entry, fetches the source, installs the Perl modules the
# harness loads, and builds the suite's socket shim plus our mmsg shim into a
# temporary directory.  Each selected case then runs as its own Perl script
# (preamble + case) against a fresh daemon; see split_cases.py for how cases
# are cut and which ones count as plain relay.
#
# Every case gets its own fake-socket directory (the shim maps every IP
# address:port to a Unix socket path under TEST_SOCKET_PATH), so cases do
# not share ports and can run in parallel.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${UPSTREAM_CACHE:-$REPO/.upstream}
SUITE_VERSION=${UPSTREAM_SUITE_VERSION:-10.5.3.5}
SRC_LIST=/etc/apt/sources.list.d/rtprelay-upstream-src.sources

DAEMON=
SOURCE=
SKIP_UNAVAILABLE=0
LIST=0
ALL=0
STRICT=0
JOBS=1
TIMEOUT=30
KEEP=
EXPECT=
WRITE_PASS=
CASES=()

usage() {
	cat <<EOF
usage: $0 [options]
  --daemon PATH        daemon to test (default: target/release/rtprelay, else target/debug/rtprelay;
                       CARGO_TARGET_DIR is honoured)
  --list               list cases with their selection and exit
  --case PATTERN       run only cases whose id or title matches (grep -E; repeatable);
                       excluded cases run too when they match
  --all                run every case, not only the plain-relay ones
  --jobs N             cases to run in parallel (default $JOBS)
  --timeout SECS       per-case time limit (default $TIMEOUT)
  --keep DIR           put logs in DIR and keep them (default: a temp dir, kept only on failure)
  --source PATH        use this rtpengine tree (a directory holding t/ and perl/, e.g. extracted with
                       git archive TAG t perl LICENSE) or tarball (.orig.tar.gz or the -tests.tar.gz
                       of ../shared/upstream) instead of Debian's source package
  --skip-if-unavailable  exit 0 with a SKIPPED line when the suite source cannot be obtained
  --suite-version V    upstream version of Debian's source package to use (default $SUITE_VERSION)
  --strict             exit 1 when any case fails (default: exit 0 and report counts)
  --expect-pass FILE   exit 1 when a case listed in FILE (one id a line, # comments) does not pass
  --write-pass FILE    write the ids of the cases that passed to FILE (a baseline for --expect-pass)
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
		--daemon) DAEMON=$2; shift 2 ;;
		--list) LIST=1; shift ;;
		--case) CASES+=("$2"); shift 2 ;;
		--all) ALL=1; shift ;;
		--jobs) JOBS=$2; shift 2 ;;
		--timeout) TIMEOUT=$2; shift 2 ;;
		--keep) KEEP=$2; shift 2 ;;
		--source) SOURCE=$2; shift 2 ;;
		--skip-if-unavailable) SKIP_UNAVAILABLE=1; shift ;;
		--suite-version) SUITE_VERSION=$2; shift 2 ;;
		--strict) STRICT=1; shift ;;
		--expect-pass) EXPECT=$2; shift 2 ;;
		--write-pass) WRITE_PASS=$2; shift 2 ;;
		-h|--help) usage; exit 0 ;;
		*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
	esac
done

die() { echo "error: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
	is_root || die "missing packages ($*); run as root or install them"
	log "installing: $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 \
		|| { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends "$@" >&2; }
}

# --- tools and Perl modules ----------------------------------------------

ensure_tools() {
	local pkgs=()
	command -v gcc >/dev/null || pkgs+=(gcc libc6-dev)
	command -v perl >/dev/null || pkgs+=(perl)
	command -v python3 >/dev/null || pkgs+=(python3)
	command -v setsid >/dev/null || pkgs+=(util-linux)
	[ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
}

# Modules `use`d (at compile time) by the harness: AutoTest.pm, Rtpengine.pm,
# Test.pm and the Rtpclient helpers, even where only skipped cases need them.
PERL_MODULES=(
	"Bencode libbencode-perl"
	"Crypt::OpenSSL::RSA libcrypt-openssl-rsa-perl"
	"Crypt::Rijndael libcrypt-rijndael-perl"
	"Digest::CRC libdigest-crc-perl"
	"Digest::HMAC_SHA1 libdigest-hmac-perl"
	"IO::Multiplex libio-multiplex-perl"
	"IO::Socket::IP perl"
	"JSON libjson-perl"
	"Net::Interface libnet-interface-perl"
	"Socket6 libsocket6-perl"
	"Test::More perl"
)

# Modules that only newer suites load (mr26's harness can talk NG over HTTP,
# and its main file uses Test2's comparisons); required only when the tree's
# harness or daemon test files use them, so the 10.5 runs need nothing more.
PERL_MODULES_IF_USED=(
	"LWP::UserAgent libwww-perl"
	"Test2::Tools::Compare libtest2-suite-perl"
)

ensure_perl_modules() {
	local pkgs=() entry mod pkg
	for entry in "${PERL_MODULES[@]}"; do
		mod=${entry% *}
		pkg=${entry#* }
		perl -M"$mod" -e1 2>/dev/null || pkgs+=("$pkg")
	done
	for entry in "${PERL_MODULES_IF_USED[@]}"; do
		mod=${entry% *}
		pkg=${entry#* }
		grep -rqsE "^\s*use ${mod}( |;)" "$SRC/perl" "$SRC"/t/auto-daemon-tests*.pl || continue
		perl -M"$mod" -e1 2>/dev/null || pkgs+=("$pkg")
	done
	[ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
}

# --- the upstream source ---------------------------------------------------

# Newest Debian source versions of rtpengine whose upstream part is $1.
debian_versions() {
	apt-cache showsrc rtpengine 2>/dev/null | sed -n 's/^Version: //p' \
		| grep -E "^([0-9]+:)?${1//./\\.}-" | sort -rV | uniq
}

# Add deb-src entries mirroring the configured deb entries (same mirrors and
# suites), plus $1 (an extra suite such as trixie) when given.
add_deb_src() {
	is_root || die "no deb-src entry for rtpengine; run as root once or pass --source"
	local extra=${1:-}
	{
		if [ -f /etc/apt/sources.list.d/debian.sources ]; then
			sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources
		fi
		if [ -f /etc/apt/sources.list ]; then
			local uri suite comps
			while read -r _ uri suite comps; do
				printf '\nTypes: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n' \
					"$uri" "$suite" "$comps"
			done < <(grep -E '^deb\s' /etc/apt/sources.list | sed -E 's/\[[^]]*\]//')
		fi
		if [ -n "$extra" ]; then
			printf '\nTypes: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\n' "$extra"
			printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
		fi
	} > "$SRC_LIST.tmp"
	mv "$SRC_LIST.tmp" "$SRC_LIST"
	log "added $SRC_LIST; apt-get update"
	apt-get update >&2 || die "apt-get update failed"
}

fetch_debian_source() {
	local dest=$CACHE/rtpengine-$SUITE_VERSION versions v dl orig tmp
	if [ -f "$dest/.complete" ]; then
		echo "$dest"
		return
	fi
	versions=$(debian_versions "$SUITE_VERSION")
	if [ -z "$versions" ]; then
		add_deb_src ""
		versions=$(debian_versions "$SUITE_VERSION")
	fi
	if [ -z "$versions" ]; then
		add_deb_src trixie
		versions=$(debian_versions "$SUITE_VERSION")
	fi
	[ -n "$versions" ] || die "no Debian source package rtpengine $SUITE_VERSION (see apt-cache showsrc rtpengine)"
	dl=$CACHE/dl
	mkdir -p "$dl"
	# apt drops privileges to _apt for downloads when it can write there.
	if id _apt >/dev/null 2>&1 && is_root; then chown _apt "$dl"; fi
	for v in $versions; do
		log "fetching Debian source rtpengine=$v"
		if (cd "$dl" && apt-get source --download-only "rtpengine=$v" >&2); then
			break
		fi
	done
	orig=$(ls "$dl"/rtpengine_"$SUITE_VERSION".orig.tar.* 2>/dev/null | head -n1)
	[ -n "$orig" ] || die "could not download rtpengine_$SUITE_VERSION.orig.tar.*"
	unpack_tarball "$orig" "$dest"
	echo "$dest"
}

unpack_tarball() {
	local tarball=$1 dest=$2 tmp
	tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
	tar -xf "$tarball" -C "$tmp"
	local top
	top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n1)
	[ -f "$top/t/auto-daemon-tests.pl" ] || { rm -rf "$tmp"; die "$tarball has no t/auto-daemon-tests.pl"; }
	rm -rf "$dest"
	mv "$top" "$dest"
	rm -rf "$tmp"
	touch "$dest/.complete"
}

resolve_source() {
	mkdir -p "$CACHE"
	if [ -z "$SOURCE" ]; then
		fetch_debian_source
	elif [ -d "$SOURCE" ]; then
		[ -f "$SOURCE/t/auto-daemon-tests.pl" ] || die "$SOURCE is not an rtpengine source tree"
		(cd "$SOURCE" && pwd)
	elif [ -f "$SOURCE" ]; then
		local dest
		dest=$CACHE/$(basename "$SOURCE" | sed -E 's/\.(tar\.[a-z0-9]+|tgz)$//')
		[ -f "$dest/.complete" ] || unpack_tarball "$SOURCE" "$dest"
		echo "$dest"
	else
		die "--source $SOURCE: no such file or directory"
	fi
}

# --- main ------------------------------------------------------------------

ensure_tools
if ! SRC=$(resolve_source); then
	if [ "$SKIP_UNAVAILABLE" = 1 ]; then
		echo "SKIPPED: rtpengine's test suite source could not be obtained (see above); nothing was run"
		exit 0
	fi
	exit 2
fi
log "suite: $SRC"

if [ -n "$KEEP" ]; then
	mkdir -p "$KEEP"
	WORK=$(cd "$KEEP" && pwd)
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/rtprelay-upstream.XXXXXX")
fi
rm -rf "$WORK/split" "$WORK/run"
# The splitter decides which cases count: check it first (no bytecode in the tree).
PYTHONDONTWRITEBYTECODE=1 python3 "$HERE/test_split_cases.py" >"$WORK/split-check.log" 2>&1 \
	|| { cat "$WORK/split-check.log" >&2; die "test_split_cases.py failed"; }
python3 "$HERE/split_cases.py" --src "$SRC" --out "$WORK/split"
MANIFEST=$WORK/split/manifest.tsv

print_selection() {
	local total sel
	total=$(wc -l < "$MANIFEST")
	sel=$(awk -F'\t' '$2 == 1' "$MANIFEST" | wc -l)
	echo "cases: $total, selected (plain relay): $sel, excluded: $((total - sel))"
	echo "excluded, by reason (a case may have several):"
	awk -F'\t' '$2 == 0 { n = split($5, r, ","); for (i = 1; i <= n; i++) c[r[i]]++ }
		END { for (k in c) printf "  %-18s %d\n", k, c[k] }' "$MANIFEST" | sort -k2 -rn
}

if [ "$LIST" = 1 ]; then
	awk -F'\t' '{ printf "%-14s %-4s %-32s %s%s\n", $1, ($2 == 1 ? "RUN" : "skip"), $3, $4,
		($5 == "" ? "" : "  [" $5 "]") }' "$MANIFEST"
	print_selection
	[ -n "$KEEP" ] || rm -rf "$WORK"
	exit 0
fi

ensure_perl_modules

if [ -z "$DAEMON" ]; then
	target=${CARGO_TARGET_DIR:-$REPO/target}
	for d in "$target/release/rtprelay" "$target/debug/rtprelay"; do
		if [ -x "$d" ]; then DAEMON=$d; break; fi
	done
	[ -n "$DAEMON" ] || die "no daemon: build rtprelay (cargo build --release) or pass --daemon"
fi
DAEMON=$(cd "$(dirname "$DAEMON")" && pwd)/$(basename "$DAEMON")
[ -x "$DAEMON" ] || die "$DAEMON is not executable"
log "daemon: $DAEMON"

# Shims are built per run into the work dir, never into the source tree.
mkdir -p "$WORK/lib"
gcc -O2 -fPIC -shared -o "$WORK/lib/tests-preload.so" "$SRC/t/tests-preload.c" -ldl -lpthread \
	|| die "building tests-preload.so failed"
gcc -O2 -Wall -Wextra -fPIC -shared -o "$WORK/lib/mmsg-shim.so" "$HERE/mmsg-shim.c" -ldl \
	|| die "building mmsg-shim.so failed"
PRELOAD="$WORK/lib/mmsg-shim.so $WORK/lib/tests-preload.so"
gcc -O2 -Wall -Wextra -o "$WORK/lib/mmsg-shim-check" "$HERE/mmsg-shim-check.c" \
	|| die "building mmsg-shim-check failed"
rm -rf "$WORK/lib/check-sockets"
mkdir -p "$WORK/lib/check-sockets"
LD_PRELOAD=$PRELOAD TEST_SOCKET_PATH=$WORK/lib/check-sockets "$WORK/lib/mmsg-shim-check" >&2 \
	|| die "the socket shims do not work on this machine"

# The harness keeps daemon output in self-deleting temp files; this wrapper
# keeps it per case instead.  exec keeps the pid, so SIGINT reaches the daemon.
cat > "$WORK/lib/daemon" <<'EOF'
#!/bin/sh
exec "$UPSTREAM_DAEMON" "$@" >"$UPSTREAM_CASE_DIR/daemon.out" 2>"$UPSTREAM_CASE_DIR/daemon.log"
EOF
chmod +x "$WORK/lib/daemon"

# Which cases to run.
selected=()
while IFS=$'\t' read -r id sel _where title _reasons; do
	if [ ${#CASES[@]} -gt 0 ]; then
		for pat in "${CASES[@]}"; do
			if grep -qE -- "$pat" <<<"$id"$'\n'"$title"; then
				selected+=("$id")
				break
			fi
		done
	elif [ "$ALL" = 1 ] || [ "$sel" = 1 ]; then
		selected+=("$id")
	fi
done < "$MANIFEST"
[ ${#selected[@]} -gt 0 ] || die "no case matches"
print_selection >&2
log "running ${#selected[@]} cases, $JOBS at a time, logs in $WORK/run"

# Run one case in its own session so a timeout can stop it and its daemon
# together; writes the outcome to $WORK/run/<id>/result.
run_case() {
	local id=$1 dir=$WORK/run/$1 pid rc=0 deadline start=$SECONDS
	mkdir -p "$dir/sockets"
	(
		cd "$dir"
		export LD_PRELOAD=$PRELOAD TEST_SOCKET_PATH=$dir/sockets RTPE_BIN=$WORK/lib/daemon \
			UPSTREAM_DAEMON=$DAEMON UPSTREAM_CASE_DIR=$dir TMPDIR=$dir
		exec setsid perl -I"$SRC/perl" "$WORK/split/cases/$id.pl" >"$dir/tap.log" 2>&1
	) &
	pid=$!
	deadline=$((SECONDS + TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if [ $SECONDS -ge $deadline ]; then
			echo "# runner: timeout after ${TIMEOUT}s" >> "$dir/tap.log"
			kill -TERM -- "-$pid" 2>/dev/null || true
			sleep 1
			kill -KILL -- "-$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	wait "$pid" || rc=$?
	# Anything the case left behind (a daemon after a harness crash).
	kill -KILL -- "-$pid" 2>/dev/null || true
	local ok notok plan
	ok=$(grep -c '^ok ' "$dir/tap.log" || true)
	notok=$(grep -c '^not ok ' "$dir/tap.log" || true)
	plan=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$dir/tap.log" | tail -n1)
	local verdict=FAIL
	if [ "$rc" = 0 ] && [ "$notok" = 0 ] && [ "$ok" -gt 0 ] && [ "$plan" = "$ok" ]; then
		verdict=PASS
	fi
	# "up": the daemon answered the harness's ping (an assertion in 10.5's
	# harness; newer ones ping silently and the glue split_cases.py adds
	# reports it).
	local up=0
	grep -qE '^ok .* - ping works|^# runner: ping answered' "$dir/tap.log" && up=1
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$verdict" "$ok" "$notok" "$rc" "$up" \
		$((SECONDS - start)) > "$dir/result.tmp"
	mv "$dir/result.tmp" "$dir/result"
}

# True once STARTUP_GIVEUP cases have finished without the daemon ever
# answering a ping in any case: the daemon does not start, and each further
# case would only wait out the harness's 30 s connect loop.
STARTUP_GIVEUP=3
daemon_never_up() {
	local f down=0
	for f in "$WORK"/run/*/result; do
		[ -f "$f" ] || continue
		if [ "$(cut -f5 "$f")" = 1 ]; then return 1; fi
		down=$((down + 1))
	done
	[ "$down" -ge "$STARTUP_GIVEUP" ]
}

# Why a case failed, in a few lines.
explain() {
	local dir=$1 rc=$2 id
	id=$(basename "$dir")
	if grep -qE '^not ok |^# runner: died at' "$dir/tap.log"; then
		python3 "$HERE/explain.py" "$dir/tap.log" "$WORK/split/cases/$id.pl"
	elif grep -q '^# runner: timeout' "$dir/tap.log"; then
		echo "timed out; last lines:"
		grep -v '^# runner' "$dir/tap.log" | tail -n 3
	elif [ "$rc" = 246 ]; then
		echo "an expected packet did not arrive within 1 s (rcv alarm); last lines:"
		tail -n 3 "$dir/tap.log"
	else
		echo "script exited with status $rc; last lines:"
		tail -n 4 "$dir/tap.log"
	fi | sed 's/^/      /'
}

mkdir -p "$WORK/run"
running=0
gave_up=0
for id in "${selected[@]}"; do
	if [ "$running" -ge "$JOBS" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	if daemon_never_up; then
		gave_up=1
		break
	fi
	run_case "$id" &
	running=$((running + 1))
done
wait || true

passed=0
failed=0
passed_ids=()
asserts_ok=0
asserts_bad=0
declare -A titles
while IFS=$'\t' read -r id _sel _where title _reasons; do titles[$id]=$title; done < "$MANIFEST"
for id in "${selected[@]}"; do
	dir=$WORK/run/$id
	if [ ! -f "$dir/result" ]; then
		printf 'FAIL %-14s not run: the daemon never answered ping  %s\n' "$id" "${titles[$id]}"
		failed=$((failed + 1))
		continue
	fi
	IFS=$'\t' read -r verdict ok notok rc _up secs < "$dir/result"
	asserts_ok=$((asserts_ok + ok))
	asserts_bad=$((asserts_bad + notok))
	printf '%s %-14s %3d passed, %d failed %3ss  %s\n' "$verdict" "$id" "$ok" "$notok" "$secs" "${titles[$id]}"
	if [ "$verdict" = PASS ]; then
		passed=$((passed + 1))
		passed_ids+=("$id")
	else
		failed=$((failed + 1))
		explain "$dir" "$rc"
	fi
done

[ "$gave_up" = 0 ] || echo "stopped early: the daemon answered no ping in $STARTUP_GIVEUP cases (see a daemon.log)"
echo "assertions: $asserts_ok passed, $asserts_bad failed"
if [ "$failed" -gt 0 ] || [ -n "$KEEP" ]; then
	echo "logs: $WORK/run (<case>/tap.log, daemon.log)"
else
	rm -rf "$WORK"
fi
status=0
if [ -n "$WRITE_PASS" ]; then
	printf '%s\n' "${passed_ids[@]}" > "$WRITE_PASS"
fi
if [ -n "$EXPECT" ]; then
	regressions=()
	while read -r id _; do
		case "$id" in ''|'#'*) continue ;; esac
		# A here-string, not a pipe: with pipefail, grep -q quitting early could fail printf (SIGPIPE).
		grep -qxF -- "$id" <<<"$(printf '%s\n' "${passed_ids[@]}")" || regressions+=("$id")
	done < "$EXPECT"
	if [ ${#regressions[@]} -gt 0 ]; then
		echo "expected to pass but did not: ${regressions[*]}"
		status=1
	fi
fi
echo "$passed passed, $failed failed"
if [ "$STRICT" = 1 ] && [ "$failed" -gt 0 ]; then
	status=1
fi
exit $status

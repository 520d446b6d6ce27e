#!/usr/bin/env bash
# build.sh — the one entry point: installs missing Debian packages, builds,
# tests, runs, benchmarks, fuzzes and installs Kubus. `./build.sh help`.
set -euo pipefail

# Debian packages the build, the tests and the benchmarks need. Later issues
# append here (runc, containernetworking-plugins, busybox-static, …).
KUBUS_DEB_PACKAGES=(
	build-essential
	cmake
	pkg-config
	clang                   # fuzz targets (libFuzzer)
	libclang-rt-14-dev      # libFuzzer and sanitizer runtimes for clang
	libnng-dev              # the bus: inproc, ipc, tcp, tls+tcp
	libmsgpack-dev          # envelope and object encoding
	liblmdb-dev             # store-lmdb
	libyaml-dev             # config files, with line/column errors
	libjansson-dev          # store-etcd: etcd v3 JSON gateway
	libjemalloc-dev         # malloc of the programs (see CMakeLists.txt)
	libcurl4-openssl-dev    # store-etcd: HTTP client
	libssl-dev              # token digests, CA and certificates
	libcmocka-dev           # unit tests
	libmicrohttpd-dev       # apiserver: HTTP(S) front (GnuTLS inside)
	zlib1g-dev              # apiserver: gzip responses
	etcd-server             # store-etcd contract tests start a real etcd
	libarchive-dev          # image store: OCI layer tarballs (gzip, whiteouts)
	runc                    # runtime-runc: real containers
	containernetworking-plugins # kubelet: CNI bridge, host-local, loopback
	busybox-static          # the busybox image every fresh cluster has
	iproute2                # tests: network namespaces and veths
	nftables                # proxy-nftables tests and nft(8) for checks
	libnftables-dev         # proxy-nftables: atomic rule sets
	libnftnl-dev            # proxy-nftables: a full sync's elements as netlink messages
	libmnl-dev              # proxy-nftables: the netlink socket under libnftnl
	iptables                # proxy-iptables: iptables-restore
	libldns-dev             # dns: DNS wire format
	bind9-dnsutils          # tests: dig, a real resolver client
	dnsperf                 # tests/bench/dns
)
# "FILE:PACKAGE": install PACKAGE only when FILE is missing, for tools a
# machine may already have from elsewhere (e.g. /usr/bin/kubectl:kubernetes-client).
KUBUS_DEB_IF_MISSING=(
	/usr/bin/kubectl:kubernetes-client   # tests/e2e: the client under test
)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"

BUILD_TYPE=${KUBUS_BUILD_TYPE:-RelWithDebInfo}
JOBS=${KUBUS_JOBS:-$(nproc 2>/dev/null || echo 2)}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

usage()
{
	cat <<'EOF'
usage: ./build.sh [COMMAND] [ARGS]

  (none)                 install missing Debian packages, build into build/
  test                   build and run every test, then again built with
                         ASan+UBSan (build-asan/); ends with
                         "tests: N passed, N failed"
  run [CONFIG] [ARGS]    build, then run build/kubus run -c CONFIG
                         (default configs/single-node.yaml) in the foreground
  bench [NAME] [ARGS]    build and run the benchmark tests/bench/NAME
                         (no NAME: list them)
  fuzz [NAME [SECONDS]]  build the libFuzzer target fuzz-NAME (build-fuzz/,
                         clang) and run it SECONDS (default 60); no NAME: list
  install PREFIX         build into build-install/ and install under PREFIX
  clean                  remove every build directory
  help                   this text

environment:
  KUBUS_TEST_FILTER   ctest -R regex for `test`
  KUBUS_TEST_JOBS     parallel tests for `test` (default 2)
  KUBUS_TEST_ASAN=0   skip the ASan+UBSan run of `test` (CI never does)
  KUBUS_DATA_DIR      data dir for `run` (default data/)
  KUBUS_BUILD_TYPE    CMake build type (default RelWithDebInfo)
  KUBUS_JOBS          parallel compile jobs (default: nproc)
  KUBUS_SKIP_DEPS=1   never call apt-get (missing packages are an error)
EOF
}

# --- Debian packages ------------------------------------------------------

pkg_installed()
{
	dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null |
	    grep -qx installed
}

ensure_packages()
{
	local missing=() p
	command -v dpkg-query >/dev/null 2>&1 || {
		log "no dpkg-query: not Debian; make sure these are installed:" \
		    "${KUBUS_DEB_PACKAGES[*]}"
		return 0
	}
	for p in "${KUBUS_DEB_PACKAGES[@]}"; do
		pkg_installed "$p" || missing+=("$p")
	done
	for p in "${KUBUS_DEB_IF_MISSING[@]}"; do
		[ -e "${p%%:*}" ] || pkg_installed "${p#*:}" ||
		    missing+=("${p#*:}")
	done
	[ ${#missing[@]} -eq 0 ] && return 0

	log "missing Debian packages: ${missing[*]}"
	[ "${KUBUS_SKIP_DEPS:-0}" = 1 ] &&
	    die "KUBUS_SKIP_DEPS=1: install them: apt-get install ${missing[*]}"
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 ||
		    die "not root and no sudo: as root run apt-get install ${missing[*]}"
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update || return
	"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" ||
	    return
}

# --- builds ---------------------------------------------------------------

# configure DIR [CMAKE ARGS…]. Callers may run inside `if`, where set -e is
# off: every step below checks its own status.
configure()
{
	local dir=$1
	shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "$@" >&2
}

build_dir()
{
	local dir=$1
	shift
	ensure_packages || return
	# Configure every time: it is cheap, and the CMake files glob for plugin,
	# test and bench folders, which a plain rebuild would not see appear.
	configure "$dir" "$@" || return
	cmake --build "$dir" -j"$JOBS" >&2 || return
	busybox_image "$dir"
}

build() { build_dir build; }

# DIR/images/busybox.tar: the oci-archive of docker.io/library/busybox:latest
# that every fresh cluster has (runtime-runc imports <plugins>/../images/*.tar).
# Made from Debian's busybox-static, again only when missing or older than
# DIR/kubus.
busybox_image()
{
	local dir=$1 bb=/bin/busybox root a rc=0
	local out=$dir/images/busybox.tar
	[ -x "$dir/kubus" ] || return 0
	[ -f "$out" ] && [ "$out" -nt "$dir/kubus" ] && return 0
	[ -x "$bb" ] || { log "no $bb (busybox-static): no busybox image"; return 0; }
	log "busybox image $out"
	root=$(mktemp -d) || return
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/www,dev,proc,sys} \
	    "$dir/images" &&
	    cp "$bb" "$root/bin/busybox" &&
	    chmod 1777 "$root/tmp" && chmod 700 "$root/root" || rc=1
	# Each applet where busybox would install it (bin/sh, usr/bin/wget, …).
	while read -r a; do
		[ "$a" = bin/busybox ] || [ -e "$root/$a" ] ||
		    ln -s /bin/busybox "$root/$a" || rc=1
	done < <("$root/bin/busybox" --list-full)
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
	    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$root/etc/group"
	[ "$rc" = 0 ] && "$dir/kubus" image build docker.io/library/busybox:latest \
	    "$root" --cmd sh \
	    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	    --out "$out" >/dev/null || rc=1
	rm -rf "$root"
	[ "$rc" = 0 ] || log "busybox image: failed"
	return "$rc"
}

# --- test -----------------------------------------------------------------

PASSED=0
FAILED=0
SKIPPED=0

# run_ctest DIR LABEL: run ctest in DIR, add its counts to the totals.
# Returns ctest's status.
run_ctest()
{
	local dir=$1 label=$2 log rc=0 args
	log="$dir/ctest-summary.log"
	args=(--test-dir "$dir" --output-on-failure -j"${KUBUS_TEST_JOBS:-2}")
	[ -n "${KUBUS_TEST_FILTER:-}" ] && args+=(-R "$KUBUS_TEST_FILTER")
	log "ctest ($label)"
	ctest "${args[@]}" 2>&1 | tee "$log" || rc=$?

	local line total failed skipped
	line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" |
	    tail -n1 || true)
	if [ -n "$line" ]; then
		failed=$(sed -E 's/.* ([0-9]+) tests? failed.*/\1/' <<<"$line")
		total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
		# ctest counts skipped tests (SKIP_RETURN_CODE) among the passed.
		skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)$' "$log" || true)
		PASSED=$((PASSED + total - failed - skipped))
		FAILED=$((FAILED + failed))
		SKIPPED=$((SKIPPED + skipped))
	elif grep -q 'No tests were found' "$log"; then
		log "$label: no tests"
	elif [ "$rc" -ne 0 ]; then
		log "$label: ctest failed without a summary (counted as 1 failure)"
		FAILED=$((FAILED + 1))
	fi
	return "$rc"
}

summary()
{
	local s="tests: $PASSED passed, $FAILED failed"
	[ "$SKIPPED" -gt 0 ] && s+=", $SKIPPED skipped"
	printf '%s\n' "$s"
}

# DIR/kubectl-old/usr/bin/kubectl: Debian's kubectl 1.20 beside the default
# one, for tests/e2e's old-client checks. Fetched as a package (apt-get
# download, unpacked with dpkg -x), never installed over /usr/bin/kubectl.
old_kubectl()
{
	local dir=$1 tmp
	[ -x "$dir/kubectl-old/usr/bin/kubectl" ] && return 0
	command -v apt-get >/dev/null 2>&1 || return 0
	tmp=$(mktemp -d) || return 0
	if (cd "$tmp" && { apt-get download kubernetes-client >/dev/null 2>&1 ||
	    { apt-get update >/dev/null 2>&1 &&
	      apt-get download kubernetes-client >/dev/null 2>&1; }; }); then
		mkdir -p "$dir/kubectl-old" &&
		    dpkg -x "$tmp"/kubernetes-client_*.deb "$dir/kubectl-old" ||
		    log "kubectl 1.20: cannot unpack the package"
	else
		log "kubectl 1.20: apt-get download kubernetes-client failed; its e2e checks will say so"
	fi
	rm -rf "$tmp"
}

# intercept_tls_get_addr=0: GCC 12's sanitizer runtime takes a dynamic TLS
# block that happens to start 16 bytes into a page for glibc 2.19's layout
# and records a garbage range, which LeakSanitizer's exit scan then reads:
# "Tracer caught signal 11" after every check passed, more often under load
# (google/sanitizers#1322, fixed after GCC 13). Plugins are dlopen-ed, so
# their libraries' thread-locals (gnutls, p11-kit …) are dynamic TLS. Leak
# checking is otherwise unchanged; dynamic TLS is just not a root.
# core/sanitize.h builds the same defaults into the test programs and kubus.
sanitizer_env()
{
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:intercept_tls_get_addr=0}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
}

cmd_test()
{
	local rc=0 built=1
	if build; then
		old_kubectl build
		run_ctest build "build" || rc=1
	else
		log "build failed (counted as 1 failure)"
		FAILED=$((FAILED + 1))
		rc=1
		built=0
	fi

	# The ASan build would only fail the same way as a plain one that failed.
	if [ "${KUBUS_TEST_ASAN:-1}" != 0 ] && [ "$built" = 1 ]; then
		sanitizer_env
		if build_dir build-asan -DKUBUS_SANITIZE=ON; then
			old_kubectl build-asan
			run_ctest build-asan "build-asan, ASan+UBSan" || rc=1
		else
			log "ASan build failed (counted as 1 failure)"
			FAILED=$((FAILED + 1))
			rc=1
		fi
	fi
	[ "$FAILED" -gt 0 ] && rc=1
	summary
	return "$rc"
}

# --- run, bench -----------------------------------------------------------

cmd_run()
{
	local config=${1:-configs/single-node.yaml}
	[ $# -gt 0 ] && shift
	build
	[ -f "$config" ] || die "no config file $config"
	local data
	# Absolute, so what the host prints (KUBECONFIG=…) works from anywhere.
	data=$(realpath -m "${KUBUS_DATA_DIR:-data}")
	mkdir -p "$data"
	exec build/kubus run -c "$config" --data-dir "$data" "$@"
}

list_benches()
{
	local d
	for d in tests/bench/*/; do
		[ -d "$d" ] && basename "$d"
	done
}

cmd_bench()
{
	if [ $# -eq 0 ]; then
		echo "benchmarks (./build.sh bench NAME):"
		list_benches | sed 's/^/  /'
		return 0
	fi
	local name=$1
	shift
	[ -d "tests/bench/$name" ] || die "no benchmark tests/bench/$name"
	build
	export KUBUS_BUILD="$ROOT/build" KUBUS_SRC="$ROOT"
	if [ -x "tests/bench/$name/run" ]; then
		exec "tests/bench/$name/run" "$@"
	elif [ -x "build/tests/bench/bench-$name" ]; then
		exec "build/tests/bench/bench-$name" "$@"
	fi
	die "benchmark $name has neither tests/bench/$name/run nor build/tests/bench/bench-$name"
}

# --- fuzz -----------------------------------------------------------------

list_fuzz()
{
	local f n
	for f in tests/fuzz/fuzz_*.c; do
		[ -f "$f" ] || continue
		n=$(basename "$f" .c)
		echo "${n#fuzz_}"
	done
}

cmd_fuzz()
{
	if [ $# -eq 0 ]; then
		if [ -z "$(list_fuzz)" ]; then
			echo "no fuzz targets (tests/fuzz/fuzz_*.c)"
		else
			echo "fuzz targets (./build.sh fuzz NAME [SECONDS]):"
			list_fuzz | sed 's/^/  /'
		fi
		return 0
	fi
	local name=$1 secs=${2:-60}
	shift
	if [ $# -gt 0 ]; then
		shift # the rest goes to libFuzzer
	fi
	[ -f "tests/fuzz/fuzz_$name.c" ] || die "no fuzz target tests/fuzz/fuzz_$name.c"
	[[ $secs =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, not $secs"

	ensure_packages
	# CC counts only when build-fuzz/ is new: it stays clang from then on.
	CC=clang configure build-fuzz -DKUBUS_FUZZ=ON -DKUBUS_SANITIZE=ON
	cmake --build build-fuzz -j"$JOBS" --target "fuzz-$name" >&2

	local corpus=build-fuzz/corpus/$name artifacts=build-fuzz/artifacts/$name
	mkdir -p "$corpus" "$artifacts"
	if [ -d "tests/fuzz/$name" ]; then
		cp -r "tests/fuzz/$name/." "$corpus/"
	fi
	log "fuzz-$name for ${secs}s (corpus $corpus)"
	sanitizer_env
	"build-fuzz/fuzz/fuzz-$name" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$artifacts/" "$@" "$corpus"
}

# --- install, clean -------------------------------------------------------

cmd_install()
{
	[ $# -eq 1 ] || die "usage: ./build.sh install PREFIX"
	local prefix
	prefix=$(realpath -m "$1")
	build_dir build-install -DCMAKE_INSTALL_PREFIX="$prefix"
	cmake --install build-install
	log "installed under $prefix"
}

cmd_clean()
{
	rm -rf build build-asan build-fuzz build-install
}

case ${1:-} in
"") build ;;
test) shift; cmd_test "$@" ;;
run) shift; cmd_run "$@" ;;
bench) shift; cmd_bench "$@" ;;
fuzz) shift; cmd_fuzz "$@" ;;
install) shift; cmd_install "$@" ;;
clean) cmd_clean ;;
help|-h|--help) usage ;;
*) usage >&2; exit 2 ;;
esac

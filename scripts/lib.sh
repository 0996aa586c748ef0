# shellcheck shell=bash
# Helpers shared by Valdock's scripts. Source this file; do not run it.
#
#   . "$(dirname "$0")/lib.sh"      (from a script in scripts/)
#
# After sourcing: VALDOCK_ROOT is the repository root (absolute, symlinks resolved), and these functions exist:
#   say MSG...              one log line on stderr, prefixed with the script's name
#   warn MSG...             the same, marked as a warning
#   die MSG...              log an error and exit 1
#   have CMD                true when CMD is on PATH
#   docker_socket_ok        true when the local engine answers GET /_ping on $VALDOCK_DOCKER_SOCK
#   valkey_version          prints the host valkey-server's version, e.g. 8.0.1
#   ensure_configure        runs autoreconf -fi when configure is missing or older than its inputs
#   build_tree NAME [ARGS]  configures (when needed) and builds the C code in _build/NAME

if [[ -n ${VALDOCK_LIB_LOADED:-} ]]; then
	return 0
fi
VALDOCK_LIB_LOADED=1

VALDOCK_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
export VALDOCK_ROOT

: "${VALDOCK_DOCKER_SOCK:=/var/run/docker.sock}"
: "${VALDOCK_JOBS:=2}"

say() {
	printf '%s: %s\n' "${VALDOCK_LOG_TAG:-$(basename -- "$0")}" "$*" >&2
}

warn() {
	say "warning: $*"
}

die() {
	say "error: $*"
	exit 1
}

have() {
	command -v "$1" >/dev/null 2>&1
}

docker_socket_ok() {
	[[ -S $VALDOCK_DOCKER_SOCK ]] || return 1
	local answer
	answer=$(curl -fsS --max-time 3 --unix-socket "$VALDOCK_DOCKER_SOCK" http://localhost/_ping 2>/dev/null) || return 1
	[[ $answer == OK ]]
}

valkey_version() {
	local line
	line=$(valkey-server --version 2>/dev/null) || die "valkey-server --version failed (is valkey-server installed?)"
	# "Valkey server v=8.0.1 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=..."
	if [[ $line =~ (^|[[:space:]])v=([0-9]+\.[0-9]+\.[0-9]+)([[:space:]]|$) ]]; then
		printf '%s\n' "${BASH_REMATCH[2]}"
	else
		die "cannot read a version from: $line"
	fi
}

# True when configure is missing or older than one of its inputs (configure.ac, any Makefile.am, m4/*.m4), or a
# Makefile.am has no Makefile.in at least as new.
configure_is_stale() {
	local src=$VALDOCK_ROOT
	[[ -x $src/configure ]] || return 0
	local am newer
	while IFS= read -r -d '' am; do
		[[ -f ${am%.am}.in && ! $am -nt ${am%.am}.in ]] || return 0
	done < <(find "$src" -maxdepth 3 \( -name .git -o -name _build -o -name node_modules -o -name frontend \) -prune \
		-o -name Makefile.am -print0)
	newer=$(find "$src" -maxdepth 3 \
		\( -name .git -o -name _build -o -name node_modules -o -name frontend -o -name autom4te.cache \) -prune \
		-o \( -name configure.ac -o -name Makefile.am -o -path "$src/m4/*.m4" \) -newer "$src/configure" -print -quit)
	[[ -n $newer ]]
}

ensure_configure() {
	local src=$VALDOCK_ROOT
	[[ -f $src/configure.ac ]] || die "no configure.ac in $src"
	if configure_is_stale; then
		say "autoreconf -fi"
		if ! (cd "$src" && autoreconf -fi); then
			rm -f "$src/configure" # half-done: make the next run try again
			die "autoreconf failed"
		fi
	fi
}

# build_tree NAME [configure args...]
# Builds the C code out of tree in $VALDOCK_ROOT/_build/NAME. configure runs only when the tree has no Makefile yet or
# the arguments differ from the last successful configure (then the tree is emptied first, so every object is built with
# the new flags); make always runs (fast when nothing changed). --enable-werror is always added.
build_tree() {
	[[ $# -ge 1 ]] || die "usage: build_tree NAME [configure args...]"
	local name=$1
	shift
	[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "build_tree: bad tree name '$name'"
	local src=$VALDOCK_ROOT
	local dir=$src/_build/$name
	local args=("$@")

	ensure_configure
	if [[ -f $src/config.status ]]; then
		die "$src is configured in tree (config.status exists): run 'make distclean' there, builds go to _build/"
	fi
	# warnings are errors in every build, so CI's trees and a developer's are the same
	if [[ " ${args[*]} " != *" --enable-werror "* ]]; then
		if "$src/configure" --help | grep -q -- '--enable-werror'; then
			args+=(--enable-werror)
		else
			warn "configure has no --enable-werror; building without it"
		fi
	fi

	local stamp=$dir/.valdock-configure-args
	local wanted=""
	if [[ ${#args[@]} -gt 0 ]]; then
		wanted=$(printf '%q ' "${args[@]}")
	fi
	if [[ ! -f $dir/Makefile || ! -f $stamp || $(<"$stamp") != "$wanted" ]]; then
		# New or different arguments: start from an empty tree, as make does not rebuild objects for changed flags.
		rm -rf "$dir"
		mkdir -p "$dir"
		say "configuring _build/$name${args[*]:+ (${args[*]})}"
		(cd "$dir" && ../../configure "${args[@]}") || die "configure failed in _build/$name (see _build/$name/config.log)"
		printf '%s' "$wanted" >"$stamp"
	fi
	say "make -j$VALDOCK_JOBS in _build/$name"
	make -C "$dir" --no-print-directory -j"$VALDOCK_JOBS" || die "make failed in _build/$name"
}

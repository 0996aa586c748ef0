#!/usr/bin/env bash
# Benchmark, not a test: GET /api/v1/system/health (nginx -> FastCGI pool -> store) against a small static file served
# by the same nginx, on a stack that is already running. Runs alternate (static, api, static, api, ...) so that drift of
# the machine hits both alike, and the table puts the two side by side with the targets:
#   health p99 < 15 ms at 32 connections;  health throughput >= 15% of the static file's.
#
#   tests/bench/health.sh
#
# Environment (defaults):
#   VALDOCK_URL        http://127.0.0.1:8080   the stack's nginx
#   STATIC_PATH        the first of /robots.txt /favicon.svg /favicon.png /favicon.ico that the server has:
#                      a small static file under the web root
#   API_PATH           /api/v1/system/health
#   BENCH_THREADS      2       wrk threads
#   BENCH_CONNECTIONS  32      wrk connections
#   BENCH_DURATION     15      seconds per run
#   BENCH_ROUNDS       2       rounds of (static, api)
#   BENCH_WARMUP       2       seconds of unmeasured load on each URL first (0: none)
#   BENCH_OUT          -       a directory to keep wrk's raw output in
#   BENCH_STRICT       0       1: exit 1 when a target is missed
# Exit: 0 done (targets missed or not, unless BENCH_STRICT=1), 1 results invalid (errors, non-2xx) or stack not ready.
# Note: wrk shares the machine's cores with nginx and the pool, so figures are for comparison on one machine.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
# shellcheck source=tests/bench/wrk.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/wrk.sh"

URL=${VALDOCK_URL:-http://127.0.0.1:8080}
URL=${URL%/}
STATIC_PATH=${STATIC_PATH:-}
API_PATH=${API_PATH:-/api/v1/system/health}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-15}
ROUNDS=${BENCH_ROUNDS:-2}
WARMUP=${BENCH_WARMUP:-2}
STRICT=${BENCH_STRICT:-0}
P99_TARGET_MS=15
RATIO_TARGET_PCT=15

for v in THREADS CONNS DURATION ROUNDS WARMUP; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ $ROUNDS -ge 1 && $DURATION -ge 1 ]] || die "BENCH_ROUNDS and BENCH_DURATION must be at least 1"
have wrk || die "wrk is not installed (apt-get install wrk)"
have curl || die "curl is not installed"

# probe PATH: prints "CODE CONTENT-TYPE" of GET $URL$PATH
probe() {
	curl -s -o /dev/null -w '%{http_code} %{content_type}' --max-time 5 "$URL$1" || true
}

# True when PATH answers 200 with the file itself, not the SPA's index.html (the fallback for unknown paths).
is_static_file() {
	local answer
	answer=$(probe "$1")
	[[ $answer == "200 "* ]] || return 1
	[[ $1 == *.html || $1 == */ || ${answer#200 } != text/html* ]]
}

# Both URLs must answer 200 before anything is measured: a fast error page is no result.
code=$(probe "$API_PATH")
[[ $code == "200 "* ]] || die "GET $URL$API_PATH answered '${code% *}' (want 200): is the stack up?"
if [[ -z $STATIC_PATH ]]; then
	for p in /robots.txt /favicon.svg /favicon.png /favicon.ico; do
		if is_static_file "$p"; then
			STATIC_PATH=$p
			break
		fi
	done
	[[ -n $STATIC_PATH ]] || die "no small static file found at $URL (tried robots.txt, favicon.*): set STATIC_PATH"
elif ! is_static_file "$STATIC_PATH"; then
	die "GET $URL$STATIC_PATH answered '$(probe "$STATIC_PATH")', not a static file (want 200, and not the SPA's index.html)"
fi

out=${BENCH_OUT:-}
if [[ -n $out ]]; then
	mkdir -p "$out"
else
	out=$(mktemp -d "${TMPDIR:-/tmp}/valdock-bench.XXXXXX")
	trap 'rm -rf "$out"' EXIT
fi

# run NAME PATH SECONDS: runs wrk, keeps its output in $out/NAME.txt
run() {
	wrk_run "$out/$1.txt" "$URL$2" "$3" "$THREADS" "$CONNS"
}

say "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, $ROUNDS rounds of (static, api), ${WARMUP}s warm-up each, on $(nproc) cores"
if [[ $WARMUP -gt 0 ]]; then
	run warmup-static "$STATIC_PATH" "$WARMUP"
	run warmup-api "$API_PATH" "$WARMUP"
fi
declare -a s_res a_res
for ((r = 1; r <= ROUNDS; r++)); do
	say "round $r/$ROUNDS: static $STATIC_PATH"
	run "static-$r" "$STATIC_PATH" "$DURATION"
	s_res[r]=$(wrk_parse "$out/static-$r.txt") || die "cannot read wrk output $out/static-$r.txt"
	say "round $r/$ROUNDS: api $API_PATH"
	run "api-$r" "$API_PATH" "$DURATION"
	a_res[r]=$(wrk_parse "$out/api-$r.txt") || die "cannot read wrk output $out/api-$r.txt"
done

rows=""
for ((r = 1; r <= ROUNDS; r++)); do
	rows+="$r ${s_res[r]} ${a_res[r]}"$'\n'
done

printf '%s' "$rows" | awk -v url="$URL" -v sp="$STATIC_PATH" -v ap="$API_PATH" -v conns="$CONNS" \
	-v p99t="$P99_TARGET_MS" -v ratiot="$RATIO_TARGET_PCT" -v strict="$STRICT" '
	function verdict(ok) { return ok ? "PASS" : "MISS" }
	{
		n++
		# fields: round | static: rps p50 p99 reqs errs non2xx | api: rps p50 p99 reqs errs non2xx
		line[n] = sprintf("%-7s %12.1f %9.3f %9.3f    %12.1f %9.3f %9.3f   %8.1f%%", $1, $2, $3, $4, $8, $9, $10, 100 * $8 / $2)
		srps += $2; sp50 += $3; if ($4 > sp99) sp99 = $4
		arps += $8; ap50 += $9; if ($10 > ap99) ap99 = $10
		bad = ""
		if ($6 + $7 > 0) bad = bad sprintf(" static: %d socket errors, %d non-2xx;", $6, $7)
		if ($12 + $13 > 0) bad = bad sprintf(" api: %d socket errors, %d non-2xx;", $12, $13)
		if (bad != "") { invalid = invalid sprintf("  round %d:%s\n", $1, bad) }
	}
	END {
		ratio = 100 * arps / srps
		printf "\nValdock health benchmark, %s, %d connections\n\n", url, conns
		printf "%-7s %-32s    %s\n", "", "static " sp, "api " ap
		printf "%-7s %12s %9s %9s    %12s %9s %9s   %9s\n", "round", "req/s", "p50 ms", "p99 ms", "req/s", "p50 ms", "p99 ms", "api/static"
		for (i = 1; i <= n; i++) print line[i]
		printf "%-7s %12.1f %9.3f %9.3f    %12.1f %9.3f %9.3f   %8.1f%%\n", "all", srps / n, sp50 / n, sp99, arps / n, ap50 / n, ap99, ratio
		printf "(all: mean req/s, mean p50, worst p99 over the rounds)\n\n"
		p99ok = ap99 < p99t; ratiook = ratio >= ratiot
		printf "target  health p99 < %d ms at %d connections   %9.3f ms   %s\n", p99t, conns, ap99, verdict(p99ok)
		printf "target  health throughput >= %d%% of static     %8.1f%%      %s\n", ratiot, ratio, verdict(ratiook)
		if (invalid != "") {
			printf "\nINVALID: some requests failed, the figures above do not count:\n%s", invalid
			exit 1
		}
		if (strict == 1 && !(p99ok && ratiook)) exit 1
	}'

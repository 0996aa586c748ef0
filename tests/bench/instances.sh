#!/usr/bin/env bash
# Benchmark, not a test: instances on a stack that is already running, with the local Valkey image.
#
#  (a) create-to-ready: N instances through POST /api/v1/instances against N raw
#        docker run -d -p 127.0.0.1:PORT:6379 IMAGE --port 6379 --protected-mode no
#      interleaved (valdock, raw, valdock, raw, ...), each timed from the request (or `docker run`) to the first PONG
#      of `valkey-cli -p PORT ping` (as the user given at create for Valdock's, which refuses the default user).
#      `--protected-mode no` is the one addition to the raw command: without it the server answers DENIED to any
#      client that comes through docker-proxy (not from its own loopback), and never PONG.
#      Target: median(valdock) / median(raw) <= 1.25.
#  (b) list: creates BENCH_LIST_N instances (memory 16mb each; stops at the first failure and says how many it made),
#      then wrk -t2 -c32 -d15s --latency on GET /api/v1/instances through nginx next to a static file of the same nginx,
#      p50 / p99 / req/s side by side. Target: p99 of the list under 15 ms.
# Everything it made (instances, raw containers) is deleted on exit, also on failure or Ctrl-C.
#
#   tests/bench/instances.sh
#
# Environment (defaults):
#   VALDOCK_URL        http://127.0.0.1:8080   the stack's nginx
#   BENCH_IMAGE        valdock/valkey:local    the image of the raw containers (set the stack's fallback/instance
#                                              image to the same one for a fair comparison)
#   BENCH_READY_N      10      instances of each kind in (a)
#   BENCH_LIST_N       100     instances held during (b); 0 skips (b)
#   BENCH_LIST_MEMORY  16mb    memory of each instance in (b)
#   BENCH_PORT_BASE    random in 20000-29999   first host port tried; ports in use are skipped
#   STATIC_PATH        /favicon.svg            the static file (b) compares with
#   BENCH_THREADS      2       wrk threads
#   BENCH_CONNECTIONS  32      wrk connections
#   BENCH_DURATION     15      seconds per wrk run
#   BENCH_WARMUP       2       seconds of unmeasured load on each URL first (0: none)
#   BENCH_STRICT       0       1: exit 1 when a target is missed
# Exit: 0 done (targets missed or not, unless BENCH_STRICT=1), 1 invalid results or the stack is not ready.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
# shellcheck source=tests/bench/wrk.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/wrk.sh"

URL=${VALDOCK_URL:-http://127.0.0.1:8080}
URL=${URL%/}
IMAGE=${BENCH_IMAGE:-valdock/valkey:local}
READY_N=${BENCH_READY_N:-10}
LIST_N=${BENCH_LIST_N:-100}
LIST_MEMORY=${BENCH_LIST_MEMORY:-16mb}
STATIC_PATH=${STATIC_PATH:-/favicon.svg}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-15}
WARMUP=${BENCH_WARMUP:-2}
STRICT=${BENCH_STRICT:-0}
RATIO_TARGET=1.25
P99_TARGET_MS=15
API=/api/v1/instances

for v in READY_N LIST_N THREADS CONNS DURATION WARMUP; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ $READY_N -ge 1 && $DURATION -ge 1 ]] || die "BENCH_READY_N and BENCH_DURATION must be at least 1"
for prog in curl docker valkey-cli wrk jq; do
	have "$prog" || die "$prog is not installed"
done

TAG=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
PASS=bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
PORT=${BENCH_PORT_BASE:-$((20000 + (RANDOM % 200) * 50))}
[[ $PORT =~ ^[0-9]+$ && $PORT -ge 1024 && $PORT -le 65000 ]] || die "BENCH_PORT_BASE must be from 1024 to 65000"
out=$(mktemp -d "${TMPDIR:-/tmp}/valdock-bench.XXXXXX")
declare -a MADE=() # Valdock instances this run created and has not deleted

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
	local rc=$? n ids
	trap - EXIT INT TERM
	if [[ ${#MADE[@]} -gt 0 ]]; then
		say "cleanup: deleting ${#MADE[@]} instance(s)"
		for n in "${MADE[@]}"; do
			curl -s -o /dev/null --max-time 60 -X DELETE "$URL$API/$n" || true
		done
	fi
	ids=$(docker ps -aq --filter "label=io.valdock.bench=$TAG" 2>/dev/null || true)
	if [[ -n $ids ]]; then
		say "cleanup: removing raw containers"
		# shellcheck disable=SC2086
		docker rm -f $ids >/dev/null 2>&1 || true
	fi
	rm -rf "$out"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() {
	local ns
	ns=$(date +%s%N)
	printf '%s\n' $((ns / 1000000))
}

# true when something accepts connections on 127.0.0.1:$1
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# next_port: sets NEXT_PORT to the next port from the cursor that nothing listens on, and moves the cursor past it
next_port() {
	while port_busy "$PORT"; do
		PORT=$((PORT + 1))
	done
	[[ $PORT -le 65535 ]] || die "ran out of ports"
	NEXT_PORT=$PORT
	PORT=$((PORT + 1))
}

# wait_pong PORT [valkey-cli auth args...]: polls until the server answers PONG (60 s at most)
wait_pong() {
	local port=$1 i
	shift
	for ((i = 0; i < 6000; i++)); do
		if [[ $(valkey-cli -h 127.0.0.1 -p "$port" "$@" ping 2>/dev/null) == PONG ]]; then
			return 0
		fi
		sleep 0.01
	done
	return 1
}

# vd_create NAME MEMORY: creates an instance on a free port (trying the next one when Valdock says the port is taken);
# sets VD_PORT to its port. Returns 1 (with Valdock's answer in $out/create.json) when it cannot.
vd_create() {
	local name=$1 mem=$2 port code tries
	for ((tries = 0; tries < 20; tries++)); do
		next_port
		port=$NEXT_PORT
		code=$(curl -s -o "$out/create.json" -w '%{http_code}' --max-time 120 -H 'Content-Type: application/json' \
			-d "{\"name\":\"$name\",\"port\":$port,\"memory\":\"$mem\",\"users\":[{\"username\":\"bench\",\"password\":\"$PASS\"}]}" \
			"$URL$API") || code=000
		if [[ $code == 201 ]]; then
			MADE+=("$name")
			VD_PORT=$port
			return 0
		fi
		if [[ $code == 409 ]] && grep -qE '"code":"(port_taken|port_in_use)"' "$out/create.json"; then
			continue
		fi
		return 1
	done
	return 1
}

vd_delete() {
	local name=$1 i
	curl -s -o /dev/null --max-time 60 -X DELETE "$URL$API/$name" || true
	for i in "${!MADE[@]}"; do
		[[ ${MADE[i]} == "$name" ]] && unset 'MADE[i]'
	done
	MADE=("${MADE[@]}")
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --------------------------------------------------------------------------
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/api/v1/system/health" || true)
[[ $code == 200 ]] || die "GET $URL/api/v1/system/health answered '$code' (want 200): is the stack up?"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE is not present (scripts/setup image)"
settings=$(curl -s --max-time 5 "$URL/api/v1/system/settings")
say "stack $URL: instance_image $(jq -r .instance_image <<<"$settings"), fallback_image $(jq -r .fallback_image <<<"$settings"); raw image $IMAGE; $(nproc) cores"

# --------------------------------------------------------------------------
# (a) create-to-ready, interleaved
say "(a) create-to-ready: $READY_N x (valdock, raw), interleaved"
: >"$out/vd.ms"
: >"$out/raw.ms"
for ((i = 1; i <= READY_N; i++)); do
	name=b${TAG}v$i
	t0=$(now_ms)
	vd_create "$name" 256mb || die "create $name failed: $(cat "$out/create.json")"
	port=$VD_PORT
	wait_pong "$port" --user bench --pass "$PASS" --no-auth-warning || die "$name on port $port never answered PONG"
	t1=$(now_ms)
	echo $((t1 - t0)) >>"$out/vd.ms"

	next_port
	rport=$NEXT_PORT
	t0=$(now_ms)
	docker run -d --name "vdbench-$TAG-r$i" --label "io.valdock.bench=$TAG" -p "127.0.0.1:$rport:6379" "$IMAGE" \
		--port 6379 --protected-mode no >/dev/null || die "docker run failed"
	wait_pong "$rport" || die "raw container on port $rport never answered PONG"
	t1=$(now_ms)
	echo $((t1 - t0)) >>"$out/raw.ms"
	say "  $i: valdock $(tail -n1 "$out/vd.ms") ms, raw $(tail -n1 "$out/raw.ms") ms"
done
vd_med=$(median <"$out/vd.ms")
raw_med=$(median <"$out/raw.ms")
say "(a) deleting what it made"
for ((i = 1; i <= READY_N; i++)); do
	vd_delete "b${TAG}v$i"
done
ids=$(docker ps -aq --filter "label=io.valdock.bench=$TAG")
# shellcheck disable=SC2086
[[ -z $ids ]] || docker rm -f $ids >/dev/null

# --------------------------------------------------------------------------
# (b) the list with many instances, next to a static file
list_made=0
if [[ $LIST_N -gt 0 ]]; then
	say "(b) creating $LIST_N instances of $LIST_MEMORY"
	t0=$(now_ms)
	for ((i = 1; i <= LIST_N; i++)); do
		name=b${TAG}l$i
		if ! vd_create "$name" "$LIST_MEMORY"; then
			warn "create $i of $LIST_N failed, continuing with $list_made: $(cat "$out/create.json")"
			break
		fi
		list_made=$i
		if ((i % 20 == 0)); then say "  $i created"; fi
	done
	create_s=$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
	count=$(curl -s --max-time 10 "$URL$API" | jq .count)
	running=$(curl -s --max-time 10 "$URL$API" | jq '[.instances[] | select(.status == "running")] | length')
	bytes=$(curl -s -o /dev/null -w '%{size_download}' --max-time 10 "$URL$API")
	say "  made $list_made in ${create_s}s; the list holds $count instance(s), $running running, $bytes bytes"
	sc=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' --max-time 5 "$URL$STATIC_PATH" || true)
	[[ $sc == "200 "* && ${sc#200 } != text/html* ]] || die "GET $URL$STATIC_PATH answered '$sc', not a static file"

	run() {
		wrk_run "$out/$1.txt" "$URL$2" "$3" "$THREADS" "$CONNS"
	}
	say "(b) wrk -t$THREADS -c$CONNS -d${DURATION}s --latency: static $STATIC_PATH, then $API"
	if [[ $WARMUP -gt 0 ]]; then
		run warm-static "$STATIC_PATH" "$WARMUP"
		run warm-api "$API" "$WARMUP"
	fi
	run static "$STATIC_PATH" "$DURATION"
	run api "$API" "$DURATION"
	read -r s_rps s_p50 s_p99 s_reqs s_errs s_non <<<"$(wrk_parse "$out/static.txt")" || die "cannot read wrk output"
	read -r a_rps a_p50 a_p99 a_reqs a_errs a_non <<<"$(wrk_parse "$out/api.txt")" || die "cannot read wrk output"
	say "(b) deleting $list_made instances"
	t0=$(now_ms)
	for ((i = 1; i <= list_made; i++)); do
		vd_delete "b${TAG}l$i"
	done
	delete_s=$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
fi

# --------------------------------------------------------------------------
printf '\nValdock instances benchmark, %s, %s cores\n\n' "$URL" "$(nproc)"
printf '(a) create-to-ready (first PONG), %d each, interleaved\n' "$READY_N"
printf '    valdock POST %s  ms: %s\n' "$API" "$(tr '\n' ' ' <"$out/vd.ms")"
printf '    raw docker run       ms: %s\n' "$(tr '\n' ' ' <"$out/raw.ms")"
ratio=$(awk -v a="$vd_med" -v b="$raw_med" 'BEGIN { printf "%.2f", a / b }')
ok_a=$(awk -v r="$ratio" -v t="$RATIO_TARGET" 'BEGIN { print (r <= t) ? "PASS" : "MISS" }')
printf '    median: valdock %s ms, raw %s ms, ratio %s   target <= %s   %s\n\n' "$vd_med" "$raw_med" "$ratio" \
	"$RATIO_TARGET" "$ok_a"
ok_b=PASS
invalid=0
if [[ $LIST_N -gt 0 ]]; then
	printf '(b) %d of %d instances (%s each) created in %ss, deleted in %ss; GET %s = %s bytes\n' "$list_made" \
		"$LIST_N" "$LIST_MEMORY" "$create_s" "$delete_s" "$API" "$bytes"
	printf '    wrk -t%s -c%s -d%ss --latency\n' "$THREADS" "$CONNS" "$DURATION"
	printf '    %-28s %10s %10s %10s %10s %10s\n' "" "req/s" "p50 ms" "p99 ms" "requests" "errors"
	printf '    %-28s %10s %10s %10s %10s %10s\n' "static $STATIC_PATH" "$s_rps" "$s_p50" "$s_p99" "$s_reqs" \
		"$((s_errs + s_non))"
	printf '    %-28s %10s %10s %10s %10s %10s\n' "GET $API" "$a_rps" "$a_p50" "$a_p99" "$a_reqs" \
		"$((a_errs + a_non))"
	ok_b=$(awk -v p="$a_p99" -v t="$P99_TARGET_MS" 'BEGIN { print (p < t) ? "PASS" : "MISS" }')
	printf '    target: list p99 < %s ms with %d instances at %s connections   %s\n' "$P99_TARGET_MS" "$list_made" \
		"$CONNS" "$ok_b"
	if [[ $((s_errs + s_non + a_errs + a_non)) -gt 0 ]]; then
		printf '    INVALID: some requests failed (socket errors or non-2xx)\n'
		invalid=1
	fi
	[[ $list_made -eq $LIST_N ]] || printf '    NOTE: the machine held only %d of %d instances\n' "$list_made" "$LIST_N"
fi
[[ $invalid -eq 0 ]] || exit 1
if [[ $STRICT == 1 && ($ok_a != PASS || $ok_b != PASS) ]]; then
	exit 1
fi
exit 0

#!/usr/bin/env bash
# Benchmark, not a test: ACL users of one instance on a stack that is already running.
#
#  (a) fill: BENCH_USERS users (default 10,000) added through POST /api/v1/instances/:id/acls by BENCH_CLIENTS
#      parallel curl processes (each a keep-alive connection sending its share one after the other), in chunks of
#      BENCH_CHUNK users so the growth of the per-add cost shows. Reports the total time and the mean per user
#      (wall time / users), and per chunk the mean latency of one request.
#  (b) one more user: the median of BENCH_REPEAT timed POSTs of one user to the full instance (deleted again, untimed,
#      between the runs), against the median of BENCH_REPEAT raw `ACL LOAD`s of the same file on a throwaway
#      valkey-server started here (the instance's users.acl copied from the data dir, the Valdock admin user's hash
#      replaced by that of a password of this script so it can log in; same number of lines and bytes).
#      The raw figure is the round trip of `ACL LOAD` on one connection logged in beforehand (sent and read by this
#      script over /dev/tcp, timed with $EPOCHREALTIME); SLOWLOG's server-side time of the command is printed next
#      to it. The Valdock figure is curl's time_total of the POST (a new connection to nginx each time).
#      Target: median(Valdock) <= 1.5 x median(raw).
#      When the one-more POST is refused (a per-instance user limit, VD_ACL_MAX_USERS, below BENCH_USERS + 1), the timed
#      POSTs re-add a user deleted just before (the file then holds BENCH_USERS users, not one more), and the refusal
#      is printed.
# Everything it made (the instance, the throwaway server, temp files) is removed on exit, also on failure or Ctrl-C.
#
#   VALDOCK_DATA_DIR=/var/lib/valdock tests/bench/acl.sh
#
# Environment (defaults):
#   VALDOCK_URL        http://127.0.0.1:8080   the stack's nginx
#   VALDOCK_DATA_DIR   /var/lib/valdock        the stack's data dir (to copy DATA/instances/<id>/conf/users.acl)
#   BENCH_USERS        10000   users added in (a)
#   BENCH_CLIENTS      4       parallel clients in (a)
#   BENCH_CHUNK        1000    users per progress line in (a)
#   BENCH_REPEAT       5       timed runs of each kind in (b)
#   BENCH_STRICT       0       1: exit 1 when the target is missed
# Exit: 0 done (target missed or not, unless BENCH_STRICT=1), 1 invalid results or the stack is not ready.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

URL=${VALDOCK_URL:-http://127.0.0.1:8080}
URL=${URL%/}
DATA=${VALDOCK_DATA_DIR:-/var/lib/valdock}
USERS=${BENCH_USERS:-10000}
CLIENTS=${BENCH_CLIENTS:-4}
CHUNK=${BENCH_CHUNK:-1000}
REPEAT=${BENCH_REPEAT:-5}
STRICT=${BENCH_STRICT:-0}
RATIO_TARGET=1.5
API=/api/v1/instances

for v in USERS CLIENTS CHUNK REPEAT; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 1 ]] || die "$v must be a whole number >= 1, got '${!v}'"
done
for prog in curl jq valkey-server valkey-cli sha256sum awk sed; do
	have "$prog" || die "$prog is not installed"
done
[[ -d $DATA/instances || -d $DATA ]] || die "data dir $DATA not found: set VALDOCK_DATA_DIR to the stack's data dir"

TAG=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
NAME=aclbench$TAG
PASS_PREFIX=bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
ADMIN_PASS=benchadmin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
out=$(mktemp -d "${TMPDIR:-/tmp}/valdock-aclbench.XXXXXX")
MADE=""
RAW_PID=""

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $RAW_PID ]] && kill -0 "$RAW_PID" 2>/dev/null; then
		kill "$RAW_PID" 2>/dev/null || true
		wait "$RAW_PID" 2>/dev/null || true
	fi
	if [[ -n $MADE ]]; then
		say "cleanup: deleting instance $MADE"
		curl -s -o /dev/null --max-time 120 -X DELETE "$URL$API/$MADE" || true
	fi
	rm -rf -- "$out"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
user_name() { printf 'u%05d' "$1"; }
user_body() {
	printf '{"username":"%s","password":"%s-%s","permissions":"+@read -@dangerous +set","keys":"~app:%s:*","channels":"&app:%s:*"}' \
		"$1" "$PASS_PREFIX" "$1" "$1" "$1"
}
api() { # METHOD PATH [BODY] -> "status seconds" on stdout, body in $out/last.json
	local args=(-s -o "$out/last.json" -w '%{http_code} %{time_total}\n' --max-time 120 -X "$1")
	[[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	curl "${args[@]}" "$URL$2"
}

# ---- the stack and the instance
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/api/v1/system/health" || true)
[[ $code == 200 ]] || die "the stack at $URL is not healthy (GET /api/v1/system/health answered '$code')"
MADE=$NAME # from here on the trap deletes it (a DELETE of nothing is harmless)
read -r code _ < <(api POST "$API" "{\"name\":\"$NAME\",\"memory\":\"512mb\"}")
[[ $code == 201 ]] || die "creating instance $NAME: $code $(head -c 300 "$out/last.json")"
ACLS=$API/$NAME/acls
ACLFILE=$DATA/instances/$NAME/conf/users.acl
[[ -r $ACLFILE ]] || die "cannot read $ACLFILE: is $DATA the data dir of the stack at $URL?"
say "instance $NAME created; adding $USERS users with $CLIENTS clients"

# ---- (a) fill
# one curl config per client and chunk: a keep-alive connection sending its share in turn
fill_range() { # FIRST LAST -> appends "code seconds" lines to $out/codes
	local first=$1 last=$2 c i
	for ((c = 0; c < CLIENTS; c++)); do
		: >"$out/client$c.cfg"
	done
	for ((i = first; i <= last; i++)); do
		c=$(((i - first) % CLIENTS))
		{
			[[ -s $out/client$c.cfg ]] && printf 'next\n'
			printf 'url = "%s%s"\n' "$URL" "$ACLS"
			printf 'header = "Content-Type: application/json"\n'
			printf 'data-binary = "%s"\n' "$(user_body "$(user_name "$i")" | sed 's/"/\\"/g')"
			printf 'output = "/dev/null"\nwrite-out = "%%{http_code} %%{time_total}\\n"\nmax-time = 120\n'
		} >>"$out/client$c.cfg"
	done
	local pids=()
	for ((c = 0; c < CLIENTS; c++)); do
		if [[ -s $out/client$c.cfg ]]; then
			curl -s -K "$out/client$c.cfg" >"$out/client$c.out" &
			pids+=($!)
		fi
	done
	wait "${pids[@]}"
	# the k-th answer of client c is for user first + c + k * CLIENTS; a request refused with 409 (the
	# instance's lock stayed busy past its wait) or 503 is retried, as a client would, and counted
	local k code secs
	for ((c = 0; c < CLIENTS; c++)); do
		[[ -f $out/client$c.out ]] || continue
		k=0
		while read -r code secs; do
			i=$((first + c + k * CLIENTS))
			k=$((k + 1))
			if [[ $code != 201 ]]; then
				printf '%s\n' "$i $code" >>"$out/retry"
			fi
			printf '%s %s\n' "$code" "$secs" >>"$out/codes"
		done <"$out/client$c.out"
		rm -f "$out/client$c.out"
	done
}

retry_failed() { # retries what $out/retry lists, one after the other; dies when a user cannot be added
	local i code what n tries
	[[ -s $out/retry ]] || return 0
	while read -r i what; do
		n=$(user_name "$i")
		printf '%s %s\n' "$n" "$what" >>"$out/retried"
		for ((tries = 1; tries <= 5; tries++)); do
			read -r code _ < <(api POST "$ACLS" "$(user_body "$n")")
			[[ $code == 201 ]] && break
			if [[ $code == 409 ]] && jq -e '.code == "user_exists"' "$out/last.json" >/dev/null; then
				break # an earlier try went through after all
			fi
			sleep 1
		done
		[[ $code == 201 || $code == 409 ]] || die "user $n could not be added after 5 retries: $code $(head -c 200 "$out/last.json")"
	done <"$out/retry"
	: >"$out/retry"
}

: >"$out/codes"
: >"$out/retry"
: >"$out/retried"
t_fill0=$(now_ns)
printf '%-14s %10s %14s %16s %s\n' "users" "chunk s" "mean req ms" "mean/user ms" "refused (retried)" >&2
for ((first = 1; first <= USERS; first += CHUNK)); do
	last=$((first + CHUNK - 1))
	((last > USERS)) && last=$USERS
	before=$(wc -l <"$out/codes")
	t0=$(now_ns)
	fill_range "$first" "$last"
	refused=$(awk '{ print $2 }' "$out/retry" | sort | uniq -c | awk '{ printf "%s%sx%s", sep, $1, $2; sep = " " }')
	retry_failed
	t1=$(now_ns)
	tail -n +"$((before + 1))" "$out/codes" | awk -v n="$((last - first + 1))" -v s="$(ms "$t0" "$t1")" -v f="$first" \
		-v l="$last" -v r="$refused" \
		'{ t += $2 } END { printf "%6d-%-7d %10.1f %14.1f %16.1f %s\n", f, l, s / 1000, 1000 * t / NR, s / n, r }' >&2
done
t_fill1=$(now_ns)
fill_ms=$(ms "$t_fill0" "$t_fill1")
count=$(curl -s --max-time 60 "$URL$ACLS" | jq '.count')
[[ $count == "$USERS" ]] || die "the instance lists $count users, expected $USERS"
lines=$(wc -l <"$ACLFILE")
[[ $lines == $((USERS + 2)) ]] || die "users.acl has $lines lines, expected $((USERS + 2))"
in_sync=$(curl -s --max-time 60 "$URL$API/$NAME/effective-acls" | jq '.in_sync')
[[ $in_sync == true ]] || warn "effective-acls is not in sync after the fill: $(curl -s --max-time 60 "$URL$API/$NAME/effective-acls" | jq -c .drift)"
n_retried=$(wc -l <"$out/retried")

# ---- (b) one more user, through the API
extra=$(user_name "$((USERS + 1))")
read -r code secs < <(api POST "$ACLS" "$(user_body "$extra")")
declare -a V=()
mode=""
if [[ $code == 201 ]]; then
	mode="add user $((USERS + 1)) to $USERS"
	V+=("$secs")
	for ((r = 2; r <= REPEAT; r++)); do
		read -r code _ < <(api DELETE "$ACLS/$extra")
		[[ $code == 200 ]] || die "DELETE $extra: $code $(head -c 200 "$out/last.json")"
		read -r code secs < <(api POST "$ACLS" "$(user_body "$extra")")
		[[ $code == 201 ]] || die "POST $extra: $code $(head -c 200 "$out/last.json")"
		V+=("$secs")
	done
else
	refusal="$code $(jq -c '{code, message}' "$out/last.json" 2>/dev/null || head -c 200 "$out/last.json")"
	say "user $((USERS + 1)) was refused: $refusal"
	mode="re-add user $USERS to $((USERS - 1)) (one more than $USERS is refused)"
	victim=$(user_name 1)
	for ((r = 1; r <= REPEAT; r++)); do
		read -r code _ < <(api DELETE "$ACLS/$victim")
		[[ $code == 200 ]] || die "DELETE $victim: $code $(head -c 200 "$out/last.json")"
		read -r code secs < <(api POST "$ACLS" "$(user_body "$victim")")
		[[ $code == 201 ]] || die "POST $victim: $code $(head -c 200 "$out/last.json")"
		V+=("$secs")
	done
fi
api_med=$(printf '%s\n' "${V[@]}" | awk '{ print $1 * 1000 }' | median)
api_all=$(printf '%s\n' "${V[@]}" | awk '{ printf "%.1f ", $1 * 1000 }')
flines=$(wc -l <"$ACLFILE")
fbytes=$(wc -c <"$ACLFILE")

# ---- (b) raw ACL LOAD of the same file on a throwaway server
mkdir -p "$out/raw"
admin_hash=$(printf '%s' "$ADMIN_PASS" | sha256sum | cut -d' ' -f1)
sed -E "s/^user valdock on #[0-9a-f]{64} /user valdock on #$admin_hash /" "$ACLFILE" >"$out/raw/users.acl"
[[ $(wc -l <"$out/raw/users.acl") == "$flines" && $(wc -c <"$out/raw/users.acl") == "$fbytes" ]] ||
	die "the copied ACL file differs in size from the instance's"
grep -q "^user valdock on #$admin_hash " "$out/raw/users.acl" || die "no Valdock admin line in $ACLFILE"
# on a loopback TCP port (a random free one; retried when taken), like the instance
raw_port=""
for ((try = 0; try < 20; try++)); do
	p=$((40000 + RANDOM % 20000))
	(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue # taken
	valkey-server --port "$p" --bind 127.0.0.1 --aclfile "$out/raw/users.acl" --save "" --appendonly no \
		--dir "$out/raw" --daemonize no --loglevel warning >"$out/raw/server.log" 2>&1 &
	RAW_PID=$!
	for ((i = 0; i < 100; i++)); do
		kill -0 "$RAW_PID" 2>/dev/null || break
		if valkey-cli -p "$p" PING 2>/dev/null | grep -q NOAUTH; then
			raw_port=$p
			break 2
		fi
		sleep 0.1
	done
	kill "$RAW_PID" 2>/dev/null || true
	wait "$RAW_PID" 2>/dev/null || true
	RAW_PID=""
done
[[ -n $raw_port ]] || die "the throwaway valkey-server did not start: $(tail -5 "$out/raw/server.log")"
cli() { valkey-cli -p "$raw_port" --user valdock --pass "$ADMIN_PASS" --no-auth-warning "$@"; }
[[ $(cli PING) == PONG ]] || die "the throwaway valkey-server refuses the admin user"
[[ $(cli ACL USERS | wc -l) == "$flines" ]] || die "the throwaway server did not load every user of the file"
cli CONFIG SET slowlog-log-slower-than 0 >/dev/null
cli SLOWLOG RESET >/dev/null
# one connection, logged in once; each ACL LOAD timed from its send to its answer ($EPOCHREALTIME: no fork)
CRLF=$'\r\n'
send() {
	local m="*$#$CRLF" a
	for a in "$@"; do
		m+="\$${#a}$CRLF$a$CRLF"
	done
	printf '%s' "$m" >&3
}
exec 3<>"/dev/tcp/127.0.0.1/$raw_port"
send AUTH valdock "$ADMIN_PASS"
IFS= read -r -t 10 line <&3 || die "no answer to AUTH from the throwaway server"
[[ ${line%$'\r'} == +OK ]] || die "AUTH on the throwaway server answered: $line"
declare -a R=()
for ((r = 1; r <= REPEAT; r++)); do
	t0=$EPOCHREALTIME
	send ACL LOAD
	IFS= read -r -t 60 line <&3 || die "no answer to ACL LOAD"
	t1=$EPOCHREALTIME
	[[ ${line%$'\r'} == +OK ]] || die "raw ACL LOAD answered: $line"
	R+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
done
exec 3>&-
raw_med=$(printf '%s\n' "${R[@]}" | median)
raw_all=${R[*]}
# server-side time of each ACL LOAD (SLOWLOG: id, time, microseconds, args...)
srv_med=$(cli SLOWLOG GET 100 | awk 'prev_is_time { us = $1; prev_is_time = 0 } /^[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]+$/ { prev_is_time = 1; next }
	$0 == "LOAD" && us != "" { print us / 1000; us = "" }' | median)

ratio=$(awk -v a="$api_med" -v b="$raw_med" 'BEGIN { printf "%.2f", a / b }')
ratio_srv=$(awk -v a="$api_med" -v b="$srv_med" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }')
met=$(awk -v r="$ratio" -v t="$RATIO_TARGET" 'BEGIN { print (r <= t) ? "met" : "MISSED" }')

printf '\nACL benchmark: instance %s, %d users added by %d clients, valkey %s\n' "$NAME" "$USERS" "$CLIENTS" \
	"$(valkey-server --version | sed -E 's/.* v=([^ ]+).*/\1/')"
printf '  fill through the API:  %.1f s total, %.1f ms per user (wall / users); %d adds refused and retried\n' \
	"$(awk -v m="$fill_ms" 'BEGIN { print m / 1000 }')" "$(awk -v m="$fill_ms" -v n="$USERS" 'BEGIN { print m / n }')" \
	"$n_retried"
printf '  one more user (%s), file %d lines / %d bytes, median of %d:\n' "$mode" "$flines" "$fbytes" "$REPEAT"
printf '    %-34s %10s   %s\n' "path" "median ms" "runs (ms)"
printf '    %-34s %10.1f   %s\n' "Valdock POST /acls (curl total)" "$api_med" "$api_all"
printf '    %-34s %10.1f   %s\n' "raw ACL LOAD (client round trip)" "$raw_med" "$raw_all"
printf '    %-34s %10.1f\n' "raw ACL LOAD (server, SLOWLOG)" "$srv_med"
printf '  ratio Valdock / raw: %s x (target <= %s x: %s); against the server-side time alone: %s x\n' \
	"$ratio" "$RATIO_TARGET" "$met" "$ratio_srv"
[[ -n ${refusal:-} ]] && printf '  note: adding user %d was refused: %s\n' "$((USERS + 1))" "$refusal"

if [[ $met != met && $STRICT == 1 ]]; then
	exit 1
fi
exit 0

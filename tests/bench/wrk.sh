# shellcheck shell=bash
# Shared by the benchmarks: reading wrk's --latency output. Source it.

# wrk_parse FILE: prints "req/s p50_ms p99_ms requests socket_errors non2xx"; exits 1 when FILE holds no
# complete wrk report.
wrk_parse() {
	awk '
	function ms(v,   n, u) {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") return n / 1000
		if (u == "ms") return n
		if (u == "s") return n * 1000
		if (u == "m") return n * 60000
		if (u == "h") return n * 3600000
		return -1
	}
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	$1 == "Requests/sec:" { rps = $2 }
	/ requests in / { reqs = $1 }
	/Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
	/Non-2xx or 3xx responses:/ { non2xx = $5 }
	END {
		if (rps == "" || p50 == "" || p99 == "" || p50 < 0 || p99 < 0) exit 1
		printf "%.2f %.3f %.3f %d %d %d\n", rps, p50, p99, reqs, errs, non2xx
	}' "$1"
}

# wrk_run FILE URL SECONDS THREADS CONNS: one wrk run with --latency, its output kept in FILE; dies when wrk fails.
wrk_run() {
	wrk -t"$4" -c"$5" -d"$3"s --latency "$2" >"$1" 2>&1 || die "wrk failed on $2: $(tail -n 3 "$1")"
}

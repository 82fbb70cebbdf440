#!/bin/bash
# REGISTER throughput with digest auth on loopback: SIPp drives N users
# through 401 + authenticated REGISTER against a pinhole started here.
# Prints registrations/second and pinhole's CPU seconds per 1000.
# Bounded: RATE for SECONDS, loopback only.
set -eu
cd "$(dirname "$0")/.."
USERS=${USERS:-1000}
RATE=${RATE:-3000}
SECONDS_RUN=${SECONDS_RUN:-10}
PORT=${PORT:-15060}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; cat "$work/sipp.out" 2>/dev/null | tail -5; rm -rf "$work"' EXIT

cat > "$work/p.conf" <<EOC
[sip]
domain = example.com
listen = 127.0.0.1
port = $PORT
[nat]
intranet_subnets = 127.0.0.0/8
[store]
path = $work/p.db
[admin]
http = 127.0.0.1:$((PORT + 1))
[log]
level = warning
EOC
echo "SEQUENTIAL" > "$work/users.csv"
for i in $(seq 1 "$USERS"); do
	build/pinhole -c "$work/p.conf" user add "u$i" "password$i" >/dev/null 2>&1
	echo "u$i;[authentication username=u$i password=password$i]" >> "$work/users.csv"
done
build/pinhole -c "$work/p.conf" run 2>"$work/d.log" &
pid=$!
sleep 0.5
[ -n "${PERF:-}" ] && { perf record -g -p $pid -o "$work/perf.data" & perfpid=$!; sleep 0.3; }
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
total=$((RATE * SECONDS_RUN))
start=$(date +%s.%N)
timeout $((SECONDS_RUN * 4)) sipp -sf bench/register.xml -inf "$work/users.csv" \
	-i 127.0.0.1 -p $((PORT + 2)) 127.0.0.1:$PORT \
	-r "$RATE" -m "$total" -l 20000 -timeout $((SECONDS_RUN * 3))s -nostdin \
	-trace_stat -stf "$work/stat.csv" -fd 1 >"$work/sipp.out" 2>&1 || true
end=$(date +%s.%N)
[ -n "${PERF:-}" ] && { kill -INT $perfpid; wait $perfpid || true; perf report -i "$work/perf.data" --no-children --stdio 2>/dev/null | grep -v "^#" | grep "%" | head -40; }
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
ok=$(tail -1 "$work/stat.csv" | awk -F';' '{print $16}')
fail=$(tail -1 "$work/stat.csv" | awk -F';' '{print $18}')
hz=$(getconf CLK_TCK)
awk -v ok="$ok" -v fail="$fail" -v s="$start" -v e="$end" -v c=$((t1 - t0)) -v hz="$hz" 'BEGIN {
	cpu = c / hz;
	printf "pinhole REGISTER+auth: %d ok, %d failed in %.2fs wall; pinhole CPU %.2fs => %.0f registrations per CPU-second\n",
		ok, fail, e - s, cpu, (cpu > 0 ? ok / cpu : 0) }'

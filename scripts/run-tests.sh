#!/bin/bash
# Run pinhole's tests and print one closing line "N passed, M failed".
#   run-tests.sh all | unit | fuzz | daemon | lab
# unit: every build/tests/test_* (cmocka, ASan+UBSan build)
# fuzz: each libFuzzer target for FUZZ_SMOKE_SECONDS (default 30), seeded
#       with tests/fuzz/corpus; a crash is a failed test
# daemon: tests/daemon, the daemon (ASan build) on loopback with bad input
# web:  tests/web, the admin page in headless Chromium (playwright-core)
# lab:  tests/lab with pytest, as root (network namespaces)
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
BUILD=${BUILD:-build}
passed=0
failed=0
failures=()

count_cmocka() {	# $1 = output file, $2 = test name
	local p f
	p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$1" | awk '{s+=$4} END {print s+0}')
	f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$1" | awk '{s+=$4} END {print s+0}')
	passed=$((passed + p))
	failed=$((failed + f))
	[ "$f" -gt 0 ] && failures+=("$2")
}

run_unit() {
	local t out rc
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		out=$(mktemp)
		echo "== unit: $(basename "$t")"
		"$t" >"$out" 2>&1
		rc=$?
		cat "$out"
		count_cmocka "$out" "$(basename "$t")"
		if [ $rc -ne 0 ] && ! grep -q '^\[  FAILED  \]' "$out"; then
			# crashed or sanitizer abort before cmocka's summary
			failed=$((failed + 1))
			failures+=("$(basename "$t") (exit $rc)")
		fi
		rm -f "$out"
	done
}

run_fuzz() {
	local f name secs=${FUZZ_SMOKE_SECONDS:-30}
	for f in "$BUILD"/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		name=$(basename "$f")
		mkdir -p "$BUILD/corpus/$name"
		echo "== fuzz smoke: $name for ${secs}s"
		if "$f" -max_total_time="$secs" -print_final_stats=1 \
			"$BUILD/corpus/$name" tests/fuzz/corpus >"$BUILD/$name.log" 2>&1; then
			passed=$((passed + 1))
			grep -E 'stat::number_of_executed_units|Done' "$BUILD/$name.log" | tail -2
		else
			failed=$((failed + 1))
			failures+=("$name")
			tail -40 "$BUILD/$name.log"
		fi
	done
}

# pytest over a folder; adds its counts. $1 = label, $2 = folder
run_pytest() {
	local out p f e line
	out=$(mktemp)
	echo "== $1 (pytest $2)"
	/usr/bin/python3 -m pytest -q -rfEs -p no:cacheprovider "$2" 2>&1 | tee "$out"
	line=$(grep -E '[0-9]+ (passed|failed|error)' "$out" | tail -1)
	p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
	f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || true)
	e=$(echo "$line" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+' || true)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0} + ${e:-0}))
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		failures+=("$1: pytest gave no summary")
	elif [ $((${f:-0} + ${e:-0})) -gt 0 ]; then
		failures+=("$1")
	fi
	rm -f "$out"
}

run_daemon() {
	run_pytest "daemon" tests/daemon
}

run_web() {
	local out p f
	out=$(mktemp)
	echo "== web (tests/web, headless chromium)"
	SKIP_BUILD=1 tests/web/run.sh 2>&1 | tee "$out"
	p=$(grep -E '^# pass [0-9]+' "$out" | tail -1 | awk '{print $3}')
	f=$(grep -E '^# fail [0-9]+' "$out" | tail -1 | awk '{print $3}')
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	if [ -z "$p$f" ]; then
		failed=$((failed + 1))
		failures+=("web: no summary")
	elif [ "${f:-0}" -gt 0 ]; then
		failures+=("web")
	fi
	rm -f "$out"
}

run_lab() {
	if [ "$(id -u)" != 0 ]; then
		echo "lab: needs root (network namespaces); skipped"
		return
	fi
	run_pytest "lab" tests/lab
}

case "$what" in
all) run_unit; run_fuzz; run_daemon; run_web; run_lab ;;
web) run_web ;;
unit) run_unit ;;
daemon) run_daemon ;;
fuzz) run_fuzz ;;
lab) run_lab ;;
*) echo "usage: $0 all|unit|fuzz|daemon|web|lab"; exit 2 ;;
esac

if [ ${#failures[@]} -gt 0 ]; then
	echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# Run each libFuzzer target for N seconds on its seed corpus (a copy, so
# the repository's corpus only grows by hand).
set -eu
secs=$1; shift
for f in "$@"; do
	name=$(basename "$f")
	seeds=tests/fuzz/corpus/$name
	work=build/fuzz/work-$name
	mkdir -p "$work"
	[ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null || true
	echo "== $name ($secs s)"
	"$f" -max_total_time="$secs" -print_final_stats=0 "$work" \
	    >build/fuzz/$name.log 2>&1 || {
		tail -n 40 build/fuzz/$name.log; exit 1; }
	tail -n 1 build/fuzz/$name.log
done

#!/bin/sh
# Run each unit test binary; print their total as "N passed, N failed".
passed=0 failed=0 status=0
for t in "$@"; do
	echo "== $t"
	out=$("$t" 2>&1) || status=1
	printf '%s\n' "$out"
	last=$(printf '%s\n' "$out" | tail -n 1)
	p=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
	f=$(printf '%s' "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
	if [ -z "$p" ]; then
		echo "$t: no summary line (crashed?)"
		failed=$((failed + 1)); status=1
		continue
	fi
	passed=$((passed + p)); failed=$((failed + f))
done
echo "unit: $passed passed, $failed failed"
exit $status

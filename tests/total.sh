#!/bin/sh
# The last line of make test: unit and end-to-end counts added up.
B=${1:-build}
u=$(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$B/unit.log" | tail -n 1)
e=$(grep -E '^[0-9]+ passed|[0-9]+ (passed|failed)' "$B/e2e.log" | tail -n 1)
ep=$(printf '%s' "$e" | sed -n 's/.*\b\([0-9]\+\) passed.*/\1/p')
ef=$(printf '%s' "$e" | sed -n 's/.*\b\([0-9]\+\) failed.*/\1/p')
ee=$(printf '%s' "$e" | sed -n 's/.*\b\([0-9]\+\) error.*/\1/p')
up=${u% *}; uf=${u#* }
p=$(( ${up:-0} + ${ep:-0} ))
f=$(( ${uf:-0} + ${ef:-0} + ${ee:-0} ))
echo "total: $p passed, $f failed"
[ "$f" -eq 0 ]

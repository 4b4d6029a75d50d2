#!/bin/sh
# The last line of make test: unit and end-to-end counts added up (the
# end-to-end tests on SQLite, and those run again on PostgreSQL).
B=${1:-build}
u=$(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$B/unit.log" | tail -n 1)
up=${u% *}; uf=${u#* }
p=${up:-0}
f=${uf:-0}
for log in "$B/e2e.log" "$B/e2e-pg.log"; do
	[ -f "$log" ] || continue
	e=$(grep -E '^[0-9]+ passed|[0-9]+ (passed|failed)' "$log" | tail -n 1)
	ep=$(printf '%s' "$e" | sed -n 's/.*\b\([0-9]\+\) passed.*/\1/p')
	ef=$(printf '%s' "$e" | sed -n 's/.*\b\([0-9]\+\) failed.*/\1/p')
	ee=$(printf '%s' "$e" | sed -n 's/.*\b\([0-9]\+\) error.*/\1/p')
	p=$(( p + ${ep:-0} ))
	f=$(( f + ${ef:-0} + ${ee:-0} ))
done
echo "total: $p passed, $f failed"
[ "$f" -eq 0 ]

#!/bin/sh
# make fresh-check: what a newcomer meets on a bare Debian 12 machine.
#
# Builds a minimal Debian 12 root with mmdebstrap from this machine's
# package sources (only make added: the README's commands start with
# it), copies a clean clone of HEAD into it, and there, as root, runs:
# "make run" in the background, the README's swaks line, a look in the
# demo Maildir, then "make test".  One line per step, then
# "N passed, N failed".
#
# Everything runs inside a private PID and mount namespace: the mounts
# the root needs vanish with it, and when the steps end every process
# they started is gone (the namespace's init is the step runner; postino
# itself is also stopped by PID).  The root is removed at the end unless
# FRESH_KEEP=1.
#
#   FRESH_STEPS="build"   only packages + make in the fresh root
#                          (the quick form, for when time is short)
#   FRESH_OPTIONAL=1      a machine that cannot make the root at all (no
#                          namespaces, no package mirror) says SKIP and
#                          exits 0; a step that fails still fails
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "fresh-check: needs root (mmdebstrap, chroot, namespaces)" >&2
	exit 1
fi
sh scripts/install-deps.sh fresh

STEPS=${FRESH_STEPS:-all}
top=$(pwd)
work=$top/build/fresh
root=$work/root
rm -rf --one-file-system "$work"
mkdir -p "$work"

t0=$(date +%s)
say() { printf 'fresh-check: %s\n' "$*"; }
cannot() {
	if [ "${FRESH_OPTIONAL:-0}" = 1 ]; then
		say "SKIP $*"
		exit 0
	fi
	say "FAIL $*"
	echo "0 passed, 1 failed"
	exit 1
}

if ! unshare --pid --fork --mount --mount-proc true 2>/dev/null; then
	cannot "this machine cannot make PID and mount namespaces (unshare)"
fi

cleanup() {
	# The logs of the steps outlive the root.
	cp "$root"/root/*.log "$work/" 2>/dev/null || true
	if [ "${FRESH_KEEP:-0}" != 1 ] && [ -d "$root" ]; then
		rm -rf --one-file-system "$root"
	fi
}
trap cleanup EXIT

if ! mmdebstrap --variant=minbase --include=make,ca-certificates \
    bookworm "$root" >"$work/mmdebstrap.log" 2>&1; then
	cannot "root: mmdebstrap failed; see $work/mmdebstrap.log"
fi
say "ok   root: Debian $(cat "$root/etc/debian_version") minbase in" \
    "$(( $(date +%s) - t0 )) s"

# A clean clone: what is committed, nothing built, nothing untracked.
git clone -q --no-hardlinks "$top" "$root/root/postino"
say "ok   clone: $(git -C "$root/root/postino" log -1 --format='%h %s' |
    cut -c1-60)"

cat >"$root/root/fresh-steps.sh" <<'STEPS'
#!/bin/sh
# Runs inside the fresh root.  One line per step; the counts at the end.
set -u
cd /root/postino
pass=0 fail=0
ok()  { pass=$((pass + 1)); printf 'fresh-check: ok   %s\n' "$*"; }
bad() { fail=$((fail + 1)); printf 'fresh-check: FAIL %s\n' "$*"; }
now() { date +%s; }
# Running, and not a zombie waiting to be reaped.
alive() {
	[ -r "/proc/$1/status" ] &&
	    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"
}
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

# No build dependency is here yet: the proof that make installs them.
for p in gcc pkg-config libevent-dev libssl-dev python3 swaks; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q 'install ok installed'; then
		bad "bare: $p is already installed"
	fi
done
[ "$fail" -eq 0 ] && ok "bare: no compiler, no -dev package, no python3"

if [ "$1" = build ]; then
	t=$(now)
	if make >/root/make.log 2>&1 && [ -x build/postino ]; then
		ok "make: packages + build from nothing in $(( $(now) - t )) s"
	else
		bad "make: see /root/make.log:"; tail -n 5 /root/make.log
	fi
	finish
fi

# make run, as the README says, in its own process group.
t=$(now)
setsid make run >/root/run.log 2>&1 &
runpid=$!
up=0
while [ $(( $(now) - t )) -lt 1200 ]; do
	if ! alive "$runpid"; then
		break
	fi
	if grep -q 'event=listen name=submissions' /root/run.log; then
		up=1
		break
	fi
	sleep 1
done
if [ "$up" -eq 1 ]; then
	ok "make run: packages, build, listening in $(( $(now) - t )) s"
else
	bad "make run: not listening; the end of its output:"
	tail -n 5 /root/run.log
	kill -s TERM -- "-$runpid" 2>/dev/null
	finish
fi

# The README's first message.
if swaks --server 127.0.0.1:2525 --to demo@example.test \
    --from someone@example.org --header 'Subject: hello' \
    >/root/swaks.log 2>&1; then
	ok "swaks: $(grep -E '^<- +250 .*queued as' /root/swaks.log |
	    sed 's/^<- *//')"
else
	bad "swaks: see /root/swaks.log"
fi
new=run/mail/example.test/demo/new
f=$(ls "$new" 2>/dev/null | head -n 1)
if [ -n "$f" ] && grep -q '^Subject: hello' "$new/$f"; then
	ok "maildir: $new/$f ($(wc -c <"$new/$f") bytes)"
else
	bad "maildir: no message in $new"
fi

# Stop make run (and postino under it) by its process group (dash's
# kill takes a group only as "-s SIG -- -PGID"), then wait, bounded.
kill -s TERM -- "-$runpid" 2>/dev/null
t=$(now)
while alive "$runpid" && [ $(( $(now) - t )) -lt 20 ]; do
	sleep 1
done
if ! alive "$runpid" && ! pgrep -x postino >/dev/null; then
	wait "$runpid" 2>/dev/null
	ok "stop: make run and postino ended in $(( $(now) - t )) s"
else
	bad "stop: make run or postino still running after 20 s:"
	ps -o pid,pgid,stat,args -e | sed 's/^/fresh-check:      /'
	kill -s KILL -- "-$runpid" 2>/dev/null
fi

t=$(now)
make test >/root/test.log 2>&1
total=$(tail -n 1 /root/test.log)
case "$total" in
"total: "*" passed, 0 failed")
	ok "make test: ${total#total: } in $(( $(now) - t )) s" ;;
*)
	bad "make test: ${total:-no summary}; failures:"
	grep -E '^(FAILED|ERROR|not ok|FAIL)' /root/test.log | head -n 20 ;;
esac
finish
STEPS

# The root's mounts live in this namespace only; its init (the step
# runner) takes every process it started with it when it ends.
unshare --pid --fork --mount --mount-proc --propagation private sh -c '
	r=$1
	mount -t proc proc "$r/proc"
	mount -t sysfs sys "$r/sys"
	mount --rbind /dev "$r/dev"
	mount -t tmpfs tmpfs "$r/tmp"
	mount -t tmpfs tmpfs "$r/dev/shm"
	exec chroot "$r" /usr/bin/env -i HOME=/root TERM=dumb \
	    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	    LANG=C.UTF-8 sh /root/fresh-steps.sh "$2"
' fresh "$root" "$STEPS" | tee "$work/steps.log"
status=0
tail -n 1 "$work/steps.log" | grep -q ' passed, 0 failed$' || status=1
if [ "${FRESH_KEEP:-0}" = 1 ]; then
	say "root kept in $root"
fi
say "done in $(( $(date +%s) - t0 )) s"
exit $status

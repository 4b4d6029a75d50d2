#!/bin/sh
# make run: the embedded default.  Creates the demo domain and account
# on first start (the password is printed once and kept in
# run/demo-password), then runs postino in the foreground.
set -eu
B=${1:-build}
CONF=etc/postino-run.conf
ADMIN="$B/postino-admin -c $CONF"

mkdir -p run
chmod 0755 run
if ! $ADMIN domain list 2>/dev/null | grep -qx example.test; then
	$ADMIN domain add example.test
fi
if [ ! -s run/demo-password ]; then
	pw=$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')
	if printf '%s\n' "$pw" | $ADMIN account add demo@example.test \
	    --password-stdin 2>/dev/null ||
	    printf '%s\n' "$pw" | $ADMIN account passwd demo@example.test \
	    --password-stdin; then
		umask 077
		printf '%s\n' "$pw" > run/demo-password
	fi
fi
# RFC 5321 4.5.1: postmaster must reach someone; here, the demo user.
if ! $ADMIN alias list 2>/dev/null | grep -q '^postmaster@example.test'; then
	$ADMIN alias add postmaster@example.test demo@example.test
fi
cat <<MSG
postino: demo account demo@example.test, password $(cat run/demo-password)
postino: mx 127.0.0.1:2525, submission 127.0.0.1:2587 (STARTTLS),
         submissions 127.0.0.1:2465 (implicit TLS),
         pop3 127.0.0.1:2110 (STLS), pop3s 127.0.0.1:2995 (implicit TLS)
postino: try  swaks --server 127.0.0.1:2525 --to demo@example.test
postino: mail lands in run/mail/example.test/demo/new/
postino: read it  curl -k --user demo@example.test:PASSWORD pop3s://127.0.0.1:2995/1
MSG
exec "$B/postino" -c "$CONF"

#!/bin/sh
# Install every Debian package that postino's build, tests and benchmarks
# need.  Idempotent and quiet when everything is already present.  Also
# creates the system users the daemon drops to when started as root.
# "install-deps.sh fresh" adds what make fresh-check needs on the host.
# Every failure is one line that says what to do; apt's own output goes
# to a log file named in that line.
set -eu

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-deps: no dpkg-query: this is not Debian; install by" \
	    "hand the packages listed in scripts/install-deps.sh" >&2
	exit 1
fi

PKGS="build-essential pkg-config libevent-dev libssl-dev libsqlite3-dev
libcrypt-dev libc-ares-dev libpq-dev openssl sqlite3 clang libclang-rt-14-dev
python3 python3-pytest swaks libnet-ssleay-perl procps postfix
gsasl curl dnsmasq-base sasl2-bin libsasl2-modules dovecot-core dovecot-lmtpd
fetchmail mpop dovecot-pop3d clamav-daemon fail2ban groff-base man-db
prometheus postgresql"
if [ "${1:-}" = fresh ]; then
	PKGS="$PKGS mmdebstrap"
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages:$missing" >&2
		echo "install-deps: run as root: sh scripts/install-deps.sh" >&2
		exit 1
	fi
	echo "install-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# postfix is here for smtp-source and for the private instances the
	# benchmark and tests configure themselves.  "No configuration"
	# leaves /etc/postfix without a main.cf, so the package configures
	# nothing and the system instance does not start.
	case "$missing" in
	*" postfix"*)
		echo "postfix postfix/main_mailer_type select No configuration" |
		    debconf-set-selections
		;;
	esac
	# clamav-daemon is run by the tests as a private clamd over a
	# database of test signatures only.  freshclam (which the package
	# pulls in) must never fetch the public database: "manual" leaves
	# it without daemon, cron job or if-up hook, and policy-rc.d
	# (below) keeps the package from starting it or clamd.
	case "$missing" in
	*" clamav-daemon"*)
		echo "clamav-freshclam clamav-freshclam/autoupdate_freshclam" \
		    "select manual" | debconf-set-selections
		;;
	esac
	log=${TMPDIR:-/tmp}/postino-install-deps.log
	if ! apt-get update -qq >"$log" 2>&1; then
		echo "install-deps: apt-get update failed (network or" \
		    "/etc/apt sources?); see $log" >&2
		exit 1
	fi
	# The servers among these (postfix, dovecot, clamd, postgresql)
	# are run by the tests and the benchmark as private instances;
	# their system services must not start, nor fail2ban's server (only
	# fail2ban-regex is used, by tests/e2e/test_fail2ban.py), nor
	# Prometheus' (only promtool is used, by tests/e2e/test_metrics.py,
	# to check our exposition text; no smaller package ships it).
	# policy-rc.d answering 101 tells the packages' scripts so
	# (invoke-rc.d(8)); one that exists already stays.
	rc=/usr/sbin/policy-rc.d
	own_rc=""
	if [ ! -e "$rc" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$rc"
		chmod 755 "$rc"
		own_rc=1
	fi
	# shellcheck disable=SC2086
	if ! apt-get install -y -qq --no-install-recommends $missing \
	    >>"$log" 2>&1; then
		if [ -n "$own_rc" ]; then rm -f "$rc"; fi
		echo "install-deps: apt-get could not install:$missing;" \
		    "see $log" >&2
		exit 1
	fi
	if [ -n "$own_rc" ]; then rm -f "$rc"; fi
	# Should a policy-rc.d of the machine's own have let the packages
	# start the system clamd, freshclam or fail2ban server, they stop
	# (by their PIDs).
	for pidf in /run/clamav/clamd.pid /run/clamav/freshclam.pid \
	    /run/fail2ban/fail2ban.pid; do
		if [ -s "$pidf" ]; then
			kill "$(cat "$pidf")" 2>/dev/null || true
		fi
	done
fi

# The store role runs as "postino", the network role as "postino-net";
# both are only created when we are root (a developer running as
# another user runs every role as that user).
if [ "$(id -u)" -eq 0 ]; then
	for u in postino postino-net; do
		if ! getent passwd "$u" >/dev/null; then
			useradd --system --no-create-home --home-dir /nonexistent \
			    --shell /usr/sbin/nologin "$u"
		fi
	done
fi
exit 0

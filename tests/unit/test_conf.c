/*
 * test_conf.c - conf.c: good files and their values, defaults, every
 * form of error message, the dump round trip and the reference.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))
#define MX		"[listener mx]\nlisten = 127.0.0.1:25\nprofile = mx\n"

static struct conf *
parse(const char *name, const char *text, char *err, size_t errlen)
{
	struct conf	*c = NULL;

	err[0] = '\0';
	if (conf_parse(name, text, strlen(text), &c, err, errlen) == -1)
		return NULL;
	return c;
}

static void
test_defaults(void)
{
	struct conf	*c;
	char		 err[512], host[256] = "";

	c = parse("/etc/postino/p.conf", MX, err, sizeof(err));
	CHECK(c != NULL);
	if (c == NULL)
		return;
	gethostname(host, sizeof(host) - 1);
	CHECK_STR(c->hostname, host[0] ? host : "localhost");
	CHECK_STR(c->data_dir, "/var/lib/postino");
	CHECK_STR(c->user, "postino");
	CHECK_INT(c->workers, 40);
	CHECK_INT(c->log_level, LOG_LVL_INFO);
	CHECK_STR(c->tls.cert, "/var/lib/postino/tls/cert.pem");
	CHECK_STR(c->tls.key, "/var/lib/postino/tls/key.pem");
	CHECK_INT(c->smtp.max_connections, 256);
	CHECK_INT(c->smtp.max_connections_per_ip, 20);
	CHECK_INT(c->smtp.backlog, 5000);
	CHECK_INT(c->smtp.max_message_size, 50 * 1024 * 1024);
	CHECK_INT(c->smtp.max_recipients, 100);
	CHECK_INT(c->smtp.max_hops, 20);
	CHECK(c->smtp.require_helo);
	CHECK_INT(c->smtp.max_errors, 10);
	CHECK_INT(c->smtp.bare_lf, BARE_LF_REJECT);
	CHECK_INT(c->smtp.auth_mechanisms.n, 5);
	if (c->smtp.auth_mechanisms.n == 5) {
		CHECK_STR(c->smtp.auth_mechanisms.v[0], "PLAIN");
		CHECK_STR(c->smtp.auth_mechanisms.v[4], "SCRAM-SHA-1");
	}
	CHECK_INT(c->smtp.timeout_command, 300);
	CHECK_INT(c->smtp.timeout_data, 600);
	CHECK(c->relay.reject_unauthorized_local_sender);
	CHECK(c->relay.reject_auth_sender_mismatch);
	CHECK(!c->relay.relay_only_local_senders);
	CHECK_INT(c->relay.pop_before_smtp_minutes, 15);
	CHECK(!c->relay.pop_before_smtp_global);
	CHECK_INT(c->antispam.dnsbl.n, 0);
	CHECK(c->antispam.dnsbl_close);
	CHECK(c->antispam.spf_fail_reject);
	CHECK(!c->antispam.spf_softfail_reject);
	CHECK_INT(c->intrusion.block_minutes, 30);
	CHECK_INT(c->intrusion.max_auth_failures, 5);
	CHECK_INT(c->intrusion.max_messages_per_hour, 0);
	CHECK_STR(c->antivirus.clamd, "");
	CHECK(!c->antivirus.on_error_accept);
	CHECK_INT(c->delivery.smarthost_mode, SMARTHOST_NEVER);
	CHECK_INT(c->delivery.max_outgoing, 256);
	CHECK_INT(c->delivery.max_recipients_per_session, 50);
	CHECK_INT(c->delivery.delay_notify_hours, 4);
	CHECK_INT(c->delivery.bounce_after_days, 5);
	CHECK(strncmp(c->delivery.failed_mail, "postmaster@", 11) == 0);
	CHECK_STR(c->delivery.failed_mail + 11, c->hostname);
	CHECK_INT(c->store.driver, STORE_SQLITE);
	CHECK_INT(c->nlisteners, 1);
	CHECK_STR(c->listeners[0].name, "mx");
	CHECK_INT(c->listeners[0].line, 1);
	CHECK_INT(c->listeners[0].tls, TLS_STARTTLS);
	CHECK(!c->listeners[0].auth_plaintext_without_tls);
	conf_free(&c);
	CHECK(c == NULL);
}

static const char good[] =
    "# a full file\n"
    "\n"
    "hostname = mx.example.org\r\n"
    "data_dir = \"var/postino\"\n"
    "workers=4\n"
    "  log_level =   DEBUG  \n"
    "[listener mx]\n"
    "listen = 127.0.0.1:2525, [::1]:2525\n"
    "profile = mx\n"
    "[ listener  sub ]\n"
    "listen = 0.0.0.0:587\n"
    "profile = submissions\n"
    "auth_plaintext_without_tls = on\n"
    "[listener printers]\n"
    "listen = 192.0.2.1:2526\n"
    "profile = devices\n"
    "[listener pop]\n"
    "listen = [::]:110\n"
    "profile = pop3\n"
    "tls = none\n"
    "[tls]\n"
    "cert = /etc/ssl/c.pem\n"
    "[smtp]\n"
    "max_message_size = 10K\n"
    "max_recipients = 1000\n"
    "require_helo = false\n"
    "bare_lf = normalize\n"
    "auth_mechanisms = plain,LOGIN   scram-sha-256\n"
    "[relay]\n"
    "pop_before_smtp_minutes = 0\n"
    "[antispam]\n"
    "dnsbl = zen.spamhaus.org, bl.example\n"
    "spf_fail = tag\n"
    "spf_softfail = reject\n"
    "[antivirus]\n"
    "clamd = /run/clamav/clamd.ctl\n"
    "on_error = accept\n"
    "[delivery]\n"
    "smarthost = relay.example.net:587\n"
    "smarthost_mode = fallback\n"
    "smarthost_password_file = secret\n"
    "smarthost_tls = require\n"
    "failed_mail = bounces@example.org\n"
    "[dns]\n"
    "servers = 127.0.0.1:5353 ::1 [::1]:53 [2001:db8::53]:5353 192.0.2.53\n"
    "[store]\n"
    "driver = postgres\n"
    "dsn = \"host=db user=postino\"\n";

static void
test_good(void)
{
	struct sockaddr_in6	*sin6;
	struct sockaddr_in	*sin;
	struct conf		*c;
	char			 err[512];

	c = parse("/etc/postino/postino.conf", good, err, sizeof(err));
	CHECK_STR(err, "");
	if (c == NULL)
		return;
	CHECK_STR(c->hostname, "mx.example.org");
	CHECK_STR(c->data_dir, "/etc/postino/var/postino");
	CHECK_INT(c->workers, 4);
	CHECK_INT(c->log_level, LOG_LVL_DEBUG);
	CHECK_INT(c->nlisteners, 4);
	CHECK_INT(c->listeners[0].naddrs, 2);
	sin = (struct sockaddr_in *)&c->listeners[0].addrs[0];
	CHECK_INT(sin->sin_family, AF_INET);
	CHECK_INT(ntohs(sin->sin_port), 2525);
	CHECK_INT(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	sin6 = (struct sockaddr_in6 *)&c->listeners[0].addrs[1];
	CHECK_INT(sin6->sin6_family, AF_INET6);
	CHECK_INT(c->listeners[0].addrlens[1], sizeof(*sin6));
	CHECK(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	CHECK_STR(c->listeners[1].name, "sub");
	CHECK_INT(c->listeners[1].profile, PROFILE_SUBMISSIONS);
	CHECK_INT(c->listeners[1].tls, TLS_IMPLICIT);
	CHECK(c->listeners[1].auth_plaintext_without_tls);
	CHECK_INT(c->listeners[2].tls, TLS_NONE);
	CHECK_INT(c->listeners[3].profile, PROFILE_POP3);
	CHECK_INT(c->listeners[3].tls, TLS_NONE);
	CHECK_INT(c->listeners[3].line, 17);
	CHECK_STR(c->tls.cert, "/etc/ssl/c.pem");
	CHECK_STR(c->tls.key, "/etc/postino/var/postino/tls/key.pem");
	CHECK_INT(c->smtp.max_message_size, 10240);
	CHECK_INT(c->smtp.max_recipients, 1000);
	CHECK(!c->smtp.require_helo);
	CHECK_INT(c->smtp.bare_lf, BARE_LF_NORMALIZE);
	CHECK_INT(c->smtp.auth_mechanisms.n, 3);
	CHECK_STR(c->smtp.auth_mechanisms.v[0], "PLAIN");
	CHECK_STR(c->smtp.auth_mechanisms.v[2], "SCRAM-SHA-256");
	CHECK_INT(c->relay.pop_before_smtp_minutes, 0);
	CHECK_INT(c->antispam.dnsbl.n, 2);
	CHECK_STR(c->antispam.dnsbl.v[1], "bl.example");
	CHECK(!c->antispam.spf_fail_reject);
	CHECK(c->antispam.spf_softfail_reject);
	CHECK_STR(c->antivirus.clamd, "/run/clamav/clamd.ctl");
	CHECK(c->antivirus.on_error_accept);
	CHECK_STR(c->delivery.smarthost, "relay.example.net:587");
	CHECK_INT(c->delivery.smarthost_mode, SMARTHOST_FALLBACK);
	CHECK_STR(c->delivery.smarthost_password_file, "/etc/postino/secret");
	CHECK(c->delivery.smarthost_tls_require);
	CHECK_STR(c->delivery.failed_mail, "bounces@example.org");
	CHECK_INT(c->dns.servers.n, 5);
	CHECK_STR(c->dns.servers.v[3], "[2001:db8::53]:5353");
	CHECK_INT(c->store.driver, STORE_POSTGRES);
	CHECK_STR(c->store.dsn, "host=db user=postino");
	conf_free(&c);
}

/* Values of single keys. */
static const struct {
	const char	*text;
	unsigned int	 max_recipients;
	uint64_t	 size;
} value_rows[] = {
	{ "max_recipients = 1\n", 1, 50 << 20 },
	{ "max_recipients = 100000\n", 100000, 50 << 20 },
	{ "max_recipients = 007\n", 7, 50 << 20 },
	{ "max_message_size = 1024\n", 100, 1024 },
	{ "max_message_size = 1k\n", 100, 1024 },
	{ "max_message_size = 2G\n", 100, 2ULL << 30 },
	{ "max_message_size = 1g\n", 100, 1ULL << 30 },
	{ "max_message_size = 3m\n", 100, 3 << 20 },
};

static void
test_values(void)
{
	struct conf	*c;
	char		 text[512], err[512];
	size_t		 i;

	for (i = 0; i < NROWS(value_rows); i++) {
		snprintf(text, sizeof(text), MX "[smtp]\n%s",
		    value_rows[i].text);
		c = parse("v.conf", text, err, sizeof(err));
		CHECK_ROW(c != NULL, value_rows[i].text);
		if (c == NULL) {
			printf("    %s\n", err);
			continue;
		}
		CHECK_ROW(c->smtp.max_recipients ==
		    value_rows[i].max_recipients, value_rows[i].text);
		CHECK_ROW(c->smtp.max_message_size == value_rows[i].size,
		    value_rows[i].text);
		conf_free(&c);
	}
}

/* Each error: the file and the exact message. */
static const struct {
	const char	*text;
	const char	*err;
} error_rows[] = {
	{ "", "e.conf: no [listener] section, expected at least one" },
	/* R7.5: one numeric ADDR:PORT, as a listener's */
	{ MX "[metrics]\nlisten = 127.0.0.1\n", "e.conf:5: key 'listen': "
	    "'127.0.0.1' has no port, expected ADDR:PORT such as "
	    "127.0.0.1:9325 or [::1]:9325" },
	{ MX "[metrics]\nlisten = localhost:9325\n", "e.conf:5: key "
	    "'listen': 'localhost:9325' is not a numeric address, expected "
	    "ADDR:PORT such as 127.0.0.1:9325 or [::1]:9325" },
	{ MX "[metrics]\nlisten = [::1]:70000\n", "e.conf:5: key 'listen': "
	    "'[::1]:70000' has a bad port, expected a port from 1 to 65535" },
	{ MX "[metrics]\nlisten = 127.0.0.1:1, 127.0.0.1:2\n", "e.conf:5: "
	    "key 'listen': '127.0.0.1:1, 127.0.0.1:2' is more than one "
	    "address, expected one ADDR:PORT such as 127.0.0.1:9325" },
	{ "# only\n\n", "e.conf: no [listener] section, expected at least "
	    "one" },
	{ MX "[smtp]\nmax_recipients = abc\n", "e.conf:5: key "
	    "'max_recipients': 'abc' is not a number, expected an integer "
	    "from 1 to 100000" },
	{ MX "[smtp]\nmax_recipients = 12x\n", "e.conf:5: key "
	    "'max_recipients': '12x' is not a number, expected an integer "
	    "from 1 to 100000" },
	{ MX "[smtp]\nmax_recipients = -1\n", "e.conf:5: key "
	    "'max_recipients': '-1' is not a number, expected an integer "
	    "from 1 to 100000" },
	{ MX "[smtp]\nmax_recipients =\n", "e.conf:5: key "
	    "'max_recipients': '' is not a number, expected an integer "
	    "from 1 to 100000" },
	{ MX "[smtp]\nmax_recipients = 0\n", "e.conf:5: key "
	    "'max_recipients': '0' is out of range, expected an integer "
	    "from 1 to 100000" },
	{ MX "[smtp]\nmax_recipients = 100001\n", "e.conf:5: key "
	    "'max_recipients': '100001' is out of range, expected an integer "
	    "from 1 to 100000" },
	{ MX "[smtp]\nmax_recipients = 99999999999999999999999\n",
	    "e.conf:5: key 'max_recipients': '99999999999999999999999' is "
	    "out of range, expected an integer from 1 to 100000" },
	{ "workers = 2000\n" MX, "e.conf:1: key 'workers': '2000' is out "
	    "of range, expected an integer from 1 to 1024" },
	{ MX "[smtp]\nmax_rcpt = 5\n", "e.conf:5: unknown key 'max_rcpt' in "
	    "section [smtp]" },
	{ "foo = 1\n", "e.conf:1: unknown key 'foo' at top level" },
	{ MX "color = red\n", "e.conf:4: unknown key 'color' in section "
	    "[listener mx]" },
	{ MX "[foo]\n", "e.conf:4: unknown section [foo]" },
	{ MX "[smtp\n", "e.conf:4: '[smtp' is not a section header, "
	    "expected [section] or [listener NAME]" },
	{ MX "[smtp] x\n", "e.conf:4: '[smtp] x' is not a section header, "
	    "expected [section] or [listener NAME]" },
	{ MX "[smtp extra]\n", "e.conf:4: section [smtp] takes no name, "
	    "expected [smtp]" },
	{ MX "[smtp]\n[relay]\n[smtp]\n", "e.conf:6: section [smtp] "
	    "repeated (first on line 4), expected each section once" },
	{ MX "[smtp]\nmax_hops = 5\nmax_hops = 6\n", "e.conf:6: key "
	    "'max_hops': set again (first on line 5), expected each key once "
	    "per section" },
	{ MX "profile = mx\n", "e.conf:4: key 'profile': set again (first "
	    "on line 3), expected each key once per section" },
	{ MX "[smtp]\njust words\n", "e.conf:5: 'just words' is not a "
	    "setting, expected key = value, [section] or # comment" },
	{ MX "[smtp]\n= 5\n", "e.conf:5: no key before '=', expected key = "
	    "value" },
	{ "[listener]\n", "e.conf:1: section [listener] has no name, "
	    "expected [listener NAME]" },
	{ "[listener a/b]\n", "e.conf:1: 'a/b' is not a listener name, "
	    "expected letters, digits, '-', '_' or '.' (at most 63)" },
	{ MX "[listener mx]\n", "e.conf:4: section [listener mx] repeated "
	    "(first on line 1), expected unique listener names" },
	{ "[listener mx]\nprofile = mx\n[smtp]\n", "e.conf:1: section "
	    "[listener mx] has no key 'listen', expected listen = ADDR:PORT" },
	{ "[listener mx]\nprofile = mx\n", "e.conf:1: section "
	    "[listener mx] has no key 'listen', expected listen = ADDR:PORT" },
	{ "[listener mx]\nlisten = 127.0.0.1:25\n", "e.conf:1: section "
	    "[listener mx] has no key 'profile', expected profile = VALUE" },
	{ "[listener mx]\nlisten = 127.0.0.1\n", "e.conf:2: key 'listen': "
	    "'127.0.0.1' has no port, expected ADDR:PORT such as 0.0.0.0:25 "
	    "or [::1]:25" },
	{ "[listener mx]\nlisten = ::1:25\n", "e.conf:2: key 'listen': "
	    "'::1:25' has no port, expected ADDR:PORT such as 0.0.0.0:25 or "
	    "[::1]:25" },
	{ "[listener mx]\nlisten = [::1:25\n", "e.conf:2: key 'listen': "
	    "'[::1:25' has no port, expected ADDR:PORT such as 0.0.0.0:25 or "
	    "[::1]:25" },
	{ "[listener mx]\nlisten = 127.0.0.1:0\n", "e.conf:2: key 'listen': "
	    "'127.0.0.1:0' has a bad port, expected a port from 1 to 65535" },
	{ "[listener mx]\nlisten = 127.0.0.1:smtp\n", "e.conf:2: key "
	    "'listen': '127.0.0.1:smtp' has a bad port, expected a port from "
	    "1 to 65535" },
	{ "[listener mx]\nlisten = localhost:25\n", "e.conf:2: key 'listen': "
	    "'localhost:25' is not a numeric address, expected ADDR:PORT such "
	    "as 0.0.0.0:25 or [::1]:25" },
	{ "[listener mx]\nlisten = ,\n", "e.conf:2: key 'listen': empty "
	    "value, expected ADDR:PORT such as 0.0.0.0:25 or [::1]:25" },
	{ "[listener mx]\nlisten = 1.1.1.1:1 1.1.1.1:2 1.1.1.1:3 1.1.1.1:4 "
	    "1.1.1.1:5 1.1.1.1:6 1.1.1.1:7 1.1.1.1:8 1.1.1.1:9\n", "e.conf:2: "
	    "key 'listen': more than 8 addresses, expected at most 8" },
	{ MX "[listener b]\nlisten = [::1]:26, 127.0.0.1:25\nprofile = mx\n",
	    "e.conf:5: key 'listen': an address is also in [listener mx], "
	    "expected each address in one listener" },
	{ "[listener mx]\nprofile = smtp\n", "e.conf:2: key 'profile': "
	    "'smtp' is not a valid value, expected mx, submission, "
	    "submissions, devices, pop3 or pop3s" },
	{ MX "tls = yes\n", "e.conf:4: key 'tls': 'yes' is not a valid "
	    "value, expected none, starttls or implicit" },
	{ MX "[smtp]\nrequire_helo = maybe\n", "e.conf:5: key 'require_helo': "
	    "'maybe' is not a boolean, expected yes or no" },
	{ MX "[smtp]\nmax_message_size = 50X\n", "e.conf:5: key "
	    "'max_message_size': '50X' is not a size, expected bytes or a "
	    "number with K, M or G, from 1K to 2G" },
	{ MX "[smtp]\nmax_message_size = 5MB\n", "e.conf:5: key "
	    "'max_message_size': '5MB' is not a size, expected bytes or a "
	    "number with K, M or G, from 1K to 2G" },
	{ MX "[smtp]\nmax_message_size = 3G\n", "e.conf:5: key "
	    "'max_message_size': '3G' is out of range, expected a size from "
	    "1K to 2G" },
	{ MX "[smtp]\nmax_message_size = 99999999999999G\n", "e.conf:5: key "
	    "'max_message_size': '99999999999999G' is out of range, expected "
	    "a size from 1K to 2G" },
	{ MX "[smtp]\nauth_mechanisms = PLAIN GSSAPI\n", "e.conf:5: key "
	    "'auth_mechanisms': 'GSSAPI' is not a valid item, expected PLAIN, "
	    "LOGIN, CRAM-MD5, SCRAM-SHA-256 or SCRAM-SHA-1" },
	{ MX "[dns]\nservers = ns.example\n", "e.conf:5: key 'servers': "
	    "'ns.example' is not a numeric address, expected ADDR or ADDR:PORT "
	    "such as 192.0.2.53 or [2001:db8::53]:53" },
	/* what c-ares would refuse: getaddrinfo() shorthand, zone index */
	{ MX "[dns]\nservers = 127.0.0.1 127.1\n", "e.conf:5: key "
	    "'servers': '127.1' is not a numeric address, expected ADDR or "
	    "ADDR:PORT such as 192.0.2.53 or [2001:db8::53]:53" },
	{ MX "[dns]\nservers = fe80::1%lo\n", "e.conf:5: key 'servers': "
	    "'fe80::1%lo' is not a numeric address, expected ADDR or "
	    "ADDR:PORT such as 192.0.2.53 or [2001:db8::53]:53" },
	{ MX "[dns]\nservers = [::1]5353\n", "e.conf:5: key 'servers': "
	    "'[::1]5353' is not a numeric address, expected ADDR or ADDR:PORT "
	    "such as 192.0.2.53 or [2001:db8::53]:53" },
	{ MX "[dns]\nservers = 192.0.2.53:0\n", "e.conf:5: key 'servers': "
	    "'192.0.2.53:0' has a bad port, expected a port from 1 to 65535" },
	{ MX "[dns]\nservers = [::1]:domain\n", "e.conf:5: key 'servers': "
	    "'[::1]:domain' has a bad port, expected a port from 1 to 65535" },
	{ MX "[dns]\nservers = [::1]:65536\n", "e.conf:5: key 'servers': "
	    "'[::1]:65536' has a bad port, expected a port from 1 to 65535" },
	{ MX "hostname = \"x\n", "e.conf:4: unknown key 'hostname' in "
	    "section [listener mx]" },
	{ "hostname = \"x\n" MX, "e.conf:1: key 'hostname': no closing "
	    "quote, expected \"VALUE\"" },
	{ "hostname = \"x\" y\n" MX, "e.conf:1: key 'hostname': text after "
	    "the closing quote, expected \"VALUE\"" },
	{ "hostname =\n" MX, "e.conf:1: key 'hostname': empty value, "
	    "expected a non-empty string" },
	{ "data_dir = \"\"\n" MX, "e.conf:1: key 'data_dir': empty value, "
	    "expected a path" },
	{ "user = 0123456789012345678901234567890123456789012345678901234567"
	    "890123456789\n" MX, "e.conf:1: key 'user': '0123456789012345678"
	    "90123456789012345678901234567...' is 70 characters long, expected "
	    "at most 63" },
	{ "hostname = a\001b\n", "e.conf:1: control character \\x01, "
	    "expected text" },
	{ "hostname = it's\n" MX "[x'y]\n", "e.conf:5: unknown section "
	    "[x\\x27y]" },
};

static void
test_errors(void)
{
	struct conf	*c;
	char		 err[512];
	size_t		 i;

	for (i = 0; i < NROWS(error_rows); i++) {
		c = parse("e.conf", error_rows[i].text, err, sizeof(err));
		CHECK_ROW(c == NULL, error_rows[i].err);
		conf_free(&c);
		CHECK_STR(err, error_rows[i].err);
		CHECK_ROW(strchr(err, '\n') == NULL, error_rows[i].err);
	}
}

/* NUL bytes and over-long lines, which strlen() cannot carry. */
static void
test_bytes(void)
{
	static const char nul[] = "hostname = a\0b\n";
	struct conf	*c = NULL;
	char		 err[512], *big;

	CHECK_INT(conf_parse("n.conf", nul, sizeof(nul) - 1, &c, err,
	    sizeof(err)), -1);
	CHECK_STR(err, "n.conf:1: NUL character, expected text");
	big = malloc(10000);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	CHECK_INT(conf_parse("n.conf", big, 9999, &c, err, sizeof(err)), -1);
	CHECK_STR(err, "n.conf:1: line longer than 4096 characters, "
	    "expected shorter lines");
	free(big);
	CHECK(c == NULL);
}

static void
test_load(void)
{
	char		 dir[] = "/tmp/test_conf.XXXXXX", path[256], err[512];
	struct conf	*c;
	FILE		*f;
	int		 fd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/p.conf", dir);
	CHECK_INT(conf_load(path, &c, err, sizeof(err)), -1);
	CHECK(strstr(err, ": cannot read: No such file or directory") != NULL);
	CHECK(strncmp(err, path, strlen(path)) == 0);
	f = fopen(path, "w");
	fputs("data_dir = spool\n" MX, f);
	fclose(f);
	CHECK_INT(conf_load(path, &c, err, sizeof(err)), 0);
	if (c != NULL) {
		CHECK_STR(c->path, path);
		CHECK(strncmp(c->data_dir, dir, strlen(dir)) == 0);
		CHECK_STR(c->data_dir + strlen(dir), "/spool");
		conf_free(&c);
	}
	/* From a descriptor (the parent's copy, shared by the roles): read
	 * from offset 0 whatever the shared offset, named by path. */
	fd = open(path, O_RDONLY);
	CHECK(fd != -1 && lseek(fd, 0, SEEK_END) > 0);
	CHECK_INT(conf_load_fd(fd, path, &c, err, sizeof(err)), 0);
	if (c != NULL) {
		CHECK_STR(c->path, path);
		CHECK_STR(c->data_dir + strlen(dir), "/spool");
		conf_free(&c);
	}
	close(fd);
	f = fopen(path, "w");
	fputs("workers = 0\n", f);
	fclose(f);
	fd = open(path, O_RDONLY);
	CHECK_INT(conf_load_fd(fd, path, &c, err, sizeof(err)), -1);
	CHECK(strncmp(err, path, strlen(path)) == 0 &&
	    strncmp(err + strlen(path), ":1: ", 4) == 0);
	close(fd);
	unlink(path);
	rmdir(dir);
}

/* The dump parses back into the same dump. */
static void
test_roundtrip(void)
{
	struct conf	*c, *c2;
	char		*d1 = NULL, *d2 = NULL, err[512];
	size_t		 n1, n2;
	FILE		*f;

	c = parse("/etc/postino/postino.conf", good, err, sizeof(err));
	CHECK(c != NULL);
	if (c == NULL)
		return;
	f = open_memstream(&d1, &n1);
	conf_dump(c, f);
	fclose(f);
	c2 = parse("/etc/postino/postino.conf", d1, err, sizeof(err));
	CHECK_STR(err, "");
	if (c2 != NULL) {
		f = open_memstream(&d2, &n2);
		conf_dump(c2, f);
		fclose(f);
		CHECK_STR(d2, d1);
	}
	CHECK(strstr(d1, "\n[listener sub]\nlisten = 0.0.0.0:587\n"
	    "profile = submissions\ntls = implicit\n") != NULL);
	CHECK(strstr(d1, "listen = 127.0.0.1:2525, [::1]:2525\n") != NULL);
	CHECK(strstr(d1, "max_message_size = 10K\n") != NULL);
	CHECK(strstr(d1, "auth_mechanisms = PLAIN LOGIN SCRAM-SHA-256\n") !=
	    NULL);
	CHECK(strstr(d1, "dsn = host=db user=postino\n") != NULL);
	free(d1);
	free(d2);
	conf_free(&c);
	conf_free(&c2);
}

static void
test_doc_names(void)
{
	char	*d = NULL;
	size_t	 n;
	FILE	*f;

	f = open_memstream(&d, &n);
	conf_doc(f);
	fclose(f);
	CHECK(strstr(d, "\n## [smtp]\n") != NULL);
	CHECK(strstr(d, "| `max_recipients` | integer | `100` | 1–100000 |")
	    != NULL);
	CHECK(strstr(d, "| `max_message_size` | size | `50M` | 1K–2G |") !=
	    NULL);
	CHECK(strstr(d, "\n## [listener NAME]\n") != NULL);
	free(d);
	CHECK_STR(conf_profile_name(PROFILE_SUBMISSIONS), "submissions");
	CHECK_STR(conf_profile_name(PROFILE_POP3S), "pop3s");
	CHECK_STR(conf_tls_name(TLS_STARTTLS), "starttls");
	CHECK_STR(conf_tls_name((enum tls_mode)9), "?");
}

int
main(void)
{
	RUN(test_defaults);
	RUN(test_good);
	RUN(test_values);
	RUN(test_errors);
	RUN(test_bytes);
	RUN(test_load);
	RUN(test_roundtrip);
	RUN(test_doc_names);
	return test_done();
}

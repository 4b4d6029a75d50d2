/*
 * conf.c - the configuration file parser (R7.1, SPEC section 8).
 *
 * Run by every role (after re-exec), by postino check-config and by
 * postino-admin.  The file comes from the administrator, but it is still
 * read as untrusted text: every line and value is bounded, control
 * characters are refused, and a message quotes the offending text
 * escaped, so an error is always exactly one line.
 *
 * Every key is one row of keys[] below: the parser, the defaults,
 * conf_dump() and conf_doc() all walk that table.  This file uses only
 * the C library and resolve_server_parse(), so the fuzz target links it
 * with src/lib alone.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "resolve.h"

#define LINE_MAX_LEN	4096		/* octets of one line */
#define FILE_MAX_LEN	CONF_FILE_MAX
#define QUOTE_MAX	48		/* octets of a value quoted in errors */

enum key_type {
	KT_STRING, KT_PATH, KT_UINT, KT_SIZE, KT_BOOL, KT_ENUM, KT_LIST,
	KT_LISTEN
};

/* conf_key.flags */
#define K_COMPUTED	0x01	/* default computed after parsing */
#define K_REQUIRED	0x02	/* no default: the key must be given */
#define K_HOSTPORT	0x04	/* list items are ADDR[:PORT] (numeric) */
#define K_ADDRPORT	0x08	/* a string: empty, or one numeric ADDR:PORT */

/* addr_port(): a numeric ADDR:PORT, or what is wrong with it */
enum { AP_OK, AP_NO_PORT, AP_BAD_PORT, AP_NOT_NUMERIC };

struct conf_key {
	const char		*section;	/* NULL: top level */
	const char		*name;
	enum key_type		 type;
	const char		*def;		/* as written in the file */
	uint64_t		 min, max;	/* KT_UINT, KT_SIZE; strings:
						   min 1 = not empty */
	const char *const	*words;		/* KT_ENUM, KT_LIST items */
	size_t			 off, size;	/* the field */
	unsigned int		 flags;
	const char		*doc;
};

/* The field of a key: in struct conf, or in struct conf_listener. */
#define C(m)	offsetof(struct conf, m), sizeof(((struct conf *)0)->m)
#define L(m)	offsetof(struct conf_listener, m), \
		sizeof(((struct conf_listener *)0)->m)

#define LISTENER	"listener"

/* Enum words, in the order of the enum values. */
static const char *const w_log[] = { "err", "warn", "info", "debug", NULL };
static const char *const w_profile[] = { "mx", "submission", "submissions",
	"devices", "pop3", "pop3s", NULL };
static const char *const w_tls[] = { "none", "starttls", "implicit", NULL };
static const char *const w_bare_lf[] = { "reject", "normalize", NULL };
static const char *const w_tag_reject[] = { "tag", "reject", NULL };
static const char *const w_on_error[] = { "tempfail", "accept", NULL };
static const char *const w_smarthost_mode[] = { "never", "always",
	"fallback", NULL };
static const char *const w_may_require[] = { "may", "require", NULL };
static const char *const w_driver[] = { "sqlite", "postgres", NULL };
static const char *const w_mechs[] = { "PLAIN", "LOGIN", "CRAM-MD5",
	"SCRAM-SHA-256", "SCRAM-SHA-1", NULL };

#define U(lo, hi)	(lo), (hi), NULL
#define W(w)		0, 0, (w)
#define S(lo)		(lo), 0, NULL

static const struct conf_key keys[] = {
	{ NULL, "hostname", KT_STRING, "the system's host name", S(1),
	    C(hostname), K_COMPUTED,
	    "Name in the banner, EHLO, Received: and bounces." },
	{ NULL, "data_dir", KT_PATH, "/var/lib/postino", S(1), C(data_dir), 0,
	    "Account store, spool and Maildirs (mail/DOMAIN/USER/)." },
	{ NULL, "user", KT_STRING, "postino", S(1), C(user), 0,
	    "Unprivileged user the daemon runs as after binding ports." },
	{ NULL, "workers", KT_UINT, "40", U(1, 1024), C(workers), 0,
	    "Threads for blocking work (hashing, fsync, SQLite)." },
	{ NULL, "log_level", KT_ENUM, "info", W(w_log), C(log_level), 0,
	    "Least important log lines written." },

	{ LISTENER, "listen", KT_LISTEN, NULL, U(0, 0), L(addrs),
	    K_REQUIRED, "Numeric addresses, e.g. 0.0.0.0:25, [::]:25." },
	{ LISTENER, "profile", KT_ENUM, NULL, W(w_profile), L(profile),
	    K_REQUIRED, "What the listener serves (SPEC R1.1)." },
	{ LISTENER, "tls", KT_ENUM, "by profile", W(w_tls), L(tls),
	    K_COMPUTED, "starttls for mx, submission and pop3; implicit "
	    "for submissions and pop3s; none for devices." },
	{ LISTENER, "auth_plaintext_without_tls", KT_BOOL, "no", U(0, 1),
	    L(auth_plaintext_without_tls), 0,
	    "Offer PLAIN and LOGIN before TLS (R2.2)." },

	{ "tls", "cert", KT_PATH, "<data_dir>/tls/cert.pem", S(1),
	    C(tls.cert), K_COMPUTED,
	    "PEM certificate chain; made self-signed when absent." },
	{ "tls", "key", KT_PATH, "<data_dir>/tls/key.pem", S(1), C(tls.key),
	    K_COMPUTED, "PEM private key; made when absent." },

	{ "smtp", "max_connections", KT_UINT, "256", U(1, 100000),
	    C(smtp.max_connections), 0, "Incoming sessions at once (R1.8)." },
	{ "smtp", "max_connections_per_ip", KT_UINT, "20", U(1, 100000),
	    C(smtp.max_connections_per_ip), 0,
	    "Incoming sessions at once from one client IP." },
	{ "smtp", "backlog", KT_UINT, "5000", U(1, 65535), C(smtp.backlog),
	    0, "listen(2) backlog of every listener." },
	{ "smtp", "max_message_size", KT_SIZE, "50M", U(1024,
	    2ULL << 30), C(smtp.max_message_size), 0,
	    "Largest message accepted; advertised in SIZE (R3.11)." },
	{ "smtp", "max_recipients", KT_UINT, "100", U(1, 100000),
	    C(smtp.max_recipients), 0, "Recipients per message (R3.10)." },
	{ "smtp", "max_hops", KT_UINT, "20", U(1, 1000), C(smtp.max_hops), 0,
	    "Received: headers before a message is refused (R3.12)." },
	{ "smtp", "require_helo", KT_BOOL, "yes", U(0, 1),
	    C(smtp.require_helo), 0, "MAIL needs HELO/EHLO first (R1.3)." },
	{ "smtp", "max_errors", KT_UINT, "10", U(1, 1000),
	    C(smtp.max_errors), 0,
	    "Protocol errors before 421 and close (R1.4)." },
	{ "smtp", "bare_lf", KT_ENUM, "reject", W(w_bare_lf),
	    C(smtp.bare_lf), 0, "Bare LF or CR in DATA (R1.5)." },
	{ "smtp", "auth_mechanisms", KT_LIST,
	    "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256 SCRAM-SHA-1", W(w_mechs),
	    C(smtp.auth_mechanisms), 0, "SASL mechanisms offered (R2.1)." },
	{ "smtp", "scram_iterations", KT_UINT, "4096", U(4096, 1000000),
	    C(smtp.scram_iterations), 0,
	    "PBKDF2 iterations of the SCRAM keys that account add and "
	    "account passwd store (RFC 7677: at least 4096)." },
	{ "smtp", "timeout_command", KT_UINT, "300", U(1, 86400),
	    C(smtp.timeout_command), 0,
	    "Seconds to wait for a command (RFC 5321 4.5.3.2.7)." },
	{ "smtp", "timeout_data", KT_UINT, "600", U(1, 86400),
	    C(smtp.timeout_data), 0,
	    "Seconds to wait for message data (RFC 5321 4.5.3.2.6)." },
	{ "smtp", "peername_lookup", KT_BOOL, "yes", U(0, 1),
	    C(smtp.peername_lookup), 0,
	    "Name the client by its forward-confirmed PTR (the banner waits "
	    "up to 3 s for it)." },
	{ "smtp", "timeout_greeting", KT_UINT, "0", U(0, 300),
	    C(smtp.timeout_greeting), 0,
	    "Seconds to wait before the banner; a client that talks "
	    "first is refused." },

	{ "pop3", "timeout", KT_UINT, "600", U(1, 86400), C(pop3.timeout), 0,
	    "Seconds a POP3 client may stay idle (RFC 1939 3: at least "
	    "600)." },
	{ "pop3", "max_commands", KT_UINT, "1000000", U(10, 100000000),
	    C(pop3.max_commands), 0,
	    "Commands in one POP3 session, then it is closed." },
	{ "pop3", "max_messages", KT_UINT, "100000", U(1, 100000),
	    C(pop3.max_messages), 0,
	    "Messages a POP3 session lists (the oldest); more wait for "
	    "the next session." },

	{ "relay", "reject_unauthorized_local_sender", KT_BOOL, "yes",
	    U(0, 1), C(relay.reject_unauthorized_local_sender), 0,
	    "Local sender needs an authorized session (R3.1)." },
	{ "relay", "reject_auth_sender_mismatch", KT_BOOL, "yes", U(0, 1),
	    C(relay.reject_auth_sender_mismatch), 0,
	    "Sender must be the authenticated account (R3.2)." },
	{ "relay", "relay_only_local_senders", KT_BOOL, "no", U(0, 1),
	    C(relay.relay_only_local_senders), 0,
	    "Relay only for senders of local domains (R3.7)." },
	{ "relay", "pop_before_smtp_minutes", KT_UINT, "15", U(0, 10080),
	    C(relay.pop_before_smtp_minutes), 0,
	    "Minutes a POP3 login authorizes its IP; 0 = off (R3.4)." },
	{ "relay", "pop_before_smtp_global", KT_BOOL, "no", U(0, 1),
	    C(relay.pop_before_smtp_global), 0,
	    "A POP-before-SMTP IP may send as any sender." },

	{ "antispam", "dnsbl", KT_LIST, "", W(NULL), C(antispam.dnsbl), 0,
	    "DNSBL zones, e.g. zen.spamhaus.org (R4.1)." },
	{ "antispam", "dnsbl_close", KT_BOOL, "yes", U(0, 1),
	    C(antispam.dnsbl_close), 0, "Disconnect a listed client." },
	{ "antispam", "reject_unknown_sender_domain", KT_BOOL, "yes",
	    U(0, 1), C(antispam.reject_unknown_sender_domain), 0,
	    "Sender domain needs MX, A or AAAA (R4.2)." },
	{ "antispam", "spf", KT_BOOL, "yes", U(0, 1), C(antispam.spf), 0,
	    "Check SPF on inbound mail (R4.3)." },
	{ "antispam", "spf_fail", KT_ENUM, "reject", W(w_tag_reject),
	    C(antispam.spf_fail_reject), 0, "Policy for SPF fail." },
	{ "antispam", "spf_softfail", KT_ENUM, "tag", W(w_tag_reject),
	    C(antispam.spf_softfail_reject), 0, "Policy for SPF softfail." },
	{ "antispam", "dns_timeout", KT_UINT, "5", U(1, 60),
	    C(antispam.dns_timeout), 0,
	    "Seconds a session waits for its DNSBL, sender domain and SPF "
	    "lookups; a DNSBL that did not answer lists nobody." },

	{ "intrusion", "block_minutes", KT_UINT, "30", U(1, 525600),
	    C(intrusion.block_minutes), 0, "How long an IP is blocked (R4.4)." },
	{ "intrusion", "max_auth_failures", KT_UINT, "5", U(0, 1000000),
	    C(intrusion.max_auth_failures), 0,
	    "Failed logins (SMTP AUTH and POP3) from one address in an hour "
	    "before it is blocked; 0 = off." },
	{ "intrusion", "max_unknown_rcpts", KT_UINT, "10", U(0, 1000000),
	    C(intrusion.max_unknown_rcpts), 0,
	    "RCPTs to unknown users in an hour before a block; 0 = off." },
	{ "intrusion", "max_connections_per_minute", KT_UINT, "60",
	    U(0, 1000000), C(intrusion.max_connections_per_minute), 0,
	    "Connections per minute before a block; 0 = off." },
	{ "intrusion", "max_messages_per_hour", KT_UINT, "0", U(0, 1000000),
	    C(intrusion.max_messages_per_hour), 0,
	    "Messages per hour before a block; 0 = off." },
	{ "intrusion", "max_protocol_errors", KT_UINT, "50", U(0, 1000000),
	    C(intrusion.max_protocol_errors), 0,
	    "Refused commands (SMTP and POP3) in an hour before a block; "
	    "0 = off." },
	{ "intrusion", "bypass", KT_LIST, "", W(NULL), C(intrusion.bypass),
	    0, "IPs, CIDRs and ranges never blocked." },

	{ "ratelimit", "messages_per_account", KT_UINT, "0", U(0, 100000000),
	    C(ratelimit.messages_per_account), 0,
	    "Messages an authenticated account may send in an hour; 0 = off "
	    "(R4.6)." },
	{ "ratelimit", "recipients_per_account", KT_UINT, "0",
	    U(0, 100000000), C(ratelimit.recipients_per_account), 0,
	    "Recipients an authenticated account may send to in an hour; "
	    "0 = off." },
	{ "ratelimit", "messages_per_ip", KT_UINT, "0", U(0, 100000000),
	    C(ratelimit.messages_per_ip), 0,
	    "Messages one client address may send in an hour (not trusted "
	    "or bypassed ones); 0 = off." },
	{ "ratelimit", "recipients_per_ip", KT_UINT, "0", U(0, 100000000),
	    C(ratelimit.recipients_per_ip), 0,
	    "Recipients one client address may send to in an hour; 0 = off." },

	{ "antivirus", "clamd", KT_STRING, "", S(0), C(antivirus.clamd), 0,
	    "clamd socket: unix path or host:port; empty = off. Every "
	    "message received over SMTP is scanned before the reply to "
	    "its end (R4.5)." },
	{ "antivirus", "on_error", KT_ENUM, "tempfail", W(w_on_error),
	    C(antivirus.on_error_accept), 0, "When clamd cannot scan." },
	{ "antivirus", "timeout", KT_UINT, "30", U(1, 3600),
	    C(antivirus.timeout), 0,
	    "Seconds clamd gets to accept the connection, to take each "
	    "chunk of the message and to answer after the last one." },

	{ "delivery", "smarthost", KT_STRING, "", S(0),
	    C(delivery.smarthost), 0, "HOST[:PORT] of the smart host (R5.4)." },
	{ "delivery", "smarthost_mode", KT_ENUM, "never", W(w_smarthost_mode),
	    C(delivery.smarthost_mode), 0,
	    "fallback: only when direct delivery fails." },
	{ "delivery", "smarthost_user", KT_STRING, "", S(0),
	    C(delivery.smarthost_user), 0, "AUTH user at the smart host." },
	{ "delivery", "smarthost_password_file", KT_PATH, "", S(0),
	    C(delivery.smarthost_password_file), 0,
	    "File holding the smart host password." },
	{ "delivery", "smarthost_tls", KT_ENUM, "may", W(w_may_require),
	    C(delivery.smarthost_tls_require), 0,
	    "require: never talk to the smart host in clear." },
	{ "delivery", "max_outgoing", KT_UINT, "256", U(1, 100000),
	    C(delivery.max_outgoing), 0, "Outgoing sessions at once (R5.3)." },
	{ "delivery", "max_outgoing_per_domain", KT_UINT, "20",
	    U(1, 100000), C(delivery.max_outgoing_per_domain), 0,
	    "Outgoing sessions at once to one destination." },
	{ "delivery", "max_recipients_per_session", KT_UINT, "50",
	    U(1, 100000), C(delivery.max_recipients_per_session), 0,
	    "Recipients per outgoing session; the rest go in more." },
	{ "delivery", "delay_notify_hours", KT_UINT, "4", U(0, 720),
	    C(delivery.delay_notify_hours), 0,
	    "Hours before a delay notice; 0 = none (R5.6)." },
	{ "delivery", "bounce_after_days", KT_UINT, "5", U(1, 365),
	    C(delivery.bounce_after_days), 0,
	    "Days before a message is returned as undeliverable." },
	{ "delivery", "failed_mail", KT_STRING, "postmaster@<hostname>",
	    S(1), C(delivery.failed_mail), K_COMPUTED,
	    "Receives bounces that cannot be returned." },
	{ "delivery", "lmtp", KT_STRING, "", S(0), C(delivery.lmtp), 0,
	    "LMTP server for local delivery; empty = Maildir (R5.2)." },
	{ "delivery", "at_commit", KT_BOOL, "yes", U(0, 1),
	    C(delivery.at_commit), 0,
	    "A message for local Maildirs only goes into them before the 250, "
	    "the file received becoming the mailbox file; no = queued first "
	    "(docs/queue.md)." },
	{ "delivery", "smtp_port", KT_UINT, "25", U(1, 65535),
	    C(delivery.smtp_port), 0,
	    "Port of MX hosts and of a smart host given without one." },
	{ "delivery", "retry_first", KT_UINT, "300", U(1, 86400),
	    C(delivery.retry_first), 0,
	    "Seconds before the first retry; doubled each time (R5.6)." },
	{ "delivery", "retry_max", KT_UINT, "3600", U(1, 86400),
	    C(delivery.retry_max), 0, "Longest wait between two retries." },

	{ "dns", "servers", KT_LIST, "", W(NULL), C(dns.servers), K_HOSTPORT,
	    "ADDR[:PORT] of resolvers; empty = the system's." },

	{ "store", "driver", KT_ENUM, "sqlite", W(w_driver), C(store.driver),
	    0, "Account store (R7.2): <data_dir>/postino.db, or PostgreSQL "
	    "shared by several servers (docs/store.md)." },
	{ "store", "dsn", KT_STRING, "", S(0), C(store.dsn), 0,
	    "libpq connection string of the PostgreSQL (driver = postgres; "
	    "also what store migrate copies into)." },

	{ "metrics", "listen", KT_STRING, "", S(0), C(metrics.listen),
	    K_ADDRPORT, "ADDR:PORT of the Prometheus text endpoint, "
	    "GET /metrics over HTTP, without authentication: keep it on "
	    "loopback or a management network; empty = off (R7.5, "
	    "docs/metrics.md)." },
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

struct parser {
	const char		*name;		/* for messages */
	const char		*dir;		/* base of relative paths */
	int			 line;
	char			*err;
	size_t			 errlen;
	struct conf		*conf;
	const char		*section;	/* NULL: top level */
	size_t			 first;		/* first key of the section */
	struct conf_listener	*lst;		/* in [listener NAME] */
	int			 seen[NKEYS];	/* line a key was set on */
	int			 sect_line[NKEYS]; /* by first key */
};

typedef int (*set_fn)(struct parser *, const struct conf_key *,
    const char *, void *);
typedef void (*dump_fn)(const struct conf_key *, const void *, FILE *);

static int	set_string(struct parser *, const struct conf_key *,
		    const char *, void *);
static int	set_path(struct parser *, const struct conf_key *,
		    const char *, void *);
static int	set_uint(struct parser *, const struct conf_key *,
		    const char *, void *);
static int	set_size(struct parser *, const struct conf_key *,
		    const char *, void *);
static int	set_bool(struct parser *, const struct conf_key *,
		    const char *, void *);
static int	set_enum(struct parser *, const struct conf_key *,
		    const char *, void *);
static int	set_list(struct parser *, const struct conf_key *,
		    const char *, void *);
static int	set_listen(struct parser *, const struct conf_key *,
		    const char *, void *);
static int	addr_port(const char *, struct sockaddr_storage *,
		    socklen_t *);
static int	addr_port_err(struct parser *, const struct conf_key *,
		    const char *, int, const char *);
static void	dump_string(const struct conf_key *, const void *, FILE *);
static void	dump_uint(const struct conf_key *, const void *, FILE *);
static void	dump_size(const struct conf_key *, const void *, FILE *);
static void	dump_bool(const struct conf_key *, const void *, FILE *);
static void	dump_enum(const struct conf_key *, const void *, FILE *);
static void	dump_list(const struct conf_key *, const void *, FILE *);
static void	dump_listen(const struct conf_key *, const void *, FILE *);

/* What each type does; indexed by enum key_type. */
static const struct key_type_ops {
	const char	*name;		/* in the documentation */
	set_fn		 set;
	dump_fn		 dump;
} types[] = {
	[KT_STRING] = { "string", set_string, dump_string },
	[KT_PATH] = { "path", set_path, dump_string },
	[KT_UINT] = { "integer", set_uint, dump_uint },
	[KT_SIZE] = { "size", set_size, dump_size },
	[KT_BOOL] = { "yes/no", set_bool, dump_bool },
	[KT_ENUM] = { "one of", set_enum, dump_enum },
	[KT_LIST] = { "list", set_list, dump_list },
	[KT_LISTEN] = { "ADDR:PORT list", set_listen, dump_listen },
};

/* Escape untrusted text for a message: printable ASCII and UTF-8 stay. */
static const char *
esc(const char *s, char *buf, size_t size)
{
	size_t	i, o = 0;

	for (i = 0; s[i] != '\0' && o + 8 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i >= QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'')
			o += snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

/* "NAME:LINE: " and the message; the first error stands. */
static int
perr(struct parser *p, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (p->line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->name);
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

/* "NAME:LINE: key 'KEY': " and the message. */
static int
kerr(struct parser *p, const struct conf_key *k, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return perr(p, "key '%s': %s", k->name, msg);
}

static int
copy(char *dst, size_t size, const char *src)
{
	size_t	len = strlen(src);

	if (len >= size)
		return -1;
	memcpy(dst, src, len + 1);
	return 0;
}

static char *
trim(char *s)
{
	char	*e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

static bool
same_section(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Keys are looked up by section and name. */
static const struct conf_key *
key_find(const char *section, const char *name)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++)
		if (same_section(keys[i].section, section) &&
		    strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Index of the first key of a section, or -1 when there is none. */
static ssize_t
section_find(const char *section)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].section != NULL &&
		    strcmp(keys[i].section, section) == 0)
			return (ssize_t)i;
	return -1;
}

static void *
field(struct conf *conf, struct conf_listener *l, const struct conf_key *k)
{
	if (same_section(k->section, LISTENER))
		return (char *)l + k->off;
	return (char *)conf + k->off;
}

static const void *
cfield(const struct conf *conf, const struct conf_listener *l,
    const struct conf_key *k)
{
	return field((struct conf *)conf, (struct conf_listener *)l, k);
}

/* "a, b or c" */
static void
words_join(const char *const *w, const char *last, char *buf, size_t size)
{
	size_t	i, o = 0;

	buf[0] = '\0';
	for (i = 0; w[i] != NULL && o < size; i++) {
		const char *sep = i == 0 ? "" : w[i + 1] == NULL ? last : ", ";

		o += snprintf(buf + o, size - o, "%s%s", sep, w[i]);
	}
}

static int
set_string(struct parser *p, const struct conf_key *k, const char *v,
    void *f)
{
	char	e[64];

	if (k->min > 0 && *v == '\0')
		return kerr(p, k, "empty value, expected a %s",
		    k->type == KT_PATH ? "path" : "non-empty string");
	if (copy(f, k->size, v) == -1)
		return kerr(p, k, "'%s' is %zu characters long, expected at "
		    "most %zu", esc(v, e, sizeof(e)), strlen(v), k->size - 1);
	if ((k->flags & K_ADDRPORT) && *v != '\0') {
		struct sockaddr_storage	ss;
		socklen_t		len;
		int			why = addr_port(v, &ss, &len);

		if (strpbrk(v, ", \t") != NULL)
			return kerr(p, k, "'%s' is more than one address, "
			    "expected one ADDR:PORT such as 127.0.0.1:9325",
			    esc(v, e, sizeof(e)));
		if (why != AP_OK)
			return addr_port_err(p, k, v, why, "127.0.0.1:9325 or "
			    "[::1]:9325");
	}
	return 0;
}

/* A relative path is taken from the configuration file's directory. */
static int
set_path(struct parser *p, const struct conf_key *k, const char *v, void *f)
{
	char	buf[PATH_MAX * 2], e[64];

	if (*v == '\0' || *v == '/' || p->dir == NULL)
		return set_string(p, k, v, f);
	snprintf(buf, sizeof(buf), "%s/%s", p->dir, v);
	if (copy(f, k->size, buf) == -1)
		return kerr(p, k, "'%s' is too long once made absolute, "
		    "expected at most %zu characters", esc(v, e, sizeof(e)),
		    k->size - 1);
	return 0;
}

/* Digits only, no sign; -1 on anything else or overflow. */
static int
parse_u64(const char *s, const char **end_r, uint64_t *v_r)
{
	uint64_t	v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*end_r = s;
	*v_r = v;
	return 0;
}

static int
set_uint(struct parser *p, const struct conf_key *k, const char *v, void *f)
{
	const char	*end, *what = "is out of range";
	uint64_t	 n;
	char		 e[64];

	if (!isdigit((unsigned char)*v))
		what = "is not a number";
	else if (parse_u64(v, &end, &n) == 0 && *end != '\0')
		what = "is not a number";
	else if (parse_u64(v, &end, &n) == 0 && n >= k->min && n <= k->max) {
		*(unsigned int *)f = (unsigned int)n;
		return 0;
	}
	return kerr(p, k, "'%s' %s, expected an integer from %llu to %llu",
	    esc(v, e, sizeof(e)), what, (unsigned long long)k->min,
	    (unsigned long long)k->max);
}

/* The shortest exact writing of a size: 52428800 -> "50M". */
static void
fmt_size(uint64_t n, char *buf, size_t size)
{
	static const char	units[] = "KMG";
	int			u = -1;

	while (u < 2 && n != 0 && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, size, "%llu", (unsigned long long)n);
	else
		snprintf(buf, size, "%llu%c", (unsigned long long)n, units[u]);
}

static int
size_value(const char *v, uint64_t *n_r)
{
	const char	*end;
	uint64_t	 n, mul = 1;

	if (parse_u64(v, &end, &n) == -1)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		mul = 1024;
		break;
	case 'm': case 'M':
		mul = 1024 * 1024;
		break;
	case 'g': case 'G':
		mul = 1024 * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (__builtin_mul_overflow(n, mul, n_r))
		*n_r = UINT64_MAX;
	return 0;
}

static int
set_size(struct parser *p, const struct conf_key *k, const char *v, void *f)
{
	uint64_t	n;
	char		lo[32], hi[32], e[64];

	fmt_size(k->min, lo, sizeof(lo));
	fmt_size(k->max, hi, sizeof(hi));
	if (size_value(v, &n) == -1)
		return kerr(p, k, "'%s' is not a size, expected bytes or a "
		    "number with K, M or G, from %s to %s",
		    esc(v, e, sizeof(e)), lo, hi);
	if (n < k->min || n > k->max)
		return kerr(p, k, "'%s' is out of range, expected a size "
		    "from %s to %s", esc(v, e, sizeof(e)), lo, hi);
	*(uint64_t *)f = n;
	return 0;
}

static int
set_bool(struct parser *p, const struct conf_key *k, const char *v, void *f)
{
	static const char *const yes[] = { "yes", "true", "on", NULL };
	static const char *const no[] = { "no", "false", "off", NULL };
	char	e[64];
	size_t	i;

	for (i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*(bool *)f = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*(bool *)f = false;
			return 0;
		}
	}
	return kerr(p, k, "'%s' is not a boolean, expected yes or no",
	    esc(v, e, sizeof(e)));
}

/* The index of v in words (case-insensitive), or -1. */
static int
word_index(const char *const *words, const char *v)
{
	int	i;

	for (i = 0; words[i] != NULL; i++)
		if (strcasecmp(words[i], v) == 0)
			return i;
	return -1;
}

/* An enum is stored in an enum (int) field, or a bool for two words. */
static int
set_enum(struct parser *p, const struct conf_key *k, const char *v, void *f)
{
	char	list[256], e[64];
	int	i;

	if ((i = word_index(k->words, v)) == -1) {
		words_join(k->words, " or ", list, sizeof(list));
		return kerr(p, k, "'%s' is not a valid value, expected %s",
		    esc(v, e, sizeof(e)), list);
	}
	if (k->size == sizeof(bool))
		*(bool *)f = i != 0;
	else
		*(int *)f = i;
	return 0;
}

static int
enum_value(const struct conf_key *k, const void *f)
{
	if (k->size == sizeof(bool))
		return *(const bool *)f ? 1 : 0;
	return *(const int *)f;
}

static void
list_clear(struct conf_list *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

/* Split at commas and spaces; *s is advanced past the item. */
static char *
next_item(char **s)
{
	char	*item;

	*s += strspn(*s, ", \t");
	if (**s == '\0')
		return NULL;
	item = *s;
	*s += strcspn(*s, ", \t");
	if (**s != '\0')
		*(*s)++ = '\0';
	return item;
}

/*
 * Split "ADDR:PORT" or "[ADDR]:PORT" in place.  With no port, *port_r
 * is NULL.  Returns -1 when brackets are unbalanced or a bare IPv6
 * address carries a port.
 */
static int
split_hostport(char *s, char **host_r, char **port_r)
{
	char	*c;

	*port_r = NULL;
	if (*s == '[') {
		if ((c = strchr(s, ']')) == NULL)
			return -1;
		*c++ = '\0';
		*host_r = s + 1;
		if (*c == '\0')
			return 0;
		if (*c != ':')
			return -1;
		*port_r = c + 1;
		return 0;
	}
	*host_r = s;
	if ((c = strrchr(s, ':')) == NULL || strchr(s, ':') != c)
		return 0;	/* no port, or a bare IPv6 address */
	*c = '\0';
	*port_r = c + 1;
	return 0;
}

static int
numeric_addr(const char *host, const char *port, struct addrinfo **res_r)
{
	struct addrinfo	hints;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	return getaddrinfo(host, port, &hints, res_r) == 0 ? 0 : -1;
}

static bool
port_valid(const char *port)
{
	const char	*end;
	uint64_t	 n;

	return parse_u64(port, &end, &n) == 0 && *end == '\0' && n >= 1 &&
	    n <= 65535;
}

/*
 * A dns.servers item: numeric ADDR[:PORT].  The resolver's own parser
 * decides, so that check-config never passes what resolver_new()
 * refuses (getaddrinfo() would take "127.1" or a zone index).
 */
static int
check_hostport(struct parser *p, const struct conf_key *k, const char *item)
{
	struct resolve_server	 srv;
	const char		*errstr;
	char			 e[64];

	if (resolve_server_parse(item, &srv, &errstr) == -1)
		return kerr(p, k, "'%s' %s", esc(item, e, sizeof(e)), errstr);
	return 0;
}

static int
list_item(struct parser *p, const struct conf_key *k, const char *item,
    struct conf_list *l)
{
	char	list[256], e[64];
	int	i = -1;

	if (k->words != NULL && (i = word_index(k->words, item)) == -1) {
		words_join(k->words, " or ", list, sizeof(list));
		return kerr(p, k, "'%s' is not a valid item, expected %s",
		    esc(item, e, sizeof(e)), list);
	}
	if ((k->flags & K_HOSTPORT) && check_hostport(p, k, item) == -1)
		return -1;
	if (l->n == CONF_LIST_MAX)
		return kerr(p, k, "more than %d items, expected at most %d",
		    CONF_LIST_MAX, CONF_LIST_MAX);
	if ((l->v[l->n] = strdup(i >= 0 ? k->words[i] : item)) == NULL)
		return kerr(p, k, "out of memory");
	l->n++;
	return 0;
}

static int
set_list(struct parser *p, const struct conf_key *k, const char *v, void *f)
{
	struct conf_list	*l = f;
	char			 buf[LINE_MAX_LEN], *s = buf, *item;

	list_clear(l);
	if (copy(buf, sizeof(buf), v) == -1)
		return kerr(p, k, "value too long, expected at most %d "
		    "characters", LINE_MAX_LEN - 1);
	while ((item = next_item(&s)) != NULL)
		if (list_item(p, k, item, l) == -1)
			return -1;
	return 0;
}

/*
 * One numeric "ADDR:PORT" or "[ADDR]:PORT" (item is not changed) into
 * *ss: AP_OK, or what is wrong (addr_port_err says it).
 */
static int
addr_port(const char *item, struct sockaddr_storage *ss, socklen_t *len_r)
{
	struct addrinfo	*res;
	char		 buf[LINE_MAX_LEN], *host, *port;

	copy(buf, sizeof(buf), item);
	if (split_hostport(buf, &host, &port) == -1 || port == NULL)
		return AP_NO_PORT;
	if (!port_valid(port))
		return AP_BAD_PORT;
	if (numeric_addr(host, port, &res) == -1)
		return AP_NOT_NUMERIC;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len_r = res->ai_addrlen;
	freeaddrinfo(res);
	return AP_OK;
}

/* example: what a right value looks like, "0.0.0.0:25 or [::1]:25". */
static int
addr_port_err(struct parser *p, const struct conf_key *k, const char *item,
    int why, const char *example)
{
	char	e[64];

	esc(item, e, sizeof(e));
	if (why == AP_BAD_PORT)
		return kerr(p, k, "'%s' has a bad port, expected a port from "
		    "1 to 65535", e);
	return kerr(p, k, "'%s' %s, expected ADDR:PORT such as %s", e,
	    why == AP_NO_PORT ? "has no port" : "is not a numeric address",
	    example);
}

int
conf_addr_parse(const char *text, struct sockaddr_storage *ss,
    socklen_t *len_r)
{
	return addr_port(text, ss, len_r) == AP_OK ? 0 : -1;
}

static int
listen_item(struct parser *p, const struct conf_key *k, const char *item,
    struct conf_listener *l)
{
	int	why;

	if (l->naddrs == CONF_LISTEN_MAX)
		return kerr(p, k, "more than %d addresses, expected at most %d",
		    CONF_LISTEN_MAX, CONF_LISTEN_MAX);
	if ((why = addr_port(item, &l->addrs[l->naddrs],
	    &l->addrlens[l->naddrs])) != AP_OK)
		return addr_port_err(p, k, item, why, "0.0.0.0:25 or "
		    "[::1]:25");
	l->naddrs++;
	return 0;
}

static int
set_listen(struct parser *p, const struct conf_key *k, const char *v,
    void *f)
{
	struct conf_listener	*l = p->lst;
	char			 buf[LINE_MAX_LEN], *s = buf, *item;

	(void)f;
	l->naddrs = 0;
	copy(buf, sizeof(buf), v);
	while ((item = next_item(&s)) != NULL)
		if (listen_item(p, k, item, l) == -1)
			return -1;
	if (l->naddrs == 0)
		return kerr(p, k, "empty value, expected ADDR:PORT such as "
		    "0.0.0.0:25 or [::1]:25");
	return 0;
}

static void
dump_string(const struct conf_key *k, const void *f, FILE *out)
{
	const char	*s = f;
	size_t		 len = strlen(s);

	(void)k;
	if (len > 0 && (s[0] == ' ' || s[0] == '"' || s[len - 1] == ' '))
		fprintf(out, " \"%s\"", s);
	else if (len > 0)
		fprintf(out, " %s", s);
}

static void
dump_uint(const struct conf_key *k, const void *f, FILE *out)
{
	(void)k;
	fprintf(out, " %u", *(const unsigned int *)f);
}

static void
dump_size(const struct conf_key *k, const void *f, FILE *out)
{
	char	buf[32];

	(void)k;
	fmt_size(*(const uint64_t *)f, buf, sizeof(buf));
	fprintf(out, " %s", buf);
}

static void
dump_bool(const struct conf_key *k, const void *f, FILE *out)
{
	(void)k;
	fprintf(out, " %s", *(const bool *)f ? "yes" : "no");
}

static void
dump_enum(const struct conf_key *k, const void *f, FILE *out)
{
	fprintf(out, " %s", k->words[enum_value(k, f)]);
}

static void
dump_list(const struct conf_key *k, const void *f, FILE *out)
{
	const struct conf_list	*l = f;
	size_t			 i;

	(void)k;
	for (i = 0; i < l->n; i++)
		fprintf(out, " %s", l->v[i]);
}

static void
dump_listen(const struct conf_key *k, const void *f, FILE *out)
{
	const struct conf_listener	*l = (const struct conf_listener *)
					    ((const char *)f - k->off);
	char				 host[NI_MAXHOST], port[NI_MAXSERV];
	size_t				 i;

	for (i = 0; i < l->naddrs; i++) {
		if (getnameinfo((const struct sockaddr *)&l->addrs[i],
		    l->addrlens[i], host, sizeof(host), port, sizeof(port),
		    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
			continue;
		if (strchr(host, ':') != NULL)
			fprintf(out, "%s[%s]:%s", i ? ", " : " ", host, port);
		else
			fprintf(out, "%s%s:%s", i ? ", " : " ", host, port);
	}
}

/* Set the default of every key that has a plain one. */
static void
set_defaults(struct parser *p, struct conf_listener *l)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++) {
		const struct conf_key *k = &keys[i];

		if (k->flags & (K_COMPUTED | K_REQUIRED))
			continue;
		if ((l != NULL) != same_section(k->section, LISTENER))
			continue;
		p->lst = l;
		if (types[k->type].set(p, k, k->def,
		    field(p->conf, l, k)) == -1) {
			fprintf(stderr, "conf.c: bad default: %s\n", p->err);
			abort();
		}
	}
}

static int
valid_name(const char *s)
{
	size_t	len = strlen(s);

	if (len == 0 || len >= CONF_NAME_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("-_.", *s) == NULL)
			return 0;
	return 1;
}

/* An address of l that an earlier listener has too, or -1. */
static int
addr_taken(const struct conf *c, const struct conf_listener *l,
    const struct conf_listener **other_r)
{
	const struct conf_listener	*o;
	size_t				 i, j;

	for (o = c->listeners; o < l; o++)
		for (i = 0; i < l->naddrs; i++)
			for (j = 0; j < o->naddrs; j++)
				if (l->addrlens[i] == o->addrlens[j] &&
				    memcmp(&l->addrs[i], &o->addrs[j],
				    l->addrlens[i]) == 0) {
					*other_r = o;
					return (int)i;
				}
	return -1;
}

/* The defaults of a listener that depend on its profile. */
static int
end_listener(struct parser *p)
{
	static const enum tls_mode tls_by_profile[] = {
		[PROFILE_MX] = TLS_STARTTLS, [PROFILE_SUBMISSION] = TLS_STARTTLS,
		[PROFILE_SUBMISSIONS] = TLS_IMPLICIT,
		[PROFILE_DEVICES] = TLS_NONE, [PROFILE_POP3] = TLS_STARTTLS,
		[PROFILE_POP3S] = TLS_IMPLICIT,
	};
	const struct conf_listener	*other;
	struct conf_listener		*l = p->lst;
	size_t				 i;

	if (l == NULL)
		return 0;
	p->line = l->line;
	for (i = p->first; i < NKEYS && same_section(keys[i].section,
	    LISTENER); i++)
		if ((keys[i].flags & K_REQUIRED) && p->seen[i] == 0)
			return perr(p, "section [listener %s] has no key '%s', "
			    "expected %s = %s", l->name, keys[i].name,
			    keys[i].name, keys[i].type == KT_LISTEN ?
			    "ADDR:PORT" : "VALUE");
	if ((i = (size_t)addr_taken(p->conf, l, &other)) != (size_t)-1) {
		p->line = p->seen[key_find(LISTENER, "listen") - keys];
		return kerr(p, key_find(LISTENER, "listen"), "an address is "
		    "also in [listener %s], expected each address in one "
		    "listener", other->name);
	}
	if (p->seen[key_find(LISTENER, "tls") - keys] == 0)
		l->tls = tls_by_profile[l->profile];
	p->lst = NULL;
	return 0;
}

static int
listener_begin(struct parser *p, const char *name)
{
	struct conf	*c = p->conf;
	size_t		 i;
	char		 e[64];

	if (*name == '\0')
		return perr(p, "section [listener] has no name, expected "
		    "[listener NAME]");
	if (!valid_name(name))
		return perr(p, "'%s' is not a listener name, expected letters, "
		    "digits, '-', '_' or '.' (at most %d)",
		    esc(name, e, sizeof(e)), CONF_NAME_MAX - 1);
	for (i = 0; i < c->nlisteners; i++)
		if (strcmp(c->listeners[i].name, name) == 0)
			return perr(p, "section [listener %s] repeated (first "
			    "on line %d), expected unique listener names",
			    name, c->listeners[i].line);
	if (c->nlisteners == CONF_LISTENERS_MAX)
		return perr(p, "more than %d listeners, expected at most %d",
		    CONF_LISTENERS_MAX, CONF_LISTENERS_MAX);
	p->lst = &c->listeners[c->nlisteners++];
	copy(p->lst->name, sizeof(p->lst->name), name);
	p->lst->line = p->line;
	set_defaults(p, p->lst);
	return 0;
}

/* "[section]" or "[listener NAME]". */
static int
parse_section(struct parser *p, char *s)
{
	char		*end, *name, *arg, e[64];
	ssize_t		 first;
	int		 line = p->line;

	if ((end = strchr(s, ']')) == NULL || *trim(end + 1) != '\0')
		return perr(p, "'%s' is not a section header, expected "
		    "[section] or [listener NAME]", esc(s, e, sizeof(e)));
	*end = '\0';
	name = trim(s + 1);
	arg = name + strcspn(name, " \t");
	if (*arg != '\0')
		*arg++ = '\0';
	arg = trim(arg);
	if (end_listener(p) == -1)
		return -1;
	p->line = line;
	if ((first = section_find(name)) == -1)
		return perr(p, "unknown section [%s]", esc(name, e, sizeof(e)));
	p->section = keys[first].section;
	p->first = (size_t)first;
	memset(p->seen, 0, sizeof(p->seen));
	if (strcmp(name, LISTENER) == 0)
		return listener_begin(p, arg);
	if (*arg != '\0')
		return perr(p, "section [%s] takes no name, expected [%s]",
		    name, name);
	if (p->sect_line[first] != 0)
		return perr(p, "section [%s] repeated (first on line %d), "
		    "expected each section once", name, p->sect_line[first]);
	p->sect_line[first] = line;
	return 0;
}

/* The value: trimmed, or the text between double quotes. */
static int
unquote(struct parser *p, const struct conf_key *k, char *v, char **v_r)
{
	char	*q;

	*v_r = v;
	if (*v != '"')
		return 0;
	if ((q = strchr(v + 1, '"')) == NULL)
		return kerr(p, k, "no closing quote, expected \"VALUE\"");
	if (q[1] != '\0')
		return kerr(p, k, "text after the closing quote, expected "
		    "\"VALUE\"");
	*q = '\0';
	*v_r = v + 1;
	return 0;
}

static int
unknown_key(struct parser *p, const char *name)
{
	char	e[64];

	esc(name, e, sizeof(e));
	if (p->section == NULL)
		return perr(p, "unknown key '%s' at top level", e);
	if (p->lst != NULL)
		return perr(p, "unknown key '%s' in section [listener %s]", e,
		    p->lst->name);
	return perr(p, "unknown key '%s' in section [%s]", e, p->section);
}

/* "key = value" */
static int
parse_assign(struct parser *p, char *s)
{
	const struct conf_key	*k;
	char			*eq, *name, *v, e[64];
	size_t			 i;

	if ((eq = strchr(s, '=')) == NULL)
		return perr(p, "'%s' is not a setting, expected key = value, "
		    "[section] or # comment", esc(s, e, sizeof(e)));
	*eq = '\0';
	name = trim(s);
	if (*name == '\0')
		return perr(p, "no key before '=', expected key = value");
	if ((k = key_find(p->section, name)) == NULL)
		return unknown_key(p, name);
	i = (size_t)(k - keys);
	if (p->seen[i] != 0)
		return kerr(p, k, "set again (first on line %d), expected "
		    "each key once per section", p->seen[i]);
	p->seen[i] = p->line;
	if (unquote(p, k, trim(eq + 1), &v) == -1)
		return -1;
	return types[k->type].set(p, k, v, field(p->conf, p->lst, k));
}

static int
parse_line(struct parser *p, char *s)
{
	const unsigned char	*c;

	for (c = (const unsigned char *)s; *c != '\0'; c++)
		if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
			return perr(p, "control character \\x%02x, expected "
			    "text", *c);
	s = trim(s);
	if (*s == '\0' || *s == '#')
		return 0;
	if (*s == '[')
		return parse_section(p, s);
	return parse_assign(p, s);
}

/*
 * [store]: PostgreSQL needs a connection string, and one given must be
 * one libpq can read (it is also the default target of "postino-admin
 * store migrate", so a dsn with driver = sqlite is fine).
 */
static int
check_store(struct parser *p)
{
	struct conf		*c = p->conf;
	PQconninfoOption	*o;
	char			*msg = NULL;
	int			 dsn_line;

	if (c->store.driver == STORE_POSTGRES && c->store.dsn[0] == '\0') {
		p->line = p->seen[key_find("store", "driver") - keys];
		return perr(p, "driver = postgres without a dsn, expected dsn "
		    "= \"host=... dbname=...\" (a libpq connection string) "
		    "in [store]");
	}
	if (c->store.dsn[0] == '\0')
		return 0;
	dsn_line = p->seen[key_find("store", "dsn") - keys];
	if ((o = PQconninfoParse(c->store.dsn, &msg)) == NULL) {
		p->line = dsn_line;
		if (msg != NULL)
			msg[strcspn(msg, "\n")] = '\0';
		perr(p, "dsn: %s, expected a libpq connection string "
		    "(\"host=H port=P dbname=D user=U\" or postgresql://...)",
		    msg != NULL ? msg : "out of memory");
		PQfreemem(msg);
		return -1;
	}
	PQconninfoFree(o);
	return 0;
}

/* Defaults that depend on other keys, and whole-file checks. */
static int
finish(struct parser *p)
{
	struct conf	*c = p->conf;
	size_t		 i;

	if (end_listener(p) == -1)
		return -1;
	p->line = 0;
	if (c->nlisteners == 0)
		return perr(p, "no [listener] section, expected at least one");
	if (c->hostname[0] == '\0' &&
	    (gethostname(c->hostname, sizeof(c->hostname) - 1) == -1 ||
	    c->hostname[0] == '\0'))
		copy(c->hostname, sizeof(c->hostname), "localhost");
	for (i = 0; i < 2; i++) {
		char		*f = i == 0 ? c->tls.cert : c->tls.key;
		const char	*base = i == 0 ? "cert.pem" : "key.pem";

		if (f[0] == '\0' && snprintf(f, PATH_MAX, "%s/tls/%s",
		    c->data_dir, base) >= PATH_MAX)
			return perr(p, "data_dir is too long, expected at "
			    "most %d characters", PATH_MAX - 20);
	}
	if (check_store(p) == -1)
		return -1;
	if (c->delivery.failed_mail[0] != '\0')
		return 0;
	if (strlen(c->hostname) + 11 >= sizeof(c->delivery.failed_mail))
		return perr(p, "hostname is too long for the default of "
		    "failed_mail, expected failed_mail = ADDRESS in [delivery]");
	snprintf(c->delivery.failed_mail, sizeof(c->delivery.failed_mail),
	    "postmaster@%.*s", (int)sizeof(c->delivery.failed_mail) - 12,
	    c->hostname);
	return 0;
}

/* One line from text at *off, NUL-terminated in buf; 0 at the end. */
static int
next_line(struct parser *p, const char *text, size_t len, size_t *off,
    char *buf)
{
	const char	*nl;
	size_t		 n;

	if (*off >= len)
		return 0;
	p->line++;
	nl = memchr(text + *off, '\n', len - *off);
	n = (nl != NULL ? (size_t)(nl - text) : len) - *off;
	if (n > 0 && text[*off + n - 1] == '\r')
		n--;
	if (n > LINE_MAX_LEN)
		return perr(p, "line longer than %d characters, expected "
		    "shorter lines", LINE_MAX_LEN);
	if (memchr(text + *off, '\0', n) != NULL)
		return perr(p, "NUL character, expected text");
	memcpy(buf, text + *off, n);
	buf[n] = '\0';
	*off = nl != NULL ? (size_t)(nl - text) + 1 : len;
	return 1;
}

static int
parse_text(struct parser *p, const char *text, size_t len)
{
	char	buf[LINE_MAX_LEN + 1];
	size_t	off = 0;
	int	r;

	set_defaults(p, NULL);
	while ((r = next_line(p, text, len, &off, buf)) == 1)
		if (parse_line(p, buf) == -1)
			return -1;
	if (r == -1)
		return -1;
	return finish(p);
}

/* The part of path before its last '/', or NULL when it has none. */
static char *
dir_of(const char *path)
{
	const char	*slash = strrchr(path, '/');
	char		*d;

	if (slash == NULL)
		return NULL;
	if (slash == path)
		return strdup("");	/* "/x.conf": "" + "/" + rel */
	if ((d = strndup(path, (size_t)(slash - path))) == NULL)
		return NULL;
	return d;
}

static int
parse_in(const char *name, const char *dir, const char *text, size_t len,
    struct conf **conf_r, char *err, size_t errlen)
{
	struct parser	*p;
	struct conf	*c;
	int		 r;

	*conf_r = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		free(p);
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	p->name = name;
	p->dir = dir;
	p->err = err;
	p->errlen = errlen;
	p->conf = c;
	c->refs = 1;
	copy(c->path, sizeof(c->path), name);
	r = parse_text(p, text, len);
	free(p);
	if (r == -1) {
		conf_free(&c);
		return -1;
	}
	*conf_r = c;
	return 0;
}

int
conf_parse(const char *name, const char *text, size_t len,
    struct conf **conf_r, char *err, size_t errlen)
{
	char	*dir = dir_of(name);
	int	 r;

	r = parse_in(name, dir, text, len, conf_r, err, errlen);
	free(dir);
	return r;
}

/* The whole file behind fd, from offset 0 (a descriptor shared with
 * another process keeps its offset). */
static char *
read_fd(int fd, const char *name, size_t *len_r, char *err, size_t errlen)
{
	struct stat	 sb;
	char		*text;
	ssize_t		 n;

	if (fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s: cannot read: %s, expected a "
		    "readable configuration file", name, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > FILE_MAX_LEN) {
		snprintf(err, errlen, "%s: not a regular file of at most "
		    "%d octets, expected a configuration file", name,
		    FILE_MAX_LEN);
		return NULL;
	}
	if ((text = malloc((size_t)sb.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	if ((n = pread(fd, text, (size_t)sb.st_size, 0)) != sb.st_size) {
		snprintf(err, errlen, "%s: cannot read: %s", name,
		    n == -1 ? strerror(errno) : "short read");
		free(text);
		return NULL;
	}
	*len_r = (size_t)n;
	return text;
}

static int
load_fd(int fd, const char *name, const char *dirname,
    struct conf **conf_r, char *err, size_t errlen)
{
	char	*text, *dir;
	size_t	 len;
	int	 r;

	*conf_r = NULL;
	if ((text = read_fd(fd, name, &len, err, errlen)) == NULL)
		return -1;
	dir = dir_of(dirname);
	r = parse_in(name, dir, text, len, conf_r, err, errlen);
	free(dir);
	free(text);
	return r;
}

int
conf_load(const char *path, struct conf **conf_r, char *err, size_t errlen)
{
	char	*real;
	int	 fd, r;

	*conf_r = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: cannot read: %s, expected a "
		    "readable configuration file", path, strerror(errno));
		return -1;
	}
	real = realpath(path, NULL);
	r = load_fd(fd, path, real != NULL ? real : path, conf_r, err,
	    errlen);
	free(real);
	close(fd);
	return r;
}

int
conf_load_fd(int fd, const char *path, struct conf **conf_r, char *err,
    size_t errlen)
{
	return load_fd(fd, path, path, conf_r, err, errlen);
}

void
conf_free(struct conf **confp)
{
	struct conf	*c = *confp;
	size_t		 i;

	if (c == NULL)
		return;
	for (i = 0; i < NKEYS; i++)
		if (keys[i].type == KT_LIST)
			list_clear(field(c, NULL, &keys[i]));
	free(c);
	*confp = NULL;
}

const struct conf *
conf_ref(const struct conf *c)
{
	/* The count is bookkeeping beside the settings, which stay const. */
	((struct conf *)c)->refs++;
	return c;
}

void
conf_unref(const struct conf **cp)
{
	struct conf	*c = (struct conf *)*cp;

	*cp = NULL;
	if (c != NULL && --c->refs == 0)
		conf_free(&c);
}

const char *
conf_profile_name(enum listener_profile p)
{
	if ((size_t)p >= sizeof(w_profile) / sizeof(w_profile[0]) - 1)
		return "?";
	return w_profile[p];
}

const char *
conf_tls_name(enum tls_mode t)
{
	if ((size_t)t >= sizeof(w_tls) / sizeof(w_tls[0]) - 1)
		return "?";
	return w_tls[t];
}

static void
dump_keys(const struct conf *c, const struct conf_listener *l, size_t first,
    FILE *f)
{
	size_t	i;

	for (i = first; i < NKEYS &&
	    same_section(keys[i].section, keys[first].section); i++) {
		fprintf(f, "%s =", keys[i].name);
		types[keys[i].type].dump(&keys[i], cfield(c, l, &keys[i]), f);
		fputc('\n', f);
	}
}

void
conf_dump(const struct conf *c, FILE *f)
{
	size_t	i, j;

	fprintf(f, "# %s\n", c->path);
	for (i = 0; i < NKEYS; i++) {
		if (i > 0 && same_section(keys[i].section,
		    keys[i - 1].section))
			continue;
		if (keys[i].section == NULL) {
			dump_keys(c, NULL, i, f);
		} else if (strcmp(keys[i].section, LISTENER) == 0) {
			for (j = 0; j < c->nlisteners; j++) {
				fprintf(f, "\n[listener %s]\n",
				    c->listeners[j].name);
				dump_keys(c, &c->listeners[j], i, f);
			}
		} else {
			fprintf(f, "\n[%s]\n", keys[i].section);
			dump_keys(c, NULL, i, f);
		}
	}
}

/* The "range" column of the reference. */
static void
doc_range(const struct conf_key *k, char *buf, size_t size)
{
	char	lo[32], hi[32];

	buf[0] = '\0';
	switch (k->type) {
	case KT_UINT:
		snprintf(buf, size, "%llu–%llu", (unsigned long long)k->min,
		    (unsigned long long)k->max);
		break;
	case KT_SIZE:
		fmt_size(k->min, lo, sizeof(lo));
		fmt_size(k->max, hi, sizeof(hi));
		snprintf(buf, size, "%s–%s", lo, hi);
		break;
	case KT_ENUM:
	case KT_LIST:
		if (k->words != NULL)
			words_join(k->words, ", ", buf, size);
		break;
	default:
		break;
	}
}

static void
doc_row(const struct conf_key *k, FILE *f)
{
	char		 range[256];
	const char	*def = k->def, *q = "`";

	doc_range(k, range, sizeof(range));
	if ((k->flags & K_COMPUTED) && strchr(def, '<') == NULL)
		q = "";		/* words, not a value */
	if (k->flags & K_REQUIRED) {
		def = "(required)";
		q = "";
	} else if (*def == '\0') {
		def = "(empty)";
		q = "";
	}
	fprintf(f, "| `%s` | %s | %s%s%s | %s | %s |\n", k->name,
	    types[k->type].name, q, def, q, range, k->doc);
}

void
conf_doc(FILE *f)
{
	size_t	i;

	fprintf(f, "# Configuration reference\n\n"
	    "Generated from the key table in `src/mail/conf.c` by "
	    "`postino-admin show config-doc`; do not edit by hand.\n\n"
	    "The file is `key = value` lines in `[sections]`; a line whose "
	    "first non-blank\ncharacter is `#` is a comment (a `#` after a "
	    "value is part of the value).\nA value may be written in double "
	    "quotes. "
	    "Relative paths are taken from the\nconfiguration file's "
	    "directory. Sizes take K, M or G (1024-based); booleans\n"
	    "are yes/no, true/false or on/off; lists are separated by "
	    "commas or spaces.\n`[listener NAME]` is repeated, once per "
	    "listener; every other section appears\nat most once. "
	    "Errors name the file, the line and the key.\n\n"
	    "SIGHUP or `postino-admin reload` reads the file again: a file "
	    "with an error is\nrefused (the log names the file and line) "
	    "and the running settings stay.\nOtherwise new sessions get the "
	    "new settings, sessions in flight finish on\nthe ones they "
	    "started with. `data_dir`, `user`, `workers`, `[dns] servers`,\n"
	    "`[store]` and `[metrics]` are read at start only: a reload that "
	    "changes one is\nrefused.\n");
	for (i = 0; i < NKEYS; i++) {
		if (i == 0 || !same_section(keys[i].section,
		    keys[i - 1].section)) {
			if (keys[i].section == NULL)
				fprintf(f, "\n## Top level (before any "
				    "section)\n\n");
			else if (strcmp(keys[i].section, LISTENER) == 0)
				fprintf(f, "\n## [listener NAME]\n\n"
				    "At least one; NAME is unique.\n\n");
			else
				fprintf(f, "\n## [%s]\n\n", keys[i].section);
			fprintf(f, "| key | type | default | range | "
			    "description |\n|---|---|---|---|---|\n");
		}
		doc_row(&keys[i], f);
	}
}

/*
 * Text for roff(7): backslashes and minus signs escaped, the range's en
 * dash as \(en, and \& first so that no line begins with a request.
 */
static void
man_text(const char *s, FILE *f)
{
	fputs("\\&", f);
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else if (strncmp(s, "\xe2\x80\x93", 3) == 0) {
			fputs("\\(en", f);
			s += 2;
		} else
			fputc(*s, f);
	}
}

/* One key: its name, then "type range; default", then its doc. */
static void
man_row(const struct conf_key *k, FILE *f)
{
	char		 range[256];
	const char	*sep = k->type == KT_ENUM ? " " :
			    k->type == KT_LIST ? " of " : ", ";

	doc_range(k, range, sizeof(range));
	fprintf(f, ".TP\n.B %s\n", k->name);
	man_text(types[k->type].name, f);
	if (range[0] != '\0') {
		fputs(sep, f);
		man_text(range, f);
	}
	if (k->flags & K_REQUIRED)
		fputs("; required", f);
	else if (*k->def == '\0')
		fputs("; default empty", f);
	else if ((k->flags & K_COMPUTED) && strchr(k->def, '<') == NULL) {
		fputs("; default: ", f);	/* words, not a value */
		man_text(k->def, f);
	} else {
		fputs("; default \\fB", f);
		man_text(k->def, f);
		fputs("\\fR", f);
	}
	fputs(".\n.br\n", f);
	man_text(k->doc, f);
	fputc('\n', f);
}

static void
man_head(FILE *f)
{
	fputs(".\\\" Generated from the key table in src/mail/conf.c by\n"
	    ".\\\" \"postino-admin show config-man\"; do not edit by hand.\n"
	    ".TH POSTINO.CONF 5 \"\" postino \"File Formats Manual\"\n"
	    ".SH NAME\npostino.conf \\- postino mail server configuration\n"
	    ".SH SYNOPSIS\n.I /etc/postino/postino.conf\n"
	    ".SH DESCRIPTION\n.BR postino (8),\n.BR postino\\-admin (8)\n"
	    "and\n.BR postino\\-sendmail (1)\nread one configuration file: "
	    "the one named with\n.BR \\-c ,\nelse\n"
	    ".IR /etc/postino/postino.conf .\n"
	    ".PP\nThe file is\n.I key\n=\n.I value\nlines in\n"
	    ".RI [ sections ];\na line whose first non-blank character is\n"
	    ".B #\nis a comment (a\n.B #\nafter a value is part of the "
	    "value).\nA value may be written in double quotes.\n"
	    "Relative paths are taken from the configuration file's "
	    "directory.\nSizes take K, M or G (1024-based); booleans are "
	    "yes/no, true/false or on/off;\nlists are separated by commas "
	    "or spaces.\n.B [listener\n.IB NAME ]\nis repeated, once per "
	    "listener; every other section appears at most once.\n"
	    ".PP\n.B postino \\-c\n.I FILE\n.B check\\-config\n"
	    "checks the file; an error names the file, the line and the "
	    "key.\n.B postino\\-admin show config\nprints every key with "
	    "the value in effect.\n"
	    ".PP\n.B SIGHUP\nor\n.B postino\\-admin reload\nreads the "
	    "file again: a file with an error is refused (the log\nnames "
	    "the file and line) and the running settings stay.\nOtherwise "
	    "new sessions get the new settings, sessions in flight finish "
	    "on\nthe ones they started with.\n.BR data_dir ,\n.BR user ,\n"
	    ".BR workers ,\n.BR \"[dns] servers\" ,\n.B [store]\nand\n"
	    ".B [metrics]\nare read at start only: a reload that changes one "
	    "is refused.\n"
	    ".PP\nEach key below gives its type, its range or its values, "
	    "its default and\nwhat it is for; R and a number name the "
	    "requirement of postino's\nspecification that the key serves.\n"
	    ".SH KEYS\n", f);
}

static void
man_tail(FILE *f)
{
	fputs(".SH FILES\n.TP\n.I /etc/postino/postino.conf\n"
	    "The configuration file read when no\n.B \\-c\nis given.\n"
	    ".TP\n.I share/doc/postino/postino.conf.example\n"
	    "Under the installation prefix: a configuration to start from.\n"
	    ".SH EXAMPLES\nA server for its own domains on the standard "
	    "ports:\n.PP\n.RS 4\n.nf\nhostname = mx.example.org\n"
	    "data_dir = /var/lib/postino\n\n[listener mx]\n"
	    "listen = 0.0.0.0:25, [::]:25\nprofile = mx\n\n"
	    "[listener submission]\nlisten = 0.0.0.0:587, [::]:587\n"
	    "profile = submission\n\n[tls]\n"
	    "cert = /etc/letsencrypt/live/mx.example.org/fullchain.pem\n"
	    "key = /etc/letsencrypt/live/mx.example.org/privkey.pem\n\n"
	    "[antispam]\n"
	    "dnsbl = zen.spamhaus.org\n.fi\n.RE\n"
	    ".SH SEE ALSO\n.BR postino (8),\n.BR postino\\-admin (8),\n"
	    ".BR postino\\-sendmail (1)\n", f);
}

void
conf_man(FILE *f)
{
	size_t	i;

	man_head(f);
	for (i = 0; i < NKEYS; i++) {
		if (i == 0 || !same_section(keys[i].section,
		    keys[i - 1].section)) {
			if (keys[i].section == NULL)
				fputs(".SS \"Top level (before any section)\"\n",
				    f);
			else if (strcmp(keys[i].section, LISTENER) == 0)
				fputs(".SS \"[listener NAME]\"\nAt least one; "
				    "NAME is unique.\n", f);
			else
				fprintf(f, ".SS \"[%s]\"\n", keys[i].section);
		}
		man_row(&keys[i], f);
	}
	man_tail(f);
}

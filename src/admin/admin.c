/*
 * admin.c - postino-admin(8): the administrator's command line (R7.3,
 * SPEC section 8).
 *
 *	postino-admin [-c FILE] COMMAND [ARG...]
 *
 * Every command is one row of cmds[] (words, operand counts, flags,
 * handler, usage); main() only looks the row up and runs it.  Changes
 * go straight to the account store: <data_dir>/postino.db, which the
 * daemon shares (WAL), or with [store] driver = postgres the PostgreSQL
 * every server shares (they hear of each change by NOTIFY).  "store
 * migrate" copies the first into the second.  Run as root, the program
 * becomes the configured
 * user before it opens the store, so every file stays the daemon's.
 * Operands come from the administrator but are still checked (addr_parse,
 * inet_pton) before they reach the store.
 *
 * Exit status: 0 done, 1 refused (one line on stderr), 2 usage.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "conf.h"
#include "control.h"
#include "db.h"
#include "explain.h"
#include "policy.h"
#include "resolve.h"
#include "fsio.h"
#include "ipmatch.h"
#include "xalloc.h"

#define DEFAULT_CONF	"/etc/postino/postino.conf"
#define PASSWORD_MAX	1024
#define EX_REFUSED	1
#define EX_USAGE	2

struct admin {
	const char	*conf_path;
	struct conf	*conf;
	struct db	*db;
	bool		 password_stdin;
};

typedef int	(*cmd_fn)(struct admin *, int, char **);

/* cmd.flags */
#define C_CONF		0x01	/* needs the configuration */
#define C_DB		0x03	/* needs the account store (and the conf) */
#define C_PWSTDIN	0x04	/* takes --password-stdin */
#define C_OPTS		0x08	/* parses its own --options */

struct cmd {
	const char	*w1, *w2;	/* the command words; w2 NULL: any */
	int		 min, max;	/* operands; max -1: no limit */
	unsigned int	 flags;
	cmd_fn		 run;
	const char	*usage;		/* the operands */
};

static int	do_domain_add(struct admin *, int, char **);
static int	do_domain_del(struct admin *, int, char **);
static int	do_domain_list(struct admin *, int, char **);
static int	do_account_add(struct admin *, int, char **);
static int	do_account_passwd(struct admin *, int, char **);
static int	do_account_disable(struct admin *, int, char **);
static int	do_account_enable(struct admin *, int, char **);
static int	do_account_smtp_auth(struct admin *, int, char **);
static int	do_account_list(struct admin *, int, char **);
static int	do_account_send_as(struct admin *, int, char **);
static int	do_account_del(struct admin *, int, char **);
static int	do_alias_add(struct admin *, int, char **);
static int	do_alias_del(struct admin *, int, char **);
static int	do_alias_list(struct admin *, int, char **);
static int	do_trusted_add(struct admin *, int, char **);
static int	do_trusted_del(struct admin *, int, char **);
static int	do_trusted_list(struct admin *, int, char **);
static int	do_bypass_add(struct admin *, int, char **);
static int	do_bypass_del(struct admin *, int, char **);
static int	do_bypass_list(struct admin *, int, char **);
static int	do_device_add(struct admin *, int, char **);
static int	do_device_del(struct admin *, int, char **);
static int	do_device_list(struct admin *, int, char **);
static int	do_redirect_add(struct admin *, int, char **);
static int	do_redirect_del(struct admin *, int, char **);
static int	do_redirect_list(struct admin *, int, char **);
static int	do_block_list(struct admin *, int, char **);
static int	do_block_del(struct admin *, int, char **);
static int	do_popauth_grant(struct admin *, int, char **);
static int	do_show_config(struct admin *, int, char **);
static int	do_show_config_doc(struct admin *, int, char **);
static int	do_show_config_man(struct admin *, int, char **);
static int	do_queue(struct admin *, int, char **);
static int	do_reload(struct admin *, int, char **);
static int	do_stats(struct admin *, int, char **);
static int	do_explain(struct admin *, int, char **);
static int	do_store_migrate(struct admin *, int, char **);
static int	become_user(const struct conf *);

static const struct cmd cmds[] = {
	{ "domain", "add", 1, 1, C_DB, do_domain_add, "NAME" },
	{ "domain", "del", 1, 1, C_DB, do_domain_del, "NAME" },
	{ "domain", "list", 0, 0, C_DB, do_domain_list, "" },
	{ "account", "add", 1, 1, C_DB | C_PWSTDIN, do_account_add,
	    "ADDR [--password-stdin]" },
	{ "account", "passwd", 1, 1, C_DB | C_PWSTDIN, do_account_passwd,
	    "ADDR [--password-stdin]" },
	{ "account", "disable", 1, 1, C_DB, do_account_disable, "ADDR" },
	{ "account", "enable", 1, 1, C_DB, do_account_enable, "ADDR" },
	{ "account", "smtp-auth", 2, 2, C_DB, do_account_smtp_auth,
	    "ADDR on|off" },
	{ "account", "list", 0, 0, C_DB, do_account_list, "" },
	{ "account", "send-as", 2, 2, C_DB, do_account_send_as,
	    "ADDR OTHER" },
	{ "account", "del", 1, 1, C_DB, do_account_del, "ADDR" },
	{ "alias", "add", 2, -1, C_DB, do_alias_add,
	    "ADDR|@DOMAIN TARGET..." },
	{ "alias", "del", 1, -1, C_DB, do_alias_del,
	    "ADDR|@DOMAIN [TARGET...]" },
	{ "alias", "list", 0, 0, C_DB, do_alias_list, "" },
	{ "trusted", "add", 1, 1, C_DB, do_trusted_add,
	    "IP|CIDR|RANGE|HOST" },
	{ "trusted", "del", 1, 1, C_DB, do_trusted_del, "ENTRY" },
	{ "trusted", "list", 0, 0, C_DB, do_trusted_list, "" },
	{ "bypass", "add", 2, 2, C_DB, do_bypass_add,
	    "local-sender|auth-mismatch ADDR|DOMAIN|IP|CIDR|RANGE" },
	{ "bypass", "del", 2, 2, C_DB, do_bypass_del,
	    "local-sender|auth-mismatch ENTRY" },
	{ "bypass", "list", 1, 1, C_DB, do_bypass_list,
	    "local-sender|auth-mismatch" },
	{ "device", "add", 1, 1, C_DB, do_device_add, "IP|CIDR|RANGE" },
	{ "device", "del", 1, 1, C_DB, do_device_del, "IP" },
	{ "device", "list", 0, 0, C_DB, do_device_list, "" },
	{ "redirect", "add", 3, 3, C_DB, do_redirect_add,
	    "DOMAIN TARGET HOST[:PORT]" },
	{ "redirect", "del", 1, 1, C_DB, do_redirect_del, "DOMAIN" },
	{ "redirect", "list", 0, 0, C_DB, do_redirect_list, "" },
	{ "block", "list", 0, 0, C_DB, do_block_list, "" },
	{ "block", "del", 1, 1, C_DB, do_block_del, "IP" },
	{ "popauth", "grant", 2, 2, C_DB, do_popauth_grant, "ADDR IP" },
	{ "store", "migrate", 0, 3, C_CONF | C_OPTS, do_store_migrate,
	    "[--to DSN] [--replace]" },
	{ "show", "config", 0, 0, C_CONF, do_show_config, "" },
	{ "show", "config-doc", 0, 0, 0, do_show_config_doc, "" },
	{ "show", "config-man", 0, 0, 0, do_show_config_man, "" },
	{ "queue", "list", 0, 0, C_CONF, do_queue, "" },
	{ "queue", "show", 1, 1, C_CONF, do_queue, "ID" },
	{ "queue", "flush", 0, 1, C_CONF, do_queue, "[ID]" },
	{ "queue", "hold", 1, 1, C_CONF, do_queue, "ID" },
	{ "queue", "release", 1, 1, C_CONF, do_queue, "ID" },
	{ "queue", "delete", 1, 1, C_CONF, do_queue, "ID" },
	{ "queue", "bounce", 1, 1, C_CONF, do_queue, "ID" },
	{ "stats", NULL, 0, 0, C_CONF, do_stats, "" },
	{ "reload", NULL, 0, 0, C_CONF, do_reload, "" },
	{ "explain", NULL, 0, -1, C_DB | C_OPTS, do_explain,
	    "--ip IP [--auth ADDR] [--helo NAME] [--listener PROFILE] "
	    "--from ADDR --to ADDR [--to ADDR...]" },
};

#define NCMDS	(sizeof(cmds) / sizeof(cmds[0]))

static int
refuse(const char *fmt, ...)
{
	va_list	ap;

	fputs("postino-admin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EX_REFUSED;
}

static void
usage_cmd(FILE *f, const struct cmd *c)
{
	fprintf(f, "  %s%s%s%s%s\n", c->w1, c->w2 ? " " : "",
	    c->w2 ? c->w2 : "", *c->usage ? " " : "", c->usage);
}

/* All commands, or those of one group (w1 not NULL). */
static int
usage(const char *w1)
{
	size_t	i;

	fprintf(stderr, "usage: postino-admin [-c FILE] COMMAND [ARG...]\n"
	    "commands:\n");
	for (i = 0; i < NCMDS; i++)
		if (w1 == NULL || strcmp(cmds[i].w1, w1) == 0)
			usage_cmd(stderr, &cmds[i]);
	return EX_USAGE;
}

/* Operand checks: each returns 0, or refuses with a reason. */

/* A plain local@domain, written canonically into buf. */
static int
check_addr(const char *s, char *buf, size_t size)
{
	struct mailaddr	 a;
	const char	*errstr;

	if (addr_parse(s, true, &a, &errstr) == -1)
		return refuse("'%s' is not an address: %s", s, errstr);
	if (a.domain[0] == '\0' || (a.flags & (ADDR_F_QUOTED |
	    ADDR_F_LITERAL)))
		return refuse("'%s' is not a plain local@domain address", s);
	if (addr_format(&a, buf, size) == -1)
		return refuse("'%s' is too long", s);
	return 0;
}

static int
check_domain(const char *s)
{
	if (!addr_domain_valid(s, true))
		return refuse("'%s' is not a domain name", s);
	return 0;
}

/* An alias address: local@domain, or "@domain" for the catch-all. */
static int
check_alias(const char *s, char *buf, size_t size)
{
	if (s[0] != '@')
		return check_addr(s, buf, size);
	if (check_domain(s + 1) != 0)
		return EX_REFUSED;
	snprintf(buf, size, "%s", s);
	return 0;
}

/* The address family of a numeric IP and its bytes, or 0. */
static int
ip_parse(const char *s, unsigned char *out)
{
	if (inet_pton(AF_INET, s, out) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, out) == 1)
		return AF_INET6;
	return 0;
}

static bool
cidr_valid(const char *s)
{
	unsigned char	 ip[16];
	char		 buf[INET6_ADDRSTRLEN + 8], *slash, *end;
	long		 bits;
	int		 af;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf) ||
	    (slash = strchr(buf, '/')) == NULL)
		return false;
	*slash++ = '\0';
	if ((af = ip_parse(buf, ip)) == 0 || *slash < '0' || *slash > '9')
		return false;
	bits = strtol(slash, &end, 10);
	return *end == '\0' && bits >= 0 &&
	    bits <= (af == AF_INET ? 32 : 128);
}

/* "192.168.0.1-50" or "FIRST-LAST", first <= last. */
static bool
range_valid(const char *s)
{
	unsigned char	 lo[16], hi[16];
	char		 buf[2 * INET6_ADDRSTRLEN + 2], *dash, *end;
	long		 last;
	int		 af;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf) ||
	    (dash = strchr(buf, '-')) == NULL)
		return false;
	*dash++ = '\0';
	if ((af = ip_parse(buf, lo)) == 0)
		return false;
	if (af == AF_INET && strspn(dash, "0123456789") == strlen(dash) &&
	    *dash != '\0') {
		last = strtol(dash, &end, 10);
		return strlen(dash) <= 3 && last <= 255 && last >= lo[3];
	}
	if (ip_parse(dash, hi) != af)
		return false;
	return memcmp(lo, hi, af == AF_INET ? 4 : 16) <= 0;
}

static bool
ip_entry_valid(const char *s)
{
	unsigned char	ip[16];

	return ip_parse(s, ip) != 0 || cidr_valid(s) || range_valid(s);
}

static int
check_ip(const char *s)
{
	unsigned char	ip[16];

	if (ip_parse(s, ip) == 0)
		return refuse("'%s' is not an IP address", s);
	return 0;
}

static int
check_ip_entry(const char *s)
{
	if (!ip_entry_valid(s))
		return refuse("'%s' is not an IP address, CIDR or range "
		    "(192.168.0.1-50)", s);
	return 0;
}

/* A host name, not something numeric that failed as an IP entry. */
static bool
host_valid(const char *s)
{
	const char	*last = strrchr(s, '.');

	last = last != NULL ? last + 1 : s;
	if (strpbrk(last, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == NULL)
		return false;		/* every TLD has a letter */
	return addr_domain_valid(s, false);
}

/* HOST[:PORT] or [IPV6][:PORT]. */
static int
check_hostport(const char *s)
{
	unsigned char	 ip[16];
	char		 buf[ADDR_DOMAIN_MAX + 16], *port = NULL, *end;
	const char	*host = buf;
	long		 n;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return refuse("'%s' is too long for a host", s);
	if (buf[0] == '[' && (end = strchr(buf, ']')) != NULL) {
		*end = '\0';
		host = buf + 1;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			host = "";
	} else if ((port = strchr(buf, ':')) != NULL) {
		*port++ = '\0';
	}
	if (port != NULL && ((n = strtol(port, &end, 10)) < 1 || n > 65535 ||
	    *end != '\0' || *port < '0' || *port > '9'))
		return refuse("'%s' has a bad port, expected 1 to 65535", s);
	if (ip_parse(host, ip) == 0 && !host_valid(host))
		return refuse("'%s' is not a host, expected HOST[:PORT]", s);
	return 0;
}

/* A redirect target: an address, %%alias%% and %%domain%% allowed. */
static int
check_redirect_target(const char *s)
{
	struct mailaddr	 m;
	const char	*errstr, *p;
	char		 out[ADDR_PATH_MAX * 2];
	size_t		 o = 0;

	for (p = s; *p != '\0' && o + 16 < sizeof(out); p++) {
		if (strncmp(p, "%%alias%%", 9) == 0) {
			o += snprintf(out + o, sizeof(out) - o, "alias");
			p += 8;
		} else if (strncmp(p, "%%domain%%", 10) == 0) {
			o += snprintf(out + o, sizeof(out) - o, "example.org");
			p += 9;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	if (addr_parse(out, true, &m, &errstr) == -1 || m.domain[0] == '\0')
		return refuse("'%s' is not a redirect target, expected an "
		    "address such as %%%%alias%%%%@other.example", s);
	return 0;
}

static int
db_result(int r, const char *err)
{
	if (r == -1)
		return refuse("%s", err);
	return 0;
}

/* Listings: one line per row, columns separated by spaces. */
static void
print_row(void *arg, int ncols, const char *const *cols)
{
	int	i;

	(void)arg;
	for (i = 0; i < ncols; i++)
		printf("%s%s", cols[i], i + 1 < ncols ? " " : "\n");
}

static int
list(struct admin *a, enum db_view v)
{
	char	err[512];

	return db_result(db_view(a->db, v, print_row, NULL, err, sizeof(err)),
	    err);
}

/*
 * RFC 5321 4.5.1: a new domain's postmaster reaches [delivery]
 * failed_mail, unless the domain has one already - and unless that is
 * the computed default postmaster@hostname outside our domains, which
 * would only send the postmaster's mail away, or round in a loop.
 */
static void
add_postmaster(struct admin *a, const char *domain)
{
	const char		*fm = a->conf->delivery.failed_mail;
	const char		*at = strrchr(fm, '@');
	struct db_targets	 t;
	char			 pm[ADDR_DOMAIN_MAX + 16], def[300], err[512];

	snprintf(def, sizeof(def), "postmaster@%s", a->conf->hostname);
	if (at == NULL || (strcasecmp(fm, def) == 0 &&
	    !db_domain_is_local(a->db, at + 1)))
		return;
	if (db_rcpt_resolve(a->db, "postmaster", domain, &t) != DB_RCPT_UNKNOWN)
		return;
	snprintf(pm, sizeof(pm), "postmaster@%s", domain);
	if (db_alias_add(a->db, pm, fm, err, sizeof(err)) == -1)
		fprintf(stderr, "postino-admin: %s has no postmaster: %s\n",
		    domain, err);
}

static int
do_domain_add(struct admin *a, int argc, char **argv)
{
	char	err[512];

	if (check_domain(argv[0]) != 0)
		return EX_REFUSED;
	if (db_domain_add(a->db, argv[0], err, sizeof(err)) == -1)
		return db_result(-1, err);
	add_postmaster(a, argv[0]);
	return 0;
}

static int
do_domain_del(struct admin *a, int argc, char **argv)
{
	char	err[512];

	return db_result(db_domain_del(a->db, argv[0], err, sizeof(err)), err);
}

static int
do_domain_list(struct admin *a, int argc, char **argv)
{
	return list(a, DB_VIEW_DOMAINS);
}

/* One line from stdin, without its newline. */
static int
password_stdin(char *buf, size_t size)
{
	size_t	len;

	if (fgets(buf, (int)size, stdin) == NULL)
		return refuse("no password on standard input");
	len = strcspn(buf, "\n");
	if (buf[len] != '\n' && !feof(stdin))
		return refuse("password longer than %d characters",
		    PASSWORD_MAX - 2);
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\r')
		buf[len - 1] = '\0';
	return 0;
}

/* Ask on the terminal, with echo off. */
static int
ask(int fd, const char *prompt, char *buf, size_t size)
{
	struct termios	old, noecho;
	size_t		len = 0;
	char		c;
	int		r = 0;

	if (tcgetattr(fd, &old) == -1)
		return -1;
	noecho = old;
	noecho.c_lflag &= ~(ECHO | ECHONL);
	noecho.c_lflag |= ICANON;
	if (tcsetattr(fd, TCSAFLUSH, &noecho) == -1)
		return -1;
	(void)!write(fd, prompt, strlen(prompt));
	while ((r = (int)read(fd, &c, 1)) == 1 && c != '\n')
		if (len + 1 < size)
			buf[len++] = c;
	buf[len] = '\0';
	tcsetattr(fd, TCSAFLUSH, &old);
	(void)!write(fd, "\n", 1);
	return r == -1 ? -1 : 0;
}

static int
password_tty(char *buf, size_t size)
{
	char	again[PASSWORD_MAX];
	int	fd, r = 0;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) == -1)
		return refuse("no terminal to ask the password on; use "
		    "--password-stdin");
	if (ask(fd, "Password: ", buf, size) == -1 ||
	    ask(fd, "Again: ", again, sizeof(again)) == -1)
		r = refuse("cannot read the password: %s", strerror(errno));
	else if (strcmp(buf, again) != 0)
		r = refuse("the passwords do not match");
	explicit_bzero(again, sizeof(again));
	close(fd);
	return r;
}

static int
get_password(struct admin *a, char *buf, size_t size)
{
	int	r;

	r = a->password_stdin ? password_stdin(buf, size) :
	    password_tty(buf, size);
	if (r == 0 && buf[0] == '\0')
		return refuse("empty password");
	return r;
}

/* account add and account passwd. */
static int
set_password(struct admin *a, const char *arg, bool add)
{
	char	addr[ADDR_PATH_MAX], pw[PASSWORD_MAX], err[512];
	int	r;

	if (check_addr(arg, addr, sizeof(addr)) != 0)
		return EX_REFUSED;
	if (add && !db_domain_is_local(a->db, strrchr(addr, '@') + 1))
		return refuse("domain %s is not local; add it with: "
		    "postino-admin domain add %s", strrchr(addr, '@') + 1,
		    strrchr(addr, '@') + 1);
	if (get_password(a, pw, sizeof(pw)) != 0)
		return EX_REFUSED;
	if (add)
		r = db_account_add(a->db, addr, pw, err, sizeof(err));
	else
		r = db_account_passwd(a->db, addr, pw, err, sizeof(err));
	explicit_bzero(pw, sizeof(pw));
	return db_result(r, err);
}

static int
do_account_add(struct admin *a, int argc, char **argv)
{
	return set_password(a, argv[0], true);
}

static int
do_account_passwd(struct admin *a, int argc, char **argv)
{
	return set_password(a, argv[0], false);
}

static int
account_set(struct admin *a, const char *arg, const char *field, bool on)
{
	char	addr[ADDR_PATH_MAX], err[512];

	if (check_addr(arg, addr, sizeof(addr)) != 0)
		return EX_REFUSED;
	return db_result(db_account_set(a->db, addr, field, on, err,
	    sizeof(err)), err);
}

static int
do_account_disable(struct admin *a, int argc, char **argv)
{
	return account_set(a, argv[0], "enabled", false);
}

static int
do_account_enable(struct admin *a, int argc, char **argv)
{
	return account_set(a, argv[0], "enabled", true);
}

static int
do_account_smtp_auth(struct admin *a, int argc, char **argv)
{
	if (strcmp(argv[1], "on") != 0 && strcmp(argv[1], "off") != 0)
		return usage("account");
	return account_set(a, argv[0], "smtp_auth",
	    strcmp(argv[1], "on") == 0);
}

static int
do_account_list(struct admin *a, int argc, char **argv)
{
	return list(a, DB_VIEW_ACCOUNTS);
}

static int
do_account_send_as(struct admin *a, int argc, char **argv)
{
	char	addr[ADDR_PATH_MAX], other[ADDR_PATH_MAX], err[512];

	if (check_addr(argv[0], addr, sizeof(addr)) != 0 ||
	    check_addr(argv[1], other, sizeof(other)) != 0)
		return EX_REFUSED;
	return db_result(db_send_as_add(a->db, addr, other, err, sizeof(err)),
	    err);
}

static int
do_account_del(struct admin *a, int argc, char **argv)
{
	char	addr[ADDR_PATH_MAX], err[512];

	if (check_addr(argv[0], addr, sizeof(addr)) != 0)
		return EX_REFUSED;
	return db_result(db_account_del(a->db, addr, err, sizeof(err)), err);
}

/* Every target is checked before the first is added. */
static int
do_alias_add(struct admin *a, int argc, char **argv)
{
	char	addr[ADDR_PATH_MAX], t[ADDR_PATH_MAX], err[512];
	int	i;

	if (check_alias(argv[0], addr, sizeof(addr)) != 0)
		return EX_REFUSED;
	for (i = 1; i < argc; i++)
		if (check_addr(argv[i], t, sizeof(t)) != 0)
			return EX_REFUSED;
	for (i = 1; i < argc; i++) {
		check_addr(argv[i], t, sizeof(t));
		if (db_alias_add(a->db, addr, t, err, sizeof(err)) == -1)
			return refuse("%s", err);
	}
	return 0;
}

static int
do_alias_del(struct admin *a, int argc, char **argv)
{
	char	addr[ADDR_PATH_MAX], t[ADDR_PATH_MAX], err[512];
	int	i;

	if (check_alias(argv[0], addr, sizeof(addr)) != 0)
		return EX_REFUSED;
	if (argc == 1)
		return db_result(db_alias_del(a->db, addr, NULL, err,
		    sizeof(err)), err);
	for (i = 1; i < argc; i++) {
		if (check_addr(argv[i], t, sizeof(t)) != 0)
			return EX_REFUSED;
		if (db_alias_del(a->db, addr, t, err, sizeof(err)) == -1)
			return refuse("%s", err);
	}
	return 0;
}

static int
do_alias_list(struct admin *a, int argc, char **argv)
{
	return list(a, DB_VIEW_ALIASES);
}

static int
set_add(struct admin *a, enum db_set set, const char *entry)
{
	char	err[512];

	return db_result(db_set_add(a->db, set, entry, err, sizeof(err)), err);
}

static int
set_del(struct admin *a, enum db_set set, const char *entry)
{
	char	err[512];

	return db_result(db_set_del(a->db, set, entry, err, sizeof(err)), err);
}

/* A host name may be written fully qualified: "relay.example.org." */
static char *
strip_root_dot(char *s)
{
	size_t	len = strlen(s);

	if (len > 1 && s[len - 1] == '.')
		s[len - 1] = '\0';
	return s;
}

static int
do_trusted_add(struct admin *a, int argc, char **argv)
{
	char	*e = strip_root_dot(argv[0]);

	if (!ip_entry_valid(e) && !host_valid(e))
		return refuse("'%s' is not an IP address, CIDR, range "
		    "(192.168.0.1-50) or host name", e);
	return set_add(a, DB_SET_TRUSTED, e);
}

static int
do_trusted_del(struct admin *a, int argc, char **argv)
{
	return set_del(a, DB_SET_TRUSTED, strip_root_dot(argv[0]));
}

static int
do_trusted_list(struct admin *a, int argc, char **argv)
{
	return list(a, DB_VIEW_TRUSTED);
}

/* "local-sender" or "auth-mismatch"; -1 for anything else. */
static int
bypass_list(const char *name, enum db_set *set_r, enum db_view *view_r)
{
	if (strcmp(name, "local-sender") == 0) {
		*set_r = DB_SET_BYPASS_LOCAL_SENDER;
		*view_r = DB_VIEW_BYPASS_LOCAL_SENDER;
		return 0;
	}
	if (strcmp(name, "auth-mismatch") == 0) {
		*set_r = DB_SET_BYPASS_AUTH_MISMATCH;
		*view_r = DB_VIEW_BYPASS_AUTH_MISMATCH;
		return 0;
	}
	return -1;
}

static int
do_bypass_add(struct admin *a, int argc, char **argv)
{
	struct mailaddr	 m;
	const char	*errstr;
	enum db_set	 set;
	enum db_view	 view;

	if (bypass_list(argv[0], &set, &view) == -1)
		return usage("bypass");
	if (!ip_entry_valid(argv[1]) && !host_valid(argv[1]) &&
	    addr_parse(argv[1], true, &m, &errstr) == -1)
		return refuse("'%s' is not an address, domain, IP address, "
		    "CIDR or range", argv[1]);
	return set_add(a, set, argv[1]);
}

static int
do_bypass_del(struct admin *a, int argc, char **argv)
{
	enum db_set	set;
	enum db_view	view;

	if (bypass_list(argv[0], &set, &view) == -1)
		return usage("bypass");
	return set_del(a, set, argv[1]);
}

static int
do_bypass_list(struct admin *a, int argc, char **argv)
{
	enum db_set	set;
	enum db_view	view;

	if (bypass_list(argv[0], &set, &view) == -1)
		return usage("bypass");
	return list(a, view);
}

static int
do_device_add(struct admin *a, int argc, char **argv)
{
	if (check_ip_entry(argv[0]) != 0)
		return EX_REFUSED;
	return set_add(a, DB_SET_DEVICES, argv[0]);
}

static int
do_device_del(struct admin *a, int argc, char **argv)
{
	return set_del(a, DB_SET_DEVICES, argv[0]);
}

static int
do_device_list(struct admin *a, int argc, char **argv)
{
	return list(a, DB_VIEW_DEVICES);
}

static int
do_redirect_add(struct admin *a, int argc, char **argv)
{
	char	err[512];

	if (check_domain(argv[0]) != 0 || check_redirect_target(argv[1]) != 0 ||
	    check_hostport(argv[2]) != 0)
		return EX_REFUSED;
	return db_result(db_redirect_add(a->db, argv[0], argv[1], argv[2], err,
	    sizeof(err)), err);
}

static int
do_redirect_del(struct admin *a, int argc, char **argv)
{
	char	err[512];

	return db_result(db_redirect_del(a->db, argv[0], err, sizeof(err)),
	    err);
}

static int
do_redirect_list(struct admin *a, int argc, char **argv)
{
	return list(a, DB_VIEW_REDIRECTS);
}

static int
do_block_list(struct admin *a, int argc, char **argv)
{
	return list(a, DB_VIEW_BLOCKS);
}

static int
do_block_del(struct admin *a, int argc, char **argv)
{
	char	err[512];

	if (check_ip(argv[0]) != 0)
		return EX_REFUSED;
	return db_result(db_block_del(a->db, argv[0], err, sizeof(err)), err);
}

/* For an IMAP server's post-login hook (R3.4, R7.3). */
static int
do_popauth_grant(struct admin *a, int argc, char **argv)
{
	char		addr[ADDR_PATH_MAX], err[512];
	unsigned int	minutes = a->conf->relay.pop_before_smtp_minutes;

	if (minutes == 0)
		return refuse("POP-before-SMTP is off "
		    "(relay.pop_before_smtp_minutes = 0)");
	if (check_addr(argv[0], addr, sizeof(addr)) != 0 ||
	    check_ip(argv[1]) != 0)
		return EX_REFUSED;
	return db_result(db_popauth_grant(a->db, addr, argv[1], minutes, err,
	    sizeof(err)), err);
}

/*
 * Copy the SQLite store of data_dir into PostgreSQL (R7.2), every table
 * in one transaction there; a target that holds rows already is left
 * alone unless --replace says to empty it first.
 */
static int
do_store_migrate(struct admin *a, int argc, char **argv)
{
	const char	*dsn = a->conf->store.dsn;
	struct db	*from = NULL, *to = NULL;
	char		 err[1024];
	bool		 replace = false;
	long long	 n;
	int		 i, r = EX_REFUSED;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--replace") == 0)
			replace = true;
		else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			dsn = argv[++i];
		else
			return usage("store");
	}
	if (*dsn == '\0')
		return refuse("no PostgreSQL to migrate to: give --to DSN, or "
		    "dsn in [store] of %s", a->conf_path);
	if (become_user(a->conf) != 0)
		return EX_REFUSED;
	if (access("postino.db", F_OK) == -1)
		return refuse("no SQLite store %s/postino.db to migrate: %s",
		    a->conf->data_dir, strerror(errno));
	if (db_open("postino.db", &from, err, sizeof(err)) == -1 ||
	    db_open_pg(dsn, &to, err, sizeof(err)) == -1) {
		refuse("%s", err);
		goto out;
	}
	if ((n = db_rows(to, err, sizeof(err))) == -1)
		refuse("%s", err);
	else if (n > 0 && !replace)
		refuse("the PostgreSQL store holds %lld row%s already; "
		    "--replace empties it first", n, n == 1 ? "" : "s");
	else if (db_copy(from, to, DB_TABLES_ALL, err, sizeof(err)) == -1 ||
	    (n = db_rows(to, err, sizeof(err))) == -1)
		refuse("%s", err);
	else {
		printf("migrated %lld row%s of %s/postino.db\n", n,
		    n == 1 ? "" : "s", a->conf->data_dir);
		r = 0;
	}
out:
	db_close(&from);
	db_close(&to);
	return r;
}

/* The listener profile explain plays; -1 if name is none. */
static int
profile_named(const char *name, enum listener_profile *p)
{
	static const enum listener_profile all[] = { PROFILE_MX,
	    PROFILE_SUBMISSION, PROFILE_SUBMISSIONS, PROFILE_DEVICES };
	size_t	i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(conf_profile_name(all[i]), name) == 0) {
			*p = all[i];
			return 0;
		}
	return -1;
}

/*
 * Look the trusted host names up, as the daemon has, before deciding;
 * then explain, asking the DNS what a live session would (DNSBL, the
 * sender's domain).
 */
static int
explain_resolved(struct admin *a, struct policy *p, struct explain_req *q)
{
	struct event_base	*base;
	struct resolver		*res;
	char			 err[256];

	if ((base = event_base_new()) == NULL)
		return refuse("cannot start an event loop");
	if ((res = resolver_new(base, a->conf->dns.servers.v,
	    a->conf->dns.servers.n, err,
	    sizeof(err))) == NULL) {
		event_base_free(base);
		return refuse("resolver: %s", err);
	}
	policy_resolve(p, res);
	while (policy_resolving(p) > 0 &&
	    event_base_loop(base, EVLOOP_ONCE) == 0)
		;
	q->resolver = res;
	explain(p, q, stdout);
	resolver_free(res);
	event_base_free(base);
	return 0;
}

/*
 * R3.13: what a session from --ip would be told, and why, decided by the
 * same engine the daemon runs, on the same store.
 */
static int
do_explain(struct admin *a, int argc, char **argv)
{
	struct explain_req	 q = { .profile = PROFILE_MX };
	struct db_cred		 cred;
	struct policy		*p;
	char			 from[ADDR_PATH_MAX + 1];
	char			 to[EXPLAIN_RCPTS_MAX][ADDR_PATH_MAX + 1];
	uint8_t			 ip[16];
	int			 i, r;

	for (i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return usage("explain");
		i++;
		if (strcmp(o, "--ip") == 0)
			q.ip = v;
		else if (strcmp(o, "--auth") == 0)
			q.auth = v;
		else if (strcmp(o, "--helo") == 0)
			q.helo = v;
		else if (strcmp(o, "--from") == 0)
			q.from = explain_path(v, from, sizeof(from));
		else if (strcmp(o, "--to") == 0 && q.nto < EXPLAIN_RCPTS_MAX) {
			q.to[q.nto] = explain_path(v, to[q.nto],
			    sizeof(to[q.nto]));
			q.nto++;
		} else if (strcmp(o, "--listener") == 0) {
			if (profile_named(v, &q.profile) == -1)
				return refuse("--listener '%s': expected mx, "
				    "submission, submissions or devices", v);
		} else
			return usage("explain");
	}
	if (q.ip == NULL || q.from == NULL || q.nto == 0)
		return usage("explain");
	if (ipmatch_addr(q.ip, ip) == -1)
		return refuse("--ip '%s' is not an IP address", q.ip);
	if (q.auth != NULL) {
		if (db_account_cred(a->db, q.auth, true, &cred) != DB_AUTH_OK)
			return refuse("--auth %s: no account that may use "
			    "SMTP AUTH", q.auth);
		q.auth = cred.address;
	}
	p = policy_new(a->conf, a->db);
	if (policy_reload(p, true) == -1) {
		policy_free(p);
		return refuse("cannot read the policy lists");
	}
	r = explain_resolved(a, p, &q);
	policy_free(p);
	return r;
}

static int
do_show_config(struct admin *a, int argc, char **argv)
{
	conf_dump(a->conf, stdout);
	return 0;
}

static int
do_show_config_doc(struct admin *a, int argc, char **argv)
{
	conf_doc(stdout);
	return 0;
}

static int
do_show_config_man(struct admin *a, int argc, char **argv)
{
	conf_man(stdout);
	return 0;
}

/*
 * Commands that act through the running daemon: one request line on
 * the store's control socket, then its answer until it closes.
 */
static int
control_request(struct admin *a, const char *req)
{
	struct sockaddr_un	 sun;
	char			 buf[8192], *out = NULL, *nl;
	size_t			 len = 0;
	ssize_t			 n;
	int			 fd, r;

	if (chdir(a->conf->data_dir) == -1)
		return refuse("cannot enter %s: %s", a->conf->data_dir,
		    strerror(errno));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", CONTROL_SOCKET);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return refuse("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		r = errno;
		close(fd);
		if (r == EACCES)
			return refuse("%s/%s: permission denied: run as root "
			    "or as user %s", a->conf->data_dir, CONTROL_SOCKET,
			    a->conf->user);
		return refuse("postino is not running (%s/%s: %s); this "
		    "command acts through the daemon", a->conf->data_dir,
		    CONTROL_SOCKET, strerror(r));
	}
	if (fsio_write_all(fd, req, strlen(req)) == -1) {
		close(fd);
		return refuse("control socket: %s", strerror(errno));
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		out = xreallocarray(out, len + (size_t)n + 1, 1);
		memcpy(out + len, buf, (size_t)n);
		len += (size_t)n;
	}
	close(fd);
	if (out == NULL)
		return refuse("the daemon closed the control socket without an "
		    "answer");
	out[len] = '\0';
	if (strncmp(out, "ok\n", 3) == 0) {
		fputs(out + 3, stdout);
		free(out);
		return 0;
	}
	if ((nl = strchr(out, '\n')) != NULL)
		*nl = '\0';
	r = refuse("%s", strncmp(out, "error ", 6) == 0 ? out + 6 : out);
	free(out);
	return r;
}

/* R5.7: "queue VERB [ID]", carried out by the daemon's scheduler;
 * argv[-1] is the verb: run() passes the operands after it. */
static int
do_queue(struct admin *a, int argc, char **argv)
{
	char	req[128];

	snprintf(req, sizeof(req), "queue %s %s\n", argv[-1],
	    argc > 0 ? argv[0] : "");
	return control_request(a, req);
}

/* R7.1: the parent reads the file again; the answer says how it went. */
static int
do_reload(struct admin *a, int argc, char **argv)
{
	return control_request(a, "reload\n");
}

/* R7.5: the daemon's statistics, the samples of its metrics endpoint. */
static int
do_stats(struct admin *a, int argc, char **argv)
{
	return control_request(a, "stats\n");
}

/*
 * Create the data directory if it is missing, enter it, and, as root,
 * hand it to the configured user (when it exists) and become that user
 * before the store is opened, so that every file stays the daemon's
 * (R7.7) - as the daemon's parent does at each start.  Entering it
 * first lets the store be reached even when a directory above it is
 * closed to that user (a checkout under /root with `make run`).
 */
static int
become_user(const struct conf *conf)
{
	struct passwd	*pw = NULL;

	if (geteuid() == 0)
		pw = getpwnam(conf->user);
	if (fsio_mkdirs(conf->data_dir, 0750) == -1)
		return refuse("cannot create %s: %s", conf->data_dir,
		    strerror(errno));
	if (chdir(conf->data_dir) == -1)
		return refuse("cannot enter %s: %s", conf->data_dir,
		    strerror(errno));
	if (pw == NULL)
		return 0;
	if (chown(".", pw->pw_uid, pw->pw_gid) == -1)
		return refuse("cannot chown %s: %s", conf->data_dir,
		    strerror(errno));
	if (setgid(pw->pw_gid) == -1 ||
	    initgroups(pw->pw_name, pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1)
		return refuse("cannot become user %s: %s", pw->pw_name,
		    strerror(errno));
	return 0;
}

static int
prepare(struct admin *a, unsigned int flags)
{
	char	err[1024];

	if ((flags & C_CONF) && conf_load(a->conf_path, &a->conf, err,
	    sizeof(err)) == -1)
		return refuse("%s", err);
	if ((flags & C_DB) != C_DB)
		return 0;
	if (become_user(a->conf) != 0)
		return EX_REFUSED;
	if (a->conf->store.driver == STORE_POSTGRES) {
		if (db_open_pg(a->conf->store.dsn, &a->db, err,
		    sizeof(err)) == -1)
			return refuse("%s", err);
	} else if (db_open("postino.db", &a->db, err, sizeof(err)) == -1)
		return refuse("%s (in %s)", err, a->conf->data_dir);
	db_set_scram_iterations(a->db, a->conf->smtp.scram_iterations);
	return 0;
}

/* Remove --password-stdin from the operands; other options are usage. */
static int
take_options(struct admin *a, const struct cmd *c, int *argc, char **argv)
{
	int	i, n = 0;

	for (i = 0; i < *argc; i++) {
		if ((c->flags & C_PWSTDIN) &&
		    strcmp(argv[i], "--password-stdin") == 0) {
			a->password_stdin = true;
			continue;
		}
		if (strncmp(argv[i], "--", 2) == 0 && !(c->flags & C_OPTS))
			return -1;
		argv[n++] = argv[i];
	}
	*argc = n;
	return 0;
}

static const struct cmd *
cmd_find(int argc, char **argv)
{
	size_t	i;

	for (i = 0; i < NCMDS; i++) {
		if (strcmp(cmds[i].w1, argv[0]) != 0)
			continue;
		if (cmds[i].w2 == NULL)
			return &cmds[i];
		if (argc > 1 && strcmp(cmds[i].w2, argv[1]) == 0)
			return &cmds[i];
	}
	return NULL;
}

static int
run(struct admin *a, int argc, char **argv)
{
	const struct cmd	*c;
	int			 words, r;

	if (argc == 0)
		return usage(NULL);
	if ((c = cmd_find(argc, argv)) == NULL)
		return usage(argv[0]);
	words = c->w2 != NULL ? 2 : 1;
	argc -= words;
	argv += words;
	if (take_options(a, c, &argc, argv) == -1 || argc < c->min ||
	    (c->max >= 0 && argc > c->max))
		return usage(c->w1);
	if ((r = prepare(a, c->flags)) != 0)
		return r;
	return c->run(a, argc, argv);
}

int
main(int argc, char **argv)
{
	struct admin	a = { .conf_path = DEFAULT_CONF };
	int		ch, r;

	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c':
			a.conf_path = optarg;
			break;
		default:
			return usage(NULL);
		}
	}
	r = run(&a, argc - optind, argv + optind);
	db_close(&a.db);
	conf_free(&a.conf);
	if (fflush(stdout) == EOF)
		return refuse("cannot write: %s", strerror(errno));
	return r;
}

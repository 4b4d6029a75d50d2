/*
 * test_policy.c - the policy golden files (STYLE 11, as Postfix's
 * smtpd_check.in/.ref): each tests/unit/policy/NAME.in builds a store
 * and a configuration and runs dialogues through explain(), the code
 * behind "postino-admin explain" (R3.13); what they print must equal
 * NAME.ref byte for byte.  tests/unit/policy/README.md gives the format.
 *
 *	test_policy [-u] [DIR]
 *
 * -u (or POLICY_UPDATE=1 in the environment) writes the .ref files
 * instead of comparing: for a developer who has read the new output.
 * DIR is the folder of the cases; without it $POLICY_DIR, else
 * tests/unit/policy under the current directory (make runs from the
 * root) or under the checkout the binary was built in.
 *
 * Each case runs in its own temporary data directory, removed after.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "compat.h"
#include "conf.h"
#include "db.h"
#include "explain.h"
#include "ipmatch.h"
#include "policy.h"
#include "test.h"

#define CASES_DIR	"tests/unit/policy"
#define CONF_MAX	32		/* "conf" lines of a case */
#define ARGS_MAX	(2 * EXPLAIN_RCPTS_MAX + 16)
#define PASSWORD	"secret"	/* every account's; AUTH is given */
#define GRANT_MINUTES	15

/* A configuration key set by a "conf" line; section "" is the top. */
struct conf_kv {
	char	section[32];
	char	key[64];
	char	value[256];
};

/* One .in file being run. */
struct pcase {
	const char	*name;		/* NAME.in, for messages */
	int		 line;
	char		 dir[64];	/* its data_dir */
	char		 dbpath[128];
	struct db	*db;
	struct conf_kv	 conf[CONF_MAX];
	size_t		 nconf;
	FILE		*out;		/* what the .ref must hold */
	int		 nexplain;
};

typedef int	directive_fn(struct pcase *, int argc, char **argv,
		    char *rest);

static directive_fn	do_conf, do_domain, do_account, do_disable, do_alias,
			do_send_as,
			do_trusted, do_bypass, do_device, do_grant,
			do_grant_expired, do_block, do_explain;

#define EXPLAIN_USAGE	"--ip IP [--auth ACCOUNT] [--helo NAME] "	\
	"[--listener PROFILE] --from ADDR --to ADDR [--to ADDR...]"

/*
 * The lines of a .in file besides comments.  nargs: the words after the
 * directive, -1 for any number, 0 for the rest of the line unsplit.
 */
static const struct directive {
	const char	*name;
	int		 nargs;
	directive_fn	*run;
	const char	*usage;
} directives[] = {
	{ "conf",		0, do_conf,	"[SECTION.]KEY = VALUE" },
	{ "domain",		1, do_domain,	"NAME" },
	{ "account",		1, do_account,	"ADDR" },
	{ "disable",		1, do_disable,	"ACCOUNT" },
	{ "alias",		2, do_alias,	"ADDR|@DOMAIN TARGET" },
	{ "send-as",		2, do_send_as,	"ACCOUNT ADDR" },
	{ "trusted",		1, do_trusted,	"IP|CIDR|RANGE" },
	{ "bypass",		2, do_bypass,
	    "local-sender|auth-mismatch ENTRY" },
	{ "device",		1, do_device,	"IP|CIDR|RANGE" },
	{ "grant",		2, do_grant,	"ACCOUNT IP" },
	{ "grant-expired",	2, do_grant_expired, "ACCOUNT IP" },
	{ "block",		1, do_block,	"IP" },
	{ "explain",		-1, do_explain,	EXPLAIN_USAGE },
};
#define NDIRECTIVES	(sizeof(directives) / sizeof(directives[0]))

static const enum listener_profile profiles[] = {
	PROFILE_MX, PROFILE_SUBMISSION, PROFILE_SUBMISSIONS, PROFILE_DEVICES
};

static int	fail(struct pcase *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* A mistake in the .in file or a store that refused: the case fails. */
static int
fail(struct pcase *c, const char *fmt, ...)
{
	va_list	ap;

	printf("  %s:%d: ", c->name, c->line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return -1;
}

/* --- the directives -------------------------------------------------- */

static int
conf_set(struct pcase *c, const char *section, const char *key,
    const char *value)
{
	struct conf_kv	*kv;
	size_t		 i;

	for (i = 0; i < c->nconf; i++)
		if (strcmp(c->conf[i].section, section) == 0 &&
		    strcmp(c->conf[i].key, key) == 0)
			break;
	if (i == CONF_MAX)
		return fail(c, "more than %d conf lines", CONF_MAX);
	kv = &c->conf[i];
	if (strlcpy(kv->section, section, sizeof(kv->section)) >=
	    sizeof(kv->section) ||
	    strlcpy(kv->key, key, sizeof(kv->key)) >= sizeof(kv->key) ||
	    strlcpy(kv->value, value, sizeof(kv->value)) >= sizeof(kv->value))
		return fail(c, "conf line too long");
	if (i == c->nconf)
		c->nconf++;
	return 0;
}

/* "relay.relay_only_local_senders = yes"; a later line for the same key
 * wins, from the next explain on. */
static int
do_conf(struct pcase *c, int argc, char **argv, char *rest)
{
	char	*eq, *key, *value, *dot, *end;

	if ((eq = strchr(rest, '=')) == NULL)
		return fail(c, "conf: expected [SECTION.]KEY = VALUE");
	*eq = '\0';
	key = rest;
	for (end = eq; end > key && isspace((unsigned char)end[-1]); end--)
		end[-1] = '\0';
	for (value = eq + 1; isspace((unsigned char)*value); value++)
		;
	if (*key == '\0' || strpbrk(key, " \t") != NULL)
		return fail(c, "conf: expected [SECTION.]KEY = VALUE");
	if ((dot = strchr(key, '.')) == NULL)
		return conf_set(c, "", key, value);
	*dot = '\0';
	return conf_set(c, key, dot + 1, value);
}

/* The result of a db change: its one-line reason fails the case. */
static int
stored(struct pcase *c, int r, const char *err)
{
	return r == -1 ? fail(c, "%s", err) : 0;
}

static int
do_domain(struct pcase *c, int argc, char **argv, char *rest)
{
	char	err[256];

	return stored(c, db_domain_add(c->db, argv[0], err, sizeof(err)),
	    err);
}

static int
do_account(struct pcase *c, int argc, char **argv, char *rest)
{
	char	err[256];

	return stored(c, db_account_add(c->db, argv[0], PASSWORD, err,
	    sizeof(err)), err);
}

static int
do_alias(struct pcase *c, int argc, char **argv, char *rest)
{
	char	err[256];

	return stored(c, db_alias_add(c->db, argv[0], argv[1], err,
	    sizeof(err)), err);
}

static int
do_disable(struct pcase *c, int argc, char **argv, char *rest)
{
	char	err[256];

	return stored(c, db_account_set(c->db, argv[0], "enabled", false, err,
	    sizeof(err)), err);
}

static int
do_send_as(struct pcase *c, int argc, char **argv, char *rest)
{
	char	err[256];

	return stored(c, db_send_as_add(c->db, argv[0], argv[1], err,
	    sizeof(err)), err);
}

static int
do_trusted(struct pcase *c, int argc, char **argv, char *rest)
{
	char	err[256];

	return stored(c, db_set_add(c->db, DB_SET_TRUSTED, argv[0], err,
	    sizeof(err)), err);
}

static int
do_bypass(struct pcase *c, int argc, char **argv, char *rest)
{
	enum db_set	set;
	char		err[256];

	if (strcmp(argv[0], "local-sender") == 0)
		set = DB_SET_BYPASS_LOCAL_SENDER;
	else if (strcmp(argv[0], "auth-mismatch") == 0)
		set = DB_SET_BYPASS_AUTH_MISMATCH;
	else
		return fail(c, "bypass: expected local-sender or "
		    "auth-mismatch, not '%s'", argv[0]);
	return stored(c, db_set_add(c->db, set, argv[1], err, sizeof(err)),
	    err);
}

static int
do_device(struct pcase *c, int argc, char **argv, char *rest)
{
	char	err[256];

	return stored(c, db_set_add(c->db, DB_SET_DEVICES, argv[0], err,
	    sizeof(err)), err);
}

/* A live grant, as a POP3 login would leave (R3.4). */
static int
do_grant(struct pcase *c, int argc, char **argv, char *rest)
{
	char	err[256];

	return stored(c, db_popauth_grant(c->db, argv[0], argv[1],
	    GRANT_MINUTES, err, sizeof(err)), err);
}

/* An intrusion block (R4.4), as the daemon makes one. */
static int
do_block(struct pcase *c, int argc, char **argv, char *rest)
{
	char	err[256];

	return stored(c, db_block_add(c->db, argv[0], 30, "auth-failures",
	    err, sizeof(err)), err);
}

/* A grant whose time ran out a minute ago: made as a live one, then
 * moved into the past through a second connection (db.h has no call
 * that makes a grant in the past, nor should it). */
static int
do_grant_expired(struct pcase *c, int argc, char **argv, char *rest)
{
	sqlite3	*sq;
	char	 ip[64], *sql, *msg = NULL;
	int	 r;

	if (do_grant(c, argc, argv, rest) == -1)
		return -1;
	if (ipmatch_canon(argv[1], ip, sizeof(ip)) == -1)
		return fail(c, "'%s' is not an IP address", argv[1]);
	if (sqlite3_open(c->dbpath, &sq) != SQLITE_OK) {
		sqlite3_close(sq);
		return fail(c, "sqlite3_open %s failed", c->dbpath);
	}
	sql = sqlite3_mprintf("UPDATE popauth SET until = "
	    "strftime('%%s', 'now') - 60 WHERE ip = %Q", ip);
	r = sqlite3_exec(sq, sql, NULL, NULL, &msg);
	sqlite3_free(sql);
	if (r != SQLITE_OK)
		fail(c, "expiring the grant: %s", msg ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(sq);
	return r == SQLITE_OK ? 0 : -1;
}

/* --- explain --------------------------------------------------------- */

/* The configuration the case has set so far, around a fixed host name
 * (mx.test, unless the case sets one), its data_dir and one mx
 * listener. */
static int
conf_build(struct pcase *c, struct conf **conf_r)
{
	char	*text, err[512];
	size_t	 len, i, j;
	FILE	*f;
	int	 r;

	if ((f = open_memstream(&text, &len)) == NULL)
		return fail(c, "open_memstream: %s", strerror(errno));
	for (i = 0; i < c->nconf; i++)
		if (c->conf[i].section[0] == '\0' &&
		    strcmp(c->conf[i].key, "hostname") == 0)
			break;
	if (i == c->nconf)	/* unless the case names its own */
		fprintf(f, "hostname = mx.test\n");
	fprintf(f, "data_dir = %s\n", c->dir);
	for (i = 0; i < c->nconf; i++)
		if (c->conf[i].section[0] == '\0')
			fprintf(f, "%s = %s\n", c->conf[i].key,
			    c->conf[i].value);
	fprintf(f, "[listener mx]\nlisten = 127.0.0.1:25\nprofile = mx\n");
	for (i = 0; i < c->nconf; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(c->conf[j].section, c->conf[i].section) == 0)
				break;
		if (c->conf[i].section[0] == '\0' || j < i)
			continue;	/* each section once (conf.c) */
		fprintf(f, "[%s]\n", c->conf[i].section);
		for (j = i; j < c->nconf; j++)
			if (strcmp(c->conf[j].section, c->conf[i].section) == 0)
				fprintf(f, "%s = %s\n", c->conf[j].key,
				    c->conf[j].value);
	}
	fclose(f);
	r = conf_parse(c->name, text, len, conf_r, err, sizeof(err));
	free(text);
	if (r == -1)
		return fail(c, "configuration: %s", err);
	return 0;
}

/* Paths of one explain line, angle brackets stripped as postino-admin
 * strips them ("--from <>" is the null sender). */
struct explain_bufs {
	char	from[ADDR_PATH_MAX + 1];
	char	to[EXPLAIN_RCPTS_MAX][ADDR_PATH_MAX + 1];
	char	auth[ADDR_PATH_MAX + 1];
};

static int
profile_named(const char *name, enum listener_profile *p)
{
	size_t	i;

	for (i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		if (strcmp(conf_profile_name(profiles[i]), name) == 0) {
			*p = profiles[i];
			return 0;
		}
	return -1;
}

/* The options of postino-admin explain, read the way it reads them. */
static int
explain_args(struct pcase *c, int argc, char **argv, struct explain_req *q,
    struct explain_bufs *b)
{
	struct db_cred	 cred;
	const char	*o, *v;
	int		 i;

	for (i = 0; i + 1 < argc; i += 2) {
		o = argv[i];
		v = argv[i + 1];
		if (strcmp(o, "--ip") == 0)
			q->ip = v;
		else if (strcmp(o, "--auth") == 0)
			q->auth = v;
		else if (strcmp(o, "--helo") == 0)
			q->helo = v;
		else if (strcmp(o, "--from") == 0)
			q->from = explain_path(v, b->from, sizeof(b->from));
		else if (strcmp(o, "--to") == 0 && q->nto < EXPLAIN_RCPTS_MAX) {
			q->to[q->nto] = explain_path(v, b->to[q->nto],
			    sizeof(b->to[q->nto]));
			q->nto++;
		} else if (strcmp(o, "--listener") != 0 ||
		    profile_named(v, &q->profile) == -1)
			return fail(c, "explain: bad option '%s %s'", o, v);
	}
	if (i != argc || q->ip == NULL || q->from == NULL || q->nto == 0)
		return fail(c, "explain: expected %s", EXPLAIN_USAGE);
	/* AUTH names an account as it logged in: canonical, as stored */
	if (q->auth != NULL) {
		if (db_account_cred(c->db, q->auth, true, &cred) != DB_AUTH_OK)
			return fail(c, "explain: --auth %s: no account that "
			    "may use SMTP AUTH", q->auth);
		strlcpy(b->auth, cred.address, sizeof(b->auth));
		q->auth = b->auth;
	}
	return 0;
}

/* One dialogue, with a fresh engine on the store as it is now, as each
 * run of postino-admin explain has. */
static int
do_explain(struct pcase *c, int argc, char **argv, char *rest)
{
	struct explain_req	 q = { .profile = PROFILE_MX };
	struct explain_bufs	*b;
	struct conf		*conf = NULL;
	struct policy		*p;
	int			 i, r = -1;

	b = calloc(1, sizeof(*b));
	if (b == NULL || explain_args(c, argc, argv, &q, b) == -1 ||
	    conf_build(c, &conf) == -1)
		goto out;
	p = policy_new(conf, c->db);
	if (policy_reload(p, true) == -1) {
		fail(c, "policy_reload failed");
		goto out_policy;
	}
	fprintf(c->out, "%s$ explain", c->nexplain++ > 0 ? "\n" : "");
	for (i = 0; i < argc; i++)
		fprintf(c->out, " %s", argv[i]);
	fputc('\n', c->out);
	explain(p, &q, c->out);
	r = 0;
out_policy:
	policy_free(p);
out:
	conf_free(&conf);
	free(b);
	return r;
}

/* --- running a case -------------------------------------------------- */

/* Split at blanks outside double quotes, which stay in the words: a
 * quoted local part may hold a blank. */
static int
split(char *s, char **argv, int max)
{
	int	argc = 0;
	bool	quoted = false;

	while (*s != '\0') {
		while (isspace((unsigned char)*s))
			*s++ = '\0';
		if (*s == '\0')
			break;
		if (argc == max)
			return -1;
		argv[argc++] = s;
		for (; *s != '\0' && (quoted || !isspace((unsigned char)*s));
		    s++)
			if (*s == '"' && (s == argv[argc - 1] || s[-1] != '\\'))
				quoted = !quoted;
	}
	return quoted ? -1 : argc;
}

static int
run_line(struct pcase *c, char *line)
{
	const struct directive	*d;
	char			*argv[ARGS_MAX], *word, *rest;
	int			 argc;
	size_t			 len;

	len = strcspn(line, " \t");
	word = line;
	rest = line + len + strspn(line + len, " \t");
	for (d = directives; d < directives + NDIRECTIVES; d++)
		if (strlen(d->name) == len && strncmp(d->name, word, len) == 0)
			break;
	if (d == directives + NDIRECTIVES)
		return fail(c, "unknown directive '%.*s'", (int)len, word);
	if (d->nargs == 0)
		return d->run(c, 0, NULL, rest);
	if ((argc = split(rest, argv, ARGS_MAX)) == -1 ||
	    (d->nargs != -1 && argc != d->nargs))
		return fail(c, "expected: %s %s", d->name, d->usage);
	return d->run(c, argc, argv, rest);
}

static int
run_lines(struct pcase *c, FILE *in)
{
	char	*line = NULL, *s;
	size_t	 size = 0, len;
	int	 r = 0;

	while (r == 0 && getline(&line, &size, in) != -1) {
		c->line++;
		len = strlen(line);
		while (len > 0 && isspace((unsigned char)line[len - 1]))
			line[--len] = '\0';
		for (s = line; isspace((unsigned char)*s); s++)
			;
		if (*s != '\0' && *s != '#')
			r = run_line(c, s);
	}
	free(line);
	if (r == 0 && c->nexplain == 0)
		r = fail(c, "no explain line");
	return r;
}

static void
rmtree(const char *dir)
{
	char		 path[512];
	struct dirent	*e;
	DIR		*d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

/* Run NAME.in in a fresh data directory; its output into *out_r. */
static int
case_run(struct pcase *c, const char *inpath, char **out_r, size_t *len_r)
{
	char	 err[256];
	FILE	*in;
	int	 r = -1;

	strlcpy(c->dir, "/tmp/test_policy.XXXXXX", sizeof(c->dir));
	if ((in = fopen(inpath, "r")) == NULL)
		return fail(c, "%s: %s", inpath, strerror(errno));
	if (mkdtemp(c->dir) == NULL) {
		fail(c, "mkdtemp: %s", strerror(errno));
		goto out_close;
	}
	snprintf(c->dbpath, sizeof(c->dbpath), "%s/postino.db", c->dir);
	if (db_open(c->dbpath, &c->db, err, sizeof(err)) == -1) {
		fail(c, "%s", err);
		goto out_rmtree;
	}
	if ((c->out = open_memstream(out_r, len_r)) == NULL) {
		fail(c, "open_memstream: %s", strerror(errno));
		goto out_db;
	}
	r = run_lines(c, in);
	fclose(c->out);
out_db:
	db_close(&c->db);
out_rmtree:
	rmtree(c->dir);
out_close:
	fclose(in);
	return r;
}

/* --- comparing ------------------------------------------------------- */

static char *
slurp(const char *path, size_t *len_r)
{
	char	*buf = NULL;
	size_t	 size = 0;
	FILE	*f, *m;
	int	 ch;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	if ((m = open_memstream(&buf, &size)) != NULL) {
		while ((ch = getc(f)) != EOF)
			putc(ch, m);
		fclose(m);
	}
	fclose(f);
	*len_r = size;
	return buf;
}

static void
print_line(const char *mark, const char *s, const char *end)
{
	if (s == end)
		printf("  %s<end of output>\n", mark);
	else
		printf("  %s%.*s\n", mark, (int)(end - s - (end[-1] == '\n')),
		    s);
}

/* Print the first line where got and want part, and the dialogue it is
 * in (the last "$ explain" line before it). */
static void
diff_first(const char *ref, const char *want, size_t wlen, const char *got,
    size_t glen)
{
	const char	*w = want, *g = got, *we, *ge, *cmd = NULL;
	const char	*wend = want + wlen, *gend = got + glen;
	int		 line = 1, cmdlen = 0;

	for (;; line++) {
		we = w < wend ? memchr(w, '\n', wend - w) : NULL;
		ge = g < gend ? memchr(g, '\n', gend - g) : NULL;
		we = we != NULL ? we + 1 : wend;
		ge = ge != NULL ? ge + 1 : gend;
		if ((w == wend && g == gend) || we - w != ge - g ||
		    memcmp(w, g, we - w) != 0)
			break;
		if (strncmp(g, "$ ", 2) == 0) {
			cmd = g;
			cmdlen = (int)(ge - g - 1);
		}
		w = we;
		g = ge;
	}
	printf("  %s differs at line %d", ref, line);
	if (cmd != NULL)
		printf(", in\n    %.*s", cmdlen, cmd);
	putchar('\n');
	print_line("- ", w, we);
	print_line("+ ", g, ge);
}

static bool
case_check(const char *refpath, const char *got, size_t glen, bool update)
{
	char	*want;
	size_t	 wlen;
	FILE	*f;
	bool	 ok;

	if (update) {
		if ((f = fopen(refpath, "w")) == NULL) {
			printf("  cannot write %s: %s\n", refpath,
			    strerror(errno));
			return false;
		}
		ok = fwrite(got, 1, glen, f) == glen;
		if (fclose(f) != 0 || !ok) {
			printf("  cannot write %s\n", refpath);
			return false;
		}
		printf("  wrote %s\n", refpath);
		return true;
	}
	if ((want = slurp(refpath, &wlen)) == NULL) {
		printf("  no %s: read the output of test_policy -u\n", refpath);
		return false;
	}
	ok = wlen == glen && memcmp(want, got, glen) == 0;
	if (!ok)
		diff_first(refpath, want, wlen, got, glen);
	free(want);
	return ok;
}

static void
case_one(const char *dir, const char *name, bool update)
{
	struct pcase	 c;
	char		 inpath[1024], refpath[1024], *out = NULL;
	size_t		 len = 0;
	bool		 ok;

	memset(&c, 0, sizeof(c));
	c.name = name;
	snprintf(inpath, sizeof(inpath), "%s/%s", dir, name);
	snprintf(refpath, sizeof(refpath), "%s/%.*s.ref", dir,
	    (int)(strlen(name) - 3), name);
	ok = case_run(&c, inpath, &out, &len) == 0 &&
	    case_check(refpath, out, len, update);
	free(out);
	test_cur_failed = !ok;
	if (!test_cur_failed) {
		printf("ok   %s (%d dialogues)\n", name, c.nexplain);
		test_passed++;
	} else {
		printf("FAIL %s\n", name);
		test_failed++;
	}
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every NAME.in of dir, in name order; the number run, or -1. */
static int
cases_run(const char *dir, bool update)
{
	char		**names = NULL, **n;
	size_t		  count = 0, i, len;
	struct dirent	 *e;
	DIR		 *d;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		len = strlen(e->d_name);
		if (len <= 3 || strcmp(e->d_name + len - 3, ".in") != 0)
			continue;
		if ((n = reallocarray(names, count + 1, sizeof(*names))) ==
		    NULL || (n[count] = strdup(e->d_name)) == NULL)
			abort();
		names = n;
		count++;
	}
	closedir(d);
	if (count > 0)		/* qsort(NULL, 0, ...) is undefined */
		qsort(names, count, sizeof(*names), cmp_names);
	for (i = 0; i < count; i++) {
		case_one(dir, names[i], update);
		free(names[i]);
	}
	free(names);
	return (int)count;
}

/* The folder of the cases: argument, environment, or where make runs
 * (the root) or the binary was built (ROOT/build[/san]/tests/). */
static const char *
cases_dir(const char *arg, const char *argv0, char *buf, size_t size)
{
	const char	*slash, *up[] = { "/../..", "/../../.." };
	size_t		 i;

	if (arg != NULL)
		return arg;
	if ((arg = getenv("POLICY_DIR")) != NULL && *arg != '\0')
		return arg;
	if (access(CASES_DIR, R_OK) == 0 || (slash = strrchr(argv0, '/')) ==
	    NULL)
		return CASES_DIR;
	for (i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		snprintf(buf, size, "%.*s%s/%s", (int)(slash - argv0), argv0,
		    up[i], CASES_DIR);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	return CASES_DIR;
}

int
main(int argc, char **argv)
{
	const char	*env = getenv("POLICY_UPDATE"), *dir;
	char		 buf[1024];
	bool		 update = env != NULL && strcmp(env, "1") == 0;
	int		 ch, n;

	while ((ch = getopt(argc, argv, "u")) != -1) {
		if (ch != 'u') {
			fprintf(stderr, "usage: test_policy [-u] [DIR]\n");
			return 2;
		}
		update = true;
	}
	dir = cases_dir(optind < argc ? argv[optind] : NULL, argv[0], buf,
	    sizeof(buf));
	if ((n = cases_run(dir, update)) <= 0) {
		printf("FAIL no NAME.in cases in %s\n", dir);
		test_failed++;
	}
	return test_done();
}

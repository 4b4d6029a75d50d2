/*
 * policy_bench.c - how long the policy engine takes to decide (make
 * bench-policy; docs/benchmarks.md, "The policy engine").
 *
 * In a temporary directory it makes an account store of 100 domains,
 * 100,000 accounts and 1,000 aliases, with 10,000 trusted entries
 * (single IPv4 addresses, CIDR blocks, a.b.c.d-N and full ranges, IPv6)
 * and 100 bypass entries, loads the engine as the store role does
 * (conf_parse, policy_new, policy_reload), and times: RCPT decisions of
 * the common kinds, the MAIL stage, a whole dialogue, a reload of the
 * lists and one interval-table lookup.  Each case runs after a warm-up
 * (whose decisions are checked against the expected verdict) in batches
 * of about 10 ms for about a second, and prints the median of the
 * batches.  Random choices come from a fixed seed: runs are comparable.
 * "policy_bench CASE..." runs only the cases named (say, under perf).
 *
 * The rows are written with SQL on a second connection, in one
 * transaction, each account with the same hash and SASL secrets:
 * db_account_add() runs yescrypt, far too slow for 100,000 accounts,
 * and the engine never reads them (they are there so that the rows have
 * their real size).  A measurement tool: it trusts its own input only
 * and writes nothing outside its temporary directory.
 */
#include <sys/stat.h>

#include <malloc.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "conf.h"
#include "db.h"
#include "iptable.h"
#include "ipmatch.h"
#include "policy.h"
#include "sasl.h"

#define NDOMAINS	100
#define NACCOUNTS	100000
#define NALIASES	1000	/* every fifth has a second, remote target */
#define NTRUSTED	10000
#define NBYPASS		50	/* entries in each of the two bypass lists */
#define NSESS		512	/* sessions a MAIL or RCPT case cycles over */
#define NPICK		65536	/* random paths and addresses, per case */
#define PICK_LEN	64
#define COLS_MAX	8
#define COL_LEN		SASL_SECRET_MAX

#define WARMUP_NS	100000000ULL	/* 0.1 s, checked decisions */
#define BATCH_NS	10000000ULL	/* a batch lasts about 10 ms */
#define TARGET_NS	1000000000ULL	/* no new batch after 1 s */
#define BATCHES_MAX	1000
#define ITER_MAX	50000000	/* decisions per case, at most */

/* A yescrypt hash of some password: only its length matters here. */
#define DUMMY_HASH	"$y$j9T$Yv0xvH7GgGYF3C7o0v5P9/$" \
			"hM3XWq8M2mZ0fKQmQx1oTq3iB4nQm7Yp2bJ0rGg5H1C"

enum client { C_UNTRUSTED, C_TRUSTED };
enum addr_kind { A_NONE, A_ACCOUNT, A_ALIAS, A_UNKNOWN, A_REMOTE };

/* What the cases share: the engine and the random choices of a case. */
struct ctx {
	struct policy		*p;
	struct iptable		 table;		/* the trusted list, alone */
	char			 (*entries)[PICK_LEN];	/* NTRUSTED */
	struct policy_session	*sess;		/* NSESS, after MAIL */
	char			 (*from)[PICK_LEN];	/* NSESS senders */
	char			 (*clients)[PICK_LEN];	/* NPICK */
	uint8_t			 (*ips)[16];	/* NPICK, the same */
	char			 (*rcpts)[PICK_LEN];	/* NPICK */
	const struct bench_case	*c;
	bool			 setup_failed;
};

typedef void	decide_fn(struct ctx *, size_t i, struct policy_result *);

static decide_fn	do_rcpt, do_mail, do_session, do_reload, do_lookup;

static const struct bench_case {
	const char		*name;
	decide_fn		*fn;
	enum client		 client;
	enum addr_kind		 sender;	/* MAIL FROM */
	bool			 auth;		/* AUTH as the sender */
	enum addr_kind		 rcpt;
	enum policy_action	 want;
	const char		*check;		/* which decides; NULL: any */
} cases[] = {
	/* (1) the common case of an MX: mail for an account */
	{ "rcpt-local", do_rcpt, C_UNTRUSTED, A_REMOTE, false, A_ACCOUNT,
	    POLICY_ACCEPT, "recipient" },
	{ "rcpt-alias", do_rcpt, C_UNTRUSTED, A_REMOTE, false, A_ALIAS,
	    POLICY_ACCEPT, "recipient" },
	{ "rcpt-unknown", do_rcpt, C_UNTRUSTED, A_REMOTE, false, A_UNKNOWN,
	    POLICY_REJECT, "recipient" },
	/* (2) a trusted host relays */
	{ "rcpt-trusted-relay", do_rcpt, C_TRUSTED, A_REMOTE, false,
	    A_REMOTE, POLICY_ACCEPT, "relay" },
	/* (3) an open-relay probe */
	{ "rcpt-relay-denied", do_rcpt, C_UNTRUSTED, A_REMOTE, false,
	    A_REMOTE, POLICY_REJECT, "relay" },
	/* (4) R3.1: a local sender from an unauthorized client */
	{ "rcpt-local-sender", do_rcpt, C_UNTRUSTED, A_ACCOUNT, false,
	    A_ACCOUNT, POLICY_REJECT, "local-sender" },
	/* (5) submission: AUTH, sending as itself to the world */
	{ "rcpt-auth-relay", do_rcpt, C_UNTRUSTED, A_ACCOUNT, true,
	    A_REMOTE, POLICY_ACCEPT, "relay" },
	/* (6) the MAIL stage: trusted lookup, or the POP-before-SMTP query */
	{ "mail-trusted", do_mail, C_TRUSTED, A_REMOTE, false, A_NONE,
	    POLICY_ACCEPT, "" },
	{ "mail-untrusted", do_mail, C_UNTRUSTED, A_REMOTE, false, A_NONE,
	    POLICY_ACCEPT, "" },
	/* session init, CONNECT, MAIL and RCPT of (1) */
	{ "session-local", do_session, C_UNTRUSTED, A_REMOTE, false,
	    A_ACCOUNT, POLICY_ACCEPT, "recipient" },
	{ "reload-force", do_reload, C_UNTRUSTED, A_NONE, false, A_NONE,
	    POLICY_ACCEPT, NULL },
	{ "iptable-hit", do_lookup, C_TRUSTED, A_NONE, false, A_NONE,
	    POLICY_ACCEPT, NULL },
	{ "iptable-miss", do_lookup, C_UNTRUSTED, A_NONE, false, A_NONE,
	    POLICY_REJECT, NULL },
};
#define NCASES	(sizeof(cases) / sizeof(cases[0]))

static char	 tmpdir[] = "/tmp/policy_bench.XXXXXX";
static char	 secrets[3][COL_LEN];	/* SCRAM-SHA-256, -SHA-1, CRAM-MD5 */
static uint64_t	 rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 16) % n);
}

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
cleanup(void)
{
	static const char *const files[] = { "postino.db", "postino.db-wal",
	    "postino.db-shm" };
	char	path[sizeof(tmpdir) + 32];
	size_t	i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	rmdir(tmpdir);
}

static void *
xcalloc_or_die(size_t n, size_t size)
{
	void	*v;

	if ((v = calloc(n, size)) == NULL) {
		fprintf(stderr, "policy_bench: out of memory\n");
		exit(1);
	}
	return v;
}

/* --- the data ------------------------------------------------------- */

/*
 * Trusted entry i owns 10.a.b.0/24 (a = i / 256, b = i % 256) or, for
 * IPv6, 2001:db8:a:b::/64.  In each /24, .250-.255 are never covered:
 * the misses fall between the entries, not past them.
 */
static void
trusted_entry(size_t i, char *e, size_t size)
{
	unsigned int	a = i / 256, b = i % 256;

	switch (i % 10) {
	case 0: case 1: case 2: case 3:
		snprintf(e, size, "10.%u.%u.7", a, b);
		break;
	case 4: case 5:
		snprintf(e, size, "10.%u.%u.64/26", a, b);
		break;
	case 6:
		snprintf(e, size, "10.%u.%u.10-50", a, b);
		break;
	case 7:
		snprintf(e, size, "10.%u.%u.130-10.%u.%u.190", a, b, a, b);
		break;
	case 8:
		snprintf(e, size, "2001:db8:%x:%x::/64", a, b);
		break;
	default:
		snprintf(e, size, "2001:db8:%x:%x::1", a, b);
		break;
	}
}

/* An address inside trusted entry i, chosen at random. */
static void
trusted_addr(size_t i, char *ip, size_t size)
{
	unsigned int	a = i / 256, b = i % 256;

	switch (i % 10) {
	case 0: case 1: case 2: case 3:
		snprintf(ip, size, "10.%u.%u.7", a, b);
		break;
	case 4: case 5:
		snprintf(ip, size, "10.%u.%u.%u", a, b, 64 + rnd(64));
		break;
	case 6:
		snprintf(ip, size, "10.%u.%u.%u", a, b, 10 + rnd(41));
		break;
	case 7:
		snprintf(ip, size, "10.%u.%u.%u", a, b, 130 + rnd(61));
		break;
	case 8:
		snprintf(ip, size, "2001:db8:%x:%x::%x:%x", a, b, rnd(65536),
		    rnd(65536));
		break;
	default:
		snprintf(ip, size, "2001:db8:%x:%x::1", a, b);
		break;
	}
}

/* Half fall in the gaps of the trusted list, half anywhere else (never
 * 192.0.2.0/24, where the bypass entries are). */
static void
client_addr(enum client c, char *ip, size_t size)
{
	if (c == C_TRUSTED)
		trusted_addr(rnd(NTRUSTED), ip, size);
	else if (rnd(2) == 0)
		snprintf(ip, size, "10.%u.%u.%u", rnd(NTRUSTED / 256),
		    rnd(256), 250 + rnd(6));
	else
		snprintf(ip, size, "%u.%u.%u.%u", 11 + rnd(181), rnd(256),
		    rnd(256), 1 + rnd(254));
}

static void
pick_addr(enum addr_kind kind, char *buf, size_t size)
{
	uint32_t	n;

	switch (kind) {
	case A_NONE:
		buf[0] = '\0';
		break;
	case A_ACCOUNT:
		n = rnd(NACCOUNTS);
		snprintf(buf, size, "user%u@dom%u.example", n, n % NDOMAINS);
		break;
	case A_ALIAS:
		n = rnd(NALIASES);
		snprintf(buf, size, "alias%u@dom%u.example", n, n % NDOMAINS);
		break;
	case A_UNKNOWN:
		n = rnd(NACCOUNTS);
		snprintf(buf, size, "nobody%u@dom%u.example", n, n % NDOMAINS);
		break;
	case A_REMOTE:
		n = rnd(1000000);
		snprintf(buf, size, "someone%u@remote%u.example.org", n,
		    n % 1000);
		break;
	default:
		abort();
	}
}

/* One row of a table: fill cols, return how many. */
typedef int	row_fn(size_t k, char (*cols)[COL_LEN]);

static int
domain_row(size_t k, char (*cols)[COL_LEN])
{
	snprintf(cols[0], COL_LEN, "dom%zu.example", k);
	return 1;
}

static int
account_row(size_t k, char (*cols)[COL_LEN])
{
	snprintf(cols[0], COL_LEN, "user%zu@dom%zu.example", k, k % NDOMAINS);
	snprintf(cols[1], COL_LEN, "dom%zu.example", k % NDOMAINS);
	snprintf(cols[2], COL_LEN, "user%zu", k);
	strlcpy(cols[3], DUMMY_HASH, COL_LEN);
	strlcpy(cols[4], secrets[0], COL_LEN);
	strlcpy(cols[5], secrets[1], COL_LEN);
	strlcpy(cols[6], secrets[2], COL_LEN);
	return 7;
}

/* Rows 0..NALIASES-1: alias k to an account; then the second targets. */
static int
alias_row(size_t k, char (*cols)[COL_LEN])
{
	size_t	a = k < NALIASES ? k : (k - NALIASES) * 5;
	size_t	t = (a * 7919) % NACCOUNTS;

	snprintf(cols[0], COL_LEN, "alias%zu@dom%zu.example", a,
	    a % NDOMAINS);
	if (k < NALIASES)
		snprintf(cols[1], COL_LEN, "user%zu@dom%zu.example", t,
		    t % NDOMAINS);
	else
		snprintf(cols[1], COL_LEN, "fwd%zu@elsewhere.example.org", a);
	return 2;
}

static int
trusted_row(size_t k, char (*cols)[COL_LEN])
{
	trusted_entry(k, cols[0], COL_LEN);
	return 1;
}

/* Each list: 20 domains, 20 addresses, 10 addresses of 192.0.2.0/24. */
static int
bypass_row(size_t k, char (*cols)[COL_LEN])
{
	const char	*list = k < NBYPASS ? "local-sender" : "auth-mismatch";
	size_t		 j = k % NBYPASS;

	strlcpy(cols[0], list, COL_LEN);
	if (j < 20)
		snprintf(cols[1], COL_LEN, "partner%zu.example.net", k);
	else if (j < 40)
		snprintf(cols[1], COL_LEN, "boss%zu@partner.example.net", k);
	else
		snprintf(cols[1], COL_LEN, "192.0.2.%zu", k);
	return 2;
}

static int
insert_rows(sqlite3 *h, const char *sql, size_t n, row_fn *fn)
{
	static char	 cols[COLS_MAX][COL_LEN];
	sqlite3_stmt	*s;
	size_t		 k;
	int		 i, ncols, r = SQLITE_DONE;

	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	for (k = 0; k < n && r == SQLITE_DONE; k++) {
		ncols = fn(k, cols);
		for (i = 0; i < ncols; i++)
			sqlite3_bind_text(s, i + 1, cols[i], -1,
			    SQLITE_TRANSIENT);
		r = sqlite3_step(s);
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	return r == SQLITE_DONE ? 0 : -1;
}

static const struct table {
	const char	*sql;
	size_t		 n;
	row_fn		*fn;
} tables[] = {
	{ "INSERT INTO domains (name, created) VALUES (?1, "
	    "strftime('%s', 'now'))", NDOMAINS, domain_row },
	{ "INSERT INTO accounts (address, domain, local_part, password_hash, "
	    "scram_sha256, scram_sha1, cram_md5, created) VALUES (?1, ?2, ?3, "
	    "?4, ?5, ?6, ?7, strftime('%s', 'now'))", NACCOUNTS, account_row },
	{ "INSERT INTO aliases (address, target) VALUES (?1, ?2)",
	    NALIASES + NALIASES / 5, alias_row },
	{ "INSERT INTO trusted (entry) VALUES (?1)", NTRUSTED, trusted_row },
	{ "INSERT INTO bypass (list, entry) VALUES (?1, ?2)", 2 * NBYPASS,
	    bypass_row },
};

/*
 * Every row in one transaction on a second connection, then a
 * checkpoint, so the engine's connection reads a settled file.
 */
static int
populate(const char *path)
{
	sqlite3	*h;
	size_t	 i;
	int	 r = 0;

	if (sasl_scram_secret("x", SASL_HASH_SHA256, DB_SCRAM_ITERATIONS,
	    secrets[0], COL_LEN) == -1 ||
	    sasl_scram_secret("x", SASL_HASH_SHA1, DB_SCRAM_ITERATIONS,
	    secrets[1], COL_LEN) == -1 ||
	    sasl_cram_md5_secret("x", secrets[2], COL_LEN) == -1)
		return -1;
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK)
		goto out_err;
	if (sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto out_err;
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]) && r == 0; i++)
		r = insert_rows(h, tables[i].sql, tables[i].n, tables[i].fn);
	if (r == -1 || sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) !=
	    SQLITE_OK || sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)",
	    NULL, NULL, NULL) != SQLITE_OK)
		goto out_err;
	sqlite3_close(h);
	return 0;
out_err:
	fprintf(stderr, "policy_bench: %s: %s\n", path, sqlite3_errmsg(h));
	sqlite3_close(h);
	return -1;
}

/* --- the cases ------------------------------------------------------ */

static void
do_rcpt(struct ctx *x, size_t i, struct policy_result *res)
{
	struct policy_session	*s = &x->sess[i % NSESS];
	struct policy_input	 in = { x->rcpts[i % NPICK], false };

	policy_run(x->p, POLICY_RCPT, s, &in, res, NULL, NULL);
	/* one RCPT per transaction, so max-recipients never trips */
	policy_session_clear(s);
	s->naccepted = 0;
}

static void
do_mail(struct ctx *x, size_t i, struct policy_result *res)
{
	struct policy_input	in = { x->from[i % NSESS], false };

	policy_run(x->p, POLICY_MAIL, &x->sess[i % NSESS], &in, res, NULL,
	    NULL);
}

/* A session from its start: CONNECT, MAIL, one RCPT. */
static void
dialogue(struct ctx *x, struct policy_session *s, const char *client,
    const char *from, const char *rcpt, struct policy_result *res)
{
	struct policy_input	in = { from, false };

	policy_session_init(s, client, x->c->auth ? PROFILE_SUBMISSION :
	    PROFILE_MX);
	policy_run(x->p, POLICY_CONNECT, s, NULL, res, NULL, NULL);
	if (res->action != POLICY_ACCEPT)
		return;
	strlcpy(s->helo, "client.example.net", sizeof(s->helo));
	if (x->c->auth)
		strlcpy(s->auth, from, sizeof(s->auth));
	policy_run(x->p, POLICY_MAIL, s, &in, res, NULL, NULL);
	if (res->action != POLICY_ACCEPT || rcpt == NULL)
		return;
	in.path = rcpt;
	policy_run(x->p, POLICY_RCPT, s, &in, res, NULL, NULL);
}

static void
do_session(struct ctx *x, size_t i, struct policy_result *res)
{
	struct policy_session	s;

	dialogue(x, &s, x->clients[i % NPICK], x->from[i % NSESS],
	    x->rcpts[i % NPICK], res);
	policy_session_clear(&s);
}

static void
do_reload(struct ctx *x, size_t i, struct policy_result *res)
{
	res->action = policy_reload(x->p, true) == 0 ? POLICY_ACCEPT :
	    POLICY_TEMPFAIL;
	res->check = NULL;
	res->reply[0] = '\0';
}

static void
do_lookup(struct ctx *x, size_t i, struct policy_result *res)
{
	res->action = iptable_lookup(&x->table, x->ips[i % NPICK]) != NULL ?
	    POLICY_ACCEPT : POLICY_REJECT;
	res->check = NULL;
	res->reply[0] = '\0';
}

/* The random choices of case c, and its sessions up to MAIL. */
static void
case_setup(struct ctx *x, const struct bench_case *c)
{
	struct policy_result	res;
	size_t			k;

	x->c = c;
	x->setup_failed = false;
	for (k = 0; k < NPICK; k++) {
		client_addr(c->client, x->clients[k], PICK_LEN);
		if (ipmatch_addr(x->clients[k], x->ips[k]) == -1)
			abort();
		pick_addr(c->rcpt, x->rcpts[k], PICK_LEN);
	}
	for (k = 0; k < NSESS; k++) {
		pick_addr(c->sender, x->from[k], PICK_LEN);
		policy_session_clear(&x->sess[k]);
		dialogue(x, &x->sess[k], x->clients[k], x->from[k], NULL, &res);
		if (c->fn == do_rcpt && res.action != POLICY_ACCEPT) {
			printf("%-20s setup: MAIL from %s by %s: %s\n", c->name,
			    x->from[k], x->clients[k], res.reply);
			x->setup_failed = true;
			return;
		}
	}
}

static bool
wrong(const struct bench_case *c, const struct policy_result *res)
{
	return res->action != c->want || (c->check != NULL &&
	    (res->check == NULL || strcmp(res->check, c->check) != 0));
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * Warm up for WARMUP_NS, checking every verdict, which also sizes the
 * batches; then batches until TARGET_NS.  Prints one line.
 */
static void
measure(struct ctx *x, const struct bench_case *c)
{
	static double		per[BATCHES_MAX];
	struct policy_result	res, bad = { 0 };
	uint64_t		t0, start;
	size_t			i = 0, n = 0, nb = 0, batch, nwrong = 0, k;

	start = now_ns();
	while (i < ITER_MAX && now_ns() - start < WARMUP_NS) {
		c->fn(x, i++, &res);
		if (wrong(c, &res) && nwrong++ == 0)
			bad = res;
	}
	batch = i * BATCH_NS / (now_ns() - start);
	batch = batch == 0 ? 1 : batch;
	start = now_ns();
	while (nb < BATCHES_MAX && n < ITER_MAX &&
	    now_ns() - start < TARGET_NS) {
		t0 = now_ns();
		for (k = 0; k < batch; k++)
			c->fn(x, i++, &res);
		per[nb++] = (double)(now_ns() - t0) / batch;
		n += batch;
	}
	qsort(per, nb, sizeof(per[0]), cmp_double);
	printf("%-20s %10zu %11.0f %9.0f %9.0f %7zu %12.0f\n", c->name, n,
	    per[nb / 2], per[0], per[nb - 1], nb, 1e9 / per[nb / 2]);
	if (nwrong > 0)
		printf("%-20s WRONG: %zu of %zu warm-up decisions: %s by %s: "
		    "%s\n", c->name, nwrong, i - n, policy_action_name(
		    bad.action), bad.check ? bad.check : "-", bad.reply);
}

/* --- memory --------------------------------------------------------- */

struct mem {
	long long	rss;		/* octets */
	long long	heap;		/* malloc in use, mmap'ed chunks too */
	long long	sqlite;		/* of which SQLite's */
};

static void
mem_now(struct mem *m)
{
	struct mallinfo2	mi = mallinfo2();
	FILE			*f;
	long			 size, res = 0;

	if ((f = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	m->rss = (long long)res * sysconf(_SC_PAGESIZE);
	m->heap = (long long)(mi.uordblks + mi.hblkhd);
	m->sqlite = sqlite3_memory_used();
}

/* The first reload, measured; and the trusted list in a table alone. */
static int
load(struct ctx *x)
{
	struct mem	m0, m1, m2;
	uint64_t	t0, t1;
	size_t		i;

	for (i = 0; i < NTRUSTED; i++)
		trusted_entry(i, x->entries[i], PICK_LEN);
	mem_now(&m0);
	t0 = now_ns();
	if (policy_reload(x->p, true) == -1)
		return -1;
	t1 = now_ns();
	mem_now(&m1);
	iptable_init(&x->table);
	for (i = 0; i < NTRUSTED; i++)
		if (iptable_add_entry(&x->table, x->entries[i]) == -1)
			return -1;
	iptable_build(&x->table);
	mem_now(&m2);
	printf("first reload: %.1f ms; lists: %+.0f KB malloc in use (SQLite "
	    "%+.0f KB of it), RSS %+.0f KB; the %d trusted entries alone in an "
	    "iptable: %.0f KB malloc, RSS %+.0f KB\n", (t1 - t0) / 1e6,
	    (m1.heap - m0.heap) / 1024.0, (m1.sqlite - m0.sqlite) / 1024.0,
	    (m1.rss - m0.rss) / 1024.0, NTRUSTED,
	    (m2.heap - m1.heap) / 1024.0, (m2.rss - m1.rss) / 1024.0);
	return 0;
}

/* --- main ----------------------------------------------------------- */

static struct conf *
make_conf(void)
{
	struct conf	*conf;
	char		 text[1024], err[512];
	int		 len;

	len = snprintf(text, sizeof(text), "hostname = mx.test\n"
	    "data_dir = %s\n[listener mx]\nlisten = 127.0.0.1:25\n"
	    "profile = mx\n", tmpdir);
	if (conf_parse("policy_bench.conf", text, len, &conf, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "policy_bench: %s\n", err);
		return NULL;
	}
	return conf;
}

static void
ctx_alloc(struct ctx *x)
{
	memset(x, 0, sizeof(*x));
	x->entries = xcalloc_or_die(NTRUSTED, sizeof(*x->entries));
	x->sess = xcalloc_or_die(NSESS, sizeof(*x->sess));
	x->from = xcalloc_or_die(NSESS, sizeof(*x->from));
	x->clients = xcalloc_or_die(NPICK, sizeof(*x->clients));
	x->ips = xcalloc_or_die(NPICK, sizeof(*x->ips));
	x->rcpts = xcalloc_or_die(NPICK, sizeof(*x->rcpts));
}

static void
ctx_free(struct ctx *x)
{
	size_t	k;

	for (k = 0; k < NSESS; k++)
		policy_session_clear(&x->sess[k]);
	iptable_clear(&x->table);
	free(x->entries);
	free(x->sess);
	free(x->from);
	free(x->clients);
	free(x->ips);
	free(x->rcpts);
}

/* No argument: every case; else the cases named (for perf record). */
static bool
wanted(const char *name, int argc, char **argv)
{
	int	i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return argc < 2;
}

int
main(int argc, char **argv)
{
	struct ctx	 x;
	struct stat	 st;
	struct conf	*conf = NULL;
	struct db	*db = NULL;
	char		 path[sizeof(tmpdir) + 16], err[512];
	uint64_t	 t0;
	size_t		 i;
	int		 status = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mkdtemp(tmpdir) == NULL) {
		perror("policy_bench: mkdtemp");
		return 1;
	}
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/postino.db", tmpdir);
	t0 = now_ns();
	if (db_open(path, &db, err, sizeof(err)) == -1) {
		fprintf(stderr, "policy_bench: %s\n", err);
		return 1;
	}
	if (populate(path) == -1 || (conf = make_conf()) == NULL)
		goto out_db;
	ctx_alloc(&x);
	x.p = policy_new(conf, db);
	if (stat(path, &st) == -1)
		st.st_size = 0;
	printf("policy_bench: %d domains, %d accounts, %d aliases, %d trusted "
	    "entries (40%% IPv4, 20%% CIDR, 10%% a.b.c.d-N, 10%% full ranges, "
	    "20%% IPv6), %d bypass entries; SQLite %s, postino.db %.1f MB "
	    "written in %.1f s\n", NDOMAINS, NACCOUNTS, NALIASES, NTRUSTED,
	    2 * NBYPASS, sqlite3_libversion(), st.st_size / 1048576.0,
	    (now_ns() - t0) / 1e9);
	if (load(&x) == -1) {
		fprintf(stderr, "policy_bench: loading the lists failed\n");
		goto out_policy;
	}
	printf("%-20s %10s %11s %9s %9s %7s %12s\n", "case", "decisions",
	    "ns/decision", "min", "max", "batches", "decisions/s");
	for (i = 0; i < NCASES; i++) {
		if (!wanted(cases[i].name, argc, argv))
			continue;
		case_setup(&x, &cases[i]);
		if (!x.setup_failed)
			measure(&x, &cases[i]);
	}
	status = 0;
out_policy:
	policy_free(x.p);
	ctx_free(&x);
out_db:
	conf_free(&conf);
	db_close(&db);
	return status;
}

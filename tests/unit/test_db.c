/*
 * test_db.c - db.c on a temporary file: domains, accounts, passwords,
 * aliases and catch-alls, recipient resolution, lists and the refusals
 * with their one-line reasons.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <crypt.h>
#include <sqlite3.h>

#include "db.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

static char		 dir[] = "/tmp/test_db.XXXXXX", path[256];
static struct db	*db;

static void
setup(void)
{
	char	err[256];

	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/postino.db", dir);
	if (db_open(path, &db, err, sizeof(err)) == -1) {
		printf("db_open: %s\n", err);
		abort();
	}
}

static void
teardown(void)
{
	char	f[300];

	db_close(&db);
	unlink(path);
	snprintf(f, sizeof(f), "%s-wal", path);
	unlink(f);
	snprintf(f, sizeof(f), "%s-shm", path);
	unlink(f);
	rmdir(dir);
}

/* Run a change that must succeed; err is the caller's. */
#define OK(call) do {							\
	int r_;								\
									\
	err[0] = '\0';							\
	r_ = (call);							\
	CHECK_ROW(r_ == 0, err);					\
} while (0)

static void
test_open(void)
{
	struct db	*db2;
	char		 err[256], bad[300];

	CHECK(db != NULL);
	/* A second handle on the same file: the schema is there. */
	CHECK_INT(db_open(path, &db2, err, sizeof(err)), 0);
	db_close(&db2);
	CHECK(db2 == NULL);
	snprintf(bad, sizeof(bad), "%s/none/x.db", dir);
	CHECK_INT(db_open(bad, &db2, err, sizeof(err)), -1);
	CHECK(strncmp(err, "database ", 9) == 0);
	CHECK(strstr(err, bad) != NULL);
}

static void
test_domains(void)
{
	char	err[256];

	OK(db_domain_add(db, "Example.ORG", err, sizeof(err)));
	OK(db_domain_add(db, "example.net", err, sizeof(err)));
	OK(db_domain_add(db, "gone.example", err, sizeof(err)));
	CHECK(db_domain_is_local(db, "example.org"));
	CHECK(db_domain_is_local(db, "EXAMPLE.org"));
	CHECK(!db_domain_is_local(db, "example.com"));
	CHECK_INT(db_domain_add(db, "example.org", err, sizeof(err)), -1);
	CHECK_STR(err, "domain example.org exists");
	CHECK_INT(db_domain_del(db, "nowhere.example", err, sizeof(err)), -1);
	CHECK_STR(err, "no such domain nowhere.example");
	OK(db_domain_del(db, "gone.example", err, sizeof(err)));
	CHECK(!db_domain_is_local(db, "gone.example"));
}

static void
test_accounts(void)
{
	char	err[256];

	OK(db_account_add(db, "Alice@Example.org", "s3cret", err,
	    sizeof(err)));
	OK(db_account_add(db, "bob@example.org", "pw", err, sizeof(err)));
	OK(db_account_add(db, "carol@example.net", "pw", err, sizeof(err)));
	CHECK_INT(db_account_add(db, "alice@example.org", "x", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "account alice@example.org exists");
	CHECK_INT(db_account_add(db, "x@example.com", "x", err, sizeof(err)),
	    -1);
	CHECK_STR(err, "domain example.com is not local; add it with: "
	    "postino-admin domain add example.com");
	CHECK_INT(db_account_add(db, "dave@example.org", "", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "empty password");
	CHECK_INT(db_account_passwd(db, "nobody@example.org", "x", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "no such account nobody@example.org");
	CHECK_INT(db_account_set(db, "nobody@example.org", "enabled", false,
	    err, sizeof(err)), -1);
	CHECK_STR(err, "no such account nobody@example.org");
	CHECK_INT(db_domain_del(db, "example.org", err, sizeof(err)), -1);
	CHECK_STR(err, "domain example.org still has 2 accounts; delete them "
	    "first");
}

static void
test_passwords(void)
{
	char	err[256];

	CHECK_INT(db_account_auth(db, "alice@example.org", "s3cret", true),
	    DB_AUTH_OK);
	CHECK_INT(db_account_auth(db, "ALICE@example.org", "s3cret", true),
	    DB_AUTH_OK);
	CHECK_INT(db_account_auth(db, "alice@example.org", "S3cret", true),
	    DB_AUTH_FAIL);
	CHECK_INT(db_account_auth(db, "nobody@example.org", "s3cret", true),
	    DB_AUTH_FAIL);
	OK(db_account_passwd(db, "alice@example.org", "new", err,
	    sizeof(err)));
	CHECK_INT(db_account_auth(db, "alice@example.org", "s3cret", true),
	    DB_AUTH_FAIL);
	CHECK_INT(db_account_auth(db, "alice@example.org", "new", true),
	    DB_AUTH_OK);
	OK(db_account_set(db, "alice@example.org", "smtp_auth", false, err,
	    sizeof(err)));
	CHECK_INT(db_account_auth(db, "alice@example.org", "new", true),
	    DB_AUTH_FAIL);
	CHECK_INT(db_account_auth(db, "alice@example.org", "new", false),
	    DB_AUTH_OK);
	OK(db_account_set(db, "alice@example.org", "smtp_auth", true, err,
	    sizeof(err)));
	OK(db_account_set(db, "alice@example.org", "enabled", false, err,
	    sizeof(err)));
	CHECK_INT(db_account_auth(db, "alice@example.org", "new", false),
	    DB_AUTH_FAIL);
	OK(db_account_set(db, "alice@example.org", "enabled", true, err,
	    sizeof(err)));
}

/* Hashes imported from elsewhere (R2.4): sha512-crypt and bcrypt verify
 * unchanged, through the same path the store role uses. */
static void
test_imported_hashes(void)
{
	static const char *const prefixes[] = { "$6$", "$2b$", "$y$" };
	struct crypt_data	 cd;
	struct db_cred		 c;
	sqlite3			*h;
	char			 sql[512], *salt;
	const char		*hash;
	size_t			 i;

	for (i = 0; i < NROWS(prefixes); i++) {
		salt = crypt_gensalt_ra(prefixes[i], 0, NULL, 0);
		CHECK(salt != NULL);
		memset(&cd, 0, sizeof(cd));
		hash = crypt_rn("imported", salt, &cd, sizeof(cd));
		free(salt);
		CHECK_ROW(hash != NULL && hash[0] != '*', prefixes[i]);
		snprintf(sql, sizeof(sql), "UPDATE accounts SET password_hash "
		    "= '%s' WHERE address = 'alice@example.org'", hash);
		CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
		CHECK_INT(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(h);
		CHECK_ROW(db_account_auth(db, "alice@example.org", "imported",
		    true) == DB_AUTH_OK, prefixes[i]);
		CHECK_ROW(db_account_auth(db, "alice@example.org", "wrong",
		    true) == DB_AUTH_FAIL, prefixes[i]);
		CHECK_INT(db_account_cred(db, "Alice@Example.ORG", true, &c),
		    DB_AUTH_OK);
		CHECK_STR(c.address, "alice@example.org");
		CHECK_ROW(db_password_ok("imported", c.hash), prefixes[i]);
		CHECK_ROW(!db_password_ok("wrong", c.hash), prefixes[i]);
	}
	/* An unknown account: a usable dummy hash, no secrets. */
	CHECK_INT(db_account_cred(db, "nobody@example.org", true, &c),
	    DB_AUTH_FAIL);
	CHECK(strncmp(c.hash, "$y$", 3) == 0);
	CHECK_STR(c.scram_sha256, "");
}

/* The stored hash is yescrypt, never the password. */
static void
test_hash_format(void)
{
	sqlite3_stmt	*s;
	sqlite3		*h;
	const char	*hash;

	CHECK_INT(sqlite3_open(path, &h), SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(h, "SELECT password_hash, enabled, "
	    "smtp_auth FROM accounts WHERE address = 'bob@example.org'", -1,
	    &s, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(s), SQLITE_ROW);
	hash = (const char *)sqlite3_column_text(s, 0);
	CHECK(hash != NULL && strncmp(hash, "$y$", 3) == 0);
	CHECK(hash != NULL && strstr(hash, "pw") == NULL);
	CHECK_INT(sqlite3_column_int(s, 1), 1);
	CHECK_INT(sqlite3_column_int(s, 2), 1);
	sqlite3_finalize(s);
	sqlite3_close(h);
}

static void
test_aliases(void)
{
	char	err[256];

	OK(db_alias_add(db, "info@example.org", "alice@example.org", err,
	    sizeof(err)));
	OK(db_alias_add(db, "info@example.org", "Bob@example.org", err,
	    sizeof(err)));
	OK(db_alias_add(db, "info@example.org", "ext@remote.example", err,
	    sizeof(err)));
	OK(db_alias_add(db, "team@example.org", "info@example.org", err,
	    sizeof(err)));
	OK(db_alias_add(db, "team@example.org", "bob@example.org", err,
	    sizeof(err)));
	OK(db_alias_add(db, "team@example.org", "carol@example.net", err,
	    sizeof(err)));
	OK(db_alias_add(db, "loop1@example.org", "loop2@example.org", err,
	    sizeof(err)));
	OK(db_alias_add(db, "loop2@example.org", "loop1@example.org", err,
	    sizeof(err)));
	OK(db_alias_add(db, "loop2@example.org", "bob@example.org", err,
	    sizeof(err)));
	OK(db_alias_add(db, "dead@example.org", "nobody@example.org", err,
	    sizeof(err)));
	OK(db_alias_add(db, "@example.net", "carol@example.net", err,
	    sizeof(err)));
	CHECK_INT(db_alias_add(db, "info@example.org", "alice@example.org",
	    err, sizeof(err)), -1);
	CHECK_STR(err, "alias info@example.org already has target "
	    "alice@example.org");
	CHECK_INT(db_alias_add(db, "alice@example.org", "bob@example.org",
	    err, sizeof(err)), -1);
	CHECK_STR(err, "alice@example.org is an account; an alias cannot "
	    "hide it");
	CHECK_INT(db_alias_add(db, "x@example.com", "bob@example.org", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "domain example.com is not local; add it with: "
	    "postino-admin domain add example.com");
	CHECK_INT(db_alias_del(db, "none@example.org", NULL, err,
	    sizeof(err)), -1);
	CHECK_STR(err, "no such alias none@example.org");
	CHECK_INT(db_alias_del(db, "info@example.org", "x@example.org", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "alias info@example.org has no target x@example.org");
}

struct want {
	const char	*local, *domain;
	enum db_rcpt	 r;
	const char	*targets;	/* "+local@domain" local, "-..." remote */
};

static const struct want resolve_rows[] = {
	{ "alice", "example.org", DB_RCPT_OK, "+alice@example.org" },
	{ "ALICE", "EXAMPLE.ORG", DB_RCPT_OK, "+alice@example.org" },
	{ "nobody", "example.org", DB_RCPT_UNKNOWN, "" },
	{ "x", "example.com", DB_RCPT_NOT_LOCAL, "" },
	{ "info", "example.org", DB_RCPT_OK,
	    "+alice@example.org +bob@example.org -ext@remote.example" },
	{ "team", "example.org", DB_RCPT_OK, "+bob@example.org "
	    "+carol@example.net +alice@example.org -ext@remote.example" },
	{ "loop1", "example.org", DB_RCPT_OK, "+bob@example.org" },
	{ "dead", "example.org", DB_RCPT_UNKNOWN, "" },
	{ "carol", "example.net", DB_RCPT_OK, "+carol@example.net" },
	{ "anything", "example.net", DB_RCPT_OK, "+carol@example.net" },
};

static void
targets_str(const struct db_targets *t, char *buf, size_t size)
{
	size_t	i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < t->n && o < size; i++)
		o += snprintf(buf + o, size - o, "%s%c%s@%s", i ? " " : "",
		    t->t[i].local ? '+' : '-', t->t[i].local_part,
		    t->t[i].domain);
}

/* The targets in any order: sort the words of both. */
static int
cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
sort_words(char *s)
{
	char	*w[DB_TARGETS_MAX], copy[4096], *p = copy, *tok;
	size_t	 n = 0, i, o = 0;

	snprintf(copy, sizeof(copy), "%s", s);
	while ((tok = strsep(&p, " ")) != NULL && n < DB_TARGETS_MAX)
		if (*tok != '\0')
			w[n++] = tok;
	qsort(w, n, sizeof(w[0]), cmpstr);
	s[0] = '\0';
	for (i = 0; i < n; i++)
		o += sprintf(s + o, "%s%s", i ? " " : "", w[i]);
}

static void
test_resolve(void)
{
	struct db_targets	t;
	char			got[4096], want[4096];
	size_t			i;

	for (i = 0; i < NROWS(resolve_rows); i++) {
		const struct want *w = &resolve_rows[i];

		CHECK_ROW(db_rcpt_resolve(db, w->local, w->domain, &t) ==
		    w->r, w->local);
		targets_str(&t, got, sizeof(got));
		snprintf(want, sizeof(want), "%s", w->targets);
		sort_words(got);
		sort_words(want);
		CHECK_STR(got, want);
	}
}

/* A chain of 10 aliases: followed 8 levels deep, then dropped. */
static void
test_resolve_depth(void)
{
	struct db_targets	t;
	char			a[64], b[64], err[256];
	int			i;

	for (i = 0; i < 10; i++) {
		snprintf(a, sizeof(a), "c%d@example.org", i);
		snprintf(b, sizeof(b), "c%d@example.org", i + 1);
		OK(db_alias_add(db, a, b, err, sizeof(err)));
	}
	OK(db_alias_add(db, "c10@example.org", "bob@example.org", err,
	    sizeof(err)));
	OK(db_alias_add(db, "c3@example.org", "alice@example.org", err,
	    sizeof(err)));
	CHECK_INT(db_rcpt_resolve(db, "c0", "example.org", &t), DB_RCPT_OK);
	CHECK_INT(t.n, 1);
	CHECK_STR(t.t[0].local_part, "alice");
	CHECK_INT(db_rcpt_resolve(db, "c2", "example.org", &t), DB_RCPT_OK);
	CHECK_INT(t.n, 1);
	/* c3 .. c10 are 8 levels: bob is reached. */
	CHECK_INT(db_rcpt_resolve(db, "c3", "example.org", &t), DB_RCPT_OK);
	CHECK_INT(t.n, 2);
}

/* More targets than fit: bounded at DB_TARGETS_MAX. */
static void
test_resolve_bound(void)
{
	struct db_targets	t;
	char			b[64], err[256];
	int			i;

	for (i = 0; i < DB_TARGETS_MAX + 10; i++) {
		snprintf(b, sizeof(b), "u%d@remote.example", i);
		OK(db_alias_add(db, "many@example.org", b, err, sizeof(err)));
	}
	CHECK_INT(db_rcpt_resolve(db, "many", "example.org", &t), DB_RCPT_OK);
	CHECK_INT(t.n, DB_TARGETS_MAX);
}

struct rows {
	char	buf[2048];
	size_t	len;
};

static void
collect(void *arg, int ncols, const char *const *cols)
{
	struct rows	*r = arg;
	int		 i;

	for (i = 0; i < ncols; i++)
		r->len += snprintf(r->buf + r->len, sizeof(r->buf) - r->len,
		    "%s%s", cols[i], i + 1 < ncols ? " " : "\n");
}

static const char *
view(enum db_view v)
{
	static struct rows	r;
	static char		err[256];

	memset(&r, 0, sizeof(r));
	if (db_view(db, v, collect, &r, err, sizeof(err)) == -1)
		return err;
	return r.buf;
}

static void
test_lists(void)
{
	char	err[256];

	OK(db_set_add(db, DB_SET_TRUSTED, "192.168.0.0/24", err, sizeof(err)));
	OK(db_set_add(db, DB_SET_TRUSTED, "Relay.Example", err, sizeof(err)));
	CHECK_INT(db_set_add(db, DB_SET_TRUSTED, "relay.example", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "trusted host relay.example exists");
	OK(db_set_add(db, DB_SET_BYPASS_LOCAL_SENDER, "example.com", err,
	    sizeof(err)));
	OK(db_set_add(db, DB_SET_BYPASS_AUTH_MISMATCH, "example.com", err,
	    sizeof(err)));
	OK(db_set_add(db, DB_SET_DEVICES, "10.0.0.5", err, sizeof(err)));
	CHECK_INT(db_set_del(db, DB_SET_DEVICES, "10.0.0.6", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "no such device 10.0.0.6");
	CHECK_INT(db_set_del(db, DB_SET_BYPASS_LOCAL_SENDER, "x.example", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "no such bypass entry x.example");
	CHECK_STR(view(DB_VIEW_TRUSTED), "192.168.0.0/24\nrelay.example\n");
	CHECK_STR(view(DB_VIEW_BYPASS_LOCAL_SENDER), "example.com\n");
	OK(db_set_del(db, DB_SET_BYPASS_LOCAL_SENDER, "example.com", err,
	    sizeof(err)));
	CHECK_STR(view(DB_VIEW_BYPASS_LOCAL_SENDER), "");
	CHECK_STR(view(DB_VIEW_BYPASS_AUTH_MISMATCH), "example.com\n");
	CHECK_STR(view(DB_VIEW_DEVICES), "10.0.0.5\n");
	CHECK_STR(view(DB_VIEW_DOMAINS), "example.net\nexample.org\n");
	OK(db_account_set(db, "bob@example.org", "smtp_auth", false, err,
	    sizeof(err)));
	CHECK_STR(view(DB_VIEW_ACCOUNTS), "carol@example.net enabled "
	    "smtp-auth=on\nalice@example.org enabled smtp-auth=on\n"
	    "bob@example.org enabled smtp-auth=off\n");
	OK(db_send_as_add(db, "bob@example.org", "Sales@example.org", err,
	    sizeof(err)));
	CHECK_INT(db_send_as_add(db, "bob@example.org", "sales@example.org",
	    err, sizeof(err)), -1);
	CHECK_STR(err, "bob@example.org may already send as "
	    "sales@example.org");
	CHECK_INT(db_send_as_add(db, "x@example.org", "sales@example.org",
	    err, sizeof(err)), -1);
	CHECK_STR(err, "no such account x@example.org");
	CHECK_STR(view(DB_VIEW_SEND_AS), "bob@example.org sales@example.org\n");
}

static void
test_redirect_block_popauth(void)
{
	char		 err[256];
	const char	*v;

	OK(db_redirect_add(db, "old.example", "%%alias%%@new.example",
	    "mx.new.example:2525", err, sizeof(err)));
	CHECK_INT(db_redirect_add(db, "old.example", "a@b.example", "h", err,
	    sizeof(err)), -1);
	CHECK_STR(err, "a redirect for old.example exists; delete it first");
	CHECK_STR(view(DB_VIEW_REDIRECTS), "old.example %%alias%%@new.example "
	    "mx.new.example:2525\n");
	OK(db_redirect_del(db, "old.example", err, sizeof(err)));
	CHECK_INT(db_redirect_del(db, "old.example", err, sizeof(err)), -1);
	CHECK_STR(err, "no redirect for old.example");

	OK(db_block_add(db, "192.0.2.7", 30, "auth failures", err,
	    sizeof(err)));
	OK(db_block_add(db, "192.0.2.8", 0, "expired", err, sizeof(err)));
	v = view(DB_VIEW_BLOCKS);
	CHECK(strncmp(v, "192.0.2.7 20", 12) == 0);
	CHECK(strstr(v, "Z auth failures\n") != NULL);
	CHECK(strstr(v, "192.0.2.8") == NULL);
	OK(db_block_del(db, "192.0.2.7", err, sizeof(err)));
	CHECK_INT(db_block_del(db, "192.0.2.9", err, sizeof(err)), -1);
	CHECK_STR(err, "no block for 192.0.2.9");
	CHECK_STR(view(DB_VIEW_BLOCKS), "");

	OK(db_popauth_grant(db, "Bob@example.org", "192.0.2.1", 15, err,
	    sizeof(err)));
	CHECK(strncmp(view(DB_VIEW_POPAUTH), "192.0.2.1 bob@example.org 20",
	    28) == 0);
	CHECK_INT(db_popauth_grant(db, "x@example.org", "192.0.2.1", 15, err,
	    sizeof(err)), -1);
	CHECK_STR(err, "no such account x@example.org");
}

static void
test_domain_del(void)
{
	char	err[256];

	OK(db_domain_add(db, "solo.example", err, sizeof(err)));
	OK(db_alias_add(db, "@solo.example", "bob@example.org", err,
	    sizeof(err)));
	CHECK_INT(db_domain_del(db, "solo.example", err, sizeof(err)), -1);
	CHECK_STR(err, "domain solo.example still has 1 alias; delete it "
	    "first");
	OK(db_alias_del(db, "@solo.example", NULL, err, sizeof(err)));
	OK(db_domain_del(db, "solo.example", err, sizeof(err)));
	OK(db_account_del(db, "carol@example.net", err, sizeof(err)));
	CHECK_INT(db_account_del(db, "carol@example.net", err, sizeof(err)),
	    -1);
	CHECK_STR(err, "no such account carol@example.net");
	OK(db_alias_del(db, "@example.net", NULL, err, sizeof(err)));
	OK(db_domain_del(db, "example.net", err, sizeof(err)));
}

/* Every listing of a store, one line a row, for comparisons. */
struct dump {
	char	text[8192];
	size_t	len;
};

static void
dump_row(void *arg, int ncols, const char *const *cols)
{
	struct dump	*d = arg;
	int		 i;

	for (i = 0; i < ncols && d->len < sizeof(d->text); i++)
		d->len += (size_t)snprintf(d->text + d->len,
		    sizeof(d->text) - d->len, "%s%s", cols[i],
		    i + 1 < ncols ? " " : "\n");
}

static void
dump_all(struct db *h, struct dump *d)
{
	char	err[256];
	int	v;

	d->len = 0;
	d->text[0] = '\0';
	for (v = DB_VIEW_DOMAINS; v <= DB_VIEW_POPAUTH; v++)
		CHECK_INT(db_view(h, v, dump_row, d, err, sizeof(err)), 0);
}

/* The changes db hands to its forward function (shared.c's). */
static struct {
	int	n;
	int	q[8], nparams[8];
	char	p[8][3][64];
} fwd;

static void
record(void *arg, int q, int n, const char *const *p)
{
	int	i;

	if (fwd.n == 8)
		return;
	fwd.q[fwd.n] = q;
	fwd.nparams[fwd.n] = n;
	for (i = 0; i < n && i < 3; i++)
		snprintf(fwd.p[fwd.n][i], sizeof(fwd.p[0][0]), "%s", p[i]);
	fwd.n++;
}

/*
 * db_copy (the mirror's load and refresh, store migrate) makes one
 * store hold what the other does, a part of the tables too (send_as is
 * not lost with a refresh of accounts alone); a change of the store
 * role's is forwarded as its statement and parameters, and replayed on
 * another store means the same.
 */
static void
test_copy_and_forward(void)
{
	struct db	*to, *other;
	struct dump	 a, b;
	char		 p2[300], p3[300], err[256], reason[64];
	const char	*params[3];
	long long	 until;
	int		 i, k;

	snprintf(p2, sizeof(p2), "%s/copy.db", dir);
	snprintf(p3, sizeof(p3), "%s/other.db", dir);
	CHECK_INT(db_open(p2, &to, err, sizeof(err)), 0);
	CHECK_INT(db_open(p3, &other, err, sizeof(err)), 0);
	CHECK_INT(db_rows(to, err, sizeof(err)), 0);
	CHECK_INT(db_copy(db, to, DB_TABLES_ALL, err, sizeof(err)), 0);
	CHECK(db_rows(to, err, sizeof(err)) == db_rows(db, err, sizeof(err)));
	CHECK(db_rows(to, err, sizeof(err)) > 5);
	dump_all(db, &a);
	dump_all(to, &b);
	CHECK_STR(b.text, a.text);
	CHECK(strstr(a.text, "bob@example.org sales@example.org\n") != NULL);
	CHECK_INT(db_copy(db, to, 1u << db_table_index("accounts"), err,
	    sizeof(err)), 0);
	dump_all(to, &b);
	CHECK_STR(b.text, a.text);
	CHECK_STR(db_table_name(db_table_index("popauth")), "popauth");
	CHECK_INT(db_table_index("nothing"), -1);

	/* forwarded from to, replayed on other */
	CHECK_INT(db_copy(db, other, DB_TABLES_ALL, err, sizeof(err)), 0);
	memset(&fwd, 0, sizeof(fwd));
	db_set_forward(to, record, NULL);
	OK(db_block_add(to, "192.0.2.77", 5, "auth-failures", err,
	    sizeof(err)));
	OK(db_popauth_grant(to, "bob@example.org", "192.0.2.78", 15, err,
	    sizeof(err)));
	CHECK_INT(db_domain_add(to, "example.org", err, sizeof(err)), -1);
	CHECK_INT(fwd.n, 2);	/* a refused change is not forwarded */
	for (i = 0; i < fwd.n; i++) {
		for (k = 0; k < fwd.nparams[i] && k < 3; k++)
			params[k] = fwd.p[i][k];
		CHECK_INT(db_replay(other, fwd.q[i], fwd.nparams[i], params,
		    err, sizeof(err)), 0);
	}
	CHECK_INT(db_block_find(other, "192.0.2.77", &until, reason,
	    sizeof(reason)), 1);
	CHECK_STR(reason, "auth-failures");
	dump_all(to, &a);
	dump_all(other, &b);
	CHECK_STR(b.text, a.text);
	CHECK_INT(db_replay(other, -1, 0, NULL, err, sizeof(err)), -1);
	db_close(&to);
	db_close(&other);
	for (i = 0; i < 2; i++) {
		char	f[320];
		const char *base = i == 0 ? p2 : p3;

		unlink(base);
		snprintf(f, sizeof(f), "%s-wal", base);
		unlink(f);
		snprintf(f, sizeof(f), "%s-shm", base);
		unlink(f);
	}
}

int
main(void)
{
	setup();
	RUN(test_open);
	RUN(test_domains);
	RUN(test_accounts);
	RUN(test_passwords);
	RUN(test_imported_hashes);
	RUN(test_hash_format);
	RUN(test_aliases);
	RUN(test_resolve);
	RUN(test_resolve_depth);
	RUN(test_resolve_bound);
	RUN(test_lists);
	RUN(test_redirect_block_popauth);
	RUN(test_copy_and_forward);
	RUN(test_domain_del);
	teardown();
	return test_done();
}

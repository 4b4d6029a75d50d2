/*
 * db.c - the account store (R7.2): schema, recipient resolution,
 * password hashes and the administrator's changes, and the SQLite
 * driver; db_pg.c is the PostgreSQL one (db_int.h).
 *
 * Run by the store role (lookups from its loop thread) and by
 * postino-admin (changes), on the same file: WAL journalling and a busy
 * timeout let them share it.  Every statement is written once, in SQL
 * both engines accept, and run with bound parameters, never pasted
 * together.  Addresses and domains arrive checked by the caller
 * (addr_parse) and are folded to lower case here.  Passwords are stored
 * only as crypt(3) hashes (R2.4).
 */
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "db_int.h"
#include "ipmatch.h"
#include "sasl.h"

#define SCHEMA_VERSION	1
#define BUSY_MS		5000
#define ALIAS_DEPTH_MAX	8	/* alias levels followed */
#define STR_(x)		#x
#define STR(x)		STR_(x)
#define SEEN_MAX	256	/* addresses visited by one resolution */
#define KEY_MAX		(ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX + 1)

/* Times are seconds since the epoch; BIGINT is INTEGER to SQLite. */
const char db_schema[] =
    "CREATE TABLE domains ("
    "  name TEXT PRIMARY KEY,"
    "  created BIGINT NOT NULL);"
    "CREATE TABLE accounts ("
    "  address TEXT PRIMARY KEY,"
    "  domain TEXT NOT NULL REFERENCES domains(name),"
    "  local_part TEXT NOT NULL,"
    "  password_hash TEXT NOT NULL,"
    "  scram_sha256 TEXT,"		/* RFC 5802 salted keys */
    "  scram_sha1 TEXT,"
    "  cram_md5 TEXT,"			/* HMAC-MD5 context, as Dovecot */
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  smtp_auth INTEGER NOT NULL DEFAULT 1,"
    "  created BIGINT NOT NULL,"
    "  UNIQUE (domain, local_part));"
    "CREATE TABLE aliases ("
    "  address TEXT NOT NULL,"		/* local@domain or @domain */
    "  target TEXT NOT NULL,"
    "  PRIMARY KEY (address, target));"
    "CREATE TABLE send_as ("
    "  account TEXT NOT NULL REFERENCES accounts(address)"
    "    ON DELETE CASCADE,"
    "  address TEXT NOT NULL,"
    "  PRIMARY KEY (account, address));"
    "CREATE TABLE trusted (entry TEXT PRIMARY KEY);"
    "CREATE TABLE bypass ("
    "  list TEXT NOT NULL CHECK (list IN ('local-sender', "
    "    'auth-mismatch')),"
    "  entry TEXT NOT NULL,"
    "  PRIMARY KEY (list, entry));"
    "CREATE TABLE devices (ip TEXT PRIMARY KEY);"
    "CREATE TABLE redirects ("
    "  domain TEXT PRIMARY KEY,"
    "  target TEXT NOT NULL,"
    "  host TEXT NOT NULL);"
    "CREATE TABLE blocks ("
    "  ip TEXT PRIMARY KEY,"
    "  until BIGINT NOT NULL,"
    "  reason TEXT NOT NULL);"
    "CREATE TABLE popauth ("
    "  ip TEXT PRIMARY KEY,"
    "  account TEXT NOT NULL,"
    "  until BIGINT NOT NULL);";

/* The tables and their columns, for db_copy: referred ones first. */
static const struct {
	const char	*name, *cols;
	int		 ncols;
} tables[DB_TABLES] = {
	{ "domains", "name, created", 2 },
	{ "accounts", "address, domain, local_part, password_hash, "
	    "scram_sha256, scram_sha1, cram_md5, enabled, smtp_auth, created",
	    10 },
	{ "aliases", "address, target", 2 },
	{ "send_as", "account, address", 2 },
	{ "trusted", "entry", 1 },
	{ "bypass", "list, entry", 2 },
	{ "devices", "ip", 1 },
	{ "redirects", "domain, target, host", 3 },
	{ "blocks", "ip, until, reason", 3 },
	{ "popauth", "ip, account, until", 3 },
};

/*
 * Every statement, prepared once on first use.  "now" is a parameter,
 * not the engine's clock function, so that the SQL is the same for both
 * and a change replayed on the shared store means what it meant here.
 */
enum q {
	Q_DOMAIN_GET, Q_DOMAIN_ADD, Q_DOMAIN_DEL, Q_DOMAIN_ACCOUNTS,
	Q_DOMAIN_ALIASES, Q_ACCOUNT_GET, Q_ACCOUNT_EXISTS, Q_ACCOUNT_ADD,
	Q_ACCOUNT_PASSWD,
	Q_ACCOUNT_ENABLED, Q_ACCOUNT_SMTP_AUTH, Q_ACCOUNT_DEL,
	Q_ACCOUNT_ALIASES, Q_SEND_AS_ADD, Q_ALIAS_TARGETS, Q_ALIAS_ADD,
	Q_ALIAS_DEL, Q_ALIAS_DEL_ALL, Q_REDIRECT_ADD, Q_REDIRECT_DEL,
	Q_BLOCK_ADD, Q_BLOCK_DEL, Q_POPAUTH_ADD, Q_ACCOUNT_SECRETS,
	Q_ACCOUNT_CRED, Q_SENDER_OWNED, Q_POPAUTH_GET,
	Q_REDIRECT_GET, Q_BLOCK_GET, Q_BLOCK_EXPIRE,
	Q_MAX,
	/* SQLite's own, and the inserts of db_copy, one a table */
	Q_DATA_VERSION = Q_MAX, Q_COPY
};

static const char *const sqls[Q_MAX] = {
	[Q_DOMAIN_GET] = "SELECT 1 FROM domains WHERE name = ?1",
	[Q_DOMAIN_ADD] = "INSERT INTO domains (name, created) VALUES (?1, ?2)",
	[Q_DOMAIN_DEL] = "DELETE FROM domains WHERE name = ?1",
	[Q_DOMAIN_ACCOUNTS] = "SELECT count(*) FROM accounts WHERE domain = ?1",
	[Q_DOMAIN_ALIASES] = "SELECT count(*) FROM aliases WHERE "
	    "substr(address, length(address) - length(CAST(?1 AS TEXT))) = "
	    "'@' || CAST(?1 AS TEXT)",
	/* answered from the address index alone */
	[Q_ACCOUNT_EXISTS] = "SELECT 1 FROM accounts WHERE address = ?1",
	[Q_ACCOUNT_GET] = "SELECT password_hash, enabled, smtp_auth "
	    "FROM accounts WHERE address = ?1",
	[Q_ACCOUNT_ADD] = "INSERT INTO accounts (address, domain, local_part, "
	    "password_hash, created) VALUES (?1, ?2, ?3, ?4, ?5)",
	[Q_ACCOUNT_PASSWD] = "UPDATE accounts SET password_hash = ?2, "
	    "scram_sha256 = NULL, scram_sha1 = NULL, cram_md5 = NULL "
	    "WHERE address = ?1",
	[Q_ACCOUNT_ENABLED] = "UPDATE accounts SET enabled = ?2 "
	    "WHERE address = ?1",
	[Q_ACCOUNT_SMTP_AUTH] = "UPDATE accounts SET smtp_auth = ?2 "
	    "WHERE address = ?1",
	[Q_ACCOUNT_DEL] = "DELETE FROM accounts WHERE address = ?1",
	[Q_ACCOUNT_ALIASES] = "SELECT 1 FROM aliases WHERE address = ?1",
	[Q_SEND_AS_ADD] = "INSERT INTO send_as (account, address) "
	    "VALUES (?1, ?2)",
	[Q_ALIAS_TARGETS] = "SELECT target FROM aliases WHERE address = ?1 "
	    "ORDER BY target",
	[Q_ALIAS_ADD] = "INSERT INTO aliases (address, target) VALUES (?1, ?2)",
	[Q_ALIAS_DEL] = "DELETE FROM aliases WHERE address = ?1 AND "
	    "target = ?2",
	[Q_ALIAS_DEL_ALL] = "DELETE FROM aliases WHERE address = ?1",
	[Q_REDIRECT_ADD] = "INSERT INTO redirects (domain, target, host) "
	    "VALUES (?1, ?2, ?3)",
	[Q_REDIRECT_DEL] = "DELETE FROM redirects WHERE domain = ?1",
	[Q_REDIRECT_GET] = "SELECT target, host FROM redirects WHERE domain = ?1",
	[Q_BLOCK_ADD] = "INSERT INTO blocks (ip, until, reason) "
	    "VALUES (?1, ?2, ?3) ON CONFLICT (ip) DO UPDATE SET "
	    "until = excluded.until, reason = excluded.reason",
	/* the daemon's intrusion_tick deletes it, and logs the unblock */
	[Q_BLOCK_DEL] = "UPDATE blocks SET until = 0 WHERE ip = ?1 "
	    "AND until > ?2",
	[Q_POPAUTH_ADD] = "INSERT INTO popauth (ip, account, until) "
	    "VALUES (?1, ?2, ?3) ON CONFLICT (ip) DO UPDATE SET "
	    "account = excluded.account, until = excluded.until",
	[Q_ACCOUNT_SECRETS] = "UPDATE accounts SET scram_sha256 = ?2, "
	    "scram_sha1 = ?3, cram_md5 = ?4 WHERE address = ?1",
	/* R3.2: the sender is an alias whose chain reaches the account
	 * (as deep as delivery follows aliases), or granted to it */
	[Q_SENDER_OWNED] = "WITH RECURSIVE chain(addr, depth) AS ("
	    "SELECT CAST(?1 AS TEXT), 0 UNION SELECT a.target, c.depth + 1 "
	    "FROM aliases a JOIN chain c ON a.address = c.addr WHERE "
	    "c.depth < " STR(ALIAS_DEPTH_MAX) ") "
	    "SELECT 1 FROM chain WHERE addr = ?2 AND depth > 0 "
	    "UNION ALL SELECT 1 FROM send_as WHERE account = ?2 "
	    "AND address = ?1",
	[Q_POPAUTH_GET] = "SELECT account, until FROM popauth WHERE ip = ?1 "
	    "AND until > ?2",
	[Q_BLOCK_GET] = "SELECT until, reason FROM blocks WHERE ip = ?1 "
	    "AND until > ?2",
	[Q_BLOCK_EXPIRE] = "DELETE FROM blocks WHERE until <= ?1 "
	    "RETURNING ip, until, reason",
	[Q_ACCOUNT_CRED] = "SELECT password_hash, enabled, smtp_auth, "
	    "scram_sha256, scram_sha1, cram_md5 FROM accounts "
	    "WHERE address = ?1",
};

/* The lists of enum db_set: the statements and the word for messages. */
static const struct {
	const char	*add, *del, *what, *list;
} sets[] = {
	[DB_SET_TRUSTED] = { "INSERT INTO trusted (entry) VALUES (?1)",
	    "DELETE FROM trusted WHERE entry = ?1", "trusted host", NULL },
	[DB_SET_BYPASS_LOCAL_SENDER] = { "INSERT INTO bypass (list, entry) "
	    "VALUES (?2, ?1)", "DELETE FROM bypass WHERE list = ?2 AND "
	    "entry = ?1", "bypass entry", "local-sender" },
	[DB_SET_BYPASS_AUTH_MISMATCH] = { "INSERT INTO bypass (list, entry) "
	    "VALUES (?2, ?1)", "DELETE FROM bypass WHERE list = ?2 AND "
	    "entry = ?1", "bypass entry", "auth-mismatch" },
	[DB_SET_DEVICES] = { "INSERT INTO devices (ip) VALUES (?1)",
	    "DELETE FROM devices WHERE ip = ?1", "device", NULL },
};

/*
 * The listings; ?1 is now.  A column named in time_col is a time,
 * written "YYYY-MM-DDTHH:MM:SSZ" here rather than by either engine.
 */
static const struct {
	const char	*sql;
	int		 time_col;	/* -1: none */
} views[] = {
	[DB_VIEW_DOMAINS] = { "SELECT name FROM domains ORDER BY name", -1 },
	[DB_VIEW_ACCOUNTS] = { "SELECT address, CASE enabled WHEN 0 THEN "
	    "'disabled' ELSE 'enabled' END, CASE smtp_auth WHEN 0 THEN "
	    "'smtp-auth=off' ELSE 'smtp-auth=on' END FROM accounts "
	    "ORDER BY domain, local_part", -1 },
	[DB_VIEW_ALIASES] = { "SELECT address, target FROM aliases "
	    "ORDER BY address, target", -1 },
	[DB_VIEW_SEND_AS] = { "SELECT account, address FROM send_as "
	    "ORDER BY account, address", -1 },
	[DB_VIEW_TRUSTED] = { "SELECT entry FROM trusted ORDER BY entry", -1 },
	[DB_VIEW_BYPASS_LOCAL_SENDER] = { "SELECT entry FROM bypass "
	    "WHERE list = 'local-sender' ORDER BY entry", -1 },
	[DB_VIEW_BYPASS_AUTH_MISMATCH] = { "SELECT entry FROM bypass "
	    "WHERE list = 'auth-mismatch' ORDER BY entry", -1 },
	[DB_VIEW_DEVICES] = { "SELECT ip FROM devices ORDER BY ip", -1 },
	[DB_VIEW_REDIRECTS] = { "SELECT domain, target, host FROM redirects "
	    "ORDER BY domain", -1 },
	[DB_VIEW_BLOCKS] = { "SELECT ip, until, reason FROM blocks "
	    "WHERE until > ?1 ORDER BY ip", 1 },
	[DB_VIEW_POPAUTH] = { "SELECT ip, account, until FROM popauth "
	    "WHERE until > ?1 ORDER BY ip", 2 },
};

static const struct db_driver	sqlite_driver;

/* One resolution of db_rcpt_resolve(). */
struct resolve {
	struct db		*db;
	struct db_targets	*t;
	size_t			 nseen;
	char			 seen[SEEN_MAX][KEY_MAX];
	int			 failed;
};

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
dberr(struct db *db, char *err, size_t errlen)
{
	return fail(err, errlen, "database %s: %s", db->path,
	    db->drv->errmsg(db));
}

/* Lower-case (ASCII) copy; -1 when it does not fit. */
static int
fold(char *dst, size_t size, const char *src)
{
	size_t	i;

	for (i = 0; src[i] != '\0'; i++) {
		if (i + 1 >= size)
			return -1;
		dst[i] = src[i] >= 'A' && src[i] <= 'Z' ?
		    src[i] - 'A' + 'a' : src[i];
	}
	if (size == 0)
		return -1;
	dst[i] = '\0';
	return 0;
}

/* Fold "local@domain" and split it at its last '@'. */
static int
split_addr(const char *addr, char *key, char **local_r, char **domain_r)
{
	char	*at;

	if (fold(key, KEY_MAX, addr) == -1 || (at = strrchr(key, '@')) == NULL)
		return -1;
	*domain_r = at + 1;
	*local_r = key;
	return 0;
}

/* --- the SQLite driver ------------------------------------------------ */

static enum dbr
sqlite_step(struct db_cur *c)
{
	switch (sqlite3_step(c->stmt)) {
	case SQLITE_ROW:
		c->row++;
		return DBR_ROW;
	case SQLITE_DONE:
		c->changes = sqlite3_changes(c->db->h);
		return DBR_DONE;
	case SQLITE_CONSTRAINT:
		return DBR_CONSTRAINT;
	default:
		return DBR_ERROR;
	}
}

static void	read_start(struct db *, sqlite3_stmt *);

/*
 * Statement q is prepared once and kept; an unnumbered one is not.  In
 * a batch of db_read_begin(), a lookup opens the read transaction and a
 * change ends it first (read_start).
 */
static enum dbr
sqlite_run(struct db *db, int q, const char *sql, int n,
    const char *const *p, struct db_cur *c)
{
	sqlite3_stmt	*s;
	int		 i;

	if (q >= 0 && db->q[q] != NULL) {
		s = db->q[q];
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	} else if (sqlite3_prepare_v3(db->h, sql, -1, q >= 0 ?
	    SQLITE_PREPARE_PERSISTENT : 0, &s, NULL) != SQLITE_OK)
		return DBR_ERROR;
	else if (q >= 0)
		db->q[q] = s;
	read_start(db, s);
	c->stmt = s;
	c->finalize = q < 0;
	c->ncols = sqlite3_column_count(s);
	for (i = 0; i < n; i++)
		if ((p[i] == NULL ? sqlite3_bind_null(s, i + 1) :
		    sqlite3_bind_text(s, i + 1, p[i], -1, SQLITE_TRANSIENT)) !=
		    SQLITE_OK)
			return DBR_ERROR;
	return sqlite_step(c);
}

static const char *
sqlite_text(struct db_cur *c, int col)
{
	return (const char *)sqlite3_column_text(c->stmt, col);
}

static void
sqlite_done(struct db_cur *c)
{
	if (c->stmt == NULL)
		return;
	if (c->finalize)
		sqlite3_finalize(c->stmt);
	else
		sqlite3_reset(c->stmt);
	c->stmt = NULL;
}

static void	read_commit(struct db *);

static int
sqlite_exec(struct db *db, const char *sql)
{
	read_commit(db);
	return sqlite3_exec(db->h, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* One prepared statement without parameters or rows, run. */
static int
sqlite_once(struct db *db, void **stmtp, const char *sql)
{
	sqlite3_stmt	*s = *stmtp;
	int		 r;

	if (s == NULL && sqlite3_prepare_v3(db->h, sql, -1,
	    SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
		return -1;
	*stmtp = s;
	r = sqlite3_step(s);
	sqlite3_reset(s);
	return r == SQLITE_DONE ? 0 : -1;
}

/* End the read transaction, if one is open. */
static void
read_commit(struct db *db)
{
	if (!db->reading)
		return;
	db->reading = false;
	/* a read transaction left open would see nothing new again */
	if (sqlite_once(db, &db->rend, "COMMIT") == -1 &&
	    !sqlite3_get_autocommit(db->h)) {
		log_warn("store event=db-read-end error=\"%s\"",
		    sqlite3_errmsg(db->h));
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	}
}

/*
 * Before statement s runs: a change is made, and seen, as if there were
 * no batch; a lookup in a batch runs in its read transaction, opened by
 * the first one (a batch without lookups costs nothing).
 */
static void
read_start(struct db *db, sqlite3_stmt *s)
{
	if (!sqlite3_stmt_readonly(s))
		read_commit(db);
	else if (db->batch && !db->reading && sqlite3_get_autocommit(db->h))
		db->reading = sqlite_once(db, &db->rbegin, "BEGIN") == 0;
}

void
db_read_begin(struct db *db)
{
	db->batch = db->drv == &sqlite_driver;
}

void
db_read_end(struct db *db)
{
	db->batch = false;
	read_commit(db);
}

static const char *
sqlite_errmsg(struct db *db)
{
	return sqlite3_errmsg(db->h);
}

static void
sqlite_close(struct db *db)
{
	size_t	i;

	for (i = 0; i < DB_Q_MAX; i++)
		sqlite3_finalize(db->q[i]);
	sqlite3_finalize(db->rbegin);
	sqlite3_finalize(db->rend);
	sqlite3_close(db->h);
}

static const struct db_driver sqlite_driver = {
	"sqlite", sqlite_run, sqlite_step, sqlite_text, sqlite_done,
	sqlite_exec, sqlite_errmsg, sqlite_close
};

/* --- queries, the same for both drivers ----------------------------- */

/*
 * Run q with n text parameters; the cursor is on its first row when
 * DBR_ROW is returned and must then be given to done().  Any other
 * result has released it already.
 */
static enum dbr
run_v(struct db *db, enum q q, struct db_cur *c, int n,
    const char *const *p)
{
	enum dbr	r;

	memset(c, 0, sizeof(*c));
	c->db = db;
	r = db->drv->run(db, (int)q, sqls[q], n, p, c);
	if (r != DBR_ROW)
		db->drv->done(c);
	return r;
}

static enum dbr
run(struct db *db, enum q q, struct db_cur *c, int n, ...)
{
	const char	*p[DB_PARAMS_MAX];
	va_list		 ap;
	int		 i;

	va_start(ap, n);
	for (i = 0; i < n && i < DB_PARAMS_MAX; i++)
		p[i] = va_arg(ap, const char *);
	va_end(ap);
	return run_v(db, q, c, n, p);
}

static const char *
col(struct db_cur *c, int i)
{
	return c->db->drv->text(c, i);
}

static long long
col_int(struct db_cur *c, int i)
{
	const char	*v = col(c, i);

	return v != NULL ? strtoll(v, NULL, 10) : 0;
}

static void
copy_col(struct db_cur *c, int i, char *dst, size_t size)
{
	const char	*v = col(c, i);

	if (v == NULL || (size_t)snprintf(dst, size, "%s", v) >= size)
		dst[0] = '\0';
}

static enum dbr
next(struct db_cur *c)
{
	enum dbr	r = c->db->drv->next(c);

	if (r != DBR_ROW)
		c->db->drv->done(c);
	return r;
}

static void
done(struct db_cur *c)
{
	c->db->drv->done(c);
}

static int
exec(struct db *db, const char *sql)
{
	return db->drv->exec(db, sql);
}

/* A write transaction: SQLite takes the write lock at once. */
static int
begin(struct db *db)
{
	return exec(db, db->drv == &sqlite_driver ? "BEGIN IMMEDIATE" :
	    "BEGIN");
}

/* Run a change that returns no rows, up to five parameters. */
static enum dbr
change5(struct db *db, enum q q, int n, const char *a, const char *b,
    const char *c, const char *d, const char *e)
{
	struct db_cur	cur;
	enum dbr	r;

	if ((r = run(db, q, &cur, n, a, b, c, d, e)) == DBR_ROW) {
		done(&cur);
		r = DBR_ERROR;
	}
	return r;
}

static void
now_str(char *buf, size_t size, long long add)
{
	snprintf(buf, size, "%lld", (long long)time(NULL) + add);
}

static int
schema_init(struct db *db, char *err, size_t errlen)
{
	sqlite3_stmt	*s;
	int		 version = -1;
	char		 sql[64];

	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &s,
	    NULL) != SQLITE_OK)
		return dberr(db, err, errlen);
	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version == SCHEMA_VERSION)
		return 0;
	if (version != 0)
		return fail(err, errlen, "database %s: schema version %d, "
		    "expected %d or a new file", db->path, version,
		    SCHEMA_VERSION);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    SCHEMA_VERSION);
	if (exec(db, "BEGIN IMMEDIATE") == -1)
		return dberr(db, err, errlen);
	if (exec(db, db_schema) == -1 || exec(db, sql) == -1) {
		dberr(db, err, errlen);
		exec(db, "ROLLBACK");
		return -1;
	}
	if (exec(db, "COMMIT") == -1)
		return dberr(db, err, errlen);
	return 0;
}

/*
 * SQLite makes every relative name absolute with getcwd() and checks
 * each directory on the way.  The store role and postino-admin enter
 * the data directory as root and only then become the daemon's user,
 * so a directory above it may be closed to that user (a checkout under
 * /root, mode 0700, with `make run`): the absolute name is unreachable
 * while the relative one opens.  This VFS is the default one but keeps
 * relative names as they are (the database, its -wal and -shm files
 * then live beside each other in the working directory, which neither
 * process ever changes).
 */
static sqlite3_vfs	cwd_vfs;
static sqlite3_vfs	*base_vfs;

static int
cwd_full_pathname(sqlite3_vfs *vfs, const char *name, int size, char *out)
{
	if (name[0] == '/')
		return base_vfs->xFullPathname(base_vfs, name, size, out);
	if ((int)strlen(name) >= size)
		return SQLITE_CANTOPEN;
	memcpy(out, name, strlen(name) + 1);
	return SQLITE_OK;
}

static void
cwd_vfs_init(void)
{
	if ((base_vfs = sqlite3_vfs_find(NULL)) == NULL)
		return;
	cwd_vfs = *base_vfs;
	cwd_vfs.zName = "postino-cwd";
	cwd_vfs.pNext = NULL;
	cwd_vfs.xFullPathname = cwd_full_pathname;
	sqlite3_vfs_register(&cwd_vfs, 0);
}

static struct db *
db_new(const struct db_driver *drv, const char *path)
{
	struct db	*db;

	if ((db = calloc(1, sizeof(*db))) == NULL)
		return NULL;
	db->drv = drv;
	snprintf(db->path, sizeof(db->path), "%s", path);
	db->scram_iterations = DB_SCRAM_ITERATIONS;
	return db;
}

int
db_open(const char *path, struct db **db_r, char *err, size_t errlen)
{
	static pthread_once_t	 once = PTHREAD_ONCE_INIT;
	struct db	*db;
	sqlite3		*h = NULL;

	*db_r = NULL;
	if ((db = db_new(&sqlite_driver, path)) == NULL)
		return fail(err, errlen, "database %s: out of memory", path);
	pthread_once(&once, cwd_vfs_init);
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, base_vfs != NULL ?
	    cwd_vfs.zName : NULL) != SQLITE_OK) {
		fail(err, errlen, "database %s: %s", path, h != NULL ?
		    sqlite3_errmsg(h) : "out of memory");
		sqlite3_close(h);
		free(db);
		return -1;
	}
	db->h = h;
	sqlite3_busy_timeout(h, BUSY_MS);
	sqlite3_extended_result_codes(h, 0);
	if (exec(db, "PRAGMA journal_mode = WAL") == -1 ||
	    exec(db, "PRAGMA foreign_keys = ON") == -1)
		goto out_err;
	if (schema_init(db, err, errlen) == -1)
		goto out_close;
	*db_r = db;
	return 0;
out_err:
	dberr(db, err, errlen);
out_close:
	db_close(&db);
	return -1;
}

int
db_open_pg(const char *dsn, struct db **db_r, char *err, size_t errlen)
{
	struct db	*db;

	*db_r = NULL;
	if ((db = db_new(NULL, "postgres")) == NULL)
		return fail(err, errlen, "database postgres: out of memory");
	if (db_pg_connect(db, dsn, err, errlen) == -1) {
		free(db);
		return -1;
	}
	*db_r = db;
	return 0;
}

void
db_close(struct db **dbp)
{
	struct db	*db = *dbp;

	if (db == NULL)
		return;
	db->drv->close(db);
	free(db);
	*dbp = NULL;
}

/* 1 if q with the text parameter yields a row, 0 if not, -1 on error. */
static int
exists(struct db *db, enum q q, const char *arg)
{
	struct db_cur	c;

	switch (run(db, q, &c, 1, arg)) {
	case DBR_ROW:
		done(&c);
		return 1;
	case DBR_DONE:
		return 0;
	default:
		return -1;
	}
}

static int
domain_local(struct db *db, const char *domain)
{
	char	d[ADDR_DOMAIN_MAX + 1];

	if (fold(d, sizeof(d), domain) == -1)
		return 0;
	return exists(db, Q_DOMAIN_GET, d);
}

bool
db_domain_is_local(struct db *db, const char *domain)
{
	return domain_local(db, domain) == 1;
}

int
db_domain_local(struct db *db, const char *domain)
{
	return domain_local(db, domain);
}

/* Add a target once; beyond DB_TARGETS_MAX targets are dropped. */
static void
target_add(struct db_targets *t, const char *local, const char *domain,
    bool is_local)
{
	struct db_target	*x;
	size_t			 i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->t[i].local_part, local) == 0 &&
		    strcmp(t->t[i].domain, domain) == 0)
			return;
	if (t->n == DB_TARGETS_MAX || strlen(local) > ADDR_LOCAL_MAX ||
	    strlen(domain) > ADDR_DOMAIN_MAX)
		return;
	x = &t->t[t->n++];
	x->local = is_local;
	memcpy(x->local_part, local, strlen(local) + 1);
	memcpy(x->domain, domain, strlen(domain) + 1);
}

/* True the first time key is seen; a full set stops the expansion. */
static bool
first_visit(struct resolve *r, const char *key)
{
	size_t	i;

	for (i = 0; i < r->nseen; i++)
		if (strcmp(r->seen[i], key) == 0)
			return false;
	if (r->nseen == SEEN_MAX)
		return false;
	memcpy(r->seen[r->nseen++], key, strlen(key) + 1);
	return true;
}

/*
 * The targets of alias key, read whole before any is followed (the
 * statement is shared with the recursion).  Returns their count, at most
 * DB_TARGETS_MAX, in the malloc'ed *v_r; -1 on error.
 */
static int
alias_targets(struct db *db, const char *key, char (**v_r)[KEY_MAX])
{
	char		(*v)[KEY_MAX];
	struct db_cur	 c;
	enum dbr	 r;
	int		 n = 0;

	if ((v = calloc(DB_TARGETS_MAX, KEY_MAX)) == NULL)
		return -1;
	r = run(db, Q_ALIAS_TARGETS, &c, 1, key);
	for (; r == DBR_ROW; r = next(&c)) {
		const char *target = col(&c, 0);

		if (n < DB_TARGETS_MAX && target != NULL &&
		    fold(v[n], KEY_MAX, target) == 0)
			n++;
	}
	if (r != DBR_DONE) {
		free(v);
		return -1;
	}
	*v_r = v;
	return n;
}

static void	expand(struct resolve *, const char *, int);

static void
expand_aliases(struct resolve *r, const char *key, const char *domain,
    int depth)
{
	char	(*v)[KEY_MAX] = NULL, any[KEY_MAX];
	int	 i, n;

	if ((n = alias_targets(r->db, key, &v)) == 0) {
		free(v);
		v = NULL;
		snprintf(any, sizeof(any), "@%s", domain);
		if (!first_visit(r, any))
			return;
		n = alias_targets(r->db, any, &v);	/* the catch-all */
	}
	if (n == -1) {
		r->failed = 1;
		return;
	}
	for (i = 0; i < n && !r->failed; i++)
		expand(r, v[i], depth + 1);
	free(v);
}

/* Follow the folded address key: an account, a remote target, aliases. */
static void
expand(struct resolve *r, const char *key, int depth)
{
	const char	*at = strrchr(key, '@');
	char		 local[KEY_MAX];
	int		 found;

	if (at == NULL || at == key || !first_visit(r, key))
		return;
	snprintf(local, sizeof(local), "%.*s", (int)(at - key), key);
	if (depth > 0 && (found = domain_local(r->db, at + 1)) != 1) {
		if (found == -1)
			r->failed = 1;
		else
			target_add(r->t, local, at + 1, false);
		return;
	}
	if ((found = exists(r->db, Q_ACCOUNT_EXISTS, key)) != 0) {
		if (found == -1)
			r->failed = 1;
		else
			target_add(r->t, local, at + 1, true);
		return;
	}
	if (depth < ALIAS_DEPTH_MAX)
		expand_aliases(r, key, at + 1, depth);
}

enum db_rcpt
db_rcpt_resolve(struct db *db, const char *local_part, const char *domain,
    struct db_targets *t)
{
	struct resolve	*r;
	char		 key[KEY_MAX + 1];
	int		 local;
	enum db_rcpt	 res;

	t->n = 0;
	if ((local = domain_local(db, domain)) != 1)
		return local == 0 ? DB_RCPT_NOT_LOCAL : DB_RCPT_TEMPFAIL;
	if (strlen(local_part) > ADDR_LOCAL_MAX)
		return DB_RCPT_UNKNOWN;
	snprintf(key, sizeof(key), "%s@%s", local_part, domain);
	if (fold(key, KEY_MAX, key) == -1)
		return DB_RCPT_UNKNOWN;
	/* not calloc: seen[] is 80 KB, and only its first nseen count */
	if ((r = malloc(sizeof(*r))) == NULL)
		return DB_RCPT_TEMPFAIL;
	r->db = db;
	r->t = t;
	r->nseen = 0;
	r->failed = 0;
	expand(r, key, 0);
	if (r->failed)
		res = DB_RCPT_TEMPFAIL;
	else
		res = t->n > 0 ? DB_RCPT_OK : DB_RCPT_UNKNOWN;
	if (r->failed)
		t->n = 0;
	free(r);
	return res;
}

/*
 * Run a change q with text parameters: 0 done, 1 when it touched no
 * row, 2 on a constraint ("exists"), -1 with err.  A change that did
 * something is handed to the forward function, if any.
 */
static int
change(struct db *db, enum q q, char *err, size_t errlen, int n,
    const char *a, const char *b, const char *c)
{
	const char	*p[3] = { a, b, c };
	struct db_cur	 cur;

	switch (run_v(db, q, &cur, n, p)) {
	case DBR_DONE:
		if (cur.changes == 0)
			return 1;
		if (db->forward != NULL)
			db->forward(db->forward_arg, (int)q, n, p);
		return 0;
	case DBR_CONSTRAINT:
		return 2;
	case DBR_ROW:
		done(&cur);
		/* FALLTHROUGH */
	default:
		return dberr(db, err, errlen);
	}
}

int
db_domain_add(struct db *db, const char *domain, char *err, size_t errlen)
{
	char	d[ADDR_DOMAIN_MAX + 1], now[32];
	int	r;

	if (fold(d, sizeof(d), domain) == -1 || *d == '\0')
		return fail(err, errlen, "domain %s is not valid", domain);
	now_str(now, sizeof(now), 0);
	if ((r = change(db, Q_DOMAIN_ADD, err, errlen, 2, d, now, NULL)) == 2)
		return fail(err, errlen, "domain %s exists", d);
	return r == -1 ? -1 : 0;
}

/* How many rows of q name domain d; -1 on error. */
static int
count(struct db *db, enum q q, const char *d)
{
	struct db_cur	c;
	int		n = -1;

	if (run(db, q, &c, 1, d) == DBR_ROW) {
		n = (int)col_int(&c, 0);
		done(&c);
	}
	return n;
}

static int
domain_del(struct db *db, const char *d, char *err, size_t errlen)
{
	int	n, r;

	if ((n = count(db, Q_DOMAIN_ACCOUNTS, d)) == -1)
		return dberr(db, err, errlen);
	if (n > 0)
		return fail(err, errlen, "domain %s still has %d account%s; "
		    "delete %s first", d, n, n == 1 ? "" : "s",
		    n == 1 ? "it" : "them");
	if ((n = count(db, Q_DOMAIN_ALIASES, d)) == -1)
		return dberr(db, err, errlen);
	if (n > 0)
		return fail(err, errlen, "domain %s still has %d alias%s; "
		    "delete %s first", d, n, n == 1 ? "" : "es",
		    n == 1 ? "it" : "them");
	if ((r = change(db, Q_DOMAIN_DEL, err, errlen, 1, d, NULL, NULL)) == 1)
		return fail(err, errlen, "no such domain %s", d);
	return r == 0 ? 0 : -1;
}

/* The check and the delete in one transaction. */
int
db_domain_del(struct db *db, const char *domain, char *err, size_t errlen)
{
	char	d[ADDR_DOMAIN_MAX + 1];

	if (fold(d, sizeof(d), domain) == -1)
		return fail(err, errlen, "no such domain %s", domain);
	if (begin(db) == -1)
		return dberr(db, err, errlen);
	if (domain_del(db, d, err, errlen) == -1) {
		exec(db, "ROLLBACK");
		return -1;
	}
	if (exec(db, "COMMIT") == -1)
		return dberr(db, err, errlen);
	return 0;
}

/* A fresh yescrypt hash of password, malloc'ed; NULL on failure. */
static char *
hash_password(const char *password)
{
	struct crypt_data	*cd;
	char			*salt, *h = NULL, *res;

	if ((salt = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL)
		return NULL;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		goto out_salt;
	res = crypt_rn(password, salt, cd, sizeof(*cd));
	if (res != NULL && res[0] != '*')
		h = strdup(res);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
out_salt:
	free(salt);
	return h;
}

static int
check_password(const char *password, char *err, size_t errlen)
{
	if (*password == '\0')
		return fail(err, errlen, "empty password");
	return 0;
}

static int
account_insert(struct db *db, const char *addr, const char *hash, char *err,
    size_t errlen)
{
	char		full[KEY_MAX], key[KEY_MAX], *local, *domain;
	char		now[32];
	enum dbr	r;

	if (fold(full, sizeof(full), addr) == -1 ||
	    split_addr(addr, key, &local, &domain) == -1)
		return fail(err, errlen, "%s is not an address", addr);
	domain[-1] = '\0';
	now_str(now, sizeof(now), 0);
	r = change5(db, Q_ACCOUNT_ADD, 5, full, domain, local, hash, now);
	if (r == DBR_CONSTRAINT)
		return fail(err, errlen, "account %s exists", full);
	return r == DBR_DONE ? 0 : dberr(db, err, errlen);
}

/*
 * The secrets of the challenge-response mechanisms (R2.4): SCRAM salted
 * keys (RFC 5802) and the CRAM-MD5 HMAC context; never the password.
 */
static int
account_secrets(struct db *db, const char *key, const char *password,
    char *err, size_t errlen)
{
	char		s256[SASL_SECRET_MAX], s1[SASL_SECRET_MAX];
	char		cram[SASL_SECRET_MAX];
	enum dbr	r;

	if (sasl_scram_secret(password, SASL_HASH_SHA256, db->scram_iterations,
	    s256, sizeof(s256)) == -1 ||
	    sasl_scram_secret(password, SASL_HASH_SHA1, db->scram_iterations,
	    s1, sizeof(s1)) == -1 ||
	    sasl_cram_md5_secret(password, cram, sizeof(cram)) == -1)
		return fail(err, errlen, "cannot make the SASL secrets");
	r = change5(db, Q_ACCOUNT_SECRETS, 4, key, s256, s1, cram, NULL);
	explicit_bzero(s256, sizeof(s256));
	explicit_bzero(s1, sizeof(s1));
	explicit_bzero(cram, sizeof(cram));
	return r == DBR_DONE ? 0 : dberr(db, err, errlen);
}

int
db_account_add(struct db *db, const char *addr, const char *password,
    char *err, size_t errlen)
{
	char	 key[KEY_MAX], *local, *domain, *hash;
	int	 r;

	if (split_addr(addr, key, &local, &domain) == -1 || local == domain - 1)
		return fail(err, errlen, "%s is not an address", addr);
	if ((r = domain_local(db, domain)) != 1)
		return r == -1 ? dberr(db, err, errlen) : fail(err, errlen,
		    "domain %s is not local; add it with: postino-admin "
		    "domain add %s", domain, domain);
	if ((r = exists(db, Q_ACCOUNT_GET, key)) != 0)
		return r == -1 ? dberr(db, err, errlen) :
		    fail(err, errlen, "account %s exists", key);
	if (check_password(password, err, errlen) == -1)
		return -1;
	if ((hash = hash_password(password)) == NULL)
		return fail(err, errlen, "cannot hash the password: %s",
		    strerror(errno));
	r = account_insert(db, key, hash, err, errlen);
	free(hash);
	if (r == 0)
		r = account_secrets(db, key, password, err, errlen);
	return r;
}

int
db_account_passwd(struct db *db, const char *addr, const char *password,
    char *err, size_t errlen)
{
	char	 key[KEY_MAX], *hash;
	int	 r;

	if (fold(key, sizeof(key), addr) == -1)
		return fail(err, errlen, "no such account %s", addr);
	if (check_password(password, err, errlen) == -1)
		return -1;
	if ((hash = hash_password(password)) == NULL)
		return fail(err, errlen, "cannot hash the password: %s",
		    strerror(errno));
	r = change(db, Q_ACCOUNT_PASSWD, err, errlen, 2, key, hash, NULL);
	free(hash);
	if (r == 1)
		return fail(err, errlen, "no such account %s", key);
	if (r != 0)
		return -1;
	return account_secrets(db, key, password, err, errlen);
}

int
db_account_set(struct db *db, const char *addr, const char *fieldname,
    bool on, char *err, size_t errlen)
{
	char	key[KEY_MAX];
	enum q	q;
	int	r;

	if (strcmp(fieldname, "enabled") == 0)
		q = Q_ACCOUNT_ENABLED;
	else if (strcmp(fieldname, "smtp_auth") == 0)
		q = Q_ACCOUNT_SMTP_AUTH;
	else
		return fail(err, errlen, "no account field %s", fieldname);
	if (fold(key, sizeof(key), addr) == -1)
		return fail(err, errlen, "no such account %s", addr);
	r = change(db, q, err, errlen, 2, key, on ? "1" : "0", NULL);
	if (r == 1)
		return fail(err, errlen, "no such account %s", key);
	return r == 0 ? 0 : -1;
}

int
db_account_del(struct db *db, const char *addr, char *err, size_t errlen)
{
	char	key[KEY_MAX];
	int	r;

	if (fold(key, sizeof(key), addr) == -1)
		return fail(err, errlen, "no such account %s", addr);
	r = change(db, Q_ACCOUNT_DEL, err, errlen, 1, key, NULL, NULL);
	if (r == 1)
		return fail(err, errlen, "no such account %s", key);
	return r == 0 ? 0 : -1;
}

int
db_send_as_add(struct db *db, const char *account, const char *addr,
    char *err, size_t errlen)
{
	char	a[KEY_MAX], o[KEY_MAX];
	int	r;

	if (fold(a, sizeof(a), account) == -1 ||
	    (r = exists(db, Q_ACCOUNT_GET, a)) == 0)
		return fail(err, errlen, "no such account %s", account);
	if (r == -1)
		return dberr(db, err, errlen);
	if (fold(o, sizeof(o), addr) == -1)
		return fail(err, errlen, "%s is not an address", addr);
	if ((r = change(db, Q_SEND_AS_ADD, err, errlen, 2, a, o, NULL)) == 2)
		return fail(err, errlen, "%s may already send as %s", a, o);
	return r == 0 ? 0 : -1;
}

int
db_alias_add(struct db *db, const char *addr, const char *target,
    char *err, size_t errlen)
{
	char	 key[KEY_MAX], t[KEY_MAX], *local, *domain;
	int	 r;

	if (split_addr(addr, key, &local, &domain) == -1)
		return fail(err, errlen, "%s is not an address", addr);
	if (fold(t, sizeof(t), target) == -1 || strchr(t, '@') == NULL)
		return fail(err, errlen, "%s is not an address", target);
	if ((r = domain_local(db, domain)) != 1)
		return r == -1 ? dberr(db, err, errlen) : fail(err, errlen,
		    "domain %s is not local; add it with: postino-admin "
		    "domain add %s", domain, domain);
	if ((r = exists(db, Q_ACCOUNT_GET, key)) != 0)
		return r == -1 ? dberr(db, err, errlen) : fail(err, errlen,
		    "%s is an account; an alias cannot hide it", key);
	if (strcmp(key, t) == 0)
		return fail(err, errlen, "alias %s cannot point to itself", key);
	r = change(db, Q_ALIAS_ADD, err, errlen, 2, key, t, NULL);
	if (r == 2)
		return fail(err, errlen, "alias %s already has target %s", key,
		    t);
	return r == 0 ? 0 : -1;
}

int
db_alias_del(struct db *db, const char *addr, const char *target,
    char *err, size_t errlen)
{
	char	key[KEY_MAX], t[KEY_MAX];
	int	r;

	if (fold(key, sizeof(key), addr) == -1)
		return fail(err, errlen, "no such alias %s", addr);
	if (target == NULL) {
		r = change(db, Q_ALIAS_DEL_ALL, err, errlen, 1, key, NULL,
		    NULL);
		if (r == 1)
			return fail(err, errlen, "no such alias %s", key);
		return r == 0 ? 0 : -1;
	}
	if (fold(t, sizeof(t), target) == -1)
		return fail(err, errlen, "alias %s has no target %s", key,
		    target);
	r = change(db, Q_ALIAS_DEL, err, errlen, 2, key, t, NULL);
	if (r == 1)
		return fail(err, errlen, "alias %s has no target %s", key, t);
	return r == 0 ? 0 : -1;
}

/* Add or delete (add false) an entry of a set. */
static int
set_change(struct db *db, enum db_set set, const char *entry, bool add,
    char *err, size_t errlen)
{
	struct db_cur	 c;
	const char	*p[2];
	char		 e[KEY_MAX];
	enum dbr	 r;

	if ((size_t)set >= sizeof(sets) / sizeof(sets[0]))
		return fail(err, errlen, "no such list");
	if (fold(e, sizeof(e), entry) == -1 || *e == '\0')
		return fail(err, errlen, "%s %s is not valid", sets[set].what,
		    entry);
	p[0] = e;
	p[1] = sets[set].list;
	memset(&c, 0, sizeof(c));
	c.db = db;
	r = db->drv->run(db, -1, add ? sets[set].add : sets[set].del,
	    sets[set].list != NULL ? 2 : 1, p, &c);
	done(&c);
	if (r == DBR_CONSTRAINT)
		return fail(err, errlen, "%s %s exists", sets[set].what, e);
	if (r != DBR_DONE)
		return dberr(db, err, errlen);
	if (!add && c.changes == 0)
		return fail(err, errlen, "no such %s %s", sets[set].what, e);
	return 0;
}

int
db_set_add(struct db *db, enum db_set set, const char *entry, char *err,
    size_t errlen)
{
	return set_change(db, set, entry, true, err, errlen);
}

int
db_set_del(struct db *db, enum db_set set, const char *entry, char *err,
    size_t errlen)
{
	return set_change(db, set, entry, false, err, errlen);
}

int
db_redirect_add(struct db *db, const char *domain, const char *target,
    const char *host, char *err, size_t errlen)
{
	char	d[ADDR_DOMAIN_MAX + 1], h[ADDR_DOMAIN_MAX + 8];
	int	r;

	if (fold(d, sizeof(d), domain) == -1 || fold(h, sizeof(h), host) == -1)
		return fail(err, errlen, "redirect of %s is not valid", domain);
	r = change(db, Q_REDIRECT_ADD, err, errlen, 3, d, target, h);
	if (r == 2)
		return fail(err, errlen, "a redirect for %s exists; delete it "
		    "first", d);
	return r == 0 ? 0 : -1;
}

int
db_redirect_get(struct db *db, const char *domain, char *target,
    size_t tsize, char *host, size_t hsize)
{
	char		 d[ADDR_DOMAIN_MAX + 1];
	struct db_cur	 c;
	enum dbr	 r;

	if (fold(d, sizeof(d), domain) == -1)
		return 0;
	r = run(db, Q_REDIRECT_GET, &c, 1, d);
	if (r == DBR_DONE)
		return 0;
	if (r != DBR_ROW)
		return -1;
	copy_col(&c, 0, target, tsize);
	copy_col(&c, 1, host, hsize);
	done(&c);
	return 1;
}

int
db_redirect_del(struct db *db, const char *domain, char *err, size_t errlen)
{
	char	d[ADDR_DOMAIN_MAX + 1];
	int	r;

	if (fold(d, sizeof(d), domain) == -1)
		return fail(err, errlen, "no redirect for %s", domain);
	r = change(db, Q_REDIRECT_DEL, err, errlen, 1, d, NULL, NULL);
	if (r == 1)
		return fail(err, errlen, "no redirect for %s", d);
	return r == 0 ? 0 : -1;
}

int
db_block_add(struct db *db, const char *ip, unsigned int minutes,
    const char *reason, char *err, size_t errlen)
{
	char	i[64], until[32];

	if (ipmatch_canon(ip, i, sizeof(i)) == -1)
		return fail(err, errlen, "%s is not an IP address", ip);
	now_str(until, sizeof(until), (long long)minutes * 60);
	return change(db, Q_BLOCK_ADD, err, errlen, 3, i, until, reason) ==
	    0 ? 0 : -1;
}

int
db_block_del(struct db *db, const char *ip, char *err, size_t errlen)
{
	char	i[64], now[32];
	int	r;

	if (ipmatch_canon(ip, i, sizeof(i)) == -1)
		return fail(err, errlen, "no block for %s", ip);
	now_str(now, sizeof(now), 0);
	r = change(db, Q_BLOCK_DEL, err, errlen, 2, i, now, NULL);
	if (r == 1)
		return fail(err, errlen, "no block for %s", i);
	return r == 0 ? 0 : -1;
}

/* The live row of ip in q (a block, a grant): 1 with c on it, 0, -1. */
static int
live_row(struct db *db, enum q q, const char *ip, struct db_cur *c)
{
	char		i[64], now[32];
	enum dbr	r;

	if (ipmatch_canon(ip, i, sizeof(i)) == -1)
		return 0;
	now_str(now, sizeof(now), 0);
	r = run(db, q, c, 2, i, now);
	return r == DBR_ROW ? 1 : r == DBR_DONE ? 0 : -1;
}

int
db_block_find(struct db *db, const char *ip, long long *until, char *reason,
    size_t size)
{
	struct db_cur	c;
	int		r;

	if ((r = live_row(db, Q_BLOCK_GET, ip, &c)) == 1) {
		*until = col_int(&c, 0);
		copy_col(&c, 1, reason, size);
		done(&c);
	}
	return r;
}

int
db_popauth_grant(struct db *db, const char *addr, const char *ip,
    unsigned int minutes, char *err, size_t errlen)
{
	char	key[KEY_MAX], i[64], until[32];
	int	r;

	if (fold(key, sizeof(key), addr) == -1 ||
	    (r = exists(db, Q_ACCOUNT_GET, key)) == 0)
		return fail(err, errlen, "no such account %s", addr);
	if (r == -1)
		return dberr(db, err, errlen);
	if (ipmatch_canon(ip, i, sizeof(i)) == -1)
		return fail(err, errlen, "%s is not an IP address", ip);
	now_str(until, sizeof(until), (long long)minutes * 60);
	return change(db, Q_POPAUTH_ADD, err, errlen, 3, i, key, until) ==
	    0 ? 0 : -1;
}

int
db_popauth_find(struct db *db, const char *ip, char *account, size_t size,
    long long *until)
{
	struct db_cur	c;
	int		r;

	if ((r = live_row(db, Q_POPAUTH_GET, ip, &c)) == 1) {
		copy_col(&c, 0, account, size);
		*until = col_int(&c, 1);
		done(&c);
	}
	return r;
}

/* SQLite's count of commits by other connections; 0 for a server. */
long long
db_data_version(struct db *db)
{
	struct db_cur	c;
	long long	v = -1;

	if (db->drv != &sqlite_driver)
		return 0;
	memset(&c, 0, sizeof(c));
	c.db = db;
	if (sqlite_run(db, Q_DATA_VERSION, "PRAGMA data_version", 0, NULL,
	    &c) == DBR_ROW)
		v = col_int(&c, 0);
	done(&c);
	return v;
}

/* "YYYY-MM-DDTHH:MM:SSZ" of a time in seconds since the epoch. */
static void
time_str(const char *secs, char *buf, size_t size)
{
	time_t		t = (time_t)strtoll(secs, NULL, 10);
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%s", secs);
}

/*
 * Call fn once per row of a cursor on its first row (r is its first
 * step); column time_col, unless -1, is shown as a time.
 */
static int
each_row(struct db_cur *c, enum dbr r, int time_col, db_row_fn fn,
    void *arg, char *err, size_t errlen)
{
	const char	*cols[DB_COLS_MAX];
	char		 tbuf[32];
	int		 i, n;

	for (; r == DBR_ROW; r = next(c)) {
		n = c->ncols < DB_COLS_MAX ? c->ncols : DB_COLS_MAX;
		for (i = 0; i < n; i++)
			if ((cols[i] = col(c, i)) == NULL)
				cols[i] = "";
		if (time_col >= 0 && time_col < n) {
			time_str(cols[time_col], tbuf, sizeof(tbuf));
			cols[time_col] = tbuf;
		}
		fn(arg, n, cols);
	}
	done(c);	/* a first step that was not a row left it open */
	return r == DBR_DONE ? 0 : dberr(c->db, err, errlen);
}

int
db_view(struct db *db, enum db_view v, db_row_fn fn, void *arg, char *err,
    size_t errlen)
{
	struct db_cur	 c;
	const char	*p[1];
	char		 now[32];

	if ((size_t)v >= sizeof(views) / sizeof(views[0]))
		return fail(err, errlen, "no such listing");
	now_str(now, sizeof(now), 0);
	p[0] = now;
	memset(&c, 0, sizeof(c));
	c.db = db;
	return each_row(&c, db->drv->run(db, -1, views[v].sql,
	    strstr(views[v].sql, "?1") != NULL ? 1 : 0, p, &c),
	    views[v].time_col, fn, arg, err, errlen);
}

int
db_block_expire(struct db *db, db_row_fn fn, void *arg, char *err,
    size_t errlen)
{
	struct db_cur	 c;
	const char	*p[1];
	char		 now[32];
	long long	 n = 0;
	enum dbr	 r;

	now_str(now, sizeof(now), 0);
	p[0] = now;
	r = run_v(db, Q_BLOCK_EXPIRE, &c, 1, p);
	for (; r == DBR_ROW; r = next(&c), n++)
		fn(arg, 3, (const char *const[]){ col(&c, 0), col(&c, 1),
		    col(&c, 2) });
	if (r != DBR_DONE)
		return dberr(db, err, errlen);
	if (n > 0 && db->forward != NULL)
		db->forward(db->forward_arg, Q_BLOCK_EXPIRE, 1, p);
	return 0;
}

/* Equal strings, in time that depends on the length of b only. */
static bool
equal_ct(const char *a, const char *b)
{
	size_t		 la = strlen(a), lb = strlen(b), i;
	unsigned char	 d = la != lb;

	for (i = 0; i < lb; i++)
		d |= (unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)b[i];
	return d == 0;
}

/* Hash the password as the stored hash says and compare. */
static bool
password_ok(const char *password, const char *stored)
{
	struct crypt_data	*cd;
	const char		*res;
	bool			 ok = false;

	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return false;
	res = crypt_rn(password, stored, cd, sizeof(*cd));
	if (res != NULL && res[0] != '*')
		ok = equal_ct(res, stored);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

int
db_sender_owned(struct db *db, const char *account, const char *sender)
{
	char		 a[KEY_MAX], snd[KEY_MAX];
	struct db_cur	 c;
	enum dbr	 r;

	if (fold(a, sizeof(a), account) == -1 ||
	    fold(snd, sizeof(snd), sender) == -1)
		return 0;
	if (strcmp(a, snd) == 0)
		return 1;
	if ((r = run(db, Q_SENDER_OWNED, &c, 2, snd, a)) == DBR_ROW) {
		done(&c);
		return 1;
	}
	return r == DBR_DONE ? 0 : -1;
}

void
db_set_scram_iterations(struct db *db, unsigned int n)
{
	db->scram_iterations = n < DB_SCRAM_ITERATIONS ? DB_SCRAM_ITERATIONS :
	    n;
}

bool
db_password_ok(const char *password, const char *stored)
{
	return password_ok(password, stored);
}


enum db_auth
db_account_cred(struct db *db, const char *addr, bool smtp,
    struct db_cred *cr)
{
	static char	*dummy;
	struct db_cur	 c;
	char		 key[KEY_MAX];
	enum dbr	 r;

	memset(cr, 0, sizeof(*cr));
	if (dummy == NULL && (dummy = hash_password("dummy")) == NULL)
		return DB_AUTH_TEMPFAIL;
	snprintf(cr->hash, sizeof(cr->hash), "%s", dummy);
	if (fold(key, sizeof(key), addr) == -1)
		key[0] = '\0';
	r = run(db, Q_ACCOUNT_CRED, &c, 1, key);
	if (r == DBR_ROW) {
		copy_col(&c, 0, cr->hash, sizeof(cr->hash));
		cr->usable = col_int(&c, 1) != 0 &&
		    (!smtp || col_int(&c, 2) != 0);
		copy_col(&c, 3, cr->scram_sha256, sizeof(cr->scram_sha256));
		copy_col(&c, 4, cr->scram_sha1, sizeof(cr->scram_sha1));
		copy_col(&c, 5, cr->cram_md5, sizeof(cr->cram_md5));
		snprintf(cr->address, sizeof(cr->address), "%s", key);
		if (cr->hash[0] == '\0')
			snprintf(cr->hash, sizeof(cr->hash), "%s", dummy);
		done(&c);
	}
	if (r != DBR_ROW && r != DBR_DONE)
		return DB_AUTH_TEMPFAIL;
	return cr->usable ? DB_AUTH_OK : DB_AUTH_FAIL;
}

enum db_auth
db_account_auth(struct db *db, const char *addr, const char *password,
    bool smtp)
{
	/* Hashed even for an unknown account, so timing tells nothing. */
	static char		*dummy;
	const char		*stored;
	struct db_cur		 c;
	char			 key[KEY_MAX], *hash = NULL;
	bool			 usable = false;
	enum dbr		 r;

	if (fold(key, sizeof(key), addr) == -1)
		key[0] = '\0';
	r = run(db, Q_ACCOUNT_GET, &c, 1, key);
	if (r == DBR_ROW) {
		hash = col(&c, 0) != NULL ? strdup(col(&c, 0)) : NULL;
		usable = col_int(&c, 1) != 0 &&
		    (!smtp || col_int(&c, 2) != 0);
		done(&c);
	}
	if (r != DBR_ROW && r != DBR_DONE)
		return DB_AUTH_TEMPFAIL;
	if (dummy == NULL && (dummy = hash_password("dummy")) == NULL) {
		free(hash);
		return DB_AUTH_TEMPFAIL;
	}
	stored = hash != NULL ? hash : dummy;
	if (!password_ok(password, stored) || hash == NULL)
		usable = false;
	free(hash);
	return usable ? DB_AUTH_OK : DB_AUTH_FAIL;
}

/* --- copies between stores (the mirror, postino-admin store migrate) --- */

const char *
db_table_name(unsigned int i)
{
	return i < DB_TABLES ? tables[i].name : NULL;
}

int
db_table_index(const char *name)
{
	int	i;

	for (i = 0; i < DB_TABLES; i++)
		if (strcmp(tables[i].name, name) == 0)
			return i;
	return -1;
}

/* Every row of table i of from, inserted into to. */
static int
copy_rows(struct db *from, struct db *to, int i, char *err, size_t errlen)
{
	struct db_cur	 c, ins;
	const char	*p[DB_COLS_MAX];
	char		 sql[512];
	size_t		 len;
	enum dbr	 r, w;
	int		 k;

	snprintf(sql, sizeof(sql), "SELECT %s FROM %s", tables[i].cols,
	    tables[i].name);
	memset(&c, 0, sizeof(c));
	c.db = from;
	r = from->drv->run(from, -1, sql, 0, NULL, &c);
	len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s (%s) VALUES (",
	    tables[i].name, tables[i].cols);
	for (k = 1; k <= tables[i].ncols; k++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s?%d",
		    k > 1 ? ", " : "", k);
	snprintf(sql + len, sizeof(sql) - len, ")");
	for (; r == DBR_ROW; r = next(&c)) {
		for (k = 0; k < tables[i].ncols; k++)
			p[k] = col(&c, k);
		memset(&ins, 0, sizeof(ins));
		ins.db = to;
		w = to->drv->run(to, Q_COPY + i, sql, tables[i].ncols, p, &ins);
		to->drv->done(&ins);
		if (w != DBR_DONE) {
			done(&c);
			return dberr(to, err, errlen);
		}
	}
	done(&c);
	return r == DBR_DONE ? 0 : dberr(from, err, errlen);
}

static int
copy_tables(struct db *from, struct db *to, unsigned int mask, char *err,
    size_t errlen)
{
	char	sql[64];
	int	i;

	for (i = DB_TABLES - 1; i >= 0; i--) {
		if (!(mask & (1u << i)))
			continue;
		snprintf(sql, sizeof(sql), "DELETE FROM %s", tables[i].name);
		if (exec(to, sql) == -1)
			return dberr(to, err, errlen);
	}
	for (i = 0; i < DB_TABLES; i++)
		if ((mask & (1u << i)) && copy_rows(from, to, i, err,
		    errlen) == -1)
			return -1;
	return 0;
}

/*
 * A part of the tables may be copied (a mirror refreshes the table a
 * notification names), so references are not checked in a SQLite
 * target: accounts refreshed alone would otherwise take send_as with
 * them (ON DELETE CASCADE).  The source checked them.
 */
int
db_copy(struct db *from, struct db *to, unsigned int mask, char *err,
    size_t errlen)
{
	bool	lite = to->drv == &sqlite_driver;
	int	r;

	if (lite && exec(to, "PRAGMA foreign_keys = OFF") == -1)
		return dberr(to, err, errlen);
	if (begin(to) == -1)
		r = dberr(to, err, errlen);
	else if ((r = copy_tables(from, to, mask, err, errlen)) == -1)
		exec(to, "ROLLBACK");
	else if (exec(to, "COMMIT") == -1)
		r = dberr(to, err, errlen);
	if (lite)
		exec(to, "PRAGMA foreign_keys = ON");
	return r;
}

long long
db_rows(struct db *db, char *err, size_t errlen)
{
	struct db_cur	c;
	char		sql[64];
	long long	n = 0;
	int		i;

	for (i = 0; i < DB_TABLES; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s",
		    tables[i].name);
		memset(&c, 0, sizeof(c));
		c.db = db;
		if (db->drv->run(db, -1, sql, 0, NULL, &c) != DBR_ROW) {
			done(&c);
			return dberr(db, err, errlen);
		}
		n += col_int(&c, 0);
		done(&c);
	}
	return n;
}

void
db_set_forward(struct db *db, db_forward_fn fn, void *arg)
{
	db->forward = fn;
	db->forward_arg = arg;
}

int
db_replay(struct db *db, int q, int n, const char *const *p, char *err,
    size_t errlen)
{
	struct db_cur	c;
	enum dbr	r;

	if (q < 0 || q >= Q_MAX || n > DB_PARAMS_MAX)
		return fail(err, errlen, "no statement %d", q);
	for (r = run_v(db, (enum q)q, &c, n, p); r == DBR_ROW; r = next(&c))
		;
	return r == DBR_DONE ? 0 : dberr(db, err, errlen);
}

/*
 * db.h - the account store (R7.2): domains, accounts, aliases and the
 * administrator's lists, in SQLite (<data_dir>/postino.db) or in
 * PostgreSQL ([store] driver = postgres), the same schema and queries
 * behind this one interface (db.c, db_pg.c).
 *
 * Used by the store role (lookups, from its event loop thread only,
 * always on a SQLite file: with PostgreSQL a local mirror, shared.h) and
 * by postino-admin (changes, on either).  The schema is created or
 * upgraded when opened.  All addresses and domains are kept in lower
 * case (ASCII folding); callers pass them canonical or not, db folds
 * them.
 */
#ifndef STORE_DB_H
#define STORE_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

struct db;

/*
 * Open (creating if needed) the database at path, with WAL journalling
 * and a busy timeout so the daemon and postino-admin can share it.
 * Returns 0, or -1 with a message in err naming the file.
 */
int	db_open(const char *path, struct db **db_r, char *err, size_t errlen);

/*
 * Connect to PostgreSQL (a libpq connection string), creating the
 * schema and its change notifications (NOTIFY postino, the table's
 * name as payload) in an empty database.  Returns 0, or -1 with a
 * message in err naming the server, never the password.
 */
int	db_open_pg(const char *dsn, struct db **db_r, char *err,
	    size_t errlen);
void	db_close(struct db **db);

/*
 * The tables, in an order where each comes after those it refers to;
 * a set of tables is a mask of 1 << index.
 */
#define DB_TABLES	10
#define DB_TABLES_ALL	((1u << DB_TABLES) - 1)
const char	*db_table_name(unsigned int index);
int		 db_table_index(const char *name);	/* -1: none */

/*
 * Make the tables of the mask in to hold what they hold in from, in one
 * transaction of to.  Returns 0, or -1 with err.
 */
int	db_copy(struct db *from, struct db *to, unsigned int tables,
	    char *err, size_t errlen);

/* The rows of every table together; -1 with err on error. */
long long	db_rows(struct db *, char *err, size_t errlen);

/*
 * The store role's own changes (POP-before-SMTP grants, blocks and
 * their end), once made in db, are handed to fn as the statement and
 * its parameters, for db_replay on another store (shared.c: the
 * PostgreSQL every server shares).  fn runs on the caller's thread and
 * must copy what it keeps.
 */
typedef void	(*db_forward_fn)(void *arg, int q, int n,
		    const char *const *params);
void	db_set_forward(struct db *, db_forward_fn fn, void *arg);
int	db_replay(struct db *, int q, int n, const char *const *params,
	    char *err, size_t errlen);

/* One resolved delivery target of a recipient. */
#define DB_TARGETS_MAX	64
struct db_target {
	bool	local;			/* a mailbox of a local account */
	char	domain[ADDR_DOMAIN_MAX + 1];	/* lower case */
	char	local_part[ADDR_LOCAL_MAX + 1];	/* lower case */
};
struct db_targets {
	size_t		n;
	struct db_target t[DB_TARGETS_MAX];
};

enum db_rcpt {
	DB_RCPT_OK,		/* targets filled */
	DB_RCPT_NOT_LOCAL,	/* the domain is not one of ours */
	DB_RCPT_UNKNOWN,	/* local domain, no such account/alias */
	DB_RCPT_TEMPFAIL	/* store error: try again later */
};

/*
 * Resolve a recipient of a local domain: an enabled or disabled account
 * (mail is still accepted for a disabled account: it only may not log
 * in), else an alias (its targets, expanded recursively up to 8 levels,
 * duplicates removed; a target outside the local domains is kept with
 * local=false), else the domain's catch-all alias "@domain".
 */
enum db_rcpt	db_rcpt_resolve(struct db *db, const char *local_part,
		    const char *domain, struct db_targets *t);

bool	db_domain_is_local(struct db *db, const char *domain);

/* 1 when domain is one of ours, 0 when not, -1 on a store error. */
int	db_domain_local(struct db *db, const char *domain);

/*
 * The live POP-before-SMTP grant of a client address (R3.4): 1 with its
 * account and its end (seconds since the epoch), 0 when there is none
 * (or it has run out), -1 on a store error.
 */
int	db_popauth_find(struct db *, const char *ip, char *account,
	    size_t size, long long *until);

/*
 * A number that changes when another connection (postino-admin, the
 * mirror's refresh) has committed a change: SQLite's PRAGMA
 * data_version; always 0 on PostgreSQL.  -1 on a store error.
 */
long long	db_data_version(struct db *);

/*
 * Around a batch of lookups made together (one request from net): with
 * SQLite, one read transaction, opened by the first lookup, so the file
 * is locked and checked once for all rather than once for each
 * statement.  A change made meanwhile (a block, a grant) ends it first.
 * Nothing for a server, or inside a transaction.  Hold it only for
 * synchronous work.
 */
void	db_read_begin(struct db *);
void	db_read_end(struct db *);

/* Administration (postino-admin).  Each returns 0, or -1 with a
 * one-line reason in err ("no such domain example.org", ...). */
int	db_domain_add(struct db *, const char *domain, char *err, size_t);
int	db_domain_del(struct db *, const char *domain, char *err, size_t);
int	db_account_add(struct db *, const char *addr, const char *password,
	    char *err, size_t);
int	db_account_passwd(struct db *, const char *addr, const char *password,
	    char *err, size_t);
int	db_account_set(struct db *, const char *addr, const char *field,
	    bool on, char *err, size_t);	/* field: "enabled", "smtp_auth" */

int	db_account_del(struct db *, const char *addr, char *err, size_t);

/* Let an account send as another address (R3.2: shared mailboxes). */
int	db_send_as_add(struct db *, const char *account, const char *addr,
	    char *err, size_t);

/* addr is "local@domain" or "@domain" (the catch-all); target is an
 * address.  db_alias_del with target NULL removes every target. */
int	db_alias_add(struct db *, const char *addr, const char *target,
	    char *err, size_t);
int	db_alias_del(struct db *, const char *addr, const char *target,
	    char *err, size_t);

/* The administrator's lists of entries (R3.3, R3.5, R3.9); entries are
 * checked by the caller (postino-admin) and stored folded. */
enum db_set {
	DB_SET_TRUSTED,			/* IP, CIDR, range or host name */
	DB_SET_BYPASS_LOCAL_SENDER,	/* bypass of R3.1 */
	DB_SET_BYPASS_AUTH_MISMATCH,	/* bypass of R3.2 */
	DB_SET_DEVICES			/* clients of the devices listener */
};
int	db_set_add(struct db *, enum db_set, const char *entry, char *err,
	    size_t);
int	db_set_del(struct db *, enum db_set, const char *entry, char *err,
	    size_t);

/* Redirection rule of a recipient domain (R5.5): one per domain. */
int	db_redirect_add(struct db *, const char *domain, const char *target,
	    const char *host, char *err, size_t);
int	db_redirect_del(struct db *, const char *domain, char *err, size_t);
/* The rule of domain: 1 with target and host, 0 when none, -1 on error. */
int	db_redirect_get(struct db *, const char *domain, char *target,
	    size_t tsize, char *host, size_t hsize);

/* Intrusion prevention blocks (R4.4), kept across restarts. */
int	db_block_add(struct db *, const char *ip, unsigned int minutes,
	    const char *reason, char *err, size_t);
int	db_block_del(struct db *, const char *ip, char *err, size_t);
/* The live block of ip: 1 with its end (unix time) and reason, 0 when
 * none, -1 on a store error. */
int	db_block_find(struct db *, const char *ip, long long *until,
	    char *reason, size_t size);

/* A POP-before-SMTP grant of ip as the account addr (R3.4). */
int	db_popauth_grant(struct db *, const char *addr, const char *ip,
	    unsigned int minutes, char *err, size_t);

/*
 * Call fn once per row of a listing, in a stable order; cols are valid
 * during the call only.  Blocks and grants are listed while live, with
 * their end as "YYYY-MM-DDTHH:MM:SSZ".  Returns 0, or -1 with err.
 */
enum db_view {
	DB_VIEW_DOMAINS,	/* name */
	DB_VIEW_ACCOUNTS,	/* address, enabled|disabled, smtp-auth=on|off */
	DB_VIEW_ALIASES,	/* address, target */
	DB_VIEW_SEND_AS,	/* account, address */
	DB_VIEW_TRUSTED,	/* entry */
	DB_VIEW_BYPASS_LOCAL_SENDER,	/* entry */
	DB_VIEW_BYPASS_AUTH_MISMATCH,	/* entry */
	DB_VIEW_DEVICES,	/* ip */
	DB_VIEW_REDIRECTS,	/* domain, target, host */
	DB_VIEW_BLOCKS,		/* ip, until, reason */
	DB_VIEW_POPAUTH		/* ip, account, until */
};
typedef void	(*db_row_fn)(void *arg, int ncols, const char *const *cols);
int	db_view(struct db *, enum db_view, db_row_fn fn, void *arg,
	    char *err, size_t);

/*
 * Remove the blocks whose time is up or that db_block_del lifted (their
 * end is then 0), calling fn for each with ip, until, reason.  0, or -1
 * with err.
 */
int	db_block_expire(struct db *, db_row_fn fn, void *arg, char *err,
	    size_t);

/*
 * Check a password (R2.3, R2.4) against the stored crypt(3) hash
 * (yescrypt, sha512-crypt, bcrypt), in constant time.  DB_AUTH_FAIL also
 * for an unknown or disabled account and, with smtp, for an account
 * whose SMTP-AUTH service is off: the caller never learns which.
 */
enum db_auth { DB_AUTH_OK, DB_AUTH_FAIL, DB_AUTH_TEMPFAIL };
enum db_auth	db_account_auth(struct db *, const char *addr,
		    const char *password, bool smtp);

#define DB_SCRAM_ITERATIONS	4096	/* RFC 7677 4: at least 4096 */
#define DB_SECRET_MAX		256

/*
 * An account's credentials, fetched on the loop thread so that the slow
 * part (hashing) can run on a worker with db_password_ok() and the SASL
 * store half, which touch no database.  For an unknown account, hash is
 * a valid dummy hash and the secrets are empty, so the work done is the
 * same.  usable: enabled and (with smtp) its SMTP-AUTH switch on.
 * Returns DB_AUTH_OK when usable, DB_AUTH_FAIL, or DB_AUTH_TEMPFAIL.
 */
struct db_cred {
	bool	usable;
	char	address[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];	/* canonical */
	char	hash[DB_SECRET_MAX];
	char	scram_sha256[DB_SECRET_MAX];
	char	scram_sha1[DB_SECRET_MAX];
	char	cram_md5[DB_SECRET_MAX];
};
enum db_auth	db_account_cred(struct db *, const char *addr, bool smtp,
		    struct db_cred *);

/*
 * R3.2: may account send as sender?  Its own address, an alias whose
 * target it is, or an address granted with "account send-as".
 * Returns 1 or 0, -1 on a store error.
 */
int	db_sender_owned(struct db *, const char *account, const char *sender);

/* Iterations of the SCRAM keys made by add/passwd (at least 4096). */
void	db_set_scram_iterations(struct db *, unsigned int);

/* crypt(3) check in constant time; thread-safe (no database). */
bool	db_password_ok(const char *password, const char *stored);

#endif

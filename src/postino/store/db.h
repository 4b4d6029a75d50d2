/*
 * db.h - the account store (R7.2): domains, accounts, aliases and the
 * administrator's lists, in SQLite (<data_dir>/postino.db).
 *
 * Used by the store role (lookups, from its event loop thread only) and
 * by postino-admin (changes).  The schema is created or upgraded by
 * db_open.  All addresses and domains are kept in lower case (ASCII
 * folding); callers pass them canonical or not, db folds them.
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
void	db_close(struct db **db);

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

#endif

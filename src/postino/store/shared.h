/*
 * shared.h - the account store as the store role's loop thread sees it
 * (R7.2): the SQLite file of the data directory, or, with [store]
 * driver = postgres, a local SQLite mirror of the PostgreSQL that
 * several servers share, kept up to date from it (shared.c).
 */
#ifndef STORE_SHARED_H
#define STORE_SHARED_H

#include <stddef.h>

struct conf;
struct db;
struct event_base;
struct pool;

/* The mirror of a shared store, in the data directory. */
#define SHARED_MIRROR	"postgres-mirror.db"

/*
 * Open the store the loop thread reads, in the data directory (the
 * working directory).  With PostgreSQL the mirror is loaded from it
 * now, before anything is served.  Returns 0, or -1 with err.
 */
int	shared_open(const struct conf *, struct db **db_r, char *err,
	    size_t errlen);

/* Hear of the other servers' changes and pass ours on, once the loop
 * and the worker pool exist.  Nothing with SQLite alone. */
void	shared_start(struct event_base *, struct pool *);

#endif

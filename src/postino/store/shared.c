/*
 * shared.c - the account store shared by several servers (R7.2,
 * [store] driver = postgres).
 *
 * PostgreSQL holds the truth; the store role's loop thread reads a
 * local SQLite mirror of it (SHARED_MIRROR in the data directory),
 * synchronously, as it reads postino.db without PostgreSQL.  Why a
 * mirror rather than every lookup made asynchronous: the policy
 * engine, recipient resolution, POP-before-SMTP and block checks read
 * the store in a dozen places inside synchronous decisions (policy.c,
 * store.c, scheduler.c, auth.c); turning each into request, worker and
 * callback would rewrite them all, and each SMTP command would wait a
 * network round trip.  The mirror keeps them as they are and still
 * answers while PostgreSQL is away (with what it last heard).
 *
 *  - At start the mirror is loaded from PostgreSQL (before anything
 *    is served) and a second connection LISTENs on channel "postino",
 *    which a trigger on every table notifies with the table's name at
 *    every change (db_pg.c).  That connection is non-blocking and
 *    watched by the event loop.
 *  - A notification marks its table; a worker then copies the marked
 *    tables from PostgreSQL into the mirror, one transaction each time
 *    (db_copy).  The lag after a commit anywhere is the notification's
 *    trip plus one such copy: a few milliseconds on a LAN for tables of
 *    thousands of rows (docs/store.md).
 *  - The role's own changes (POP-before-SMTP grants, blocks and their
 *    end) are made in the mirror at once, so this server acts on them
 *    without delay, and replayed on PostgreSQL by a worker (db.h's
 *    forward), whence the other servers hear of them.
 *  - One worker job at a time, in order: the replays, then the copies.
 *    The loop thread never waits for PostgreSQL.  A replay that fails
 *    for want of the server is kept and tried again every few seconds,
 *    as is the listening connection, after which every table is copied
 *    again (notifications are not kept for the absent).
 *
 * With driver = sqlite, shared_open opens postino.db and nothing else
 * here runs.
 */
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "db_int.h"
#include "log.h"
#include "pool.h"
#include "shared.h"
#include "xalloc.h"

#define RETRY_SECONDS	2
#define CHANNEL		"postino"

/* A change of ours to replay on PostgreSQL. */
struct op {
	struct op	*next;
	int		 q, n;
	char		*p[DB_PARAMS_MAX];
};

static struct {
	char			 dsn[1024];
	struct event_base	*base;
	struct pool		*pool;
	PGconn			*listen;	/* the loop's */
	struct event		*ev, *retry;
	unsigned int		 dirty;		/* tables to copy */
	struct op		*ops, **tail;	/* to replay, in order */
	bool			 busy;		/* a job is out */
	bool			 relisten;	/* listen is lost */

	/* the job's: touched by the worker while busy only */
	struct db		*pg;
	struct db		*mirror;	/* the worker's connection */
	unsigned int		 job_tables;
	struct op		*job_ops;	/* replays not yet done */
	PGconn			*job_listen;	/* made again */
	bool			 job_relisten;
	char			 job_err[1024];
	char			 job_dropped[512]; /* replay refused */
} sh;

static void	kick(void);

static void
op_free(struct op *o)
{
	int	i;

	for (i = 0; i < o->n; i++)
		free(o->p[i]);
	free(o);
}

/* db's forward function: called on the loop thread by the mirror. */
static void
forward(void *arg, int q, int n, const char *const *p)
{
	struct op	*o;
	int		 i;

	o = xcalloc(1, sizeof(*o));
	o->q = q;
	o->n = n < DB_PARAMS_MAX ? n : DB_PARAMS_MAX;
	for (i = 0; i < o->n; i++)
		o->p[i] = p[i] != NULL ? xstrdup(p[i]) : NULL;
	*sh.tail = o;
	sh.tail = &o->next;
	kick();
}

/* A connection that LISTENs; NULL with err. */
static PGconn *
listen_connect(char *err, size_t errlen)
{
	PGconn		*c;
	PGresult	*r;

	c = PQconnectdb(sh.dsn);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "%s", c != NULL ? PQerrorMessage(c) :
		    "out of memory");
		db_pg_line(err);
		PQfinish(c);
		return NULL;
	}
	r = PQexec(c, "LISTEN " CHANNEL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "LISTEN: %s", PQerrorMessage(c));
		db_pg_line(err);
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

/* --- the worker's half ------------------------------------------------ */

static void
job_work(void *arg)
{
	struct op	*o;
	char		 err[512];

	sh.job_err[0] = sh.job_dropped[0] = '\0';
	if (sh.job_relisten) {
		sh.job_listen = listen_connect(err, sizeof(err));
		if (sh.job_listen == NULL) {
			snprintf(sh.job_err, sizeof(sh.job_err), "listen: %s",
			    err);
			return;
		}
		/* we may have missed any */
		sh.job_tables = DB_TABLES_ALL;
	}
	while ((o = sh.job_ops) != NULL) {
		if (db_replay(sh.pg, o->q, o->n, (const char *const *)o->p,
		    err, sizeof(err)) == -1) {
			if (PQstatus(sh.pg->h) != CONNECTION_OK) {
				snprintf(sh.job_err, sizeof(sh.job_err),
				    "replay: %s", err);
				return;	/* kept, in order, for later */
			}
			/* refused by a server that answers: trying again
			 * would not help, and would hold back every change
			 * after it */
			if (sh.job_dropped[0] == '\0')
				snprintf(sh.job_dropped,
				    sizeof(sh.job_dropped), "%s", err);
		}
		sh.job_ops = o->next;
		op_free(o);
	}
	if (sh.job_tables != 0 && db_copy(sh.pg, sh.mirror, sh.job_tables,
	    err, sizeof(err)) == -1) {
		snprintf(sh.job_err, sizeof(sh.job_err), "copy: %s", err);
		return;
	}
	sh.job_tables = 0;
}

/* --- the loop's half -------------------------------------------------- */

static void	on_notify(evutil_socket_t, short, void *);

static void
listen_watch(void)
{
	PQsetnonblocking(sh.listen, 1);
	sh.ev = event_new(sh.base, PQsocket(sh.listen), EV_READ | EV_PERSIST,
	    on_notify, NULL);
	event_add(sh.ev, NULL);
}

static void
listen_lost(void)
{
	char	e[256];

	snprintf(e, sizeof(e), "%s", PQerrorMessage(sh.listen));
	db_pg_line(e);
	log_warn("store event=shared-lost error=\"%s\" retry=%ds", e,
	    RETRY_SECONDS);
	event_free(sh.ev);
	sh.ev = NULL;
	PQfinish(sh.listen);
	sh.listen = NULL;
	sh.relisten = true;
}

static void
job_done(void *arg)
{
	struct timeval	tv = { RETRY_SECONDS, 0 };
	bool		failed = sh.job_err[0] != '\0';

	sh.busy = false;
	if (sh.job_dropped[0] != '\0')
		log_warn("store event=shared-refused error=\"%s\"",
		    sh.job_dropped);
	if (sh.job_listen != NULL) {
		sh.listen = sh.job_listen;
		sh.job_listen = NULL;
		sh.relisten = false;
		listen_watch();
		log_info("store event=shared-back");
	}
	/* what is left goes first next time */
	if (sh.job_ops != NULL) {
		struct op *o = sh.job_ops;

		while (o->next != NULL)
			o = o->next;
		if ((o->next = sh.ops) == NULL)
			sh.tail = &o->next;
		sh.ops = sh.job_ops;
		sh.job_ops = NULL;
	}
	sh.dirty |= sh.job_tables;
	sh.job_tables = 0;
	if (failed) {
		log_warn("store event=shared-failed error=\"%s\" retry=%ds",
		    sh.job_err, RETRY_SECONDS);
		evtimer_add(sh.retry, &tv);
		return;
	}
	kick();
}

/* Send the next job, unless one is out or a retry is due. */
static void
kick(void)
{
	if (sh.busy || sh.pool == NULL || evtimer_pending(sh.retry, NULL) ||
	    (sh.dirty == 0 && sh.ops == NULL && !sh.relisten))
		return;
	sh.busy = true;
	sh.job_tables = sh.dirty;
	sh.dirty = 0;
	sh.job_ops = sh.ops;
	sh.ops = NULL;
	sh.tail = &sh.ops;
	sh.job_relisten = sh.relisten;
	pool_run(sh.pool, job_work, job_done, NULL);
}

static void
on_retry(evutil_socket_t fd, short ev, void *arg)
{
	kick();
}

static void
on_notify(evutil_socket_t fd, short ev, void *arg)
{
	PGnotify	*n;
	int		 t;

	if (PQconsumeInput(sh.listen) == 0) {
		listen_lost();
		kick();
		return;
	}
	while ((n = PQnotifies(sh.listen)) != NULL) {
		t = db_table_index(n->extra);
		sh.dirty |= t >= 0 ? 1u << t : DB_TABLES_ALL;
		PQfreemem(n);
	}
	kick();
}

int
shared_open(const struct conf *conf, struct db **db_r, char *err,
    size_t errlen)
{
	char	e[512];

	sh.tail = &sh.ops;
	if (conf->store.driver != STORE_POSTGRES)
		return db_open("postino.db", db_r, err, errlen);
	snprintf(sh.dsn, sizeof(sh.dsn), "%s", conf->store.dsn);
	if (db_open(SHARED_MIRROR, db_r, err, errlen) == -1 ||
	    db_open(SHARED_MIRROR, &sh.mirror, err, errlen) == -1 ||
	    db_open_pg(sh.dsn, &sh.pg, err, errlen) == -1)
		return -1;
	/* listening first: no change falls between the load and it */
	if ((sh.listen = listen_connect(e, sizeof(e))) == NULL) {
		snprintf(err, errlen, "%s: listen: %s", sh.pg->path, e);
		return -1;
	}
	if (db_copy(sh.pg, sh.mirror, DB_TABLES_ALL, err, errlen) == -1)
		return -1;
	db_set_forward(*db_r, forward, NULL);
	log_info("store event=shared-loaded store=\"%s\" mirror=%s",
	    sh.pg->path, SHARED_MIRROR);
	return 0;
}

void
shared_start(struct event_base *base, struct pool *pool)
{
	if (sh.listen == NULL)
		return;
	sh.base = base;
	sh.pool = pool;
	sh.retry = evtimer_new(base, on_retry, NULL);
	listen_watch();
	/* what came while the mirror was loaded */
	on_notify(-1, 0, NULL);
}

/*
 * db_pg.c - the PostgreSQL driver of the account store (R7.2,
 * [store] driver = postgres): db.c's queries, run through libpq.
 *
 * Synchronous: postino-admin (a command) uses it directly, and the
 * store role only from its worker threads (shared.c), never from its
 * event loop.  The queries are db.c's, written in the SQL both engines
 * accept; only the parameters are renamed ?N -> $N here.  Every value
 * goes as text and PostgreSQL infers its type from the column it meets.
 * The schema is db.c's too, plus a trigger on each table that sends
 * NOTIFY postino with the table's name at every change, which is how
 * the servers sharing the database learn of it (shared.c).
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

/* Taken while the schema is looked for and made: servers start at once. */
#define SCHEMA_LOCK	"7305731"	/* "pstn" */

static char *
pg_sql(const char *sql)
{
	char	*t, *o;
	bool	 quoted = false;

	/* "?12" becomes "$12": never longer */
	if ((t = malloc(strlen(sql) + 1)) == NULL)
		return NULL;
	for (o = t; *sql != '\0'; sql++) {
		if (*sql == '\'')
			quoted = !quoted;
		*o++ = *sql == '?' && !quoted ? '$' : *sql;
	}
	*o = '\0';
	return t;
}

/* A connection lost (a restarted server) is made again once. */
static PGconn *
conn(struct db *db)
{
	if (PQstatus(db->h) == CONNECTION_BAD)
		PQreset(db->h);
	return db->h;
}

static enum dbr
pg_result(struct db *db, PGresult *res, struct db_cur *c)
{
	const char	*state;
	const char	*n;

	c->stmt = res;
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		n = PQcmdTuples(res);
		c->changes = n != NULL ? strtoll(n, NULL, 10) : 0;
		c->nrows = PQntuples(res);
		c->ncols = PQnfields(res);
		c->row = 0;
		return c->nrows > 0 ? DBR_ROW : DBR_DONE;
	default:
		snprintf(db->errbuf, sizeof(db->errbuf), "%s",
		    PQresultErrorMessage(res));
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		/* class 23: integrity constraint violation */
		return state != NULL && strncmp(state, "23", 2) == 0 ?
		    DBR_CONSTRAINT : DBR_ERROR;
	}
}

static enum dbr
pg_run(struct db *db, int q, const char *sql, int n, const char *const *p,
    struct db_cur *c)
{
	char	*t;

	if ((t = pg_sql(sql)) == NULL) {
		snprintf(db->errbuf, sizeof(db->errbuf), "out of memory");
		return DBR_ERROR;
	}
	c->finalize = true;
	c->stmt = PQexecParams(conn(db), t, n, NULL, p, NULL, NULL, 0);
	free(t);
	if (c->stmt == NULL) {
		snprintf(db->errbuf, sizeof(db->errbuf), "%s",
		    PQerrorMessage(db->h));
		return DBR_ERROR;
	}
	return pg_result(db, c->stmt, c);
}

static enum dbr
pg_next(struct db_cur *c)
{
	return ++c->row < c->nrows ? DBR_ROW : DBR_DONE;
}

static const char *
pg_text(struct db_cur *c, int col)
{
	if (c->row >= c->nrows || col >= c->ncols ||
	    PQgetisnull(c->stmt, c->row, col))
		return NULL;
	return PQgetvalue(c->stmt, c->row, col);
}

static void
pg_done(struct db_cur *c)
{
	PQclear(c->stmt);
	c->stmt = NULL;
}

static int
pg_exec(struct db *db, const char *sql)
{
	struct db_cur	c;
	enum dbr	r;

	memset(&c, 0, sizeof(c));
	c.db = db;
	if ((c.stmt = PQexec(conn(db), sql)) == NULL) {
		snprintf(db->errbuf, sizeof(db->errbuf), "%s",
		    PQerrorMessage(db->h));
		return -1;
	}
	r = pg_result(db, c.stmt, &c);
	pg_done(&c);
	return r == DBR_ROW || r == DBR_DONE ? 0 : -1;
}

/*
 * libpq's messages may span lines ("...\n\tIs the server running...")
 * and end in a newline, which a log line or a command's one line of
 * refusal must not: whitespace runs become one space.  Its double
 * quotes become single ones, since logs quote the message with them.
 */
char *
db_pg_line(char *s)
{
	char	*i, *o;

	for (i = o = s; *i != '\0'; i++) {
		if (*i == '\n' || *i == '\t' || *i == '\r' || *i == ' ') {
			if (o > s && o[-1] != ' ')
				*o++ = ' ';
		} else
			*o++ = *i == '"' ? '\'' : *i;
	}
	while (o > s && o[-1] == ' ')
		o--;
	*o = '\0';
	return s;
}

static const char *
pg_errmsg(struct db *db)
{
	return db_pg_line(db->errbuf);
}

static void
pg_close(struct db *db)
{
	PQfinish(db->h);
}

static const struct db_driver pg_driver = {
	"postgres", pg_run, pg_next, pg_text, pg_done, pg_exec, pg_errmsg,
	pg_close
};

/* NOTICEs ("relation exists, skipping") are not for the logs. */
static void
quiet(void *arg, const char *message)
{
}

static int
fail_db(struct db *db, char *err, size_t errlen)
{
	snprintf(err, errlen, "database %s: %s", db->path, pg_errmsg(db));
	return -1;
}

/* The schema and the triggers, when the database has no tables yet. */
static int
schema_init(struct db *db, char *err, size_t errlen)
{
	struct db_cur	c;
	char		sql[256];
	bool		fresh;
	unsigned int	i;

	if (pg_exec(db, "BEGIN") == -1)
		return fail_db(db, err, errlen);
	memset(&c, 0, sizeof(c));
	c.db = db;
	if (pg_exec(db, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK ")") ==
	    -1 || pg_run(db, -1, "SELECT to_regclass('domains') IS NULL", 0,
	    NULL, &c) != DBR_ROW)
		goto fail;
	fresh = strcmp(pg_text(&c, 0), "t") == 0;
	pg_done(&c);
	if (fresh && (pg_exec(db, db_schema) == -1 || pg_exec(db,
	    "CREATE OR REPLACE FUNCTION postino_notify() RETURNS trigger "
	    "LANGUAGE plpgsql AS $$BEGIN "
	    "PERFORM pg_notify('postino', TG_TABLE_NAME); RETURN NULL; "
	    "END$$") == -1))
		goto fail;
	for (i = 0; fresh && i < DB_TABLES; i++) {
		snprintf(sql, sizeof(sql), "CREATE TRIGGER %s_notify AFTER "
		    "INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH "
		    "STATEMENT EXECUTE FUNCTION postino_notify()",
		    db_table_name(i), db_table_name(i));
		if (pg_exec(db, sql) == -1)
			goto fail;
	}
	if (pg_exec(db, "COMMIT") == -1)
		return fail_db(db, err, errlen);
	return 0;
fail:
	pg_done(&c);
	fail_db(db, err, errlen);
	pg_exec(db, "ROLLBACK");
	return -1;
}

int
db_pg_connect(struct db *db, const char *dsn, char *err, size_t errlen)
{
	PGconn	*h;

	db->drv = &pg_driver;
	if ((h = PQconnectdb(dsn)) == NULL) {
		snprintf(err, errlen, "database postgres: out of memory");
		return -1;
	}
	if (PQstatus(h) != CONNECTION_OK) {
		snprintf(db->errbuf, sizeof(db->errbuf), "%s",
		    PQerrorMessage(h));
		PQfinish(h);
		return fail_db(db, err, errlen);
	}
	db->h = h;
	PQsetNoticeProcessor(h, quiet, NULL);
	/* the server, not the password: for every message after this */
	snprintf(db->path, sizeof(db->path), "postgres (host %s port %s "
	    "dbname %s)", PQhost(h), PQport(h), PQdb(h));
	if (schema_init(db, err, errlen) == -1) {
		PQfinish(h);
		db->h = NULL;
		return -1;
	}
	return 0;
}

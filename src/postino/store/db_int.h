/*
 * db_int.h - what db.c (SQLite, and every query) shares with its
 * PostgreSQL driver db_pg.c.  Not for the callers of db.h.
 *
 * The queries are written once, in the SQL both engines accept, with
 * numbered parameters ?1, ?2 (db_pg.c makes them $1, $2).  Every value
 * travels as text; a NULL parameter or column is SQL NULL.  A driver
 * runs a query into a cursor positioned on its first row.
 */
#ifndef STORE_DB_INT_H
#define STORE_DB_INT_H

#include "db.h"

#define DB_PARAMS_MAX	12
#define DB_COLS_MAX	12

/* The first step of a query, and every next one. */
enum dbr { DBR_ROW, DBR_DONE, DBR_CONSTRAINT, DBR_ERROR };

struct db;

struct db_cur {
	struct db	*db;
	void		*stmt;		/* statement or result */
	int		 row, nrows;
	int		 ncols;
	long long	 changes;	/* rows a change touched */
	bool		 finalize;	/* a one-off statement */
};

struct db_driver {
	const char	*name;
	/* Run sql; q is its index in the statement cache, or -1. */
	enum dbr	(*run)(struct db *, int q, const char *sql, int n,
			    const char *const *params, struct db_cur *);
	enum dbr	(*next)(struct db_cur *);
	/* The text of column col of the current row; NULL for SQL NULL. */
	const char	*(*text)(struct db_cur *, int col);
	void		(*done)(struct db_cur *);
	/* sql without parameters or rows (schema, transactions) */
	int		(*exec)(struct db *, const char *sql);
	const char	*(*errmsg)(struct db *);
	void		(*close)(struct db *);
};

#define DB_Q_MAX	48	/* room in the statement cache */

struct db {
	const struct db_driver	*drv;
	char		 path[1024];	/* for messages */
	void		*h;		/* sqlite3 or PGconn */
	void		*q[DB_Q_MAX];	/* prepared (SQLite) */
	unsigned int	 scram_iterations;
	db_forward_fn	 forward;	/* db_set_forward */
	void		*forward_arg;
	char		 errbuf[512];	/* the driver's last error */
	bool		 batch;		/* db_read_begin (SQLite) */
	bool		 reading;	/* its read transaction is open */
	void		*rbegin, *rend;	/* its statements, prepared */
};

/* The schema of both engines (db.c). */
extern const char	db_schema[];

/* The PostgreSQL driver: connect, and create the schema when new. */
int	db_pg_connect(struct db *, const char *dsn, char *err, size_t errlen);

/* A libpq message made one line, in place. */
char	*db_pg_line(char *);

#endif

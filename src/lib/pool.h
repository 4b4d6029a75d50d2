/*
 * pool.h - a small pool of worker threads for blocking work (fsync,
 * Maildir writes, password hashing), whose results come back to the
 * event loop.  The seeds' "thread cache" (workers, default 40).
 *
 * work() runs on a worker thread and must touch nothing the loop
 * owns; done() then runs on the loop thread, in completion order.
 */
#ifndef LIB_POOL_H
#define LIB_POOL_H

struct event_base;
struct pool;

typedef void (*pool_fn)(void *arg);

struct pool	*pool_new(struct event_base *, unsigned int nthreads);
void		 pool_run(struct pool *, pool_fn work, pool_fn done, void *arg);
/* Ahead of the jobs waiting for a worker: for short work that
 * releases others (the shared fsync of a group commit). */
void		 pool_run_first(struct pool *, pool_fn work, pool_fn done,
		    void *arg);
/* Jobs submitted and not yet completed (done not yet called). */
unsigned int	 pool_pending(const struct pool *);

#endif

/*
 * dirsync.c - group commit of directory fsyncs; dirsync.h says how.
 *
 * One entry per directory ever synced through here (the spool, each
 * mailbox that received mail), kept until exit: entries are looked up
 * by workers without the loop, so none is freed under them.  All of an
 * entry's fields are under the one mutex; the waiters' callbacks run
 * on the loop only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dirsync.h"
#include "fsio.h"
#include "pool.h"
#include "strhash.h"
#include "xalloc.h"

#define DIRSYNC_BUCKETS	256

struct waiter {
	struct waiter	*next;
	dirsync_cb	 cb;
	void		*arg;
};

struct dir {
	struct dir	*next;		/* hash chain */
	struct dir	*next_parked;	/* in dirsync.parked */
	char		*path;
	bool		 busy;		/* an fsync of it is running */
	bool		 listed;	/* in dirsync.parked */
	unsigned int	 waiting;	/* told to wait, not yet in a batch */
	struct waiter	*parked, **parked_tail;
	unsigned int	 nparked;
	uint64_t	 nsyncs;
};

struct dirsync {
	pthread_mutex_t	 mtx;
	struct pool	*pool;
	struct dir	*dirs[DIRSYNC_BUCKETS];
	struct dir	*parked;	/* directories with waiters */
};

/* One fsync of a directory for the waiters it had when it began. */
struct batch {
	struct batch	*next;		/* while being started */
	struct dirsync	*ds;
	struct dir	*d;
	struct waiter	*waiters;
	int		 error;
};

static unsigned int
bucket(const char *s)
{
	return strhash(s) % DIRSYNC_BUCKETS;
}

/* Under mtx. */
static struct dir *
dir_get(struct dirsync *ds, const char *path)
{
	struct dir	**pp = &ds->dirs[bucket(path)], *d;

	for (d = *pp; d != NULL; d = d->next)
		if (strcmp(d->path, path) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->path = xstrdup(path);
	d->parked_tail = &d->parked;
	d->next = *pp;
	*pp = d;
	return d;
}

struct dirsync *
dirsync_new(struct pool *pool)
{
	struct dirsync	*ds = xcalloc(1, sizeof(*ds));

	pthread_mutex_init(&ds->mtx, NULL);
	ds->pool = pool;
	return ds;
}

/* The fsync itself, by whoever holds d->busy; then d is free again. */
static int
dir_sync(struct dirsync *ds, struct dir *d)
{
	int	r, saved;

	r = fsio_fsync_dir(d->path);
	saved = errno;
	pthread_mutex_lock(&ds->mtx);
	d->busy = false;
	d->nsyncs++;
	pthread_mutex_unlock(&ds->mtx);
	errno = saved;
	return r;
}

int
dirsync_try(struct dirsync *ds, const char *path)
{
	struct dir	*d;

	pthread_mutex_lock(&ds->mtx);
	d = dir_get(ds, path);
	if (d->busy || d->waiting > 0) {
		/* waiters go first: new entries cannot starve them */
		d->waiting++;
		pthread_mutex_unlock(&ds->mtx);
		return 1;
	}
	d->busy = true;
	pthread_mutex_unlock(&ds->mtx);
	return dir_sync(ds, d);
}

static void
batch_work(void *arg)
{
	struct batch	*b = arg;

	b->error = dir_sync(b->ds, b->d) == -1 ? errno : 0;
}

static void
batch_done(void *arg)
{
	struct batch	*b = arg;
	struct waiter	*w;

	while ((w = b->waiters) != NULL) {
		b->waiters = w->next;
		w->cb(w->arg, b->error);
		free(w);
	}
	dirsync_kick(b->ds);
	free(b);
}

void
dirsync_wait(struct dirsync *ds, const char *path, dirsync_cb cb, void *arg)
{
	struct waiter	*w = xcalloc(1, sizeof(*w));
	struct dir	*d;

	w->cb = cb;
	w->arg = arg;
	pthread_mutex_lock(&ds->mtx);
	d = dir_get(ds, path);
	*d->parked_tail = w;
	d->parked_tail = &w->next;
	d->nparked++;
	if (!d->listed) {
		d->listed = true;
		d->next_parked = ds->parked;
		ds->parked = d;
	}
	pthread_mutex_unlock(&ds->mtx);
	dirsync_kick(ds);
}

/*
 * Every waiter was renamed or linked before it was handed to the loop,
 * and the batch's fsync begins after it is taken here: the fsync
 * covers every entry of its batch.
 */
void
dirsync_kick(struct dirsync *ds)
{
	struct dir	**pp, *d;
	struct batch	*b, *start = NULL;

	pthread_mutex_lock(&ds->mtx);
	for (pp = &ds->parked; (d = *pp) != NULL; ) {
		if (d->busy) {
			pp = &d->next_parked;
			continue;
		}
		*pp = d->next_parked;
		d->listed = false;
		d->busy = true;
		d->waiting -= d->nparked;
		b = xcalloc(1, sizeof(*b));
		b->ds = ds;
		b->d = d;
		b->waiters = d->parked;
		b->next = start;
		start = b;
		d->parked = NULL;
		d->parked_tail = &d->parked;
		d->nparked = 0;
	}
	pthread_mutex_unlock(&ds->mtx);
	while ((b = start) != NULL) {
		start = b->next;
		/* many wait for it: it goes before queued jobs */
		pool_run_first(ds->pool, batch_work, batch_done, b);
	}
}

uint64_t
dirsync_count(struct dirsync *ds, const char *path)
{
	struct dir	*d;
	uint64_t	 n = 0;

	pthread_mutex_lock(&ds->mtx);
	for (d = ds->dirs[bucket(path)]; d != NULL; d = d->next)
		if (strcmp(d->path, path) == 0)
			n = d->nsyncs;
	pthread_mutex_unlock(&ds->mtx);
	return n;
}

/*
 * dirsync.h - group commit of directory fsyncs (docs/queue.md).
 *
 * A rename or link into a directory is durable once an fsync of that
 * directory, begun after it, has returned; one fsync covers every
 * entry made before it began.  So the work that made the entry, on a
 * worker, asks dirsync_try(): if no fsync of that directory is running
 * and none is waiting, it syncs at once on that worker (a lone entry
 * waits for nothing more).  Otherwise it must be handed to the loop,
 * dirsync_wait(), where it waits without holding a worker; when the
 * running fsync ends, every waiter of the directory shares the next.
 * A waiter thus waits at most for one fsync already running, plus its
 * own.
 */
#ifndef LIB_DIRSYNC_H
#define LIB_DIRSYNC_H

#include <stdint.h>

struct pool;
struct dirsync;

/* error: 0 once durable, else the errno of the failed fsync. */
typedef void (*dirsync_cb)(void *arg, int error);

/* On the loop; the directories' fsyncs run on pool's workers. */
struct dirsync	*dirsync_new(struct pool *);

/*
 * On a worker, after making an entry in dir: 0 when an fsync of dir
 * made it durable; -1 with errno when that fsync failed; 1 when the
 * caller must pass it to dirsync_wait(), exactly once, on the loop.
 * After 0 or -1, the loop must call dirsync_kick() (the caller's
 * completion does), since others may have waited meanwhile.
 */
int	dirsync_try(struct dirsync *, const char *dir);

/* On the loop, after dirsync_try() gave 1: cb(arg, error) once an
 * fsync of dir begun after this call has returned. */
void	dirsync_wait(struct dirsync *, const char *dir, dirsync_cb cb,
	    void *arg);

/* On the loop: start the fsync of every directory that has waiters
 * and no fsync running. */
void	dirsync_kick(struct dirsync *);

/* The fsyncs of dir done so far (a directory never seen: 0). */
uint64_t dirsync_count(struct dirsync *, const char *dir);

#endif

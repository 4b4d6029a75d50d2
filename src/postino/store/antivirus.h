/*
 * antivirus.h - R4.5: a message received over SMTP is scanned by clamd
 * before it is committed, in the store role ([antivirus] clamd,
 * on_error, timeout).
 *
 * The scan runs on a worker of the pool (store/clamd.c); at most half
 * the pool's threads scan at once, so a clamd that hangs until the
 * timeout never holds up the fsyncs of other commits.
 */
#ifndef STORE_ANTIVIRUS_H
#define STORE_ANTIVIRUS_H

#include "envelope.h"
#include "proto.h"

struct conf;
struct pool;
struct queue;
struct antivirus;

/*
 * The outcome of antivirus_spool_commit: COMMIT_OK and the other
 * statuses of queue_spool_commit, or COMMIT_INFECTED with the virus
 * name (printable ASCII, at most CLAMD_NAME_MAX octets, valid during
 * the call), or COMMIT_SCANFAIL (on_error = tempfail); virus is NULL
 * but for COMMIT_INFECTED.
 */
typedef void (*antivirus_commit_cb)(void *arg, enum commit_status,
    const char *virus);

/* Reads [antivirus] of conf, and again from a reloaded one. */
struct antivirus	*antivirus_new(struct pool *, struct queue *,
			    const struct conf *);
void			 antivirus_reconf(struct antivirus *,
			    const struct conf *);

/*
 * Commit the incoming message env->qid as queue_spool_commit does; when
 * [antivirus] clamd is set, first stream it to clamd.  Infected, or the
 * scan failed and on_error is tempfail: the incoming file is removed
 * and nothing is queued.  The scan failed and on_error is accept: it is
 * queued (a warning is logged).  cb is called once, on the loop.
 * Takes env's targets (env is cleared).
 */
void	antivirus_spool_commit(struct antivirus *, struct envelope *env,
	    antivirus_commit_cb cb, void *arg);

#endif

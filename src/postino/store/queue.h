/*
 * queue.h - the durable queue (R5.1) and its scheduler, in the store
 * role.  docs/queue.md states the spool states and the invariants.
 *
 * Paths are relative to the data directory, the store role's working
 * directory: spool/incoming/<qid> while a message is received,
 * spool/queue/<qid> once committed.
 */
#ifndef STORE_QUEUE_H
#define STORE_QUEUE_H

#include <stdint.h>

#include "envelope.h"
#include "proto.h"

struct event_base;
struct pool;
struct conf;
struct queue;
struct dirsync;

typedef void (*queue_commit_cb)(void *arg, enum commit_status);
typedef void (*queue_added_cb)(void *arg, const char *qid);
typedef void (*queue_delivered_cb)(void *arg, const struct envelope *env);

/* Make the spool directories and discard spool/incoming (never
 * acknowledged); scheduler.c takes spool/queue. */
struct queue	*queue_open(struct event_base *, struct pool *,
		    const struct conf *);

/*
 * Create spool/incoming/<new qid>.  Returns 0 with the queue id and a
 * descriptor for the writer (net), which the caller passes on; -1 with
 * errno.
 */
int	queue_spool_open(struct queue *, char qid[QID_LEN + 1], int *fd_r);

/*
 * A read-only use of incoming message qid, not yet committing: a new
 * descriptor of its file (close it), which stays valid if the message
 * is aborted meanwhile.  -1 for an unknown id.
 */
int	queue_spool_dup(struct queue *, const char *qid);

/* Forget and remove an incoming message (the client gave up, or the
 * message was refused at the end of data).  Unknown ids are ignored. */
void	queue_spool_abort(struct queue *, const char *qid);

/*
 * Commit: check the file holds msglen octets, then either deliver it
 * at once (queue_set_delivered) or append the envelope,
 * fdatasync, rename into spool/queue, in a worker; then an fsync of
 * the directory, shared by the commits that arrive together (group
 * commit); then cb(arg, status) on the loop and the message is
 * scheduled.
 * env->qid must be an open incoming id (else cb gets COMMIT_TEMPFAIL).
 * Takes env's targets (env is cleared).
 */
void	queue_spool_commit(struct queue *, struct envelope *env,
	    queue_commit_cb cb, void *arg);

/* Commits that succeeded, and the fsyncs of spool/queue that made
 * them durable: fewer when commits came together. */
void	queue_counts(const struct queue *, uint64_t *commits_r,
	    uint64_t *dirsyncs_r);

/* The group commit of directory fsyncs the queue uses (dirsync.h),
 * for the Maildir deliveries too. */
struct dirsync	*queue_dirsync(const struct queue *);

/* Called with the queue id of every message committed from now on. */
void	queue_set_added(struct queue *, queue_added_cb cb, void *arg);

/*
 * Delivery at commit (docs/queue.md): once set (cb not NULL), a message
 * all of whose targets are local Maildirs (and no [delivery] lmtp) is
 * not queued but linked into each target's new/, under the Maildir
 * name made with host (maildir_host()), before the 250; cb(arg, env)
 * then runs on the loop instead of queue_added_cb, the delivery
 * durable.  A link that cannot be made queues the message as usual.
 */
void	queue_set_delivered(struct queue *, const char *host,
	    queue_delivered_cb cb, void *arg);

/* Take a reloaded configuration ([delivery] lmtp). */
void	queue_reconf(struct queue *, const struct conf *);

/*
 * Read the envelope of a committed message from its spool file (any
 * thread); env->msglen is set.  -1 (logged) when the file is damaged;
 * call envelope_clear in every case.
 */
int	queue_envelope_read(int fd, struct envelope *env, const char *qid);

/*
 * Seconds since a message was received, read from its queue id (the
 * id holds the time in microseconds, modulo 2^44: about 203 days); 0
 * for a malformed id.  now: CLOCK_REALTIME.
 */
struct timespec;
uint64_t	queue_qid_age(const char *qid, const struct timespec *now);

#endif

/*
 * scheduler.h - delivery of committed messages (SPEC R5.2-R5.6), in the
 * store role: each attempt delivers the local targets into Maildirs and
 * hands the remote ones, grouped by domain, to net's SMTP client; the
 * outcome of every target, the attempt count and the next-try time are
 * kept in spool/deferred/<qid> (docs/queue.md), so that a restart
 * resumes where it stopped.  Targets that fail for good, or that are
 * still undelivered after bounce_after_days, are reported to the
 * sender in a delivery status notification; a delay notice goes out
 * once after delay_notify_hours.
 */
#ifndef STORE_SCHEDULER_H
#define STORE_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct db;
struct event_base;
struct ipc;
struct ipc_msg;
struct pool;
struct queue;
struct sched;

/*
 * Start: schedule every message in spool/queue at the next-try time its
 * state file gives (now when it has none).  net is the channel to the
 * net role, which runs the outbound sessions; db gives the redirection
 * rules (R5.5).
 */
struct sched	*sched_new(struct event_base *, struct pool *,
		    const struct conf *, struct queue *, struct ipc *net,
		    struct db *);
/* [delivery] of a reloaded configuration, for the attempts from now on
 * (the Maildir file names keep the hostname of the start). */
bool		 sched_reconf(struct sched *, const struct conf *);

/* A message has just been committed: deliver it now. */
void		 sched_add(struct sched *, const char *qid);

/* R7.5: messages in the queue (not held), and the oldest one's age in
 * seconds (0 when none). */
void		 sched_queue_stats(const struct sched *, size_t *n,
		    uint64_t *oldest);

/* IMSG_DELIVER_RESULT from net (proto.h). */
void		 sched_delivery_result(struct sched *, struct ipc_msg *);

/*
 * A queue command of postino-admin (R5.7), through control.c: verb is
 * list, show, flush, hold, release, delete or bounce, qid "" or a queue
 * id.  cb(arg, text, len) is called once, maybe before this returns,
 * with the answer: "ok\n" and the output, or "error REASON\n".
 */
typedef void	(*sched_reply_cb)(void *arg, const char *text, size_t len);
void		 sched_control(struct sched *, const char *verb,
		    const char *qid, sched_reply_cb cb, void *arg);

#endif

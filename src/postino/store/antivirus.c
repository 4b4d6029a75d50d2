/*
 * antivirus.c - the scan before the commit (R4.5), in the store role.
 *
 * The loop thread owns struct antivirus and the waiting list; a worker
 * gets one job, with a descriptor of its own of the incoming file (so
 * that an abort from net meanwhile, which closes the queue's, does not
 * pull it away), and returns clamd's verdict in it.  clamd's text was
 * made printable ASCII by clamd_reply_parse().
 */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "antivirus.h"
#include "clamd.h"
#include "compat.h"
#include "conf.h"
#include "log.h"
#include "pool.h"
#include "queue.h"
#include "xalloc.h"

struct av_job {
	struct av_job		*next;		/* waiting for a scan slot */
	struct antivirus	*av;
	struct envelope		 env;
	int			 fd;		/* the incoming file, to read */
	char			 addr[PATH_MAX];	/* clamd, at the start */
	int			 timeout_ms;
	long long		 ms;		/* the scan took */
	struct clamd_reply	 reply;
	antivirus_commit_cb	 cb;
	void			*arg;
};

struct antivirus {
	struct pool	*pool;
	struct queue	*queue;
	char		 addr[PATH_MAX];	/* empty: no scan */
	int		 timeout_ms;
	bool		 accept;		/* on_error = accept */
	unsigned int	 running, max;		/* scans on workers */
	struct av_job	*wait, **wait_tail;
};

struct antivirus *
antivirus_new(struct pool *pool, struct queue *q, const struct conf *conf)
{
	struct antivirus	*av = xcalloc(1, sizeof(*av));

	av->pool = pool;
	av->queue = q;
	av->wait_tail = &av->wait;
	antivirus_reconf(av, conf);
	return av;
}

/* Scans running keep the settings they started with (their job's). */
void
antivirus_reconf(struct antivirus *av, const struct conf *conf)
{
	strlcpy(av->addr, conf->antivirus.clamd, sizeof(av->addr));
	av->timeout_ms = (int)conf->antivirus.timeout * 1000;
	av->accept = conf->antivirus.on_error_accept;
	av->max = conf->workers / 2 ? conf->workers / 2 : 1;
	if (av->addr[0] != '\0')
		log_info("antivirus event=enabled clamd=%s timeout=%u "
		    "on_error=%s", av->addr, conf->antivirus.timeout,
		    av->accept ? "accept" : "tempfail");
}

static void
committed(void *arg, enum commit_status status)
{
	struct av_job	*j = arg;

	j->cb(j->arg, status, NULL);
	free(j);
}

static void
commit(struct av_job *j)
{
	queue_spool_commit(j->av->queue, &j->env, committed, j);
}

/* Nothing is queued: the incoming file goes. */
static void
refuse(struct av_job *j, enum commit_status status, const char *virus)
{
	queue_spool_abort(j->av->queue, j->env.qid);
	envelope_clear(&j->env);
	j->cb(j->arg, status, virus);
	free(j);
}

static void
scan_work(void *arg)
{
	struct av_job	*j = arg;
	struct timespec	 t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	clamd_scan(j->addr, j->fd, j->timeout_ms, &j->reply);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	j->ms = (long long)(t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
}

static void	scan_done(void *);

static void
scan_start(struct antivirus *av)
{
	struct av_job	*j;

	while (av->running < av->max && (j = av->wait) != NULL) {
		if ((av->wait = j->next) == NULL)
			av->wait_tail = &av->wait;
		av->running++;
		strlcpy(j->addr, av->addr, sizeof(j->addr));
		j->timeout_ms = av->timeout_ms;
		pool_run(av->pool, scan_work, scan_done, j);
	}
}

static void
scan_done(void *arg)
{
	struct av_job	*j = arg;
	struct antivirus *av = j->av;
	char		 esc[CLAMD_TEXT_MAX * 4 + 1];

	close(j->fd);
	av->running--;
	scan_start(av);
	switch (j->reply.verdict) {
	case CLAMD_CLEAN:
		log_debug("queue qid=%s event=scanned ms=%lld", j->env.qid,
		    j->ms);
		commit(j);
		break;
	case CLAMD_INFECTED:
		log_info("queue qid=%s event=virus-found virus=%s", j->env.qid,
		    log_escape(j->reply.text, strlen(j->reply.text), esc,
		    sizeof(esc)));
		refuse(j, COMMIT_INFECTED, j->reply.text);
		break;
	case CLAMD_FAILED:
		log_warn("queue qid=%s event=scan-failed error=\"%s\" "
		    "on_error=%s", j->env.qid, log_escape_quoted(j->reply.text,
		    strlen(j->reply.text), esc, sizeof(esc)),
		    av->accept ? "accept" : "tempfail");
		if (av->accept)
			commit(j);
		else
			refuse(j, COMMIT_SCANFAIL, NULL);
		break;
	default:
		panic("antivirus: verdict %d", (int)j->reply.verdict);
	}
}

void
antivirus_spool_commit(struct antivirus *av, struct envelope *env,
    antivirus_commit_cb cb, void *arg)
{
	struct av_job	*j = xcalloc(1, sizeof(*j));

	j->av = av;
	j->cb = cb;
	j->arg = arg;
	j->env = *env;		/* the targets are the job's now */
	env->targets = NULL;
	env->ntargets = 0;
	/* An unknown id: queue_spool_commit answers COMMIT_TEMPFAIL. */
	if (av->addr[0] == '\0' ||
	    (j->fd = queue_spool_dup(av->queue, j->env.qid)) == -1) {
		commit(j);
		return;
	}
	*av->wait_tail = j;
	av->wait_tail = &j->next;
	scan_start(av);
}

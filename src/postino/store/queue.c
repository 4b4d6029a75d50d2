/*
 * queue.c - spool files, commit and recovery (scheduler.c delivers).
 *
 * Runs in the store role.  The loop thread owns every structure here;
 * workers get a job struct of their own and return results in it.
 * Input it trusts: the message octets are whatever net wrote, and are
 * only copied, never interpreted; the envelope was built by store.c.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "conf.h"
#include "dirsync.h"
#include "fsio.h"
#include "log.h"
#include "maildir.h"
#include "pool.h"
#include "queue.h"
#include "strhash.h"
#include "xalloc.h"

#define DIR_INCOMING	"spool/incoming"
#define DIR_QUEUE	"spool/queue"
#define SPOOL_BUCKETS	1024
#define DIRECT_TARGETS_MAX 16	/* more local targets: queued */

struct spool {
	struct spool	*next;
	char		 qid[QID_LEN + 1];
	int		 fd;
	bool		 committing;
};

struct commit_job {
	struct queue	*q;
	struct spool	*sp;
	char		*env;
	size_t		 envlen;
	uint64_t	 msglen;
	enum commit_status status;
	bool		 renamed;	/* it is in spool/queue now */
	bool		 waits;		/* for a shared fsync of spool/queue */
	queue_commit_cb	 cb;
	void		*arg;

	/* delivery at commit (docs/queue.md) */
	bool		 direct;	/* tried; false again if queued */
	bool		 exposed;	/* a link was made: readers saw it */
	bool		 unlinked;	/* the incoming name is gone */
	int		 link_error;	/* why a link failed (fallback) */
	struct envelope	 denv;		/* its targets */
	char		**links;	/* [ntargets]: made in new/ */
	char		**dirs;		/* [ntargets]: new/ still to sync */
	unsigned int	 pending;	/* shared fsyncs not yet returned */
	int		 sync_error;
};

struct queue {
	struct event_base	*base;
	struct pool		*pool;
	struct spool		*spools[SPOOL_BUCKETS];
	queue_added_cb		 added;
	void			*added_arg;
	queue_delivered_cb	 delivered;
	void			*delivered_arg;
	bool			 direct;	/* no [delivery] lmtp */
	bool			 nolinks;	/* link() cannot serve: off */
	char			 host[256];	/* for Maildir names */
	struct dirsync		*dirsync;
	uint64_t		 ncommits;
};

static unsigned int
bucket(const char *qid)
{
	return strhash(qid) % SPOOL_BUCKETS;
}

static struct spool *
spool_find(struct queue *q, const char *qid, struct spool ***prev_r)
{
	struct spool	**pp = &q->spools[bucket(qid)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->qid, qid) == 0)
			break;
	if (prev_r != NULL)
		*prev_r = pp;
	return *pp;
}

static void
spool_remove(struct queue *q, struct spool *sp)
{
	struct spool	**pp;

	if (spool_find(q, sp->qid, &pp) == sp)
		*pp = sp->next;
	if (sp->fd != -1)
		close(sp->fd);
	free(sp);
}

static bool
qid_valid(const char *s)
{
	size_t	i;

	for (i = 0; i < QID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return s[QID_LEN] == '\0';
}

/* Time-ordered ids (microseconds) with random low bits: they sort by
 * arrival and cannot repeat across restarts. */
static void
qid_new(char qid[QID_LEN + 1])
{
	struct timespec	ts;
	uint64_t	us, rnd;

	clock_gettime(CLOCK_REALTIME, &ts);
	us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	rnd = (uint64_t)random();
	snprintf(qid, QID_LEN + 1, "%011" PRIX64 "%05" PRIX64,
	    (uint64_t)(us & 0xFFFFFFFFFFFULL), (uint64_t)(rnd & 0xFFFFF));
}

uint64_t
queue_qid_age(const char *qid, const struct timespec *now)
{
	uint64_t	us, then = 0;
	size_t		i;

	if (!qid_valid(qid))
		return 0;
	for (i = 0; i < 11; i++)
		then = then << 4 | (uint64_t)(qid[i] <= '9' ? qid[i] - '0' :
		    qid[i] - 'A' + 10);
	us = (uint64_t)now->tv_sec * 1000000 + (uint64_t)now->tv_nsec / 1000;
	/* the id keeps 44 bits: modulo that, as qid_new wrote it */
	return ((us - then) & 0xFFFFFFFFFFFULL) / 1000000;
}

int
queue_spool_open(struct queue *q, char qid[QID_LEN + 1], int *fd_r)
{
	struct spool	*sp;
	char		 path[64];
	int		 fd, tries;

	for (tries = 0; tries < 8; tries++) {
		qid_new(qid);
		snprintf(path, sizeof(path), DIR_INCOMING "/%s", qid);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1)
		return -1;
	if ((*fd_r = dup(fd)) == -1) {
		close(fd);
		unlink(path);
		return -1;
	}
	sp = xcalloc(1, sizeof(*sp));
	strlcpy(sp->qid, qid, sizeof(sp->qid));
	sp->fd = fd;
	sp->next = q->spools[bucket(qid)];
	q->spools[bucket(qid)] = sp;
	return 0;
}

int
queue_spool_dup(struct queue *q, const char *qid)
{
	struct spool	*sp;

	if (!qid_valid(qid) || (sp = spool_find(q, qid, NULL)) == NULL ||
	    sp->committing)
		return -1;
	return fcntl(sp->fd, F_DUPFD_CLOEXEC, 0);
}

void
queue_spool_abort(struct queue *q, const char *qid)
{
	struct spool	*sp;
	char		 path[64];

	if (!qid_valid(qid) || (sp = spool_find(q, qid, NULL)) == NULL ||
	    sp->committing)
		return;
	snprintf(path, sizeof(path), DIR_INCOMING "/%s", qid);
	unlink(path);
	spool_remove(q, sp);
}

static void
commit_failed(struct commit_job *j, int error)
{
	j->status = error == ENOSPC || error == EDQUOT ? COMMIT_NOSPACE :
	    COMMIT_TEMPFAIL;
	log_warn("queue qid=%s event=commit-failed error=\"%s\"", j->sp->qid,
	    strerror(error));
}

static void	commit_finish(struct commit_job *);

/* Remove the links made in new/: the message was not acknowledged. */
static void
direct_undo(struct commit_job *j)
{
	size_t	i;

	for (i = 0; i < j->denv.ntargets; i++) {
		if (j->links[i] != NULL)
			unlink(j->links[i]);
		free(j->links[i]);
		j->links[i] = NULL;
	}
}

/* Target i could not be linked (r, error as maildir_link gave). */
static void
direct_refused(struct commit_job *j, size_t i, int r, int error)
{
	struct env_target	*t = &j->denv.targets[i];
	char			 box[sizeof(t->domain) + sizeof(t->local_part)];
	char			 esc[sizeof(box) * 4];

	j->link_error = error;
	snprintf(box, sizeof(box), "%s/%s", t->domain, t->local_part);
	log_info("queue qid=%s event=queued-for-delivery mailbox=%s "
	    "reason=\"%s\"", j->sp->qid, log_value(box, esc, sizeof(esc)),
	    r == -2 ? "unusable mailbox name" : strerror(error));
}

/*
 * The fallback after a link was made and taken back: a reader may have
 * opened (or moved) that file meanwhile, so the envelope must not be
 * appended to it.  The message is copied into a new file, which takes
 * the incoming name; the descriptor is the new one's.  0, or -1.
 */
static int
respool(struct commit_job *j)
{
	char	src[64], tmp[64];
	int	fd, saved;

	snprintf(src, sizeof(src), DIR_INCOMING "/%s", j->sp->qid);
	snprintf(tmp, sizeof(tmp), DIR_INCOMING "/%s.copy", j->sp->qid);
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		return -1;
	if (fsio_copy(j->sp->fd, 0, (off_t)j->msglen, fd) == -1 ||
	    rename(tmp, src) == -1) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		return -1;
	}
	close(j->sp->fd);
	j->sp->fd = fd;
	return 0;
}

/* Every new/ of the message synced, or one failed: the outcome. */
static void
direct_settle(struct commit_job *j)
{
	if (j->sync_error != 0) {
		direct_undo(j);
		commit_failed(j, j->sync_error);
	} else
		j->status = COMMIT_OK;
}

/* On the loop: a shared fsync of one of the message's new/ returned. */
static void
direct_synced(void *arg, int error)
{
	struct commit_job	*j = arg;

	if (error != 0 && j->sync_error == 0)
		j->sync_error = error;
	if (--j->pending > 0)
		return;
	direct_settle(j);
	commit_finish(j);
}

/*
 * Delivery at commit, on a worker: fdatasync the incoming file and
 * link it into the new/ of every target, then sync those new/ (now,
 * or shared: commit_done).  0 when done or failed (j->status says);
 * -1 when a link could not be made (links undone): queue it instead.
 */
static int
direct_work(struct commit_job *j)
{
	struct envelope	*e = &j->denv;
	char		 src[64], name[512], dst[PATH_MAX], dir[PATH_MAX];
	const char	*last = NULL;
	size_t		 i;
	int		 r;

	if (fdatasync(j->sp->fd) == -1) {
		commit_failed(j, errno);
		return 0;
	}
	snprintf(src, sizeof(src), DIR_INCOMING "/%s", j->sp->qid);
	j->links = xcalloc(e->ntargets, sizeof(*j->links));
	j->dirs = xcalloc(e->ntargets, sizeof(*j->dirs));
	/* a name delivery would refuse: queue it before any link */
	for (i = 0; i < e->ntargets; i++)
		if (maildir_box_path(dst, sizeof(dst), MAILDIR_ROOT,
		    e->targets[i].domain, e->targets[i].local_part,
		    NULL) != 0) {
			direct_refused(j, i, -2, 0);
			return -1;
		}
	for (i = 0; i < e->ntargets; i++) {
		struct env_target *t = &e->targets[i];

		if ((r = maildir_name(name, sizeof(name), e->time, e->qid, i,
		    j->q->host, j->msglen)) == 0)
			r = maildir_link(MAILDIR_ROOT, t->domain,
			    t->local_part, name, src, dst, sizeof(dst), dir,
			    sizeof(dir));
		if (r != 0) {
			direct_refused(j, i, r, errno);
			direct_undo(j);
			return -1;
		}
		j->exposed = true;
		j->links[i] = xstrdup(dst);
		/* targets are sorted: a box's new/ is synced once */
		if (last == NULL || strcmp(dir, last) != 0)
			last = j->dirs[i] = xstrdup(dir);
	}
	/* every new/ holds it: the incoming name has done its work */
	unlink(src);
	j->unlinked = true;
	for (i = 0; i < e->ntargets; i++) {
		if (j->dirs[i] == NULL)
			continue;
		if ((r = dirsync_try(j->q->dirsync, j->dirs[i])) == 1) {
			j->pending++;
			continue;
		}
		if (r == -1 && j->sync_error == 0)
			j->sync_error = errno;
		free(j->dirs[i]);
		j->dirs[i] = NULL;
	}
	if (j->pending == 0)
		direct_settle(j);
	return 0;
}

static void
commit_work(void *arg)
{
	struct commit_job	*j = arg;
	struct queue		*q = j->q;
	char			 trailer[ENV_TRAILER_LEN + 1];
	char			 from[64], to[64];
	struct stat		 st;
	int			 fd = j->sp->fd, r;

	if (fstat(fd, &st) == -1 || (uint64_t)st.st_size != j->msglen) {
		log_warn("queue qid=%s event=commit-refused reason=size "
		    "file=%lld said=%" PRIu64, j->sp->qid,
		    (long long)st.st_size, j->msglen);
		return;
	}
	if (j->direct) {
		if (direct_work(j) == 0)
			return;
		/* queued instead: delivery will tell why, or do it */
		j->direct = false;
		if (j->exposed) {
			if (respool(j) == -1)
				goto fail;
			fd = j->sp->fd;
		}
		j->env = envelope_format(&j->denv, &j->envlen);
	}
	envelope_trailer(trailer, j->msglen, j->envlen);
	/* fdatasync: the size and blocks are synced, the times need not */
	if (fsio_pwrite_all(fd, j->env, j->envlen, (off_t)j->msglen) == -1 ||
	    fsio_pwrite_all(fd, trailer, ENV_TRAILER_LEN,
	    (off_t)(j->msglen + j->envlen)) == -1 || fdatasync(fd) == -1)
		goto fail;
	snprintf(from, sizeof(from), DIR_INCOMING "/%s", j->sp->qid);
	snprintf(to, sizeof(to), DIR_QUEUE "/%s", j->sp->qid);
	if (rename(from, to) == -1)
		goto fail;
	j->renamed = true;
	/* group commit: this fsync now, or a shared one (commit_done) */
	if ((r = dirsync_try(q->dirsync, DIR_QUEUE)) == 1)
		j->waits = true;
	else if (r == 0)
		j->status = COMMIT_OK;
	else
		goto fail;
	return;
fail:
	commit_failed(j, errno);
}

/* The commit is durable, or has failed: tell the caller (loop). */
static void
commit_finish(struct commit_job *j)
{
	struct queue	*q = j->q;
	char		 path[64];
	size_t		 i;

	if (!q->nolinks && (j->link_error == EXDEV ||
	    j->link_error == EPERM || j->link_error == EOPNOTSUPP)) {
		/* mail/ on another file system, or one without hard links */
		q->nolinks = true;
		log_warn("queue event=delivery-at-commit-off error=\"%s\" "
		    "(every local message is queued until a reload)",
		    strerror(j->link_error));
	}
	if (j->status == COMMIT_OK) {
		q->ncommits++;
		if (j->direct)
			q->delivered(q->delivered_arg, &j->denv);
		else if (q->added != NULL)
			q->added(q->added_arg, j->sp->qid);
	} else if (!j->unlinked) {
		/* never acknowledged: not in spool/queue after a restart */
		snprintf(path, sizeof(path), "%s/%s", j->renamed ?
		    DIR_QUEUE : DIR_INCOMING, j->sp->qid);
		unlink(path);
	}
	spool_remove(q, j->sp);
	j->cb(j->arg, j->status);
	if (j->links != NULL)
		for (i = 0; i < j->denv.ntargets; i++) {
			free(j->links[i]);
			free(j->dirs[i]);
		}
	free(j->links);
	free(j->dirs);
	envelope_clear(&j->denv);
	free(j->env);
	free(j);
}

/* The shared fsync of spool/queue covering j's rename has returned. */
static void
commit_synced(void *arg, int error)
{
	struct commit_job	*j = arg;

	if (error == 0)
		j->status = COMMIT_OK;
	else
		commit_failed(j, error);
	commit_finish(j);
}

static void
commit_done(void *arg)
{
	struct commit_job	*j = arg;
	struct queue		*q = j->q;

	size_t			 i;

	if (j->direct && j->pending > 0) {
		/* the callbacks come later, from the loop */
		for (i = 0; i < j->denv.ntargets; i++)
			if (j->dirs[i] != NULL)
				dirsync_wait(q->dirsync, j->dirs[i],
				    direct_synced, j);
	} else if (j->waits)
		dirsync_wait(q->dirsync, DIR_QUEUE, commit_synced, j);
	else {
		commit_finish(j);
		dirsync_kick(q->dirsync);
	}
}

/*
 * Delivered at commit: every target is a local Maildir (docs/queue.md),
 * and not so many that their fsyncs, one after another before the 250,
 * would hold the client: those are queued and delivered after it.
 */
static bool
direct_eligible(const struct queue *q, const struct envelope *env)
{
	size_t	i;

	if (q->delivered == NULL || !q->direct || q->nolinks ||
	    env->ntargets == 0 || env->ntargets > DIRECT_TARGETS_MAX)
		return false;
	for (i = 0; i < env->ntargets; i++)
		if (!env->targets[i].local)
			return false;
	return true;
}

void
queue_spool_commit(struct queue *q, struct envelope *env, queue_commit_cb cb,
    void *arg)
{
	struct commit_job	*j;
	struct spool		*sp;

	if (!qid_valid(env->qid) || (sp = spool_find(q, env->qid, NULL)) ==
	    NULL || sp->committing) {
		envelope_clear(env);
		cb(arg, COMMIT_TEMPFAIL);
		return;
	}
	sp->committing = true;
	j = xcalloc(1, sizeof(*j));
	j->q = q;
	j->sp = sp;
	j->msglen = env->msglen;
	j->cb = cb;
	j->arg = arg;
	j->status = COMMIT_TEMPFAIL;
	if (direct_eligible(q, env)) {
		j->direct = true;
		j->denv = *env;		/* the targets are the job's now */
		env->targets = NULL;
		env->ntargets = 0;
	} else
		j->env = envelope_format(env, &j->envlen);
	envelope_clear(env);
	pool_run(q->pool, commit_work, commit_done, j);
}

void
queue_counts(const struct queue *q, uint64_t *commits_r,
    uint64_t *dirsyncs_r)
{
	*commits_r = q->ncommits;
	*dirsyncs_r = dirsync_count(q->dirsync, DIR_QUEUE);
}

struct dirsync *
queue_dirsync(const struct queue *q)
{
	return q->dirsync;
}

int
queue_envelope_read(int fd, struct envelope *env, const char *qid)
{
	char		 trailer[ENV_TRAILER_LEN];
	const char	*errstr;
	struct stat	 st;
	uint64_t	 msglen, envlen;
	char		*text;
	int		 r;

	if (fstat(fd, &st) == -1 || st.st_size < ENV_TRAILER_LEN ||
	    pread(fd, trailer, sizeof(trailer), st.st_size - ENV_TRAILER_LEN)
	    != ENV_TRAILER_LEN ||
	    envelope_trailer_parse(trailer, &msglen, &envlen) == -1 ||
	    msglen + envlen + ENV_TRAILER_LEN != (uint64_t)st.st_size ||
	    envlen > 64 * 1024 * 1024) {
		log_err("queue qid=%s event=damaged reason=trailer", qid);
		return -1;
	}
	text = xmalloc(envlen);
	r = pread(fd, text, envlen, (off_t)msglen) == (ssize_t)envlen ? 0 : -1;
	if (r == 0 && (r = envelope_parse(text, envlen, env, &errstr)) == -1)
		log_err("queue qid=%s event=damaged reason=\"%s\"", qid,
		    errstr);
	env->msglen = msglen;
	free(text);
	return r;
}

/* Nothing in spool/incoming was acknowledged: it goes. */
static void
recover(struct queue *q)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[300];
	unsigned int	 dropped = 0;

	if ((d = opendir(DIR_INCOMING)) == NULL)
		fatal("opendir " DIR_INCOMING);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), DIR_INCOMING "/%s", de->d_name);
		if (unlink(path) == 0)
			dropped++;
	}
	closedir(d);
	log_info("queue event=recovered discarded-incoming=%u", dropped);
}

struct queue *
queue_open(struct event_base *base, struct pool *pool,
    const struct conf *conf)
{
	struct queue	*q = xcalloc(1, sizeof(*q));

	q->base = base;
	q->pool = pool;
	if (fsio_mkdirs(DIR_INCOMING, 0700) == -1 ||
	    fsio_mkdirs(DIR_QUEUE, 0700) == -1 ||
	    fsio_mkdirs(MAILDIR_ROOT, 0700) == -1)
		fatal("cannot make the spool directories");
	q->dirsync = dirsync_new(pool);
	q->direct = true;
	if (conf != NULL)
		queue_reconf(q, conf);
	srandom((unsigned int)(time(NULL) ^ getpid()));
	recover(q);
	return q;
}

void
queue_set_added(struct queue *q, queue_added_cb cb, void *arg)
{
	q->added = cb;
	q->added_arg = arg;
}

void
queue_set_delivered(struct queue *q, const char *host, queue_delivered_cb cb,
    void *arg)
{
	strlcpy(q->host, host, sizeof(q->host));
	q->delivered = cb;
	q->delivered_arg = arg;
}

void
queue_reconf(struct queue *q, const struct conf *conf)
{
	q->direct = conf->delivery.at_commit && conf->delivery.lmtp[0] == '\0';
	q->nolinks = false;		/* the file systems may have changed */
}

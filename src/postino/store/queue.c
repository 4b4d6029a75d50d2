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
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "conf.h"
#include "fsio.h"
#include "log.h"
#include "maildir.h"
#include "pool.h"
#include "queue.h"
#include "xalloc.h"

#define DIR_INCOMING	"spool/incoming"
#define DIR_QUEUE	"spool/queue"
#define SPOOL_BUCKETS	1024

struct spool {
	struct spool	*next;
	char		 qid[QID_LEN + 1];
	int		 fd;
	bool		 committing;
};

/*
 * Group commit (docs/queue.md).  A rename into spool/queue is durable
 * once an fsync of the directory that began after it has returned, and
 * one fsync covers every rename before it.  So a commit whose rename
 * finds the directory idle syncs it at once on its own worker (a lone
 * commit waits for nothing), and one whose rename finds a sync running
 * is parked on the loop, without a worker, until that sync ends: then
 * all the parked ones share the next sync.  The added wait is at most
 * one directory fsync, the one that was running.
 *
 * Workers and the loop share only this, under mtx.
 */
struct dirsync {
	pthread_mutex_t	 mtx;
	bool		 busy;		/* an fsync of spool/queue is running */
	unsigned int	 waiting;	/* renamed, waiting for a batch */
};

struct commit_job {
	struct commit_job *next;	/* in the parked list */
	struct queue	*q;
	struct spool	*sp;
	char		*env;
	size_t		 envlen;
	uint64_t	 msglen;
	enum commit_status status;
	bool		 renamed;	/* it is in spool/queue now */
	bool		 synced;	/* it ran the directory fsync itself */
	queue_commit_cb	 cb;
	void		*arg;
};

/* One directory fsync for the parked commits, on a worker. */
struct batch {
	struct queue		*q;
	struct commit_job	*jobs;
	int			 error;	/* errno of the fsync, or 0 */
};

struct queue {
	struct event_base	*base;
	struct pool		*pool;
	const struct conf	*conf;
	struct spool		*spools[SPOOL_BUCKETS];
	queue_added_cb		 added;
	void			*added_arg;
	int			 queue_dir;	/* spool/queue, for fsync */
	struct dirsync		 ds;
	struct commit_job	*parked, **parked_tail;
	unsigned int		 nparked;
	uint64_t		 ncommits, ndirsyncs;
};

static unsigned int
bucket(const char *qid)
{
	unsigned int	h = 5381;

	for (; *qid != '\0'; qid++)
		h = h * 33 + (unsigned char)*qid;
	return h % SPOOL_BUCKETS;
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

/*
 * A worker after its rename: true if it may sync the directory itself,
 * which it must then release; false if it is counted as waiting for
 * the loop's next batch.  Waiting commits go first, so a stream of
 * new ones cannot starve them.
 */
static bool
dirsync_claim(struct dirsync *ds)
{
	bool	mine;

	pthread_mutex_lock(&ds->mtx);
	if ((mine = !ds->busy && ds->waiting == 0))
		ds->busy = true;
	else
		ds->waiting++;
	pthread_mutex_unlock(&ds->mtx);
	return mine;
}

static void
dirsync_release(struct dirsync *ds)
{
	pthread_mutex_lock(&ds->mtx);
	ds->busy = false;
	pthread_mutex_unlock(&ds->mtx);
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

	j->status = COMMIT_TEMPFAIL;
	if (fstat(fd, &st) == -1 || (uint64_t)st.st_size != j->msglen) {
		log_warn("queue qid=%s event=commit-refused reason=size "
		    "file=%lld said=%" PRIu64, j->sp->qid,
		    (long long)st.st_size, j->msglen);
		return;
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
	if (!dirsync_claim(&q->ds))
		return;		/* the loop batches it (commit_done) */
	j->synced = true;
	r = fsync(q->queue_dir);
	dirsync_release(&q->ds);
	if (r == -1)
		goto fail;
	j->status = COMMIT_OK;
	return;
fail:
	if (errno == ENOSPC || errno == EDQUOT)
		j->status = COMMIT_NOSPACE;
	log_warn("queue qid=%s event=commit-failed error=\"%s\"", j->sp->qid,
	    strerror(errno));
}

/* The commit is durable, or has failed: tell the caller (loop). */
static void
commit_finish(struct commit_job *j)
{
	struct queue	*q = j->q;
	char		 path[64];

	if (j->status == COMMIT_OK) {
		q->ncommits++;
		if (q->added != NULL)
			q->added(q->added_arg, j->sp->qid);
	} else {
		/* never acknowledged: not in spool/queue after a restart */
		snprintf(path, sizeof(path), "%s/%s", j->renamed ?
		    DIR_QUEUE : DIR_INCOMING, j->sp->qid);
		unlink(path);
	}
	spool_remove(q, j->sp);
	j->cb(j->arg, j->status);
	free(j->env);
	free(j);
}

static void
batch_work(void *arg)
{
	struct batch	*b = arg;

	b->error = fsync(b->q->queue_dir) == -1 ? errno : 0;
	dirsync_release(&b->q->ds);
}

static void	dirsync_kick(struct queue *);

static void
batch_done(void *arg)
{
	struct batch		*b = arg;
	struct queue		*q = b->q;
	struct commit_job	*j;

	q->ndirsyncs++;
	while ((j = b->jobs) != NULL) {
		b->jobs = j->next;
		if (b->error == 0)
			j->status = COMMIT_OK;
		else {
			j->status = b->error == ENOSPC || b->error == EDQUOT ?
			    COMMIT_NOSPACE : COMMIT_TEMPFAIL;
			log_warn("queue qid=%s event=commit-failed "
			    "error=\"%s\"", j->sp->qid, strerror(b->error));
		}
		commit_finish(j);
	}
	free(b);
	dirsync_kick(q);
}

/*
 * Start a batch of the parked commits if the directory is idle.  Run
 * after each event that can make it so: a commit parked, a worker's or
 * a batch's sync returned (each releases before its done runs here).
 */
static void
dirsync_kick(struct queue *q)
{
	struct batch	*b;

	if (q->parked == NULL)
		return;
	pthread_mutex_lock(&q->ds.mtx);
	if (q->ds.busy) {
		pthread_mutex_unlock(&q->ds.mtx);
		return;
	}
	q->ds.busy = true;
	q->ds.waiting -= q->nparked;
	pthread_mutex_unlock(&q->ds.mtx);
	b = xcalloc(1, sizeof(*b));
	b->q = q;
	b->jobs = q->parked;
	q->parked = NULL;
	q->parked_tail = &q->parked;
	q->nparked = 0;
	pool_run(q->pool, batch_work, batch_done, b);
}

static void
commit_done(void *arg)
{
	struct commit_job	*j = arg;
	struct queue		*q = j->q;

	if (j->renamed && !j->synced) {
		/* its rename waits for a directory fsync: park it */
		j->next = NULL;
		*q->parked_tail = j;
		q->parked_tail = &j->next;
		q->nparked++;
	} else {
		if (j->synced)
			q->ndirsyncs++;
		commit_finish(j);
	}
	dirsync_kick(q);
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
	j->env = envelope_format(env, &j->envlen);
	j->cb = cb;
	j->arg = arg;
	envelope_clear(env);
	pool_run(q->pool, commit_work, commit_done, j);
}

void
queue_counts(const struct queue *q, uint64_t *commits_r,
    uint64_t *dirsyncs_r)
{
	*commits_r = q->ncommits;
	*dirsyncs_r = q->ndirsyncs;
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
	q->conf = conf;
	if (fsio_mkdirs(DIR_INCOMING, 0700) == -1 ||
	    fsio_mkdirs(DIR_QUEUE, 0700) == -1 ||
	    fsio_mkdirs(MAILDIR_ROOT, 0700) == -1)
		fatal("cannot make the spool directories");
	if ((q->queue_dir = open(DIR_QUEUE, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		fatal("open " DIR_QUEUE);
	pthread_mutex_init(&q->ds.mtx, NULL);
	q->parked_tail = &q->parked;
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

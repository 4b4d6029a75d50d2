/*
 * scheduler.c - attempts, retries, outbound jobs and notifications.
 *
 * The loop thread owns every structure here.  An attempt reads the
 * envelope and the state file and delivers the local targets on a
 * worker; back on the loop the remote targets become jobs, one per
 * domain, that wait for an outgoing slot (max_outgoing,
 * max_outgoing_per_domain) and then go to net with a descriptor of the
 * spool file.  When every job has answered, the notifications are
 * queued (as new messages from <>), then the state is written, or the
 * message removed, on a worker.  While an attempt runs the message is
 * "busy" and nothing else touches it.
 *
 * What net answers is network input relayed by a role we do not trust:
 * reply texts are bounded and cleaned before they reach a file or a log.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "compat.h"
#include "conf.h"
#include "db.h"
#include "dirsync.h"
#include "dsn.h"
#include "envelope.h"
#include "fsio.h"
#include "ipc.h"
#include "log.h"
#include "maildir.h"
#include "pickup.h"
#include "pool.h"
#include "proto.h"
#include "queue.h"
#include "scheduler.h"
#include "stats.h"
#include "xalloc.h"

#define DIR_QUEUE	"spool/queue"
#define DIR_DEFERRED	"spool/deferred"
#define DIR_HOLD	"spool/hold"
#define MSG_BUCKETS	4096
#define ATTEMPTS_MAX	4096	/* messages open at once, at most */
/*
 * Recipients of one job.  An answer takes at most 4 + 16 + 300 + 512
 * octets a recipient (net/client.c), a request 257: 100 keep both well
 * inside IPC_MSG_MAX.
 */
#define JOB_RCPTS_MAX	100
#define JOB_BUCKETS	1024
#define DOM_BUCKETS	1024
#define TEXT_MAX	512	/* a reply kept of one target */
#define STATE_MAX	(64 * 1024 * 1024)
#define HEADERS_MAX	(64 * 1024)	/* of the original, in a DSN */

enum tstate { T_PENDING, T_DONE, T_FAILED };

/* The outcome so far of one target of the envelope. */
struct tstat {
	enum tstate	state;
	bool		fresh;		/* failed in this attempt: report it */
	char		status[16];	/* "4.4.1" */
	char		remote[256];	/* "mx.example.org[192.0.2.1]" */
	char		text[TEXT_MAX];
	char		*syncdir;	/* in this new/, until its fsync */
};

struct qmsg {
	struct qmsg	*next;		/* in the ready list */
	struct qmsg	*hnext;		/* in sched.msgs */
	struct sched	*s;
	char		 qid[QID_LEN + 1];
	struct event	*timer;
	bool		 busy;
	bool		 ready;		/* in the ready list */
	bool		 bounce_now;	/* queue bounce: fail what is left */
	/* Valid during an attempt. */
	struct envelope	 env;
	struct tstat	*ts;
	unsigned int	 attempts;
	bool		 warned;	/* the delay notice went out */
	bool		 gone, damaged;
	bool		 finishing;	/* notices sent, state to write */
	int		 fd;
	unsigned int	 jobs;		/* not yet answered by net */
	unsigned int	 notices;	/* notifications being committed */
	unsigned int	 syncs;		/* deliveries waiting for new/ */
};

/* A delivery waiting for a shared fsync of its new/ (dirsync.h). */
struct sync_wait {
	struct qmsg	*m;
	size_t		 i;		/* the target */
};

struct dom {
	struct dom	*next;
	unsigned int	 active;
	char		 name[ADDR_DOMAIN_MAX + 1];
};

/* The remote targets of one message in one domain: one session. */
struct job {
	struct job	*next;		/* waiting list, or in-flight bucket */
	uint64_t	 id;
	struct qmsg	*m;
	struct dom	*d;
	bool		 lmtp;		/* the local targets, over LMTP */
	size_t		 n;
	size_t		*idx;		/* into m->env.targets */
};

struct sched {
	struct event_base	*base;
	struct pool		*pool;
	const struct conf	*conf;
	struct queue		*queue;
	struct ipc		*net;
	struct db		*db;
	struct qmsg		*ready, **ready_tail;
	struct qmsg		*msgs[MSG_BUCKETS];
	unsigned int		 attempts_active, attempts_max;
	struct job		*waiting, **waiting_tail;
	struct job		*flying[JOB_BUCKETS];
	struct dom		*doms[DOM_BUCKETS];
	unsigned int		 outgoing;
	size_t			 nmsgs;		/* in queue/ */
	uint64_t		 next_job;
	char			 hostname[256];	/* safe for a Maildir name */
	char			 auth_pass[256];	/* smart host */
};

static void	run_ready(struct sched *);
static void	dispatch(struct sched *);
static void	finish(struct qmsg *);

static unsigned int
hash(const char *s)
{
	unsigned int	h = 5381;

	for (; *s != '\0'; s++)
		h = h * 33 + (unsigned char)tolower((unsigned char)*s);
	return h;
}

static struct qmsg **
msg_slot(struct sched *s, const char *qid)
{
	struct qmsg	**mp = &s->msgs[hash(qid) % MSG_BUCKETS];

	while (*mp != NULL && strcmp((*mp)->qid, qid) != 0)
		mp = &(*mp)->hnext;
	return mp;
}

static void
msg_free(struct qmsg *m)
{
	struct qmsg	**mp = msg_slot(m->s, m->qid);

	if (*mp == m)
		*mp = m->hnext;
	m->s->nmsgs--;
	event_free(m->timer);
	free(m);
}

/* --- state file ------------------------------------------------------ */

/* One line per field: anything from the network loses its controls. */
static void
clean_copy(char *dst, size_t size, const char *src)
{
	size_t	i;

	for (i = 0; src != NULL && src[i] != '\0' && i + 1 < size; i++)
		dst[i] = (src[i] < 0x20 || src[i] == 0x7f) ? ' ' : src[i];
	dst[i] = '\0';
}

/* The same, as one word of the state file: spaces become '_'. */
static void
clean_word(char *dst, size_t size, const char *src)
{
	char	*p;

	clean_copy(dst, size, src);
	for (p = dst; *p != '\0'; p++)
		if (*p == ' ')
			*p = '_';
}

/*
 * A recipient for a log line, escaped (log_escape): a quoted local part
 * may hold spaces and quotes (RFC 5321 4.1.2), and a bare value none.
 * domain NULL: local is the whole address.  One buffer per thread:
 * local deliveries are logged on the workers too, and a line names one
 * recipient.
 */
static const char *
rcpt_text(const char *local, const char *domain)
{
	static __thread char	buf[(2 * ADDR_PATH_MAX + 2) * 4];
	char		addr[2 * ADDR_PATH_MAX + 2];	/* a target's parts */

	snprintf(addr, sizeof(addr), "%s%s%s", local, domain ? "@" : "",
	    domain ? domain : "");
	return log_escape(addr, strlen(addr), buf, sizeof(buf));
}

/*
 * spool/deferred/<qid>:
 *	postino-state 1 <attempts> <warned>
 *	<target index> <P|D|F> <status or -> <remote or -> <text>
 * A missing file means "never tried".  A damaged one is ignored (every
 * target is tried again: at least once, never lost).
 */
static void
state_read(struct qmsg *m)
{
	char	path[64], *buf, *line, *save = NULL, st, status[16];
	char	remote[256];
	int	fd, n, off;
	size_t	i;
	ssize_t	len;
	struct stat sb;

	snprintf(path, sizeof(path), DIR_DEFERRED "/%s", m->qid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if (fstat(fd, &sb) == -1 || sb.st_size > STATE_MAX) {
		close(fd);
		return;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	len = pread(fd, buf, (size_t)sb.st_size, 0);
	close(fd);
	if (len != sb.st_size) {
		free(buf);
		return;
	}
	buf[len] = '\0';
	line = strtok_r(buf, "\n", &save);
	if (line == NULL || sscanf(line, "postino-state 1 %u %d", &m->attempts,
	    &n) != 2) {
		log_warn("queue qid=%s event=state-ignored reason=damaged",
		    m->qid);
		m->attempts = 0;
		free(buf);
		return;
	}
	m->warned = n != 0;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		if (sscanf(line, "%zu %c %15s %255s %n", &i, &st, status,
		    remote, &off) != 4 || i >= m->env.ntargets)
			continue;
		m->ts[i].state = st == 'D' ? T_DONE : st == 'F' ? T_FAILED :
		    T_PENDING;
		clean_copy(m->ts[i].status, sizeof(m->ts[i].status),
		    strcmp(status, "-") == 0 ? "" : status);
		clean_copy(m->ts[i].remote, sizeof(m->ts[i].remote),
		    strcmp(remote, "-") == 0 ? "" : remote);
		clean_copy(m->ts[i].text, sizeof(m->ts[i].text), line + off);
	}
	free(buf);
}

static char *
state_format(const struct qmsg *m, size_t *len_r)
{
	size_t	 size = 64 + m->env.ntargets * (TEXT_MAX + 320), len;
	char	*p = xmalloc(size);
	size_t	 i;

	len = (size_t)snprintf(p, size, "postino-state 1 %u %d\n",
	    m->attempts, m->warned);
	for (i = 0; i < m->env.ntargets; i++) {
		const struct tstat *t = &m->ts[i];

		len += (size_t)snprintf(p + len, size - len, "%zu %c %s %s %s\n",
		    i, t->state == T_DONE ? 'D' : t->state == T_FAILED ? 'F' :
		    'P', t->status[0] ? t->status : "-",
		    t->remote[0] ? t->remote : "-", t->text);
	}
	*len_r = len;
	return p;
}

static unsigned int
backoff(const struct conf *conf, unsigned int attempts)
{
	uint64_t	t = conf->delivery.retry_first;
	unsigned int	i;

	for (i = 1; i < attempts && t < conf->delivery.retry_max; i++)
		t *= 2;
	return t > conf->delivery.retry_max ? conf->delivery.retry_max :
	    (unsigned int)t;
}

/* When the next try of a recovered message is due: 0 for now. */
static time_t
state_next_try(const char *qid, const struct conf *conf)
{
	char		path[64], line[128];
	unsigned int	attempts;
	int		warned;
	struct stat	sb;
	FILE		*f;

	snprintf(path, sizeof(path), DIR_DEFERRED "/%s", qid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL || sscanf(line,
	    "postino-state 1 %u %d", &attempts, &warned) != 2 ||
	    fstat(fileno(f), &sb) == -1) {
		fclose(f);
		return 0;
	}
	fclose(f);
	/* the state is written when the wait starts */
	return sb.st_mtime + (time_t)backoff(conf, attempts);
}

/* --- local delivery, on a worker ------------------------------------- */

/* Local target t of message qid is in its Maildir, durably. */
static void
local_delivered(const char *qid, const struct env_target *t)
{
	char	box[sizeof(t->domain) + sizeof(t->local_part)];
	char	esc[sizeof(box) * 4];

	snprintf(box, sizeof(box), "%s/%s", t->domain, t->local_part);
	log_info("queue qid=%s event=delivered to=<%s> mailbox=%s", qid,
	    rcpt_text(t->local_part, t->domain), log_value(box, esc,
	    sizeof(esc)));
	stats_delivery(ST_MAILDIR, SO_DELIVERED);
}

/* The outcome r of maildir_deliver() for target i, error its errno. */
static void
local_outcome(struct qmsg *m, size_t i, int r, int error)
{
	struct env_target	*t = &m->env.targets[i];
	struct tstat		*ts = &m->ts[i];

	if (r == 0) {
		ts->state = T_DONE;
		local_delivered(m->qid, t);
	} else if (r == -2) {
		ts->state = T_FAILED;
		ts->fresh = true;
		strlcpy(ts->status, "5.1.3", sizeof(ts->status));
		strlcpy(ts->text, "unusable mailbox name", sizeof(ts->text));
		log_err("queue qid=%s event=failed to=<%s> "
		    "reason=\"unusable mailbox name\"", m->qid,
		    rcpt_text(t->local_part, t->domain));
		stats_delivery(ST_MAILDIR, SO_BOUNCED);
	} else {
		strlcpy(ts->status, "4.2.0", sizeof(ts->status));
		snprintf(ts->text, sizeof(ts->text), "mailbox: %s",
		    strerror(error));
		log_warn("queue qid=%s event=deferred to=<%s> error=\"%s\"",
		    m->qid, rcpt_text(t->local_part, t->domain),
		    strerror(error));
		stats_delivery(ST_MAILDIR, SO_DEFERRED);
	}
}

static void
deliver_local(struct qmsg *m, const char *hostname, size_t i)
{
	struct env_target	*t = &m->env.targets[i];
	char			 name[512], syncdir[PATH_MAX];
	int			 r;

	if (maildir_name(name, sizeof(name), m->env.time, m->env.qid, i,
	    hostname, m->env.msglen) == -1) {
		local_outcome(m, i, -1, errno);
		return;
	}
	r = maildir_deliver(MAILDIR_ROOT, t->domain, t->local_part, name, m->fd,
	    (off_t)m->env.msglen, syncdir, sizeof(syncdir));
	/* group commit: new/ synced now, or with others (attempt_done) */
	if (r == 0 && (r = dirsync_try(queue_dirsync(m->s->queue),
	    syncdir)) == 1) {
		m->ts[i].syncdir = xstrdup(syncdir);
		return;
	}
	local_outcome(m, i, r, errno);
}

static void
attempt_work(void *arg)
{
	struct qmsg	*m = arg;
	char		 path[64];
	size_t		 i;

	snprintf(path, sizeof(path), DIR_QUEUE "/%s", m->qid);
	if ((m->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		m->gone = errno == ENOENT;	/* deleted by the admin */
		m->damaged = !m->gone;
		return;
	}
	if (queue_envelope_read(m->fd, &m->env, m->qid) == -1) {
		m->damaged = true;	/* stays for the administrator */
		return;
	}
	m->ts = xcalloc(m->env.ntargets ? m->env.ntargets : 1,
	    sizeof(*m->ts));
	state_read(m);
	for (i = 0; i < m->env.ntargets; i++) {
		struct tstat *ts = &m->ts[i];

		if (ts->state != T_PENDING)
			continue;
		if (m->bounce_now) {
			ts->state = T_FAILED;
			ts->fresh = true;
			strlcpy(ts->status, "5.0.0", sizeof(ts->status));
			strlcpy(ts->text, "returned by the administrator "
			    "(postino-admin queue bounce)", sizeof(ts->text));
			ts->remote[0] = '\0';
		} else if (m->env.targets[i].local &&
		    m->s->conf->delivery.lmtp[0] == '\0')
			deliver_local(m, m->s->hostname, i);
	}
}

/*
 * On the loop: the queue delivered a message at commit (docs/queue.md),
 * every target durably in its new/; it was never queued.
 */
static void
delivered_at_commit(void *arg, const struct envelope *env)
{
	size_t	i;

	for (i = 0; i < env->ntargets; i++)
		local_delivered(env->qid, &env->targets[i]);
}

/* --- outbound jobs --------------------------------------------------- */

static struct dom *
dom_get(struct sched *s, const char *name)
{
	struct dom	**dp = &s->doms[hash(name) % DOM_BUCKETS], *d;

	for (d = *dp; d != NULL; d = d->next)
		if (strcasecmp(d->name, name) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	strlcpy(d->name, name, sizeof(d->name));
	d->next = *dp;
	*dp = d;
	return d;
}

static void
dom_put(struct sched *s, struct dom *d)
{
	struct dom	**dp;

	if (d->active > 0)
		return;
	for (dp = &s->doms[hash(d->name) % DOM_BUCKETS]; *dp != NULL;
	    dp = &(*dp)->next)
		if (*dp == d) {
			*dp = d->next;
			free(d);
			return;
		}
}

static void
job_free(struct job *j)
{
	free(j->idx);
	free(j);
}

/*
 * Queue jobs for the n targets of group, JOB_RCPTS_MAX at most each:
 * the job and its answer must fit in one IPC message (IPC_MSG_MAX).
 */
static void
add_jobs(struct qmsg *m, const size_t *group, size_t n, bool lmtp)
{
	struct sched	*s = m->s;
	struct job	*j;
	size_t		 off, k;

	for (off = 0; off < n; off += k) {
		k = n - off < JOB_RCPTS_MAX ? n - off : JOB_RCPTS_MAX;
		j = xcalloc(1, sizeof(*j));
		j->m = m;
		j->lmtp = lmtp;
		j->n = k;
		j->idx = xreallocarray(NULL, k, sizeof(*j->idx));
		memcpy(j->idx, group + off, k * sizeof(*j->idx));
		*s->waiting_tail = j;
		s->waiting_tail = &j->next;
		m->jobs++;
	}
}

/* The pending targets: the local ones over LMTP when it is set, the
 * remote ones grouped by domain. */
static void
make_jobs(struct qmsg *m)
{
	size_t		 i, k, n, *group;
	bool		*taken;

	taken = xcalloc(m->env.ntargets + 1, sizeof(*taken));
	group = xcalloc(m->env.ntargets + 1, sizeof(*group));
	if (m->s->conf->delivery.lmtp[0] != '\0') {
		for (i = n = 0; i < m->env.ntargets; i++)
			if (m->env.targets[i].local &&
			    m->ts[i].state == T_PENDING) {
				taken[i] = true;
				group[n++] = i;
			}
		add_jobs(m, group, n, true);
	}
	for (i = 0; i < m->env.ntargets; i++) {
		const char *dom = m->env.targets[i].domain;

		if (taken[i] || m->env.targets[i].local ||
		    m->ts[i].state != T_PENDING)
			continue;
		for (k = i, n = 0; k < m->env.ntargets; k++)
			if (!taken[k] && !m->env.targets[k].local &&
			    m->ts[k].state == T_PENDING &&
			    strcasecmp(m->env.targets[k].domain, dom) == 0) {
				taken[k] = true;
				group[n++] = k;
			}
		add_jobs(m, group, n, false);
	}
	free(taken);
	free(group);
}

/*
 * An LMTP server on a unix socket: store connects (net's chroot has no
 * path to it) and passes the socket.  -1 when it cannot: net then
 * tries the path itself and reports the failure per recipient.
 */
static int
lmtp_connect(struct sched *s)
{
	struct sockaddr_un	 sun;
	char			 path[sizeof(sun.sun_path) * 4 + 3];
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, s->conf->delivery.lmtp + 5,
	    sizeof(sun.sun_path)) >= sizeof(sun.sun_path))
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		log_warn("queue event=lmtp-connect-failed socket=%s "
		    "error=\"%s\"", log_value(sun.sun_path, path, sizeof(path)),
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * R5.5: a redirection rule's target, "%%alias%%@%%domain%%" keeping the
 * recipient as it is; -1 when the result is no address.
 */
static int
redirect_rcpt(const char *tmpl, const char *local, const char *domain,
    char *out, size_t size)
{
	struct mailaddr	 a;
	const char	*errstr, *p = tmpl;
	char		 buf[ADDR_PATH_MAX * 2];
	size_t		 n = 0, k;

	while (*p != '\0' && n + 1 < sizeof(buf)) {
		const char *v = NULL;

		if (strncmp(p, "%%alias%%", 9) == 0)
			v = local, k = 9;
		else if (strncmp(p, "%%domain%%", 10) == 0)
			v = domain, k = 10;
		if (v != NULL) {
			n += strlcpy(buf + n, v, sizeof(buf) - n);
			p += k;
		} else
			buf[n++] = *p++;
	}
	if (n + 1 >= sizeof(buf))
		return -1;
	buf[n] = '\0';
	if (addr_parse(buf, true, &a, &errstr) == -1)
		return -1;
	return addr_format(&a, out, size) == -1 ? -1 : 0;
}

static void
job_send(struct sched *s, struct job *j)
{
	struct qmsg		*m = j->m;
	struct ipc_out		 o;
	struct mailaddr		 a;
	char			 rcpt[ADDR_PATH_MAX + 1], tmpl[ADDR_PATH_MAX + 1];
	char			 esc[sizeof(tmpl) * 4];
	char			 route[ADDR_DOMAIN_MAX + 8];
	bool			 redirected;
	size_t			 i;
	int			 fd;

	j->id = ++s->next_job;
	j->d->active++;
	s->outgoing++;
	j->next = s->flying[j->id % JOB_BUCKETS];
	s->flying[j->id % JOB_BUCKETS] = j;
	redirected = !j->lmtp && db_redirect_get(s->db, j->d->name, tmpl,
	    sizeof(tmpl), route, sizeof(route)) == 1;
	ipc_out_init(&o);
	ipc_put_str(&o, m->qid);
	ipc_put_str(&o, m->env.from);
	ipc_put_u32(&o, m->env.body);
	ipc_put_u32(&o, m->env.smtputf8);
	ipc_put_u64(&o, m->env.msglen);
	ipc_put_str(&o, j->lmtp ? "" : j->d->name);
	ipc_put_u32(&o, j->lmtp);
	ipc_put_str(&o, redirected ? route : "");
	ipc_put_str(&o, s->conf->delivery.smarthost_user);
	ipc_put_str(&o, s->auth_pass);
	ipc_put_u32(&o, (uint32_t)j->n);
	for (i = 0; i < j->n; i++) {
		const struct env_target *t = &m->env.targets[j->idx[i]];

		memset(&a, 0, sizeof(a));
		strlcpy(a.local, t->local_part, sizeof(a.local));
		strlcpy(a.domain, t->domain, sizeof(a.domain));
		if (addr_format(&a, rcpt, sizeof(rcpt)) == -1)
			strlcpy(rcpt, t->rcpt, sizeof(rcpt));
		if (redirected && redirect_rcpt(tmpl, t->local_part, t->domain,
		    rcpt, sizeof(rcpt)) == -1)
			log_warn("queue qid=%s event=redirect-ignored to=<%s> "
			    "target=\"%s\" reason=\"not an address\"",
			    m->qid, rcpt_text(rcpt, NULL),
			    log_escape_quoted(tmpl, strlen(tmpl), esc,
			    sizeof(esc)));
		ipc_put_str(&o, rcpt);
	}
	if (j->lmtp && strncmp(s->conf->delivery.lmtp, "unix:", 5) == 0 &&
	    (fd = lmtp_connect(s)) != -1) {
		struct ipc_out	none;

		ipc_out_init(&none);
		ipc_send(s->net, IMSG_DELIVER_SOCK, j->id, fd, &none);
	}
	if ((fd = dup(m->fd)) == -1)
		fatal("scheduler: dup");
	ipc_send(s->net, IMSG_DELIVER, j->id, fd, &o);
	log_info("queue qid=%s event=outbound job=%" PRIu64 " domain=%s "
	    "rcpts=%zu%s%s", m->qid, j->id, j->d->name, j->n,
	    redirected ? " redirect=" : "", redirected ? route : "");
}

/* Start every waiting job that has a slot, in arrival order. */
static void
dispatch(struct sched *s)
{
	const struct conf	*c = s->conf;
	struct job		**jp = &s->waiting, *j;

	while ((j = *jp) != NULL && s->outgoing < c->delivery.max_outgoing) {
		struct dom *d = dom_get(s, j->lmtp ? "[lmtp]" :
		    j->m->env.targets[j->idx[0]].domain);

		if (d->active >= c->delivery.max_outgoing_per_domain) {
			dom_put(s, d);
			jp = &j->next;
			continue;
		}
		*jp = j->next;
		if (*jp == NULL)
			s->waiting_tail = jp;
		j->d = d;
		job_send(s, j);
	}
}

void
sched_delivery_result(struct sched *s, struct ipc_msg *msg)
{
	struct job	**jp, *j;
	struct qmsg	*m;
	uint32_t	 n, i, code;
	const char	*status, *remote, *text;
	char		 esc[TEXT_MAX * 4];
	enum stats_transport tr;

	for (jp = &s->flying[msg->id % JOB_BUCKETS]; (j = *jp) != NULL;
	    jp = &j->next)
		if (j->id == msg->id)
			break;
	if (j == NULL)
		fatalx("store: delivery result for unknown job %" PRIu64,
		    msg->id);
	*jp = j->next;
	m = j->m;
	tr = j->lmtp ? ST_LMTP : ST_SMTP;
	if ((n = ipc_get_u32(msg)) != j->n)
		fatalx("store: delivery result with %u of %zu recipients", n,
		    j->n);
	for (i = 0; i < n; i++) {
		struct env_target	*t = &m->env.targets[j->idx[i]];
		struct tstat		*ts = &m->ts[j->idx[i]];

		code = ipc_get_u32(msg);
		status = ipc_get_str(msg);
		remote = ipc_get_str(msg);
		text = ipc_get_str(msg);
		if (status == NULL || remote == NULL || text == NULL ||
		    code < 200 || code > 599)
			fatalx("store: malformed delivery result");
		clean_word(ts->status, sizeof(ts->status), status);
		clean_word(ts->remote, sizeof(ts->remote), remote);
		clean_copy(ts->text, sizeof(ts->text), text);
		/* a peer's words: quotes and backslashes escaped too */
		log_escape_quoted(ts->text, strlen(ts->text), esc, sizeof(esc));
		stats_delivery(tr, code < 300 ? SO_DELIVERED : code >= 500 ?
		    SO_BOUNCED : SO_DEFERRED);
		if (code < 300) {
			ts->state = T_DONE;
			log_info("queue qid=%s event=delivered to=<%s> "
			    "relay=%s status=%s reply=\"%s\"", m->qid,
			    rcpt_text(t->local_part, t->domain), ts->remote,
			    ts->status, esc);
		} else if (code >= 500) {
			ts->state = T_FAILED;
			ts->fresh = true;
			log_info("queue qid=%s event=bounced to=<%s> "
			    "relay=%s status=%s reply=\"%s\"", m->qid,
			    rcpt_text(t->local_part, t->domain), ts->remote[0] ?
			    ts->remote : "none", ts->status, esc);
		} else
			log_info("queue qid=%s event=deferred to=<%s> "
			    "relay=%s status=%s reply=\"%s\"", m->qid,
			    rcpt_text(t->local_part, t->domain), ts->remote[0] ?
			    ts->remote : "none", ts->status, esc);
	}
	ipc_end(msg);
	j->d->active--;
	s->outgoing--;
	dom_put(s, j->d);
	job_free(j);
	if (--m->jobs == 0)
		finish(m);
	dispatch(s);
}

/* --- notifications --------------------------------------------------- */

static void
notice_committed(void *arg, enum commit_status status)
{
	struct qmsg	*m = arg;

	if (status != COMMIT_OK)
		log_err("queue qid=%s event=notice-lost status=%d", m->qid,
		    (int)status);
	if (--m->notices == 0)
		finish(m);
}

/*
 * Queue a DSN about m from <> to rcpt: the original's header section
 * and one entry per target whose state the action reports.  Returns
 * true when a commit is under way (notice_committed follows).
 */
static bool
notice_send(struct qmsg *m, const char *rcpt, enum dsn_action action)
{
	struct sched		*s = m->s;
	struct dsn_rcpt		*dr;
	struct dsn		 d;
	struct envelope		 env;
	struct mailaddr		 a;
	char			*msg, *head, token[64];
	const char		*errstr;
	size_t			 i, n = 0, len, hlen;
	ssize_t			 got;
	int			 fd;

	dr = xcalloc(m->env.ntargets, sizeof(*dr));
	for (i = 0; i < m->env.ntargets; i++) {
		const struct tstat *ts = &m->ts[i];

		if (action == DSN_FAILED ? !(ts->state == T_FAILED &&
		    ts->fresh) : ts->state != T_PENDING)
			continue;
		dr[n].rcpt = m->env.targets[i].rcpt;
		dr[n].action = action;
		dr[n].status = ts->status[0] ? ts->status :
		    action == DSN_FAILED ? "5.0.0" : "4.0.0";
		dr[n].remote_mta = ts->remote[0] ? ts->remote : NULL;
		dr[n].diagnostic = ts->text[0] ? ts->text : NULL;
		dr[n].last_attempt = time(NULL);
		n++;
	}
	hlen = m->env.msglen < HEADERS_MAX ? (size_t)m->env.msglen :
	    HEADERS_MAX;
	head = xmalloc(hlen + 1);
	got = pread(m->fd, head, hlen, 0);
	hlen = got > 0 ? dsn_header_length(head, (size_t)got) : 0;
	snprintf(token, sizeof(token), "%s.%lld.%c", m->qid,
	    (long long)time(NULL), action == DSN_FAILED ? 'F' : 'D');
	memset(&d, 0, sizeof(d));
	d.reporting_mta = s->conf->hostname;
	d.qid = m->qid;
	d.from = m->env.from;
	d.arrival = m->env.time;
	d.now = time(NULL);
	d.retry_days = s->conf->delivery.bounce_after_days;
	d.rcpts = dr;
	d.nrcpt = n;
	d.headers = head;
	d.headers_len = hlen;
	d.random = token;
	msg = dsn_format(&d, &len);
	free(head);
	free(dr);

	memset(&env, 0, sizeof(env));
	if (addr_parse(rcpt, true, &a, &errstr) == -1) {
		log_err("queue qid=%s event=notice-dropped to=<%s> "
		    "reason=\"%s\"", m->qid, rcpt_text(rcpt, NULL), errstr);
		free(msg);
		return false;
	}
	if (queue_spool_open(s->queue, env.qid, &fd) == -1) {
		log_err("queue qid=%s event=notice-lost error=\"%s\"", m->qid,
		    strerror(errno));
		free(msg);
		return false;
	}
	if (fsio_write_all(fd, msg, len) == -1 ||
	    store_envelope_add(&env, &a, rcpt) == DB_RCPT_TEMPFAIL ||
	    env.ntargets == 0) {
		log_err("queue qid=%s event=notice-lost to=<%s> reason=%s",
		    m->qid, rcpt_text(rcpt, NULL), env.ntargets == 0 ?
		    "\"unknown recipient\"" :
		    "error");
		close(fd);
		queue_spool_abort(s->queue, env.qid);
		envelope_clear(&env);
		free(msg);
		return false;
	}
	close(fd);
	free(msg);
	env.msglen = len;
	env.time = time(NULL);
	strlcpy(env.helo, s->conf->hostname, sizeof(env.helo));
	strlcpy(env.client, "local", sizeof(env.client));
	strlcpy(env.proto, "LOCAL", sizeof(env.proto));
	env.from[0] = '\0';
	log_info("queue qid=%s event=%s notice=%s to=<%s> rcpts=%zu",
	    m->qid, action == DSN_FAILED ? "bounce" : "delay-notice",
	    env.qid, rcpt_text(rcpt, NULL), n);
	m->notices++;
	queue_spool_commit(s->queue, &env, notice_committed, m);
	return true;
}

/*
 * The notifications an attempt owes: a failure report for the targets
 * that failed in it, a delay notice once.  Mail from <> gets none; its
 * failures go to failed_mail, unless they are failed_mail's own.
 */
static void
notices(struct qmsg *m)
{
	const struct conf	*c = m->s->conf;
	const char		*to = m->env.from;
	time_t			 age = time(NULL) - m->env.time;
	bool			 failed = false, pending = false;
	size_t			 i;

	for (i = 0; i < m->env.ntargets; i++) {
		if (m->ts[i].state == T_FAILED && m->ts[i].fresh &&
		    !(to[0] == '\0' && strcasecmp(m->env.targets[i].rcpt,
		    c->delivery.failed_mail) == 0))
			failed = true;
		if (m->ts[i].state == T_PENDING)
			pending = true;
	}
	if (to[0] == '\0')
		to = c->delivery.failed_mail;
	if (failed)
		notice_send(m, to, DSN_FAILED);
	if (pending && !m->warned && m->env.from[0] != '\0' &&
	    c->delivery.delay_notify_hours > 0 &&
	    age >= (time_t)c->delivery.delay_notify_hours * 3600) {
		m->warned = true;
		notice_send(m, to, DSN_DELAYED);
	}
	for (i = 0; i < m->env.ntargets; i++)
		m->ts[i].fresh = false;
}

/* --- the end of an attempt ------------------------------------------- */

struct finish_job {
	struct qmsg	*m;
	bool		 done;		/* no target left: remove */
	char		*state;
	size_t		 len;
};

static void
finish_work(void *arg)
{
	struct finish_job	*f = arg;
	char			 path[64];

	if (f->done) {
		/* The queue file first: a state file alone means nothing. */
		snprintf(path, sizeof(path), DIR_QUEUE "/%s", f->m->qid);
		if (unlink(path) == -1 && errno != ENOENT)
			log_err("queue qid=%s event=unlink-failed error=\"%s\"",
			    f->m->qid, strerror(errno));
		snprintf(path, sizeof(path), DIR_DEFERRED "/%s", f->m->qid);
		unlink(path);
		return;
	}
	if (fsio_write_durable(DIR_DEFERRED, f->m->qid, f->state, f->len,
	    0600) == -1)
		log_err("queue qid=%s event=state-write-failed error=\"%s\"",
		    f->m->qid, strerror(errno));
}

static void
retry_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct qmsg	*m = arg;

	m->next = NULL;
	m->ready = true;
	*m->s->ready_tail = m;
	m->s->ready_tail = &m->next;
	run_ready(m->s);
}

static void
attempt_clear(struct qmsg *m)
{
	if (m->fd != -1)
		close(m->fd);
	m->fd = -1;
	envelope_clear(&m->env);
	free(m->ts);
	m->ts = NULL;
	m->gone = m->damaged = m->finishing = false;
	m->jobs = m->notices = 0;
}

static void
finish_done(void *arg)
{
	struct finish_job	*f = arg;
	struct qmsg		*m = f->m;
	struct sched		*s = m->s;
	struct timeval		 tv = { 0, 0 };

	s->attempts_active--;
	if (f->done) {
		log_info("queue qid=%s event=removed", m->qid);
		attempt_clear(m);
		msg_free(m);
	} else {
		tv.tv_sec = backoff(s->conf, m->attempts);
		log_info("queue qid=%s event=retry-later attempts=%u "
		    "in=%llds", m->qid, m->attempts, (long long)tv.tv_sec);
		attempt_clear(m);
		m->busy = false;
		evtimer_add(m->timer, &tv);
	}
	free(f->state);
	free(f);
	run_ready(s);
}

/*
 * Every job has answered: expire what is too old, send what notices
 * are owed (finish is called again once they are committed), then
 * write the state or remove the message.
 */
static void
finish(struct qmsg *m)
{
	const struct conf	*c = m->s->conf;
	struct finish_job	*f;
	time_t			 age = time(NULL) - m->env.time;
	bool			 pending = false;
	size_t			 i;

	if (!m->finishing) {
		m->finishing = true;
		for (i = 0; i < m->env.ntargets; i++) {
			struct tstat *ts = &m->ts[i];

			if (ts->state != T_PENDING ||
			    age < (time_t)c->delivery.bounce_after_days * 86400)
				continue;
			ts->state = T_FAILED;
			ts->fresh = true;
			if (ts->status[0] == '4')
				ts->status[0] = '5';
			else if (ts->status[0] == '\0')
				strlcpy(ts->status, "5.4.7", sizeof(ts->status));
		}
		m->attempts++;
		notices(m);		/* notice_committed calls back */
	}
	if (m->notices > 0)
		return;
	f = xcalloc(1, sizeof(*f));
	f->m = m;
	for (i = 0; m->ts != NULL && i < m->env.ntargets; i++)
		if (m->ts[i].state == T_PENDING)
			pending = true;
	f->done = !pending;
	if (pending)
		f->state = state_format(m, &f->len);
	pool_run(m->s->pool, finish_work, finish_done, f);
}

/* The local deliveries are done: the remote and LMTP jobs next. */
static void
attempt_go(struct qmsg *m)
{
	make_jobs(m);
	if (m->jobs == 0)
		finish(m);
	else
		dispatch(m->s);
}

static void
local_synced(void *arg, int error)
{
	struct sync_wait	*w = arg;
	struct qmsg		*m = w->m;

	free(m->ts[w->i].syncdir);
	m->ts[w->i].syncdir = NULL;
	local_outcome(m, w->i, error == 0 ? 0 : -1, error);
	free(w);
	if (--m->syncs == 0)
		attempt_go(m);
}

/*
 * Deliveries whose new/ was busy wait for a shared fsync of it; the
 * queue file stays until then (finish), so a crash redoes them, and
 * they find their name in new/.
 */
static void
attempt_wait_syncs(struct qmsg *m)
{
	struct dirsync		*ds = queue_dirsync(m->s->queue);
	struct sync_wait	*w;
	size_t			 i;

	for (i = 0; m->ts != NULL && i < m->env.ntargets; i++) {
		if (m->ts[i].syncdir == NULL)
			continue;
		w = xcalloc(1, sizeof(*w));
		w->m = m;
		w->i = i;
		m->syncs++;
		dirsync_wait(ds, m->ts[i].syncdir, local_synced, w);
	}
	/* this attempt's own syncs may have made way for waiting ones */
	dirsync_kick(ds);
	if (m->syncs == 0)
		attempt_go(m);
}

static void
attempt_done(void *arg)
{
	struct qmsg	*m = arg;
	struct sched	*s = m->s;

	if (m->gone || m->damaged) {
		if (m->damaged)
			log_err("queue qid=%s event=set-aside reason=\"cannot "
			    "read the queue file\"", m->qid);
		s->attempts_active--;
		attempt_clear(m);
		msg_free(m);
		run_ready(s);
		return;
	}
	attempt_wait_syncs(m);
}

static void
run_ready(struct sched *s)
{
	struct qmsg	*m;

	while (s->attempts_active < s->attempts_max &&
	    (m = s->ready) != NULL) {
		if ((s->ready = m->next) == NULL)
			s->ready_tail = &s->ready;
		m->ready = false;
		m->busy = true;
		s->attempts_active++;
		pool_run(s->pool, attempt_work, attempt_done, m);
	}
}

void
sched_queue_stats(const struct sched *s, size_t *n, uint64_t *oldest)
{
	const struct qmsg	*m;
	struct timespec		 now;
	uint64_t		 age;
	size_t			 i;

	clock_gettime(CLOCK_REALTIME, &now);
	*n = s->nmsgs;
	*oldest = 0;
	for (i = 0; i < MSG_BUCKETS; i++)
		for (m = s->msgs[i]; m != NULL; m = m->hnext)
			if ((age = queue_qid_age(m->qid, &now)) > *oldest)
				*oldest = age;
}

static struct qmsg *
qmsg_new(struct sched *s, const char *qid)
{
	struct qmsg	*m = xcalloc(1, sizeof(*m)), **mp = msg_slot(s, qid);

	if (*mp != NULL)
		panic("scheduler: %s scheduled twice", qid);
	s->nmsgs++;
	m->s = s;
	m->fd = -1;
	strlcpy(m->qid, qid, sizeof(m->qid));
	m->timer = evtimer_new(s->base, retry_timer, m);
	*mp = m;
	return m;
}

void
sched_add(struct sched *s, const char *qid)
{
	struct qmsg	*m = qmsg_new(s, qid);

	retry_timer(-1, 0, m);
}

static void
recover(struct sched *s)
{
	DIR		*d;
	struct dirent	*de;
	struct qmsg	*m;
	struct timeval	 tv;
	time_t		 now = time(NULL), due;
	unsigned int	 now_n = 0, later = 0;

	if ((d = opendir(DIR_QUEUE)) == NULL)
		fatal("opendir " DIR_QUEUE);
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != QID_LEN || de->d_name[0] == '.')
			continue;
		m = qmsg_new(s, de->d_name);
		due = state_next_try(m->qid, s->conf);
		tv.tv_sec = due > now ? due - now : 0;
		tv.tv_usec = 0;
		evtimer_add(m->timer, &tv);
		if (tv.tv_sec > 0)
			later++;
		else
			now_n++;
	}
	closedir(d);
	/* A state file whose message has gone (removed between the two
	 * unlinks) means nothing. */
	if ((d = opendir(DIR_DEFERRED)) != NULL) {
		char	q[128], h[128], st[128];

		while ((de = readdir(d)) != NULL) {
			if (strlen(de->d_name) != QID_LEN)
				continue;
			snprintf(q, sizeof(q), DIR_QUEUE "/%s", de->d_name);
			snprintf(h, sizeof(h), DIR_HOLD "/%s", de->d_name);
			snprintf(st, sizeof(st), DIR_DEFERRED "/%s", de->d_name);
			if (access(q, F_OK) == -1 && access(h, F_OK) == -1)
				unlink(st);
		}
		closedir(d);
	}
	log_info("queue event=scheduled now=%u later=%u", now_n, later);
}

/*
 * The smart host's password, read by store from its own file (at start
 * and on each reload, with the user it goes with).  -1 when the file
 * cannot be read: the password stays as it was.
 */
static int
read_password(struct sched *s, const struct conf *conf)
{
	const char	*path = conf->delivery.smarthost_password_file;
	char		 pass[sizeof(s->auth_pass)] = "";
	FILE		*f;

	if (path[0] != '\0') {
		if ((f = fopen(path, "re")) == NULL)
			return -1;
		if (fgets(pass, sizeof(pass), f) == NULL)
			pass[0] = '\0';
		fclose(f);
		pass[strcspn(pass, "\r\n")] = '\0';
	}
	strlcpy(s->auth_pass, pass, sizeof(s->auth_pass));
	explicit_bzero(pass, sizeof(pass));
	return 0;
}

bool
sched_reconf(struct sched *s, const struct conf *conf)
{
	bool	ok = true;

	if (read_password(s, conf) == -1) {
		log_err("queue event=reload-failed key=smarthost_password_file "
		    "file=%s error=\"%s\"", conf->delivery.smarthost_password_file,
		    strerror(errno));
		ok = false;
	}
	s->conf = conf;
	queue_reconf(s->queue, conf);	/* delivery at commit: no lmtp */
	/*
	 * Messages in an attempt at once.  An attempt holds its spool file
	 * open while its jobs wait for net, so this bounds the descriptors;
	 * it must not be below max_outgoing, or outgoing sessions would be
	 * capped by it instead.
	 */
	s->attempts_max = conf->workers > 2 ? conf->workers / 2 : 1;
	if (s->attempts_max < conf->delivery.max_outgoing)
		s->attempts_max = conf->delivery.max_outgoing;
	if (s->attempts_max > ATTEMPTS_MAX)
		s->attempts_max = ATTEMPTS_MAX;
	return ok;
}

struct sched *
sched_new(struct event_base *base, struct pool *pool, const struct conf *conf,
    struct queue *queue, struct ipc *net, struct db *db)
{
	struct sched	*s = xcalloc(1, sizeof(*s));

	s->db = db;
	s->base = base;
	s->pool = pool;
	s->queue = queue;
	s->net = net;
	s->ready_tail = &s->ready;
	s->waiting_tail = &s->waiting;
	if (!sched_reconf(s, conf))
		fatal("smarthost_password_file %s",
		    conf->delivery.smarthost_password_file);
	maildir_host(s->hostname, sizeof(s->hostname), conf->hostname);
	queue_set_delivered(queue, s->hostname, delivered_at_commit, s);
	if (fsio_mkdirs(DIR_DEFERRED, 0700) == -1 ||
	    fsio_mkdirs(DIR_HOLD, 0700) == -1)
		fatal("cannot make the spool directories");
	recover(s);
	return s;
}

/* --- queue tools (R5.7) ---------------------------------------------- */

struct ctl_job {
	struct sched	*s;
	char		 verb[16];
	char		 qid[QID_LEN + 1];
	char		*out;
	size_t		 len, size;
	sched_reply_cb	 cb;
	void		*arg;
};

static void
out_add(struct ctl_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
out_add(struct ctl_job *j, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(j->out + j->len, j->size - j->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < j->size - j->len) {
			j->len += (size_t)n;
			return;
		}
		j->size = j->size * 2 + (size_t)(n > 0 ? n : 0);
		j->out = xreallocarray(j->out, j->size, 1);
	}
}

static void
age_text(time_t age, char *buf, size_t size)
{
	if (age < 0)
		age = 0;
	if (age < 120)
		snprintf(buf, size, "%llds", (long long)age);
	else if (age < 7200)
		snprintf(buf, size, "%lldm", (long long)age / 60);
	else if (age < 172800)
		snprintf(buf, size, "%lldh", (long long)age / 3600);
	else
		snprintf(buf, size, "%lldd", (long long)age / 86400);
}

/*
 * Read one message of dir for list or show, as a worker: a qmsg of our
 * own (never the scheduler's) with its envelope and state.  -1 when it
 * is not there or damaged.
 */
static int
ctl_load(struct qmsg *m, const char *dir, const char *qid)
{
	char	path[128];

	memset(m, 0, sizeof(*m));
	m->fd = -1;
	strlcpy(m->qid, qid, sizeof(m->qid));
	snprintf(path, sizeof(path), "%s/%s", dir, qid);
	if ((m->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (queue_envelope_read(m->fd, &m->env, qid) == -1) {
		close(m->fd);
		envelope_clear(&m->env);
		return -1;
	}
	m->ts = xcalloc(m->env.ntargets ? m->env.ntargets : 1,
	    sizeof(*m->ts));
	state_read(m);
	return 0;
}

static void
ctl_unload(struct qmsg *m)
{
	close(m->fd);
	envelope_clear(&m->env);
	free(m->ts);
}

static const char *
tstate_name(enum tstate t)
{
	return t == T_DONE ? "delivered" : t == T_FAILED ? "failed" :
	    "pending";
}

/* One message of the list: its line, then each target not done. */
static void
list_one(struct ctl_job *j, bool held, const char *dir, const char *qid,
    time_t now, uint64_t *total)
{
	struct qmsg	 m;
	char		 age[32];
	size_t		 i, left = 0;

	if (ctl_load(&m, dir, qid) == -1)
		return;
	for (i = 0; i < m.env.ntargets; i++)
		if (m.ts[i].state == T_PENDING)
			left++;
	age_text(now - m.env.time, age, sizeof(age));
	out_add(j, "%-16s %5s %9" PRIu64 " %-8s <%s>\n", qid, age,
	    m.env.msglen, held ? "hold" :
	    m.attempts > 0 ? "deferred" : "queued", m.env.from);
	for (i = 0; i < m.env.ntargets; i++) {
		const struct tstat *ts = &m.ts[i];

		if (ts->state != T_PENDING)
			continue;
		out_add(j, "    <%s>%s%s%s\n", m.env.targets[i].rcpt,
		    ts->text[0] ? " (" : "", ts->text, ts->text[0] ? ")" : "");
	}
	*total += m.env.msglen;
	ctl_unload(&m);
}

static int
qid_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
list_work(void *arg)
{
	static const char *const dirs[] = { DIR_QUEUE, DIR_HOLD };
	struct ctl_job	*j = arg;
	struct dirent	*de;
	DIR		*d;
	char		**ids = NULL;
	size_t		 n = 0, cap = 0, i, k, count = 0;
	uint64_t	 total = 0;
	time_t		 now = time(NULL);

	out_add(j, "ok\n");
	for (k = 0; k < 2; k++) {
		if ((d = opendir(dirs[k])) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (strlen(de->d_name) != QID_LEN ||
			    de->d_name[0] == '.')
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				ids = xreallocarray(ids, cap, sizeof(*ids));
			}
			ids[n++] = xstrdup(de->d_name);
		}
		closedir(d);
		if (n > 0)
			qsort(ids, n, sizeof(*ids), qid_cmp);
		for (i = 0; i < n; i++) {
			size_t before = j->len;

			list_one(j, k == 1, dirs[k], ids[i], now, &total);
			if (j->len != before)
				count++;
			free(ids[i]);
		}
		n = 0;
	}
	free(ids);
	if (count == 0)
		out_add(j, "Mail queue is empty\n");
	else
		out_add(j, "-- %zu message%s, %" PRIu64 " octets\n", count,
		    count == 1 ? "" : "s", total);
}

static void
show_work(void *arg)
{
	struct ctl_job	*j = arg;
	struct qmsg	 m;
	bool		 held = false;
	char		*head, age[32];
	size_t		 i, hlen;
	ssize_t		 got;

	if (ctl_load(&m, DIR_QUEUE, j->qid) == -1 &&
	    (held = true, ctl_load(&m, DIR_HOLD, j->qid) == -1)) {
		out_add(j, "error no message %s in the queue\n", j->qid);
		return;
	}
	age_text(time(NULL) - m.env.time, age, sizeof(age));
	out_add(j, "ok\n");
	out_add(j, "queue id: %s\n", j->qid);
	out_add(j, "state: %s\n", held ? "hold" : m.attempts > 0 ?
	    "deferred" : "queued");
	out_add(j, "age: %s\n", age);
	out_add(j, "size: %" PRIu64 "\n", m.env.msglen);
	out_add(j, "sender: <%s>\n", m.env.from);
	out_add(j, "client: %s (%s, %s)\n", m.env.client, m.env.helo,
	    m.env.proto);
	out_add(j, "attempts: %u\n", m.attempts);
	for (i = 0; i < m.env.ntargets; i++) {
		const struct tstat *ts = &m.ts[i];

		out_add(j, "recipient: <%s> %s%s%s%s%s\n",
		    m.env.targets[i].rcpt, tstate_name(ts->state),
		    ts->status[0] ? " " : "", ts->status,
		    ts->text[0] ? ": " : "", ts->text);
	}
	hlen = m.env.msglen < HEADERS_MAX ? (size_t)m.env.msglen : HEADERS_MAX;
	head = xmalloc(hlen + 1);
	got = pread(m.fd, head, hlen, 0);
	hlen = got > 0 ? dsn_header_length(head, (size_t)got) : 0;
	out_add(j, "\n");
	for (i = 0; i < hlen; i++)
		if (head[i] != '\r')
			out_add(j, "%c", (head[i] >= 0x20 || head[i] == '\n' ||
			    head[i] == '\t') && head[i] != 0x7f ? head[i] : '?');
	if (hlen > 0 && head[hlen - 1] != '\n')
		out_add(j, "\n");
	free(head);
	ctl_unload(&m);
}

static void
ctl_done(void *arg)
{
	struct ctl_job	*j = arg;

	j->cb(j->arg, j->out, j->len);
	free(j->out);
	free(j);
}

static void
reply_now(sched_reply_cb cb, void *arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
reply_now(sched_reply_cb cb, void *arg, const char *fmt, ...)
{
	char	buf[512];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cb(arg, buf, n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n :
	    sizeof(buf) - 1);
}

/* Take m off its timer or the ready list: nothing will start it. */
static void
unschedule(struct qmsg *m)
{
	struct qmsg	**mp;

	evtimer_del(m->timer);
	if (!m->ready)
		return;
	for (mp = &m->s->ready; *mp != NULL; mp = &(*mp)->next)
		if (*mp == m) {
			*mp = m->next;
			if (*mp == NULL)
				m->s->ready_tail = mp;
			break;
		}
	m->ready = false;
}

static void
flush_one(struct qmsg *m)
{
	if (m->busy || m->ready)
		return;
	unschedule(m);
	retry_timer(-1, 0, m);
}

static int
move_file(const char *from_dir, const char *to_dir, const char *qid)
{
	char	from[128], to[128];

	snprintf(from, sizeof(from), "%s/%s", from_dir, qid);
	snprintf(to, sizeof(to), "%s/%s", to_dir, qid);
	if (rename(from, to) == -1)
		return -1;
	return fsio_fsync_dir(to_dir) == -1 || fsio_fsync_dir(from_dir) == -1 ?
	    -1 : 0;
}

void
sched_control(struct sched *s, const char *verb, const char *qid,
    sched_reply_cb cb, void *arg)
{
	struct ctl_job	*j;
	struct qmsg	*m = NULL, *next;
	char		 path[64];
	size_t		 i, n = 0;

	if (strcmp(verb, "list") == 0 || strcmp(verb, "show") == 0) {
		if (verb[0] == 's' && (strlen(qid) != QID_LEN ||
		    strspn(qid, "0123456789ABCDEF") != QID_LEN)) {
			reply_now(cb, arg, "error '%s' is not a queue id\n",
			    qid);
			return;
		}
		j = xcalloc(1, sizeof(*j));
		j->s = s;
		strlcpy(j->qid, qid, sizeof(j->qid));
		j->size = 4096;
		j->out = xmalloc(j->size);
		j->cb = cb;
		j->arg = arg;
		pool_run(s->pool, verb[0] == 'l' ? list_work : show_work,
		    ctl_done, j);
		return;
	}
	if (strcmp(verb, "flush") == 0 && qid[0] == '\0') {
		for (i = 0; i < MSG_BUCKETS; i++)
			for (m = s->msgs[i]; m != NULL; m = next) {
				next = m->hnext;
				if (!m->busy && !m->ready) {
					flush_one(m);
					n++;
				}
			}
		log_info("queue event=flush messages=%zu", n);
		reply_now(cb, arg, "ok\n%zu message%s scheduled now\n", n,
		    n == 1 ? "" : "s");
		return;
	}
	if (strlen(qid) != QID_LEN || strspn(qid, "0123456789ABCDEF") !=
	    QID_LEN) {
		reply_now(cb, arg, "error '%s' is not a queue id\n", qid);
		return;
	}
	m = *msg_slot(s, qid);
	if (strcmp(verb, "release") == 0) {
		if (m != NULL || move_file(DIR_HOLD, DIR_QUEUE, qid) == -1) {
			reply_now(cb, arg, "error no message %s on hold\n",
			    qid);
			return;
		}
		log_info("queue qid=%s event=released", qid);
		sched_add(s, qid);
		reply_now(cb, arg, "ok\n%s released\n", qid);
		return;
	}
	if (m == NULL) {
		snprintf(path, sizeof(path), DIR_HOLD "/%s", qid);
		if (strcmp(verb, "delete") == 0 && unlink(path) == 0) {
			snprintf(path, sizeof(path), DIR_DEFERRED "/%s", qid);
			unlink(path);
			log_info("queue qid=%s event=deleted", qid);
			reply_now(cb, arg, "ok\n%s deleted\n", qid);
			return;
		}
		reply_now(cb, arg, "error no message %s in the queue%s\n", qid,
		    access(path, F_OK) == 0 ? " (it is on hold: release it "
		    "first)" : "");
		return;
	}
	if (m->busy) {
		reply_now(cb, arg, "error %s is being delivered; try again\n",
		    qid);
		return;
	}
	if (strcmp(verb, "flush") == 0) {
		flush_one(m);
		log_info("queue qid=%s event=flush", qid);
		reply_now(cb, arg, "ok\n%s scheduled now\n", qid);
	} else if (strcmp(verb, "hold") == 0) {
		if (move_file(DIR_QUEUE, DIR_HOLD, qid) == -1) {
			reply_now(cb, arg, "error %s: %s\n", qid,
			    strerror(errno));
			return;
		}
		unschedule(m);
		msg_free(m);
		log_info("queue qid=%s event=hold", qid);
		reply_now(cb, arg, "ok\n%s on hold\n", qid);
	} else if (strcmp(verb, "delete") == 0) {
		snprintf(path, sizeof(path), DIR_QUEUE "/%s", qid);
		if (unlink(path) == -1) {
			reply_now(cb, arg, "error %s: %s\n", qid,
			    strerror(errno));
			return;
		}
		fsio_fsync_dir(DIR_QUEUE);
		snprintf(path, sizeof(path), DIR_DEFERRED "/%s", qid);
		unlink(path);
		unschedule(m);
		msg_free(m);
		log_info("queue qid=%s event=deleted", qid);
		reply_now(cb, arg, "ok\n%s deleted\n", qid);
	} else if (strcmp(verb, "bounce") == 0) {
		m->bounce_now = true;
		flush_one(m);
		log_info("queue qid=%s event=bounce-requested", qid);
		reply_now(cb, arg, "ok\n%s returned to its sender\n", qid);
	} else
		reply_now(cb, arg, "error unknown queue command '%s'\n", verb);
}

/*
 * pickup.c - take the drop files sendmail(1) leaves in maildrop/ into
 * the queue, one at a time, in the store role.
 *
 * Any local user can write a drop file, so nothing in it is trusted:
 * the file must be a regular file with one link, opened without
 * following a symbolic link; its envelope is parsed by maildrop_parse
 * with fixed bounds; every recipient is resolved again; the submitter
 * named in the Received header is the file's owner, not what the file
 * claims.  A file that cannot be taken is renamed ".bad.<name>" for the
 * administrator and logged.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "conf.h"
#include "fsio.h"
#include "log.h"
#include "maildrop.h"
#include "pickup.h"
#include "queue.h"
#include "xalloc.h"

static struct {
	struct queue		*queue;
	const struct conf	*conf;
	struct event		*timer;
	bool			 busy;
	char			 name[MAILDROP_NAME_LEN + 1];
} pk;

static void	pickup_scan(evutil_socket_t, short, void *);

static void
pickup_again(bool now)
{
	struct timeval	tv = { now ? 0 : 1, 0 };

	evtimer_add(pk.timer, &tv);
}

static void
set_aside(const char *name, const char *why)
{
	char	from[300], bad[300];

	snprintf(from, sizeof(from), MAILDROP_DIR "/%s", name);
	snprintf(bad, sizeof(bad), MAILDROP_DIR "/.bad.%s", name);
	log_err("pickup file=%s event=refused reason=\"%s\" moved-to=%s",
	    name, why, bad);
	if (rename(from, bad) == -1)
		unlink(from);
}

static void
committed(void *arg, enum commit_status status)
{
	char	path[300];

	pk.busy = false;
	snprintf(path, sizeof(path), MAILDROP_DIR "/%s", pk.name);
	if (status == COMMIT_OK)
		unlink(path);
	else
		log_warn("pickup file=%s event=deferred reason=commit",
		    pk.name);
	pickup_again(status == COMMIT_OK);
}

/* The trace field: who submitted, as the kernel says. */
static int
write_received(int fd, const char *qid, uid_t uid, size_t *len_r)
{
	struct passwd	*pw = getpwuid(uid);
	char		 buf[512], date[64];
	time_t		 now = time(NULL);
	struct tm	 tm;
	int		 n;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	n = snprintf(buf, sizeof(buf), "Received: by %s (postino sendmail, "
	    "uid %u%s%s)\r\n\tid %s; %s\r\n", pk.conf->hostname,
	    (unsigned int)uid, pw ? " " : "", pw ? pw->pw_name : "", qid,
	    date);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	*len_r = (size_t)n;
	return fsio_write_all(fd, buf, (size_t)n);
}

/* Resolve every recipient; -1 on a temporary failure. */
static int
add_recipients(struct envelope *env, const struct maildrop_env *md)
{
	char	given[ADDR_PATH_MAX + 1], esc[sizeof(given) * 4];
	size_t	i;

	for (i = 0; i < md->nrcpts; i++) {
		addr_format(&md->rcpts[i], given, sizeof(given));
		switch (store_envelope_add(env, &md->rcpts[i], given)) {
		case DB_RCPT_OK:
		case DB_RCPT_NOT_LOCAL:
			break;
		case DB_RCPT_UNKNOWN:
			/* XXX a bounce, once bounces exist */
			log_err("pickup file=%s event=rcpt-dropped to=<%s> "
			    "reason=\"user unknown\"", pk.name,
			    log_escape(given, strlen(given), esc, sizeof(esc)));
			break;
		case DB_RCPT_TEMPFAIL:
			return -1;
		default:
			panic("pickup: lookup result");
		}
	}
	return 0;
}

/* Queue one drop file; returns true when a commit is under way. */
static bool
take(const char *name, int fd, const struct stat *sb)
{
	struct maildrop_env	*md = xcalloc(1, sizeof(*md));
	struct envelope		 env;
	uint8_t			*head;
	const char		*errstr = "unreadable";
	char			 esc[sizeof(env.from) * 4];
	size_t			 hlen, body_off, rlen;
	int			 sfd = -1;
	bool			 ok = false;

	memset(&env, 0, sizeof(env));
	hlen = (size_t)sb->st_size < MAILDROP_ENV_MAX ? (size_t)sb->st_size :
	    MAILDROP_ENV_MAX;
	head = xmalloc(hlen ? hlen : 1);
	if (pread(fd, head, hlen, 0) != (ssize_t)hlen ||
	    maildrop_parse(head, hlen, md, &body_off, &errstr) == -1) {
		set_aside(name, errstr);
		goto out;
	}
	if ((uint64_t)sb->st_size - body_off > pk.conf->smtp.max_message_size) {
		set_aside(name, "message size exceeds fixed limit");
		goto out;
	}
	if (queue_spool_open(pk.queue, env.qid, &sfd) == -1)
		goto out;
	if (write_received(sfd, env.qid, sb->st_uid, &rlen) == -1 ||
	    fsio_copy(fd, (off_t)body_off, sb->st_size - (off_t)body_off,
	    sfd) == -1 ||
	    add_recipients(&env, md) == -1) {
		queue_spool_abort(pk.queue, env.qid);
		goto out;
	}
	if (env.ntargets == 0) {
		queue_spool_abort(pk.queue, env.qid);
		set_aside(name, "no valid recipient");
		goto out;
	}
	envelope_dedupe(&env);
	env.msglen = rlen + (uint64_t)sb->st_size - body_off;
	env.time = time(NULL);
	strlcpy(env.helo, "localhost", sizeof(env.helo));
	strlcpy(env.client, "local", sizeof(env.client));
	strlcpy(env.proto, "LOCAL", sizeof(env.proto));
	addr_format(&md->sender, env.from, sizeof(env.from));
	env.smtputf8 = md->utf8;
	log_info("pickup file=%s event=queued qid=%s uid=%u from=<%s> "
	    "ntargets=%zu", name, env.qid, (unsigned int)sb->st_uid,
	    log_escape(env.from, strlen(env.from), esc, sizeof(esc)),
	    env.ntargets);
	strlcpy(pk.name, name, sizeof(pk.name));
	pk.busy = true;
	queue_spool_commit(pk.queue, &env, committed, NULL);
	ok = true;
out:
	if (sfd != -1)
		close(sfd);
	envelope_clear(&env);
	free(head);
	free(md);
	return ok;
}

static bool
try_file(const char *name)
{
	char		path[300];
	struct stat	sb;
	int		fd;
	bool		r;

	snprintf(path, sizeof(path), MAILDROP_DIR "/%s", name);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		if (errno != ENOENT)
			set_aside(name, "cannot be opened");
		return false;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
		close(fd);
		set_aside(name, "not a plain file");
		return false;
	}
	r = take(name, fd, &sb);
	close(fd);
	return r;
}

static void
pickup_scan(evutil_socket_t fd, short ev, void *arg)
{
	DIR		*d;
	struct dirent	*de;

	if (pk.busy)
		return;
	if ((d = opendir(MAILDROP_DIR)) == NULL) {
		log_err("pickup event=error error=\"%s\"", strerror(errno));
		pickup_again(false);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (maildrop_name_valid(de->d_name) && try_file(de->d_name))
			break;
	closedir(d);
	if (!pk.busy)
		pickup_again(false);
}

void
pickup_reconf(const struct conf *conf)
{
	pk.conf = conf;
}

void
pickup_start(struct event_base *base, struct queue *q,
    const struct conf *conf)
{
	pk.queue = q;
	pk.conf = conf;
	if (mkdir(MAILDROP_DIR, 01733) == -1 && errno != EEXIST)
		fatal("mkdir " MAILDROP_DIR);
	if (chmod(MAILDROP_DIR, 01733) == -1)
		fatal("chmod " MAILDROP_DIR);
	pk.timer = evtimer_new(base, pickup_scan, NULL);
	pickup_again(true);
}

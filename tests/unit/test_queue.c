/*
 * test_queue.c - the commit into spool/queue, alone and in a group
 * (group commit: commits that come together share directory fsyncs).
 *
 * Runs in a temporary directory on the disk /tmp is on: the sharing
 * only happens when an fsync takes time.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "fsio.h"
#include "pool.h"
#include "queue.h"
#include "test.h"

#define GROUP	64

static struct event_base	*base;
static struct queue		*q;
static unsigned int		 ncb, nok, nadded;

static void
committed(void *arg, enum commit_status status)
{
	ncb++;
	if (status == COMMIT_OK)
		nok++;
}

static void
added(void *arg, const char *qid)
{
	nadded++;
}

/* Open a spool file, write msglen octets into it; the envelope's qid. */
static void
spool(struct envelope *env, size_t msglen)
{
	struct env_target	*t;
	char			 msg[2048];
	int			 fd;

	memset(env, 0, sizeof(*env));
	CHECK_INT(queue_spool_open(q, env->qid, &fd), 0);
	memset(msg, 'x', sizeof(msg));
	CHECK_INT(fsio_write_all(fd, msg, msglen), 0);
	close(fd);
	env->msglen = msglen;
	env->time = time(NULL);
	strcpy(env->from, "sender@example.org");
	t = envelope_add_target(env);
	t->local = true;
	strcpy(t->domain, "example.test");
	strcpy(t->local_part, "demo");
	strcpy(t->rcpt, "demo@example.test");
}

/* Run the loop until n callbacks in all (at most 30 s). */
static void
wait_callbacks(unsigned int n)
{
	time_t	end = time(NULL) + 30;

	while (ncb < n && time(NULL) < end)
		event_base_loop(base, EVLOOP_ONCE);
	CHECK_INT(ncb, n);
}

static unsigned int
count_files(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	unsigned int	 n = 0;

	if ((d = opendir(dir)) == NULL)
		return 9999;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* A committed file reads back: message, envelope, trailer. */
static void
check_queued(const char *qid, uint64_t msglen)
{
	struct envelope	env;
	char		path[64];
	int		fd;

	snprintf(path, sizeof(path), "spool/queue/%s", qid);
	CHECK((fd = open(path, O_RDONLY)) != -1);
	memset(&env, 0, sizeof(env));
	CHECK_INT(queue_envelope_read(fd, &env, qid), 0);
	CHECK_INT(env.msglen, msglen);
	CHECK_INT(env.ntargets, 1);
	CHECK_STR(env.from, "sender@example.org");
	envelope_clear(&env);
	close(fd);
}

/* Alone, a commit syncs the directory itself: one fsync, one commit. */
static void
test_lone(void)
{
	struct envelope	env;
	char		qid[QID_LEN + 1];
	uint64_t	c0, s0, c1, s1;

	queue_counts(q, &c0, &s0);
	ncb = nok = nadded = 0;
	spool(&env, 1000);
	strcpy(qid, env.qid);
	queue_spool_commit(q, &env, committed, NULL);
	wait_callbacks(1);
	CHECK_INT(nok, 1);
	CHECK_INT(nadded, 1);
	queue_counts(q, &c1, &s1);
	CHECK_INT(c1 - c0, 1);
	CHECK_INT(s1 - s0, 1);
	check_queued(qid, 1000);
	CHECK_INT(count_files("spool/incoming"), 0);
}

/* GROUP commits made together: all succeed; the directory fsyncs
 * they took. */
static uint64_t
group_round(void)
{
	struct envelope	env;
	char		qids[GROUP][QID_LEN + 1];
	uint64_t	c0, s0, c1, s1;
	int		i;

	queue_counts(q, &c0, &s0);
	ncb = nok = nadded = 0;
	for (i = 0; i < GROUP; i++) {
		spool(&env, 100 + i);
		strcpy(qids[i], env.qid);
		queue_spool_commit(q, &env, committed, NULL);
	}
	wait_callbacks(GROUP);
	CHECK_INT(nok, GROUP);
	CHECK_INT(nadded, GROUP);
	queue_counts(q, &c1, &s1);
	CHECK_INT(c1 - c0, GROUP);
	CHECK(s1 - s0 >= 1 && s1 - s0 <= GROUP);
	for (i = 0; i < GROUP; i++)
		check_queued(qids[i], 100 + i);
	CHECK_INT(count_files("spool/incoming"), 0);
	return s1 - s0;
}

/*
 * Commits made together share directory fsyncs.  Whether two overlap
 * depends on the disk's timing (a fast fsync may end before the next
 * rename), so a few rounds are allowed; without group commit every
 * round takes GROUP fsyncs.
 */
static void
test_group(void)
{
	uint64_t	syncs = GROUP;
	int		round;

	for (round = 0; round < 10 && syncs == GROUP; round++) {
		syncs = group_round();
		printf("  %d commits, %llu directory fsyncs\n", GROUP,
		    (unsigned long long)syncs);
	}
	CHECK(syncs < GROUP);
}

/* A file shorter than announced is refused and removed; nothing is
 * queued, and the commits around it are not disturbed. */
static void
test_refused(void)
{
	struct envelope	env;
	char		qid[QID_LEN + 1];
	unsigned int	before = count_files("spool/queue");

	ncb = nok = nadded = 0;
	spool(&env, 500);
	strcpy(qid, env.qid);
	env.msglen = 501;
	queue_spool_commit(q, &env, committed, NULL);
	spool(&env, 200);
	queue_spool_commit(q, &env, committed, NULL);
	wait_callbacks(2);
	CHECK_INT(nok, 1);
	CHECK_INT(nadded, 1);
	CHECK_INT(count_files("spool/queue"), before + 1);
	CHECK_INT(count_files("spool/incoming"), 0);

	/* An id that is not open: refused at once, on the caller's stack. */
	ncb = nok = 0;
	memset(&env, 0, sizeof(env));
	strcpy(env.qid, qid);
	queue_spool_commit(q, &env, committed, NULL);
	CHECK_INT(ncb, 1);
	CHECK_INT(nok, 0);
}

int
main(void)
{
	char	dir[] = "/tmp/postino-queue-XXXXXX";
	char	cmd[64];

	if (mkdtemp(dir) == NULL || chdir(dir) == -1) {
		perror(dir);
		return 1;
	}
	base = event_base_new();
	q = queue_open(base, pool_new(base, 8), NULL);
	queue_set_added(q, added, NULL);
	RUN(test_lone);
	RUN(test_group);
	RUN(test_refused);
	if (chdir("/") == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			printf("  cannot remove %s\n", dir);
	}
	return test_done();
}

/*
 * test_queue.c - the commit into spool/queue, alone and in a group
 * (group commit: commits that come together share directory fsyncs),
 * and delivery at commit: local targets linked into their new/.
 *
 * Runs in a temporary directory on the disk /tmp is on: the sharing
 * only happens when an fsync takes time.
 */
#include <sys/stat.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "dirsync.h"
#include "envelope.h"
#include "fsio.h"
#include "pool.h"
#include "queue.h"
#include "test.h"

#define GROUP	64

static struct event_base	*base;
static struct queue		*q;
static unsigned int		 ncb, nok, nadded, ndelivered;

#define DEMO_NEW	"mail/example.test/demo/new"

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

static void
delivered(void *arg, const struct envelope *env)
{
	ndelivered += (unsigned int)env->ntargets;
}

static void
add_target(struct envelope *env, const char *local_part)
{
	struct env_target	*t = envelope_add_target(env);

	t->local = true;
	strcpy(t->domain, "example.test");
	strcpy(t->local_part, local_part);
	snprintf(t->rcpt, sizeof(t->rcpt), "%s@example.test", local_part);
}

/* Open a spool file, write msglen octets into it; the envelope's qid. */
static void
spool(struct envelope *env, size_t msglen)
{
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
	add_target(env, "demo");
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

/* A committed file reads back: message, envelope, trailer. */
static void
check_queued(const char *qid, uint64_t msglen, size_t ntargets)
{
	struct envelope	env;
	char		path[64];
	int		fd;

	snprintf(path, sizeof(path), "spool/queue/%s", qid);
	CHECK((fd = open(path, O_RDONLY)) != -1);
	memset(&env, 0, sizeof(env));
	CHECK_INT(queue_envelope_read(fd, &env, qid), 0);
	CHECK_INT(env.msglen, msglen);
	CHECK_INT(env.ntargets, ntargets);
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
	check_queued(qid, 1000, 1);
	CHECK_INT(test_count_files("spool/incoming"), 0);
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
		check_queued(qids[i], 100 + i, 1);
	CHECK_INT(test_count_files("spool/incoming"), 0);
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
	unsigned int	before = test_count_files("spool/queue");

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
	CHECK_INT(test_count_files("spool/queue"), before + 1);
	CHECK_INT(test_count_files("spool/incoming"), 0);

	/* An id that is not open: refused at once, on the caller's stack. */
	ncb = nok = 0;
	memset(&env, 0, sizeof(env));
	strcpy(env.qid, qid);
	queue_spool_commit(q, &env, committed, NULL);
	CHECK_INT(ncb, 1);
	CHECK_INT(nok, 0);
}

/* The file delivered for target index of a message: its size and
 * inode, or -1 when it is not in new/. */
static off_t
delivered_file(const char *box, const struct envelope *env, size_t index,
    ino_t *ino_r, nlink_t *nlink_r)
{
	char		path[512];
	struct stat	sb;

	snprintf(path, sizeof(path), "mail/example.test/%s/new/%lld.Q%sR%zu."
	    "mx.example.test,S=%llu", box, (long long)env->time, env->qid,
	    index, (unsigned long long)env->msglen);
	if (stat(path, &sb) == -1)
		return -1;
	if (ino_r != NULL)
		*ino_r = sb.st_ino;
	if (nlink_r != NULL)
		*nlink_r = sb.st_nlink;
	return sb.st_size;
}

/* Commit a message of len octets to demo (and to second); the
 * callbacks it gave: queued (added) or delivered at commit. */
static void
commit_one(struct envelope *kept, size_t len, const char *second,
    unsigned int added, unsigned int ndeliv)
{
	struct envelope	env;

	ncb = nok = nadded = ndelivered = 0;
	spool(&env, len);
	if (second != NULL)
		add_target(&env, second);
	*kept = env;		/* its qid, time and length, not its targets */
	queue_spool_commit(q, &env, committed, NULL);
	wait_callbacks(1);
	CHECK_INT(nok, 1);
	CHECK_INT(nadded, added);
	CHECK_INT(ndelivered, ndeliv);
}

/*
 * Delivered at commit: one local target gets the very file (one link,
 * no copy), nothing is queued, and the incoming name is gone.
 */
static void
test_direct(void)
{
	struct envelope	kept;
	unsigned int	queued = test_count_files("spool/queue");
	nlink_t		nlink;

	queue_set_delivered(q, "mx.example.test", delivered, NULL);
	commit_one(&kept, 1000, NULL, 0, 1);
	/* new/ was synced (the box was new: by the delivery itself) */
	CHECK(dirsync_count(queue_dirsync(q), DEMO_NEW) >= 1);
	CHECK_INT(delivered_file("demo", &kept, 0, NULL, &nlink), 1000);
	CHECK_INT(nlink, 1);
	CHECK_INT(test_count_files(DEMO_NEW), 1);
	CHECK_INT(test_count_files("mail/example.test/demo/tmp"), 0);
	CHECK_INT(test_count_files("spool/queue"), queued);
	CHECK_INT(test_count_files("spool/incoming"), 0);
}

/* Two local targets: one file, linked into both boxes (the second box
 * made on first use). */
static void
test_direct_two(void)
{
	struct envelope	kept;
	ino_t		ino1, ino2;
	nlink_t		nlink;

	commit_one(&kept, 300, "other", 0, 2);
	CHECK_INT(delivered_file("demo", &kept, 0, &ino1, &nlink), 300);
	CHECK_INT(nlink, 2);
	CHECK_INT(delivered_file("other", &kept, 1, &ino2, NULL), 300);
	CHECK(ino1 == ino2);
	CHECK_INT(test_count_files("spool/incoming"), 0);
}

/*
 * A target delivery would refuse (an unusable mailbox name): no link
 * is made, not even for the first target, and the message is queued
 * whole, for delivery to say what fails.
 */
static void
test_direct_fallback(void)
{
	struct envelope	kept;
	unsigned int	before = test_count_files(DEMO_NEW);

	commit_one(&kept, 400, ".hidden", 1, 0);
	CHECK_INT(delivered_file("demo", &kept, 0, NULL, NULL), -1);
	CHECK_INT(test_count_files(DEMO_NEW), before);
	CHECK_INT(test_count_files("spool/incoming"), 0);
	check_queued(kept.qid, 400, 2);
}

/* GROUP deliveries at commit into one box share fsyncs of its new/. */
static void
test_direct_group(void)
{
	struct envelope	env;
	uint64_t	s0, syncs = GROUP;
	unsigned int	before;
	int		i, round;

	for (round = 0; round < 10 && syncs == GROUP; round++) {
		before = test_count_files(DEMO_NEW);
		s0 = dirsync_count(queue_dirsync(q), DEMO_NEW);
		ncb = nok = nadded = ndelivered = 0;
		for (i = 0; i < GROUP; i++) {
			spool(&env, 100 + i);
			queue_spool_commit(q, &env, committed, NULL);
		}
		wait_callbacks(GROUP);
		CHECK_INT(nok, GROUP);
		CHECK_INT(ndelivered, GROUP);
		CHECK_INT(nadded, 0);
		CHECK_INT(test_count_files(DEMO_NEW), before + GROUP);
		syncs = dirsync_count(queue_dirsync(q), DEMO_NEW) - s0;
		printf("  %d deliveries at commit, %llu fsyncs of new/\n",
		    GROUP, (unsigned long long)syncs);
	}
	CHECK(syncs >= 1 && syncs < GROUP);
	CHECK_INT(test_count_files("spool/incoming"), 0);
}

/* The inode of a spool file. */
static ino_t
inode_of(const char *dir, const char *qid)
{
	char		path[64];
	struct stat	sb;

	snprintf(path, sizeof(path), "%s/%s", dir, qid);
	return stat(path, &sb) == 0 ? sb.st_ino : 0;
}

/*
 * The first target linked, the second not (its new/ is a file): the
 * link is taken back, and the message is queued in a copy, so that a
 * reader who opened the linked file never sees an envelope appended.
 */
static void
test_direct_partial(void)
{
	struct envelope	env, kept;
	ino_t		incoming;
	unsigned int	before = test_count_files(DEMO_NEW);
	int		fd;

	CHECK_INT(fsio_mkdirs("mail/example.test/nolink/tmp", 0700), 0);
	CHECK((fd = open("mail/example.test/nolink/new", O_WRONLY | O_CREAT,
	    0600)) != -1);
	close(fd);
	ncb = nok = nadded = ndelivered = 0;
	spool(&env, 600);
	add_target(&env, "nolink");
	kept = env;
	incoming = inode_of("spool/incoming", env.qid);
	CHECK(incoming != 0);
	queue_spool_commit(q, &env, committed, NULL);
	wait_callbacks(1);
	CHECK_INT(nok, 1);
	CHECK_INT(nadded, 1);
	CHECK_INT(ndelivered, 0);
	CHECK_INT(test_count_files(DEMO_NEW), before);
	CHECK(inode_of("spool/queue", kept.qid) != 0);
	CHECK(inode_of("spool/queue", kept.qid) != incoming);
	CHECK_INT(test_count_files("spool/incoming"), 0);
	check_queued(kept.qid, 600, 2);
}

/*
 * A mailbox on another file system (mail/xdev.test a link to /dev/shm):
 * the message is queued, and delivery at commit is off for the next
 * ones until a reload.  Skipped where /dev/shm is this file system.
 */
static void
test_direct_xdev(void)
{
	char		shm[] = "/dev/shm/postino-queue-XXXXXX";
	struct stat	a, b;
	struct envelope	env;
	struct conf	*c = NULL;
	char		err[256];
	static const char text[] = "[listener mx]\nlisten = 127.0.0.1:2525\n"
	    "profile = mx\n";

	if (stat(".", &a) == -1 || stat("/dev/shm", &b) == -1 ||
	    a.st_dev == b.st_dev || mkdtemp(shm) == NULL) {
		printf("  skipped: no /dev/shm on another file system\n");
		return;
	}
	CHECK_INT(symlink(shm, "mail/xdev.test"), 0);
	ncb = nok = nadded = ndelivered = 0;
	spool(&env, 100);
	strcpy(env.targets[0].domain, "xdev.test");
	queue_spool_commit(q, &env, committed, NULL);
	wait_callbacks(1);
	CHECK_INT(nadded, 1);
	CHECK_INT(ndelivered, 0);
	/* off: the next local message is queued without a try */
	spool(&env, 100);
	queue_spool_commit(q, &env, committed, NULL);
	wait_callbacks(2);
	CHECK_INT(nadded, 2);
	CHECK_INT(ndelivered, 0);
	/* a reload tries again */
	CHECK_INT(conf_parse("t.conf", text, sizeof(text) - 1, &c, err,
	    sizeof(err)), 0);
	if (c != NULL) {
		queue_reconf(q, c);
		conf_free(&c);
	}
	spool(&env, 100);
	queue_spool_commit(q, &env, committed, NULL);
	wait_callbacks(3);
	CHECK_INT(nok, 3);
	CHECK_INT(ndelivered, 1);
	unlink("mail/xdev.test");
	test_rmtree(shm);
}

/* With [delivery] lmtp the local targets are the LMTP server's: the
 * message is queued. */
static void
test_direct_lmtp(void)
{
	static const char text[] = "[listener mx]\nlisten = 127.0.0.1:2525\n"
	    "profile = mx\n[delivery]\nlmtp = unix:/run/lmtp\n";
	struct conf	*c = NULL;
	struct envelope	env;
	char		err[256];

	if (conf_parse("t.conf", text, sizeof(text) - 1, &c, err,
	    sizeof(err)) == -1) {
		printf("  %s\n", err);
		CHECK(0);
		return;
	}
	queue_reconf(q, c);
	ncb = nok = nadded = ndelivered = 0;
	spool(&env, 100);
	queue_spool_commit(q, &env, committed, NULL);
	wait_callbacks(1);
	CHECK_INT(nok, 1);
	CHECK_INT(nadded, 1);
	CHECK_INT(ndelivered, 0);
	conf_free(&c);
}

int
main(void)
{
	char	dir[] = "/tmp/postino-queue-XXXXXX";

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
	RUN(test_direct);
	RUN(test_direct_two);
	RUN(test_direct_fallback);
	RUN(test_direct_group);
	RUN(test_direct_partial);
	RUN(test_direct_xdev);
	RUN(test_direct_lmtp);
	if (chdir("/") == 0)
		test_rmtree(dir);
	return test_done();
}

/*
 * test_maildir.c - delivery into a Maildir: the box made on first use,
 * exactly once per name, and the directory the caller must fsync.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"
#include "test.h"

static char	top[] = "/tmp/postino-maildir-XXXXXX";
static int	msgfd = -1;

static off_t
file_size(const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The first delivery makes the box; the same name again is a no-op
 * that still names new/ for the fsync. */
static void
test_deliver_once(void)
{
	char	sync[PATH_MAX];

	strcpy(sync, "unset");
	CHECK_INT(maildir_deliver("mail", "example.test", "demo", "1.Q1R0.h",
	    msgfd, 5, sync, sizeof(sync)), 0);
	CHECK_STR(sync, "mail/example.test/demo/new");
	CHECK_INT(file_size("mail/example.test/demo/new/1.Q1R0.h"), 5);
	CHECK_INT(test_count_files("mail/example.test/demo/tmp"), 0);
	CHECK_INT(test_count_files("mail/example.test/demo/cur"), 0);

	/* a leftover tmp file of a crash is removed, nothing added */
	close(open("mail/example.test/demo/tmp/1.Q1R0.h",
	    O_WRONLY | O_CREAT, 0600));
	strcpy(sync, "unset");
	CHECK_INT(maildir_deliver("mail", "example.test", "demo", "1.Q1R0.h",
	    msgfd, 5, sync, sizeof(sync)), 0);
	CHECK_STR(sync, "mail/example.test/demo/new");
	CHECK_INT(test_count_files("mail/example.test/demo/new"), 1);
	CHECK_INT(test_count_files("mail/example.test/demo/tmp"), 0);
}

/* new/ removed under an existing tmp/: made again. */
static void
test_new_removed(void)
{
	char	sync[PATH_MAX];

	CHECK_INT(mkdir("mail/example.test/other", 0700), 0);
	CHECK_INT(mkdir("mail/example.test/other/tmp", 0700), 0);
	CHECK_INT(maildir_deliver("mail", "example.test", "other", "2.Q2R0.h",
	    msgfd, 3, sync, sizeof(sync)), 0);
	CHECK_STR(sync, "mail/example.test/other/new");
	CHECK_INT(file_size("mail/example.test/other/new/2.Q2R0.h"), 3);
	CHECK_INT(test_count_files("mail/example.test/other/tmp"), 0);
}

static void
test_refused(void)
{
	char	sync[PATH_MAX];

	CHECK_INT(maildir_deliver("mail", "example.test", "../x", "3", msgfd,
	    3, sync, sizeof(sync)), -2);
	CHECK_INT(maildir_deliver("mail", "example.test", ".hidden", "3",
	    msgfd, 3, sync, sizeof(sync)), -2);
	/* the message is shorter than said: nothing delivered */
	CHECK_INT(maildir_deliver("mail", "example.test", "demo", "4.Q4R0.h",
	    msgfd, 100, sync, sizeof(sync)), -1);
	CHECK_INT(file_size("mail/example.test/demo/new/4.Q4R0.h"), -1);
	CHECK_INT(test_count_files("mail/example.test/demo/tmp"), 0);
}

int
main(void)
{
	if (mkdtemp(top) == NULL || chdir(top) == -1 ||
	    (msgfd = open("msg", O_RDWR | O_CREAT, 0600)) == -1 ||
	    write(msgfd, "hello", 5) != 5) {
		perror(top);
		return 1;
	}
	RUN(test_deliver_once);
	RUN(test_new_removed);
	RUN(test_refused);
	close(msgfd);
	if (chdir("/") == 0)
		test_rmtree(top);
	return test_done();
}

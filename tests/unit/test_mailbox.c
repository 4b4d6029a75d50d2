/*
 * test_mailbox.c - a Maildir as a POP3 session sees it: UIDs kept in a
 * dovecot-uidlist, sizes, the two locks, and the UPDATE state.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailbox.h"
#include "test.h"

static char	top[64];	/* the temporary directory of the run */

/* Format a path into buf (PATH_MAX octets); a cut one fails the test. */
static __attribute__((format(printf, 2, 3))) char *
pathf(char *buf, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	CHECK(n >= 0 && n < PATH_MAX);
	return buf;
}

/* A new Maildir path under top; the directory itself does not exist. */
static const char *
box_path(char *buf, const char *name)
{
	return pathf(buf, "%s/%s/Maildir", top, name);
}

static void
put_file(const char *box, const char *sub, const char *name,
    const char *data)
{
	char	path[PATH_MAX];
	FILE	*fp;

	pathf(path, "%s/%s/%s", box, sub, name);
	if ((fp = fopen(path, "w")) == NULL) {
		printf("  cannot write %s: %s\n", path, strerror(errno));
		return;
	}
	fputs(data, fp);
	fclose(fp);
}

static bool
exists(const char *box, const char *sub, const char *name)
{
	char	path[PATH_MAX];

	pathf(path, "%s/%s/%s", box, sub, name);
	return access(path, F_OK) == 0;
}

/* The whole of box/name into buf (NUL-terminated); "" when absent. */
static const char *
get_file(const char *box, const char *name, char *buf, size_t size)
{
	char	path[PATH_MAX];
	FILE	*fp;
	size_t	n;

	buf[0] = '\0';
	pathf(path, "%s/%s", box, name);
	if ((fp = fopen(path, "r")) == NULL)
		return buf;
	n = fread(buf, 1, size - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void
put_uidlist(const char *box, const char *text)
{
	char	path[PATH_MAX];
	FILE	*fp;

	pathf(path, "%s/dovecot-uidlist", box);
	if ((fp = fopen(path, "w")) != NULL) {
		fputs(text, fp);
		fclose(fp);
	}
}

/* Make an empty Maildir (the first open does). */
static void
make_box(const char *box)
{
	struct mailbox	*mb = NULL;

	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	mailbox_close(&mb);
}

/* The UID of the message named name (up to its ':'), 0 if not listed. */
static uint32_t
uid_of(const struct mailbox *mb, const char *base)
{
	size_t	i, len = strlen(base);

	for (i = 0; i < mb->n; i++)
		if (strncmp(mb->msgs[i].name, base, len) == 0 &&
		    (mb->msgs[i].name[len] == ':' ||
		    mb->msgs[i].name[len] == '\0'))
			return mb->msgs[i].uid;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
test_create(void)
{
	struct mailbox	*mb = NULL;
	struct stat	 st;
	char		 box[PATH_MAX], buf[256];

	box_path(box, "create");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	CHECK(mb != NULL);
	if (mb == NULL)
		return;
	CHECK_INT(mb->n, 0);
	CHECK_STR(mb->path, box);
	CHECK(mb->uidvalidity != 0);
	CHECK(exists(box, "tmp", ".") && exists(box, "new", ".") &&
	    exists(box, "cur", "."));
	CHECK(stat(box, &st) == 0 && (st.st_mode & 0777) == 0700);
	/* An empty mailbox has a uidlist too: its UIDVALIDITY must last. */
	get_file(box, "dovecot-uidlist", buf, sizeof(buf));
	CHECK(strncmp(buf, "3 V", 3) == 0);
	CHECK(strstr(buf, " N1 G") != NULL);
	CHECK_INT(strlen(buf), strlen("3 V N1 G\n") + 32 +
	    (size_t)snprintf(NULL, 0, "%u", mb->uidvalidity));
	CHECK(!exists(box, ".", "dovecot-uidlist.lock"));
	mailbox_close(&mb);
	CHECK(mb == NULL);
	mailbox_close(&mb);	/* NULL is fine */
	mailbox_close(NULL);
}

static void
test_order(void)
{
	/* New UIDs go by the time the name starts with, then by name. */
	static const struct {
		const char	*sub, *name, *cur;	/* cur: after open */
		uint32_t	 uid;
	} rows[] = {
		{ "new", "1700000300.Q3R0.host,S=3", "1700000300.Q3R0.host,S=3:2,", 6 },
		{ "cur", "1700000100.Q1R0.host:2,S", "1700000100.Q1R0.host:2,S", 3 },
		{ "new", "1700000200.QbR0.host", "1700000200.QbR0.host:2,", 5 },
		{ "new", "1700000200.QaR0.host", "1700000200.QaR0.host:2,", 4 },
		{ "cur", "99.old.host:2,", "99.old.host:2,", 2 },
		{ "new", "1700000400.x.host:2,F", "1700000400.x.host:2,F", 7 },
		{ "new", "no-time.host", "no-time.host:2,", 1 },
	};
	struct mailbox	*mb = NULL;
	char		 box[PATH_MAX], path[PATH_MAX];
	size_t		 i;

	box_path(box, "order");
	make_box(box);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		put_file(box, rows[i].sub, rows[i].name, "x\r\n");
	/* Not messages: hidden files, a directory, a symbolic link. */
	put_file(box, "new", ".hidden", "x");
	put_file(box, "cur", ".hidden:2,", "x");
	pathf(path, "%s/cur/1.dir:2,", box);
	CHECK_INT(mkdir(path, 0700), 0);
	pathf(path, "%s/cur/2.link:2,", box);
	CHECK_INT(symlink("/etc/passwd", path), 0);

	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(mb->n, sizeof(rows) / sizeof(rows[0]));
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		CHECK_ROW(exists(box, "cur", rows[i].cur), rows[i].name);
		CHECK_ROW(!exists(box, "new", rows[i].name), rows[i].name);
		CHECK_ROW(uid_of(mb, rows[i].name) == rows[i].uid,
		    rows[i].name);
	}
	for (i = 0; i < mb->n; i++) {
		CHECK_INT(mb->msgs[i].uid, i + 1);
		CHECK_INT(mb->msgs[i].vsize, 3);
	}
	CHECK(exists(box, "new", ".hidden"));
	mailbox_close(&mb);
}

static void
test_uidl_stable(void)
{
	struct mailbox	*mb = NULL;
	char		 box[PATH_MAX];
	uint32_t	 uv;
	uint8_t		 marks[4] = { 0, MAILBOX_DELE, 0, 0 };
	size_t		 failed = 99;
	struct stat	 st;
	char		 path[PATH_MAX];
	ino_t		 ino;

	box_path(box, "stable");
	make_box(box);
	put_file(box, "new", "1000.a.host", "a\n");
	put_file(box, "new", "1001.b.host", "b\n");
	put_file(box, "new", "1002.c.host", "c\n");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	uv = mb->uidvalidity;
	CHECK_INT(mb->n, 3);
	mailbox_close(&mb);

	/* Reopen: the same UIDs and UIDVALIDITY, and no rewrite. */
	CHECK_INT(stat(pathf(path, "%s/dovecot-uidlist", box), &st), 0);
	ino = st.st_ino;
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(stat(path, &st), 0);
	CHECK(st.st_ino == ino);
	CHECK_INT(mb->uidvalidity, uv);
	CHECK_INT(uid_of(mb, "1000.a.host"), 1);
	CHECK_INT(uid_of(mb, "1001.b.host"), 2);
	CHECK_INT(uid_of(mb, "1002.c.host"), 3);
	mailbox_close(&mb);

	/* One more, older by its name: still n + 1, the others stay. */
	put_file(box, "new", "0999.d.host", "d\n");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(mb->n, 4);
	CHECK_INT(uid_of(mb, "1000.a.host"), 1);
	CHECK_INT(uid_of(mb, "1002.c.host"), 3);
	CHECK_INT(uid_of(mb, "0999.d.host"), 4);
	CHECK_INT(mb->uidvalidity, uv);

	/* Delete UID 2; it is never given again. */
	CHECK_INT(mailbox_commit(mb, marks, &failed), 0);
	CHECK_INT(failed, 0);
	CHECK(!exists(box, "cur", "1001.b.host:2,"));
	mailbox_close(&mb);
	put_file(box, "new", "1003.e.host", "e\n");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(mb->n, 4);
	CHECK_INT(uid_of(mb, "1000.a.host"), 1);
	CHECK_INT(uid_of(mb, "1001.b.host"), 0);
	CHECK_INT(uid_of(mb, "1002.c.host"), 3);
	CHECK_INT(uid_of(mb, "0999.d.host"), 4);
	CHECK_INT(uid_of(mb, "1003.e.host"), 5);
	CHECK_INT(mb->uidvalidity, uv);
	mailbox_close(&mb);

	/* Delete the highest: N keeps it from coming back. */
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	{
		uint8_t	last[4] = { 0, 0, 0, MAILBOX_DELE };

		CHECK_INT(mailbox_commit(mb, last, &failed), 0);
	}
	mailbox_close(&mb);
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	mailbox_close(&mb);
	put_file(box, "new", "1004.f.host", "f\n");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(uid_of(mb, "1004.f.host"), 6);
	mailbox_close(&mb);
}

static void
test_dovecot_uidlist(void)
{
	struct mailbox	*mb = NULL;
	char		 box[PATH_MAX], buf[4096];

	box_path(box, "dovecot");
	make_box(box);
	put_file(box, "cur", "1276528487.M364837P9451.kurkku,S=5,W=7:2,S",
	    "a\nbc\n");
	put_file(box, "cur", "1276533073.M242911P3632.kurkku:2,F", "abc\n");
	put_file(box, "cur", "1276533080.M1P1.kurkku:2,", "abcd\r\n");
	put_file(box, "new", "1276533090.M2P2.kurkku", "x\n");
	put_uidlist(box,
	    "3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1 Zfuture\n"
	    "25006 :1276528487.M364837P9451.kurkku,S=5,W=7\n"
	    "25010 :1276500000.M0P0.gone\n"
	    "25017 W2481 S4 G0123 Xnew :1276533073.M242911P3632.kurkku\n"
	    "25020 O3 :1276533080.M1P1.kurkku:2,\n");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(mb->uidvalidity, 1275660208);
	CHECK_INT(mb->n, 4);
	if (mb->n == 4) {
		CHECK_INT(mb->msgs[0].uid, 25006);
		CHECK_INT(mb->msgs[0].vsize, 7);	/* the name's W */
		CHECK_INT(mb->msgs[1].uid, 25017);
		CHECK_INT(mb->msgs[1].vsize, 2481);	/* the list's W */
		CHECK_INT(mb->msgs[2].uid, 25020);
		CHECK_INT(mb->msgs[2].vsize, 6);	/* counted */
		CHECK_INT(mb->msgs[3].uid, 25022);
		CHECK_INT(mb->msgs[3].vsize, 3);
		CHECK_STR(mb->msgs[3].name, "1276533090.M2P2.kurkku:2,");
	}
	mailbox_close(&mb);

	/* Written back in Dovecot's form, the unknown fields kept. */
	get_file(box, "dovecot-uidlist", buf, sizeof(buf));
	CHECK_STR(buf,
	    "3 V1275660208 N25023 G3085f01b7f11094c501100008c4a11c1 Zfuture\n"
	    "25006 :1276528487.M364837P9451.kurkku,S=5,W=7\n"
	    "25017 W2481 S4 G0123 Xnew :1276533073.M242911P3632.kurkku\n"
	    "25020 W6 O3 :1276533080.M1P1.kurkku\n"
	    "25022 W3 :1276533090.M2P2.kurkku\n");
}

static void
test_bad_uidlist(void)
{
	static const struct {
		const char	*name, *text;
		uint32_t	 uid;	/* of 1000.b.host, after the open */
	} rows[] = {
		{ "empty", "", 2 },
		{ "version 1", "1 1234 5\n3 :1000.b.host\n", 2 },
		{ "no LF", "3 V1234 N5 G3085f01b7f11094c501100008c4a11c1", 2 },
		{ "no V", "3 N5 G3085f01b7f11094c501100008c4a11c1\n", 2 },
		{ "V 0", "3 V0 N5\n", 2 },
		{ "V too big", "3 V4294967296 N5\n", 2 },
		{ "bad G", "3 V1234 N5 Gxyz\n", 2 },
		{ "UIDs down", "3 V1234 N9\n4 :1000.a.host\n3 :1000.b.host\n", 2 },
		{ "UID 0", "3 V1234 N9\n0 :1000.b.host\n", 2 },
		{ "UID max", "3 V1234 N9\n4294967295 :1000.b.host\n", 2 },
		{ "no colon", "3 V1234 N9\n3 W5 1000.b.host\n", 2 },
		{ "no name", "3 V1234 N9\n3 :\n", 2 },
		{ "slash", "3 V1234 N9\n3 :../1000.b.host\n", 2 },
		{ "NUL", "3 V1234 N9\n3 :1000.b\0.host\n", 2 },
		{ "no space", "3 V1234 N9\n3:1000.b.host\n", 2 },
		/* Not broken: */
		{ "cut last line", "3 V1234 N9\n7 :1000.b.host\n8 :1000.a", 7 },
		{ "no G", "3 V1234 N9\n7 :1000.b.host\n", 7 },
		{ "N too low", "3 V1234 N2\n7 :1000.b.host\n", 7 },
		{ "bad fields", "3 V1234 N9\n7 w1 Wx 1 :1000.b.host\n", 7 },
		{ "old names", "3 V1234 N9\n7 :1000.b.host:2,S\n", 7 },
		{ "twice", "3 V1234 N9\n6 :1000.b.host\n7 :1000.b.host\n", 7 },
	};
	struct mailbox	*mb = NULL;
	char		 box[PATH_MAX], name[32], buf[4096];
	size_t		 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(name, sizeof(name), "bad%zu", i);
		box_path(box, name);
		make_box(box);
		put_file(box, "cur", "1000.a.host:2,", "a\n");
		put_file(box, "cur", "1000.b.host:2,", "b\n");
		put_uidlist(box, rows[i].text);
		if (strcmp(rows[i].name, "NUL") == 0) {
			char	p[PATH_MAX];
			FILE	*fp;

			pathf(p, "%s/dovecot-uidlist", box);
			if ((fp = fopen(p, "w")) != NULL) {
				fwrite(rows[i].text, 1, 27, fp);	/* the NUL inside */
				fclose(fp);
			}
		}
		CHECK_ROW(mailbox_open(box, MAILBOX_MSGS_MAX, &mb) == 0,
		    rows[i].name);
		if (mb == NULL)
			continue;
		CHECK_ROW(mb->n == 2, rows[i].name);
		CHECK_ROW(uid_of(mb, "1000.b.host") == rows[i].uid,
		    rows[i].name);
		CHECK_ROW(mb->uidvalidity != (rows[i].uid == 7 ? 0 : 1234),
		    rows[i].name);
		if (rows[i].uid == 7)
			CHECK_ROW(mb->uidvalidity == 1234, rows[i].name);
		mailbox_close(&mb);
		/* Rewritten whole, and read back the same. */
		get_file(box, "dovecot-uidlist", buf, sizeof(buf));
		CHECK_ROW(strncmp(buf, "3 V", 3) == 0 &&
		    strstr(buf, " G") != NULL, rows[i].name);
		CHECK_ROW(mailbox_open(box, MAILBOX_MSGS_MAX, &mb) == 0 &&
		    uid_of(mb, "1000.b.host") == rows[i].uid, rows[i].name);
		mailbox_close(&mb);
	}
}

static void
test_vsize(void)
{
	static const struct {
		const char	*name, *data;
		uint64_t	 vsize;
	} rows[] = {
		{ "1.crlf.host", "Subject: a\r\n\r\nbody\r\n", 20 },
		{ "2.lf.host", "Subject: a\n\nbody\n", 20 },
		{ "3.mixed.host", "a\r\nb\nc", 7 },
		{ "4.empty.host", "", 0 },
		{ "5.cr.host", "a\r\r\n", 4 },
		{ "6.named.host,S=1,W=123", "x", 123 },
		{ "7.badw.host,W=12x", "x\n", 3 },
		{ "8.wlast.host,W=", "x\n", 3 },
	};
	struct mailbox	*mb = NULL;
	char		 box[PATH_MAX];
	size_t		 i;

	box_path(box, "vsize");
	make_box(box);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		put_file(box, "new", rows[i].name, rows[i].data);
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(mb->n, sizeof(rows) / sizeof(rows[0]));
	for (i = 0; i < mb->n; i++)
		CHECK_ROW(mb->msgs[i].vsize == rows[i].vsize, rows[i].name);
	mailbox_close(&mb);

	/* Counted once: the uidlist remembers it. */
	put_file(box, "cur", "2.lf.host:2,", "changed behind our back\n");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(mb->msgs[1].vsize, 20);
	mailbox_close(&mb);
}

static void
test_lock(void)
{
	struct mailbox	*mb = NULL, *mb2 = NULL;
	char		 box[PATH_MAX];

	box_path(box, "lock");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb2), -2);
	CHECK(mb2 == NULL);
	mailbox_close(&mb);
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb2), 0);
	mailbox_close(&mb2);
}

static void
test_dotlock(void)
{
	struct mailbox	*mb = NULL;
	struct timespec	 ts[2];
	char		 box[PATH_MAX], lock[PATH_MAX], buf[256];

	box_path(box, "dotlock");
	make_box(box);
	pathf(lock, "%s/dovecot-uidlist.lock", box);

	/* Fresh: Dovecot is rewriting the list. */
	put_file(box, ".", "dovecot-uidlist.lock", "1234");
	put_file(box, "new", "1.a.host", "a\n");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), -2);
	CHECK(mb == NULL);
	CHECK(exists(box, ".", "dovecot-uidlist.lock"));
	CHECK(exists(box, "new", "1.a.host"));	/* nothing touched */

	/* Stale (121 s and more): removed, and the list written. */
	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 200;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	CHECK_INT(utimensat(AT_FDCWD, lock, ts, 0), 0);
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	CHECK(!exists(box, ".", "dovecot-uidlist.lock"));
	CHECK_INT(mb != NULL ? mb->n : 0, 1);
	mailbox_close(&mb);
	get_file(box, "dovecot-uidlist", buf, sizeof(buf));
	CHECK(strstr(buf, "\n1 W3 :1.a.host\n") != NULL);

	/* Nothing to change: the lock is taken and given back. */
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	CHECK(!exists(box, ".", "dovecot-uidlist.lock"));
	mailbox_close(&mb);
}

static void
test_commit(void)
{
	static const struct {
		const char	*name;
		uint8_t		 mark;
		const char	*after;		/* NULL: deleted */
	} rows[] = {
		{ "1.a.host:2,", MAILBOX_DELE, NULL },
		{ "2.b.host:2,", MAILBOX_SEEN, "2.b.host:2,S" },
		{ "3.c.host:2,F", MAILBOX_SEEN, "3.c.host:2,FS" },
		{ "4.d.host:2,S", MAILBOX_SEEN, "4.d.host:2,S" },
		{ "5.e.host:2,T", MAILBOX_SEEN, "5.e.host:2,ST" },
		{ "6.f.host:2,FTa", MAILBOX_SEEN, "6.f.host:2,FSTa" },
		{ "7.g.host:2,F,x", MAILBOX_SEEN, "7.g.host:2,FS,x" },
		{ "8.h.host:2,S", MAILBOX_DELE | MAILBOX_SEEN, NULL },
		{ "9.i.host:2,", 0, "9.i.host:2," },
		{ "10.j.host:1,x", MAILBOX_SEEN, "10.j.host:1,x" },
	};
	enum { N = sizeof(rows) / sizeof(rows[0]) };
	struct mailbox	*mb = NULL;
	char		 box[PATH_MAX], from[PATH_MAX], to[PATH_MAX];
	uint8_t		 marks[N + 2];
	size_t		 i, failed = 99;

	box_path(box, "commit");
	make_box(box);
	for (i = 0; i < N; i++)
		put_file(box, "cur", rows[i].name, "x\n");
	put_file(box, "cur", "20.gone.host:2,", "x\n");
	put_file(box, "cur", "21.renamed.host:2,", "x\n");
	CHECK_INT(mailbox_open(box, MAILBOX_MSGS_MAX, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(mb->n, N + 2);
	if (mb->n != N + 2) {
		mailbox_close(&mb);
		return;
	}
	/* The listing is by UID, which here is the order of the rows. */
	for (i = 0; i < N; i++)
		marks[i] = rows[i].mark;
	marks[N] = marks[N + 1] = MAILBOX_DELE;
	/* Already gone; renamed by another client (flags only). */
	pathf(from, "%s/cur/20.gone.host:2,", box);
	unlink(from);
	pathf(from, "%s/cur/21.renamed.host:2,", box);
	pathf(to, "%s/cur/21.renamed.host:2,RS", box);
	CHECK_INT(rename(from, to), 0);

	CHECK_INT(mailbox_commit(mb, marks, &failed), 0);
	CHECK_INT(failed, 0);
	for (i = 0; i < N; i++) {
		if (rows[i].after == NULL) {
			CHECK_ROW(!exists(box, "cur", rows[i].name),
			    rows[i].name);
			continue;
		}
		CHECK_ROW(exists(box, "cur", rows[i].after), rows[i].name);
		CHECK_ROW(strcmp(rows[i].after, rows[i].name) == 0 ||
		    !exists(box, "cur", rows[i].name), rows[i].name);
		CHECK_ROW(strcmp(mb->msgs[i].name, rows[i].after) == 0,
		    rows[i].name);
	}
	CHECK(!exists(box, "cur", "21.renamed.host:2,RS"));
	/* A message renamed by SEEN still opens. */
	{
		int	fd = mailbox_msg_open(mb, 1);

		CHECK(fd != -1);
		if (fd != -1)
			close(fd);
		CHECK_INT(mailbox_msg_open(mb, N), -1);
		CHECK_INT(errno, ENOENT);
		CHECK_INT(mailbox_msg_open(mb, N + 2), -1);
	}
	mailbox_close(&mb);
}

static void
test_max(void)
{
	struct mailbox	*mb = NULL;
	char		 box[PATH_MAX], buf[4096];

	box_path(box, "max");
	make_box(box);
	put_file(box, "new", "3.c.host", "c\n");
	put_file(box, "new", "1.a.host", "a\n");
	put_file(box, "new", "2.b.host", "b\n");
	CHECK_INT(mailbox_open(box, 2, &mb), 0);
	if (mb == NULL)
		return;
	CHECK_INT(mb->n, 2);
	CHECK_INT(uid_of(mb, "1.a.host"), 1);
	CHECK_INT(uid_of(mb, "2.b.host"), 2);
	CHECK_INT(uid_of(mb, "3.c.host"), 0);
	mailbox_close(&mb);
	/* The third has its UID all the same (its size is not known yet). */
	get_file(box, "dovecot-uidlist", buf, sizeof(buf));
	CHECK(strstr(buf, "\n3 :3.c.host\n") != NULL);
	CHECK_INT(mailbox_open(box, 0, &mb), 0);
	CHECK_INT(mb != NULL ? mb->n : 99, 0);
	mailbox_close(&mb);
	CHECK_INT(mailbox_open(box, 3, &mb), 0);
	CHECK_INT(mb != NULL ? uid_of(mb, "3.c.host") : 0, 3);
	mailbox_close(&mb);
}

static void
test_paths(void)
{
	struct mailbox	*mb = NULL;
	char		 path[PATH_MAX + 10];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	CHECK_INT(mailbox_open(path, 10, &mb), -1);
	CHECK_INT(errno, ENAMETOOLONG);
	CHECK(mb == NULL);
	/* Room for the path, none for "/tmp" after it. */
	path[PATH_MAX - 3] = '\0';
	CHECK_INT(mailbox_open(path, 10, &mb), -1);
	CHECK_INT(errno, ENAMETOOLONG);
}

int
main(void)
{
	strcpy(top, "/tmp/test_mailbox.XXXXXX");
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_create);
	RUN(test_order);
	RUN(test_uidl_stable);
	RUN(test_dovecot_uidlist);
	RUN(test_bad_uidlist);
	RUN(test_vsize);
	RUN(test_lock);
	RUN(test_dotlock);
	RUN(test_commit);
	RUN(test_max);
	RUN(test_paths);
	nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return test_done();
}

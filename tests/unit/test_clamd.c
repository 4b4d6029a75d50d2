/*
 * test_clamd.c - clamd's replies as mail/clamd_reply.c reads them, and
 * the INSTREAM exchange of store/clamd.c against a tiny fake clamd on
 * the other end of a socketpair (or a listening socket): the framing,
 * an early reply, a silent and a deaf peer, a peer that hangs up.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clamd.h"
#include "clamd_reply.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

/* --- the reply parser ------------------------------------------------ */

static void
test_reply_parse(void)
{
	static const struct {
		const char		*in;
		size_t			 len;	/* 0: strlen(in) + 1 */
		enum clamd_verdict	 verdict;
		const char		*text;
	} rows[] = {
		{ "stream: OK", 0, CLAMD_CLEAN, "" },
		{ "stream: OK", 10, CLAMD_CLEAN, "" },	/* no NUL */
		{ "stream: OK\n", 0, CLAMD_CLEAN, "" },	/* nINSTREAM */
		{ "stream: OK\r\n", 0, CLAMD_CLEAN, "" },
		{ "stream: OKAY", 0, CLAMD_FAILED,
		    "unexpected reply: stream: OKAY" },
		{ "stream: Eicar-Test-Signature FOUND", 0, CLAMD_INFECTED,
		    "Eicar-Test-Signature" },
		{ "stream: Eicar-Test-Signature.UNOFFICIAL FOUND", 0,
		    CLAMD_INFECTED, "Eicar-Test-Signature.UNOFFICIAL" },
		/* ExtendedDetectionInfo */
		{ "stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb0"
		    "2f:68) FOUND", 0, CLAMD_INFECTED, "Win.Test.EICAR_HDB-1" },
		{ "stream: Name(no:hash) FOUND", 0, CLAMD_INFECTED,
		    "Name(no:hash)" },
		{ "stream: Name(ab:) FOUND", 0, CLAMD_INFECTED, "Name(ab:)" },
		{ "stream: Name(:12) FOUND", 0, CLAMD_INFECTED, "Name(:12)" },
		{ "stream: (ab:12) FOUND", 0, CLAMD_INFECTED, "(ab:12)" },
		{ "stream: Two Words FOUND", 0, CLAMD_INFECTED, "Two Words" },
		{ "stream: A\x01" "B\x7f\xff FOUND", 0, CLAMD_INFECTED,
		    "A?B??" },
		{ "stream:  FOUND", 0, CLAMD_FAILED,
		    "unexpected reply: stream:  FOUND" },
		{ "stream: FOUND", 0, CLAMD_FAILED,
		    "unexpected reply: stream: FOUND" },
		/* an LF ends the reply: nothing after it reaches the text */
		{ "stream: Evil\r\n250 Ok FOUND", 0, CLAMD_FAILED,
		    "unexpected reply: stream: Evil" },
		{ "INSTREAM size limit exceeded. ERROR", 0, CLAMD_FAILED,
		    "INSTREAM size limit exceeded." },
		{ "stream: Can't allocate memory ERROR", 0, CLAMD_FAILED,
		    "Can't allocate memory" },
		{ " ERROR", 0, CLAMD_FAILED, "unexpected reply:  ERROR" },
		{ "UNKNOWN COMMAND", 0, CLAMD_FAILED,
		    "unexpected reply: UNKNOWN COMMAND" },
		{ "", 0, CLAMD_FAILED, "empty reply" },
		{ "", 1, CLAMD_FAILED, "empty reply" },
		{ "\0stream: OK", 11, CLAMD_FAILED, "empty reply" },
		/* only the first reply counts */
		{ "stream: OK\0stream: X FOUND", 26, CLAMD_CLEAN, "" },
	};
	struct clamd_reply	r;
	size_t			i;

	for (i = 0; i < NROWS(rows); i++) {
		size_t len = rows[i].len ? rows[i].len : strlen(rows[i].in) + 1;

		clamd_reply_parse((const uint8_t *)rows[i].in, len, &r);
		CHECK_ROW(r.verdict == rows[i].verdict, rows[i].in);
		CHECK_ROW(strcmp(r.text, rows[i].text) == 0, rows[i].in);
		if (strcmp(r.text, rows[i].text) != 0)
			printf("    got \"%s\"\n", r.text);
	}
}

/* A name is cut to CLAMD_NAME_MAX, an error to CLAMD_TEXT_MAX. */
static void
test_reply_bounds(void)
{
	char			in[2048];
	struct clamd_reply	r;

	memset(in, 'A', sizeof(in));
	memcpy(in, "stream: ", 8);
	memcpy(in + 1000, " FOUND", 6);
	clamd_reply_parse((const uint8_t *)in, 1006, &r);
	CHECK_INT(r.verdict, CLAMD_INFECTED);
	CHECK_INT(strlen(r.text), CLAMD_NAME_MAX);
	memcpy(in + 1000, " ERROR", 6);
	clamd_reply_parse((const uint8_t *)in, 1006, &r);
	CHECK_INT(r.verdict, CLAMD_FAILED);
	CHECK_INT(strlen(r.text), CLAMD_TEXT_MAX);
}

static void
test_text_clean(void)
{
	static const struct {
		const char	*in;
		size_t		 size;
		const char	*want;
	} rows[] = {
		{ "plain text", 64, "plain text" },
		{ "a\r\nb\tc\x7f" "d\x80", 64, "a??b?c?d?" },
		{ "cut here", 4, "cut" },
		{ "x", 1, "" },
		{ "", 8, "" },
	};
	char	out[64];
	size_t	i, n;

	for (i = 0; i < NROWS(rows); i++) {
		n = clamd_text_clean(out, rows[i].size, rows[i].in,
		    strlen(rows[i].in));
		CHECK_ROW(strcmp(out, rows[i].want) == 0, rows[i].in);
		CHECK_ROW(n == strlen(rows[i].want), rows[i].in);
		/* idempotent */
		clamd_text_clean(out, sizeof(out), out, n);
		CHECK_ROW(strcmp(out, rows[i].want) == 0, rows[i].in);
	}
}

/* --- the INSTREAM exchange against a fake clamd -------------------- */

enum fake_mode {
	FAKE_REPLY,	/* read the whole stream, then answer */
	FAKE_EARLY,	/* answer after the first chunk's length, hang up */
	FAKE_SILENT,	/* read the whole stream, never answer */
};

struct fake {
	int		 fd;		/* its end */
	enum fake_mode	 mode;
	const char	*reply;
	size_t		 replylen;
	/* what it got */
	char		 cmd[16];
	uint8_t		*data;
	size_t		 len, chunks;
	bool		 framing_ok;	/* ended by a zero-length chunk */
	pthread_t	 thread;
};

static bool
read_full(int fd, void *buf, size_t len)
{
	uint8_t	*p = buf;
	ssize_t	 n;

	while (len > 0) {
		if ((n = read(fd, p, len)) <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void *
fake_run(void *arg)
{
	struct fake	*f = arg;
	uint8_t		 hdr[4], c;
	uint32_t	 n;

	if (!read_full(f->fd, f->cmd, 10))
		goto out;
	for (;;) {
		if (!read_full(f->fd, hdr, 4))
			goto out;
		n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
		    (uint32_t)hdr[2] << 8 | hdr[3];
		if (f->mode == FAKE_EARLY)
			break;
		if (n == 0) {
			f->framing_ok = true;
			break;
		}
		f->data = realloc(f->data, f->len + n);
		if (f->data == NULL || !read_full(f->fd, f->data + f->len, n))
			goto out;
		f->len += n;
		f->chunks++;
	}
	if (f->mode == FAKE_SILENT) {
		/* until the client gives up and closes */
		while (read(f->fd, &c, 1) > 0)
			;
		goto out;
	}
	if (write(f->fd, f->reply, f->replylen) != (ssize_t)f->replylen)
		goto out;
out:
	close(f->fd);
	return NULL;
}

static void
fake_start(struct fake *f, int fd, enum fake_mode mode, const char *reply,
    size_t replylen)
{
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	f->mode = mode;
	f->reply = reply;
	f->replylen = replylen;
	if (pthread_create(&f->thread, NULL, fake_run, f) != 0)
		abort();
}

/* Wait for it to end; free f->data once done with it. */
static void
fake_end(struct fake *f)
{
	pthread_join(f->thread, NULL);
}

/* A temporary file of len octets (a pattern), unlinked; its fd. */
static int
make_file(size_t len, uint8_t **data_r)
{
	char	 path[] = "/tmp/test_clamd.XXXXXX";
	uint8_t	*d = malloc(len ? len : 1);
	size_t	 i;
	int	 fd;

	for (i = 0; i < len; i++)
		d[i] = (uint8_t)(i * 7 + i / 251);
	if ((fd = mkstemp(path)) == -1 || unlink(path) == -1 ||
	    write(fd, d, len) != (ssize_t)len)
		abort();
	*data_r = d;
	return fd;
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec	t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Files of several sizes go whole, in CLAMD_CHUNK chunks, then a 0. */
static void
test_instream_framing(void)
{
	static const size_t	sizes[] = { 0, 1, CLAMD_CHUNK - 1, CLAMD_CHUNK,
		CLAMD_CHUNK + 1, 3 * CLAMD_CHUNK + 17 };
	static const char	ok[] = "stream: OK";
	struct clamd_reply	r;
	struct fake		f;
	uint8_t			*data;
	size_t			i;
	int			sv[2], fd;

	for (i = 0; i < NROWS(sizes); i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
			abort();
		fd = make_file(sizes[i], &data);
		fake_start(&f, sv[1], FAKE_REPLY, ok, sizeof(ok));
		CHECK_INT(clamd_instream(sv[0], fd, 5000, &r), 0);
		close(sv[0]);
		fake_end(&f);
		CHECK_INT(r.verdict, CLAMD_CLEAN);
		CHECK(memcmp(f.cmd, "zINSTREAM", 10) == 0);
		CHECK(f.framing_ok);
		CHECK_INT(f.len, sizes[i]);
		CHECK_INT(f.chunks, (sizes[i] + CLAMD_CHUNK - 1) / CLAMD_CHUNK);
		CHECK(f.len == sizes[i] && (sizes[i] == 0 ||
		    memcmp(f.data, data, sizes[i]) == 0));
		free(f.data);
		free(data);
		close(fd);
	}
}

static void
test_instream_found(void)
{
	static const char	found[] = "stream: Test.Sig FOUND";
	struct clamd_reply	r;
	struct fake		f;
	uint8_t			*data;
	int			sv[2], fd;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	fd = make_file(1000, &data);
	fake_start(&f, sv[1], FAKE_REPLY, found, sizeof(found));
	CHECK_INT(clamd_instream(sv[0], fd, 5000, &r), 0);
	close(sv[0]);
	fake_end(&f);
	CHECK_INT(r.verdict, CLAMD_INFECTED);
	CHECK_STR(r.text, "Test.Sig");
	free(f.data);
	free(data);
	close(fd);
}

/* clamd's StreamMaxLength: it answers before the end and hangs up. */
static void
test_instream_early_reply(void)
{
	static const char	limit[] = "INSTREAM size limit exceeded. ERROR";
	struct clamd_reply	r;
	struct fake		f;
	uint8_t			*data;
	int			sv[2], fd;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	fd = make_file(8 * 1024 * 1024, &data);
	fake_start(&f, sv[1], FAKE_EARLY, limit, sizeof(limit));
	CHECK_INT(clamd_instream(sv[0], fd, 5000, &r), 0);
	close(sv[0]);
	fake_end(&f);
	CHECK_INT(r.verdict, CLAMD_FAILED);
	CHECK_STR(r.text, "INSTREAM size limit exceeded.");
	free(f.data);
	free(data);
	close(fd);
}

/* It takes everything and never answers: the reply's timeout. */
static void
test_instream_silent(void)
{
	struct clamd_reply	r;
	struct timespec		t0;
	struct fake		f;
	uint8_t			*data;
	long			ms;
	int			sv[2], fd;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	fd = make_file(100000, &data);
	fake_start(&f, sv[1], FAKE_SILENT, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_INT(clamd_instream(sv[0], fd, 300, &r), -1);
	ms = ms_since(&t0);
	close(sv[0]);
	fake_end(&f);
	CHECK(f.framing_ok);
	CHECK_INT(r.verdict, CLAMD_FAILED);
	CHECK_STR(r.text, "timeout (300 ms) waiting for clamd's reply");
	CHECK(ms >= 250 && ms < 3000);
	free(f.data);
	free(data);
	close(fd);
}

/* It reads nothing: once the socket is full, the write's timeout. */
static void
test_instream_deaf(void)
{
	struct clamd_reply	r;
	struct timespec		t0;
	uint8_t			*data;
	long			ms;
	int			sv[2], fd;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	fd = make_file(16 * 1024 * 1024, &data);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_INT(clamd_instream(sv[0], fd, 300, &r), -1);
	ms = ms_since(&t0);
	CHECK_INT(r.verdict, CLAMD_FAILED);
	CHECK_STR(r.text, "timeout (300 ms) writing to clamd");
	CHECK(ms >= 250 && ms < 3000);
	close(sv[0]);
	close(sv[1]);
	free(data);
	close(fd);
}

/* It hangs up at once, without a word. */
static void
test_instream_hangup(void)
{
	struct clamd_reply	r;
	uint8_t			*data;
	int			sv[2], fd;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	close(sv[1]);
	fd = make_file(300000, &data);
	CHECK_INT(clamd_instream(sv[0], fd, 1000, &r), -1);
	CHECK_INT(r.verdict, CLAMD_FAILED);
	CHECK_STR(r.text, "clamd closed the connection without a reply");
	close(sv[0]);
	free(data);
	close(fd);
}

/* --- clamd_connect and clamd_scan ------------------------------------ */

struct listener {
	int		fd;
	struct fake	f;
	pthread_t	thread;
	const char	*reply;
	size_t		replylen;
};

static void *
accept_one(void *arg)
{
	struct listener	*l = arg;
	int		 c;

	if ((c = accept(l->fd, NULL, NULL)) == -1)
		return NULL;
	l->f.fd = c;
	l->f.mode = FAKE_REPLY;
	l->f.reply = l->reply;
	l->f.replylen = l->replylen;
	fake_run(&l->f);
	free(l->f.data);
	return NULL;
}

static void
listener_serve(struct listener *l, const char *reply, size_t replylen)
{
	memset(&l->f, 0, sizeof(l->f));
	l->reply = reply;
	l->replylen = replylen;
	if (listen(l->fd, 4) == -1 ||
	    pthread_create(&l->thread, NULL, accept_one, l) != 0)
		abort();
}

static void
test_scan_unix(void)
{
	static const char	found[] = "stream: Unix.Test FOUND";
	struct sockaddr_un	sun;
	struct listener		l;
	struct clamd_reply	r;
	char			path[64], addr[128];
	uint8_t			*data;
	int			fd;

	snprintf(path, sizeof(path), "/tmp/test_clamd.%d.sock", (int)getpid());
	unlink(path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((l.fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    bind(l.fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		abort();
	listener_serve(&l, found, sizeof(found));
	fd = make_file(5000, &data);
	clamd_scan(path, fd, 5000, &r);
	CHECK_INT(r.verdict, CLAMD_INFECTED);
	CHECK_STR(r.text, "Unix.Test");
	pthread_join(l.thread, NULL);
	/* the same with "unix:" */
	listener_serve(&l, found, sizeof(found));
	snprintf(addr, sizeof(addr), "unix:%s", path);
	clamd_scan(addr, fd, 5000, &r);
	CHECK_INT(r.verdict, CLAMD_INFECTED);
	pthread_join(l.thread, NULL);
	close(l.fd);
	unlink(path);
	/* nobody there any more */
	clamd_scan(path, fd, 5000, &r);
	CHECK_INT(r.verdict, CLAMD_FAILED);
	snprintf(addr, sizeof(addr), "connect %s: No such file or directory",
	    path);
	CHECK_STR(r.text, addr);
	free(data);
	close(fd);
}

static void
test_scan_tcp(void)
{
	static const char	ok[] = "stream: OK";
	struct sockaddr_in	sin;
	socklen_t		slen = sizeof(sin);
	struct listener		l;
	struct clamd_reply	r;
	char			addr[64], want[128];
	uint8_t			*data;
	int			fd, port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l.fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(l.fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(l.fd, (struct sockaddr *)&sin, &slen) == -1)
		abort();
	port = ntohs(sin.sin_port);
	fd = make_file(70000, &data);
	/* bound, not listening: refused */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	clamd_scan(addr, fd, 5000, &r);
	CHECK_INT(r.verdict, CLAMD_FAILED);
	snprintf(want, sizeof(want), "connect %s: Connection refused", addr);
	CHECK_STR(r.text, want);
	listener_serve(&l, ok, sizeof(ok));
	clamd_scan(addr, fd, 5000, &r);
	CHECK_INT(r.verdict, CLAMD_CLEAN);
	pthread_join(l.thread, NULL);
	listener_serve(&l, ok, sizeof(ok));
	snprintf(addr, sizeof(addr), "[127.0.0.1]:%d", port);
	clamd_scan(addr, fd, 5000, &r);
	CHECK_INT(r.verdict, CLAMD_CLEAN);
	pthread_join(l.thread, NULL);
	close(l.fd);
	free(data);
	close(fd);
}

static void
test_connect_malformed(void)
{
	static const char *const bad[] = { "clamd", "host:", ":3310",
		"host:port", "[::1]3310", "[]:3310", "host:33a" };
	char	err[256], want[256];
	size_t	i;

	for (i = 0; i < NROWS(bad); i++) {
		CHECK_ROW(clamd_connect(bad[i], 1000, err, sizeof(err)) == -1,
		    bad[i]);
		snprintf(want, sizeof(want),
		    "not a socket path or HOST:PORT: %s", bad[i]);
		CHECK_ROW(strcmp(err, want) == 0, bad[i]);
	}
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_reply_parse);
	RUN(test_reply_bounds);
	RUN(test_text_clean);
	RUN(test_instream_framing);
	RUN(test_instream_found);
	RUN(test_instream_early_reply);
	RUN(test_instream_silent);
	RUN(test_instream_deaf);
	RUN(test_instream_hangup);
	RUN(test_scan_unix);
	RUN(test_scan_tcp);
	RUN(test_connect_malformed);
	return test_done();
}

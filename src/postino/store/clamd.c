/*
 * clamd.c - the INSTREAM exchange with clamd (clamd.h), on a worker
 * thread of the store role.
 *
 * Trusts nothing clamd sends: at most CLAMD_REPLY_MAX octets of its
 * reply are read, and clamd_reply_parse() keeps printable text only.
 * The message octets are the spool file's, sent as they are.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clamd.h"
#include "compat.h"
#include "xalloc.h"

#define INSTREAM	"zINSTREAM"	/* sent with its NUL */

/* r says the exchange failed, and why; returns -1. */
static int __attribute__((format(printf, 2, 3)))
fail(struct clamd_reply *r, const char *fmt, ...)
{
	char	text[CLAMD_TEXT_MAX + 1];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	r->verdict = CLAMD_FAILED;
	clamd_text_clean(r->text, sizeof(r->text), text, strlen(text));
	return -1;
}

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on sock until deadline: 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int sock, short events, int64_t deadline, short *revents_r)
{
	struct pollfd	pfd = { .fd = sock, .events = events };
	int64_t		left;
	int		n;

	for (;;) {
		if ((left = deadline - now_ms()) < 0)
			left = 0;
		if ((n = poll(&pfd, 1, (int)left)) == -1 && errno == EINTR)
			continue;
		if (n == 1 && revents_r != NULL)
			*revents_r = pfd.revents;
		return n;
	}
}

/* A socket whose connect (and nothing else: later waits are polls)
 * gives up after timeout_ms: Linux bounds a blocking connect, unix or
 * TCP, by SO_SNDTIMEO. */
static int
timed_socket(int family, int timeout_ms)
{
	struct timeval	tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int		s;

	if ((s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
		close(s);
		return -1;
	}
	return s;
}

static const char *
connect_error(int e)
{
	return e == EINPROGRESS || e == EAGAIN || e == EWOULDBLOCK ?
	    "timed out" : strerror(e);
}

static int
connect_unix(const char *path, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_un	sun;
	int			s, e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	if ((s = timed_socket(AF_UNIX, timeout_ms)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		e = errno;
		close(s);
		snprintf(err, errlen, "connect %s: %s", path, connect_error(e));
		return -1;
	}
	return s;
}

/* "HOST:PORT" or "[ADDR]:PORT" into host and port; -1 when it is not. */
static int
split_hostport(const char *addr, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char	*colon, *h = addr;
	size_t		 n;

	if (*addr == '[') {
		h = addr + 1;
		if ((colon = strchr(h, ']')) == NULL || colon[1] != ':')
			return -1;
		n = (size_t)(colon - h);
		colon++;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL)
			return -1;
		n = (size_t)(colon - addr);
	}
	if (n == 0 || n >= hostlen || strlen(colon + 1) >= portlen ||
	    colon[1] == '\0' || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1))
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	strlcpy(port, colon + 1, portlen);
	return 0;
}

static int
connect_tcp(const char *addr, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res, *ai;
	char		 host[256], port[8];
	int		 s = -1, e = 0, g;

	if (split_hostport(addr, host, sizeof(host), port, sizeof(port))
	    == -1) {
		snprintf(err, errlen, "not a socket path or HOST:PORT: %s",
		    addr);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((g = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(g));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((s = timed_socket(ai->ai_family, timeout_ms)) == -1) {
			e = errno;
			continue;
		}
		if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(s);
		s = -1;
	}
	freeaddrinfo(res);
	if (s == -1)
		snprintf(err, errlen, "connect %s: %s", addr, connect_error(e));
	return s;
}

int
clamd_connect(const char *addr, int timeout_ms, char *err, size_t errlen)
{
	if (strncmp(addr, "unix:", 5) == 0)
		return connect_unix(addr + 5, timeout_ms, err, errlen);
	if (addr[0] == '/')
		return connect_unix(addr, timeout_ms, err, errlen);
	return connect_tcp(addr, timeout_ms, err, errlen);
}

/*
 * Write all of b, each wait for room bounded by timeout_ms.  0 when it
 * is written; 1 when clamd spoke or hung up first (its reply says why);
 * -1 (r set) on a timeout or another error.
 */
static int
send_all(int sock, const uint8_t *b, size_t len, int timeout_ms,
    struct clamd_reply *r)
{
	ssize_t	n;
	short	rev = 0;
	int	w;

	while (len > 0) {
		w = wait_fd(sock, POLLOUT | POLLIN, now_ms() + timeout_ms, &rev);
		if (w == 0)
			return fail(r, "timeout (%d ms) writing to clamd",
			    timeout_ms);
		if (w == -1)
			return fail(r, "poll: %s", strerror(errno));
		if (rev & (POLLIN | POLLHUP | POLLERR))
			return 1;
		n = send(sock, b, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN ||
		    errno == EWOULDBLOCK))
			continue;
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			return 1;
		if (n == -1)
			return fail(r, "write to clamd: %s", strerror(errno));
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read clamd's reply (up to its NUL, its end or CLAMD_REPLY_MAX). */
static int
read_reply(int sock, int timeout_ms, struct clamd_reply *r)
{
	uint8_t	buf[CLAMD_REPLY_MAX];
	size_t	len = 0;
	int64_t	deadline = now_ms() + timeout_ms;
	ssize_t	n;
	int	w;

	while (len < sizeof(buf) && memchr(buf, '\0', len) == NULL) {
		if ((w = wait_fd(sock, POLLIN, deadline, NULL)) == 0)
			return fail(r, "timeout (%d ms) waiting for clamd's "
			    "reply", timeout_ms);
		if (w == -1)
			return fail(r, "poll: %s", strerror(errno));
		n = recv(sock, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n == -1 && (errno == EINTR || errno == EAGAIN ||
		    errno == EWOULDBLOCK))
			continue;
		if (n == -1 && len > 0)
			break;
		if (n == -1)
			return fail(r, "read from clamd: %s", strerror(errno));
		len += (size_t)n;
	}
	if (len == 0)
		return fail(r, "clamd closed the connection without a reply");
	clamd_reply_parse(buf, len, r);
	return 0;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int
clamd_instream(int sock, int fd, int timeout_ms, struct clamd_reply *r)
{
	uint8_t	*buf = xmalloc(4 + CLAMD_CHUNK);
	off_t	 off = 0;
	ssize_t	 n;
	int	 w;

	w = send_all(sock, (const uint8_t *)INSTREAM, sizeof(INSTREAM),
	    timeout_ms, r);
	while (w == 0) {
		if ((n = pread(fd, buf + 4, CLAMD_CHUNK, off)) == -1) {
			if (errno == EINTR)
				continue;
			w = fail(r, "read of the message: %s",
			    strerror(errno));
			break;
		}
		put_be32(buf, (uint32_t)n);
		w = send_all(sock, buf, 4 + (size_t)n, timeout_ms, r);
		if (n == 0)
			break;
		off += n;
	}
	free(buf);
	if (w == -1)
		return -1;
	return read_reply(sock, timeout_ms, r);
}

void
clamd_scan(const char *addr, int fd, int timeout_ms, struct clamd_reply *r)
{
	char	err[CLAMD_TEXT_MAX + 1];
	int	sock;

	memset(r, 0, sizeof(*r));
	if ((sock = clamd_connect(addr, timeout_ms, err, sizeof(err))) == -1) {
		fail(r, "%s", err);
		return;
	}
	(void)clamd_instream(sock, fd, timeout_ms, r);
	close(sock);
}

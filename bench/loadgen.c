/*
 * loadgen.c - a small SMTP load client for benchmarks and the crash test.
 *
 * Runs C connections at once against one server, each doing up to M
 * transactions (MAIL, RCPT, DATA; in one write when the server offers
 * PIPELINING) before QUIT, until N messages were tried or T seconds
 * passed.  It trusts nothing the server says: every reply is bounded,
 * every wait has a deadline, and a server that dies only costs failed
 * transactions and reconnects with a growing back-off.
 *
 * Every message gets a unique Message-Id, and its octets are a pure
 * function of (Message-Id, size, sender, recipient) - see gen_message()
 * - so a checker can regenerate what was sent (`loadgen -G MID`) and
 * compare it with what was delivered.  For each 250 after DATA one line
 * "qid<TAB>message-id" is written to the -o file and flushed at once.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define IN_MAX		8192	/* one reply, all its lines */
#define MID_MAX		128
#define BACKOFF_FIRST	0.01	/* seconds, doubled per failure */
#define BACKOFF_MAX	0.5
#define LINE_LEN	76	/* body line, without CRLF */

enum cstate {
	C_IDLE,		/* no socket; reconnect at c->deadline */
	C_CONNECTING,
	C_GREETING,
	C_EHLO,
	C_MAIL,
	C_RCPT,
	C_DATA,		/* waiting for 354 */
	C_BODY,		/* waiting for 250 after the end of data */
	C_QUIT,
	C_DONE		/* nothing left to do */
};

enum fail {
	F_SESSION,	/* refused, closed or rejected outside a transaction */
	F_TIMEOUT,
	F_CLOSED,	/* connection lost inside a transaction */
	F_REJECTED,	/* an unexpected reply code */
	F_UNFINISHED,	/* still running at the time bound */
	F_COUNT
};

static const char *fail_names[F_COUNT] = {
	"session", "timeout", "closed", "rejected", "unfinished"
};

struct opts {
	const char	*host;
	const char	*port;
	const char	*sender;
	const char	*rcpt;
	const char	*tag;
	const char	*out_path;
	unsigned int	 conc;
	unsigned long	 count;
	size_t		 size;
	unsigned int	 per_session;
	double		 time_max;
	double		 io_timeout;
	bool		 no_pipelining;
};

struct conn {
	int		 fd;
	enum cstate	 state;
	bool		 pipelining;
	bool		 in_tx;		/* MAIL sent, no final reply yet */
	unsigned int	 done;		/* transactions in this session */
	double		 t_mail;
	double		 deadline;	/* of the current wait */
	double		 backoff;
	char		 mid[MID_MAX];
	char		 in[IN_MAX];
	size_t		 inlen;
	char		*out;
	size_t		 outlen, outoff, outcap;
};

struct stats {
	unsigned long	 accepted;
	unsigned long	 failed;
	unsigned long	 fails[F_COUNT];
	double		*lat;		/* ms, one per accepted message */
};

static struct opts	 o = {
	.host = "127.0.0.1", .port = "25", .sender = "loadgen@example.org",
	.rcpt = "demo@example.test", .conc = 1, .count = 100, .size = 1024,
	.per_session = 10, .time_max = 60, .io_timeout = 10,
};
static struct stats	 st;
static struct addrinfo	*server;
static FILE		*out_file;
static unsigned long	 next_msg;
static char		 tag_buf[32];

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "loadgen: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	exit(2);
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n)) == NULL)
		die("%s", "out of memory");
	return p;
}

/* 32-bit FNV-1a: the checker computes the same in a few lines. */
static uint32_t
fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h;
}

/*
 * The message for mid, size octets long (more if the header alone is
 * longer, one less if the last line cannot be shorter than CRLF), as a
 * malloc'd buffer of *len_r octets ending in CRLF.  Body line j is
 * "%04d " then characters of ALPHA from (hash(mid) + 7 j + k) mod 62.
 * The first body line starts with a dot, so dot-stuffing is exercised.
 */
static char *
gen_message(const char *mid, size_t size, size_t *len_r)
{
	static const char alpha[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	char line[LINE_LEN + 1];
	uint64_t h = fnv1a(mid);
	size_t len, cap, rem;
	unsigned long j;
	char *m;

	cap = size + 1024 + 2 * strlen(mid) + strlen(o.sender) + strlen(o.rcpt);
	m = xrealloc(NULL, cap);
	len = (size_t)snprintf(m, cap, "From: <%s>\r\nTo: <%s>\r\n"
	    "Subject: loadgen %s\r\nMessage-Id: %s\r\n\r\n"
	    ".leading dot, stuffed on the wire\r\n", o.sender, o.rcpt, mid,
	    mid);
	for (j = 0;; j++) {
		snprintf(line, sizeof(line), "%04lu ", j % 10000);
		for (size_t k = 5; k < LINE_LEN; k++)
			line[k] = alpha[(h + 7 * j + k - 5) % 62];
		if (len + LINE_LEN + 2 <= size) {
			memcpy(m + len, line, LINE_LEN);
			memcpy(m + len + LINE_LEN, "\r\n", 2);
			len += LINE_LEN + 2;
			continue;
		}
		rem = size > len ? size - len : 0;
		if (rem >= 2) {
			memcpy(m + len, line, rem - 2);
			memcpy(m + len + rem - 2, "\r\n", 2);
			len += rem;
		}
		break;
	}
	*len_r = len;
	return m;
}

/* Append n octets to the connection's output. */
static void
out_add(struct conn *c, const char *p, size_t n)
{
	if (c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->outlen + n > c->outcap) {
		c->outcap = (c->outlen + n) * 2;
		c->out = xrealloc(c->out, c->outcap);
	}
	memcpy(c->out + c->outlen, p, n);
	c->outlen += n;
}

/* Append the message in DATA form: dot-stuffed, then ".\r\n". */
static void
out_add_data(struct conn *c, const char *m, size_t len)
{
	size_t i, start = 0;

	for (i = 0; i < len; i++) {
		if (m[i] != '.' || (i > 0 && m[i - 1] != '\n'))
			continue;
		out_add(c, m + start, i - start);
		out_add(c, ".", 1);
		start = i;
	}
	out_add(c, m + start, len - start);
	out_add(c, ".\r\n", 3);
}

/* Write what can be written now; -1 if the connection is broken. */
static int
out_flush(struct conn *c)
{
	ssize_t n;

	while (c->outoff < c->outlen) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n == -1)
			return -1;
		c->outoff += (size_t)n;
	}
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->inlen = c->outlen = c->outoff = 0;
	c->in_tx = false;
	c->done = 0;
}

/* Back to C_IDLE (or C_DONE); retry after the back-off if it failed. */
static void
conn_reset(struct conn *c, bool failed)
{
	conn_close(c);
	c->state = C_IDLE;
	c->deadline = now();
	if (failed) {
		c->deadline += c->backoff;
		c->backoff *= 2;
		if (c->backoff > BACKOFF_MAX)
			c->backoff = BACKOFF_MAX;
	}
	if (next_msg >= o.count)
		c->state = C_DONE;
}

static void
conn_fail(struct conn *c, enum fail why)
{
	if (c->in_tx)
		st.failed++;
	else if (why != F_TIMEOUT)
		why = F_SESSION;
	st.fails[why]++;
	conn_reset(c, true);
}

static void
expect(struct conn *c, enum cstate state)
{
	c->state = state;
	c->deadline = now() + o.io_timeout;
}

/* Start the next transaction, or QUIT when the session has done enough. */
static void
tx_start(struct conn *c)
{
	char cmd[1024];
	int n;

	if (next_msg >= o.count || c->done >= o.per_session) {
		out_add(c, "QUIT\r\n", 6);
		expect(c, C_QUIT);
		return;
	}
	snprintf(c->mid, sizeof(c->mid), "<%s.%lu@loadgen.example.org>",
	    o.tag, next_msg++);
	c->in_tx = true;
	c->t_mail = now();
	n = snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", o.sender);
	out_add(c, cmd, (size_t)n);
	if (c->pipelining) {
		n = snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\nDATA\r\n",
		    o.rcpt);
		out_add(c, cmd, (size_t)n);
	}
	expect(c, C_MAIL);
}

static void
tx_send_body(struct conn *c)
{
	size_t len;
	char *m;

	m = gen_message(c->mid, o.size, &len);
	out_add_data(c, m, len);
	free(m);
	expect(c, C_BODY);
}

static void
tx_accepted(struct conn *c, const char *line)
{
	const char *qid, *p;
	size_t qlen;

	st.lat[st.accepted++] = (now() - c->t_mail) * 1000;
	c->in_tx = false;
	c->done++;
	if (out_file != NULL) {
		/* The queue id: the last word of "250 2.0.0 Ok: queued as X". */
		qid = line;
		for (p = line; *p != '\0'; p++)
			if (*p == ' ' && p[1] != '\0' && p[1] != ' ')
				qid = p + 1;
		qlen = strcspn(qid, " \r\n");
		fprintf(out_file, "%.*s\t%s\n", (int)qlen, qid, c->mid);
		fflush(out_file);
	}
}

/* React to one whole reply (code, last line) in the current state. */
static void
on_reply(struct conn *c, int code, const char *line)
{
	char cmd[1024];
	int n;

	switch (c->state) {
	case C_GREETING:
		if (code != 220)
			break;
		out_add(c, "EHLO loadgen.example.org\r\n", 26);
		expect(c, C_EHLO);
		return;
	case C_EHLO:
		if (code != 250)
			break;
		c->backoff = BACKOFF_FIRST;
		tx_start(c);
		return;
	case C_MAIL:
		if (code != 250)
			break;
		if (!c->pipelining) {
			n = snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n",
			    o.rcpt);
			out_add(c, cmd, (size_t)n);
		}
		expect(c, C_RCPT);
		return;
	case C_RCPT:
		if (code != 250)
			break;
		if (!c->pipelining)
			out_add(c, "DATA\r\n", 6);
		expect(c, C_DATA);
		return;
	case C_DATA:
		if (code != 354)
			break;
		tx_send_body(c);
		return;
	case C_BODY:
		if (code != 250)
			break;
		tx_accepted(c, line);
		tx_start(c);
		return;
	case C_QUIT:
		conn_reset(c, false);
		return;
	default:
		break;
	}
	/* XXX a rejected pipelined MAIL leaves replies in flight: reconnect. */
	conn_fail(c, c->in_tx ? F_REJECTED : F_SESSION);
}

/*
 * Take whole replies out of c->in.  Returns -1 on a malformed or
 * over-long reply, 0 otherwise.  Notes PIPELINING in EHLO replies.
 */
static int
read_replies(struct conn *c)
{
	char *eol, *line;
	size_t pos = 0, used;

	for (;;) {
		eol = memchr(c->in + pos, '\n', c->inlen - pos);
		if (eol == NULL)
			break;
		line = c->in + pos;
		*eol = '\0';
		pos = (size_t)(eol - c->in) + 1;
		if (eol - line < 3 || line[0] < '1' || line[0] > '5')
			return -1;
		if (c->state == C_EHLO && eol - line >= 14 &&
		    strncasecmp(line + 4, "PIPELINING", 10) == 0 &&
		    strchr("\r ", line[14]) != NULL)
			c->pipelining = !o.no_pipelining;
		if (line[3] == '-')
			continue;
		used = pos;
		on_reply(c, atoi(line), line);
		if (c->fd == -1)	/* closed: the rest is dropped */
			return 0;
		memmove(c->in, c->in + used, c->inlen - used);
		c->inlen -= used;
		pos = 0;
	}
	if (c->inlen == sizeof(c->in))
		return -1;
	return 0;
}

static void
conn_connect(struct conn *c)
{
	int fd;

	fd = socket(server->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		st.fails[F_SESSION]++;
		conn_reset(c, true);
		return;
	}
	c->fd = fd;
	c->pipelining = false;
	if (connect(fd, server->ai_addr, server->ai_addrlen) == -1 &&
	    errno != EINPROGRESS) {
		conn_fail(c, F_SESSION);
		return;
	}
	expect(c, C_CONNECTING);
}

static void
conn_io(struct conn *c, short revents)
{
	socklen_t len = sizeof(int);
	int err = 0;
	ssize_t n;

	if (c->state == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			conn_fail(c, F_SESSION);
			return;
		}
		expect(c, C_GREETING);
		return;
	}
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			if (c->state == C_QUIT)
				conn_reset(c, false);
			else
				conn_fail(c, F_CLOSED);
			return;
		}
		c->inlen += (size_t)n;
		if (read_replies(c) == -1) {
			conn_fail(c, F_REJECTED);
			return;
		}
	}
	if (c->fd != -1 && out_flush(c) == -1)
		conn_fail(c, F_CLOSED);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
percentile(double p)
{
	size_t i;

	if (st.accepted == 0)
		return 0;
	i = (size_t)(p * (st.accepted - 1) + 0.5);
	return st.lat[i];
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen -s host:port [-c conc] [-n count] [-S size]\n"
	    "               [-m per-session] [-t seconds] [-w io-timeout]\n"
	    "               [-o qid-file] [-r rcpt] [-f sender] [-i tag] [-P]\n"
	    "       loadgen -G message-id [-S size] [-r rcpt] [-f sender]\n");
	exit(2);
}

static unsigned long
num(const char *s, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < min || v > max)
		die("bad number: %s", s);
	return v;
}

static void
set_server(char *hostport)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	char *colon = strrchr(hostport, ':');
	int rc;

	if (colon == NULL)
		usage();
	*colon = '\0';
	o.host = hostport;
	o.port = colon + 1;
	if (o.host[0] == '[' && o.host[strlen(o.host) - 1] == ']') {
		o.host++;
		hostport[strlen(hostport) - 1] = '\0';
	}
	if ((rc = getaddrinfo(o.host, o.port, &hints, &server)) != 0)
		die("%s", gai_strerror(rc));
}

static void
parse_args(int argc, char **argv, const char **gen_r)
{
	int ch;

	while ((ch = getopt(argc, argv, "c:f:G:i:m:n:o:Pr:s:S:t:w:")) != -1) {
		switch (ch) {
		case 'c': o.conc = (unsigned int)num(optarg, 1, 10000); break;
		case 'f': o.sender = optarg; break;
		case 'G': *gen_r = optarg; break;
		case 'i': o.tag = optarg; break;
		case 'm': o.per_session = (unsigned int)num(optarg, 1, 1000000); break;
		case 'n': o.count = num(optarg, 1, 100000000); break;
		case 'o': o.out_path = optarg; break;
		case 'P': o.no_pipelining = true; break;
		case 'r': o.rcpt = optarg; break;
		case 's': set_server(optarg); break;
		case 'S': o.size = num(optarg, 1, 64UL << 20); break;
		case 't': o.time_max = (double)num(optarg, 1, 86400); break;
		case 'w': o.io_timeout = (double)num(optarg, 1, 3600); break;
		default: usage();
		}
	}
	if (argc != optind || (*gen_r == NULL && server == NULL))
		usage();
	if (o.tag == NULL) {
		snprintf(tag_buf, sizeof(tag_buf), "%lx-%x",
		    (unsigned long)time(NULL), (unsigned int)getpid());
		o.tag = tag_buf;
	}
	if (strlen(o.tag) > 40 || strpbrk(o.tag, "<>@ \t\r\n") != NULL)
		die("bad tag: %s", o.tag);
}

/* Events each connection waits for; returns the nearest deadline. */
static double
poll_setup(struct conn *conns, struct pollfd *pfd, double t_end)
{
	double next = t_end;

	for (unsigned int i = 0; i < o.conc; i++) {
		struct conn *c = &conns[i];

		pfd[i].fd = c->fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
		if (c->state == C_CONNECTING || c->outoff < c->outlen)
			pfd[i].events |= POLLOUT;
		if (c->state != C_DONE && c->deadline < next)
			next = c->deadline;
	}
	return next;
}

/* One turn: wait, do I/O, handle deadlines.  False once all is done. */
static bool
run_once(struct conn *conns, struct pollfd *pfd, double t_end)
{
	double next, t;
	bool busy = false;
	int ms;

	next = poll_setup(conns, pfd, t_end);
	t = now();
	ms = next > t ? (int)((next - t) * 1000) + 1 : 0;
	if (poll(pfd, o.conc, ms) == -1 && errno != EINTR)
		die("poll: %s", strerror(errno));
	t = now();
	for (unsigned int i = 0; i < o.conc; i++) {
		struct conn *c = &conns[i];

		if (c->fd != -1 && pfd[i].revents != 0)
			conn_io(c, pfd[i].revents);
		if (c->state == C_IDLE && next_msg >= o.count)
			c->state = C_DONE;
		if (c->state == C_IDLE && c->deadline <= t)
			conn_connect(c);
		else if (c->state != C_IDLE && c->state != C_DONE &&
		    c->deadline <= t)
			conn_fail(c, F_TIMEOUT);
		if (c->fd != -1 && out_flush(c) == -1)
			conn_fail(c, F_CLOSED);
		busy |= c->state != C_DONE;
	}
	return busy;
}

int
main(int argc, char **argv)
{
	const char *gen = NULL;
	struct conn *conns;
	struct pollfd *pfd;
	double t0, t_end, elapsed;
	size_t len;
	char *m;

	parse_args(argc, argv, &gen);
	if (gen != NULL) {
		m = gen_message(gen, o.size, &len);
		fwrite(m, 1, len, stdout);
		free(m);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (o.out_path != NULL && (out_file = fopen(o.out_path, "a")) == NULL)
		die("cannot open %s", o.out_path);
	st.lat = xrealloc(NULL, o.count * sizeof(double));
	conns = calloc(o.conc, sizeof(*conns));
	pfd = calloc(o.conc, sizeof(*pfd));
	if (conns == NULL || pfd == NULL)
		die("%s", "out of memory");
	t0 = now();
	t_end = t0 + o.time_max;
	for (unsigned int i = 0; i < o.conc; i++) {
		conns[i].fd = -1;
		conns[i].backoff = BACKOFF_FIRST;
		conns[i].deadline = t0;
	}
	while (now() < t_end && run_once(conns, pfd, t_end))
		;
	elapsed = now() - t0;
	for (unsigned int i = 0; i < o.conc; i++) {
		if (conns[i].in_tx) {
			st.failed++;
			st.fails[F_UNFINISHED]++;
		}
		conn_close(&conns[i]);
	}
	if (out_file != NULL)
		fclose(out_file);
	qsort(st.lat, st.accepted, sizeof(double), cmp_double);
	printf("loadgen: accepted %lu, failed %lu, elapsed %.3f s, "
	    "%.1f msgs/s, latency p50 %.2f ms, p99 %.2f ms\n", st.accepted,
	    st.failed, elapsed, st.accepted / elapsed, percentile(0.50),
	    percentile(0.99));
	printf("loadgen: errors:");
	for (int f = 0; f < F_COUNT; f++)
		printf(" %s %lu", fail_names[f], st.fails[f]);
	printf(" (c=%u n=%lu size=%zu m=%u)\n", o.conc, o.count, o.size,
	    o.per_session);
	return st.accepted == o.count ? 0 : 1;
}

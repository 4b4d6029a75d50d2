/*
 * test_resolve.c - the resolver against a private dnsmasq on 127.0.0.1
 * and a free port, started here with its records on the command line
 * and stopped by its PID; against a port nobody listens on; against
 * a socket that never answers; and, for MX answers dnsmasq will not
 * give (odd exchanges, odd TTLs, cut answers), against a server of
 * canned answers run here on the loop.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipmatch.h"
#include "resolve.h"
#include "test.h"

#ifndef DNSMASQ
#define DNSMASQ		"/usr/sbin/dnsmasq"
#endif
#define NMANY		70	/* addresses of many.test: over the bound */
#define NMXMANY		40	/* MX records of mxmany.test: over the bound */
#define MX_TTL		600	/* dnsmasq's --local-ttl: that of its MX */
#define NROWS(a)	(sizeof(a) / sizeof((a)[0]))

static struct event_base	*base;
static pid_t			 dnsmasq_pid = -1;
static int			 dnsmasq_port;
static char			 dnsmasq_log[] = "/tmp/test_resolve.XXXXXX";

struct result {
	int		 calls;
	enum resolve_status status;
	size_t		 n;
	uint8_t		 addrs[RESOLVE_ADDRS_MAX][16];
	struct resolve_mx mx[RESOLVE_MX_MAX];
	unsigned int	 ttl;
	struct resolver	*free_r;	/* freed by the callback */
};

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
on_addrs(void *arg, enum resolve_status status, const uint8_t (*addrs)[16],
    size_t n, unsigned int ttl)
{
	struct result	*res = arg;

	res->calls++;
	res->status = status;
	res->n = n;
	res->ttl = ttl;
	CHECK(n <= RESOLVE_ADDRS_MAX);
	CHECK((n == 0) == (addrs == NULL));
	if (n > 0 && n <= RESOLVE_ADDRS_MAX)
		memcpy(res->addrs, addrs, n * sizeof(addrs[0]));
	if (res->free_r != NULL) {
		resolver_free(res->free_r);
		res->free_r = NULL;
	}
}

static void
on_mx(void *arg, enum resolve_status status, const struct resolve_mx *mx,
    size_t n, unsigned int ttl)
{
	struct result	*res = arg;

	res->calls++;
	res->status = status;
	res->n = n;
	res->ttl = ttl;
	CHECK(n <= RESOLVE_MX_MAX);
	CHECK((n == 0) == (mx == NULL));
	CHECK(status == RESOLVE_OK || n == 0);
	if (n > 0 && n <= RESOLVE_MX_MAX)
		memcpy(res->mx, mx, n * sizeof(mx[0]));
	if (res->free_r != NULL) {
		resolver_free(res->free_r);
		res->free_r = NULL;
	}
}

/* Run the loop until each of n results came in, or for seconds. */
static void
wait_for(struct result *res, size_t n, double seconds)
{
	double	deadline = now() + seconds;
	size_t	i;

	for (;;) {
		for (i = 0; i < n && res[i].calls > 0; i++)
			;
		if (i == n || now() >= deadline)
			return;
		event_base_loop(base, EVLOOP_ONCE);
	}
}

/* Run the loop for seconds, whatever comes in. */
static void
spin(double seconds)
{
	double	deadline = now() + seconds;

	while (now() < deadline)
		event_base_loop(base, EVLOOP_ONCE);
}

/* Keeps the loop from running dry, so wait_for() sees its deadline. */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
}

static bool
has_addr(const struct result *res, const char *ip)
{
	uint8_t	a[16];
	size_t	i;

	if (ipmatch_addr(ip, a) == -1)
		return false;
	for (i = 0; i < res->n; i++)
		if (memcmp(res->addrs[i], a, 16) == 0)
			return true;
	return false;
}

/* A port on 127.0.0.1 that was free for both UDP and TCP a moment ago. */
static int
free_port_once(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			u, t, port = -1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((u = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		return -1;
	if ((t = socket(AF_INET, SOCK_STREAM, 0)) == -1) {
		close(u);
		return -1;
	}
	if (bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(u, (struct sockaddr *)&sin, &len) == 0 &&
	    bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		port = ntohs(sin.sin_port);
	close(u);
	close(t);
	return port;
}

/* The UDP port the kernel gives may be taken for TCP by another program
 * on the machine: try a few. */
static int
free_port(void)
{
	int	i, port = -1;

	for (i = 0; i < 50 && port == -1; i++)
		port = free_port_once();
	return port;
}

/* A UDP socket on 127.0.0.1 that is never read: a server that is mute. */
static int
mute_server(int *port_r)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_DGRAM, 0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		close(fd);
		return -1;
	}
	*port_r = ntohs(sin.sin_port);
	return fd;
}

/*
 * Canned MX answers: a query for name gets rr[] as its answer section
 * (rcode and the octets cut off its end as given), an unknown name
 * REFUSED.  exch is in wire form without the final 0 ("\002mx\004test";
 * "" is the root), so labels may hold what no host name may.  The
 * rows also say what resolver_mx() must report: want[] as "pref host".
 */
struct canned_rr {
	uint32_t	 ttl;
	uint16_t	 pref;
	const char	*exch;
};

static const struct canned {
	const char		*name;
	int			 rcode;
	size_t			 cut;
	struct canned_rr	 rr[5];
	enum resolve_status	 status;
	unsigned int		 ttl;
	const char		*want[5];
} canned[] = {
	{ "ttl.canned", 0, 0, { { 300, 20, "\003mx2\004test" },
	    { 100, 10, "\003mx1\004test" }, { 200, 30, "\003mx3\004test" } },
	    RESOLVE_OK, 100, { "10 mx1.test", "20 mx2.test", "30 mx3.test" } },
	{ "long.canned", 0, 0, { { 90000, 10, "\002mx\004test" },
	    { 100000, 20, "\003mx2\004test" } },
	    RESOLVE_OK, RESOLVE_TTL_MAX, { "10 mx.test", "20 mx2.test" } },
	/* RFC 2181 8: the top bit set means 0 */
	{ "msb.canned", 0, 0, { { 300, 10, "\002mx\004test" },
	    { 0x80000100u, 20, "\003mx2\004test" } },
	    RESOLVE_OK, 0, { "10 mx.test", "20 mx2.test" } },
	{ "upper.canned", 0, 0, { { 60, 10, "\002MX\007Example\004TEST" } },
	    RESOLVE_OK, 60, { "10 mx.example.test" } },
	/* a space, a dot in a label, a control octet: dropped */
	{ "odd.canned", 0, 0, { { 60, 10, "\003a b\004test" },
	    { 60, 20, "\003a.b\004test" }, { 60, 30, "\003a\001b\004test" },
	    { 60, 40, "\004mx_1\004test" }, { 60, 50, "\003-0-\004test" } },
	    RESOLVE_OK, 60, { "40 mx_1.test", "50 -0-.test" } },
	{ "allodd.canned", 0, 0, { { 60, 10, "\003a b\004test" },
	    { 60, 20, "\003a.b\004test" } }, RESOLVE_TEMPFAIL, 0, { NULL } },
	/* "." beside a malformed record is no null MX */
	{ "nullodd.canned", 0, 0, { { 60, 0, "" },
	    { 60, 10, "\003a b\004test" } }, RESOLVE_TEMPFAIL, 0, { NULL } },
	/* RFC 7505 says preference 0, but the one sent is reported */
	{ "null2.canned", 0, 0, { { 60, 7, "" }, { 60, 5, "" } },
	    RESOLVE_OK, 60, { "5 " } },
	/* each host once, at its lowest preference */
	{ "dup.canned", 0, 0, { { 60, 10, "\002mx\004test" },
	    { 60, 10, "\002mx\004test" }, { 60, 20, "\002MX\004test" },
	    { 60, 5, "\005other\004test" } },
	    RESOLVE_OK, 60, { "5 other.test", "10 mx.test" } },
	{ "servfail.canned", 2, 0, { { 0 } }, RESOLVE_TEMPFAIL, 0, { NULL } },
	{ "cut.canned", 0, 3, { { 60, 10, "\002mx\004test" } },
	    RESOLVE_TEMPFAIL, 0, { NULL } },
	{ "nodata.canned", 0, 0, { { 0 } }, RESOLVE_OK, RESOLVE_NEG_TTL,
	    { NULL } },
};

/* name in wire form into out, which has room for 256; its length. */
static size_t
wire_name(const char *name, uint8_t *out)
{
	size_t	n = 0, len;

	while (*name != '\0') {
		len = strcspn(name, ".");
		out[n++] = (uint8_t)len;
		memcpy(out + n, name, len);
		n += len;
		name += len;
		if (*name == '.')
			name++;
	}
	out[n++] = 0;
	return n;
}

static void
put16(uint8_t *p, unsigned int v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The answer to the query q of qlen octets into a; its length. */
static size_t
canned_build(const uint8_t *q, size_t qlen, uint8_t a[1024])
{
	const struct canned	*c = NULL;
	uint8_t			 name[256];
	size_t			 i, len, nlen = 0, exlen;

	for (i = 0; i < NROWS(canned) && c == NULL; i++) {
		nlen = wire_name(canned[i].name, name);
		if (qlen >= 12 + nlen + 4 && memcmp(q + 12, name, nlen) == 0)
			c = &canned[i];
	}
	/* The header and question asked; c-ares takes no other answer. */
	len = c != NULL ? 12 + nlen + 4 : qlen;
	memcpy(a, q, len);
	a[2] = 0x84 | (q[2] & 0x01);		/* QR, AA, RD as asked */
	a[3] = 0x80 | (c != NULL ? c->rcode : 5);	/* RA; REFUSED */
	put16(a + 4, 1);
	memset(a + 6, 0, 6);
	for (i = 0; c != NULL && i < 5 && c->rr[i].exch != NULL; i++) {
		exlen = strlen(c->rr[i].exch) + 1;
		put16(a + len, 0xc00c);		/* the name asked */
		put16(a + len + 2, 15);		/* MX */
		put16(a + len + 4, 1);		/* IN */
		put16(a + len + 6, c->rr[i].ttl >> 16);
		put16(a + len + 8, c->rr[i].ttl & 0xffff);
		put16(a + len + 10, 2 + exlen);
		put16(a + len + 12, c->rr[i].pref);
		memcpy(a + len + 14, c->rr[i].exch, exlen);
		len += 14 + exlen;
		put16(a + 6, i + 1);
	}
	return c != NULL ? len - c->cut : len;
}

static void
canned_answer(evutil_socket_t fd, short what, void *arg)
{
	struct sockaddr_in	sin;
	socklen_t		slen = sizeof(sin);
	uint8_t			q[512], a[1024];
	ssize_t			len;

	len = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&sin, &slen);
	if (len < 12)
		return;
	sendto(fd, a, canned_build(q, (size_t)len, a), 0,
	    (struct sockaddr *)&sin, slen);
}

static void
dnsmasq_exec(int port)
{
	static char	 argbuf[NMANY + NMXMANY + 16][96];
	char		*argv[NMANY + NMXMANY + 48];
	struct passwd	*pw;
	int		 n = 0, i, fd, pref;

	argv[n++] = "dnsmasq";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--keep-in-foreground";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--listen-address=127.0.0.1";
	argv[n++] = "--pid-file=";
	argv[n++] = "--log-facility=-";
	/* Names under test. are answered here, NXDOMAIN when unknown. */
	argv[n++] = "--local=/test/";
	argv[n++] = "--host-record=a4.test,192.0.2.1,300";
	argv[n++] = "--host-record=a6.test,2001:db8::6,120";
	argv[n++] = "--host-record=both.test,192.0.2.2,2001:db8::2,50";
	argv[n++] = "--host-record=both.test,192.0.2.3,50";
	argv[n++] = "--host-record=mixed.test,192.0.2.10,100";
	argv[n++] = "--host-record=mixed.test,2001:db8::10,40";
	argv[n++] = "--cname=alias.test,a4.test,30";
	/* dnsmasq answers in the reverse order: unsorted either way. */
	argv[n++] = "--mx-host=mx.test,mx20.test,20";
	argv[n++] = "--mx-host=mx.test,mx10.test,10";
	argv[n++] = "--mx-host=mx.test,mx30.test,30";
	argv[n++] = "--cname=mxalias.test,mx.test,30";
	argv[n++] = "--mx-host=eq.test,eq-last.test,20";
	argv[n++] = "--mx-host=eq.test,eq-a.test,10";
	argv[n++] = "--mx-host=eq.test,eq-first.test,5";
	argv[n++] = "--mx-host=eq.test,eq-b.test,10";
	argv[n++] = "--mx-host=eq.test,eq-c.test,10";
	argv[n++] = "--mx-host=null.test,.,0";
	argv[n++] = "--mx-host=nullmix.test,.,0";
	argv[n++] = "--mx-host=nullmix.test,mx10.test,10";
	snprintf(argbuf[0], sizeof(argbuf[0]), "--port=%d", port);
	argv[n++] = argbuf[0];
	pw = getuid() == 0 ? NULL : getpwuid(getuid());
	snprintf(argbuf[1], sizeof(argbuf[1]), "--user=%s",
	    pw != NULL ? pw->pw_name : "nobody");
	argv[n++] = argbuf[1];
	/* More than fit in 512 octets: the answer comes over TCP. */
	for (i = 0; i < NMANY; i++) {
		snprintf(argbuf[2 + i], sizeof(argbuf[2 + i]),
		    "--host-record=many.test,10.0.%d.%d,600", i / 200,
		    1 + i % 200);
		argv[n++] = argbuf[2 + i];
	}
	/* The TTL of every MX record; the records above have their own. */
	snprintf(argbuf[2 + NMANY], sizeof(argbuf[2 + NMANY]),
	    "--local-ttl=%d", MX_TTL);
	argv[n++] = argbuf[2 + NMANY];
	/*
	 * Preferences 10, 20 ... 400 in a shuffled order (17 is prime to
	 * 40), each exchange named for its preference: p010.test.  Over
	 * 512 octets too: TCP.
	 */
	for (i = 0; i < NMXMANY; i++) {
		pref = 10 * ((i * 17) % NMXMANY + 1);
		snprintf(argbuf[3 + NMANY + i], sizeof(argbuf[3 + NMANY + i]),
		    "--mx-host=mxmany.test,p%03d.test,%d", pref, pref);
		argv[n++] = argbuf[3 + NMANY + i];
	}
	argv[n] = NULL;

	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, 0);
		dup2(fd, 1);
	}
	if ((fd = open(dnsmasq_log, O_WRONLY | O_APPEND)) != -1)
		dup2(fd, 2);
	execv(DNSMASQ, argv);
	_exit(127);
}

static void
dnsmasq_print_log(void)
{
	char	buf[4096];
	ssize_t	len;
	int	fd;

	if ((fd = open(dnsmasq_log, O_RDONLY)) == -1)
		return;
	while ((len = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)len, stdout);
	close(fd);
}

/*
 * Wait until dnsmasq takes TCP connections: 0, -1 when it exited (and
 * was reaped, so its PID is no longer ours), -2 when it hangs.
 */
static int
dnsmasq_wait_ready(pid_t pid, int port)
{
	struct sockaddr_in	sin;
	double			deadline = now() + 10;
	int			fd, status, rc;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	while (now() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return -1;
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			return -2;
		rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
		close(fd);
		if (rc == 0)
			return 0;
		usleep(20000);
	}
	return -2;
}

static void
dnsmasq_stop(void)
{
	double	deadline;
	int	status;

	if (dnsmasq_pid == -1)
		return;
	kill(dnsmasq_pid, SIGTERM);
	deadline = now() + 5;
	while (waitpid(dnsmasq_pid, &status, WNOHANG) == 0) {
		if (now() >= deadline) {
			kill(dnsmasq_pid, SIGKILL);
			waitpid(dnsmasq_pid, &status, 0);
			break;
		}
		usleep(10000);
	}
	dnsmasq_pid = -1;
	unlink(dnsmasq_log);
}

/* Start it on a free port; a port taken in between gets another try. */
static int
dnsmasq_start(void)
{
	int	tries, fd, port, rc;
	pid_t	pid;

	if (access(DNSMASQ, X_OK) == -1) {
		printf("  FAIL %s not found: install dnsmasq-base "
		    "(sh scripts/install-deps.sh)\n", DNSMASQ);
		return -1;
	}
	if ((fd = mkstemp(dnsmasq_log)) == -1)
		return -1;
	close(fd);
	for (tries = 0; tries < 5; tries++) {
		if ((port = free_port()) == -1)
			break;
		if ((pid = fork()) == -1)
			break;
		if (pid == 0)
			dnsmasq_exec(port);
		dnsmasq_pid = pid;
		if ((rc = dnsmasq_wait_ready(pid, port)) == 0) {
			dnsmasq_port = port;
			atexit(dnsmasq_stop);
			return 0;
		}
		if (rc == -2) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		dnsmasq_pid = -1;
	}
	printf("  FAIL %s did not start; its log:\n", DNSMASQ);
	dnsmasq_print_log();
	unlink(dnsmasq_log);
	return -1;
}

static struct resolver *
resolver_at(int port)
{
	struct { size_t n; char *v[2]; } servers = { .n = 1 };
	struct resolver		*r;
	char			 item[32], err[256];

	snprintf(item, sizeof(item), "127.0.0.1:%d", port);
	servers.v[0] = item;
	if ((r = resolver_new(base, servers.v, servers.n, err, sizeof(err))) == NULL)
		printf("  resolver_new: %s\n", err);
	return r;
}

static void
test_server_parse(void)
{
	static const struct {
		const char	*in;
		int		 rc, family;
		const char	*addr;
		int		 port;
	} rows[] = {
		{ "192.0.2.53", 0, AF_INET, "192.0.2.53", 53 },
		{ "192.0.2.53:5353", 0, AF_INET, "192.0.2.53", 5353 },
		{ "[192.0.2.53]:1", 0, AF_INET, "192.0.2.53", 1 },
		{ "::1", 0, AF_INET6, "::1", 53 },
		{ "[::1]", 0, AF_INET6, "::1", 53 },
		{ "[::1]:5353", 0, AF_INET6, "::1", 5353 },
		{ "2001:db8::53", 0, AF_INET6, "2001:db8::53", 53 },
		{ "[2001:db8::53]:65535", 0, AF_INET6, "2001:db8::53", 65535 },
		{ "::ffff:192.0.2.1", 0, AF_INET6, "::ffff:192.0.2.1", 53 },
		{ "", -1, 0, NULL, 0 },
		{ "ns.example", -1, 0, NULL, 0 },
		{ "ns.example:53", -1, 0, NULL, 0 },
		{ "127.1", -1, 0, NULL, 0 },
		{ "0x7f.0.0.1", -1, 0, NULL, 0 },
		{ "192.0.2.53:", -1, 0, NULL, 0 },
		{ "192.0.2.53:0", -1, 0, NULL, 0 },
		{ "192.0.2.53:65536", -1, 0, NULL, 0 },
		{ "192.0.2.53:+53", -1, 0, NULL, 0 },
		{ "192.0.2.53:000053", -1, 0, NULL, 0 },
		{ "192.0.2.53:domain", -1, 0, NULL, 0 },
		{ "[::1]:", -1, 0, NULL, 0 },
		{ "[::1]53", -1, 0, NULL, 0 },
		{ "[::1", -1, 0, NULL, 0 },
		{ "::1]", -1, 0, NULL, 0 },
		{ "fe80::1%lo", -1, 0, NULL, 0 },
		{ "[fe80::1%lo]:53", -1, 0, NULL, 0 },
		{ "[2001:db8::53]:53:53", -1, 0, NULL, 0 },
		{ "[2001:db8:0000:0000:0000:0000:0000:0053]:53"
		    "xxxxxxxxxxxxxxxxxxxx", -1, 0, NULL, 0 },	/* too long */
	};
	struct resolve_server	 srv;
	const char		*errstr;
	uint8_t			 want[16];
	size_t			 i;
	int			 rc;

	for (i = 0; i < NROWS(rows); i++) {
		rc = resolve_server_parse(rows[i].in, &srv, &errstr);
		CHECK_ROW(rc == rows[i].rc, rows[i].in);
		CHECK_ROW((rc == 0) == (errstr == NULL), rows[i].in);
		if (rc != 0 || rows[i].rc != 0)
			continue;
		CHECK_ROW(srv.family == rows[i].family, rows[i].in);
		CHECK_ROW(srv.port == rows[i].port, rows[i].in);
		CHECK_ROW(inet_pton(rows[i].family, rows[i].addr, want) == 1,
		    rows[i].in);
		CHECK_ROW(memcmp(srv.addr, want, rows[i].family == AF_INET ?
		    4 : 16) == 0, rows[i].in);
	}
	CHECK(resolve_server_parse("192.0.2.53:0", &srv, &errstr) == -1);
	CHECK_STR(errstr, "has a bad port, expected a port from 1 to 65535");
}

static void
test_new(void)
{
	struct { size_t n; char *v[2]; } servers = { .n = 2 };
	struct resolver		*r;
	char			 a[] = "127.0.0.1", b[] = "127.1", err[256];

	/* The system's resolver: nothing is asked here. */
	r = resolver_new(base, NULL, 0, err, sizeof(err));
	CHECK(r != NULL);
	resolver_free(r);
	servers.n = 0;
	r = resolver_new(base, servers.v, servers.n, err, sizeof(err));
	CHECK(r != NULL);
	resolver_free(r);

	servers.n = 2;
	servers.v[0] = a;
	servers.v[1] = b;
	CHECK(resolver_new(base, servers.v, servers.n, err, sizeof(err)) == NULL);
	CHECK_STR(err, "resolve: server '127.1' is not a numeric address, "
	    "expected ADDR or ADDR:PORT such as 192.0.2.53 or "
	    "[2001:db8::53]:53");
	resolver_free(NULL);
}

/* Every row at once, on one resolver. */
static void
test_addrs(void)
{
	static const struct {
		const char		*name;
		enum resolve_status	 status;
		unsigned int		 ttl;
		const char		*addrs[4];
	} rows[] = {
		{ "a4.test", RESOLVE_OK, 300, { "192.0.2.1" } },
		{ "a6.test", RESOLVE_OK, 120, { "2001:db8::6" } },
		{ "both.test", RESOLVE_OK, 50,
		    { "192.0.2.2", "192.0.2.3", "2001:db8::2" } },
		{ "mixed.test", RESOLVE_OK, 40, { "192.0.2.10",
		    "2001:db8::10" } },
		{ "alias.test", RESOLVE_OK, 30, { "192.0.2.1" } },
		{ "a4.test.", RESOLVE_OK, 300, { "192.0.2.1" } },
		{ "192.0.2.99", RESOLVE_OK, RESOLVE_TTL_MAX, { "192.0.2.99" } },
		{ "2001:db8::99", RESOLVE_OK, RESOLVE_TTL_MAX,
		    { "2001:db8::99" } },
		{ "nx.test", RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		{ "", RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		{ ".", RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		/* c-ares cannot put these in a query */
		{ "a..test", RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		{ "a23456789012345678901234567890"
		    "1234567890123456789012345678901234.test",	/* 64 */
		    RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		/* dnsmasq REFUSES names outside test. */
		{ "elsewhere.example", RESOLVE_TEMPFAIL, 0, { NULL } },
	};
	struct result	 res[NROWS(rows)];
	struct resolver	*r;
	size_t		 i, j, n;

	if ((r = resolver_at(dnsmasq_port)) == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(res, 0, sizeof(res));
	for (i = 0; i < NROWS(rows); i++) {
		resolver_addrs(r, rows[i].name, on_addrs, &res[i]);
		/* Never from inside the call, not even for "192.0.2.99". */
		CHECK_ROW(res[i].calls == 0, rows[i].name);
	}
	wait_for(res, NROWS(rows), 10);
	for (i = 0; i < NROWS(rows); i++) {
		for (n = 0; n < 4 && rows[i].addrs[n] != NULL; n++)
			;
		CHECK_ROW(res[i].calls == 1, rows[i].name);
		CHECK_ROW(res[i].status == rows[i].status, rows[i].name);
		CHECK_ROW(res[i].ttl == rows[i].ttl, rows[i].name);
		CHECK_ROW(res[i].n == n, rows[i].name);
		for (j = 0; j < n; j++)
			CHECK_ROW(has_addr(&res[i], rows[i].addrs[j]),
			    rows[i].name);
		if (res[i].ttl != rows[i].ttl)
			printf("  %s: ttl %u\n", rows[i].name, res[i].ttl);
	}
	resolver_free(r);
}

/* A search domain (here from $LOCALDOMAIN) is never appended. */
static void
test_no_search(void)
{
	struct result	 res, mx;
	struct resolver	*r;

	setenv("LOCALDOMAIN", "test", 1);
	r = resolver_at(dnsmasq_port);
	unsetenv("LOCALDOMAIN");
	if (r == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(&res, 0, sizeof(res));
	memset(&mx, 0, sizeof(mx));
	resolver_addrs(r, "a4", on_addrs, &res);
	resolver_mx(r, "mx", on_mx, &mx);
	wait_for(&res, 1, 10);
	wait_for(&mx, 1, 10);
	CHECK_INT(res.calls, 1);
	/* REFUSED: "a4" was asked, not "a4.test" */
	CHECK_INT(res.status, RESOLVE_TEMPFAIL);
	CHECK_INT(mx.calls, 1);
	CHECK_INT(mx.status, RESOLVE_TEMPFAIL);	/* "mx", not "mx.test" */
	resolver_free(r);
}

/* Too long to exist (RFC 1035 2.3.4), and over the address bound. */
static void
test_bounds(void)
{
	struct result	 res[3];
	struct resolver	*r;
	char		 name[300];
	size_t		 i;

	if ((r = resolver_at(dnsmasq_port)) == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(res, 0, sizeof(res));
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	for (i = 63; i < sizeof(name); i += 64)
		name[i] = '.';
	resolver_addrs(r, name, on_addrs, &res[0]);
	name[253] = '\0';	/* 253 octets: may exist */
	resolver_addrs(r, name, on_addrs, &res[1]);
	resolver_addrs(r, "many.test", on_addrs, &res[2]);
	wait_for(res, 3, 10);
	CHECK_INT(res[0].status, RESOLVE_NXDOMAIN);
	CHECK_INT(res[1].status, RESOLVE_TEMPFAIL);	/* REFUSED */
	CHECK_INT(res[2].status, RESOLVE_OK);
	CHECK_INT(res[2].n, RESOLVE_ADDRS_MAX);
	CHECK_INT(res[2].ttl, 600);
	for (i = 0; i < 3; i++)
		CHECK_INT(res[i].calls, 1);
	resolver_free(r);
}

/* Nothing listens: ICMP port unreachable ends the lookup at once. */
static void
test_refused(void)
{
	struct result	 res[2];
	struct resolver	*r;
	double		 t0;
	size_t		 i;
	int		 port;

	if ((port = free_port()) == -1 || (r = resolver_at(port)) == NULL) {
		CHECK(!"no port or resolver");
		return;
	}
	memset(res, 0, sizeof(res));
	t0 = now();
	resolver_addrs(r, "a4.test", on_addrs, &res[0]);
	resolver_mx(r, "mx.test", on_mx, &res[1]);
	wait_for(res, 2, 20);
	for (i = 0; i < 2; i++) {
		CHECK_INT(res[i].calls, 1);
		CHECK_INT(res[i].status, RESOLVE_TEMPFAIL);
		CHECK_INT(res[i].ttl, 0);
	}
	CHECK(now() - t0 < 2);
	resolver_free(r);
}

/*
 * A server that never answers: TEMPFAIL after 2 s + 4 s, not later,
 * for addresses and MX alike.
 */
static void
test_mute(void)
{
	struct result	 res[2];
	struct resolver	*r;
	double		 t0, took;
	size_t		 i;
	int		 fd, port;

	if ((fd = mute_server(&port)) == -1 ||
	    (r = resolver_at(port)) == NULL) {
		CHECK(!"no mute server or resolver");
		return;
	}
	memset(res, 0, sizeof(res));
	t0 = now();
	resolver_addrs(r, "a4.test", on_addrs, &res[0]);
	resolver_mx(r, "mx.test", on_mx, &res[1]);
	wait_for(res, 2, 20);
	took = now() - t0;
	for (i = 0; i < 2; i++) {
		CHECK_INT(res[i].calls, 1);
		CHECK_INT(res[i].status, RESOLVE_TEMPFAIL);
		CHECK_INT(res[i].ttl, 0);
	}
	CHECK(took >= 1.9);	/* waited for at least the first try */
	CHECK(took < 8);
	resolver_free(r);
	close(fd);
}

static void
test_cancel(void)
{
	struct result	 res[5];
	struct resolver	*r;
	size_t		 i;
	int		 fd, port;

	if ((fd = mute_server(&port)) == -1 ||
	    (r = resolver_at(port)) == NULL) {
		CHECK(!"no mute server or resolver");
		return;
	}
	memset(res, 0, sizeof(res));
	resolver_addrs(r, "a4.test", on_addrs, &res[0]);
	resolver_addrs(r, "a6.test", on_addrs, &res[1]);
	resolver_mx(r, "mx.test", on_mx, &res[3]);
	spin(0.2);	/* on the wire */
	CHECK_INT(res[0].calls, 0);
	CHECK_INT(res[3].calls, 0);
	/* Answered already, not yet called back. */
	resolver_addrs(r, "192.0.2.1", on_addrs, &res[2]);
	resolver_mx(r, "", on_mx, &res[4]);
	resolver_free(r);
	for (i = 0; i < 5; i++) {
		CHECK_INT(res[i].calls, 1);
		CHECK_INT(res[i].status, RESOLVE_CANCELLED);
		CHECK_INT(res[i].n, 0);
		CHECK_INT(res[i].ttl, 0);
	}
	/* And never again from the loop. */
	spin(0.2);
	CHECK_INT(res[0].calls + res[1].calls + res[2].calls + res[3].calls +
	    res[4].calls, 5);
	close(fd);
}

/* A callback frees the resolver: the other lookup is cancelled. */
static void
test_free_in_callback(void)
{
	struct result	 res[2];
	struct resolver	*r;

	if ((r = resolver_at(dnsmasq_port)) == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(res, 0, sizeof(res));
	res[0].free_r = r;
	resolver_addrs(r, "192.0.2.1", on_addrs, &res[0]);
	resolver_addrs(r, "a4.test", on_addrs, &res[1]);
	wait_for(res, 2, 10);
	CHECK_INT(res[0].calls, 1);
	CHECK_INT(res[0].status, RESOLVE_OK);
	CHECK_INT(res[1].calls, 1);
	CHECK_INT(res[1].status, RESOLVE_CANCELLED);
}

/* res holds exactly want[] ("pref host" each, in order, NULL-ended). */
static void
check_mx(const struct result *res, const char *const *want, size_t max,
    const char *row)
{
	char	got[300];
	size_t	i, n;

	for (n = 0; n < max && want[n] != NULL; n++)
		;
	CHECK_ROW(res->n == n, row);
	for (i = 0; i < n && i < res->n; i++) {
		snprintf(got, sizeof(got), "%u %s", res->mx[i].pref,
		    res->mx[i].host);
		CHECK_ROW(strcmp(got, want[i]) == 0, row);
		if (strcmp(got, want[i]) != 0)
			printf("  %s: mx[%zu] \"%s\", want \"%s\"\n", row, i,
			    got, want[i]);
	}
}

/* Every row at once, on one resolver, against dnsmasq. */
static void
test_mx(void)
{
	static const struct {
		const char		*name;
		enum resolve_status	 status;
		unsigned int		 ttl;
		const char		*want[4];
	} rows[] = {
		{ "mx.test", RESOLVE_OK, MX_TTL,
		    { "10 mx10.test", "20 mx20.test", "30 mx30.test" } },
		{ "MX.Test.", RESOLVE_OK, MX_TTL,
		    { "10 mx10.test", "20 mx20.test", "30 mx30.test" } },
		/* the CNAME's TTL is the smallest */
		{ "mxalias.test", RESOLVE_OK, 30,
		    { "10 mx10.test", "20 mx20.test", "30 mx30.test" } },
		{ "null.test", RESOLVE_OK, MX_TTL, { "0 " } },	/* host "" */
		{ "nullmix.test", RESOLVE_OK, MX_TTL, { "10 mx10.test" } },
		/* an A record and no MX: the implicit MX */
		{ "a4.test", RESOLVE_OK, RESOLVE_NEG_TTL, { NULL } },
		/* a CNAME to that: an answer, but no MX in it */
		{ "alias.test", RESOLVE_OK, RESOLVE_NEG_TTL, { NULL } },
		{ "nx.test", RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		{ "", RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		{ ".", RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		{ "a..test", RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		{ "a23456789012345678901234567890"
		    "1234567890123456789012345678901234.test",	/* 64 */
		    RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL, { NULL } },
		/* dnsmasq REFUSES names outside test. */
		{ "elsewhere.example", RESOLVE_TEMPFAIL, 0, { NULL } },
	};
	struct result	 res[NROWS(rows)];
	struct resolver	*r;
	size_t		 i;

	if ((r = resolver_at(dnsmasq_port)) == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(res, 0, sizeof(res));
	for (i = 0; i < NROWS(rows); i++) {
		resolver_mx(r, rows[i].name, on_mx, &res[i]);
		/* Never from inside the call, not even for "". */
		CHECK_ROW(res[i].calls == 0, rows[i].name);
	}
	wait_for(res, NROWS(rows), 10);
	for (i = 0; i < NROWS(rows); i++) {
		CHECK_ROW(res[i].calls == 1, rows[i].name);
		CHECK_ROW(res[i].status == rows[i].status, rows[i].name);
		CHECK_ROW(res[i].ttl == rows[i].ttl, rows[i].name);
		check_mx(&res[i], rows[i].want, NROWS(rows[i].want),
		    rows[i].name);
		if (res[i].status != rows[i].status || res[i].ttl != rows[i].ttl)
			printf("  %s: %s ttl %u\n", rows[i].name,
			    resolve_status_name(res[i].status), res[i].ttl);
	}
	resolver_free(r);
}

/* Too long to exist (RFC 1035 2.3.4), and just short enough. */
static void
test_mx_name_len(void)
{
	struct result	 res[2];
	struct resolver	*r;
	char		 name[300];
	size_t		 i;

	if ((r = resolver_at(dnsmasq_port)) == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(res, 0, sizeof(res));
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	for (i = 63; i < sizeof(name); i += 64)
		name[i] = '.';
	name[254] = '\0';
	resolver_mx(r, name, on_mx, &res[0]);
	name[253] = '\0';
	resolver_mx(r, name, on_mx, &res[1]);
	wait_for(res, 2, 10);
	CHECK_INT(res[0].calls, 1);
	CHECK_INT(res[0].status, RESOLVE_NXDOMAIN);
	CHECK_INT(res[1].calls, 1);
	CHECK_INT(res[1].status, RESOLVE_TEMPFAIL);	/* asked: REFUSED */
	resolver_free(r);
}

/*
 * Equal preferences: all there, once each, between the lower and the
 * higher one, and shuffled: among NEQ answers that come from dnsmasq
 * in one order, the first of the three differs at least once (all NEQ
 * alike by chance: 3 * 3^-NEQ).
 */
#define NEQ	24
static void
test_mx_equal(void)
{
	static struct result	 res[NEQ];
	static const char	*eq[3] = { "eq-a.test", "eq-b.test",
				    "eq-c.test" };
	struct resolver		*r;
	size_t			 i, j, k, seen;
	bool			 differs = false;

	if ((r = resolver_at(dnsmasq_port)) == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(res, 0, sizeof(res));
	for (i = 0; i < NEQ; i++)
		resolver_mx(r, "eq.test", on_mx, &res[i]);
	wait_for(res, NEQ, 10);
	for (i = 0; i < NEQ; i++) {
		CHECK_INT(res[i].calls, 1);
		CHECK_INT(res[i].status, RESOLVE_OK);
		CHECK_INT(res[i].n, 5);
		if (res[i].n != 5)
			continue;
		CHECK_INT(res[i].mx[0].pref, 5);
		CHECK_STR(res[i].mx[0].host, "eq-first.test");
		CHECK_INT(res[i].mx[4].pref, 20);
		CHECK_STR(res[i].mx[4].host, "eq-last.test");
		for (k = 0; k < 3; k++) {
			for (seen = 0, j = 1; j < 4; j++)
				if (res[i].mx[j].pref == 10 &&
				    strcmp(res[i].mx[j].host, eq[k]) == 0)
					seen++;
			CHECK_INT(seen, 1);
		}
		if (strcmp(res[i].mx[1].host, res[0].mx[1].host) != 0)
			differs = true;
	}
	CHECK(differs);
	resolver_free(r);
}

/* 40 records over TCP: the 32 of the lowest preferences, in order. */
static void
test_mx_many(void)
{
	struct result	 res;
	struct resolver	*r;
	char		 want[32];
	size_t		 i;

	if ((r = resolver_at(dnsmasq_port)) == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(&res, 0, sizeof(res));
	resolver_mx(r, "mxmany.test", on_mx, &res);
	wait_for(&res, 1, 10);
	CHECK_INT(res.calls, 1);
	CHECK_INT(res.status, RESOLVE_OK);
	CHECK_INT(res.ttl, MX_TTL);
	CHECK_INT(res.n, RESOLVE_MX_MAX);
	for (i = 0; i < res.n && i < RESOLVE_MX_MAX; i++) {
		snprintf(want, sizeof(want), "p%03zu.test", 10 * (i + 1));
		CHECK_INT(res.mx[i].pref, 10 * (i + 1));
		CHECK_STR(res.mx[i].host, want);
	}
	resolver_free(r);
}

/* The rows of canned[], at once, against the canned server. */
static void
test_mx_canned(void)
{
	struct result	 res[NROWS(canned)];
	struct resolver	*r;
	struct event	*ev;
	size_t		 i;
	int		 fd, port;

	if ((fd = mute_server(&port)) == -1 ||
	    (r = resolver_at(port)) == NULL) {
		CHECK(!"no canned server or resolver");
		return;
	}
	ev = event_new(base, fd, EV_READ | EV_PERSIST, canned_answer, NULL);
	event_add(ev, NULL);
	memset(res, 0, sizeof(res));
	for (i = 0; i < NROWS(canned); i++)
		resolver_mx(r, canned[i].name, on_mx, &res[i]);
	wait_for(res, NROWS(canned), 10);
	for (i = 0; i < NROWS(canned); i++) {
		CHECK_ROW(res[i].calls == 1, canned[i].name);
		CHECK_ROW(res[i].status == canned[i].status, canned[i].name);
		CHECK_ROW(res[i].ttl == canned[i].ttl, canned[i].name);
		check_mx(&res[i], canned[i].want, NROWS(canned[i].want),
		    canned[i].name);
		if (res[i].status != canned[i].status ||
		    res[i].ttl != canned[i].ttl)
			printf("  %s: %s ttl %u\n", canned[i].name,
			    resolve_status_name(res[i].status), res[i].ttl);
	}
	resolver_free(r);
	event_free(ev);
	close(fd);
}

static int	mx_counts[RESOLVE_CANCELLED + 1];

static void
on_mx_count(void *arg, enum resolve_status status,
    const struct resolve_mx *mx, size_t n, unsigned int ttl)
{
	CHECK((unsigned int)status <= RESOLVE_CANCELLED);
	if ((unsigned int)status <= RESOLVE_CANCELLED)
		mx_counts[status]++;
}

/* One lookup over RESOLVE_PENDING_MAX: TEMPFAIL, from the loop. */
static void
test_mx_pending(void)
{
	struct resolver	*r;
	size_t		 i;
	int		 fd, port;

	if ((fd = mute_server(&port)) == -1 ||
	    (r = resolver_at(port)) == NULL) {
		CHECK(!"no mute server or resolver");
		return;
	}
	memset(mx_counts, 0, sizeof(mx_counts));
	for (i = 0; i <= RESOLVE_PENDING_MAX; i++)
		resolver_mx(r, "mx.test", on_mx_count, NULL);
	CHECK_INT(mx_counts[RESOLVE_TEMPFAIL], 0);
	spin(0.2);
	CHECK_INT(mx_counts[RESOLVE_TEMPFAIL], 1);
	CHECK_INT(mx_counts[RESOLVE_OK] + mx_counts[RESOLVE_NXDOMAIN] +
	    mx_counts[RESOLVE_CANCELLED], 0);
	resolver_free(r);
	CHECK_INT(mx_counts[RESOLVE_CANCELLED], RESOLVE_PENDING_MAX);
	CHECK_INT(mx_counts[RESOLVE_TEMPFAIL], 1);
	close(fd);
}

/*
 * The first answer's callback frees the resolver.  Both answers wait
 * in the socket, so c-ares most likely reads the second one, records
 * and all, before the first callback: it must be cancelled, once.
 */
static void
test_mx_free_in_callback(void)
{
	struct result	 res[2];
	struct resolver	*r;

	if ((r = resolver_at(dnsmasq_port)) == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(res, 0, sizeof(res));
	res[0].free_r = r;
	resolver_mx(r, "mx.test", on_mx, &res[0]);
	resolver_mx(r, "mx.test", on_mx, &res[1]);
	usleep(200000);
	wait_for(res, 2, 10);
	CHECK_INT(res[0].calls, 1);
	CHECK_INT(res[0].status, RESOLVE_OK);
	CHECK_INT(res[0].n, 3);
	CHECK_INT(res[1].calls, 1);
	CHECK_INT(res[1].status, RESOLVE_CANCELLED);
	CHECK_INT(res[1].n, 0);
	spin(0.2);
	CHECK_INT(res[0].calls + res[1].calls, 2);
}

/* resolver_ptr: names from dnsmasq's host records, and none. */
struct ptr_result {
	int			 calls;
	enum resolve_status	 status;
	char			 name[256];
};

static void
on_ptr(void *arg, enum resolve_status status, const char *name)
{
	struct ptr_result	*p = arg;

	p->calls++;
	p->status = status;
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "(null)");
}

static void
test_ptr(void)
{
	static const struct {
		const char		*ip;
		enum resolve_status	 status;
		const char		*name;
	} rows[] = {
		{ "192.0.2.1", RESOLVE_OK, "a4.test" },
		{ "2001:db8::6", RESOLVE_OK, "a6.test" },
		{ "::ffff:192.0.2.1", RESOLVE_OK, "a4.test" },
		/* no record: dnsmasq answers NXDOMAIN for the reverse */
		{ "192.0.2.77", RESOLVE_NXDOMAIN, "(null)" },
	};
	struct ptr_result	 res[NROWS(rows)];
	struct resolver		*r;
	uint8_t			 a[16];
	double			 deadline = now() + 10;
	size_t			 i, done;

	if ((r = resolver_at(dnsmasq_port)) == NULL) {
		CHECK(r != NULL);
		return;
	}
	memset(res, 0, sizeof(res));
	for (i = 0; i < NROWS(rows); i++) {
		CHECK(ipmatch_addr(rows[i].ip, a) == 0);
		resolver_ptr(r, a, on_ptr, &res[i]);
		CHECK_ROW(res[i].calls == 0, rows[i].ip);
	}
	do {
		event_base_loop(base, EVLOOP_ONCE);
		for (i = done = 0; i < NROWS(rows); i++)
			done += res[i].calls > 0;
	} while (done < NROWS(rows) && now() < deadline);
	for (i = 0; i < NROWS(rows); i++) {
		CHECK_ROW(res[i].calls == 1, rows[i].ip);
		CHECK_ROW(res[i].status == rows[i].status, rows[i].ip);
		CHECK_ROW(strcmp(res[i].name, rows[i].name) == 0, rows[i].ip);
		if (strcmp(res[i].name, rows[i].name) != 0 ||
		    res[i].status != rows[i].status)
			printf("  %s: %s (%s)\n", rows[i].ip, res[i].name,
			    resolve_status_name(res[i].status));
	}
	resolver_free(r);
}

int
main(void)
{
	struct event	*ticker;
	struct timeval	 tv = { 0, 50000 };

	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	ticker = event_new(base, -1, EV_PERSIST, tick, NULL);
	event_add(ticker, &tv);
	RUN(test_server_parse);
	RUN(test_new);
	if (dnsmasq_start() == -1) {
		printf("FAIL dnsmasq_start\n");
		test_failed++;
	} else {
		RUN(test_addrs);
		RUN(test_bounds);
		RUN(test_no_search);
		RUN(test_free_in_callback);
		RUN(test_mx);
		RUN(test_mx_name_len);
		RUN(test_mx_equal);
		RUN(test_mx_many);
		RUN(test_mx_free_in_callback);
		RUN(test_ptr);
	}
	RUN(test_mx_canned);
	RUN(test_mx_pending);
	RUN(test_refused);
	RUN(test_mute);
	RUN(test_cancel);
	dnsmasq_stop();
	event_free(ticker);
	event_base_free(base);
	return test_done();
}

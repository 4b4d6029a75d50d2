/*
 * resolve.c - c-ares on a libevent loop.
 *
 * Run by the store role.  c-ares tells us which sockets it wants
 * watched through its socket-state callback; each gets one event, and
 * one timer follows ares_timeout().  Answers are untrusted network
 * data: c-ares parses them, and we keep at most RESOLVE_ADDRS_MAX
 * addresses and clamp the TTL.
 *
 * No callback of the caller runs inside c-ares: the c-ares callback
 * only stores the result and activates the lookup's own event, which
 * then calls back from the loop.  That keeps the promise that callbacks
 * never run inside resolver_addrs() (c-ares answers /etc/hosts and
 * malformed names at once) and lets a callback free the resolver.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ares.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "log.h"
#include "resolve.h"
#include "xalloc.h"

#define NAME_MAX_LEN	253	/* RFC 1035 2.3.4, as text, no final dot */

struct resolve_sock {
	TAILQ_ENTRY(resolve_sock) entry;
	ares_socket_t	 fd;
	struct event	*ev;
};

struct resolve_query {
	TAILQ_ENTRY(resolve_query) entry;
	struct resolver	*r;
	struct event	*done;		/* calls back from the loop */
	resolver_addrs_cb cb;
	void		*arg;
	enum resolve_status status;
	unsigned int	 ttl;
	size_t		 n;
	uint8_t		 addrs[RESOLVE_ADDRS_MAX][16];
};

struct resolver {
	struct event_base *base;
	ares_channel	 channel;
	struct event	*timer;
	TAILQ_HEAD(, resolve_sock) socks;
	TAILQ_HEAD(, resolve_query) queries;	/* until called back */
	size_t		 nqueries;
	bool		 closing;
};

static pthread_once_t	lib_once = PTHREAD_ONCE_INIT;
static int		lib_status = ARES_ENOTINITIALIZED;

static void
lib_init(void)
{
	lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

const char *
resolve_status_name(enum resolve_status status)
{
	switch (status) {
	case RESOLVE_OK:
		return "ok";
	case RESOLVE_NXDOMAIN:
		return "nxdomain";
	case RESOLVE_TEMPFAIL:
		return "tempfail";
	case RESOLVE_CANCELLED:
		return "cancelled";
	default:
		panic("resolve_status_name: status %d", (int)status);
	}
}

/* Decimal 1..65535, digits only: no sign, no space, no service name. */
static int
parse_port(const char *s, uint16_t *port_r)
{
	unsigned long	n = 0;
	size_t		i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i == 5 || s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || n < 1 || n > 65535)
		return -1;
	*port_r = (uint16_t)n;
	return 0;
}

int
resolve_server_parse(const char *s, struct resolve_server *srv,
    const char **errstr_r)
{
	static const char	bad_addr[] = "is not a numeric address, "
	    "expected ADDR or ADDR:PORT such as 192.0.2.53 or "
	    "[2001:db8::53]:53";
	char			buf[RESOLVE_SERVER_LEN], *host, *c;
	char			*port = NULL;

	memset(srv, 0, sizeof(*srv));
	srv->port = 53;
	*errstr_r = bad_addr;
	if (strlcpy(buf, s, sizeof(buf)) >= sizeof(buf))
		return -1;
	host = buf;
	if (buf[0] == '[') {
		if ((c = strchr(buf, ']')) == NULL)
			return -1;
		*c++ = '\0';
		host = buf + 1;
		if (*c == ':')
			port = c + 1;
		else if (*c != '\0')
			return -1;
	} else if ((c = strchr(buf, ':')) != NULL &&
	    strchr(c + 1, ':') == NULL) {
		/* One colon: IPv4 and a port.  More: a bare IPv6 address. */
		*c = '\0';
		port = c + 1;
	}
	if (inet_pton(AF_INET, host, srv->addr) == 1)
		srv->family = AF_INET;
	else if (inet_pton(AF_INET6, host, srv->addr) == 1)
		srv->family = AF_INET6;
	else
		return -1;
	if (port != NULL && parse_port(port, &srv->port) == -1) {
		*errstr_r = "has a bad port, expected a port from 1 to 65535";
		return -1;
	}
	*errstr_r = NULL;
	return 0;
}

static void
timer_update(struct resolver *r)
{
	struct timeval	tv, *tvp;

	if ((tvp = ares_timeout(r->channel, NULL, &tv)) == NULL)
		evtimer_del(r->timer);
	else
		evtimer_add(r->timer, tvp);
}

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct resolver	*r = arg;

	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timer_update(r);
}

static void
sock_ready(evutil_socket_t fd, short what, void *arg)
{
	struct resolver	*r = arg;

	/* May close this very socket, and free its event, from sock_state. */
	ares_process_fd(r->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	timer_update(r);
}

/*
 * c-ares opens, changes or closes (readable = writable = 0) a socket.
 * It calls this before it closes the descriptor, so an fd is never in
 * the list twice.
 */
static void
sock_state(void *arg, ares_socket_t fd, int readable, int writable)
{
	struct resolver		*r = arg;
	struct resolve_sock	*s;
	short			 what;

	TAILQ_FOREACH(s, &r->socks, entry)
		if (s->fd == fd)
			break;
	what = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	if (s != NULL && (what == 0 ||
	    event_get_events(s->ev) != (what | EV_PERSIST))) {
		/* libevent lets a callback free its own event. */
		event_free(s->ev);
		s->ev = NULL;
	}
	if (what == 0) {
		if (s != NULL) {
			TAILQ_REMOVE(&r->socks, s, entry);
			free(s);
		}
		return;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		TAILQ_INSERT_TAIL(&r->socks, s, entry);
	}
	if (s->ev == NULL) {
		s->ev = event_new(r->base, fd, what | EV_PERSIST, sock_ready,
		    r);
		if (s->ev == NULL || event_add(s->ev, NULL) == -1)
			fatalx("resolve: cannot watch a DNS socket");
	}
}

static int
set_servers(struct resolver *r, char *const *servers, size_t nservers,
    char *err, size_t errlen)
{
	struct ares_addr_port_node	 nodes[RESOLVE_SERVERS_MAX];
	struct resolve_server		 srv;
	const char			*errstr;
	size_t				 i;
	int				 rc;

	if (nservers > RESOLVE_SERVERS_MAX) {
		snprintf(err, errlen, "resolve: more than %d servers",
		    RESOLVE_SERVERS_MAX);
		return -1;
	}
	memset(nodes, 0, sizeof(nodes));
	for (i = 0; i < nservers; i++) {
		if (resolve_server_parse(servers[i], &srv, &errstr) == -1) {
			snprintf(err, errlen, "resolve: server '%s' %s",
			    servers[i], errstr);
			return -1;
		}
		nodes[i].next = i + 1 < nservers ? &nodes[i + 1] : NULL;
		nodes[i].family = srv.family;
		if (srv.family == AF_INET)
			memcpy(&nodes[i].addr.addr4, srv.addr, 4);
		else
			memcpy(&nodes[i].addr.addr6, srv.addr, 16);
		nodes[i].udp_port = nodes[i].tcp_port = srv.port;
	}
	/* c-ares copies the list. */
	if ((rc = ares_set_servers_ports(r->channel, nodes)) != ARES_SUCCESS) {
		snprintf(err, errlen, "resolve: cannot set servers: %s",
		    ares_strerror(rc));
		return -1;
	}
	return 0;
}

struct resolver *
resolver_new(struct event_base *base, char *const *servers, size_t nservers,
    char *err, size_t errlen)
{
	struct resolver		*r;
	struct ares_options	 opts;
	int			 mask, rc;
	char			 lookups[] = "b";

	pthread_once(&lib_once, lib_init);
	if (lib_status != ARES_SUCCESS) {
		snprintf(err, errlen, "resolve: c-ares: %s",
		    ares_strerror(lib_status));
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->base = base;
	TAILQ_INIT(&r->socks);
	TAILQ_INIT(&r->queries);
	memset(&opts, 0, sizeof(opts));
	/*
	 * Mail names are fully qualified; never try NAME.search-domain.
	 * ares_getaddrinfo() of 1.18 ignores ARES_FLAG_NOSEARCH, so the
	 * list of search domains (resolv.conf, $LOCALDOMAIN) is emptied.
	 */
	opts.flags = ARES_FLAG_NOSEARCH;
	opts.domains = NULL;
	opts.ndomains = 0;
	opts.timeout = RESOLVE_TIMEOUT_MS;
	opts.tries = RESOLVE_TRIES;
	opts.sock_state_cb = sock_state;
	opts.sock_state_cb_data = r;
	mask = ARES_OPT_FLAGS | ARES_OPT_DOMAINS | ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
	if (nservers > 0) {
		/* Configured servers alone answer: /etc/hosts is not DNS. */
		opts.lookups = lookups;
		mask |= ARES_OPT_LOOKUPS;
	}
	if ((rc = ares_init_options(&r->channel, &opts, mask)) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "resolve: c-ares: %s", ares_strerror(rc));
		free(r);
		return NULL;
	}
	if (nservers > 0 &&
	    set_servers(r, servers, nservers, err, errlen) == -1) {
		ares_destroy(r->channel);
		free(r);
		return NULL;
	}
	if ((r->timer = evtimer_new(base, timer_fired, r)) == NULL)
		fatalx("resolve: cannot create a timer");
	return r;
}

void
resolver_free(struct resolver *r)
{
	struct resolve_query	*q;
	struct resolve_sock	*s;

	if (r == NULL)
		return;
	r->closing = true;
	/* Calls query_answered() with ARES_EDESTRUCTION, sock_state(0, 0). */
	ares_destroy(r->channel);
	while ((s = TAILQ_FIRST(&r->socks)) != NULL) {
		TAILQ_REMOVE(&r->socks, s, entry);
		if (s->ev != NULL)
			event_free(s->ev);
		free(s);
	}
	event_free(r->timer);
	while ((q = TAILQ_FIRST(&r->queries)) != NULL) {
		TAILQ_REMOVE(&r->queries, q, entry);
		event_free(q->done);
		q->cb(q->arg, RESOLVE_CANCELLED, NULL, 0, 0);
		free(q);
	}
	free(r);
}

/* From the loop: the caller may free the resolver from its callback. */
static void
query_done(evutil_socket_t fd, short what, void *arg)
{
	struct resolve_query	*q = arg;
	struct resolver		*r = q->r;

	TAILQ_REMOVE(&r->queries, q, entry);
	r->nqueries--;
	event_free(q->done);
	q->cb(q->arg, q->status, q->n > 0 ? (const uint8_t (*)[16])q->addrs :
	    NULL, q->n, q->ttl);
	free(q);
}

static void
query_finish(struct resolve_query *q, enum resolve_status status,
    unsigned int ttl)
{
	q->status = status;
	q->ttl = ttl;
	event_active(q->done, EV_TIMEOUT, 1);
}

/* IPv4 as ::ffff:a.b.c.d, as ipmatch.h keeps it. */
static void
mapped_v4(uint8_t a[16], const void *in4)
{
	memset(a, 0, 10);
	a[10] = a[11] = 0xff;
	memcpy(a + 12, in4, 4);
}

static void
add_addr(struct resolve_query *q, const struct sockaddr *sa)
{
	uint8_t	a[16];
	size_t	i;

	if (sa->sa_family == AF_INET)
		mapped_v4(a,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
	else if (sa->sa_family == AF_INET6)
		memcpy(a,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    16);
	else
		return;
	for (i = 0; i < q->n; i++)
		if (memcmp(q->addrs[i], a, 16) == 0)
			return;
	if (q->n < RESOLVE_ADDRS_MAX)
		memcpy(q->addrs[q->n++], a, 16);
}

static unsigned int
min_ttl(unsigned int ttl, int rr_ttl)
{
	if (rr_ttl < 0)
		rr_ttl = 0;
	return (unsigned int)rr_ttl < ttl ? (unsigned int)rr_ttl : ttl;
}

static enum resolve_status
map_status(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return RESOLVE_OK;
	case ARES_ENOTFOUND:	/* NXDOMAIN */
	case ARES_ENODATA:	/* the name has no A or AAAA */
	case ARES_EBADNAME:	/* cannot be put in a query */
	case ARES_ENONAME:
		return RESOLVE_NXDOMAIN;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return RESOLVE_CANCELLED;
	default:		/* timeout, refused, SERVFAIL, bad answer */
		return RESOLVE_TEMPFAIL;
	}
}

/* c-ares is done with the lookup; possibly inside ares_getaddrinfo(). */
static void
query_answered(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct resolve_query		*q = arg;
	struct ares_addrinfo_node	*node;
	struct ares_addrinfo_cname	*cn;
	enum resolve_status		 st = map_status(status);
	unsigned int			 ttl = RESOLVE_TTL_MAX;

	if (st == RESOLVE_OK && ai != NULL) {
		for (node = ai->nodes; node != NULL; node = node->ai_next) {
			add_addr(q, node->ai_addr);
			ttl = min_ttl(ttl, node->ai_ttl);
		}
		for (cn = ai->cnames; cn != NULL; cn = cn->next)
			ttl = min_ttl(ttl, cn->ttl);
	}
	if (ai != NULL)
		ares_freeaddrinfo(ai);
	/* resolver_free() calls back itself once c-ares is gone. */
	if (q->r->closing)
		return;
	if (st == RESOLVE_OK && q->n == 0)
		st = RESOLVE_NXDOMAIN;
	if (st == RESOLVE_NXDOMAIN)
		ttl = RESOLVE_NEG_TTL;
	else if (st != RESOLVE_OK)
		ttl = 0;
	query_finish(q, st, ttl);
}

/* A lookup, listed until it is called back. */
static struct resolve_query *
query_new(struct resolver *r, resolver_addrs_cb cb, void *arg)
{
	struct resolve_query	*q = xcalloc(1, sizeof(*q));

	q->r = r;
	q->cb = cb;
	q->arg = arg;
	if ((q->done = evtimer_new(r->base, query_done, q)) == NULL)
		fatalx("resolve: cannot create an event");
	TAILQ_INSERT_TAIL(&r->queries, q, entry);
	r->nqueries++;
	return q;
}

/* Names no server needs to see; true when q is finished. */
static bool
query_local(struct resolve_query *q, const char *name)
{
	uint8_t	in4[4];
	size_t	len;

	len = strnlen(name, NAME_MAX_LEN + 2);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > NAME_MAX_LEN) {
		query_finish(q, RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL);
		return true;
	}
	/*
	 * c-ares 1.18 sends an IPv4 literal to the servers as a name
	 * before it gives up and converts it; a literal is its own answer.
	 */
	if (inet_pton(AF_INET, name, in4) == 1) {
		mapped_v4(q->addrs[q->n++], in4);
		query_finish(q, RESOLVE_OK, RESOLVE_TTL_MAX);
		return true;
	}
	if (inet_pton(AF_INET6, name, q->addrs[0]) == 1) {
		q->n = 1;
		query_finish(q, RESOLVE_OK, RESOLVE_TTL_MAX);
		return true;
	}
	return false;
}

void
resolver_addrs(struct resolver *r, const char *name, resolver_addrs_cb cb,
    void *arg)
{
	struct ares_addrinfo_hints	 hints;
	struct resolve_query		*q;

	if (r->closing)
		panic("resolver_addrs: the resolver is being freed");
	q = query_new(r, cb, arg);
	if (query_local(q, name))
		return;
	if (r->nqueries > RESOLVE_PENDING_MAX) {
		query_finish(q, RESOLVE_TEMPFAIL, 0);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	/* RFC 6724 sorting connect()s a socket per address; order is moot. */
	hints.ai_flags = ARES_AI_NOSORT;
	ares_getaddrinfo(r->channel, name, NULL, &hints, query_answered, q);
	timer_update(r);
}

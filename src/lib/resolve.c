/*
 * resolve.c - c-ares on a libevent loop.
 *
 * Run by the store role.  c-ares tells us which sockets it wants
 * watched through its socket-state callback; each gets one event, and
 * one timer follows ares_timeout().  Answers are untrusted network
 * data: c-ares parses them, and we keep at most RESOLVE_ADDRS_MAX
 * addresses or RESOLVE_MX_MAX MX records, check each MX exchange as a
 * host name, and clamp the TTL.  The TTLs of an MX answer are read by
 * a small bounded walk of our own (answer_ttl()), as c-ares 1.18 does
 * not report them.
 *
 * No callback of the caller runs inside c-ares: the c-ares callback
 * only stores the result and activates the lookup's own event, which
 * then calls back from the loop.  That keeps the promise that callbacks
 * never run inside resolver_addrs() or resolver_mx() (c-ares answers
 * /etc/hosts and malformed names at once) and lets a callback free the
 * resolver.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
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

_Static_assert(sizeof(((struct resolve_mx *)0)->host) == NAME_MAX_LEN + 1,
    "resolve_mx.host holds a name of NAME_MAX_LEN octets");

enum query_kind { Q_ADDRS, Q_MX, Q_PTR, Q_TXT };

struct resolve_query {
	TAILQ_ENTRY(resolve_query) entry;
	struct resolver	*r;
	struct event	*done;		/* calls back from the loop */
	enum query_kind	 kind;
	union {
		resolver_addrs_cb addrs_cb;	/* Q_ADDRS */
		resolver_mx_cb	 mx_cb;		/* Q_MX */
		resolver_name_cb name_cb;	/* Q_PTR */
		resolver_txt_cb	 txt_cb;	/* Q_TXT */
	};
	void		*arg;
	enum resolve_status status;
	unsigned int	 ttl;
	size_t		 n;
	union {
		uint8_t		 addrs[RESOLVE_ADDRS_MAX][16];
		struct resolve_mx *mx;	/* Q_MX: RESOLVE_MX_MAX, or NULL */
		char		 name[NAME_MAX_LEN + 1];	/* Q_PTR */
		char		**txt;	/* Q_TXT: RESOLVE_TXT_MAX, or NULL */
	};
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

/* Call the caller back with the result, and free q; it is off the list. */
static void
query_call(struct resolve_query *q)
{
	event_free(q->done);
	switch (q->kind) {
	case Q_ADDRS:
		q->addrs_cb(q->arg, q->status, q->n > 0 ?
		    (const uint8_t (*)[16])q->addrs : NULL, q->n, q->ttl);
		break;
	case Q_MX:
		q->mx_cb(q->arg, q->status, q->n > 0 ? q->mx : NULL, q->n,
		    q->ttl);
		free(q->mx);
		break;
	case Q_PTR:
		q->name_cb(q->arg, q->status, q->status == RESOLVE_OK ?
		    q->name : NULL);
		break;
	case Q_TXT:
		q->txt_cb(q->arg, q->status, q->n > 0 ?
		    (const char *const *)q->txt : NULL, q->n, q->ttl);
		while (q->n > 0)
			free(q->txt[--q->n]);
		free(q->txt);
		break;
	default:
		panic("resolve: query kind %d", (int)q->kind);
	}
	free(q);
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
		q->status = RESOLVE_CANCELLED;
		q->n = 0;
		q->ttl = 0;
		query_call(q);
	}
	free(r);
}

/* From the loop: the caller may free the resolver from its callback. */
static void
query_done(evutil_socket_t fd, short what, void *arg)
{
	struct resolve_query	*q = arg;

	TAILQ_REMOVE(&q->r->queries, q, entry);
	q->r->nqueries--;
	query_call(q);
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

/* A lookup, listed until it is called back; the caller sets its cb. */
static struct resolve_query *
query_new(struct resolver *r, enum query_kind kind, void *arg)
{
	struct resolve_query	*q = xcalloc(1, sizeof(*q));

	q->r = r;
	q->kind = kind;
	q->arg = arg;
	if ((q->done = evtimer_new(r->base, query_done, q)) == NULL)
		fatalx("resolve: cannot create an event");
	TAILQ_INSERT_TAIL(&r->queries, q, entry);
	r->nqueries++;
	return q;
}

/* Empty, or longer than RFC 1035 2.3.4 allows: no server need see it. */
static bool
name_impossible(const char *name)
{
	size_t	len = strnlen(name, NAME_MAX_LEN + 2);

	if (len > 0 && name[len - 1] == '.')
		len--;
	return len == 0 || len > NAME_MAX_LEN;
}

/* Names no server needs to see; true when q is finished. */
static bool
query_local(struct resolve_query *q, const char *name)
{
	uint8_t	in4[4];

	if (name_impossible(name)) {
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
	resolver_addrs_af(r, name, AF_UNSPEC, cb, arg);
}

void
resolver_addrs_af(struct resolver *r, const char *name, int family,
    resolver_addrs_cb cb, void *arg)
{
	struct ares_addrinfo_hints	 hints;
	struct resolve_query		*q;

	if (r->closing)
		panic("resolver_addrs: the resolver is being freed");
	q = query_new(r, Q_ADDRS, arg);
	q->addrs_cb = cb;
	if (query_local(q, name))
		return;
	if (r->nqueries > RESOLVE_PENDING_MAX) {
		query_finish(q, RESOLVE_TEMPFAIL, 0);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	/* RFC 6724 sorting connect()s a socket per address; order is moot. */
	hints.ai_flags = ARES_AI_NOSORT;
	ares_getaddrinfo(r->channel, name, NULL, &hints, query_answered, q);
	timer_update(r);
}

static unsigned int
get16(const unsigned char *p)
{
	return (unsigned int)p[0] << 8 | p[1];
}

/* Step *off over the name there; -1 when it runs past alen. */
static int
skip_name(const unsigned char *abuf, size_t alen, size_t *off)
{
	size_t	len;

	while (*off < alen) {
		len = abuf[*off];
		if ((len & 0xc0) == 0xc0) {
			*off += 2;	/* a compression pointer ends it */
			return *off <= alen ? 0 : -1;
		}
		if ((len & 0xc0) != 0)
			return -1;	/* no such label type */
		*off += 1 + len;
		if (len == 0)
			return 0;
	}
	return -1;
}

/*
 * The smallest TTL of the MX and CNAME records of the answer section,
 * at most RESOLVE_TTL_MAX; -1 when the answer is cut short.  c-ares
 * 1.18 parses the records but drops their TTLs, so this walks the
 * answer once more: every step moves forward and is checked against
 * alen, and names are skipped, not followed.
 */
static int
answer_ttl(const unsigned char *abuf, size_t alen, unsigned int *ttl_r)
{
	size_t		off = NS_HFIXEDSZ;
	unsigned int	i, ttl = RESOLVE_TTL_MAX, type, class, rr_ttl;

	if (alen < NS_HFIXEDSZ)
		return -1;
	for (i = 0; i < get16(abuf + 4); i++) {	/* QDCOUNT */
		if (skip_name(abuf, alen, &off) == -1 ||
		    alen - off < NS_QFIXEDSZ)
			return -1;
		off += NS_QFIXEDSZ;
	}
	for (i = 0; i < get16(abuf + 6); i++) {	/* ANCOUNT */
		if (skip_name(abuf, alen, &off) == -1 ||
		    alen - off < NS_RRFIXEDSZ)
			return -1;
		type = get16(abuf + off);
		class = get16(abuf + off + 2);
		rr_ttl = get16(abuf + off + 4) << 16 | get16(abuf + off + 6);
		off += NS_RRFIXEDSZ + get16(abuf + off + 8);
		if (off > alen)
			return -1;
		/* RFC 2181 8: a TTL with the top bit set counts as 0. */
		if (class == ns_c_in && (type == ns_t_mx || type == ns_t_cname))
			ttl = min_ttl(ttl, rr_ttl > INT32_MAX ? 0 : (int)rr_ttl);
	}
	*ttl_r = ttl;
	return 0;
}

/*
 * An exchange as c-ares wrote it, checked and copied in lower case to
 * host: letters, digits, '-' and '_' in labels that are not empty,
 * joined by dots, at most NAME_MAX_LEN octets.  ares_expand_name()
 * writes odd octets as "\." or "\DDD"; the backslash fails here too.
 */
static int
exchange_check(const char *s, char host[NAME_MAX_LEN + 1])
{
	size_t	i;
	char	c;

	for (i = 0; s[i] != '\0'; i++) {
		if (i == NAME_MAX_LEN)
			return -1;
		c = s[i];
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (c == '.' && (i == 0 || s[i - 1] == '.'))
			return -1;
		if (c != '.' && c != '-' && c != '_' &&
		    !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9'))
			return -1;
		host[i] = c;
	}
	if (i == 0 || s[i - 1] == '.')
		return -1;
	host[i] = '\0';
	return 0;
}

struct mx_ent {
	const struct ares_mx_reply *rr;
	uint32_t	 key;		/* random: orders equal preferences */
};

static int
mx_ent_cmp(const void *a, const void *b)
{
	const struct mx_ent	*x = a, *y = b;

	if (x->rr->priority != y->rr->priority)
		return x->rr->priority < y->rr->priority ? -1 : 1;
	return x->key < y->key ? -1 : x->key > y->key;
}

/*
 * The records of list sorted by preference, equal ones shuffled (RFC
 * 5321 5.1: "MUST randomize them to spread the load").  Their number
 * is bounded by the answer, at most 64 KiB.
 */
static struct mx_ent *
mx_sort(const struct ares_mx_reply *list, size_t *n_r)
{
	const struct ares_mx_reply	*rr;
	struct mx_ent			*ents;
	size_t				 n = 0;

	for (rr = list; rr != NULL; rr = rr->next)
		n++;
	ents = xreallocarray(NULL, n, sizeof(*ents));
	for (n = 0, rr = list; rr != NULL; rr = rr->next, n++) {
		ents[n].rr = rr;
		ents[n].key = arc4random();
	}
	qsort(ents, n, sizeof(*ents), mx_ent_cmp);
	*n_r = n;
	return ents;
}

static bool
mx_has(const struct resolve_query *q, const char *host)
{
	size_t	i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->mx[i].host, host) == 0)
			return true;
	return false;
}

/*
 * Keep in q the first RESOLVE_MX_MAX good exchanges of the sorted
 * ents, each host once, at its lowest preference.  Per RFC 7505 a null
 * MX is a domain's only record, so "." counts as one only when every
 * record is "."; beside anything else, even a malformed record, it is
 * dropped (exchange_check() refuses the "" c-ares makes of it).  A
 * null MX bounces mail, so a doubtful one is RESOLVE_TEMPFAIL rather
 * than a null MX: RESOLVE_TEMPFAIL whenever no record is left.
 */
static enum resolve_status
mx_keep(struct resolve_query *q, const struct mx_ent *ents, size_t n)
{
	struct resolve_mx	 mx;
	size_t			 i, nroot = 0;

	for (i = 0; i < n; i++)
		if (ents[i].rr->host[0] == '\0')
			nroot++;
	q->mx = xreallocarray(NULL, RESOLVE_MX_MAX, sizeof(*q->mx));
	if (nroot == n) {
		q->mx[0].pref = ents[0].rr->priority;
		q->mx[0].host[0] = '\0';
		q->n = 1;
		return RESOLVE_OK;
	}
	for (i = 0; i < n && q->n < RESOLVE_MX_MAX; i++) {
		if (exchange_check(ents[i].rr->host, mx.host) == -1 ||
		    mx_has(q, mx.host))
			continue;
		mx.pref = ents[i].rr->priority;
		q->mx[q->n++] = mx;
	}
	return q->n > 0 ? RESOLVE_OK : RESOLVE_TEMPFAIL;
}

/* The MX records of a NOERROR answer into q; the TTL into *ttl_r. */
static enum resolve_status
mx_parse(struct resolve_query *q, const unsigned char *abuf, int alen,
    unsigned int *ttl_r)
{
	struct ares_mx_reply	*list;
	struct mx_ent		*ents;
	enum resolve_status	 st;
	size_t			 n;
	int			 rc;

	if (alen < 0 || answer_ttl(abuf, (size_t)alen, ttl_r) == -1)
		return RESOLVE_TEMPFAIL;
	rc = ares_parse_mx_reply(abuf, alen, &list);
	/* 1.18 gives ARES_SUCCESS and no list; later ones ARES_ENODATA. */
	if (rc != ARES_SUCCESS)
		return rc == ARES_ENODATA ? RESOLVE_OK : RESOLVE_TEMPFAIL;
	if (list == NULL)
		return RESOLVE_OK;	/* a CNAME that led to no MX */
	ents = mx_sort(list, &n);
	st = mx_keep(q, ents, n);
	free(ents);
	ares_free_data(list);
	return st;
}

/*
 * The TXT records of a NOERROR answer into q: each record's strings
 * joined (RFC 7208 3.3), at most RESOLVE_TXT_MAX records of at most
 * RESOLVE_TXT_LEN octets; a record holding a NUL octet, or longer, is
 * dropped, as no text a caller looks for holds one.
 */
static enum resolve_status
txt_parse(struct resolve_query *q, const unsigned char *abuf, int alen,
    unsigned int *ttl_r)
{
	struct ares_txt_ext	*list, *t;
	char			*cur = NULL;
	size_t			 len = 0;
	bool			 bad = false;
	int			 rc;

	if (alen < 0 || answer_ttl(abuf, (size_t)alen, ttl_r) == -1)
		return RESOLVE_TEMPFAIL;
	rc = ares_parse_txt_reply_ext(abuf, alen, &list);
	if (rc != ARES_SUCCESS)
		return rc == ARES_ENODATA ? RESOLVE_OK : RESOLVE_TEMPFAIL;
	q->txt = xreallocarray(NULL, RESOLVE_TXT_MAX, sizeof(*q->txt));
	for (t = list; t != NULL; t = t->next) {
		if (t->record_start) {
			if (cur != NULL && !bad && q->n < RESOLVE_TXT_MAX)
				q->txt[q->n++] = cur;
			else
				free(cur);
			cur = xcalloc(1, RESOLVE_TXT_LEN + 1);
			len = 0;
			bad = false;
		}
		if (cur == NULL || t->length > RESOLVE_TXT_LEN - len ||
		    memchr(t->txt, '\0', t->length) != NULL) {
			bad = true;
			continue;
		}
		memcpy(cur + len, t->txt, t->length);
		len += t->length;
	}
	if (cur != NULL && !bad && q->n < RESOLVE_TXT_MAX)
		q->txt[q->n++] = cur;
	else
		free(cur);
	ares_free_data(list);
	return RESOLVE_OK;
}

/* c-ares is done with an MX or TXT lookup; possibly inside ares_query(). */
static void
record_answered(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct resolve_query	*q = arg;
	enum resolve_status	 st;
	unsigned int		 ttl = 0;

	/* resolver_free() calls back itself once c-ares is gone. */
	if (q->r->closing)
		return;
	/* NOERROR and no answer: the name exists, without such records. */
	st = status == ARES_ENODATA ? RESOLVE_OK : map_status(status);
	if (status == ARES_SUCCESS)
		st = q->kind == Q_MX ? mx_parse(q, abuf, alen, &ttl) :
		    txt_parse(q, abuf, alen, &ttl);
	if (st == RESOLVE_NXDOMAIN || (st == RESOLVE_OK && q->n == 0))
		ttl = RESOLVE_NEG_TTL;
	else if (st != RESOLVE_OK)
		ttl = 0;
	query_finish(q, st, ttl);
}

/* Ask for the records of type of name, or finish q at once. */
static void
record_query(struct resolver *r, struct resolve_query *q, const char *name,
    int type)
{
	if (name_impossible(name)) {
		query_finish(q, RESOLVE_NXDOMAIN, RESOLVE_NEG_TTL);
		return;
	}
	if (r->nqueries > RESOLVE_PENDING_MAX) {
		query_finish(q, RESOLVE_TEMPFAIL, 0);
		return;
	}
	/* ares_query(), not ares_search(): the name goes out as it is. */
	ares_query(r->channel, name, ns_c_in, type, record_answered, q);
	timer_update(r);
}

void
resolver_mx(struct resolver *r, const char *domain, resolver_mx_cb cb,
    void *arg)
{
	struct resolve_query	*q;

	if (r->closing)
		panic("resolver_mx: the resolver is being freed");
	q = query_new(r, Q_MX, arg);
	q->mx_cb = cb;
	record_query(r, q, domain, ns_t_mx);
}

/* c-ares is done with a reverse lookup; possibly inside the call. */
static void
ptr_answered(void *arg, int status, int timeouts, struct hostent *he)
{
	struct resolve_query	*q = arg;
	enum resolve_status	 st = map_status(status);

	if (q->r->closing)
		return;
	/* The first name, if it is a well-formed host name. */
	if (st == RESOLVE_OK && (he == NULL || he->h_name == NULL ||
	    exchange_check(he->h_name, q->name) == -1))
		st = RESOLVE_NXDOMAIN;
	query_finish(q, st, st == RESOLVE_OK ? RESOLVE_NEG_TTL : 0);
}

void
resolver_ptr(struct resolver *r, const uint8_t addr[16],
    resolver_name_cb cb, void *arg)
{
	struct resolve_query	*q;
	static const uint8_t	 v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0,
				    0, 0xff, 0xff };

	if (r->closing)
		panic("resolver_ptr: the resolver is being freed");
	q = query_new(r, Q_PTR, arg);
	q->name_cb = cb;
	if (r->nqueries > RESOLVE_PENDING_MAX) {
		query_finish(q, RESOLVE_TEMPFAIL, 0);
		return;
	}
	if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0)
		ares_gethostbyaddr(r->channel, addr + 12, 4, AF_INET,
		    ptr_answered, q);
	else
		ares_gethostbyaddr(r->channel, addr, 16, AF_INET6,
		    ptr_answered, q);
	timer_update(r);
}

void
resolver_txt(struct resolver *r, const char *name, resolver_txt_cb cb,
    void *arg)
{
	struct resolve_query	*q;

	if (r->closing)
		panic("resolver_txt: the resolver is being freed");
	q = query_new(r, Q_TXT, arg);
	q->txt_cb = cb;
	record_query(r, q, name, ns_t_txt);
}

struct event_base *
resolver_base(struct resolver *r)
{
	return r->base;
}

/*
 * resolve.h - asynchronous DNS lookups over c-ares, driven by the
 * libevent loop of the role that owns the resolver: the store role's
 * policy engine resolves the names of its trusted-hosts list (and
 * refreshes them by TTL); MX lookups for relaying; later DNSBL and SPF.
 *
 * Answers come from the network: at most RESOLVE_ADDRS_MAX addresses
 * of a name and RESOLVE_MX_MAX MX records of a domain are kept, MX
 * exchanges that are not host names are dropped, TTLs are clamped, and
 * a lookup never takes longer than the bound below.  The resolver is
 * not thread-safe; use it from the loop thread only.
 */
#ifndef LIB_RESOLVE_H
#define LIB_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct resolver;

#define RESOLVE_ADDRS_MAX	64	/* addresses kept of one name */
#define RESOLVE_MX_MAX		32	/* MX records kept of one domain */
#define RESOLVE_PENDING_MAX	4096	/* lookups in flight, per resolver */
#define RESOLVE_NEG_TTL		60	/* seconds an NXDOMAIN holds */
#define RESOLVE_TTL_MAX		86400	/* longer TTLs are cut to this */
/*
 * Each server gets RESOLVE_TRIES rounds; c-ares waits RESOLVE_TIMEOUT_MS
 * in the first and doubles it in each later one, so a lookup against n
 * silent servers ends after n * (2 + 4) seconds with RESOLVE_TEMPFAIL.
 */
#define RESOLVE_TIMEOUT_MS	2000
#define RESOLVE_TRIES		2
#define RESOLVE_SERVERS_MAX	64	/* name servers of one resolver */
#define RESOLVE_SERVER_LEN	64	/* longest "[ADDR]:PORT" + NUL */

enum resolve_status {
	RESOLVE_OK,
	RESOLVE_NXDOMAIN,	/* no such name (addresses: or no record) */
	RESOLVE_TEMPFAIL,	/* timeout, SERVFAIL, REFUSED: try later */
	RESOLVE_CANCELLED	/* resolver_free() with the lookup pending */
};

/* A name server: numeric, family AF_INET (addr[0..3]) or AF_INET6. */
struct resolve_server {
	int		family;
	uint8_t		addr[16];
	uint16_t	port;		/* 53 unless given */
};

/*
 * Parse one [dns] servers item: ADDR, ADDR:PORT, [ADDR]:PORT or a bare
 * IPv6 address ("::1"; with a port it needs brackets: "[::1]:5353").
 * Addresses are strictly numeric (no "127.1", no zone index), ports 1
 * to 65535 in decimal.  Returns 0, or -1 with *errstr_r set to a static
 * phrase that follows the quoted item ("'x' is not a numeric ...").
 * conf.c checks the file with it, so what check-config accepts is
 * exactly what resolver_new() accepts.
 */
int	resolve_server_parse(const char *s, struct resolve_server *srv,
	    const char **errstr_r);

/*
 * A resolver on base.  servers are the nservers items of the [dns]
 * servers list ("ADDR[:PORT]"); none means the system's resolver: the
 * servers of /etc/resolv.conf, and /etc/hosts in the order
 * /etc/nsswitch.conf gives.  With servers given, they alone are asked.
 * Names are looked up as they are, never with a search domain appended.
 * Returns NULL with a message in err when an item is malformed or
 * c-ares cannot start.
 */
struct resolver	*resolver_new(struct event_base *base,
		    char *const *servers, size_t nservers, char *err,
		    size_t errlen);

/*
 * Stop every lookup and free the resolver.  Each callback still pending
 * is called once, from inside resolver_free(), with RESOLVE_CANCELLED;
 * it must not start a new lookup on this resolver.  NULL is allowed.
 * Safe to call from a resolver callback.
 */
void		 resolver_free(struct resolver *r);

/*
 * The addresses of a lookup, in the 16-octet form of ipmatch.h (IPv4
 * as ::ffff:a.b.c.d), at most RESOLVE_ADDRS_MAX, no duplicates, in no
 * particular order.  addrs is valid only during the call; it is NULL
 * when n is 0.  ttl, in seconds:
 *	RESOLVE_OK		the smallest TTL of the records (and of the
 *				CNAMEs that led to them), at most
 *				RESOLVE_TTL_MAX; RESOLVE_TTL_MAX for a
 *				numeric name ("192.0.2.1"), which is its own
 *				answer; 0 for an /etc/hosts answer or a
 *				record with TTL 0, so whoever refreshes by
 *				TTL needs a floor of their own
 *	RESOLVE_NXDOMAIN	RESOLVE_NEG_TTL
 *	RESOLVE_TEMPFAIL,
 *	RESOLVE_CANCELLED	0
 */
typedef void	(*resolver_addrs_cb)(void *arg, enum resolve_status status,
		    const uint8_t (*addrs)[16], size_t n, unsigned int ttl);

/*
 * Look up the A and AAAA records of name.  cb is called exactly once,
 * always later from the event loop (or from resolver_free()), never
 * from inside this call.  A name that cannot exist (empty, longer than
 * 253 octets) gets RESOLVE_NXDOMAIN; more than RESOLVE_PENDING_MAX
 * lookups in flight get RESOLVE_TEMPFAIL.  Otherwise name goes out as
 * it is (c-ares reads "\." escapes in it): a name taken from a client
 * must have been checked by the caller.
 */
void		 resolver_addrs(struct resolver *r, const char *name,
		    resolver_addrs_cb cb, void *arg);
/* The same for one family only: AF_INET (A), AF_INET6 (AAAA), or
 * AF_UNSPEC (both, as resolver_addrs()). */
void		 resolver_addrs_af(struct resolver *r, const char *name,
		    int family, resolver_addrs_cb cb, void *arg);

/*
 * One MX record (RFC 5321 5.1).  host is a host name as checked on
 * arrival: letters, digits, '-' and '_' in labels that are not empty,
 * joined by dots, at most 253 octets.
 */
struct resolve_mx {
	unsigned int	pref;
	char		host[254];	/* lower case, no trailing dot; "" = null MX "." */
};

/*
 * The MX records of a lookup.  mx is valid only during the call; it is
 * NULL when n is 0.
 *	RESOLVE_OK, n >= 1	sorted by pref, lowest first, records of
 *				equal pref in random order (RFC 5321 5.1);
 *				each host once, at its lowest pref; at most
 *				RESOLVE_MX_MAX, those of the lowest prefs.
 *				A lone exchange "." is the null MX of RFC
 *				7505 (the domain takes no mail): n is 1 and
 *				host is "".  A "." among other records is
 *				dropped.  ttl is the smallest TTL of the
 *				records (and of the CNAMEs that led to
 *				them), at most RESOLVE_TTL_MAX
 *	RESOLVE_OK, n == 0	the domain exists but has no MX record: mail
 *				goes to its own A and AAAA (implicit MX,
 *				RFC 5321 5.1); ttl RESOLVE_NEG_TTL
 *	RESOLVE_NXDOMAIN	no such domain; ttl RESOLVE_NEG_TTL
 *	RESOLVE_TEMPFAIL	timeout, SERVFAIL, REFUSED, an answer that
 *				cannot be parsed, or one whose exchanges
 *				are all malformed; ttl 0
 *	RESOLVE_CANCELLED	ttl 0
 */
typedef void	(*resolver_mx_cb)(void *arg, enum resolve_status status,
		    const struct resolve_mx *mx, size_t n, unsigned int ttl);

/*
 * Look up the MX records of domain.  cb is called exactly once, always
 * later from the event loop (or from resolver_free()), never from
 * inside this call.  A domain that cannot exist (empty, longer than 253
 * octets) gets RESOLVE_NXDOMAIN, and more than RESOLVE_PENDING_MAX
 * lookups in flight (of either kind) get RESOLVE_TEMPFAIL, as with
 * resolver_addrs().  Otherwise domain goes out as it is, never with a
 * search domain appended: a domain taken from a client must have been
 * checked by the caller.
 */
void		 resolver_mx(struct resolver *r, const char *domain,
		    resolver_mx_cb cb, void *arg);

/*
 * The host name of an address (PTR, in the 16-octet form of ipmatch.h),
 * for Received: and the log.  name, valid during the call, is the
 * first name of the answer, lower case, checked like an MX exchange;
 * NULL unless RESOLVE_OK.  A name that does not pass, or no PTR at
 * all, is RESOLVE_NXDOMAIN.  cb is called once, from the loop, as for
 * resolver_addrs().  The answer is not trusted: whoever shows the name
 * as the client's confirms it with resolver_addrs() first (FCrDNS).
 */
typedef void	(*resolver_name_cb)(void *arg, enum resolve_status status,
		    const char *name);
void		 resolver_ptr(struct resolver *r, const uint8_t addr[16],
		    resolver_name_cb cb, void *arg);

/*
 * The TXT records of name (SPF, DNSBL reasons): each record's strings
 * joined, NUL-terminated, at most RESOLVE_TXT_MAX records of at most
 * RESOLVE_TXT_LEN octets (a record holding a NUL, or longer, is left
 * out); txt is valid during the call, NULL when n is 0.
 *	RESOLVE_OK, n >= 1	the records; ttl their smallest TTL
 *	RESOLVE_OK, n == 0	the name exists without TXT (NODATA)
 *	RESOLVE_NXDOMAIN	no such name
 *	RESOLVE_TEMPFAIL	timeout, SERVFAIL, REFUSED, unparsable
 * cb is called once, from the loop, as for resolver_addrs().
 */
#define RESOLVE_TXT_MAX		32
#define RESOLVE_TXT_LEN		4096
typedef void	(*resolver_txt_cb)(void *arg, enum resolve_status status,
		    const char *const *txt, size_t n, unsigned int ttl);
void		 resolver_txt(struct resolver *r, const char *name,
		    resolver_txt_cb cb, void *arg);

/* The event base the resolver runs on (for the caller's own timers). */
struct event_base	*resolver_base(struct resolver *r);

/* "ok", "nxdomain", "tempfail", "cancelled": for logs. */
const char	*resolve_status_name(enum resolve_status status);

#endif

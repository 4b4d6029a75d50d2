/*
 * spf.h - the SPF check of RFC 7208 (R4.3): check_host() of section 4
 * as a resumable state machine with no I/O of its own.  The store role
 * drives it with asynchronous lookups; a test drives it from zone data
 * held in memory.
 *
 *	s = spf_new(&params, &errstr);
 *	while (spf_next(s, &q) == SPF_STEP_QUERY) {
 *		look up q.name (q.type), then
 *		spf_answer(s, status, records, n);
 *	}
 *	spf_result(s), spf_explanation(s), spf_received(s, buf, size)
 *	spf_free(&s);
 *
 * Between spf_next() and spf_answer() the caller may wait as long as it
 * likes (an event loop, a callback): the machine only moves when it is
 * called.  RFC 7208 4.6.4 asks for a bound on the whole check (at least
 * 20 seconds): that is the caller's clock; a lookup it gives up on is
 * answered SPF_DNS_TEMPFAIL.
 *
 * Everything that comes from DNS is untrusted and bounded on arrival: a
 * record is at most SPF_RECORD_MAX octets, at most SPF_LOOKUPS_MAX terms
 * query DNS (RFC 7208 4.6.4), so at most 1 + SPF_LOOKUPS_MAX * (1 +
 * SPF_MXPTR_MAX) + 12 queries are asked, and memory is one struct spf
 * (15 kB) plus at most SPF_DEPTH_MAX frames of 4.5 kB, whatever the
 * answers say.
 *
 * The record parser and the macro expander are pure functions, exported
 * for the unit tests and the fuzz target.
 */
#ifndef MAIL_SPF_H
#define MAIL_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SPF_NAME_MAX		253	/* a domain name, no root dot */
#define SPF_SENDER_MAX		512	/* longest MAIL FROM evaluated */
#define SPF_RECORD_MAX		4096	/* longest SPF (or exp=) TXT record */
#define SPF_LOOKUPS_MAX		10	/* terms that query DNS, 4.6.4 */
#define SPF_VOIDS_MAX		2	/* lookups with no answer, 4.6.4 */
#define SPF_MXPTR_MAX		10	/* MX or PTR names per term, 4.6.4 */
#define SPF_DEPTH_MAX		(1 + SPF_LOOKUPS_MAX)	/* nested include */
#define SPF_EXP_MAX		512	/* explanation, NUL included */
#define SPF_MECH_MAX		128	/* the matched term, for logs */
#define SPF_PROBLEM_MAX		192	/* why an error or none, for logs */
#define SPF_HEADER_MAX		4096	/* always enough for spf_received() */
#define SPF_HEADER_VALUE_MAX	320	/* octets of one value in it */

/* RFC 7208 2.6; in this order, so that they can index tables. */
enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR
};

enum spf_step {
	SPF_STEP_QUERY,		/* *q holds a lookup to make */
	SPF_STEP_DONE		/* the result is known */
};

enum spf_qtype {
	SPF_Q_TXT,
	SPF_Q_A,
	SPF_Q_AAAA,
	SPF_Q_MX,
	SPF_Q_PTR
};

/* What a lookup came to. */
enum spf_dns {
	SPF_DNS_OK,		/* records follow (n may still be 0: NODATA) */
	SPF_DNS_NXDOMAIN,	/* RCODE 3, no such name */
	SPF_DNS_NODATA,		/* the name exists, no record of the type */
	SPF_DNS_TEMPFAIL	/* SERVFAIL, REFUSED, timeout, CNAME loop */
};

/*
 * A lookup to make.  name has no trailing dot and holds octets 0x20 to
 * 0x7e only (macros may put spaces or any visible character in it, as
 * RFC 7208 7.3 allows): a resolver that reads escapes, as c-ares does,
 * must have '\\' escaped first.  Labels are 1 to 63 octets.  For
 * SPF_Q_PTR, name is the in-addr.arpa or ip6.arpa name and addr the
 * client's address (ipmatch.h form: IPv4 as ::ffff:a.b.c.d), for
 * resolvers that take an address.  Names are compared without regard
 * to case.
 */
struct spf_query {
	enum spf_qtype	type;
	char		name[SPF_NAME_MAX + 1];
	uint8_t		addr[16];
};

/*
 * One record of an answer, valid during spf_answer() only.
 *	SPF_Q_TXT	text, len: the character-strings of one TXT record
 *			joined with nothing between them (RFC 7208 3.3);
 *			any octet may occur, NUL too
 *	SPF_Q_A, _AAAA	addr, in the ipmatch.h form; addresses of the
 *			other family are ignored, so resolver_addrs(),
 *			which gives both, may answer either query
 *	SPF_Q_MX	text, len: the exchange (pref is not needed)
 *	SPF_Q_PTR	text, len: the name pointed to
 * text may be NULL when len is 0.
 */
struct spf_rr {
	const char	*text;
	size_t		 len;
	uint8_t		 addr[16];
};

/*
 * The check to make.  Exactly one of ip and addr is given.  sender is
 * the MAIL FROM address without its angle brackets, "" for the null
 * sender: then the HELO identity is checked, as postmaster@helo (RFC
 * 7208 2.3, 2.4).  A sender without '@' is taken as a domain, and one
 * without local-part gets "postmaster" (4.3).
 */
struct spf_params {
	const char	*ip;		/* client address as text, or NULL */
	const uint8_t	*addr;		/* or as 16 octets, ipmatch.h form */
	const char	*sender;	/* NULL is the same as "" */
	const char	*helo;		/* HELO/EHLO argument; NULL: "" */
	const char	*receiver;	/* our name, %{r}; NULL: "unknown" */
	/*
	 * The explanation of a fail whose record has no usable exp= (an
	 * explain-string: macros allowed); NULL: a built-in one.
	 */
	const char	*default_exp;
	time_t		 now;		/* %{t} */
};

struct spf;

/*
 * A new check, nothing asked yet.  Returns NULL with *errstr_r set (a
 * static phrase) when the address is not one, receiver or default_exp
 * is too long, or on ENOMEM.  The strings of p are copied.  A sender or
 * HELO name longer than SPF_SENDER_MAX octets (twice what RFC 5321
 * allows) is malformed, and makes the result none (RFC 7208 4.3).
 */
struct spf	*spf_new(const struct spf_params *p, const char **errstr_r);

/* Free *sp and set it to NULL; NULL and *sp == NULL are allowed. */
void		 spf_free(struct spf **sp);

/*
 * Move on as far as possible without DNS.  Returns SPF_STEP_QUERY with
 * *q filled in when a lookup is needed; its answer goes to
 * spf_answer().  Called again before that, it returns the same query.
 * Returns SPF_STEP_DONE when the result is known (and from then on).
 */
enum spf_step	 spf_next(struct spf *s, struct spf_query *q);

/*
 * The answer to the last query: its status and, for SPF_DNS_OK, its n
 * records (rrs may be NULL when n is 0).  Everything needed is copied.
 * An answer when no query is pending is ignored.
 */
void		 spf_answer(struct spf *s, enum spf_dns status,
		    const struct spf_rr *rrs, size_t n);

/* The result, once spf_next() returned SPF_STEP_DONE. */
enum spf_result	 spf_result(const struct spf *s);

/*
 * For a fail, the explanation: the exp= text of the record with its
 * macros expanded, else the default (RFC 7208 6.2); printable ASCII
 * only, at most SPF_EXP_MAX - 1 octets.  NULL for other results.
 * Valid until spf_free().
 */
const char	*spf_explanation(const struct spf *s);

/*
 * For the log and Received-SPF: the term of the checked domain's record
 * that decided ("-all", "include:_spf.example.com", "default" when none
 * matched), or NULL; and the problem behind none, temperror and
 * permerror, or NULL.  Printable ASCII, valid until spf_free().
 */
const char	*spf_mechanism(const struct spf *s);
const char	*spf_problem(const struct spf *s);

/* "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror" */
const char	*spf_result_name(enum spf_result r);

/*
 * The Received-SPF header field of RFC 7208 9.1 for a finished check,
 * folded with CRLF TAB and ending in CRLF:
 *
 *	Received-SPF: pass (mx.example.org: domain of a@example.com
 *	    designates 192.0.2.1 as permitted sender) receiver=...;
 *	    client-ip=192.0.2.1; envelope-from="a@example.com"; helo=...;
 *	    identity=mailfrom; mechanism="ip4:192.0.2.0/24"
 *
 * Values from outside (sender, HELO, the record's terms) are written as
 * a dot-atom or a quoted-string, cut at SPF_HEADER_VALUE_MAX octets
 * (ending in "..." when cut); control and 8-bit octets become '?', so
 * no CR or LF of theirs gets through.  Lines stay under 998 octets.
 * Returns the length, or -1 when size is too small; SPF_HEADER_MAX
 * always suffices.
 */
int		 spf_received(const struct spf *s, char *buf, size_t size);

/*
 * The pure parts.
 */

enum spf_mech {
	SPF_M_ALL,
	SPF_M_INCLUDE,
	SPF_M_A,
	SPF_M_MX,
	SPF_M_PTR,
	SPF_M_IP4,
	SPF_M_IP6,
	SPF_M_EXISTS,
	SPF_M_REDIRECT,		/* the modifiers */
	SPF_M_EXP,
	SPF_M_UNKNOWN		/* an unknown modifier, ignored (6) */
};

/* One term, parsed; spec points into the term's text. */
struct spf_term {
	enum spf_mech	 mech;
	char		 qual;		/* '+' '-' '~' '?' ('+': modifiers) */
	const char	*spec;		/* domain-spec, modifier value, NULL */
	size_t		 spec_len;
	bool		 spec_p;	/* spec uses the %{p} macro */
	unsigned int	 cidr4, cidr6;	/* 32 and 128 unless given */
	uint8_t		 net[16];	/* ip4, ip6: ipmatch.h form */
};

/*
 * Parse one term (RFC 7208 4.6.1, 5, 6, 12), len octets without spaces.
 * Mechanism and modifier names are case-insensitive; a domain-spec must
 * be a macro-string ending in a macro or in "." toplabel (7.1), without
 * the macros c, r and t (exp text only).  Returns 0, or -1 with
 * *errstr_r set to a static phrase.
 */
int	spf_term_parse(const char *term, size_t len, struct spf_term *t,
	    const char **errstr_r);

/* A whole record, checked before any term is evaluated (4.6). */
struct spf_record {
	const char	*redirect, *exp;	/* modifier values, or NULL */
	size_t		 redirect_len, exp_len;
	bool		 redirect_p, exp_p;	/* they use %{p} */
	bool		 has_all;
	unsigned int	 terms;
	const char	*bad;		/* on error: the term, or NULL */
	size_t		 bad_len;
};

/*
 * Parse rec[0..len): "v=spf1" (any case) then terms separated by spaces
 * (4.5, 4.6.1, 12).  Any octet outside 0x21..0x7e in a term (NUL, tab,
 * CR, 8-bit) is a syntax error, as is redirect= or exp= twice (6).
 * Returns 0, or -1 with *errstr_r set and r->bad naming the term when
 * there is one.  Pointers in *r point into rec.
 */
int	spf_record_parse(const char *rec, size_t len, struct spf_record *r,
	    const char **errstr_r);

/* Is rec an SPF record: "v=spf1" in any case, then a space or the end? */
bool	spf_record_is_spf(const char *rec, size_t len);

/*
 * The values of the macro letters (RFC 7208 7.3); NULL reads as "", and
 * only the first 1024 octets of a value are used.
 */
struct spf_macros {
	const char	*s, *l, *o, *d, *i, *p, *v, *h, *c, *r, *t;
};

#define SPF_MACRO_EXP	0x01	/* an explain-string: SP, c, r, t allowed */

/*
 * Check a macro-string (or with SPF_MACRO_EXP an explain-string) of 7.1
 * without expanding it: 0, or -1 with *errstr_r.  *uses_p_r, if not
 * NULL, tells whether it has the %{p} macro.
 */
int	spf_macro_check(const char *in, size_t len, int flags, bool *uses_p_r,
	    const char **errstr_r);

/*
 * Expand in[0..len) into out (size octets, NUL included).  Upper-case
 * macro letters are URL-escaped (7.3).  Without SPF_MACRO_EXP the
 * result is a name to query: its trailing dot is removed and, over
 * SPF_NAME_MAX octets, labels are removed on the left until it fits
 * (7.3), so size must be at least SPF_NAME_MAX + 1.  With it, a result
 * that does not fit is an error.  Returns the length, or -1 with
 * *errstr_r on a syntax error or overflow.
 */
int	spf_macro_expand(const char *in, size_t len,
	    const struct spf_macros *m, int flags, char *out, size_t size,
	    const char **errstr_r);

#endif

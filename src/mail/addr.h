/*
 * addr.h - RFC 5321 / RFC 6531 mailbox paths: parse, canonicalise, print.
 *
 * Pure functions, no allocation, no I/O.  Input comes straight from the
 * network: every field has a fixed bound and an address that does not fit
 * is refused, never truncated.
 */
#ifndef MAIL_ADDR_H
#define MAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1, in octets */
#define ADDR_DOMAIN_MAX	255	/* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX	256	/* RFC 5321 4.5.3.1.3, brackets included */

/* mailaddr.flags */
#define ADDR_F_NULL	0x01	/* "<>": the null reverse-path */
#define ADDR_F_QUOTED	0x02	/* local part was a Quoted-string */
#define ADDR_F_LITERAL	0x04	/* domain is an address literal [..] */
#define ADDR_F_UTF8	0x08	/* non-ASCII octets (RFC 6531) present */
#define ADDR_F_ROUTE	0x10	/* a source route "@a,@b:" was given */
#define ADDR_F_POSTMASTER 0x20	/* "<postmaster>" without a domain */

struct mailaddr {
	/*
	 * Local part as it would be written on the wire, unquoted: for
	 * "\"a b\"@x" this holds "a b" and ADDR_F_QUOTED is set.  The
	 * case is kept: only lookups fold it.
	 */
	char		local[ADDR_LOCAL_MAX + 1];
	/*
	 * Domain in lower case (ASCII letters only are folded) without a
	 * trailing dot; for a literal, the brackets are kept:
	 * "[192.0.2.1]" or "[ipv6:2001:db8::1]".
	 */
	char		domain[ADDR_DOMAIN_MAX + 1];
	unsigned int	flags;
};

/*
 * Parse a Path or Reverse-path beginning at s (leading spaces are not
 * skipped: s must point at '<').  With allow_utf8, UTF-8 is accepted in
 * the local part and in domain labels (SMTPUTF8); it must be well formed.
 * "<>" is parsed (ADDR_F_NULL) and "<postmaster>" (ADDR_F_POSTMASTER,
 * local "postmaster", empty domain): the caller decides where they are
 * legal.  A source route is parsed and dropped (ADDR_F_ROUTE).
 * An empty local part ("\"\"@x") and general address literals
 * ("[tag:...]") are refused.
 * On success returns 0 and sets *end_r just past the closing '>'.
 * On error returns -1 and sets *errstr_r to a static text suitable for
 * the log (not the SMTP reply).
 */
int	addr_parse_path(const char *s, bool allow_utf8, struct mailaddr *a,
	    const char **end_r, const char **errstr_r);

/*
 * Parse a bare "local@domain" (no brackets), as typed by an administrator.
 * Same rules and bounds as addr_parse_path; the whole string must be
 * consumed.  Returns 0 or -1 with *errstr_r.
 */
int	addr_parse(const char *s, bool allow_utf8, struct mailaddr *a,
	    const char **errstr_r);

/*
 * Write the address as "local@domain", quoting the local part when it is
 * not a Dot-string; "" for the null path.  Returns the length, or -1 when
 * it does not fit in size bytes (buf is then an empty string).
 */
int	addr_format(const struct mailaddr *a, char *buf, size_t size);

/*
 * Lower-case copy of the local part (ASCII only) for lookups, e.g. the
 * Maildir name.  Returns 0, or -1 when it does not fit.
 */
int	addr_local_fold(const struct mailaddr *a, char *buf, size_t size);

/* True if the domain string is a syntactically valid RFC 5321 Domain
 * (not a literal, no trailing dot); used for HELO arguments and
 * administrator input. */
bool	addr_domain_valid(const char *domain, bool allow_utf8);

#endif

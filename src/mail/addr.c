/*
 * addr.c - RFC 5321 / RFC 6531 mailbox paths: parse, canonicalise, print.
 *
 * Run by the net role on MAIL and RCPT arguments straight from the
 * client, and by the tools on administrator input; it trusts none of it.
 * Every field is bounded and copied only after its bound was checked;
 * nothing is allocated.  Control octets (NUL, CR, LF, ...) are never
 * accepted, nor malformed UTF-8, overlongs, surrogates or C1 controls.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "addr.h"

#define LABEL_MAX	63	/* RFC 1035 2.3.4, octets of an ASCII label */
#define LITERAL_MAX	64	/* octets between '[' and ']' */

/* A bounded writer for addr_format(). */
struct out {
	char	*buf;
	size_t	 size, len;
	int	 overflow;
};

static int
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
to_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* RFC 5322 atext, ASCII part. */
static int
is_atext(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/*
 * Length of the well-formed UTF-8 sequence for one non-ASCII scalar at p
 * (RFC 3629 table 4), at most avail octets long; 0 when it is ill formed.
 * C1 controls (U+0080..U+009F) are refused like the ASCII ones.
 */
static size_t
utf8_len(const uint8_t *p, size_t avail)
{
	uint8_t	lo = 0x80, hi = 0xbf;
	size_t	n, i;

	if (p[0] == 0xc2)
		lo = 0xa0;			/* C1 controls */
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;			/* overlong */
	else if (p[0] == 0xed)
		hi = 0x9f;			/* surrogates */
	else if (p[0] == 0xf0)
		lo = 0x90;			/* overlong */
	else if (p[0] == 0xf4)
		hi = 0x8f;			/* past U+10FFFF */
	if (n > avail || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Check one label of a domain: Let-dig [Ldh-str], or a U-label when utf8
 * is allowed (its IDNA validity is not checked here).
 */
static int
check_label(const uint8_t *s, size_t len, bool utf8, const char **errstr_r)
{
	size_t	i, n;
	int	ascii = 1;

	if (len == 0) {
		*errstr_r = "empty domain label";
		return -1;
	}
	if (s[0] == '-' || s[len - 1] == '-') {
		*errstr_r = "domain label begins or ends with '-'";
		return -1;
	}
	for (i = 0; i < len; i += n) {
		n = 1;
		if (is_alnum(s[i]) || s[i] == '-')
			continue;
		if (s[i] < 0x80) {
			*errstr_r = "invalid character in domain";
			return -1;
		}
		if (!utf8) {
			*errstr_r = "non-ASCII domain without SMTPUTF8";
			return -1;
		}
		if ((n = utf8_len(s + i, len - i)) == 0) {
			*errstr_r = "invalid UTF-8 in domain";
			return -1;
		}
		ascii = 0;
	}
	if (ascii && len > LABEL_MAX) {
		*errstr_r = "domain label too long";
		return -1;
	}
	return 0;
}

/* Check a Domain of len octets, with no trailing dot. */
static int
check_domain(const uint8_t *s, size_t len, bool utf8, const char **errstr_r)
{
	const uint8_t	*dot;

	if (len == 0) {
		*errstr_r = "empty domain";
		return -1;
	}
	if (len > ADDR_DOMAIN_MAX) {
		*errstr_r = "domain too long";
		return -1;
	}
	while ((dot = memchr(s, '.', len)) != NULL) {
		if (check_label(s, dot - s, utf8, errstr_r) == -1)
			return -1;
		len -= dot - s + 1;
		s = dot + 1;
	}
	return check_label(s, len, utf8, errstr_r);
}

/*
 * Parse a Domain at *pp, which ends at the first octet that cannot be
 * part of one; a single trailing dot is dropped.  The domain is copied
 * in lower case to out when it is not NULL.
 */
static int
parse_domain(const char **pp, bool utf8, char *out, const char **errstr_r)
{
	const uint8_t	*s = (const uint8_t *)*pp, *p = s;
	size_t		 len, i;

	while (is_alnum(*p) || *p == '-' || *p == '.' || *p >= 0x80)
		p++;
	len = p - s;
	if (len > 1 && s[len - 1] == '.' && s[len - 2] != '.')
		len--;
	if (check_domain(s, len, utf8, errstr_r) == -1)
		return -1;
	if (out != NULL) {
		for (i = 0; i < len; i++)
			out[i] = to_lower(s[i]);
		out[len] = '\0';
	}
	*pp = (const char *)p;
	return 0;
}

/*
 * Parse an address literal "[...]" at *pp: an IPv4 address or "IPv6:"
 * and an IPv6 address, both checked with inet_pton().  General literals
 * (RFC 5321 4.1.3 Standardized-tag) are refused: nothing can route them.
 */
static int
parse_literal(const char **pp, struct mailaddr *a, const char **errstr_r)
{
	const char	*s = *pp + 1, *end;
	char		 tmp[LITERAL_MAX + 1];
	uint8_t		 bin[16];
	size_t		 len, i;
	int		 ok;

	if ((end = strchr(s, ']')) == NULL || (len = end - s) > LITERAL_MAX) {
		*errstr_r = "bad address literal";
		return -1;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (strncasecmp(tmp, "IPv6:", 5) == 0)
		ok = inet_pton(AF_INET6, tmp + 5, bin) == 1;
	else if (strchr(tmp, ':') != NULL)
		ok = 0;
	else
		ok = inet_pton(AF_INET, tmp, bin) == 1;
	if (!ok) {
		*errstr_r = "bad address literal";
		return -1;
	}
	a->domain[0] = '[';
	for (i = 0; i < len; i++)
		a->domain[i + 1] = to_lower(tmp[i]);
	memcpy(a->domain + len + 1, "]", 2);
	a->flags |= ADDR_F_LITERAL;
	*pp = end + 1;
	return 0;
}

/*
 * Copy one local-part character (or a UTF-8 sequence) from p; n is the
 * number of octets stored so far.  Returns the octets taken, or 0.
 */
static size_t
local_char(const uint8_t *p, bool utf8, struct mailaddr *a, size_t n,
    const char **errstr_r)
{
	size_t	l = 1;

	if (*p >= 0x80) {
		if (!utf8) {
			*errstr_r = "non-ASCII local part without SMTPUTF8";
			return 0;
		}
		if ((l = utf8_len(p, 4)) == 0) {
			*errstr_r = "invalid UTF-8 in local part";
			return 0;
		}
		a->flags |= ADDR_F_UTF8;
	}
	if (n + l > ADDR_LOCAL_MAX) {
		*errstr_r = "local part too long";
		return 0;
	}
	memcpy(a->local + n, p, l);
	return l;
}

/* Dot-string: Atom *("." Atom), atext extended with UTF-8 (RFC 6531). */
static int
parse_dot_string(const char **pp, bool utf8, struct mailaddr *a,
    const char **errstr_r)
{
	const uint8_t	*p = (const uint8_t *)*pp;
	size_t		 n = 0, l;

	for (;;) {
		if (*p == '.' && (n == 0 || a->local[n - 1] == '.')) {
			*errstr_r = "empty atom in local part";
			return -1;
		}
		if (*p != '.' && *p < 0x80 && !is_atext(*p))
			break;
		if ((l = local_char(p, utf8, a, n, errstr_r)) == 0)
			return -1;
		p += l;
		n += l;
	}
	if (n == 0 || a->local[n - 1] == '.') {
		*errstr_r = n == 0 ? "empty local part" :
		    "empty atom in local part";
		return -1;
	}
	a->local[n] = '\0';
	*pp = (const char *)p;
	return 0;
}

/*
 * Quoted-string: DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE, stored
 * unquoted.  The bound applies to the wire form, quotes included.
 */
static int
parse_quoted(const char **pp, bool utf8, struct mailaddr *a,
    const char **errstr_r)
{
	const uint8_t	*s = (const uint8_t *)*pp, *p = s + 1;
	size_t		 n = 0, l;
	int		 pair;

	while (*p != '"') {
		if ((pair = *p == '\\'))
			p++;
		if (*p < 0x20 || *p == 0x7f || (pair && *p >= 0x80)) {
			*errstr_r = "invalid character in quoted local part";
			return -1;
		}
		if ((l = local_char(p, utf8, a, n, errstr_r)) == 0)
			return -1;
		p += l;
		n += l;
	}
	if (p + 1 - s > ADDR_LOCAL_MAX) {
		*errstr_r = "local part too long";
		return -1;
	}
	if (n == 0) {
		*errstr_r = "empty local part";
		return -1;
	}
	a->local[n] = '\0';
	a->flags |= ADDR_F_QUOTED;
	*pp = (const char *)p + 1;
	return 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) */
static int
parse_mailbox(const char **pp, bool utf8, struct mailaddr *a,
    const char **errstr_r)
{
	const char	*p = *pp;
	int		 r;

	if (*p == '"')
		r = parse_quoted(&p, utf8, a, errstr_r);
	else
		r = parse_dot_string(&p, utf8, a, errstr_r);
	if (r == -1)
		return -1;
	if (*p++ != '@') {
		*errstr_r = "missing '@'";
		return -1;
	}
	if (*p == '[')
		r = parse_literal(&p, a, errstr_r);
	else
		r = parse_domain(&p, utf8, a->domain, errstr_r);
	if (r == -1)
		return -1;
	if (utf8 && !(a->flags & ADDR_F_LITERAL))
		for (r = 0; a->domain[r] != '\0'; r++)
			if ((uint8_t)a->domain[r] >= 0x80)
				a->flags |= ADDR_F_UTF8;
	*pp = p;
	return 0;
}

/* A-d-l ":" -- parsed and dropped (RFC 5321 4.1.2, C.). */
static int
skip_route(const char **pp, bool utf8, const char **errstr_r)
{
	const char	*p = *pp;

	for (;;) {
		if (*p++ != '@') {
			*errstr_r = "bad source route";
			return -1;
		}
		if (parse_domain(&p, utf8, NULL, errstr_r) == -1)
			return -1;
		if (*p == ':')
			break;
		if (*p++ != ',') {
			*errstr_r = "bad source route";
			return -1;
		}
	}
	*pp = p + 1;
	return 0;
}

static int
parse_path(const char *s, bool utf8, struct mailaddr *a, const char **end_r,
    const char **errstr_r)
{
	const char	*p = s;

	if (*p++ != '<') {
		*errstr_r = "missing '<'";
		return -1;
	}
	if (*p == '>') {
		a->flags = ADDR_F_NULL;
		*end_r = p + 1;
		return 0;
	}
	if (strncasecmp(p, "postmaster>", 11) == 0) {
		memcpy(a->local, "postmaster", 11);
		a->flags = ADDR_F_POSTMASTER;
		*end_r = p + 11;
		return 0;
	}
	if (*p == '@') {
		if (skip_route(&p, utf8, errstr_r) == -1)
			return -1;
		a->flags |= ADDR_F_ROUTE;
	}
	if (parse_mailbox(&p, utf8, a, errstr_r) == -1)
		return -1;
	if (*p++ != '>') {
		*errstr_r = "missing '>'";
		return -1;
	}
	if (p - s > ADDR_PATH_MAX) {
		*errstr_r = "path too long";
		return -1;
	}
	*end_r = p;
	return 0;
}

/*
 * On error the address is left empty, so that a caller that ignores the
 * return value holds nothing half parsed.
 */
int
addr_parse_path(const char *s, bool allow_utf8, struct mailaddr *a,
    const char **end_r, const char **errstr_r)
{
	memset(a, 0, sizeof(*a));
	if (parse_path(s, allow_utf8, a, end_r, errstr_r) == 0)
		return 0;
	memset(a, 0, sizeof(*a));
	return -1;
}

int
addr_parse(const char *s, bool allow_utf8, struct mailaddr *a,
    const char **errstr_r)
{
	const char	*p = s;

	memset(a, 0, sizeof(*a));
	if (parse_mailbox(&p, allow_utf8, a, errstr_r) == -1)
		goto fail;
	if (*p != '\0') {
		*errstr_r = "trailing characters after address";
		goto fail;
	}
	/* The bound of the path, whose brackets are not written here. */
	if ((size_t)(p - s) > ADDR_PATH_MAX - 2) {
		*errstr_r = "path too long";
		goto fail;
	}
	return 0;
fail:
	memset(a, 0, sizeof(*a));
	return -1;
}

/* True if local can be written as a Dot-string, unquoted. */
static int
is_dot_string(const char *local)
{
	const uint8_t	*p = (const uint8_t *)local;

	if (*p == '\0' || *p == '.')
		return 0;
	for (; *p != '\0'; p++) {
		if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
			return 0;
		if (*p != '.' && *p < 0x80 && !is_atext(*p))
			return 0;
	}
	return 1;
}

static void
out_put(struct out *o, const char *s, size_t len)
{
	if (o->overflow || len >= o->size - o->len) {
		o->overflow = 1;
		return;
	}
	memcpy(o->buf + o->len, s, len);
	o->len += len;
	o->buf[o->len] = '\0';
}

static void
out_local(struct out *o, const char *local)
{
	const char	*p;

	if (is_dot_string(local)) {
		out_put(o, local, strlen(local));
		return;
	}
	out_put(o, "\"", 1);
	for (p = local; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			out_put(o, "\\", 1);
		out_put(o, p, 1);
	}
	out_put(o, "\"", 1);
}

int
addr_format(const struct mailaddr *a, char *buf, size_t size)
{
	struct out	o = { buf, size, 0, 0 };

	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (!(a->flags & ADDR_F_NULL)) {
		out_local(&o, a->local);
		if (a->domain[0] != '\0') {
			out_put(&o, "@", 1);
			out_put(&o, a->domain, strlen(a->domain));
		}
	}
	if (o.overflow) {
		buf[0] = '\0';
		return -1;
	}
	return (int)o.len;
}

int
addr_local_fold(const struct mailaddr *a, char *buf, size_t size)
{
	size_t	i, len = strlen(a->local);

	if (len >= size)
		return -1;
	for (i = 0; i <= len; i++)
		buf[i] = to_lower((uint8_t)a->local[i]);
	return 0;
}

/*
 * Strict: no trailing dot (the path parser drops one, this check does
 * not), labels of letters, digits and hyphens, or U-labels with utf8.
 */
bool
addr_domain_valid(const char *domain, bool allow_utf8)
{
	const char	*errstr;
	size_t		 len = strnlen(domain, ADDR_DOMAIN_MAX + 1);

	return check_domain((const uint8_t *)domain, len, allow_utf8,
	    &errstr) == 0;
}

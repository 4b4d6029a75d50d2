/*
 * spf.c - the SPF check of RFC 7208 (spf.h).
 *
 * Runs in the store role, on data from anywhere: the client's address,
 * sender and HELO name, and DNS answers shaped at will by whoever
 * publishes a zone.  Nothing here does I/O.  Records are parsed whole
 * before any term is evaluated (4.6), every string kept has a fixed
 * bound, and the limits of 4.6.4 bound the number of queries.
 *
 * The machine: a stack of frames, one per check_host() in progress (the
 * checked domain and the includes under it; redirect= replaces the top
 * frame).  spf_next() runs the state function of s->state until one of
 * them asks a query (s->wait) or the result is known; spf_answer() files
 * the answer where the waiting state finds it and moves the state on.
 * The PTR names of the client are asked once and validated one by one
 * as the ptr mechanism or the %{p} macro needs them (5.5, 7.3).
 */
#include <arpa/inet.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipmatch.h"
#include "log.h"
#include "spf.h"

#define LABEL_MAX	63
#define PARTS_MAX	(SPF_SENDER_MAX + 2)	/* parts of one macro value */
#define VALUE_MAX	(2 * SPF_SENDER_MAX)	/* octets of one macro value */
/*
 * A name being expanded keeps only its last NAME_KEEP octets once it
 * outgrows its buffer: enough for SPF_NAME_MAX octets, the dot before
 * them and a trailing dot (7.3 cuts labels on the left).
 */
#define NAME_KEEP	(SPF_NAME_MAX + 2)
#define NAME_WINDOW	(2 * NAME_KEEP)

static const char default_exp[] =
    "%{o} does not designate %{c} as permitted sender";

enum state {
	ST_START,	/* check the domain, then fetch its record */
	ST_FETCH,	/* ask the TXT records of the top frame's domain */
	ST_TERM,	/* take the top frame's next term */
	ST_EVAL,	/* a DNS term: expand its target and ask */
	ST_MX_ADDR,	/* mx: the addresses of the next exchange */
	ST_PTR,		/* ptr: search the validated names */
	ST_END,		/* the record ran out of terms */
	ST_REDIRECT,	/* follow its redirect= */
	ST_EXP,		/* a fail: fetch the exp= text */
	ST_EXPLAIN,	/* expand the explanation */
	ST_DONE
};

enum wait {
	W_NONE,
	W_RECORD,	/* TXT: the record of the top frame */
	W_ADDR,		/* A/AAAA: the a mechanism */
	W_EXISTS,	/* A: the exists mechanism */
	W_MX,		/* MX: the mx mechanism */
	W_MX_ADDR,	/* A/AAAA: one exchange */
	W_PTR,		/* PTR: the client's names */
	W_PTR_ADDR,	/* A/AAAA: validating one of them */
	W_EXP		/* TXT: the exp= text */
};

/* What is known of the client's PTR names. */
enum { P_UNKNOWN, P_NAMES, P_VOID, P_ERROR };
/* ... and of each name's validation */
enum { V_UNKNOWN, V_YES, V_NO };

/* One check_host() in progress. */
struct frame {
	char			 domain[SPF_NAME_MAX + 1];
	char			 rec[SPF_RECORD_MAX + 1];
	size_t			 len, pos;	/* pos: the next term */
	struct spf_record	 r;
	struct spf_term		 t;		/* the term being evaluated */
	const char		*term;		/* its text */
	size_t			 term_len;
	bool			 redirected;	/* reached by redirect= */
};

struct spf {
	/* the check */
	uint8_t		 addr[16];	/* ipmatch.h form */
	bool		 v4;
	bool		 helo_id;	/* the HELO identity is checked */
	bool		 malformed;	/* sender or HELO too long */
	char		 given[SPF_SENDER_MAX + 1];	/* MAIL FROM as given */
	char		 sender[SPF_SENDER_MAX + 12];	/* %{s} */
	char		 local[SPF_SENDER_MAX + 1];	/* %{l} */
	char		 domain[SPF_SENDER_MAX + 1];	/* %{o} */
	char		 helo[SPF_SENDER_MAX + 1];	/* %{h} */
	char		 receiver[SPF_NAME_MAX + 2];	/* %{r} */
	char		 ip_i[80], ip_c[48], t[24];	/* %{i}, %{c}, %{t} */
	char		 default_exp[SPF_EXP_MAX];

	enum state	 state;
	enum wait	 wait;
	struct spf_query q;
	unsigned int	 lookups, voids;
	struct frame	*frames[SPF_DEPTH_MAX];
	unsigned int	 depth;		/* frames in use */
	char		 target[SPF_NAME_MAX + 1];	/* of the term */

	char		 mx[SPF_MXPTR_MAX][SPF_NAME_MAX + 1];
	unsigned int	 mx_n, mx_i;

	int		 ptr_status;
	char		 ptr[SPF_MXPTR_MAX][SPF_NAME_MAX + 1];
	uint8_t		 ptr_valid[SPF_MXPTR_MAX];
	unsigned int	 ptr_n, ptr_i;
	bool		 p_known;
	char		 p[SPF_NAME_MAX + 1], p_for[SPF_NAME_MAX + 1];

	bool		 exp_found;	/* exp_text holds the exp= text */
	char		 exp_text[SPF_RECORD_MAX + 1];
	size_t		 exp_len;

	enum spf_result	 result;
	char		 exp[SPF_EXP_MAX];
	char		 mech[SPF_MECH_MAX];
	char		 problem[SPF_PROBLEM_MAX];
};

/*
 * Characters, in ASCII whatever the locale.
 */

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Equal, ignoring ASCII case; n octets of each. */
static bool
ci_eq(const char *a, const char *b, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

static bool
ci_streq(const char *a, const char *b)
{
	size_t	n = strlen(a);

	return n == strlen(b) && ci_eq(a, b, n);
}

/* Copy src[0..len) as printable ASCII, cut to fit with "...". */
static void
printable(char *dst, size_t size, const char *src, size_t len)
{
	size_t	i, n = len < size - 1 ? len : size - 1;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[n] = '\0';
	if (n < len && n >= 3)
		memcpy(dst + n - 3, "...", 3);
}

/*
 * Macros (RFC 7208 7).
 */

/* Where an expansion goes; NULL when only checking. */
struct out {
	char	*buf;
	size_t	 size, len;	/* size: octets usable, NUL excluded */
	bool	 name;		/* keep the right end (a name, 7.3) */
	bool	 over;
};

struct scan {
	bool	 uses_p;
	bool	 ends_macro;	/* the last token is a macro-expand */
};

static void
out_putc(struct out *o, char c)
{
	if (o == NULL)
		return;
	if (o->len == o->size) {
		if (!o->name) {
			o->over = true;
			return;
		}
		memmove(o->buf, o->buf + o->size - NAME_KEEP, NAME_KEEP);
		o->len = NAME_KEEP;
	}
	o->buf[o->len++] = c;
}

static void
out_puts(struct out *o, const char *s)
{
	while (*s != '\0')
		out_putc(o, *s++);
}

/* unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" (7.3) */
static void
out_url(struct out *o, char c, bool url)
{
	static const char	hex[] = "0123456789ABCDEF";
	unsigned char		u = (unsigned char)c;

	if (!url || is_alnum(u) || (u != '\0' && strchr("-._~", u) != NULL)) {
		out_putc(o, c);
		return;
	}
	out_putc(o, '%');
	out_putc(o, hex[u >> 4]);
	out_putc(o, hex[u & 0xf]);
}

static const char *
macro_value(const struct spf_macros *m, int letter)
{
	const char	*v = NULL;

	switch (lower(letter)) {
	case 's': v = m->s; break;
	case 'l': v = m->l; break;
	case 'o': v = m->o; break;
	case 'd': v = m->d; break;
	case 'i': v = m->i; break;
	case 'p': v = m->p; break;
	case 'v': v = m->v; break;
	case 'h': v = m->h; break;
	case 'c': v = m->c; break;
	case 'r': v = m->r; break;
	case 't': v = m->t; break;
	}
	return v == NULL ? "" : v;
}

/*
 * Put the value of a macro: split at the delimiters, reversed when rev,
 * its keep rightmost parts (0: all) joined by dots, URL-escaped when
 * url (7.3).  A value of more than PARTS_MAX parts keeps its tail in
 * the last one.
 */
static void
put_macro(struct out *o, const char *val, unsigned int keep, bool rev,
    const char *delims, size_t ndelims, bool url)
{
	uint16_t	start[PARTS_MAX], end[PARTS_MAX];
	size_t		vlen = strnlen(val, VALUE_MAX), n = 0, i, first, k;

	start[0] = 0;
	for (i = 0; i < vlen; i++) {
		if (n + 1 < PARTS_MAX && memchr(delims, val[i], ndelims)) {
			end[n++] = (uint16_t)i;
			start[n] = (uint16_t)(i + 1);
		}
	}
	end[n++] = (uint16_t)vlen;
	if (keep == 0 || keep > n)
		keep = (unsigned int)n;
	first = n - keep;
	for (k = 0; k < keep; k++) {
		/* reversed, the rightmost keep parts are keep-1 .. 0 */
		size_t j = rev ? keep - 1 - k : first + k;

		if (k > 0)
			out_putc(o, '.');
		for (i = start[j]; i < end[j]; i++)
			out_url(o, val[i], url);
	}
}

/* %{ at in[*ip] == '{': one macro-expand; *ip ends on its '}'. */
static int
macro_one(const char *in, size_t len, size_t *ip, const struct spf_macros *m,
    int flags, struct out *o, struct scan *sc, const char **errstr_r)
{
	size_t		i = *ip + 1, d;
	unsigned int	keep = 0;
	bool		digits = false, rev = false;
	int		letter;

	if (i == len || strchr("slodipvhcrt", lower(in[i])) == NULL ||
	    in[i] == '\0') {
		*errstr_r = "unknown macro letter";
		return -1;
	}
	letter = (unsigned char)in[i++];
	if (strchr("crt", lower(letter)) != NULL && !(flags & SPF_MACRO_EXP)) {
		*errstr_r = "macros c, r and t are for exp text only";
		return -1;
	}
	for (; i < len && is_digit(in[i]); i++) {
		digits = true;
		if (keep < 1000)	/* more parts than any value has */
			keep = keep * 10 + (unsigned int)(in[i] - '0');
	}
	if (digits && keep == 0) {
		*errstr_r = "macro keeps zero parts";
		return -1;
	}
	if (i < len && lower(in[i]) == 'r') {
		rev = true;
		i++;
	}
	for (d = i; i < len && strchr(".-+,/_=", in[i]) != NULL &&
	    in[i] != '\0'; i++)
		;
	if (i == len || in[i] != '}') {
		*errstr_r = "malformed macro";
		return -1;
	}
	if (lower(letter) == 'p')
		sc->uses_p = true;
	if (o != NULL)
		put_macro(o, macro_value(m, letter), keep, rev,
		    i > d ? in + d : ".", i > d ? i - d : 1,
		    letter >= 'A' && letter <= 'Z');
	*ip = i;
	return 0;
}

/* Check, and expand into o unless it is NULL, a macro-string (7.1). */
static int
macro_scan(const char *in, size_t len, const struct spf_macros *m,
    int flags, struct out *o, struct scan *sc, const char **errstr_r)
{
	size_t	i;

	memset(sc, 0, sizeof(*sc));
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		sc->ends_macro = c == '%';
		if (c != '%') {
			if (c == ' ' ? !(flags & SPF_MACRO_EXP) :
			    c < 0x21 || c > 0x7e) {
				*errstr_r = "invalid character";
				return -1;
			}
			out_putc(o, (char)c);
			continue;
		}
		if (++i == len) {
			*errstr_r = "'%' at the end";
			return -1;
		}
		switch (in[i]) {
		case '%':
			out_putc(o, '%');
			break;
		case '_':
			out_putc(o, ' ');
			break;
		case '-':
			out_puts(o, "%20");
			break;
		case '{':
			if (macro_one(in, len, &i, m, flags, o, sc,
			    errstr_r) == -1)
				return -1;
			break;
		default:
			*errstr_r = "'%' not followed by '{', '%', '_' or '-'";
			return -1;
		}
	}
	return 0;
}

int
spf_macro_check(const char *in, size_t len, int flags, bool *uses_p_r,
    const char **errstr_r)
{
	struct scan	sc;

	if (macro_scan(in, len, NULL, flags, NULL, &sc, errstr_r) == -1)
		return -1;
	if (uses_p_r != NULL)
		*uses_p_r = sc.uses_p;
	return 0;
}

/*
 * The name w[0..len) as 7.3 has it queried: no trailing dot, and over
 * SPF_NAME_MAX octets, labels cut on the left until it fits.
 */
static int
name_finish(const char *w, size_t len, char *out, size_t size)
{
	const char	*dot;
	size_t		 k = 0;

	if (len > 0 && w[len - 1] == '.')
		len--;
	while (len - k > SPF_NAME_MAX) {
		if ((dot = memchr(w + k, '.', len - k)) == NULL)
			k = len;
		else
			k = (size_t)(dot - w) + 1;
	}
	if (len - k >= size)
		return -1;
	memcpy(out, w + k, len - k);
	out[len - k] = '\0';
	return (int)(len - k);
}

int
spf_macro_expand(const char *in, size_t len, const struct spf_macros *m,
    int flags, char *out, size_t size, const char **errstr_r)
{
	char		win[NAME_WINDOW];
	struct out	o;
	struct scan	sc;
	int		n;

	if (size == 0 || size > INT32_MAX) {
		*errstr_r = "no room";
		return -1;
	}
	memset(&o, 0, sizeof(o));
	if (flags & SPF_MACRO_EXP) {
		o.buf = out;
		o.size = size - 1;
	} else {
		o.buf = win;
		o.size = sizeof(win);
		o.name = true;
	}
	if (macro_scan(in, len, m, flags, &o, &sc, errstr_r) == -1)
		return -1;
	if (o.over) {
		*errstr_r = "expansion too long";
		return -1;
	}
	if (flags & SPF_MACRO_EXP) {
		out[o.len] = '\0';
		return (int)o.len;
	}
	if ((n = name_finish(win, o.len, out, size)) == -1)
		*errstr_r = "no room";
	return n;
}

/*
 * Terms (RFC 7208 4.6.1, 5, 6, 12).
 */

#define A_DOMAIN	0x01	/* [":" domain-spec] */
#define A_NEEDED	0x02	/* ":" domain-spec */
#define A_CIDR		0x04	/* [dual-cidr-length] */
#define A_NET4		0x08	/* ":" ip4-network [ip4-cidr-length] */
#define A_NET6		0x10	/* ":" ip6-network [ip6-cidr-length] */

static const struct mech {
	const char	*name;
	enum spf_mech	 mech;
	unsigned int	 args;
} mechs[] = {
	{ "all",	SPF_M_ALL,	0 },
	{ "include",	SPF_M_INCLUDE,	A_DOMAIN | A_NEEDED },
	{ "a",		SPF_M_A,	A_DOMAIN | A_CIDR },
	{ "mx",		SPF_M_MX,	A_DOMAIN | A_CIDR },
	{ "ptr",	SPF_M_PTR,	A_DOMAIN },
	{ "ip4",	SPF_M_IP4,	A_NET4 },
	{ "ip6",	SPF_M_IP6,	A_NET6 },
	{ "exists",	SPF_M_EXISTS,	A_DOMAIN | A_NEEDED },
};

/* toplabel of 7.1: alphanumerics and inner hyphens, not all digits. */
static bool
toplabel_ok(const char *p, size_t n)
{
	bool	alpha = false, hyphen = false;
	size_t	i;

	if (n == 0 || !is_alnum(p[0]) || !is_alnum(p[n - 1]))
		return false;
	for (i = 0; i < n; i++) {
		if (is_alpha(p[i]))
			alpha = true;
		else if (p[i] == '-')
			hyphen = true;
		else if (!is_digit(p[i]))
			return false;
	}
	return alpha || hyphen;
}

/* domain-spec = macro-string domain-end (7.1), not empty. */
static int
domain_spec_check(const char *p, size_t n, bool *uses_p,
    const char **errstr_r)
{
	struct scan	 sc;
	const char	*dot;
	size_t		 e = n;

	if (n == 0) {
		*errstr_r = "empty domain-spec";
		return -1;
	}
	if (macro_scan(p, n, NULL, 0, NULL, &sc, errstr_r) == -1)
		return -1;
	*uses_p = sc.uses_p;
	if (sc.ends_macro)
		return 0;
	if (p[e - 1] == '.')
		e--;
	if ((dot = memrchr(p, '.', e)) == NULL ||
	    !toplabel_ok(dot + 1, (size_t)(p + e - dot - 1))) {
		*errstr_r = "domain-spec ends in no macro and no top-level "
		    "label";
		return -1;
	}
	return 0;
}

/* A prefix length: "0", or digits without a leading zero, up to max. */
static int
cidr_value(const char *p, size_t n, unsigned int max)
{
	unsigned int	v = 0;
	size_t		i;

	if (n == 0 || n > 3 || (p[0] == '0' && n > 1))
		return -1;
	for (i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return -1;
		v = v * 10 + (unsigned int)(p[i] - '0');
	}
	return v <= max ? (int)v : -1;
}

/* Where the digits at the end of p[0..n) start. */
static size_t
digits_back(const char *p, size_t n)
{
	while (n > 0 && is_digit(p[n - 1]))
		n--;
	return n;
}

/*
 * Take a dual-cidr-length off the end of p[0..*n): "/24", "//64",
 * "/24//64".
 */
static int
cidr_suffix(const char *p, size_t *n, struct spf_term *t,
    const char **errstr_r)
{
	size_t	i, e = *n;
	int	v;

	i = digits_back(p, e);
	if (i < e && i >= 2 && p[i - 1] == '/' && p[i - 2] == '/') {
		if ((v = cidr_value(p + i, e - i, 128)) == -1) {
			*errstr_r = "invalid IPv6 prefix length";
			return -1;
		}
		t->cidr6 = (unsigned int)v;
		e = i - 2;
	}
	i = digits_back(p, e);
	if (i < e && i >= 1 && p[i - 1] == '/' && (i < 2 || p[i - 2] != '/')) {
		if ((v = cidr_value(p + i, e - i, 32)) == -1) {
			*errstr_r = "invalid IPv4 prefix length";
			return -1;
		}
		t->cidr4 = (unsigned int)v;
		e = i - 1;
	}
	*n = e;
	return 0;
}

/* ip4-network (12): four qnums, no leading zeros. */
static int
net4_parse(const char *p, size_t n, uint8_t net[16])
{
	size_t	i = 0, k, part;

	memset(net, 0, 16);
	net[10] = net[11] = 0xff;
	for (part = 0; part < 4; part++) {
		unsigned int v = 0;

		if (part > 0 && (i == n || p[i++] != '.'))
			return -1;
		for (k = i; i < n && is_digit(p[i]) && i - k < 3; i++)
			v = v * 10 + (unsigned int)(p[i] - '0');
		if (i == k || v > 255 || (p[k] == '0' && i - k > 1))
			return -1;
		net[12 + part] = (uint8_t)v;
	}
	return i == n ? 0 : -1;
}

static int
net6_parse(const char *p, size_t n, uint8_t net[16])
{
	char	buf[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, net) == 1 ? 0 : -1;
}

/* ip4 / ip6: ":" network ["/" prefix length] */
static int
net_parse(const char *p, size_t n, bool v6, struct spf_term *t,
    const char **errstr_r)
{
	const char	*slash;
	size_t		 nlen;
	int		 v = 0;

	if (n == 0 || p[0] != ':') {
		*errstr_r = "missing network";
		return -1;
	}
	p++, n--;
	slash = memchr(p, '/', n);
	nlen = slash != NULL ? (size_t)(slash - p) : n;
	if ((v6 ? net6_parse(p, nlen, t->net) : net4_parse(p, nlen,
	    t->net)) == -1) {
		*errstr_r = v6 ? "invalid IPv6 network" :
		    "invalid IPv4 network";
		return -1;
	}
	if (slash != NULL && (v = cidr_value(slash + 1, n - nlen - 1,
	    v6 ? 128 : 32)) == -1) {
		*errstr_r = "invalid prefix length";
		return -1;
	}
	if (v6)
		t->cidr6 = slash != NULL ? (unsigned int)v : 128;
	else
		t->cidr4 = slash != NULL ? (unsigned int)v : 32;
	return 0;
}

/* The argument of a mechanism, p[0..n) after its name. */
static int
mech_args(const struct mech *mc, const char *p, size_t n,
    struct spf_term *t, const char **errstr_r)
{
	if (mc->args & (A_NET4 | A_NET6))
		return net_parse(p, n, mc->args & A_NET6, t, errstr_r);
	if (n > 0 && p[0] == '/' && (mc->args & A_CIDR)) {
		if (cidr_suffix(p, &n, t, errstr_r) == -1)
			return -1;
		if (n == 0)
			return 0;
	} else if (n > 0 && p[0] == ':' && (mc->args & A_DOMAIN)) {
		p++, n--;
		if ((mc->args & A_CIDR) && cidr_suffix(p, &n, t,
		    errstr_r) == -1)
			return -1;
		t->spec = p;
		t->spec_len = n;
		return domain_spec_check(p, n, &t->spec_p, errstr_r);
	} else if (n == 0 && !(mc->args & A_NEEDED))
		return 0;
	*errstr_r = n == 0 ? "missing domain-spec" : "malformed argument";
	return -1;
}

static int
mech_parse(const char *p, size_t n, struct spf_term *t,
    const char **errstr_r)
{
	size_t	i, k = 0, m;

	if (n > 0 && p[0] != '\0' && strchr("+-~?", p[0]) != NULL) {
		t->qual = p[0];
		k = 1;
	}
	for (i = k; i < n && is_alnum(p[i]); i++)
		;
	for (m = 0; m < sizeof(mechs) / sizeof(mechs[0]); m++) {
		if (strlen(mechs[m].name) != i - k ||
		    !ci_eq(mechs[m].name, p + k, i - k))
			continue;
		t->mech = mechs[m].mech;
		return mech_args(&mechs[m], p + i, n - i, t, errstr_r);
	}
	*errstr_r = "unknown mechanism";
	return -1;
}

/* name "=" value, name being p[0..n) */
static int
modifier_parse(const char *p, size_t n, const char *v, size_t vlen,
    struct spf_term *t, const char **errstr_r)
{
	t->spec = v;
	t->spec_len = vlen;
	if (n == 8 && ci_eq(p, "redirect", 8)) {
		t->mech = SPF_M_REDIRECT;
		return domain_spec_check(v, vlen, &t->spec_p, errstr_r);
	}
	if (n == 3 && ci_eq(p, "exp", 3)) {
		t->mech = SPF_M_EXP;
		return domain_spec_check(v, vlen, &t->spec_p, errstr_r);
	}
	t->mech = SPF_M_UNKNOWN;
	return spf_macro_check(v, vlen, 0, &t->spec_p, errstr_r);
}

int
spf_term_parse(const char *term, size_t len, struct spf_term *t,
    const char **errstr_r)
{
	size_t	i, n;

	memset(t, 0, sizeof(*t));
	t->qual = '+';
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (len == 0) {
		*errstr_r = "empty term";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if ((unsigned char)term[i] < 0x21 ||
		    (unsigned char)term[i] > 0x7e) {
			*errstr_r = "invalid character";
			return -1;
		}
	}
	/* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ), then '=' */
	n = 0;
	if (is_alpha(term[0]))
		for (n = 1; n < len && (is_alnum(term[n]) ||
		    strchr("-_.", term[n]) != NULL); n++)
			;
	if (n > 0 && n < len && term[n] == '=')
		return modifier_parse(term, n, term + n + 1, len - n - 1, t,
		    errstr_r);
	return mech_parse(term, len, t, errstr_r);
}

bool
spf_record_is_spf(const char *rec, size_t len)
{
	return len >= 6 && ci_eq(rec, "v=spf1", 6) &&
	    (len == 6 || rec[6] == ' ');
}

/* The next term of rec from *pos on: terms are split by spaces only. */
static bool
term_next(const char *rec, size_t len, size_t *pos, const char **term_r,
    size_t *tlen_r)
{
	size_t	i = *pos, k;

	while (i < len && rec[i] == ' ')
		i++;
	if (i == len) {
		*pos = i;
		return false;
	}
	for (k = i; k < len && rec[k] != ' '; k++)
		;
	*term_r = rec + i;
	*tlen_r = k - i;
	*pos = k;
	return true;
}

int
spf_record_parse(const char *rec, size_t len, struct spf_record *r,
    const char **errstr_r)
{
	struct spf_term	 t;
	const char	*term;
	size_t		 pos = 6, tlen;

	memset(r, 0, sizeof(*r));
	if (!spf_record_is_spf(rec, len)) {
		*errstr_r = "not an SPF record";
		return -1;
	}
	while (term_next(rec, len, &pos, &term, &tlen)) {
		r->terms++;
		if (spf_term_parse(term, tlen, &t, errstr_r) == -1)
			goto bad;
		if (t.mech == SPF_M_ALL)
			r->has_all = true;
		else if (t.mech == SPF_M_REDIRECT) {
			if (r->redirect != NULL) {
				*errstr_r = "redirect= twice";
				goto bad;
			}
			r->redirect = t.spec;
			r->redirect_len = t.spec_len;
			r->redirect_p = t.spec_p;
		} else if (t.mech == SPF_M_EXP) {
			if (r->exp != NULL) {
				*errstr_r = "exp= twice";
				goto bad;
			}
			r->exp = t.spec;
			r->exp_len = t.spec_len;
			r->exp_p = t.spec_p;
		}
	}
	return 0;
bad:
	r->bad = term;
	r->bad_len = tlen;
	return -1;
}

/*
 * Names.
 */

/*
 * Can name be asked: 1 to SPF_NAME_MAX octets of 0x20..0x7e (a space
 * may come from %_), labels of 1 to 63 octets, no trailing dot?
 */
static bool
name_ok(const char *name)
{
	size_t	i, label = 0, n = strlen(name);

	if (n == 0 || n > SPF_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c > 0x7e)
			return false;
		if (c != '.')
			label++;
		else if (label == 0)
			return false;
		else
			label = 0;
		if (label > LABEL_MAX)
			return false;
	}
	return label > 0;
}

/*
 * The <domain> of 4.3: a name that can be asked, of two labels or more,
 * no spaces, ending in a toplabel ("[192.0.2.1]" and "localhost" are
 * not).
 */
static bool
domain_ok(const char *d)
{
	const char	*dot = strrchr(d, '.');

	return name_ok(d) && strchr(d, ' ') == NULL && dot != NULL &&
	    toplabel_ok(dot + 1, strlen(dot + 1));
}

/* A name from an answer, p[0..n), as a name to ask: 0, or -1. */
static int
name_take(char dst[SPF_NAME_MAX + 1], const char *p, size_t n)
{
	if (n > 0 && p[n - 1] == '.')
		n--;
	if (n == 0 || n > SPF_NAME_MAX || memchr(p, '\0', n) != NULL ||
	    memchr(p, ' ', n) != NULL)
		return -1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return name_ok(dst) ? 0 : -1;
}

/* Is name the domain d or under it (5.5)? */
static bool
name_under(const char *name, const char *d)
{
	size_t	n = strlen(name), dn = strlen(d);

	if (n == dn)
		return ci_eq(name, d, n);
	return n > dn && name[n - dn - 1] == '.' && ci_eq(name + n - dn, d, dn);
}

/*
 * Addresses.
 */

static bool
is_v4(const uint8_t a[16])
{
	static const uint8_t	prefix[12] = { [10] = 0xff, [11] = 0xff };

	return memcmp(a, prefix, 12) == 0;
}

/* Do a and b agree in their first bits bits? */
static bool
prefix_eq(const uint8_t a[16], const uint8_t b[16], unsigned int bits)
{
	unsigned int	full = bits / 8, rest = bits % 8;
	uint8_t		mask;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* Does the client fall in net with the term's prefix length? */
static bool
client_in(const struct spf *s, const uint8_t net[16], const struct spf_term *t)
{
	if (s->v4 != is_v4(net))
		return false;
	return prefix_eq(s->addr, net, s->v4 ? 96 + t->cidr4 : t->cidr6);
}

/*
 * The machine.
 */

static struct frame *
top(struct spf *s)
{
	if (s->depth == 0)
		panic("spf: no frame");
	return s->frames[s->depth - 1];
}

static void
macros(const struct spf *s, const char *d, struct spf_macros *m)
{
	m->s = s->sender;
	m->l = s->local;
	m->o = s->domain;
	m->d = d;
	m->i = s->ip_i;
	m->p = s->p_known ? s->p : "unknown";
	m->v = s->v4 ? "in-addr" : "ip6";
	m->h = s->helo;
	m->c = s->ip_c;
	m->r = s->receiver;
	m->t = s->t;
}

/* The check ends: an error, none, or the final result. */
static void
finish(struct spf *s, enum spf_result r, const char *problem,
    const char *what, size_t wlen)
{
	size_t	n;

	s->result = r;
	s->state = ST_DONE;
	s->wait = W_NONE;
	if (problem == NULL)
		return;
	printable(s->problem, sizeof(s->problem), problem, strlen(problem));
	n = strlen(s->problem);
	if (what != NULL && n + 3 < sizeof(s->problem)) {
		memcpy(s->problem + n, ": ", 2);
		printable(s->problem + n + 2, sizeof(s->problem) - n - 2, what,
		    wlen);
	}
}

static void
ask(struct spf *s, enum spf_qtype type, const char *name, enum wait w)
{
	memset(&s->q, 0, sizeof(s->q));
	s->q.type = type;
	if (strlen(name) >= sizeof(s->q.name))
		panic("spf: name too long");
	memcpy(s->q.name, name, strlen(name) + 1);
	if (type == SPF_Q_PTR)
		memcpy(s->q.addr, s->addr, 16);
	s->wait = w;
}

static int
count_lookup(struct spf *s)
{
	if (++s->lookups <= SPF_LOOKUPS_MAX)
		return 0;
	finish(s, SPF_PERMERROR, "more than 10 DNS-querying terms", NULL, 0);
	return -1;
}

static int
count_void(struct spf *s)
{
	if (++s->voids <= SPF_VOIDS_MAX)
		return 0;
	finish(s, SPF_PERMERROR, "more than 2 void lookups", NULL, 0);
	return -1;
}

/* A new frame for domain on top: its record is fetched next. */
static void
frame_push(struct spf *s, const char *domain)
{
	struct frame	*f;

	if (s->depth == SPF_DEPTH_MAX) {
		finish(s, SPF_PERMERROR, "includes nested too deep", NULL, 0);
		return;
	}
	if (s->frames[s->depth] == NULL &&
	    (s->frames[s->depth] = calloc(1, sizeof(*f))) == NULL) {
		finish(s, SPF_TEMPERROR, "out of memory", NULL, 0);
		return;
	}
	f = s->frames[s->depth++];
	memcpy(f->domain, domain, strlen(domain) + 1);
	f->len = f->pos = 0;
	f->redirected = false;
	s->state = ST_FETCH;
}

/*
 * The target name of a term: spec expanded for the frame's domain d, or
 * d itself.  -1 when it is no name that can exist (4.3, 4.8).
 */
static int
target(struct spf *s, const char *spec, size_t len, const char *d)
{
	struct spf_macros	 m;
	const char		*errstr;

	if (spec == NULL) {
		memcpy(s->target, d, strlen(d) + 1);
		return 0;
	}
	macros(s, d, &m);
	if (spf_macro_expand(spec, len, &m, 0, s->target,
	    sizeof(s->target), &errstr) == -1)
		return -1;
	return name_ok(s->target) ? 0 : -1;
}

static enum spf_result
qual_result(char qual)
{
	switch (qual) {
	case '-':
		return SPF_FAIL;
	case '~':
		return SPF_SOFTFAIL;
	case '?':
		return SPF_NEUTRAL;
	default:
		return SPF_PASS;
	}
}

static void	frame_done(struct spf *, enum spf_result);

/* The top frame's term matched: its qualifier is the frame's result. */
static void
term_match(struct spf *s)
{
	struct frame	*f = top(s);

	if (s->depth == 1)
		printable(s->mech, sizeof(s->mech), f->term, f->term_len);
	frame_done(s, qual_result(f->t.qual));
}

/*
 * The top frame's check_host() came to r.  An include matches on a pass
 * and not on fail, softfail or neutral (5.2); none there, or after
 * redirect=, is a permerror (5.2, 6.1).
 */
static void
frame_done(struct spf *s, enum spf_result r)
{
	struct frame	*f = top(s);

	if (r == SPF_NONE && s->depth > 1) {
		finish(s, SPF_PERMERROR, "no SPF record at included domain",
		    f->domain, strlen(f->domain));
		return;
	}
	if (r == SPF_NONE && f->redirected) {
		finish(s, SPF_PERMERROR, "no SPF record at redirect= domain",
		    f->domain, strlen(f->domain));
		return;
	}
	if (s->depth > 1) {
		s->depth--;
		if (r == SPF_PASS)
			term_match(s);
		else
			s->state = ST_TERM;
		return;
	}
	if (r == SPF_NONE) {
		finish(s, SPF_NONE, "no SPF record", f->domain,
		    strlen(f->domain));
		return;
	}
	s->result = r;
	s->state = r != SPF_FAIL ? ST_DONE : f->r.exp != NULL ? ST_EXP :
	    ST_EXPLAIN;
}

static void
st_start(struct spf *s)
{
	if (s->malformed) {
		finish(s, SPF_NONE, "sender or HELO name too long", NULL, 0);
		return;
	}
	if (!domain_ok(s->domain)) {
		finish(s, SPF_NONE, "not a domain name", s->domain,
		    strlen(s->domain));
		return;
	}
	frame_push(s, s->domain);
}

static void
st_term(struct spf *s)
{
	struct frame	*f = top(s);
	const char	*errstr;

	if (!term_next(f->rec, f->len, &f->pos, &f->term, &f->term_len)) {
		s->state = ST_END;
		return;
	}
	if (spf_term_parse(f->term, f->term_len, &f->t, &errstr) == -1)
		panic("spf: a term parsed once fails: %s", errstr);
	switch (f->t.mech) {
	case SPF_M_ALL:
		term_match(s);
		break;
	case SPF_M_IP4:
	case SPF_M_IP6:
		if (client_in(s, f->t.net, &f->t))
			term_match(s);
		break;
	case SPF_M_REDIRECT:
	case SPF_M_EXP:
	case SPF_M_UNKNOWN:
		break;
	case SPF_M_INCLUDE:
	case SPF_M_A:
	case SPF_M_MX:
	case SPF_M_PTR:
	case SPF_M_EXISTS:
		if (count_lookup(s) == 0)
			s->state = ST_EVAL;
		break;
	default:
		panic("spf: mechanism %d", f->t.mech);
	}
}

/*
 * The PTR names of the client: 0 when known, -1 when asked.  Of more
 * than SPF_MXPTR_MAX names only the first are used (4.6.4).
 */
static int
ptr_names(struct spf *s)
{
	char		name[80];
	const uint8_t	*a = s->addr;
	size_t		i, n;

	if (s->ptr_status != P_UNKNOWN)
		return 0;
	if (s->v4)
		snprintf(name, sizeof(name), "%u.%u.%u.%u.in-addr.arpa",
		    a[15], a[14], a[13], a[12]);
	else {
		for (i = 0, n = 0; i < 16; i++) {
			name[n++] = "0123456789abcdef"[a[15 - i] & 0xf];
			name[n++] = '.';
			name[n++] = "0123456789abcdef"[a[15 - i] >> 4];
			name[n++] = '.';
		}
		memcpy(name + n, "ip6.arpa", sizeof("ip6.arpa"));
	}
	ask(s, SPF_Q_PTR, name, W_PTR);
	return -1;
}

/* Is the i-th PTR name validated (5.5)?  1, 0, or -1 when asked. */
static int
ptr_validate(struct spf *s, unsigned int i)
{
	if (s->ptr_valid[i] != V_UNKNOWN)
		return s->ptr_valid[i] == V_YES;
	s->ptr_i = i;
	ask(s, s->v4 ? SPF_Q_A : SPF_Q_AAAA, s->ptr[i], W_PTR_ADDR);
	return -1;
}

/*
 * %{p} for the domain d (7.3): a validated name of the client, d itself
 * if it is one, else one under d, else any; "unknown" when there is
 * none.  0 when known, -1 when a query is asked.
 */
static int
want_p(struct spf *s, const char *d)
{
	unsigned int	pass, i;
	bool		cand;

	if (s->p_known && ci_streq(s->p_for, d))
		return 0;
	s->p_known = false;
	if (ptr_names(s) == -1)
		return -1;
	for (pass = 0; pass < 3; pass++) {
		for (i = 0; i < s->ptr_n; i++) {
			if (pass == 0)
				cand = ci_streq(s->ptr[i], d);
			else
				cand = pass == 2 || name_under(s->ptr[i], d);
			if (!cand)
				continue;
			switch (ptr_validate(s, i)) {
			case -1:
				return -1;
			case 1:
				memcpy(s->p, s->ptr[i], strlen(s->ptr[i]) + 1);
				goto found;
			}
		}
	}
	memcpy(s->p, "unknown", sizeof("unknown"));
found:
	memcpy(s->p_for, d, strlen(d) + 1);
	s->p_known = true;
	return 0;
}

static void
st_eval(struct spf *s)
{
	struct frame	*f = top(s);
	struct spf_term	*t = &f->t;

	if (t->spec_p && want_p(s, f->domain) == -1)
		return;
	if (target(s, t->spec, t->spec_len, f->domain) == -1) {
		if (t->mech == SPF_M_INCLUDE)
			finish(s, SPF_PERMERROR, "include of no domain name",
			    f->term, f->term_len);
		else
			s->state = ST_TERM;	/* as if it did not exist */
		return;
	}
	switch (t->mech) {
	case SPF_M_A:
		ask(s, s->v4 ? SPF_Q_A : SPF_Q_AAAA, s->target, W_ADDR);
		break;
	case SPF_M_EXISTS:
		ask(s, SPF_Q_A, s->target, W_EXISTS);	/* A even for IPv6 */
		break;
	case SPF_M_MX:
		ask(s, SPF_Q_MX, s->target, W_MX);
		break;
	case SPF_M_PTR:
		s->state = ST_PTR;
		break;
	case SPF_M_INCLUDE:
		frame_push(s, s->target);
		break;
	default:
		panic("spf: no DNS for mechanism %d", t->mech);
	}
}

static void
st_mx_addr(struct spf *s)
{
	if (s->mx_i == s->mx_n)
		s->state = ST_TERM;
	else
		ask(s, s->v4 ? SPF_Q_A : SPF_Q_AAAA, s->mx[s->mx_i],
		    W_MX_ADDR);
}

/* ptr: is a validated name of the client the target or under it? */
static void
st_ptr(struct spf *s)
{
	unsigned int	i;

	if (ptr_names(s) == -1)
		return;
	if (s->ptr_status == P_VOID && count_void(s) == -1)
		return;
	for (i = 0; i < s->ptr_n; i++) {
		if (!name_under(s->ptr[i], s->target))
			continue;
		switch (ptr_validate(s, i)) {
		case -1:
			return;
		case 1:
			term_match(s);
			return;
		}
	}
	s->state = ST_TERM;
}

/* No term matched: redirect= if there is one and no all (6.1). */
static void
st_end(struct spf *s)
{
	struct frame	*f = top(s);

	if (f->r.redirect == NULL || f->r.has_all) {
		if (s->depth == 1)
			memcpy(s->mech, "default", sizeof("default"));
		frame_done(s, SPF_NEUTRAL);
		return;
	}
	if (count_lookup(s) == 0)
		s->state = ST_REDIRECT;
}

static void
st_redirect(struct spf *s)
{
	struct frame	*f = top(s);

	if (f->r.redirect_p && want_p(s, f->domain) == -1)
		return;
	if (target(s, f->r.redirect, f->r.redirect_len, f->domain) == -1) {
		finish(s, SPF_PERMERROR, "redirect= to no domain name",
		    f->r.redirect, f->r.redirect_len);
		return;
	}
	s->depth--;
	frame_push(s, s->target);
	if (s->state == ST_FETCH)
		top(s)->redirected = true;
}

/* A fail with exp=: fetch the explanation (6.2). */
static void
st_exp(struct spf *s)
{
	struct frame	*f = top(s);

	if (f->r.exp_p && want_p(s, f->domain) == -1)
		return;
	if (target(s, f->r.exp, f->r.exp_len, f->domain) == -1)
		s->state = ST_EXPLAIN;
	else
		ask(s, SPF_Q_TXT, s->target, W_EXP);
}

/*
 * Expand the exp= text, or when there is none or it does not expand,
 * the default (6.2): printable ASCII only, as it goes into a reply.
 */
static void
st_explain(struct spf *s)
{
	struct frame		*f = top(s);
	struct spf_macros	 m;
	const char		*src, *errstr;
	bool			 uses_p;
	size_t			 i;

	for (;;) {
		src = s->exp_found ? s->exp_text : s->default_exp;
		if (spf_macro_check(src, strlen(src), SPF_MACRO_EXP, &uses_p,
		    &errstr) == 0) {
			if (uses_p && want_p(s, f->domain) == -1)
				return;
			macros(s, f->domain, &m);
			if (spf_macro_expand(src, strlen(src), &m,
			    SPF_MACRO_EXP, s->exp, sizeof(s->exp),
			    &errstr) != -1)
				break;
		}
		if (!s->exp_found) {
			printable(s->exp, sizeof(s->exp), src, strlen(src));
			break;
		}
		s->exp_found = false;
	}
	for (i = 0; s->exp[i] != '\0'; i++)
		if ((unsigned char)s->exp[i] < 0x20 ||
		    (unsigned char)s->exp[i] > 0x7e)
			s->exp[i] = '?';
	s->state = ST_DONE;
}

enum spf_step
spf_next(struct spf *s, struct spf_query *q)
{
	for (;;) {
		if (s->wait != W_NONE) {
			*q = s->q;
			return SPF_STEP_QUERY;
		}
		switch (s->state) {
		case ST_START:
			st_start(s);
			break;
		case ST_FETCH:
			ask(s, SPF_Q_TXT, top(s)->domain, W_RECORD);
			break;
		case ST_TERM:
			st_term(s);
			break;
		case ST_EVAL:
			st_eval(s);
			break;
		case ST_MX_ADDR:
			st_mx_addr(s);
			break;
		case ST_PTR:
			st_ptr(s);
			break;
		case ST_END:
			st_end(s);
			break;
		case ST_REDIRECT:
			st_redirect(s);
			break;
		case ST_EXP:
			st_exp(s);
			break;
		case ST_EXPLAIN:
			st_explain(s);
			break;
		case ST_DONE:
			return SPF_STEP_DONE;
		default:
			panic("spf: state %d", s->state);
		}
	}
}

/*
 * Answers.
 */

/* The SPF record among the TXT records of the top frame (4.4, 4.5). */
static void
got_record(struct spf *s, enum spf_dns status, const struct spf_rr *rrs,
    size_t n)
{
	struct frame	*f = top(s);
	const char	*errstr;
	size_t		 i, found = 0, which = 0;

	if (status == SPF_DNS_TEMPFAIL) {
		finish(s, SPF_TEMPERROR, "DNS error looking up the record of",
		    f->domain, strlen(f->domain));
		return;
	}
	for (i = 0; status == SPF_DNS_OK && i < n; i++) {
		if (spf_record_is_spf(rrs[i].text, rrs[i].len)) {
			found++;
			which = i;
		}
	}
	if (found == 0) {
		frame_done(s, SPF_NONE);
		return;
	}
	if (found > 1) {
		finish(s, SPF_PERMERROR, "more than one SPF record at",
		    f->domain, strlen(f->domain));
		return;
	}
	if (rrs[which].len > SPF_RECORD_MAX) {
		finish(s, SPF_PERMERROR, "SPF record too long at", f->domain,
		    strlen(f->domain));
		return;
	}
	memcpy(f->rec, rrs[which].text, rrs[which].len);
	f->rec[rrs[which].len] = '\0';
	f->len = rrs[which].len;
	f->pos = 6;
	if (spf_record_parse(f->rec, f->len, &f->r, &errstr) == -1) {
		finish(s, SPF_PERMERROR, errstr, f->r.bad, f->r.bad_len);
		return;
	}
	s->state = ST_TERM;
}

/*
 * A and AAAA answers for the term: 1 when one of them falls in the
 * term's prefix (exists: when there is one), 0 when none does, -1 when
 * the check ended.  An answer with no address of the client's family
 * (A for exists) is a void lookup.
 */
static int
got_addrs(struct spf *s, enum spf_dns status, const struct spf_rr *rrs,
    size_t n, bool exists)
{
	struct frame	*f = top(s);
	bool		 want4 = exists || s->v4, any = false;
	size_t		 i;

	if (status == SPF_DNS_TEMPFAIL) {
		finish(s, SPF_TEMPERROR, "DNS error looking up", s->q.name,
		    strlen(s->q.name));
		return -1;
	}
	for (i = 0; status == SPF_DNS_OK && i < n; i++) {
		if (is_v4(rrs[i].addr) != want4)
			continue;
		any = true;
		if (exists || client_in(s, rrs[i].addr, &f->t))
			return 1;
	}
	if (!any && count_void(s) == -1)
		return -1;
	return 0;
}

/* mx: keep the exchanges; more than SPF_MXPTR_MAX is a permerror. */
static void
got_mx(struct spf *s, enum spf_dns status, const struct spf_rr *rrs,
    size_t n)
{
	size_t	i;

	if (status == SPF_DNS_TEMPFAIL) {
		finish(s, SPF_TEMPERROR, "DNS error looking up MX of",
		    s->q.name, strlen(s->q.name));
		return;
	}
	if (status != SPF_DNS_OK || n == 0) {
		if (count_void(s) == 0)
			s->state = ST_TERM;
		return;
	}
	if (n > SPF_MXPTR_MAX) {
		finish(s, SPF_PERMERROR, "more than 10 MX records at",
		    s->q.name, strlen(s->q.name));
		return;
	}
	/* the null MX "." of RFC 7505, or a name that cannot be, is skipped */
	s->mx_n = s->mx_i = 0;
	for (i = 0; i < n; i++)
		if (name_take(s->mx[s->mx_n], rrs[i].text, rrs[i].len) == 0)
			s->mx_n++;
	s->state = ST_MX_ADDR;
}

static void
got_mx_addr(struct spf *s, enum spf_dns status, const struct spf_rr *rrs,
    size_t n)
{
	struct frame	*f = top(s);
	size_t		 i;

	if (status == SPF_DNS_TEMPFAIL) {
		finish(s, SPF_TEMPERROR, "DNS error looking up", s->q.name,
		    strlen(s->q.name));
		return;
	}
	for (i = 0; status == SPF_DNS_OK && i < n; i++) {
		if (client_in(s, rrs[i].addr, &f->t)) {
			term_match(s);
			return;
		}
	}
	s->mx_i++;
}

/* The client's names: a DNS error or none means no ptr match (5.5). */
static void
got_ptr(struct spf *s, enum spf_dns status, const struct spf_rr *rrs,
    size_t n)
{
	size_t	i;

	s->ptr_n = 0;
	if (status == SPF_DNS_TEMPFAIL) {
		s->ptr_status = P_ERROR;
		return;
	}
	if (status != SPF_DNS_OK || n == 0) {
		s->ptr_status = P_VOID;
		return;
	}
	s->ptr_status = P_NAMES;
	for (i = 0; i < n && i < SPF_MXPTR_MAX; i++) {
		if (name_take(s->ptr[s->ptr_n], rrs[i].text, rrs[i].len) == 0)
			s->ptr_valid[s->ptr_n++] = V_UNKNOWN;
	}
}

/* A name is validated when it has the client's address (5.5). */
static void
got_ptr_addr(struct spf *s, enum spf_dns status, const struct spf_rr *rrs,
    size_t n)
{
	size_t	i;

	s->ptr_valid[s->ptr_i] = V_NO;
	for (i = 0; status == SPF_DNS_OK && i < n; i++)
		if (memcmp(rrs[i].addr, s->addr, 16) == 0)
			s->ptr_valid[s->ptr_i] = V_YES;
}

/* exp=: exactly one TXT record, else as if there were no exp= (6.2). */
static void
got_exp(struct spf *s, enum spf_dns status, const struct spf_rr *rrs,
    size_t n)
{
	s->exp_found = status == SPF_DNS_OK && n == 1 &&
	    rrs[0].len <= SPF_RECORD_MAX &&
	    (rrs[0].len == 0 || memchr(rrs[0].text, '\0', rrs[0].len) == NULL);
	if (s->exp_found) {
		if (rrs[0].len > 0)
			memcpy(s->exp_text, rrs[0].text, rrs[0].len);
		s->exp_text[rrs[0].len] = '\0';
		s->exp_len = rrs[0].len;
	}
	s->state = ST_EXPLAIN;
}

void
spf_answer(struct spf *s, enum spf_dns status, const struct spf_rr *rrs,
    size_t n)
{
	enum wait	w = s->wait;
	int		r;

	if (w == W_NONE)
		return;
	s->wait = W_NONE;
	if (rrs == NULL)
		n = 0;
	if (status != SPF_DNS_OK && status != SPF_DNS_NXDOMAIN &&
	    status != SPF_DNS_NODATA)
		status = SPF_DNS_TEMPFAIL;
	switch (w) {
	case W_RECORD:
		got_record(s, status, rrs, n);
		break;
	case W_ADDR:
	case W_EXISTS:
		if ((r = got_addrs(s, status, rrs, n, w == W_EXISTS)) == 1)
			term_match(s);
		else if (r == 0)
			s->state = ST_TERM;
		break;
	case W_MX:
		got_mx(s, status, rrs, n);
		break;
	case W_MX_ADDR:
		got_mx_addr(s, status, rrs, n);
		break;
	case W_PTR:
		got_ptr(s, status, rrs, n);
		break;
	case W_PTR_ADDR:
		got_ptr_addr(s, status, rrs, n);
		break;
	case W_EXP:
		got_exp(s, status, rrs, n);
		break;
	default:
		panic("spf: waiting for %d", w);
	}
}

/*
 * The check.
 */

/* Copy src into dst (size octets); -1 if it does not fit. */
static int
copy(char *dst, size_t size, const char *src)
{
	size_t	n = strlen(src);

	if (n >= size)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* %{i} and %{c} of the client (7.3); IPv6 nibbles as the suite has them */
static void
client_text(struct spf *s)
{
	const uint8_t	*a = s->addr;
	size_t		 i, n = 0;

	if (s->v4) {
		snprintf(s->ip_i, sizeof(s->ip_i), "%u.%u.%u.%u", a[12], a[13],
		    a[14], a[15]);
		memcpy(s->ip_c, s->ip_i, strlen(s->ip_i) + 1);
		return;
	}
	for (i = 0; i < 16; i++) {
		s->ip_i[n++] = "0123456789ABCDEF"[a[i] >> 4];
		s->ip_i[n++] = '.';
		s->ip_i[n++] = "0123456789ABCDEF"[a[i] & 0xf];
		s->ip_i[n++] = i < 15 ? '.' : '\0';
	}
	if (inet_ntop(AF_INET6, a, s->ip_c, sizeof(s->ip_c)) == NULL)
		panic("spf: inet_ntop");
}

/* The identity: sender, local-part, domain (2.3, 2.4, 4.3). */
static void
identity(struct spf *s, const char *sender, const char *helo)
{
	const char	*at;
	size_t		 n;

	if (strlen(sender) > SPF_SENDER_MAX || strlen(helo) > SPF_SENDER_MAX) {
		/* kept cut, for Received-SPF only */
		printable(s->given, sizeof(s->given), sender, strlen(sender));
		printable(s->helo, sizeof(s->helo), helo, strlen(helo));
		s->malformed = true;
		return;
	}
	memcpy(s->given, sender, strlen(sender) + 1);
	memcpy(s->helo, helo, strlen(helo) + 1);
	s->helo_id = sender[0] == '\0';
	if (s->helo_id) {
		memcpy(s->local, "postmaster", sizeof("postmaster"));
		memcpy(s->domain, helo, strlen(helo) + 1);
	} else if ((at = strrchr(sender, '@')) == NULL) {
		memcpy(s->local, "postmaster", sizeof("postmaster"));
		memcpy(s->domain, sender, strlen(sender) + 1);
	} else {
		n = (size_t)(at - sender);
		if (n == 0)
			memcpy(s->local, "postmaster", sizeof("postmaster"));
		else {
			memcpy(s->local, sender, n);
			s->local[n] = '\0';
		}
		memcpy(s->domain, at + 1, strlen(at + 1) + 1);
	}
	n = strlen(s->domain);
	if (n > 0 && s->domain[n - 1] == '.')
		s->domain[n - 1] = '\0';
	/* UNSAFE: both come from a sender of SPF_SENDER_MAX octets at most,
	 * or are "postmaster" and a HELO name of as much */
	n = strlen(s->local);
	memcpy(s->sender, s->local, n);
	s->sender[n] = '@';
	memcpy(s->sender + n + 1, s->domain, strlen(s->domain) + 1);
}

struct spf *
spf_new(const struct spf_params *p, const char **errstr_r)
{
	struct spf	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		*errstr_r = "out of memory";
		return NULL;
	}
	if (p->ip != NULL ? ipmatch_addr(p->ip, s->addr) == -1 :
	    p->addr == NULL) {
		*errstr_r = "not an IP address";
		goto fail;
	}
	if (p->ip == NULL)
		memcpy(s->addr, p->addr, 16);
	if (copy(s->receiver, sizeof(s->receiver),
	    p->receiver != NULL ? p->receiver : "unknown") == -1 ||
	    copy(s->default_exp, sizeof(s->default_exp),
	    p->default_exp != NULL ? p->default_exp : default_exp) == -1) {
		*errstr_r = "receiver or default explanation too long";
		goto fail;
	}
	s->v4 = is_v4(s->addr);
	client_text(s);
	snprintf(s->t, sizeof(s->t), "%lld", (long long)p->now);
	identity(s, p->sender != NULL ? p->sender : "",
	    p->helo != NULL ? p->helo : "");
	s->state = ST_START;
	s->result = SPF_NONE;
	return s;
fail:
	free(s);
	return NULL;
}

void
spf_free(struct spf **sp)
{
	struct spf	*s;
	size_t		 i;

	if (sp == NULL || (s = *sp) == NULL)
		return;
	for (i = 0; i < SPF_DEPTH_MAX; i++)
		free(s->frames[i]);
	free(s);
	*sp = NULL;
}

enum spf_result
spf_result(const struct spf *s)
{
	return s->result;
}

const char *
spf_explanation(const struct spf *s)
{
	return s->state == ST_DONE && s->result == SPF_FAIL ? s->exp : NULL;
}

const char *
spf_mechanism(const struct spf *s)
{
	return s->mech[0] != '\0' ? s->mech : NULL;
}

const char *
spf_problem(const struct spf *s)
{
	return s->problem[0] != '\0' ? s->problem : NULL;
}

const char *
spf_result_name(enum spf_result r)
{
	static const char *const	names[] = {
		[SPF_NONE] = "none",
		[SPF_NEUTRAL] = "neutral",
		[SPF_PASS] = "pass",
		[SPF_FAIL] = "fail",
		[SPF_SOFTFAIL] = "softfail",
		[SPF_TEMPERROR] = "temperror",
		[SPF_PERMERROR] = "permerror",
	};

	if ((unsigned int)r >= sizeof(names) / sizeof(names[0]))
		panic("spf: result %d", r);
	return names[r];
}

/*
 * Received-SPF (RFC 7208 9.1).
 */

#define HDR_FOLD	78	/* fold before a word that would pass this */

struct hdr {
	char	*buf;
	size_t	 size, len, col;
	bool	 over;
};

static void
hdr_raw(struct hdr *h, const char *p, size_t n)
{
	if (h->over || n >= h->size - h->len) {
		h->over = true;
		return;
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
	h->buf[h->len] = '\0';
}

/* One word, after a space or on a new folded line. */
static void
hdr_word(struct hdr *h, const char *w)
{
	size_t	n = strlen(w);

	if (h->col > 0 && h->col + 1 + n > HDR_FOLD) {
		hdr_raw(h, "\r\n\t", 3);
		h->col = 8;
	} else if (h->col > 0) {
		hdr_raw(h, " ", 1);
		h->col++;
	}
	hdr_raw(h, w, n);
	h->col += n;
}

/* atext of RFC 5322 3.2.3 */
static bool
is_atext(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool
is_dot_atom(const char *v)
{
	size_t	i, n = strlen(v);

	if (n == 0 || v[0] == '.' || v[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (!is_atext((unsigned char)v[i]) &&
		    (v[i] != '.' || v[i + 1] == '.'))
			return false;
	return true;
}

/* key=value; as a dot-atom or a quoted-string (9.1). */
static void
hdr_pair(struct hdr *h, const char *key, const char *value, bool last)
{
	char	v[SPF_HEADER_VALUE_MAX + 1];
	char	w[2 * SPF_HEADER_VALUE_MAX + 32];
	size_t	i, n;

	printable(v, sizeof(v), value, strlen(value));
	n = (size_t)snprintf(w, sizeof(w), "%s=", key);
	if (is_dot_atom(v))
		n += (size_t)snprintf(w + n, sizeof(w) - n, "%s", v);
	else {
		w[n++] = '"';
		for (i = 0; v[i] != '\0'; i++) {
			if (v[i] == '"' || v[i] == '\\')
				w[n++] = '\\';
			w[n++] = v[i];
		}
		w[n++] = '"';
	}
	if (!last)
		w[n++] = ';';
	w[n] = '\0';
	hdr_word(h, w);
}

/* The words of the comment; the sender one word, '(' ')' '\' made '?'. */
static void
hdr_comment(struct hdr *h, const struct spf *s)
{
	static const char *const	fmt[] = {
		[SPF_NONE] = "domain of %s does not designate permitted "
		    "sender hosts)",
		[SPF_NEUTRAL] = "%c is neither permitted nor denied by "
		    "domain of %s)",
		[SPF_PASS] = "domain of %s designates %c as permitted sender)",
		[SPF_FAIL] = "domain of %s does not designate %c as permitted "
		    "sender)",
		[SPF_SOFTFAIL] = "domain of transitioning %s does not "
		    "designate %c as permitted sender)",
		[SPF_TEMPERROR] = "error in processing during lookup of "
		    "domain of %s)",
		[SPF_PERMERROR] = "permanent error in processing domain of "
		    "%s)",
	};
	char		 word[SPF_HEADER_VALUE_MAX + 16];
	const char	*f = fmt[s->result], *e;
	size_t		 i, n;

	word[0] = '(';
	printable(word + 1, sizeof(word) - 2, s->receiver,
	    strlen(s->receiver));
	n = strlen(word);
	word[n++] = ':';
	word[n] = '\0';
	hdr_word(h, word);
	for (; *f != '\0'; f = *e == ' ' ? e + 1 : e) {
		e = strchr(f, ' ');
		if (e == NULL)
			e = f + strlen(f);
		if (f[0] == '%' && f[1] == 's') {
			printable(word, SPF_HEADER_VALUE_MAX + 1, s->sender,
			    strlen(s->sender));
			for (i = 0; word[i] != '\0'; i++)
				if (strchr("()\\", word[i]) != NULL)
					word[i] = '?';
			n = strlen(word);
		} else if (f[0] == '%' && f[1] == 'c') {
			n = (size_t)snprintf(word, sizeof(word), "%s", s->ip_c);
		} else {
			n = (size_t)(e - f);
			memcpy(word, f, n);
		}
		if (f[0] == '%' && f + 2 < e)	/* "%s)" */
			word[n++] = f[2];
		word[n] = '\0';
		hdr_word(h, word);
	}
}

int
spf_received(const struct spf *s, char *buf, size_t size)
{
	struct hdr	 h = { buf, size, 0, 0, false };
	const char	*what;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	hdr_word(&h, "Received-SPF:");
	hdr_word(&h, spf_result_name(s->result));
	hdr_comment(&h, s);
	hdr_pair(&h, "receiver", s->receiver, false);
	hdr_pair(&h, "client-ip", s->ip_c, false);
	hdr_pair(&h, "envelope-from", s->given, false);
	hdr_pair(&h, "helo", s->helo, false);
	what = s->problem[0] != '\0' ? "problem" : s->mech[0] != '\0' ?
	    "mechanism" : NULL;
	hdr_pair(&h, "identity", s->helo_id ? "helo" : "mailfrom",
	    what == NULL);
	if (what != NULL)
		hdr_pair(&h, what, s->problem[0] != '\0' ? s->problem :
		    s->mech, true);
	hdr_raw(&h, "\r\n", 2);
	return h.over || h.len > INT32_MAX ? -1 : (int)h.len;
}

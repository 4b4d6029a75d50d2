/*
 * test_spf.c - spf.c: terms and records (syntax, CIDR lengths), the
 * macro language with the examples of RFC 7208 7.4, whole checks driven
 * from a small zone in memory (CIDR matching, the limits of 4.6.4,
 * %{p}, exp=, DNS errors, odd answers), and the Received-SPF field.
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "spf.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

static void
test_terms(void)
{
	static const struct {
		const char	*term;
		int		 ret;
		enum spf_mech	 mech;
		char		 qual;
		const char	*spec;
		unsigned int	 cidr4, cidr6;
	} rows[] = {
		{ "all", 0, SPF_M_ALL, '+', NULL, 32, 128 },
		{ "-ALL", 0, SPF_M_ALL, '-', NULL, 32, 128 },
		{ "~all", 0, SPF_M_ALL, '~', NULL, 32, 128 },
		{ "?all", 0, SPF_M_ALL, '?', NULL, 32, 128 },
		{ "a", 0, SPF_M_A, '+', NULL, 32, 128 },
		{ "a/24", 0, SPF_M_A, '+', NULL, 24, 128 },
		{ "a//64", 0, SPF_M_A, '+', NULL, 32, 64 },
		{ "a/24//64", 0, SPF_M_A, '+', NULL, 24, 64 },
		{ "a/0//0", 0, SPF_M_A, '+', NULL, 0, 0 },
		{ "A:example.com/24", 0, SPF_M_A, '+', "example.com", 24, 128 },
		{ "a:foo:bar/baz.example.com", 0, SPF_M_A, '+',
		    "foo:bar/baz.example.com", 32, 128 },
		{ "mx:%{d}/27//100", 0, SPF_M_MX, '+', "%{d}", 27, 100 },
		{ "-mx:%%%_/.Clara.de/27", 0, SPF_M_MX, '-', "%%%_/.Clara.de",
		    27, 128 },
		{ "ptr", 0, SPF_M_PTR, '+', NULL, 32, 128 },
		{ "ptr:example.com", 0, SPF_M_PTR, '+', "example.com", 32,
		    128 },
		{ "include:_spf.example.com", 0, SPF_M_INCLUDE, '+',
		    "_spf.example.com", 32, 128 },
		{ "exists:%{i}.%{l2r-}.user.%{d2}", 0, SPF_M_EXISTS, '+',
		    "%{i}.%{l2r-}.user.%{d2}", 32, 128 },
		{ "ip4:192.0.2.0/24", 0, SPF_M_IP4, '+', NULL, 24, 128 },
		{ "ip4:1.2.3.4", 0, SPF_M_IP4, '+', NULL, 32, 128 },
		{ "ip6:2001:db8::/32", 0, SPF_M_IP6, '+', NULL, 32, 32 },
		{ "ip6:::1.1.1.1/0", 0, SPF_M_IP6, '+', NULL, 32, 0 },
		{ "redirect=_spf.example.com", 0, SPF_M_REDIRECT, '+',
		    "_spf.example.com", 32, 128 },
		{ "Exp=explain.%{d}", 0, SPF_M_EXP, '+', "explain.%{d}", 32,
		    128 },
		{ "moo.cow-far_out=man:dog/cat", 0, SPF_M_UNKNOWN, '+',
		    "man:dog/cat", 32, 128 },
		{ "default=+", 0, SPF_M_UNKNOWN, '+', "+", 32, 128 },
		{ "moo=", 0, SPF_M_UNKNOWN, '+', "", 32, 128 },
		{ "a:xn--zckzah.example.xn--zckzah", 0, SPF_M_A, '+',
		    "xn--zckzah.example.xn--zckzah", 32, 128 },
		{ "a:1-2.example.1-2", 0, SPF_M_A, '+', "1-2.example.1-2", 32,
		    128 },
		{ "a:example.com.", 0, SPF_M_A, '+', "example.com.", 32, 128 },
		/* syntax errors */
		{ "", -1, 0, 0, NULL, 0, 0 },
		{ "moo", -1, 0, 0, NULL, 0, 0 },
		{ "all.", -1, 0, 0, NULL, 0, 0 },
		{ "all:foo", -1, 0, 0, NULL, 0, 0 },
		{ "all/8", -1, 0, 0, NULL, 0, 0 },
		{ "=all", -1, 0, 0, NULL, 0, 0 },
		{ "+-all", -1, 0, 0, NULL, 0, 0 },
		{ "1up=foo", -1, 0, 0, NULL, 0, 0 },
		{ "moo.cow/far_out=man:dog/cat", -1, 0, 0, NULL, 0, 0 },
		{ "redirect:example.com", -1, 0, 0, NULL, 0, 0 },
		{ "redirect=", -1, 0, 0, NULL, 0, 0 },
		{ "redirect=-all", -1, 0, 0, NULL, 0, 0 },
		{ "exp=", -1, 0, 0, NULL, 0, 0 },
		{ "exp=%{r}.example.com", -1, 0, 0, NULL, 0, 0 },
		{ "foo=%abc", -1, 0, 0, NULL, 0, 0 },
		{ "include", -1, 0, 0, NULL, 0, 0 },
		{ "include:", -1, 0, 0, NULL, 0, 0 },
		{ "include:example.com/24", -1, 0, 0, NULL, 0, 0 },
		{ "exists", -1, 0, 0, NULL, 0, 0 },
		{ "exists:example.com/24", -1, 0, 0, NULL, 0, 0 },
		{ "ptr/0", -1, 0, 0, NULL, 0, 0 },
		{ "ptr:", -1, 0, 0, NULL, 0, 0 },
		{ "a:", -1, 0, 0, NULL, 0, 0 },
		{ "a/", -1, 0, 0, NULL, 0, 0 },
		{ "a/33", -1, 0, 0, NULL, 0, 0 },
		{ "a//129", -1, 0, 0, NULL, 0, 0 },
		{ "a/24/64", -1, 0, 0, NULL, 0, 0 },
		{ "a/032", -1, 0, 0, NULL, 0, 0 },
		{ "a:foo-bar", -1, 0, 0, NULL, 0, 0 },
		{ "a:museum", -1, 0, 0, NULL, 0, 0 },
		{ "a:museum.", -1, 0, 0, NULL, 0, 0 },
		{ "a:111.222.33.44", -1, 0, 0, NULL, 0, 0 },
		{ "a:example.-com", -1, 0, 0, NULL, 0, 0 },
		{ "a:example.com-", -1, 0, 0, NULL, 0, 0 },
		{ "a:example.com:8080", -1, 0, 0, NULL, 0, 0 },
		{ "a:%{d}.", -1, 0, 0, NULL, 0, 0 },
		{ "a:%{a}.example.com", -1, 0, 0, NULL, 0, 0 },
		{ "a:%{d0}.example.com", -1, 0, 0, NULL, 0, 0 },
		{ "a:%{d", -1, 0, 0, NULL, 0, 0 },
		{ "a:%{d!}", -1, 0, 0, NULL, 0, 0 },
		{ "a:example.com%", -1, 0, 0, NULL, 0, 0 },
		{ "ip4", -1, 0, 0, NULL, 0, 0 },
		{ "ip4:1.2.3", -1, 0, 0, NULL, 0, 0 },
		{ "ip4:1.2.3.4/33", -1, 0, 0, NULL, 0, 0 },
		{ "ip4:1.2.3.4/032", -1, 0, 0, NULL, 0, 0 },
		{ "ip4:1.2.3.4//32", -1, 0, 0, NULL, 0, 0 },
		{ "ip4:1.2.3.4/", -1, 0, 0, NULL, 0, 0 },
		{ "ip4:1.2.3.4:8080", -1, 0, 0, NULL, 0, 0 },
		{ "ip4:01.2.3.4", -1, 0, 0, NULL, 0, 0 },
		{ "ip4:1.2.3.256", -1, 0, 0, NULL, 0, 0 },
		{ "ip4:2001:db8::1", -1, 0, 0, NULL, 0, 0 },
		{ "ip6", -1, 0, 0, NULL, 0, 0 },
		{ "ip6::CAFE::BABE", -1, 0, 0, NULL, 0, 0 },
		{ "ip6:::1.1.1.1/129", -1, 0, 0, NULL, 0, 0 },
		{ "ip6:::1.1.1.1//33", -1, 0, 0, NULL, 0, 0 },
		{ "ip6:1.2.3.4", -1, 0, 0, NULL, 0, 0 },
	};
	struct spf_term	 t;
	const char	*errstr;
	size_t		 i;

	for (i = 0; i < NROWS(rows); i++) {
		const char *term = rows[i].term;
		int ret = spf_term_parse(term, strlen(term), &t, &errstr);

		CHECK_ROW(ret == rows[i].ret, term);
		if (ret != 0 || rows[i].ret != 0)
			continue;
		CHECK_ROW(t.mech == rows[i].mech, term);
		CHECK_ROW(t.qual == rows[i].qual, term);
		CHECK_ROW(t.cidr4 == rows[i].cidr4, term);
		CHECK_ROW(t.cidr6 == rows[i].cidr6, term);
		if (rows[i].spec == NULL)
			CHECK_ROW(t.spec == NULL, term);
		else
			CHECK_ROW(t.spec != NULL &&
			    t.spec_len == strlen(rows[i].spec) &&
			    memcmp(t.spec, rows[i].spec, t.spec_len) == 0,
			    term);
	}

	/* the network of ip4 and ip6, in the ipmatch.h form */
	CHECK(spf_term_parse("ip4:192.0.2.77/24", 17, &t, &errstr) == 0);
	CHECK(memcmp(t.net, "\0\0\0\0\0\0\0\0\0\0\xff\xff\xc0\0\x02\x4d",
	    16) == 0);
	CHECK(spf_term_parse("ip6:2001:db8::1", 15, &t, &errstr) == 0);
	CHECK(memcmp(t.net, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01",
	    16) == 0);
	/* octets outside 0x21..0x7e never belong to a term */
	CHECK(spf_term_parse("a:foo.example.com\0", 18, &t, &errstr) == -1);
	CHECK(spf_term_parse("a\tb", 3, &t, &errstr) == -1);
	CHECK(spf_term_parse("\x80" "a", 2, &t, &errstr) == -1);
	/* %{p} is noticed */
	CHECK(spf_term_parse("exists:%{p}.x.example", 21, &t, &errstr) == 0 &&
	    t.spec_p);
	CHECK(spf_term_parse("exists:%{d}.x.example", 21, &t, &errstr) == 0 &&
	    !t.spec_p);
}

static void
test_records(void)
{
	static const struct {
		const char	*rec;
		int		 ret;
		const char	*redirect, *exp, *bad;
		bool		 has_all;
		unsigned int	 terms;
	} rows[] = {
		{ "v=spf1", 0, NULL, NULL, NULL, false, 0 },
		{ "V=SpF1 ~all", 0, NULL, NULL, NULL, true, 1 },
		{ "v=spf1  a  -all ", 0, NULL, NULL, NULL, true, 2 },
		{ "v=spf1 mx redirect=_spf.example.com", 0,
		    "_spf.example.com", NULL, NULL, false, 2 },
		{ "v=spf1 -all exp=explain._spf.%{d}", 0, NULL,
		    "explain._spf.%{d}", NULL, true, 2 },
		{ "v=spf1 ip4:1.2.3.4 -all moo", -1, NULL, NULL, "moo", true,
		    3 },
		{ "v=spf1 exp=a.example.com -all exp=b.example.com", -1, NULL,
		    NULL, "exp=b.example.com", true, 3 },
		{ "v=spf1 redirect=a.example.com redirect=a.example.com", -1,
		    NULL, NULL, "redirect=a.example.com", false, 2 },
		{ "v=spf1 a:ctrl.example.com\rptr -all", -1, NULL, NULL,
		    "a:ctrl.example.com\rptr", false, 1 },
		{ "v=spf1 ip4:192.0.2.5\n include:example.com", -1, NULL, NULL,
		    "ip4:192.0.2.5\n", false, 1 },
		{ "v=spf1\ta", -1, NULL, NULL, NULL, false, 0 },
		{ "v=spf10", -1, NULL, NULL, NULL, false, 0 },
		{ "v=spf1mx", -1, NULL, NULL, NULL, false, 0 },
		{ "spf1", -1, NULL, NULL, NULL, false, 0 },
		{ "", -1, NULL, NULL, NULL, false, 0 },
	};
	struct spf_record	 r;
	const char		*errstr;
	size_t			 i;

	for (i = 0; i < NROWS(rows); i++) {
		const char *rec = rows[i].rec;
		int ret = spf_record_parse(rec, strlen(rec), &r, &errstr);

		CHECK_ROW(ret == rows[i].ret, rec);
		CHECK_ROW(r.terms == rows[i].terms, rec);
		if (ret == 0) {
			CHECK_ROW(r.has_all == rows[i].has_all, rec);
			CHECK_ROW(rows[i].redirect == NULL ? r.redirect ==
			    NULL : r.redirect != NULL && r.redirect_len ==
			    strlen(rows[i].redirect) && memcmp(r.redirect,
			    rows[i].redirect, r.redirect_len) == 0, rec);
			CHECK_ROW(rows[i].exp == NULL ? r.exp == NULL :
			    r.exp != NULL && r.exp_len ==
			    strlen(rows[i].exp) && memcmp(r.exp, rows[i].exp,
			    r.exp_len) == 0, rec);
		} else if (rows[i].bad != NULL)
			CHECK_ROW(r.bad != NULL && r.bad_len ==
			    strlen(rows[i].bad) && memcmp(r.bad, rows[i].bad,
			    r.bad_len) == 0, rec);
	}
	/* a NUL inside is a syntax error, not the end */
	CHECK(spf_record_parse("v=spf1 a\0 -all", 14, &r, &errstr) == -1);
	CHECK(spf_record_is_spf("v=spf1", 6));
	CHECK(spf_record_is_spf("V=SPF1 a", 8));
	CHECK(!spf_record_is_spf("v=spf1", 5));
	CHECK(!spf_record_is_spf("v=spf1x", 7));
	CHECK(!spf_record_is_spf(NULL, 0));
}

/* RFC 7208 7.4, with the client's %{i} given as the section has it. */
static void
test_macros(void)
{
	static const struct spf_macros	m4 = {
		.s = "strong-bad@email.example.com", .l = "strong-bad",
		.o = "email.example.com", .d = "email.example.com",
		.i = "192.0.2.3", .p = "mx.example.org", .v = "in-addr",
		.h = "mx.example.org", .c = "192.0.2.3", .r = "mx.example.net",
		.t = "1700000000",
	};
	static const struct spf_macros	m6 = {
		.s = "strong-bad@email.example.com", .l = "strong-bad",
		.o = "email.example.com", .d = "email.example.com",
		.i = "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0."
		    "0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1", .v = "ip6",
		.c = "2001:db8::cb01",
	};
	static const struct {
		const char			*in;
		const struct spf_macros		*m;
		int				 flags;
		const char			*want;	/* NULL: an error */
	} rows[] = {
		{ "%{s}", &m4, 0, "strong-bad@email.example.com" },
		{ "%{o}", &m4, 0, "email.example.com" },
		{ "%{d}", &m4, 0, "email.example.com" },
		{ "%{d4}", &m4, 0, "email.example.com" },
		{ "%{d3}", &m4, 0, "email.example.com" },
		{ "%{d2}", &m4, 0, "example.com" },
		{ "%{d1}", &m4, 0, "com" },
		{ "%{dr}", &m4, 0, "com.example.email" },
		{ "%{d2r}", &m4, 0, "example.email" },
		{ "%{l}", &m4, 0, "strong-bad" },
		{ "%{l-}", &m4, 0, "strong.bad" },
		{ "%{lr}", &m4, 0, "strong-bad" },
		{ "%{lr-}", &m4, 0, "bad.strong" },
		{ "%{l1r-}", &m4, 0, "strong" },
		{ "%{ir}.%{v}._spf.%{d2}", &m4, 0,
		    "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", &m4, 0,
		    "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", &m4, 0,
		    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", &m4, 0,
		    "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net", &m4, 0,
		    "example.com.trusted-domains.example.net" },
		{ "%{ir}.%{v}._spf.%{d2}", &m6, 0,
		    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0."
		    "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com" },
		/* more than the parts there are; several delimiters */
		{ "%{d99}", &m4, 0, "email.example.com" },
		{ "%{s2r-.}", &m4, 0, "bad@email.strong" },
		{ "%{S2r-.}", &m4, 0, "bad%40email.strong" },
		{ "%{s1r+-=}", &m4, 0, "strong" },
		{ "%{s2r@}", &m4, 0, NULL },	/* '@' is no delimiter */
		{ "%{p}.%{h}", &m4, 0, "mx.example.org.mx.example.org" },
		/* %%, %_, %- and URL escapes for upper-case letters (7.3) */
		{ "a%%b%_c%-d.example.com", &m4, 0, "a%b c%20d.example.com" },
		{ "%{S}", &m4, 0, "strong-bad%40email.example.com" },
		{ "%{L}.x", &m4, 0, "strong-bad.x" },
		/* trailing dot dropped in names, kept in exp text */
		{ "%{d}.", &m4, 0, "email.example.com" },
		{ "end.", &m4, SPF_MACRO_EXP, "end." },
		/* c, r, t in exp text only; spaces too */
		{ "%{c} via %{r} at %{t}", &m4, SPF_MACRO_EXP,
		    "192.0.2.3 via mx.example.net at 1700000000" },
		{ "%{c}", &m4, 0, NULL },
		{ "%{r}", &m4, 0, NULL },
		{ "%{t}", &m4, 0, NULL },
		{ "a b", &m4, 0, NULL },
		{ "%{c}", &m6, SPF_MACRO_EXP, "2001:db8::cb01" },
		/* syntax errors */
		{ "%", &m4, 0, NULL },
		{ "%a", &m4, 0, NULL },
		{ "%(ir)", &m4, 0, NULL },
		{ "%{x}", &m4, SPF_MACRO_EXP, NULL },
		{ "%{d0}", &m4, 0, NULL },
		{ "%{d2r", &m4, 0, NULL },
		{ "%{d2rr}", &m4, 0, NULL },
		{ "%{d2:}", &m4, 0, NULL },
		{ "%{}", &m4, 0, NULL },
		{ "tab\there", &m4, SPF_MACRO_EXP, NULL },
		{ "\xef\xbb\xbf" "Explanation", &m4, SPF_MACRO_EXP, NULL },
		/* missing values read as empty */
		{ "x%{p}y", &m6, SPF_MACRO_EXP, "xy" },
	};
	char		 out[SPF_NAME_MAX + 1];
	const char	*errstr;
	size_t		 i;
	int		 n;

	for (i = 0; i < NROWS(rows); i++) {
		const char *in = rows[i].in;

		n = spf_macro_expand(in, strlen(in), rows[i].m, rows[i].flags,
		    out, sizeof(out), &errstr);
		if (rows[i].want == NULL) {
			CHECK_ROW(n == -1, in);
			CHECK_ROW(spf_macro_check(in, strlen(in),
			    rows[i].flags, NULL, &errstr) == -1, in);
			continue;
		}
		CHECK_ROW(n >= 0 && (size_t)n == strlen(rows[i].want) &&
		    strcmp(out, rows[i].want) == 0, in);
		CHECK_ROW(spf_macro_check(in, strlen(in), rows[i].flags, NULL,
		    &errstr) == 0, in);
		if (n < 0 || strcmp(out, rows[i].want) != 0)
			printf("  got \"%s\"\n", n < 0 ? errstr : out);
	}
}

/* Names over 253 octets lose labels on the left (7.3); exp text fails. */
static void
test_macro_bounds(void)
{
	static const struct spf_macros	m = {
		.o = "somewhat.long.exp.example.com",
		.l = "a123456789b123456789c123456789d123456789e123456789"
		    "f123456789g1234567",
	};
	char		 out[SPF_NAME_MAX + 1], big[8192], exp[64];
	const char	*errstr, *in;
	size_t		 i;
	int		 n;

	in = "foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com";
	n = spf_macro_expand(in, strlen(in), &m, 0, out, sizeof(out),
	    &errstr);
	CHECK_INT(n, 251);
	CHECK(strncmp(out, "somewhat.long.exp.example.com.", 30) == 0);
	/* a huge expansion keeps the right end only, bounded */
	for (i = 0; i + 5 < sizeof(big) - 20; i += 5)
		memcpy(big + i, "%{o}.", 5);
	memcpy(big + i, "end.example", sizeof("end.example"));
	n = spf_macro_expand(big, strlen(big), &m, 0, out, sizeof(out),
	    &errstr);
	CHECK(n > 0 && n <= SPF_NAME_MAX);
	CHECK(n > 12 && strcmp(out + n - 12, ".end.example") == 0);
	/* as long as whole labels allow, starting with a whole one */
	CHECK(n > SPF_NAME_MAX - 9);
	CHECK(strncmp(out, "somewhat.", 9) == 0 || strncmp(out, "long.", 5) ==
	    0 || strncmp(out, "exp.", 4) == 0 || strncmp(out, "example.", 8) ==
	    0 || strncmp(out, "com.", 4) == 0);
	/* a label longer than a name leaves nothing */
	in = "%{l}%{l}%{l}%{l}";
	n = spf_macro_expand(in, strlen(in), &m, 0, out, sizeof(out),
	    &errstr);
	CHECK_INT(n, 0);
	/* exp text that does not fit is an error, never cut */
	n = spf_macro_expand("%{l}", 4, &m, SPF_MACRO_EXP, exp, sizeof(exp),
	    &errstr);
	CHECK_INT(n, -1);
	n = spf_macro_expand("%{o}", 4, &m, SPF_MACRO_EXP, exp, sizeof(exp),
	    &errstr);
	CHECK_INT(n, 29);
}

/*
 * Whole checks against a zone in memory: rows of (name, type, value);
 * value "TIMEOUT" makes that type time out.  Names match exactly.
 */
struct zrow {
	const char	*name, *type, *value;
};

struct run {
	enum spf_result	 result;
	char		 exp[SPF_EXP_MAX], mech[SPF_MECH_MAX];
	char		 problem[SPF_PROBLEM_MAX];
	char		 hdr[SPF_HEADER_MAX];
	int		 queries;
	char		 log[4096];	/* "TYPE name;" of each query */
};

static const char *const qtype_names[] = {
	[SPF_Q_TXT] = "TXT", [SPF_Q_A] = "A", [SPF_Q_AAAA] = "AAAA",
	[SPF_Q_MX] = "MX", [SPF_Q_PTR] = "PTR",
};

static void
answer(struct spf *s, const struct spf_query *q, const struct zrow *z,
    size_t nz)
{
	static struct spf_rr	rr[64];
	const char		*type = qtype_names[q->type];
	size_t			n = 0, i;
	bool			exists = false;

	for (i = 0; i < nz; i++) {
		if (strcmp(z[i].name, q->name) != 0)
			continue;
		exists = true;
		if (strcmp(z[i].type, type) != 0)
			continue;
		if (strcmp(z[i].value, "TIMEOUT") == 0) {
			spf_answer(s, SPF_DNS_TEMPFAIL, NULL, 0);
			return;
		}
		memset(&rr[n], 0, sizeof(rr[n]));
		if (q->type == SPF_Q_A) {
			rr[n].addr[10] = rr[n].addr[11] = 0xff;
			inet_pton(AF_INET, z[i].value, rr[n].addr + 12);
		} else if (q->type == SPF_Q_AAAA)
			inet_pton(AF_INET6, z[i].value, rr[n].addr);
		else {
			rr[n].text = z[i].value;
			rr[n].len = strlen(z[i].value);
		}
		n++;
	}
	if (!exists)
		spf_answer(s, SPF_DNS_NXDOMAIN, NULL, 0);
	else if (n == 0)
		spf_answer(s, SPF_DNS_NODATA, NULL, 0);
	else
		spf_answer(s, SPF_DNS_OK, rr, n);
}

static void
check_run(struct run *r, const char *ip, const char *sender, const char *helo,
    const struct zrow *z, size_t nz)
{
	struct spf_params	 p = { .ip = ip, .sender = sender, .helo = helo,
	    .receiver = "mx.example.org", .now = 1700000000 };
	struct spf_query	 q, q2;
	struct spf		*s;
	const char		*errstr, *v;
	size_t			 len;

	memset(r, 0, sizeof(*r));
	if ((s = spf_new(&p, &errstr)) == NULL) {
		printf("  spf_new: %s\n", errstr);
		r->result = -1;
		return;
	}
	while (spf_next(s, &q) == SPF_STEP_QUERY && r->queries < 500) {
		r->queries++;
		/* asked again before the answer: the same query */
		if (spf_next(s, &q2) != SPF_STEP_QUERY ||
		    memcmp(&q, &q2, sizeof(q)) != 0)
			r->queries += 1000;
		len = strlen(r->log);
		snprintf(r->log + len, sizeof(r->log) - len, "%s %s;",
		    qtype_names[q.type], q.name);
		answer(s, &q, z, nz);
	}
	r->result = spf_result(s);
	if ((v = spf_explanation(s)) != NULL)
		snprintf(r->exp, sizeof(r->exp), "%s", v);
	if ((v = spf_mechanism(s)) != NULL)
		snprintf(r->mech, sizeof(r->mech), "%s", v);
	if ((v = spf_problem(s)) != NULL)
		snprintf(r->problem, sizeof(r->problem), "%s", v);
	if (spf_received(s, r->hdr, sizeof(r->hdr)) == -1)
		r->hdr[0] = '\0';
	/* an answer nobody waits for changes nothing */
	spf_answer(s, SPF_DNS_TEMPFAIL, NULL, 0);
	CHECK(spf_next(s, &q) == SPF_STEP_DONE && spf_result(s) == r->result);
	spf_free(&s);
	CHECK(s == NULL);
}

static const struct zrow zone[] = {
	{ "example.com", "TXT", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/33 "
	    "a:host.example.com/30//126 -all" },
	{ "host.example.com", "A", "198.51.100.9" },
	{ "host.example.com", "AAAA", "2001:db9::9" },
	/* the 10 DNS-querying terms of 4.6.4, exactly */
	{ "ten.example.com", "TXT", "v=spf1 a a a a a a a a a include:"
	    "last.example.com -all" },
	{ "ten.example.com", "A", "192.0.2.99" },
	{ "last.example.com", "TXT", "v=spf1 ip4:192.0.2.1" },
	{ "eleven.example.com", "TXT", "v=spf1 a a a a a a a a a a a "
	    "ip4:192.0.2.1 -all" },
	{ "eleven.example.com", "A", "192.0.2.99" },
	/* the 11th is never reached: the limit counts terms evaluated */
	{ "early.example.com", "TXT", "v=spf1 ip4:192.0.2.1 a a a a a a a a "
	    "a a a a -all" },
	/* void lookups: two are allowed, the third is a permerror */
	{ "void2.example.com", "TXT", "v=spf1 a:nx1.example.com "
	    "mx:nx2.example.com ?all" },
	{ "void3.example.com", "TXT", "v=spf1 a:nx1.example.com "
	    "mx:nx2.example.com exists:nx3.example.com ?all" },
	/* MX: 10 names are allowed, 11 are a permerror */
	{ "mx10.example.com", "TXT", "v=spf1 mx -all" },
	{ "mx10.example.com", "MX", "m1.example.com" },
	{ "mx10.example.com", "MX", "m2.example.com" },
	{ "mx10.example.com", "MX", "m3.example.com" },
	{ "mx10.example.com", "MX", "m4.example.com" },
	{ "mx10.example.com", "MX", "m5.example.com" },
	{ "mx10.example.com", "MX", "m6.example.com" },
	{ "mx10.example.com", "MX", "m7.example.com" },
	{ "mx10.example.com", "MX", "m8.example.com" },
	{ "mx10.example.com", "MX", "m9.example.com" },
	{ "mx10.example.com", "MX", "m10.example.com." },
	{ "m10.example.com", "A", "192.0.2.10" },
	{ "mx11.example.com", "TXT", "v=spf1 mx -all" },
	{ "mx11.example.com", "MX", "m1.example.com" },
	{ "mx11.example.com", "MX", "m2.example.com" },
	{ "mx11.example.com", "MX", "m3.example.com" },
	{ "mx11.example.com", "MX", "m4.example.com" },
	{ "mx11.example.com", "MX", "m5.example.com" },
	{ "mx11.example.com", "MX", "m6.example.com" },
	{ "mx11.example.com", "MX", "m7.example.com" },
	{ "mx11.example.com", "MX", "m8.example.com" },
	{ "mx11.example.com", "MX", "m9.example.com" },
	{ "mx11.example.com", "MX", "m10.example.com" },
	{ "mx11.example.com", "MX", "m11.example.com" },
	/* PTR: only the first 10 names count */
	{ "ptr.example.com", "TXT", "v=spf1 ptr -all" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "a.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "b.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "c.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "d.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "e.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "f.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "g.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "h.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "i.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "j.example.net" },
	{ "5.2.0.192.in-addr.arpa", "PTR", "mail.ptr.example.com" },
	{ "6.2.0.192.in-addr.arpa", "PTR", "a.example.net" },
	{ "6.2.0.192.in-addr.arpa", "PTR", "mail.ptr.example.com." },
	{ "mail.ptr.example.com", "A", "192.0.2.5" },
	{ "mail.ptr.example.com", "A", "192.0.2.6" },
	/* %{p} in exp= text, with a subdomain of <domain> preferred */
	{ "p.example.com", "TXT", "v=spf1 -all exp=why.example.com" },
	{ "why.example.com", "TXT", "%{p} (%{i}) may not send for %{d}" },
	{ "8.2.0.192.in-addr.arpa", "PTR", "other.example.net" },
	{ "8.2.0.192.in-addr.arpa", "PTR", "host.p.example.com" },
	{ "other.example.net", "A", "192.0.2.8" },
	{ "host.p.example.com", "A", "192.0.2.8" },
	/* DNS errors */
	{ "tmp.example.com", "TXT", "TIMEOUT" },
	{ "tmpa.example.com", "TXT", "v=spf1 a:down.example.com -all" },
	{ "down.example.com", "A", "TIMEOUT" },
	{ "tmpptr.example.com", "TXT", "v=spf1 ptr ?all" },
	{ "9.2.0.192.in-addr.arpa", "PTR", "TIMEOUT" },
	/* include depth is bounded by the 10 terms */
	{ "deep.example.com", "TXT", "v=spf1 include:deep.example.com" },
	{ "twice.example.com", "TXT", "v=spf1 -all" },
	{ "twice.example.com", "TXT", "v=SPF1 +all" },
	{ "twice.example.com", "TXT", "not spf" },
	{ "helo.example.com", "TXT", "v=spf1 a -all" },
	{ "helo.example.com", "A", "192.0.2.77" },
	/* exp= of a long explanation falls back to the default */
	{ "long.example.com", "TXT", "v=spf1 -all exp=longexp.example.com" },
	{ "longexp.example.com", "TXT", "%{s} %{s} %{s} %{s} %{s} %{s} %{s} "
	    "%{s} %{s} %{s} %{s} %{s} %{s} %{s} %{s} %{s} %{s} %{s} %{s} "
	    "%{s} %{s} %{s} %{s} %{s} %{s} %{s} %{s} %{s} %{s} %{s}" },
};

static void
test_checks(void)
{
	static const struct {
		const char	*ip, *sender, *helo;
		enum spf_result	 result;
		const char	*mech;	/* or the start of the problem */
	} rows[] = {
		/* CIDR: ip4, ip6, a with both prefix lengths */
		{ "192.0.2.200", "u@example.com", "h", SPF_PASS,
		    "ip4:192.0.2.0/24" },
		{ "192.0.3.1", "u@example.com", "h", SPF_FAIL, "-all" },
		{ "::ffff:192.0.2.1", "u@example.com", "h", SPF_PASS,
		    "ip4:192.0.2.0/24" },
		{ "2001:db8:7fff::1", "u@example.com", "h", SPF_PASS,
		    "ip6:2001:db8::/33" },
		{ "2001:db8:8000::1", "u@example.com", "h", SPF_FAIL, "-all" },
		{ "198.51.100.10", "u@example.com", "h", SPF_PASS,
		    "a:host.example.com/30//126" },
		{ "198.51.100.12", "u@example.com", "h", SPF_FAIL, "-all" },
		{ "2001:db9::a", "u@example.com", "h", SPF_PASS,
		    "a:host.example.com/30//126" },
		{ "2001:db9::1:9", "u@example.com", "h", SPF_FAIL, "-all" },
		/* the limits of 4.6.4 */
		{ "192.0.2.1", "u@ten.example.com", "h", SPF_PASS,
		    "include:last.example.com" },
		{ "192.0.2.1", "u@eleven.example.com", "h", SPF_PERMERROR,
		    "more than 10 DNS-querying terms" },
		{ "192.0.2.1", "u@early.example.com", "h", SPF_PASS,
		    "ip4:192.0.2.1" },
		{ "192.0.2.1", "u@void2.example.com", "h", SPF_NEUTRAL,
		    "?all" },
		{ "192.0.2.1", "u@void3.example.com", "h", SPF_PERMERROR,
		    "more than 2 void lookups" },
		{ "192.0.2.10", "u@mx10.example.com", "h", SPF_PASS, "mx" },
		{ "192.0.2.10", "u@mx11.example.com", "h", SPF_PERMERROR,
		    "more than 10 MX records" },
		{ "192.0.2.5", "u@ptr.example.com", "h", SPF_FAIL, "-all" },
		{ "192.0.2.6", "u@ptr.example.com", "h", SPF_PASS, "ptr" },
		{ "192.0.2.1", "u@deep.example.com", "h", SPF_PERMERROR,
		    "more than 10 DNS-querying terms" },
		/* DNS errors: temperror, but none for ptr (5.5) */
		{ "192.0.2.1", "u@tmp.example.com", "h", SPF_TEMPERROR,
		    "DNS error" },
		{ "192.0.2.1", "u@tmpa.example.com", "h", SPF_TEMPERROR,
		    "DNS error looking up: down.example.com" },
		{ "192.0.2.9", "u@tmpptr.example.com", "h", SPF_NEUTRAL,
		    "?all" },
		/* none: no record, no domain; several records */
		{ "192.0.2.1", "u@nx.example.com", "h", SPF_NONE,
		    "no SPF record" },
		{ "192.0.2.1", "u@localhost", "h", SPF_NONE,
		    "not a domain name" },
		{ "192.0.2.1", "u@[192.0.2.1]", "h", SPF_NONE,
		    "not a domain name" },
		{ "192.0.2.1", "u@twice.example.com", "h", SPF_PERMERROR,
		    "more than one SPF record" },
		/* the HELO identity: null sender */
		{ "192.0.2.77", "", "helo.example.com", SPF_PASS, "a" },
		{ "192.0.2.78", "", "helo.example.com.", SPF_FAIL, "-all" },
	};
	struct run	r;
	size_t		i;

	for (i = 0; i < NROWS(rows); i++) {
		const char *want = rows[i].mech;

		check_run(&r, rows[i].ip, rows[i].sender, rows[i].helo, zone,
		    NROWS(zone));
		CHECK_ROW(r.result == rows[i].result, rows[i].sender);
		if (r.problem[0] != '\0')
			CHECK_ROW(strncmp(r.problem, want, strlen(want)) == 0,
			    rows[i].sender);
		else
			CHECK_ROW(strcmp(r.mech, want) == 0, rows[i].sender);
		CHECK_ROW(r.queries < 200, rows[i].sender);
		if (r.result != rows[i].result)
			printf("  got %s (%s%s) after %s\n",
			    spf_result_name(r.result), r.mech, r.problem,
			    r.log);
	}
}

static void
test_explanations(void)
{
	struct run	r;

	/* %{p} prefers a name under <domain> (7.3) */
	check_run(&r, "192.0.2.8", "u@p.example.com", "h", zone, NROWS(zone));
	CHECK(r.result == SPF_FAIL);
	CHECK_STR(r.exp, "host.p.example.com (192.0.2.8) may not send for "
	    "p.example.com");
	/* an explanation too long for a reply: the default */
	check_run(&r, "192.0.2.8", "someone@long.example.com", "h", zone,
	    NROWS(zone));
	CHECK(r.result == SPF_FAIL);
	CHECK_STR(r.exp, "long.example.com does not designate 192.0.2.8 as "
	    "permitted sender");
	/* only fail has one */
	check_run(&r, "192.0.2.1", "u@example.com", "h", zone, NROWS(zone));
	CHECK(r.result == SPF_PASS && r.exp[0] == '\0');
	/* the PTR names are asked once, and only when needed */
	check_run(&r, "192.0.2.1", "u@example.com", "h", zone, NROWS(zone));
	CHECK(strstr(r.log, "PTR") == NULL);
	check_run(&r, "192.0.2.8", "u@p.example.com", "h", zone, NROWS(zone));
	CHECK_STR(r.log, "TXT p.example.com;TXT why.example.com;"
	    "PTR 8.2.0.192.in-addr.arpa;A host.p.example.com;");
}

/* Answers that do not fit the question are read safely. */
static void
test_odd_answers(void)
{
	struct spf_params	 p = { .ip = "2001:db8::1", .sender =
	    "u@example.org", .helo = "h" };
	struct spf_rr		 rr[2];
	struct spf_query	 q;
	struct spf		*s;
	const char		*errstr;

	memset(rr, 0, sizeof(rr));
	CHECK((s = spf_new(&p, &errstr)) != NULL);
	CHECK(spf_next(s, &q) == SPF_STEP_QUERY && q.type == SPF_Q_TXT);
	CHECK_STR(q.name, "example.org");
	rr[0].text = "v=spf1 a -all";
	rr[0].len = 13;
	spf_answer(s, SPF_DNS_OK, rr, 1);
	CHECK(spf_next(s, &q) == SPF_STEP_QUERY && q.type == SPF_Q_AAAA);
	/* an IPv4 address in an AAAA answer is not one of its records */
	rr[0].addr[10] = rr[0].addr[11] = 0xff;
	spf_answer(s, SPF_DNS_OK, rr, 1);
	CHECK(spf_next(s, &q) == SPF_STEP_DONE);
	CHECK(spf_result(s) == SPF_FAIL);
	spf_free(&s);
	spf_free(&s);
	spf_free(NULL);

	/* a status out of range is a DNS error */
	CHECK((s = spf_new(&p, &errstr)) != NULL);
	CHECK(spf_next(s, &q) == SPF_STEP_QUERY);
	spf_answer(s, (enum spf_dns)42, NULL, 5);
	CHECK(spf_next(s, &q) == SPF_STEP_DONE);
	CHECK(spf_result(s) == SPF_TEMPERROR);
	spf_free(&s);

	/* a record over SPF_RECORD_MAX is a permerror, not cut */
	{
		static char big[SPF_RECORD_MAX + 10];

		memset(big, ' ', sizeof(big));
		memcpy(big, "v=spf1", 6);
		CHECK((s = spf_new(&p, &errstr)) != NULL);
		CHECK(spf_next(s, &q) == SPF_STEP_QUERY);
		rr[0].text = big;
		rr[0].len = sizeof(big);
		spf_answer(s, SPF_DNS_OK, rr, 1);
		CHECK(spf_next(s, &q) == SPF_STEP_DONE);
		CHECK(spf_result(s) == SPF_PERMERROR);
		spf_free(&s);
	}

	/* addresses as 16 octets; bad parameters */
	{
		static const uint8_t v4[16] = { [10] = 0xff, [11] = 0xff, 192,
		    0, 2, 1 };
		struct spf_params p2 = { .addr = v4, .sender = "a@b.example" };

		CHECK((s = spf_new(&p2, &errstr)) != NULL);
		CHECK(spf_next(s, &q) == SPF_STEP_QUERY);
		spf_free(&s);
		p2.addr = NULL;
		CHECK(spf_new(&p2, &errstr) == NULL);
		p2.ip = "192.0.2.300";
		CHECK(spf_new(&p2, &errstr) == NULL);
	}
}

static void
test_new(void)
{
	static char		 huge[SPF_SENDER_MAX + 10];
	struct spf_params	 p = { .ip = "192.0.2.1", .helo = "h" };
	struct spf_query	 q;
	struct spf		*s;
	const char		*errstr;

	/* a malformed sender is none, asked nothing (4.3) */
	memset(huge, 'a', sizeof(huge) - 1);
	memcpy(huge + sizeof(huge) - 14, "@example.com", 13);
	p.sender = huge;
	CHECK((s = spf_new(&p, &errstr)) != NULL);
	CHECK(spf_next(s, &q) == SPF_STEP_DONE);
	CHECK(spf_result(s) == SPF_NONE);
	spf_free(&s);
	/* "@domain" is postmaster@domain; no '@' is a domain */
	p.sender = "@example.net";
	CHECK((s = spf_new(&p, &errstr)) != NULL);
	CHECK(spf_next(s, &q) == SPF_STEP_QUERY);
	CHECK_STR(q.name, "example.net");
	spf_free(&s);
	p.sender = "example.net.";
	CHECK((s = spf_new(&p, &errstr)) != NULL);
	CHECK(spf_next(s, &q) == SPF_STEP_QUERY);
	CHECK_STR(q.name, "example.net");
	spf_free(&s);
	/* the PTR query of an IPv6 client */
	p.ip = "2001:db8::cb01";
	p.sender = "u@example.net";
	CHECK((s = spf_new(&p, &errstr)) != NULL);
	CHECK(spf_next(s, &q) == SPF_STEP_QUERY);
	{
		struct spf_rr rr = { .text = "v=spf1 ptr", .len = 10 };

		spf_answer(s, SPF_DNS_OK, &rr, 1);
	}
	CHECK(spf_next(s, &q) == SPF_STEP_QUERY && q.type == SPF_Q_PTR);
	CHECK_STR(q.name, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b."
	    "d.0.1.0.0.2.ip6.arpa");
	CHECK(q.addr[0] == 0x20 && q.addr[15] == 0x01);
	spf_free(&s);
	CHECK_STR(spf_result_name(SPF_SOFTFAIL), "softfail");
	CHECK_STR(spf_result_name(SPF_PERMERROR), "permerror");
}

/* Every line ends in CRLF, folds are CRLF TAB, nothing else is control. */
static bool
header_ok(const char *h)
{
	size_t	i, col = 0, n = strlen(h);

	if (n < 2 || strcmp(h + n - 2, "\r\n") != 0)
		return false;
	for (i = 0; i < n - 2; i++, col++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '\r') {
			if (h[i + 1] != '\n' || h[i + 2] != '\t')
				return false;
			i++;
			col = 0;
		} else if ((c < 0x20 && c != '\t') || c > 0x7e || col >= 998)
			return false;
	}
	return true;
}

static void
test_header(void)
{
	static char		 nasty[SPF_SENDER_MAX + 1];
	static char		 helo[SPF_SENDER_MAX + 1];
	struct spf_params	 p = { .ip = "192.0.2.200", .sender =
	    "u@example.com", .helo = "mail.example.com", .receiver =
	    "mx.example.org" };
	struct spf_query	 q;
	struct spf		*s;
	const char		*errstr;
	char			 buf[SPF_HEADER_MAX];
	struct run		 r;
	size_t			 i;
	int			 n;

	check_run(&r, "192.0.2.200", "u@example.com", "mail.example.com", zone,
	    NROWS(zone));
	CHECK_STR(r.hdr, "Received-SPF: pass (mx.example.org: domain of "
	    "u@example.com designates\r\n\t192.0.2.200 as permitted sender) "
	    "receiver=mx.example.org;\r\n\tclient-ip=192.0.2.200; "
	    "envelope-from=\"u@example.com\";\r\n\thelo=mail.example.com; "
	    "identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\"\r\n");
	check_run(&r, "2001:db8::1", "", "nx.example.com", zone, NROWS(zone));
	CHECK_STR(r.hdr, "Received-SPF: none (mx.example.org: domain of "
	    "postmaster@nx.example.com does\r\n\tnot designate permitted "
	    "sender hosts) receiver=mx.example.org;\r\n\t"
	    "client-ip=\"2001:db8::1\"; envelope-from=\"\"; "
	    "helo=nx.example.com;\r\n\tidentity=helo; "
	    "problem=\"no SPF record: nx.example.com\"\r\n");

	/* the worst a client can send still fits, and stays inert */
	for (i = 0; i < sizeof(nasty) - 1; i++)
		nasty[i] = "\"\\\r\n()\x80 "[i % 8];
	memcpy(nasty + sizeof(nasty) - 13, "@example.com", 12);
	memset(helo, '"', sizeof(helo) - 1);
	p.sender = nasty;
	p.helo = helo;
	CHECK((s = spf_new(&p, &errstr)) != NULL);
	while (spf_next(s, &q) == SPF_STEP_QUERY)
		spf_answer(s, SPF_DNS_NXDOMAIN, NULL, 0);
	n = spf_received(s, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n == strlen(buf));
	CHECK(header_ok(buf));
	/* too small a buffer is an error, never an overrun */
	CHECK(spf_received(s, buf, 40) == -1);
	CHECK(spf_received(s, buf, 0) == -1);
	spf_free(&s);
}

int
main(void)
{
	RUN(test_terms);
	RUN(test_records);
	RUN(test_macros);
	RUN(test_macro_bounds);
	RUN(test_checks);
	RUN(test_explanations);
	RUN(test_odd_answers);
	RUN(test_new);
	RUN(test_header);
	return test_done();
}

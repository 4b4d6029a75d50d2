/*
 * test_addr.c - addr.c: paths, bare addresses, formatting, folding and
 * domain checks, as tables of rows.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

static char	 long_local[200], ok_local[200], label64[200];
static char	 long_path[400];

/* A domain of len octets: labels of up to 63 'd', separated by dots. */
static void
make_domain(char *buf, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		buf[i] = (i + 1) % 64 == 0 && i + 1 < len ? '.' : 'd';
	buf[len] = '\0';
}

static void
make_long_inputs(void)
{
	char	 l64[65], l65[66];

	memset(l64, 'a', 64);
	l64[64] = '\0';
	memset(l65, 'a', 65);
	l65[65] = '\0';
	snprintf(ok_local, sizeof(ok_local), "<%s@x.org>", l64);
	snprintf(long_local, sizeof(long_local), "<%s@x.org>", l65);
	snprintf(label64, sizeof(label64), "<a@%s.org>", l64);
	/* local 64 + "@" + 189 octets: a path of 256 + 1 */
	snprintf(long_path, sizeof(long_path), "<%s@%.63s.%.63s.%.62s>", l64,
	    l64, l64, l64);
}

struct path_row {
	const char	*input;
	bool		 utf8;
	int		 ret;
	const char	*local;
	const char	*domain;
	unsigned int	 flags;
	const char	*rest;		/* what follows the path */
};

static const struct path_row path_rows[] = {
	{ "<a@b>", false, 0, "a", "b", 0, "" },
	{ "<User.Name+tag@Example.COM> SIZE=1", false, 0, "User.Name+tag",
	  "example.com", 0, " SIZE=1" },
	{ "<a@example.com.>", false, 0, "a", "example.com", 0, "" },
	{ "<a@example.com..>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@.>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@.com>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@x..com>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@-x.com>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@x-.com>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@x_y.com>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@x-y.com>", false, 0, "a", "x-y.com", 0, "" },
	{ "<>", false, 0, "", "", ADDR_F_NULL, "" },
	{ "<> BODY=8BITMIME", false, 0, "", "", ADDR_F_NULL, " BODY=8BITMIME" },
	{ "<postmaster>", false, 0, "postmaster", "", ADDR_F_POSTMASTER, "" },
	{ "<PostMaster>", false, 0, "postmaster", "", ADDR_F_POSTMASTER, "" },
	{ "<postmaster@x>", false, 0, "postmaster", "x", 0, "" },
	{ "<user>", false, -1, NULL, NULL, 0, NULL },
	{ "a@b", false, -1, NULL, NULL, 0, NULL },
	{ " <a@b>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@b", false, -1, NULL, NULL, 0, NULL },
	{ "<a@b >", false, -1, NULL, NULL, 0, NULL },
	{ "<@b>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@>", false, -1, NULL, NULL, 0, NULL },
	{ "<a>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@b@c>", false, -1, NULL, NULL, 0, NULL },
	{ "<.a@b>", false, -1, NULL, NULL, 0, NULL },
	{ "<a.@b>", false, -1, NULL, NULL, 0, NULL },
	{ "<a..b@c>", false, -1, NULL, NULL, 0, NULL },
	{ "<a b@c>", false, -1, NULL, NULL, 0, NULL },
	{ "<a%b@c>", false, 0, "a%b", "c", 0, "" },
	{ "<a!b@c>", false, 0, "a!b", "c", 0, "" },
	/* quoted local parts */
	{ "<\"a b\"@x>", false, 0, "a b", "x", ADDR_F_QUOTED, "" },
	{ "<\"a@b\"@x>", false, 0, "a@b", "x", ADDR_F_QUOTED, "" },
	{ "<\"a\\\"b\"@x>", false, 0, "a\"b", "x", ADDR_F_QUOTED, "" },
	{ "<\"a\\\\b\"@x>", false, 0, "a\\b", "x", ADDR_F_QUOTED, "" },
	{ "<\"a\\\\\"@x>", false, 0, "a\\", "x", ADDR_F_QUOTED, "" },
	{ "<\"a>b\"@x>", false, 0, "a>b", "x", ADDR_F_QUOTED, "" },
	{ "<\"\"@x>", false, -1, NULL, NULL, 0, NULL },
	{ "<\"a@x>", false, -1, NULL, NULL, 0, NULL },
	{ "<\"a\"b@x>", false, -1, NULL, NULL, 0, NULL },
	{ "<\"a\tb\"@x>", false, -1, NULL, NULL, 0, NULL },
	{ "<\"a\rb\"@x>", false, -1, NULL, NULL, 0, NULL },
	{ "<\"a\nb\"@x>", false, -1, NULL, NULL, 0, NULL },
	{ "<\"a\\\rb\"@x>", false, -1, NULL, NULL, 0, NULL },
	{ "<\"a\\\"@x>", false, -1, NULL, NULL, 0, NULL },
	{ "<\"a\x7f\"@x>", false, -1, NULL, NULL, 0, NULL },
	/* control characters anywhere */
	{ "<a\r@b>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@b\r>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@b\n>", false, -1, NULL, NULL, 0, NULL },
	{ "<a\x01@b>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@b\x7f>", false, -1, NULL, NULL, 0, NULL },
	/* address literals */
	{ "<a@[192.0.2.1]>", false, 0, "a", "[192.0.2.1]", ADDR_F_LITERAL,
	  "" },
	{ "<a@[IPv6:2001:DB8::1]>", false, 0, "a", "[ipv6:2001:db8::1]",
	  ADDR_F_LITERAL, "" },
	{ "<a@[ipv6:::1]>", false, 0, "a", "[ipv6:::1]", ADDR_F_LITERAL, "" },
	{ "<a@[IPv6:::ffff:192.0.2.1]>", false, 0, "a",
	  "[ipv6:::ffff:192.0.2.1]", ADDR_F_LITERAL, "" },
	{ "<a@[192.0.2.256]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[192.0.2]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[192.0.2.1.5]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[192.0.2.01]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[2001:db8::1]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[IPv6:2001:db8:::1]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[IPv6:192.0.2.1]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[IPv6:fe80::1%eth0]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[x-tag:abc]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[]>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[192.0.2.1>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[192.0.2.1]x>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@[ 192.0.2.1]>", false, -1, NULL, NULL, 0, NULL },
	/* source routes */
	{ "<@a.org:u@b.org>", false, 0, "u", "b.org", ADDR_F_ROUTE, "" },
	{ "<@a.org,@c.org:u@b.org>", false, 0, "u", "b.org", ADDR_F_ROUTE,
	  "" },
	{ "<@a.org:>", false, -1, NULL, NULL, 0, NULL },
	{ "<@a.org>", false, -1, NULL, NULL, 0, NULL },
	{ "<@a.org,u@b.org>", false, -1, NULL, NULL, 0, NULL },
	{ "<@:u@b.org>", false, -1, NULL, NULL, 0, NULL },
	{ "<@[192.0.2.1]:u@b.org>", false, -1, NULL, NULL, 0, NULL },
	{ "<@a.org:postmaster>", false, -1, NULL, NULL, 0, NULL },
	/* UTF-8 (RFC 6531) */
	{ "<j\xc3\xb6rg@b\xc3\xbc" "cher.de>", true, 0, "j\xc3\xb6rg",
	  "b\xc3\xbc" "cher.de", ADDR_F_UTF8, "" },
	{ "<j\xc3\xb6rg@x.de>", false, -1, NULL, NULL, 0, NULL },
	{ "<a@b\xc3\xbc" "cher.de>", false, -1, NULL, NULL, 0, NULL },
	{ "<\xe2\x82\xac@x>", true, 0, "\xe2\x82\xac", "x", ADDR_F_UTF8, "" },
	{ "<\xf0\x9f\x98\x80@x>", true, 0, "\xf0\x9f\x98\x80", "x",
	  ADDR_F_UTF8, "" },
	{ "<\"\xc3\xa9 x\"@x>", true, 0, "\xc3\xa9 x", "x",
	  ADDR_F_UTF8 | ADDR_F_QUOTED, "" },
	{ "<\"\\\xc3\xa9\"@x>", true, -1, NULL, NULL, 0, NULL },
	{ "<\xc0\xaf@x>", true, -1, NULL, NULL, 0, NULL },	/* overlong */
	{ "<\xe0\x80\xaf@x>", true, -1, NULL, NULL, 0, NULL },	/* overlong */
	{ "<\xf0\x80\x80\xaf@x>", true, -1, NULL, NULL, 0, NULL },
	{ "<\xed\xa0\x80@x>", true, -1, NULL, NULL, 0, NULL },	/* surrogate */
	{ "<\xf4\x90\x80\x80@x>", true, -1, NULL, NULL, 0, NULL },
	{ "<\xf5\x80\x80\x80@x>", true, -1, NULL, NULL, 0, NULL },
	{ "<\xc3@x>", true, -1, NULL, NULL, 0, NULL },	/* truncated */
	{ "<\xe2\x82@x>", true, -1, NULL, NULL, 0, NULL },
	{ "<\x80@x>", true, -1, NULL, NULL, 0, NULL },	/* lone continuation */
	{ "<\xc2\x85@x>", true, -1, NULL, NULL, 0, NULL },	/* C1 NEL */
	{ "<\xfe@x>", true, -1, NULL, NULL, 0, NULL },
	{ "<a@x\xc3>", true, -1, NULL, NULL, 0, NULL },
	{ "<a@\xc3\xa9.\xc3\xa9>", true, 0, "a", "\xc3\xa9.\xc3\xa9",
	  ADDR_F_UTF8, "" },
	{ "<a@\xc3\x89X.org>", true, 0, "a", "\xc3\x89x.org", ADDR_F_UTF8,
	  "" },
};

static void
test_parse_path(void)
{
	struct mailaddr	 a;
	const char	*end, *errstr;
	size_t		 i;
	int		 r;

	for (i = 0; i < NROWS(path_rows); i++) {
		const struct path_row	*row = &path_rows[i];

		errstr = NULL;
		r = addr_parse_path(row->input, row->utf8, &a, &end, &errstr);
		CHECK_ROW(r == row->ret, row->input);
		if (r == -1) {
			CHECK_ROW(errstr != NULL, row->input);
			CHECK_ROW(a.local[0] == '\0' && a.domain[0] == '\0',
			    row->input);
			continue;
		}
		CHECK_ROW(strcmp(a.local, row->local) == 0, row->input);
		CHECK_ROW(strcmp(a.domain, row->domain) == 0, row->input);
		CHECK_ROW(a.flags == row->flags, row->input);
		CHECK_ROW(strcmp(end, row->rest) == 0, row->input);
	}
}

static void
test_bounds(void)
{
	struct mailaddr	 a;
	const char	*end, *errstr;
	char		 buf[600];

	make_long_inputs();
	CHECK_INT(addr_parse_path(ok_local, false, &a, &end, &errstr), 0);
	CHECK_INT(strlen(a.local), 64);
	CHECK_INT(addr_parse_path(long_local, false, &a, &end, &errstr), -1);
	CHECK_INT(addr_parse_path(label64, false, &a, &end, &errstr), -1);
	CHECK_INT(strlen(long_path), 257);
	CHECK_INT(addr_parse_path(long_path, false, &a, &end, &errstr), -1);
	/* one octet less: exactly 256 */
	memcpy(buf, long_path, strlen(long_path) + 1);
	memmove(buf + 1, buf + 2, strlen(buf + 1));
	CHECK_INT(strlen(buf), 256);
	CHECK_INT(addr_parse_path(buf, false, &a, &end, &errstr), 0);
	/* "<a@" + 252 + ">" is 256: the longest domain a path can hold */
	memcpy(buf, "<a@", 3);
	make_domain(buf + 3, 252);
	strcat(buf, ">");
	CHECK_INT(addr_parse_path(buf, false, &a, &end, &errstr), 0);
	CHECK_INT(strlen(a.domain), 252);
	make_domain(buf + 3, 253);
	strcat(buf, ">");
	CHECK_INT(addr_parse_path(buf, false, &a, &end, &errstr), -1);
	/* 252 and a trailing dot: 257 on the wire, refused */
	make_domain(buf + 3, 252);
	strcat(buf, ".>");
	CHECK_INT(addr_parse_path(buf, false, &a, &end, &errstr), -1);
	/* a 256 octet domain: over both bounds */
	make_domain(buf + 3, 256);
	strcat(buf, ">");
	CHECK_INT(addr_parse_path(buf, false, &a, &end, &errstr), -1);
	CHECK_INT(addr_parse(buf + 1, false, &a, &errstr), -1);
	/* the bare form has the bound of the path, less the brackets */
	make_domain(buf + 3, 252);
	CHECK_INT(addr_parse(buf + 1, false, &a, &errstr), 0);
	make_domain(buf + 3, 253);
	CHECK_INT(addr_parse(buf + 1, false, &a, &errstr), -1);
	/* quoting counts toward the 64 octets of the local part */
	snprintf(buf, sizeof(buf), "<\"%.62s\"@x>", ok_local + 1);
	CHECK_INT(addr_parse_path(buf, false, &a, &end, &errstr), 0);
	snprintf(buf, sizeof(buf), "<\"%.61s\\a\"@x>", ok_local + 1);
	CHECK_INT(addr_parse_path(buf, false, &a, &end, &errstr), -1);
	snprintf(buf, sizeof(buf), "<\"%.60s\\a\"@x>", ok_local + 1);
	CHECK_INT(addr_parse_path(buf, false, &a, &end, &errstr), 0);
	CHECK_INT(strlen(a.local), 61);
}

struct bare_row {
	const char	*input;
	bool		 utf8;
	int		 ret;
	const char	*local;
	const char	*domain;
};

static const struct bare_row bare_rows[] = {
	{ "a@b", false, 0, "a", "b" },
	{ "A.B@EXAMPLE.org", false, 0, "A.B", "example.org" },
	{ "a@b.", false, 0, "a", "b" },
	{ "\"a b\"@x", false, 0, "a b", "x" },
	{ "a@[192.0.2.1]", false, 0, "a", "[192.0.2.1]" },
	{ "<a@b>", false, -1, NULL, NULL },
	{ "a@b ", false, -1, NULL, NULL },
	{ "a@b\n", false, -1, NULL, NULL },
	{ "postmaster", false, -1, NULL, NULL },
	{ "", false, -1, NULL, NULL },
	{ "@b", false, -1, NULL, NULL },
	{ "\xc3\xa9@x", false, -1, NULL, NULL },
	{ "\xc3\xa9@x", true, 0, "\xc3\xa9", "x" },
};

static void
test_parse_bare(void)
{
	struct mailaddr	 a;
	const char	*errstr;
	size_t		 i;
	int		 r;

	for (i = 0; i < NROWS(bare_rows); i++) {
		const struct bare_row	*row = &bare_rows[i];

		r = addr_parse(row->input, row->utf8, &a, &errstr);
		CHECK_ROW(r == row->ret, row->input);
		if (r == -1)
			continue;
		CHECK_ROW(strcmp(a.local, row->local) == 0, row->input);
		CHECK_ROW(strcmp(a.domain, row->domain) == 0, row->input);
	}
}

struct format_row {
	const char	*input;		/* a path */
	const char	*want;		/* addr_format() */
};

static const struct format_row format_rows[] = {
	{ "<a@b>", "a@b" },
	{ "<A.b@EXAMPLE.Org.>", "A.b@example.org" },
	{ "<>", "" },
	{ "<Postmaster>", "postmaster" },
	{ "<\"a b\"@x>", "\"a b\"@x" },
	{ "<\"a@b\"@x>", "\"a@b\"@x" },
	{ "<\"a\\\"b\"@x>", "\"a\\\"b\"@x" },
	{ "<\"a\\\\b\"@x>", "\"a\\\\b\"@x" },
	{ "<\"abc\"@x>", "abc@x" },		/* needless quotes go */
	{ "<\"\\a\\b\"@x>", "ab@x" },
	{ "<\".a\"@x>", "\".a\"@x" },
	{ "<\"a.\"@x>", "\"a.\"@x" },
	{ "<\"a..b\"@x>", "\"a..b\"@x" },
	{ "<@r.org:u@b>", "u@b" },
	{ "<u@[IPv6:::1]>", "u@[ipv6:::1]" },
	{ "<\xc3\xa9@\xc3\xa9.fr>", "\xc3\xa9@\xc3\xa9.fr" },
};

/* Format, then parse the result back: the same address. */
static void
test_format_roundtrip(void)
{
	struct mailaddr	 a, b;
	const char	*end, *errstr;
	char		 buf[ADDR_PATH_MAX + 1], path[ADDR_PATH_MAX + 3];
	size_t		 i;

	for (i = 0; i < NROWS(format_rows); i++) {
		const struct format_row	*row = &format_rows[i];

		CHECK_ROW(addr_parse_path(row->input, true, &a, &end,
		    &errstr) == 0, row->input);
		CHECK_ROW(addr_format(&a, buf, sizeof(buf)) ==
		    (int)strlen(row->want), row->input);
		CHECK_ROW(strcmp(buf, row->want) == 0, row->input);
		snprintf(path, sizeof(path), "<%s>", buf);
		CHECK_ROW(addr_parse_path(path, true, &b, &end, &errstr) == 0,
		    row->input);
		CHECK_ROW(strcmp(a.local, b.local) == 0, row->input);
		CHECK_ROW(strcmp(a.domain, b.domain) == 0, row->input);
		CHECK_ROW((a.flags & ADDR_F_NULL) == (b.flags & ADDR_F_NULL),
		    row->input);
	}
}

static void
test_format_bounds(void)
{
	struct mailaddr	 a;
	const char	*end, *errstr;
	char		 buf[8];

	CHECK_INT(addr_parse_path("<abc@de>", false, &a, &end, &errstr), 0);
	CHECK_INT(addr_format(&a, buf, 7), 6);
	CHECK_STR(buf, "abc@de");
	CHECK_INT(addr_format(&a, buf, 6), -1);
	CHECK_STR(buf, "");
	CHECK_INT(addr_format(&a, buf, 0), -1);
	CHECK_INT(addr_parse_path("<>", false, &a, &end, &errstr), 0);
	CHECK_INT(addr_format(&a, buf, 1), 0);
	CHECK_STR(buf, "");
}

static void
test_local_fold(void)
{
	struct mailaddr	 a;
	const char	*end, *errstr;
	char		 buf[ADDR_LOCAL_MAX + 1];

	CHECK_INT(addr_parse_path("<Jo.DOE@Example.ORG>", false, &a, &end,
	    &errstr), 0);
	CHECK_STR(a.local, "Jo.DOE");
	CHECK_STR(a.domain, "example.org");
	CHECK_INT(addr_local_fold(&a, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "jo.doe");
	CHECK_INT(addr_local_fold(&a, buf, 6), -1);
	CHECK_INT(addr_local_fold(&a, buf, 7), 0);
	CHECK_INT(addr_parse_path("<\xc3\x89X@x>", true, &a, &end, &errstr),
	    0);
	CHECK_INT(addr_local_fold(&a, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "\xc3\x89x");
}

struct domain_row {
	const char	*input;
	bool		 utf8;
	bool		 want;
};

static const struct domain_row domain_rows[] = {
	{ "example.org", false, true },
	{ "localhost", false, true },
	{ "Mail-1.Example.ORG", false, true },
	{ "192.0.2.1", false, true },
	{ "example.org.", false, false },
	{ "", false, false },
	{ ".", false, false },
	{ "a..b", false, false },
	{ "-a.b", false, false },
	{ "a-.b", false, false },
	{ "a_b.c", false, false },
	{ "[192.0.2.1]", false, false },
	{ "a b", false, false },
	{ "a\r", false, false },
	{ "b\xc3\xbc" "cher.de", false, false },
	{ "b\xc3\xbc" "cher.de", true, true },
	{ "b\xc3" "cher.de", true, false },
};

static void
test_domain_valid(void)
{
	char	 d[300];
	size_t	 i;

	for (i = 0; i < NROWS(domain_rows); i++)
		CHECK_ROW(addr_domain_valid(domain_rows[i].input,
		    domain_rows[i].utf8) == domain_rows[i].want,
		    domain_rows[i].input);
	make_domain(d, 255);
	CHECK(addr_domain_valid(d, false));
	make_domain(d, 256);
	CHECK(!addr_domain_valid(d, false));
	memset(d, 'a', 64);
	d[64] = '\0';
	CHECK(!addr_domain_valid(d, false));
	d[63] = '\0';
	CHECK(addr_domain_valid(d, false));
}

int
main(void)
{
	RUN(test_parse_path);
	RUN(test_bounds);
	RUN(test_parse_bare);
	RUN(test_format_roundtrip);
	RUN(test_format_bounds);
	RUN(test_local_fold);
	RUN(test_domain_valid);
	return test_done();
}

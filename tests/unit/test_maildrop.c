/*
 * test_maildrop.c - maildrop.c: the drop file envelope (good, bad, every
 * truncation, round trips, bounds), CRLF conversion cut at every octet,
 * address lists, and the To:/Cc:/Bcc: fields of -t.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "compat.h"
#include "maildrop.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))
#define U8(s)		((const uint8_t *)(s))

#define HEAD		MAILDROP_MAGIC "\nsender a@b.org\nuid 1000\n"

static struct maildrop_env	*env, *env2;

struct parse_row {
	const char	*input;
	int		 ret;
	const char	*sender;	/* formatted; "" for <> */
	unsigned int	 uid;
	size_t		 nrcpts;
	const char	*last_rcpt;
	const char	*body;		/* what follows the envelope */
	bool		 utf8;
	const char	*errstr;
};

static const struct parse_row parse_rows[] = {
	{ HEAD "rcpt c@d.net\n\nSubject: x\r\n\r\nhi\r\n", 0, "a@b.org", 1000,
	  1, "c@d.net", "Subject: x\r\n\r\nhi\r\n", false, NULL },
	{ MAILDROP_MAGIC "\nsender \nuid 0\nrcpt c@d\nrcpt E@F.ORG\n\n", 0,
	  "", 0, 2, "E@f.org", "", false, NULL },
	{ MAILDROP_MAGIC "\nsender x@y\nuid 4294967294\nrcpt \"a b\"@c\n\nz",
	  0, "x@y", 4294967294U, 1, "\"a b\"@c", "z", false, NULL },
	{ HEAD "rcpt j\xc3\xb6rg@d\n\n", 0, "a@b.org", 1000, 1,
	  "j\xc3\xb6rg@d", "", true, NULL },
	{ HEAD "rcpt c@d\nrcpt c@d\n\n\n", 0, "a@b.org", 1000, 2, "c@d",
	  "\n", false, NULL },
	/* errors */
	{ "", -1, NULL, 0, 0, NULL, NULL, false, "truncated envelope" },
	{ "postino-maildrop 2\nsender a@b\nuid 1\nrcpt c@d\n\n", -1, NULL, 0,
	  0, NULL, NULL, false, "not a drop file (bad first line)" },
	{ "postino-maildrop 1 \nsender a@b\nuid 1\nrcpt c@d\n\n", -1, NULL, 0,
	  0, NULL, NULL, false, "not a drop file (bad first line)" },
	{ MAILDROP_MAGIC "\r\nsender a@b\nuid 1\nrcpt c@d\n\n", -1, NULL, 0,
	  0, NULL, NULL, false, "not a drop file (bad first line)" },
	{ MAILDROP_MAGIC "\nsender\nuid 1\nrcpt c@d\n\n", -1, NULL, 0, 0,
	  NULL, NULL, false, "expected a sender line" },
	{ MAILDROP_MAGIC "\nuid 1\nsender a@b\nrcpt c@d\n\n", -1, NULL, 0, 0,
	  NULL, NULL, false, "expected a sender line" },
	{ MAILDROP_MAGIC "\nsender <a@b>\nuid 1\nrcpt c@d\n\n", -1, NULL, 0,
	  0, NULL, NULL, false, "empty local part" },
	{ MAILDROP_MAGIC "\nsender a@b\r\nuid 1\nrcpt c@d\n\n", -1, NULL, 0,
	  0, NULL, NULL, false, "trailing characters after address" },
	{ MAILDROP_MAGIC "\nsender a@b\nrcpt c@d\n\n", -1, NULL, 0, 0, NULL,
	  NULL, false, "expected a uid line" },
	{ MAILDROP_MAGIC "\nsender a@b\nuid \nrcpt c@d\n\n", -1, NULL, 0, 0,
	  NULL, NULL, false, "bad uid" },
	{ MAILDROP_MAGIC "\nsender a@b\nuid 01\nrcpt c@d\n\n", -1, NULL, 0, 0,
	  NULL, NULL, false, "bad uid" },
	{ MAILDROP_MAGIC "\nsender a@b\nuid -1\nrcpt c@d\n\n", -1, NULL, 0, 0,
	  NULL, NULL, false, "bad uid" },
	{ MAILDROP_MAGIC "\nsender a@b\nuid 1 \nrcpt c@d\n\n", -1, NULL, 0, 0,
	  NULL, NULL, false, "bad uid" },
	{ MAILDROP_MAGIC "\nsender a@b\nuid 12345678901\nrcpt c@d\n\n", -1,
	  NULL, 0, 0, NULL, NULL, false, "bad uid" },
	{ MAILDROP_MAGIC "\nsender a@b\nuid 4294967295\nrcpt c@d\n\n", -1,
	  NULL, 0, 0, NULL, NULL, false, "uid out of range" },
	{ MAILDROP_MAGIC "\nsender a@b\nuid 9999999999\nrcpt c@d\n\n", -1,
	  NULL, 0, 0, NULL, NULL, false, "uid out of range" },
	{ HEAD "\n", -1, NULL, 0, 0, NULL, NULL, false, "no recipient" },
	{ HEAD "rcpt \n\n", -1, NULL, 0, 0, NULL, NULL, false,
	  "empty address" },
	{ HEAD "rcpt c@d\nrcpt\n\n", -1, NULL, 0, 0, NULL, NULL, false,
	  "expected a rcpt line" },
	{ HEAD "rcpt c@d\nsender e@f\n\n", -1, NULL, 0, 0, NULL, NULL, false,
	  "expected a rcpt line" },
	{ HEAD "rcpt c@d\n \n", -1, NULL, 0, 0, NULL, NULL, false,
	  "expected a rcpt line" },
	{ HEAD "rcpt c@d\n\r\n", -1, NULL, 0, 0, NULL, NULL, false,
	  "expected a rcpt line" },
	{ HEAD "rcpt  c@d\n\n", -1, NULL, 0, 0, NULL, NULL, false,
	  "empty local part" },
	{ HEAD "rcpt c@d\n", -1, NULL, 0, 0, NULL, NULL, false,
	  "truncated envelope" },
	{ HEAD "rcpt c@d", -1, NULL, 0, 0, NULL, NULL, false,
	  "truncated envelope" },
	{ HEAD "rcpt <>\n\n", -1, NULL, 0, 0, NULL, NULL, false, NULL },
	{ HEAD "rcpt c@d e@f\n\n", -1, NULL, 0, 0, NULL, NULL, false,
	  "trailing characters after address" },
	{ HEAD "rcpt postmaster\n\n", -1, NULL, 0, 0, NULL, NULL, false,
	  "missing '@'" },
};

static void
fmt(const struct mailaddr *a, char *buf, size_t size)
{
	if (addr_format(a, buf, size) == -1)
		strlcpy(buf, "(unformattable)", size);
}

static void
test_parse_rows(void)
{
	const struct parse_row	*r;
	const char		*errstr;
	char			 buf[ADDR_PATH_MAX + 1];
	size_t			 i, off, len;
	int			 ret;

	for (i = 0; i < NROWS(parse_rows); i++) {
		r = &parse_rows[i];
		errstr = NULL;
		off = 12345;
		len = strlen(r->input);
		ret = maildrop_parse(U8(r->input), len, env, &off, &errstr);
		CHECK_ROW(ret == r->ret, r->input);
		if (ret == -1) {
			CHECK_ROW(errstr != NULL, r->input);
			CHECK_ROW(env->nrcpts == 0 && off == 12345, r->input);
			if (r->errstr != NULL && errstr != NULL)
				CHECK_STR(errstr, r->errstr);
			continue;
		}
		fmt(&env->sender, buf, sizeof(buf));
		CHECK_STR(buf, r->sender);
		CHECK_ROW(((env->sender.flags & ADDR_F_NULL) != 0) ==
		    (r->sender[0] == '\0'), r->input);
		CHECK_INT(env->uid, r->uid);
		CHECK_INT(env->nrcpts, r->nrcpts);
		fmt(&env->rcpts[env->nrcpts - 1], buf, sizeof(buf));
		CHECK_STR(buf, r->last_rcpt);
		CHECK_INT(len - off, strlen(r->body));
		CHECK_ROW(memcmp(r->input + off, r->body, len - off) == 0,
		    r->input);
		CHECK_ROW(env->utf8 == r->utf8, r->input);
	}
}

/* A NUL inside an address must not end it early. */
static void
test_parse_nul(void)
{
	static const char	 in[] = HEAD "rcpt c@d\0x\n\n";
	const char		*errstr;
	size_t			 off;

	CHECK_INT(maildrop_parse(U8(in), sizeof(in) - 1, env, &off, &errstr),
	    -1);
	CHECK_STR(errstr, "NUL in address");
}

/* Every prefix shorter than the envelope fails; the rest succeed. */
static void
test_parse_truncations(void)
{
	static const char	 in[] = HEAD "rcpt c@d.net\nrcpt e@f\n\nbody\r\n";
	const char		*errstr;
	size_t			 n, off, envlen = strlen(in) - 6;
	int			 ret;

	for (n = 0; n <= sizeof(in) - 1; n++) {
		errstr = NULL;
		ret = maildrop_parse(U8(in), n, env, &off, &errstr);
		if (n < envlen) {
			CHECK_INT(ret, -1);
			CHECK(errstr != NULL);
			continue;
		}
		CHECK_INT(ret, 0);
		CHECK_INT(off, envlen);
		CHECK_INT(env->nrcpts, 2);
	}
}

/* An address of len octets (65 or more): 64 'a', '@', a domain. */
static void
make_addr(char *buf, size_t len)
{
	size_t	i;

	memset(buf, 'a', 64);
	buf[64] = '@';
	for (i = 65; i < len; i++)
		buf[i] = (i - 65) % 60 == 59 && i + 1 < len ? '.' : 'd';
	buf[len] = '\0';
}

/* An envelope of nrcpts recipients, each an address of addrlen >= 65. */
static char *
big_envelope(size_t nrcpts, size_t addrlen, size_t *len_r)
{
	char	*buf, addr[400];
	size_t	 i, len, size = 1024 + nrcpts * (addrlen + 6);

	if ((buf = malloc(size)) == NULL)
		abort();
	make_addr(addr, addrlen);
	len = (size_t)snprintf(buf, size, "%s", HEAD);
	for (i = 0; i < nrcpts; i++)
		len += (size_t)snprintf(buf + len, size - len, "rcpt %s\n",
		    addr);
	len += (size_t)snprintf(buf + len, size - len, "\nbody");
	*len_r = len;
	return buf;
}

static void
test_parse_bounds(void)
{
	const char	*errstr;
	char		*buf;
	size_t		 len, off;

	buf = big_envelope(MAILDROP_RCPT_MAX, ADDR_PATH_MAX - 2, &len);
	CHECK(len - 4 <= MAILDROP_ENV_MAX);
	CHECK_INT(maildrop_parse(U8(buf), len, env, &off, &errstr), 0);
	CHECK_INT(env->nrcpts, MAILDROP_RCPT_MAX);
	CHECK_INT(off, len - 4);
	/* Only the first MAILDROP_ENV_MAX octets of a file are needed. */
	CHECK_INT(maildrop_parse(U8(buf), off, env, &off, &errstr), 0);
	free(buf);

	buf = big_envelope(MAILDROP_RCPT_MAX + 1, 70, &len);
	CHECK_INT(maildrop_parse(U8(buf), len, env, &off, &errstr), -1);
	CHECK_STR(errstr, "too many recipients");
	free(buf);

	buf = big_envelope(1, ADDR_PATH_MAX - 1, &len);
	CHECK_INT(maildrop_parse(U8(buf), len, env, &off, &errstr), -1);
	CHECK_STR(errstr, "address too long");
	free(buf);

	/* No LF within MAILDROP_ENV_MAX octets. */
	len = MAILDROP_ENV_MAX + 10;
	if ((buf = malloc(len)) == NULL)
		abort();
	memcpy(buf, HEAD "rcpt ", strlen(HEAD "rcpt "));
	memset(buf + strlen(HEAD "rcpt "), 'a', len - strlen(HEAD "rcpt "));
	CHECK_INT(maildrop_parse(U8(buf), len, env, &off, &errstr), -1);
	CHECK_STR(errstr, "envelope too long");
	buf[MAILDROP_ENV_MAX + 5] = '\n';	/* the LF just past the bound */
	CHECK_INT(maildrop_parse(U8(buf), len, env, &off, &errstr), -1);
	CHECK_STR(errstr, "envelope too long");
	free(buf);
}

static void
set_addr(struct mailaddr *a, const char *s)
{
	const char	*errstr;

	if (addr_parse(s, true, a, &errstr) == -1)
		abort();
}

static void
test_format_roundtrip(void)
{
	static const char *const rcpts[] = { "c@d.net", "\"a b\"@x.org",
	    "j\xc3\xb6rg@b\xc3\xa4r.de", "u@[192.0.2.1]", "x+y@z" };
	const char	*errstr;
	char		 buf[4096], a[ADDR_PATH_MAX + 1], b[ADDR_PATH_MAX + 1];
	size_t		 i, len, off;

	memset(env, 0, sizeof(*env));
	env->sender.flags = ADDR_F_NULL;
	env->uid = 4294967294U;
	for (i = 0; i < NROWS(rcpts); i++)
		set_addr(&env->rcpts[env->nrcpts++], rcpts[i]);
	CHECK_INT(maildrop_env_format(env, buf, sizeof(buf), &len, &errstr),
	    0);
	CHECK_INT(strlen(buf), len);
	CHECK(len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n');
	CHECK_INT(maildrop_parse(U8(buf), len, env2, &off, &errstr), 0);
	CHECK_INT(off, len);
	CHECK(env2->sender.flags & ADDR_F_NULL);
	CHECK_INT(env2->uid, env->uid);
	CHECK_INT(env2->nrcpts, env->nrcpts);
	CHECK(env2->utf8);
	for (i = 0; i < env->nrcpts; i++) {
		fmt(&env->rcpts[i], a, sizeof(a));
		fmt(&env2->rcpts[i], b, sizeof(b));
		CHECK_STR(b, a);
	}
	/* Too small, by one octet and by a lot. */
	CHECK_INT(maildrop_env_format(env, buf, len, &off, &errstr), -1);
	CHECK_STR(errstr, "envelope does not fit");
	CHECK_INT(maildrop_env_format(env, buf, 0, &off, &errstr), -1);
	CHECK_INT(maildrop_env_format(env, buf, len + 1, &off, &errstr), 0);
}

/* The largest envelope fits in MAILDROP_ENV_MAX and reads back. */
static void
test_format_max(void)
{
	const char	*errstr;
	char		*buf, addr[ADDR_PATH_MAX];
	size_t		 i, len, off;

	if ((buf = malloc(MAILDROP_ENV_MAX)) == NULL)
		abort();
	memset(env, 0, sizeof(*env));
	make_addr(addr, ADDR_PATH_MAX - 2);
	set_addr(&env->sender, addr);
	env->uid = 4294967294U;
	for (i = 0; i < MAILDROP_RCPT_MAX; i++)
		set_addr(&env->rcpts[env->nrcpts++], addr);
	CHECK_INT(maildrop_env_format(env, buf, MAILDROP_ENV_MAX, &len,
	    &errstr), 0);
	CHECK_INT(maildrop_parse(U8(buf), len, env2, &off, &errstr), 0);
	CHECK_INT(env2->nrcpts, MAILDROP_RCPT_MAX);
	CHECK_INT(off, len);
	free(buf);
}

static void
test_format_errors(void)
{
	const char	*errstr;
	char		 buf[4096];
	size_t		 len;

	memset(env, 0, sizeof(*env));
	set_addr(&env->sender, "a@b");
	CHECK_INT(maildrop_env_format(env, buf, sizeof(buf), &len, &errstr),
	    -1);
	CHECK_STR(errstr, "no recipient");
	env->nrcpts = MAILDROP_RCPT_MAX + 1;
	CHECK_INT(maildrop_env_format(env, buf, sizeof(buf), &len, &errstr),
	    -1);
	CHECK_STR(errstr, "too many recipients");
	env->nrcpts = 1;
	env->rcpts[0].flags = ADDR_F_NULL;
	CHECK_INT(maildrop_env_format(env, buf, sizeof(buf), &len, &errstr),
	    -1);
	CHECK_STR(errstr, "null recipient");
	/* A hand-made address must not add a line to the envelope. */
	set_addr(&env->rcpts[0], "c@d");
	strlcpy(env->rcpts[0].local, "c\nrcpt evil", ADDR_LOCAL_MAX + 1);
	CHECK_INT(maildrop_env_format(env, buf, sizeof(buf), &len, &errstr),
	    -1);
	CHECK_STR(errstr, "unprintable address");
	set_addr(&env->rcpts[0], "c@d");
	strlcpy(env->rcpts[0].domain, "d\nrcpt evil@x", ADDR_DOMAIN_MAX + 1);
	CHECK_INT(maildrop_env_format(env, buf, sizeof(buf), &len, &errstr),
	    -1);
	set_addr(&env->rcpts[0], "c@d");
	env->uid = (uid_t)-1;
	CHECK_INT(maildrop_env_format(env, buf, sizeof(buf), &len, &errstr),
	    -1);
	CHECK_STR(errstr, "uid out of range");
}

static void
test_name_valid(void)
{
	static const struct {
		const char	*name;
		bool		 want;
	} rows[] = {
		{ "0123456789abcdef", true },
		{ "ffffffffffffffff", true },
		{ "0123456789ABCDEF", false },
		{ "0123456789abcde", false },
		{ "0123456789abcdef0", false },
		{ ".tmp.0123456789abcdef", false },
		{ "0123456789abcdeg", false },
		{ "", false },
	};
	size_t	i;

	for (i = 0; i < NROWS(rows); i++)
		CHECK_ROW(maildrop_name_valid(rows[i].name) == rows[i].want,
		    rows[i].name);
}

struct crlf_row {
	const char	*in;
	const char	*out;	/* maildrop_crlf_end() included */
};

static const struct crlf_row crlf_rows[] = {
	{ "", "" },
	{ "a", "a\r\n" },
	{ "a\n", "a\r\n" },
	{ "a\r\n", "a\r\n" },
	{ "a\r", "a\r\n" },
	{ "\n", "\r\n" },
	{ "\r", "\r\n" },
	{ "\r\r", "\r\n\r\n" },
	{ "\n\r", "\r\n\r\n" },
	{ "\r\n\r\n", "\r\n\r\n" },
	{ "\n\n", "\r\n\r\n" },
	{ "a\rb\nc\r\nd", "a\r\nb\r\nc\r\nd\r\n" },
	{ "\r\r\n\n", "\r\n\r\n\r\n" },
	{ ".\n..\r\n.", ".\r\n..\r\n.\r\n" },
	{ "x\r\ry\r", "x\r\n\r\ny\r\n" },
	{ "H: v\n\tfold\n\nbody", "H: v\r\n\tfold\r\n\r\nbody\r\n" },
};

/* Convert in, cut at a and b (a <= b). */
static size_t
crlf_split(const char *in, size_t a, size_t b, uint8_t *out)
{
	struct maildrop_crlf	st;
	size_t			len = strlen(in), o = 0, n;

	maildrop_crlf_init(&st);
	n = maildrop_crlf(&st, U8(in), a, out);
	CHECK(n <= MAILDROP_CRLF_OUT(a));
	o += n;
	n = maildrop_crlf(&st, U8(in) + a, b - a, out + o);
	CHECK(n <= MAILDROP_CRLF_OUT(b - a));
	o += n;
	n = maildrop_crlf(&st, U8(in) + b, len - b, out + o);
	CHECK(n <= MAILDROP_CRLF_OUT(len - b));
	o += n;
	o += maildrop_crlf_end(&st, out + o);
	CHECK_INT(maildrop_crlf_end(&st, out + o), 0);
	return o;
}

static void
test_crlf(void)
{
	const struct crlf_row	*r;
	uint8_t			 out[128];
	size_t			 i, a, b, len, n;

	for (i = 0; i < NROWS(crlf_rows); i++) {
		r = &crlf_rows[i];
		len = strlen(r->in);
		for (a = 0; a <= len; a++) {
			for (b = a; b <= len; b++) {
				n = crlf_split(r->in, a, b, out);
				CHECK_ROW(n == strlen(r->out) &&
				    memcmp(out, r->out, n) == 0, r->in);
			}
		}
	}
}

/* One octet at a time over every two-octet pattern of CR, LF and 'x'. */
static void
test_crlf_bytewise(void)
{
	static const char	 alpha[] = "\r\nx";
	struct maildrop_crlf	 st;
	uint8_t			 in[4], out[32], whole[32];
	size_t			 i, j, k, o, n;

	for (i = 0; i < 81; i++) {
		for (j = 0, k = i; j < 4; j++, k /= 3)
			in[j] = (uint8_t)alpha[k % 3];
		maildrop_crlf_init(&st);
		n = maildrop_crlf(&st, in, 4, whole);
		n += maildrop_crlf_end(&st, whole + n);
		maildrop_crlf_init(&st);
		for (o = 0, j = 0; j < 4; j++)
			o += maildrop_crlf(&st, in + j, 1, out + o);
		o += maildrop_crlf_end(&st, out + o);
		CHECK(o == n && memcmp(out, whole, n) == 0);
		/* The output has CR only before LF and LF only after CR. */
		for (j = 0; j < n; j++) {
			if (whole[j] == '\r')
				CHECK(j + 1 < n && whole[j + 1] == '\n');
			if (whole[j] == '\n')
				CHECK(j > 0 && whole[j - 1] == '\r');
		}
		CHECK(n >= 2 && whole[n - 2] == '\r' && whole[n - 1] == '\n');
	}
}

/* Collects addresses as "a|b|c". */
struct collect {
	char		 buf[2048];
	int		 fail_at;	/* fail on the Nth address, 1-based */
	int		 n;
};

static int
collect_cb(void *arg, const char *addr, const char **errstr_r)
{
	struct collect	*c = arg;

	if (++c->n == c->fail_at) {
		*errstr_r = "callback failed";
		return -1;
	}
	if (c->buf[0] != '\0')
		strlcat(c->buf, "|", sizeof(c->buf));
	strlcat(c->buf, addr, sizeof(c->buf));
	return 0;
}

struct list_row {
	const char	*in;
	int		 ret;
	const char	*want;		/* addresses, or the error */
};

static const struct list_row list_rows[] = {
	{ "", 0, "" },
	{ "   ", 0, "" },
	{ "a@b", 0, "a@b" },
	{ "root", 0, "root" },
	{ "a@b, c@d", 0, "a@b|c@d" },
	{ "Name <a@b>, c@d, \"x, y\" <e@f>", 0, "a@b|c@d|e@f" },
	{ "\"Smith, John\" <j@x.org>", 0, "j@x.org" },
	{ "John Smith <j@x>", 0, "j@x" },
	{ "John Smith", 0, "John Smith" },
	{ "a@b c@d", 0, "a@b c@d" },
	{ "undisclosed-recipients:;", 0, "" },
	{ "undisclosed-recipients: ;", 0, "" },
	{ "friends: a@b, C <c@d>; e@f", 0, "a@b|c@d|e@f" },
	{ "friends: a@b", 0, "a@b" },
	{ "a@b,,c@d,", 0, "a@b|c@d" },
	{ ", , ,", 0, "" },
	{ "a@b (Comment, with (nested) parens)", 0, "a@b" },
	{ "(c) a (x) @ (y) b (z) . (w) org", 0, "a@b.org" },
	{ "a . b @ c", 0, "a.b@c" },
	{ "a@b,\r\n c@d,\n\tName\r\n <e@f>", 0, "a@b|c@d|e@f" },
	{ "\"a b\"@c", 0, "\"a b\"@c" },
	{ "\"a\\\"b\"@c", 0, "\"a\\\"b\"@c" },
	{ "\"a,b;c:d<e>\"@f", 0, "\"a,b;c:d<e>\"@f" },
	{ "u@[192.0.2.1]", 0, "u@[192.0.2.1]" },
	{ "< a@b >", 0, "a@b" },
	{ "<@r1,@r2:a@b>", 0, "a@b" },
	{ "\"Quoted (not a comment)\" <a@b>", 0, "a@b" },
	{ "=?utf-8?q?J=C3=B6rg?= <j@x>", 0, "j@x" },
	{ "J\xc3\xb6rg <j\xc3\xb6@x>", 0, "j\xc3\xb6@x" },
	{ "a@b (comment", -1, "unterminated comment" },
	{ "a@b (c \\) d", -1, "unterminated comment" },
	{ "\"a@b", -1, "unterminated quoted string" },
	{ "\"a\\", -1, "unterminated quoted string" },
	{ "a@[1.2.3.4", -1, "unterminated domain literal" },
	{ "Name <a@b", -1, "unterminated '<'" },
	{ "Name <a@b> c@d", -1, "text after '>'" },
	{ "<a@b> <c@d>", -1, "text after '>'" },
	{ "<a@b>: x", -1, "text after '>'" },
	{ "a@b>", -1, "unbalanced '<' or '>'" },
	{ "<a<b>", -1, "unbalanced '<' or '>'" },
	{ "<>", -1, "empty address <>" },
	{ "<@r1,@r2>", -1, "bad source route" },
	{ "a\001@b", -1, "control character in address" },
	{ "\"a\001\"@b", -1, "control character in address" },
	{ "\"a\\\001\"@b", -1, "control character in address" },
	{ "a\177@b", -1, "control character in address" },
	{ "a@b, c@d, e@f", -1, "callback failed" },
};

static void
test_addr_list(void)
{
	const struct list_row	*r;
	struct collect		 c;
	const char		*errstr;
	size_t			 i;
	int			 ret;

	for (i = 0; i < NROWS(list_rows); i++) {
		r = &list_rows[i];
		memset(&c, 0, sizeof(c));
		c.fail_at = strcmp(r->want, "callback failed") == 0 ? 2 : 0;
		errstr = NULL;
		ret = maildrop_addr_list(U8(r->in), strlen(r->in), collect_cb,
		    &c, &errstr);
		CHECK_ROW(ret == r->ret, r->in);
		if (ret == 0)
			CHECK_STR(c.buf, r->want);
		else
			CHECK_STR(errstr, r->want);
	}
}

static void
test_addr_list_bounds(void)
{
	struct collect	 c;
	const char	*errstr;
	char		 buf[4096];
	size_t		 n;

	/* A long display name is dropped, a long address refused. */
	memset(buf, 'n', 3000);
	strlcpy(buf + 3000, " <a@b>", sizeof(buf) - 3000);
	memset(&c, 0, sizeof(c));
	CHECK_INT(maildrop_addr_list(U8(buf), strlen(buf), collect_cb, &c,
	    &errstr), 0);
	CHECK_STR(c.buf, "a@b");
	n = ADDR_PATH_MAX * 2;
	memset(buf, 'a', n);
	buf[n] = '\0';
	memset(&c, 0, sizeof(c));
	CHECK_INT(maildrop_addr_list(U8(buf), n, collect_cb, &c, &errstr), 0);
	CHECK_INT(strlen(c.buf), n);
	buf[n] = 'a';
	CHECK_INT(maildrop_addr_list(U8(buf), n + 1, collect_cb, &c, &errstr),
	    -1);
	CHECK_STR(errstr, "address too long");
	snprintf(buf, sizeof(buf), "<%.*s>", (int)n + 1,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	CHECK_INT(maildrop_addr_list(U8(buf), strlen(buf), collect_cb, &c,
	    &errstr), -1);
	CHECK_STR(errstr, "address too long");
}

struct header_row {
	const char	*in;
	int		 ret;
	const char	*want;		/* addresses, or the error */
	const char	*stripped;	/* without Bcc: */
};

static const struct header_row header_rows[] = {
	{ "", 0, "", "" },
	{ "Subject: x\n", 0, "", "Subject: x\n" },
	{ "To: a@b\nSubject: x\n", 0, "a@b", "To: a@b\nSubject: x\n" },
	{ "to: a@b\r\nCC: c@d\r\nbcc: e@f\r\n", 0, "a@b|c@d|e@f",
	  "to: a@b\r\nCC: c@d\r\n" },
	{ "To: a@b,\n c@d\nBcc: e@f,\n\tg@h\nX: y\n", 0, "a@b|c@d|e@f|g@h",
	  "To: a@b,\n c@d\nX: y\n" },
	{ "To : a@b\nBcc\t: c@d\n", 0, "a@b|c@d", "To : a@b\n" },
	{ "Bcc:\nTo: a@b\n", 0, "a@b", "To: a@b\n" },
	{ "Bcc: x@y", 0, "x@y", "" },
	{ "Reply-To: r@s\nTo-Do: t@u\nXTo: v@w\nResent-To: x@y\n", 0, "",
	  "Reply-To: r@s\nTo-Do: t@u\nXTo: v@w\nResent-To: x@y\n" },
	{ "Subject: To: a@b\n", 0, "", "Subject: To: a@b\n" },
	{ "Subject: x\n To: a@b\n", 0, "", "Subject: x\n To: a@b\n" },
	{ " To: a@b\n", 0, "", " To: a@b\n" },
	{ "To: a@b\n\nTo: c@d\nBcc: e@f\n", 0, "a@b",
	  "To: a@b\n\nTo: c@d\nBcc: e@f\n" },
	{ "To: a@b\r\n\r\nBcc: e@f\r\n", 0, "a@b",
	  "To: a@b\r\n\r\nBcc: e@f\r\n" },
	{ "\nTo: a@b\n", 0, "", "\nTo: a@b\n" },
	{ "To: undisclosed-recipients:;\nCc: a@b\n", 0, "a@b",
	  "To: undisclosed-recipients:;\nCc: a@b\n" },
	{ "To: \"a\n b\"@c\n", 0, "\"a b\"@c", "To: \"a\n b\"@c\n" },
	{ "To: a@b\nCc: \"x\n", -1, "unterminated quoted string",
	  "To: a@b\nCc: \"x\n" },
	{ "To: (a\nSubject: b)\n", -1, "unterminated comment",
	  "To: (a\nSubject: b)\n" },
	{ "Bcc: a@b\nBcc: c@d\nBcc: e@f\n", 0, "a@b|c@d|e@f", "" },
};

static void
test_header(void)
{
	const struct header_row	*r;
	struct collect		 c;
	const char		*errstr;
	uint8_t			 buf[256];
	size_t			 i, len;
	int			 ret;

	for (i = 0; i < NROWS(header_rows); i++) {
		r = &header_rows[i];
		memset(&c, 0, sizeof(c));
		errstr = NULL;
		len = strlen(r->in);
		ret = maildrop_header_addrs(U8(r->in), len, collect_cb, &c,
		    &errstr);
		CHECK_ROW(ret == r->ret, r->in);
		if (ret == 0)
			CHECK_STR(c.buf, r->want);
		else
			CHECK_STR(errstr, r->want);
		memcpy(buf, r->in, len);
		len = maildrop_header_strip(buf, len, "Bcc");
		CHECK_ROW(len == strlen(r->stripped) &&
		    memcmp(buf, r->stripped, len) == 0, r->in);
	}
}

/* Stripping is linear: 100000 Bcc: fields do not take long. */
static void
test_header_strip_many(void)
{
	uint8_t	*buf;
	size_t	 i, len = 0, n = 100000;

	if ((buf = malloc(n * 10 + 16)) == NULL)
		abort();
	for (i = 0; i < n; i++) {
		memcpy(buf + len, i % 2 ? "Bcc: a@b\n" : "To:  a@b\n", 9);
		len += 9;
	}
	len = maildrop_header_strip(buf, len, "bcc");
	CHECK_INT(len, n / 2 * 9);
	CHECK(memcmp(buf + len - 9, "To:  a@b\n", 9) == 0);
	free(buf);
}

int
main(void)
{
	env = calloc(1, sizeof(*env));
	env2 = calloc(1, sizeof(*env2));
	if (env == NULL || env2 == NULL)
		abort();
	RUN(test_parse_rows);
	RUN(test_parse_nul);
	RUN(test_parse_truncations);
	RUN(test_parse_bounds);
	RUN(test_format_roundtrip);
	RUN(test_format_max);
	RUN(test_format_errors);
	RUN(test_name_valid);
	RUN(test_crlf);
	RUN(test_crlf_bytewise);
	RUN(test_addr_list);
	RUN(test_addr_list_bounds);
	RUN(test_header);
	RUN(test_header_strip_many);
	free(env);
	free(env2);
	return test_done();
}

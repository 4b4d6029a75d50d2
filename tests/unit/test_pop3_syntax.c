/*
 * test_pop3_syntax.c - pop3_syntax.c: command splitting, message numbers
 * and TOP arguments, the POP3 size, and the RETR / TOP stream.  Every
 * stream row is also fed split at every octet boundary and one octet at
 * a time: the output must not change.  The RETR stream is unstuffed and
 * checked against the CRLF-normalized message and its pop3_vsize.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_syntax.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))
#define OUT_MAX		8192

struct split_row {
	const char	*input;
	int		 ret;
	const char	*verb;
	const char	*args;
};

static const struct split_row split_rows[] = {
	{ "CAPA", 0, "CAPA", "" },
	{ "capa", 0, "CAPA", "" },
	{ "user foo", 0, "USER", "foo" },
	{ "TOP 1 10", 0, "TOP", "1 10" },
	{ "LIST  2", 0, "LIST", "2" },
	{ "LIST ", 0, "LIST", "" },
	{ "LIST   ", 0, "LIST", "" },
	{ "PASS a b  ", 0, "PASS", "a b  " },
	{ "PASS p\xc3\xa4ss", 0, "PASS", "p\xc3\xa4ss" },
	{ "StLs", 0, "STLS", "" },
	{ "ABCDEFGH x", 0, "ABCDEFGH", "x" },
	{ "ABCDEFGHI", -1, NULL, NULL },
	{ "ABCDEFGHI x", -1, NULL, NULL },
	{ "  LIST", -1, NULL, NULL },
	{ " LIST", -1, NULL, NULL },
	{ "", -1, NULL, NULL },
	{ " ", -1, NULL, NULL },
	{ "LIST\t1", -1, NULL, NULL },
	{ "LIST 1\r", -1, NULL, NULL },
	{ "LIST\r", -1, NULL, NULL },
	{ "US\x01" "ER", -1, NULL, NULL },
	{ "USER a\x7f", -1, NULL, NULL },
	{ "USER a\x1b[0m", -1, NULL, NULL },
	{ "USER a\tb", -1, NULL, NULL },
	{ "LIST1", -1, NULL, NULL },
	{ "LIST:1", -1, NULL, NULL },
	{ "L\xc3\x89ST", -1, NULL, NULL },
	{ "1", -1, NULL, NULL },
};

static void
test_cmd_split(void)
{
	char		 verb[POP3_VERB_MAX + 1];
	const char	*args;
	size_t		 i;
	int		 r;

	for (i = 0; i < NROWS(split_rows); i++) {
		const struct split_row	*row = &split_rows[i];

		r = pop3_cmd_split(row->input, verb, &args);
		CHECK_ROW(r == row->ret, row->input);
		if (r == -1 || row->ret == -1)
			continue;
		CHECK_ROW(strcmp(verb, row->verb) == 0, row->input);
		CHECK_ROW(strcmp(args, row->args) == 0, row->input);
		CHECK_ROW(args >= row->input &&
		    args <= row->input + strlen(row->input), row->input);
	}
}

struct msgno_row {
	const char	*input;
	uint32_t	 max;
	int		 ret;
	uint32_t	 want;
};

static const struct msgno_row msgno_rows[] = {
	{ "1", 10, 0, 1 },
	{ "10", 10, 0, 10 },
	{ "01", 10, 0, 1 },
	{ "0000000001", 10, 0, 1 },
	{ "4294967295", UINT32_MAX, 0, UINT32_MAX },
	{ "11", 10, -1, 0 },
	{ "0", 10, -1, 0 },
	{ "00", 10, -1, 0 },
	{ "1", 0, -1, 0 },
	{ "00000000001", 10, -1, 0 },
	{ "4294967296", UINT32_MAX, -1, 0 },
	{ "99999999999", UINT32_MAX, -1, 0 },
	{ "99999999999999999999", UINT32_MAX, -1, 0 },
	{ "18446744073709551617", UINT32_MAX, -1, 0 },
	{ "", 10, -1, 0 },
	{ " 1", 10, -1, 0 },
	{ "1 ", 10, -1, 0 },
	{ "+1", 10, -1, 0 },
	{ "-1", 10, -1, 0 },
	{ "1a", 10, -1, 0 },
	{ "0x1", 10, -1, 0 },
	{ "1.0", 10, -1, 0 },
	{ "1 2", 10, -1, 0 },
};

static void
test_msgno(void)
{
	uint32_t	n;
	size_t		i;
	int		r;

	for (i = 0; i < NROWS(msgno_rows); i++) {
		const struct msgno_row	*row = &msgno_rows[i];

		n = 12345;
		r = pop3_parse_msgno(row->input, row->max, &n);
		CHECK_ROW(r == row->ret, row->input);
		CHECK_ROW(n == (r == 0 ? row->want : 12345), row->input);
	}
}

struct top_row {
	const char	*input;
	int		 ret;
	uint32_t	 msg;
	uint64_t	 lines;
};

/* max is 10 for every row */
static const struct top_row top_rows[] = {
	{ "1 10", 0, 1, 10 },
	{ "1 0", 0, 1, 0 },
	{ "2   5", 0, 2, 5 },
	{ "10 1", 0, 10, 1 },
	{ "1 10 ", 0, 1, 10 },
	{ "1 10   ", 0, 1, 10 },
	{ "01 007", 0, 1, 7 },
	{ "1 999999999", 0, 1, 999999999 },
	{ "1 0999999999", 0, 1, 999999999 },
	{ "1 1000000000", -1, 0, 0 },
	{ "1 00000000001", -1, 0, 0 },
	{ "1 99999999999999999999", -1, 0, 0 },
	{ "1", -1, 0, 0 },
	{ "1 ", -1, 0, 0 },
	{ "", -1, 0, 0 },
	{ " 1 1", -1, 0, 0 },
	{ "1 10 x", -1, 0, 0 },
	{ "1 1 1", -1, 0, 0 },
	{ "1 10x", -1, 0, 0 },
	{ "1x 10", -1, 0, 0 },
	{ "1\t10", -1, 0, 0 },
	{ "1 10\t", -1, 0, 0 },
	{ "0 1", -1, 0, 0 },
	{ "11 1", -1, 0, 0 },
	{ "1 -1", -1, 0, 0 },
	{ "1 +1", -1, 0, 0 },
	{ "-1 1", -1, 0, 0 },
};

static void
test_top(void)
{
	uint64_t	lines;
	uint32_t	msg;
	size_t		i;
	int		r;

	for (i = 0; i < NROWS(top_rows); i++) {
		const struct top_row	*row = &top_rows[i];

		msg = 12345;
		lines = 12345;
		r = pop3_parse_top(row->input, 10, &msg, &lines);
		CHECK_ROW(r == row->ret, row->input);
		if (r == 0) {
			CHECK_ROW(msg == row->msg, row->input);
			CHECK_ROW(lines == row->lines, row->input);
		} else
			CHECK_ROW(msg == 12345 && lines == 12345, row->input);
	}
}

/* pop3_vsize in chunks: the first of first octets, then the rest. */
static uint64_t
vsize(const char *in, size_t len, size_t first)
{
	struct pop3_vsize	v;

	if (first > len)
		first = len;
	pop3_vsize_init(&v);
	pop3_vsize_feed(&v, (const uint8_t *)in, first);
	pop3_vsize_feed(&v, (const uint8_t *)in + first, len - first);
	return v.n;
}

struct vsize_row {
	const char	*input;
	uint64_t	 want;
};

static const struct vsize_row vsize_rows[] = {
	{ "", 0 },
	{ "a", 1 },
	{ "a\r\n", 3 },
	{ "a\n", 3 },
	{ "a\nb\n", 6 },
	{ "\n", 2 },
	{ "\n\n", 4 },
	{ "\r", 1 },
	{ "\r\r\n", 3 },
	{ "\r\n\n", 4 },
	{ "\n\r\n", 4 },
	{ "a\rb", 3 },
	{ "Subject: x\r\n\r\nbody\r\n", 20 },
	{ "Subject: x\n\nbody\n", 20 },
};

static void
test_vsize(void)
{
	struct pop3_vsize	v;
	size_t			i, k, len;

	for (i = 0; i < NROWS(vsize_rows); i++) {
		const struct vsize_row	*row = &vsize_rows[i];

		len = strlen(row->input);
		for (k = 0; k <= len; k++)
			CHECK_ROW(vsize(row->input, len, k) == row->want,
			    row->input);
	}
	/* a CR at the end of one piece and its LF at the start of the next */
	pop3_vsize_init(&v);
	pop3_vsize_feed(&v, (const uint8_t *)"a\r", 2);
	pop3_vsize_feed(&v, (const uint8_t *)"", 0);
	pop3_vsize_feed(&v, (const uint8_t *)"\nb\n", 3);
	CHECK_INT(v.n, 6);
	CHECK(!v.cr);
	/* an LF after a piece that ended in LF is bare */
	pop3_vsize_init(&v);
	pop3_vsize_feed(&v, (const uint8_t *)"a\r\n", 3);
	pop3_vsize_feed(&v, (const uint8_t *)"\n", 1);
	CHECK_INT(v.n, 5);
	/* one octet at a time */
	pop3_vsize_init(&v);
	for (k = 0; k < 8; k++)
		pop3_vsize_feed(&v, (const uint8_t *)"\r\n\n\r\r\nx\n" + k, 1);
	CHECK_INT(v.n, 10);
}

struct result {
	uint8_t		out[OUT_MAX];
	size_t		len;
	unsigned int	calls;
	bool		done;
	uint64_t	in_len;
	uint64_t	out_len;
};

static void
collect(void *arg, const uint8_t *p, size_t len)
{
	struct result	*r = arg;

	if (len == 0 || r->len + len > OUT_MAX)
		abort();
	memcpy(r->out + r->len, p, len);
	r->len += len;
	r->calls++;
}

/*
 * The stream of a message fed in chunks: the first of first octets (0:
 * none), then chunks of step octets (0: all the rest at once).  Stops
 * feeding once a TOP is done, as the session does.
 */
static void
stuff(const char *in, size_t len, bool top, uint64_t lines, size_t first,
    size_t step, struct result *r)
{
	struct pop3_stuff	s;
	size_t			off = 0, n;

	memset(r, 0, sizeof(*r));
	pop3_stuff_init(&s, top, lines);
	while (off < len && !r->done) {
		n = len - off;
		if (off == 0 && first > 0 && first < n)
			n = first;
		else if (off > 0 && step > 0 && step < n)
			n = step;
		r->done = pop3_stuff_feed(&s, (const uint8_t *)in + off, n,
		    collect, r);
		off += n;
	}
	pop3_stuff_end(&s, collect, r);
	r->in_len = s.in_len;
	r->out_len = s.out_len;
}

static bool
same_result(const struct result *a, const struct result *b)
{
	return a->len == b->len && memcmp(a->out, b->out, a->len) == 0 &&
	    a->done == b->done && a->in_len == b->in_len &&
	    a->out_len == b->out_len;
}

/* Every split into two chunks, then one octet at a time, then threes. */
static bool
split_invariant(const char *in, size_t len, bool top, uint64_t lines)
{
	static struct result	whole, part;
	size_t			k;

	stuff(in, len, top, lines, 0, 0, &whole);
	for (k = 1; k < len; k++) {
		stuff(in, len, top, lines, k, 0, &part);
		if (!same_result(&whole, &part))
			return false;
	}
	stuff(in, len, top, lines, 1, 1, &part);
	if (!same_result(&whole, &part))
		return false;
	stuff(in, len, top, lines, 3, 3, &part);
	return same_result(&whole, &part);
}

/*
 * Undo the stream: drop ".CRLF" at the end and one dot at the start of
 * each line.  Returns the length, or -1 when the stream is malformed.
 * *dots_r is the number of stuffing dots dropped.
 */
static long
unstuff(const uint8_t *p, size_t len, uint8_t *msg, size_t *dots_r)
{
	size_t	i, n = 0;

	*dots_r = 0;
	if (len < 3 || memcmp(p + len - 3, ".\r\n", 3) != 0)
		return -1;
	if (len > 3 && (len < 5 || memcmp(p + len - 5, "\r\n", 2) != 0))
		return -1;
	for (i = 0; i < len - 3; i++) {
		if (p[i] == '.' && (i == 0 || p[i - 1] == '\n')) {
			if (p[i + 1] != '.')
				return -1;	/* an unstuffed dot */
			(*dots_r)++;
			i++;
		}
		msg[n++] = p[i];
	}
	return (long)n;
}

/* The message with every bare LF made CRLF. */
static size_t
normalize(const char *in, size_t len, uint8_t *out)
{
	size_t	i, n = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[n++] = '\r';
		out[n++] = in[i];
	}
	return n;
}

/*
 * RETR: unstuffed, the stream is the normalized message (with a CRLF of
 * its own when the message has no final line end), and its size without
 * the dots and the end is the pop3_vsize.
 */
static bool
round_trip(const char *in, size_t len)
{
	static struct result	r;
	static uint8_t		msg[OUT_MAX], norm[OUT_MAX];
	size_t			dots, n, added;
	long			m;

	stuff(in, len, false, 0, 0, 0, &r);
	if (r.out_len != r.len || r.in_len != len || r.done)
		return false;
	if ((m = unstuff(r.out, r.len, msg, &dots)) == -1)
		return false;
	n = normalize(in, len, norm);
	added = 0;
	if (n > 0 && norm[n - 1] != '\n') {
		memcpy(norm + n, "\r\n", 2);
		added = 2;
		n += 2;
	}
	if ((size_t)m != n || memcmp(msg, norm, n) != 0)
		return false;
	return r.out_len - dots - added - 3 == vsize(in, len, len);
}

struct stuff_row {
	const char	*name;
	const char	*input;
	size_t		 len;		/* 0: strlen(input) */
	bool		 top;
	uint64_t	 lines;
	const char	*want;
	size_t		 want_len;	/* 0: strlen(want) */
	bool		 done;
	size_t		 in_len;	/* 0: all of the input */
};

#define MSG	"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n"
#define MSG_LF	"A: 1\nB: 2\n\nl1\nl2\n"

static const struct stuff_row stuff_rows[] = {
	/* RETR */
	{ "plain", MSG, 0, false, 0, MSG ".\r\n", 0, false, 0 },
	{ "empty message", "", 0, false, 0, ".\r\n", 0, false, 0 },
	{ "leading dot", ".x\r\n", 0, false, 0, "..x\r\n.\r\n", 0, false, 0 },
	{ "dot only", ".", 0, false, 0, "..\r\n.\r\n", 0, false, 0 },
	{ "dot line", "a\r\n.\r\nb\r\n", 0, false, 0,
	  "a\r\n..\r\nb\r\n.\r\n", 0, false, 0 },
	{ "dot line first", ".\r\nb\r\n", 0, false, 0, "..\r\nb\r\n.\r\n",
	  0, false, 0 },
	{ "dot line last", "a\r\n.\r\n", 0, false, 0, "a\r\n..\r\n.\r\n", 0,
	  false, 0 },
	{ "dots", "a\r\n...\r\n", 0, false, 0, "a\r\n....\r\n.\r\n", 0,
	  false, 0 },
	{ "dot inside line", "a.b\r\n c.\r\n", 0, false, 0,
	  "a.b\r\n c.\r\n.\r\n", 0, false, 0 },
	{ "no final newline", "a\r\nb", 0, false, 0, "a\r\nb\r\n.\r\n", 0,
	  false, 0 },
	{ "ends in dot", "a\r\n.", 0, false, 0, "a\r\n..\r\n.\r\n", 0,
	  false, 0 },
	{ "bare LF", "a\nb\n", 0, false, 0, "a\r\nb\r\n.\r\n", 0, false, 0 },
	{ "bare LF message", MSG_LF, 0, false, 0, MSG ".\r\n", 0, false, 0 },
	{ "bare LF dot", "a\n.\n", 0, false, 0, "a\r\n..\r\n.\r\n", 0,
	  false, 0 },
	{ "LF only", "\n", 0, false, 0, "\r\n.\r\n", 0, false, 0 },
	{ "CRLF LF", "\r\n\n", 0, false, 0, "\r\n\r\n.\r\n", 0, false, 0 },
	{ "bare CR", "a\rb\r\n", 0, false, 0, "a\rb\r\n.\r\n", 0, false, 0 },
	{ "CR dot", "a\r.\r\n", 0, false, 0, "a\r.\r\n.\r\n", 0, false, 0 },
	{ "ends in CR", "a\r", 0, false, 0, "a\r\r\n.\r\n", 0, false, 0 },
	{ "CR only", "\r", 0, false, 0, "\r\r\n.\r\n", 0, false, 0 },
	{ "CR CRLF", "a\r\r\n", 0, false, 0, "a\r\r\n.\r\n", 0, false, 0 },
	{ "NUL", "a\0b\n", 4, false, 0, "a\0b\r\n.\r\n", 8, false, 0 },
	/* TOP */
	{ "top 0", MSG, 0, true, 0, "A: 1\r\nB: 2\r\n\r\n.\r\n", 0, true,
	  14 },
	{ "top 1", MSG, 0, true, 1, "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n", 0,
	  true, 18 },
	{ "top 2", MSG, 0, true, 2, MSG ".\r\n", 0, true, 0 },
	{ "top many", MSG, 0, true, 100, MSG ".\r\n", 0, false, 0 },
	{ "top max", MSG, 0, true, 999999999, MSG ".\r\n", 0, false, 0 },
	{ "top no body", "A: 1\r\n\r\n", 0, true, 5, "A: 1\r\n\r\n.\r\n", 0,
	  false, 0 },
	{ "top no body 0", "A: 1\r\n\r\n", 0, true, 0, "A: 1\r\n\r\n.\r\n",
	  0, true, 0 },
	{ "top no empty line", "A: 1\r\nB: 2\r\n", 0, true, 0,
	  "A: 1\r\nB: 2\r\n.\r\n", 0, false, 0 },
	{ "top no newline", "A: 1", 0, true, 0, "A: 1\r\n.\r\n", 0, false,
	  0 },
	{ "top LF separator", MSG_LF, 0, true, 1,
	  "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n", 0, true, 14 },
	{ "top LF separator 0", MSG_LF, 0, true, 0,
	  "A: 1\r\nB: 2\r\n\r\n.\r\n", 0, true, 11 },
	{ "top LF after CRLF", "A: 1\r\n\nb\r\n", 0, true, 0,
	  "A: 1\r\n\r\n.\r\n", 0, true, 7 },
	{ "top dots in body", "A: 1\r\n\r\n.x\r\n.\r\ny\r\n", 0, true, 2,
	  "A: 1\r\n\r\n..x\r\n..\r\n.\r\n", 0, true, 15 },
	{ "top dot in header", ".A: 1\r\n\r\nb\r\n", 0, true, 0,
	  "..A: 1\r\n\r\n.\r\n", 0, true, 9 },
	{ "top body no newline", "A: 1\r\n\r\nbody", 0, true, 5,
	  "A: 1\r\n\r\nbody\r\n.\r\n", 0, false, 0 },
	{ "top CR CRLF not empty", "A: 1\r\n\r\r\nl1\r\n\r\nl2\r\n", 0, true,
	  0, "A: 1\r\n\r\r\nl1\r\n\r\n.\r\n", 0, true, 15 },
	{ "top CR x not empty", "A: 1\r\n\rx\n\nl2\n", 0, true, 0,
	  "A: 1\r\n\rx\r\n\r\n.\r\n", 0, true, 10 },
	{ "top bare CR in body", "A\r\n\r\nx\ry\r\nz\r\n", 0, true, 1,
	  "A\r\n\r\nx\ry\r\n.\r\n", 0, true, 10 },
	{ "top empty message", "", 0, true, 0, ".\r\n", 0, false, 0 },
	{ "top empty line only", "\r\n", 0, true, 0, "\r\n.\r\n", 0, true,
	  0 },
	{ "top LF only", "\n", 0, true, 0, "\r\n.\r\n", 0, true, 0 },
	{ "top empty lines", "\r\n\r\n\r\n\r\n", 0, true, 2,
	  "\r\n\r\n\r\n.\r\n", 0, true, 6 },
};

static void
test_stuff(void)
{
	struct result	r;
	size_t		i, len, want_len, in_len;

	for (i = 0; i < NROWS(stuff_rows); i++) {
		const struct stuff_row	*row = &stuff_rows[i];

		len = row->len ? row->len : strlen(row->input);
		want_len = row->want_len ? row->want_len : strlen(row->want);
		in_len = row->in_len ? row->in_len : len;
		stuff(row->input, len, row->top, row->lines, 0, 0, &r);
		CHECK_ROW(r.len == want_len &&
		    memcmp(r.out, row->want, want_len) == 0, row->name);
		CHECK_ROW(r.out_len == want_len, row->name);
		CHECK_ROW(r.done == row->done, row->name);
		CHECK_ROW(r.in_len == in_len, row->name);
		CHECK_ROW(split_invariant(row->input, len, row->top,
		    row->lines), row->name);
		CHECK_ROW(round_trip(row->input, len), row->name);
	}
}

/* Output goes out in runs, not octet by octet. */
static void
test_runs(void)
{
	static char	big[4000];
	struct result	r;
	size_t		i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = i % 50 == 48 ? '\r' : i % 50 == 49 ? '\n' : 'x';
	stuff(big, sizeof(big), false, 0, 0, 0, &r);
	CHECK_INT(r.calls, 2);			/* the message, the end */
	CHECK_INT(r.len, sizeof(big) + 3);
	big[0] = '.';
	stuff(big, sizeof(big), false, 0, 0, 0, &r);
	CHECK_INT(r.calls, 3);			/* the dot, the message, end */
	for (i = 49; i < sizeof(big); i += 50)
		big[i - 1] = 'x';		/* bare LF */
	stuff(big, sizeof(big), false, 0, 0, 0, &r);
	CHECK_INT(r.calls, 3 + 2 * sizeof(big) / 50);
	CHECK(round_trip(big, sizeof(big)));
	/* a TOP that is done stops in the middle of a piece */
	stuff(MSG "tail", strlen(MSG) + 4, true, 1, 0, 0, &r);
	CHECK(r.done);
	CHECK_INT(r.calls, 2);
}

/* Feed after a TOP is done, end twice: nothing more comes out. */
static void
test_after_done(void)
{
	struct pop3_stuff	s;
	struct result		r;

	memset(&r, 0, sizeof(r));
	pop3_stuff_init(&s, true, 0);
	CHECK(!pop3_stuff_feed(&s, (const uint8_t *)"A: 1\r\n", 6, collect,
	    &r));
	CHECK(pop3_stuff_feed(&s, (const uint8_t *)"\r\nbody\r\n", 8, collect,
	    &r));
	CHECK_INT(s.in_len, 8);
	CHECK(pop3_stuff_feed(&s, (const uint8_t *)"more\r\n", 6, collect,
	    &r));
	CHECK_INT(s.in_len, 8);
	CHECK_INT(r.len, 8);
	pop3_stuff_end(&s, collect, &r);
	pop3_stuff_end(&s, collect, &r);
	CHECK_INT(r.len, 11);
	CHECK_INT(s.out_len, 11);
	CHECK(memcmp(r.out, "A: 1\r\n\r\n.\r\n", 11) == 0);
	/* an empty feed changes nothing, and RETR is never done */
	memset(&r, 0, sizeof(r));
	pop3_stuff_init(&s, false, 0);
	CHECK(!pop3_stuff_feed(&s, (const uint8_t *)"", 0, collect, &r));
	CHECK(!pop3_stuff_feed(&s, (const uint8_t *)"\r\n\r\n", 4, collect,
	    &r));
	CHECK_INT(r.calls, 1);
}

/*
 * A plain octet-by-octet model of the stream, to hold the real one
 * against on byte soup.  Returns the output length; *in_len_r is the
 * octets used, *done_r whether a TOP stopped.
 */
static size_t
model(const char *in, size_t len, bool top, uint64_t lines, uint8_t *out,
    size_t *in_len_r, bool *done_r)
{
	size_t	i, o = 0, bol = 0;
	bool	body = false, stop = false;

	for (i = 0; i < len && !stop; i++) {
		if (in[i] == '.' && i == bol)
			out[o++] = '.';
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
		if (in[i] != '\n')
			continue;
		if (top && body)
			stop = --lines == 0;
		else if (i == bol || (i == bol + 1 && in[bol] == '\r')) {
			body = true;
			stop = top && lines == 0;
		}
		bol = i + 1;
	}
	*in_len_r = i;
	*done_r = stop;
	if (o > 0 && out[o - 1] != '\n') {
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* No "CRLF . CRLF" but at the end, no ".CRLF" at the start but alone. */
static bool
one_end(const uint8_t *p, size_t len)
{
	size_t	i;

	if (len >= 3 && memcmp(p, ".\r\n", 3) == 0 && len != 3)
		return false;
	for (i = 0; i + 5 < len; i++)
		if (memcmp(p + i, "\r\n.\r\n", 5) == 0)
			return false;
	return true;
}

/* Byte soup: model, splits, round trip, and TOP a prefix of RETR. */
static void
test_random(void)
{
	static const char	alphabet[] = "\r\n.a";
	static struct result	retr, topr;
	static uint8_t		want[OUT_MAX];
	char			buf[48];
	unsigned int		seed = 1;
	size_t			i, n, wlen, in_len, rlen, tlen;
	uint64_t		lines;
	bool			done;
	int			round, ok = 1;

	for (round = 0; round < 2000 && ok; round++) {
		n = (size_t)(rand_r(&seed) % sizeof(buf));
		for (i = 0; i < n; i++)
			buf[i] = alphabet[rand_r(&seed) % 4];
		lines = (uint64_t)(rand_r(&seed) % 4);
		stuff(buf, n, false, 0, 0, 0, &retr);
		wlen = model(buf, n, false, 0, want, &in_len, &done);
		ok &= retr.len == wlen && memcmp(retr.out, want, wlen) == 0;
		stuff(buf, n, true, lines, 0, 0, &topr);
		wlen = model(buf, n, true, lines, want, &in_len, &done);
		ok &= topr.len == wlen && memcmp(topr.out, want, wlen) == 0;
		ok &= topr.in_len == in_len && topr.done == done;
		ok &= one_end(retr.out, retr.len) &&
		    one_end(topr.out, topr.len);
		/* without the ends, the TOP stream starts the RETR one */
		rlen = retr.len - 3;
		tlen = topr.len - 3;
		ok &= tlen <= rlen && memcmp(topr.out, retr.out, tlen) == 0;
		ok &= topr.done || tlen == rlen;
		ok &= round_trip(buf, n);
		if (round % 10 == 0)
			ok &= split_invariant(buf, n, false, 0) &&
			    split_invariant(buf, n, true, lines);
	}
	CHECK(ok);
}

int
main(void)
{
	RUN(test_cmd_split);
	RUN(test_msgno);
	RUN(test_top);
	RUN(test_vsize);
	RUN(test_stuff);
	RUN(test_runs);
	RUN(test_after_done);
	RUN(test_random);
	return test_done();
}

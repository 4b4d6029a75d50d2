/*
 * test_smtp_data.c - smtp_data.c: end of data, dot-unstuffing, SMTP
 * smuggling variants, bare CR / LF, line and header bounds, Received:
 * counting, normalize mode.  Every row is also fed split at every byte
 * boundary and one octet at a time: the result must not change.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))
#define OUT_MAX		8192

struct result {
	uint8_t		out[OUT_MAX];
	size_t		out_len;
	unsigned int	calls;
	size_t		consumed;
	bool		done;
	unsigned int	flags;
	unsigned int	received;
	size_t		header_len;
	bool		hdr_done;
	uint64_t	d_out_len;
};

static void
collect(void *arg, const uint8_t *p, size_t len)
{
	struct result	*r = arg;

	if (len == 0 || r->out_len + len > OUT_MAX)
		abort();
	memcpy(r->out + r->out_len, p, len);
	r->out_len += len;
	r->calls++;
}

/*
 * Feed in chunks: the first of first octets (0: none), then chunks of
 * step octets (0: all the rest at once).  Stops feeding at the end of
 * data, as the session does.
 */
static void
feed(const char *in, size_t len, bool normalize, size_t line_max,
    size_t header_max, size_t first, size_t step, struct result *r)
{
	struct smtp_data	d;
	size_t			off = 0, n, got;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d, line_max, header_max, normalize);
	while (off < len && !r->done) {
		n = len - off;
		if (off == 0 && first > 0 && first < n)
			n = first;
		else if (off > 0 && step > 0 && step < n)
			n = step;
		got = smtp_data_feed(&d, (const uint8_t *)in + off, n,
		    &r->done, collect, r);
		if (got > n || (got < n && !r->done))
			abort();
		off += got;
	}
	r->consumed = off;
	r->flags = d.flags;
	r->received = d.hdr.received;
	r->header_len = d.hdr.header_len;
	r->hdr_done = d.hdr.done;
	r->d_out_len = d.out_len;
}

static bool
same_result(const struct result *a, const struct result *b)
{
	return a->out_len == b->out_len &&
	    memcmp(a->out, b->out, a->out_len) == 0 &&
	    a->consumed == b->consumed && a->done == b->done &&
	    a->flags == b->flags && a->received == b->received &&
	    a->header_len == b->header_len && a->hdr_done == b->hdr_done &&
	    a->d_out_len == b->d_out_len;
}

/* Every split into two chunks, then one octet at a time, then threes. */
static bool
split_invariant(const char *in, size_t len, bool normalize, size_t line_max,
    size_t header_max)
{
	static struct result	whole, part;
	size_t			k;

	feed(in, len, normalize, line_max, header_max, 0, 0, &whole);
	for (k = 1; k < len; k++) {
		feed(in, len, normalize, line_max, header_max, k, 0, &part);
		if (!same_result(&whole, &part))
			return false;
	}
	feed(in, len, normalize, line_max, header_max, 1, 1, &part);
	if (!same_result(&whole, &part))
		return false;
	feed(in, len, normalize, line_max, header_max, 3, 3, &part);
	return same_result(&whole, &part);
}

struct data_row {
	const char	*name;
	const char	*input;
	size_t		 len;		/* 0: strlen(input) */
	bool		 normalize;
	const char	*want;
	size_t		 want_len;	/* 0: strlen(want) */
	bool		 done;
	size_t		 consumed;	/* 0: all of the input */
	unsigned int	 flags;
};

static const struct data_row data_rows[] = {
	{ "plain", "Subject: x\r\n\r\nbody\r\n.\r\n", 0, false,
	  "Subject: x\r\n\r\nbody\r\n", 0, true, 0, 0 },
	{ "empty message", ".\r\n", 0, false, "", 0, true, 0, 0 },
	{ "empty line then end", "\r\n.\r\n", 0, false, "\r\n", 0, true,
	  0, 0 },
	{ "stuffed dot line", "..\r\n.\r\n", 0, false, ".\r\n", 0, true, 0,
	  0 },
	{ "stuffed text", "a\r\n..b\r\n.\r\n", 0, false, "a\r\n.b\r\n", 0,
	  true, 0, 0 },
	{ "stuffed dots", "a\r\n...\r\n.\r\n", 0, false, "a\r\n..\r\n", 0,
	  true, 0, 0 },
	{ "dot then text", "a\r\n.x\r\n.\r\n", 0, false, "a\r\nx\r\n", 0,
	  true, 0, 0 },
	{ "dot inside line", "a.b\r\nc .\r\n.\r\n", 0, false,
	  "a.b\r\nc .\r\n", 0, true, 0, 0 },
	{ "pipelined", "a\r\n.\r\nQUIT\r\n", 0, false, "a\r\n", 0, true, 6,
	  0 },
	{ "pipelined end at once", ".\r\nMAIL FROM:<a@b>\r\n", 0, false, "",
	  0, true, 3, 0 },
	{ "not ended", "a\r\nb\r\n", 0, false, "a\r\nb\r\n", 0, false, 0, 0 },
	{ "ends in dot", "a\r\n.", 0, false, "a\r\n", 0, false, 0, 0 },
	{ "ends in dot CR", "a\r\n.\r", 0, false, "a\r\n", 0, false, 0, 0 },
	{ "NUL", "a\0b\r\n.\r\n", 8, false, "a\0b\r\n", 5, true, 0,
	  DATA_F_NUL },
	/* smuggling: none of these end the data */
	{ "LF.LF", "a\n.\nMAIL FROM:<x@y>\r\n", 0, false,
	  "a\n.\nMAIL FROM:<x@y>\r\n", 0, false, 0, DATA_F_BARE_LF },
	{ "CRLF.LF", "a\r\n.\nb\r\n", 0, false, "a\r\n\nb\r\n", 0, false, 0,
	  DATA_F_BARE_LF },
	{ "LF.CRLF", "a\n.\r\nb", 0, false, "a\n.\r\nb", 0, false, 0,
	  DATA_F_BARE_LF },
	{ "CR.CRLF", "a\r.\r\nb", 0, false, "a\r.\r\nb", 0, false, 0,
	  DATA_F_BARE_CR },
	{ "CRLF.CR", "a\r\n.\rb", 0, false, "a\r\n\rb", 0, false, 0,
	  DATA_F_BARE_CR },
	{ "CRLF.CRCRLF", "a\r\n.\r\r\n", 0, false, "a\r\n\r\r\n", 0, false, 0,
	  DATA_F_BARE_CR },
	{ "CR.CR", "a\r.\rb", 0, false, "a\r.\rb", 0, false, 0,
	  DATA_F_BARE_CR },
	{ "dot LF at start", ".\nb", 0, false, "\nb", 0, false, 0,
	  DATA_F_BARE_LF },
	{ "dot CR at start", ".\rb", 0, false, "\rb", 0, false, 0,
	  DATA_F_BARE_CR },
	{ "LF.CRLF at start", "\n.\r\n", 0, false, "\n.\r\n", 0, false, 0,
	  DATA_F_BARE_LF },
	{ "CR.CRLF at start", "\r.\r\n", 0, false, "\r.\r\n", 0, false, 0,
	  DATA_F_BARE_CR },
	{ "LF.LF at start", "\n.\n", 0, false, "\n.\n", 0, false, 0,
	  DATA_F_BARE_LF },
	{ "CRLFLF.CRLF", "a\r\n\n.\r\nb", 0, false, "a\r\n\n.\r\nb", 0, false,
	  0, DATA_F_BARE_LF },
	{ "bare CR then real end", "a\r\r\n.\r\n", 0, false, "a\r\r\n", 0,
	  true, 0, DATA_F_BARE_CR },
	{ "bare LF then real end", "a\n\r\n.\r\nX", 0, false, "a\n\r\n", 0,
	  true, 7, DATA_F_BARE_LF },
	/* normalize: bare CR and LF become CRLF, the end stays strict */
	{ "norm LF", "a\nb\r\n.\r\n", 0, true, "a\r\nb\r\n", 0, true, 0,
	  DATA_F_BARE_LF },
	{ "norm CR", "a\rb\r\n.\r\n", 0, true, "a\r\nb\r\n", 0, true, 0,
	  DATA_F_BARE_CR },
	{ "norm LF.LF", "a\n.\nb\r\n", 0, true, "a\r\n.\r\nb\r\n", 0, false,
	  0, DATA_F_BARE_LF },
	{ "norm LF.CRLF", "a\n.\r\nb", 0, true, "a\r\n.\r\nb", 0, false, 0,
	  DATA_F_BARE_LF },
	{ "norm CR.CRLF", "a\r.\r\nb", 0, true, "a\r\n.\r\nb", 0, false, 0,
	  DATA_F_BARE_CR },
	{ "norm CRLF.LF", "a\r\n.\nb", 0, true, "a\r\n\r\nb", 0, false, 0,
	  DATA_F_BARE_LF },
	{ "norm CRLF.CR.CRLF", "a\r\n.\r.\r\n", 0, true, "a\r\n\r\n.\r\n", 0,
	  false, 0, DATA_F_BARE_CR },
	{ "norm CRCRLF.CRLF", "\r\r\n.\r\n", 0, true, "\r\n\r\n", 0, true, 0,
	  DATA_F_BARE_CR },
	{ "norm dot LF", ".\n", 0, true, "\r\n", 0, false, 0,
	  DATA_F_BARE_LF },
	{ "norm both", "a\n\rb\r\n.\r\n", 0, true, "a\r\n\r\nb\r\n", 0, true,
	  0, DATA_F_BARE_LF | DATA_F_BARE_CR },
	{ "norm clean", "a\r\n..\r\n.\r\n", 0, true, "a\r\n.\r\n", 0, true,
	  0, 0 },
	{ "norm ends in CR", "a\r", 0, true, "a\r", 0, false, 0, 0 },
};

static void
test_rows(void)
{
	struct result	r;
	size_t		i, len, want_len, consumed;

	for (i = 0; i < NROWS(data_rows); i++) {
		const struct data_row	*row = &data_rows[i];

		len = row->len ? row->len : strlen(row->input);
		want_len = row->want_len ? row->want_len : strlen(row->want);
		consumed = row->consumed ? row->consumed : len;
		feed(row->input, len, row->normalize, 1000, 65536, 0, 0, &r);
		CHECK_ROW(r.out_len == want_len &&
		    memcmp(r.out, row->want, want_len) == 0, row->name);
		CHECK_ROW(r.d_out_len == want_len, row->name);
		CHECK_ROW(r.done == row->done, row->name);
		CHECK_ROW(r.consumed == consumed, row->name);
		CHECK_ROW(r.flags == row->flags, row->name);
		CHECK_ROW(row->normalize || r.out_len <= r.consumed, row->name);
		CHECK_ROW(split_invariant(row->input, len, row->normalize, 1000,
		    65536), row->name);
	}
}

/* Output is passed on in runs, not octet by octet. */
static void
test_runs(void)
{
	static char	big[4000];
	struct result	r;
	size_t		i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = i % 50 == 48 ? '\r' : i % 50 == 49 ? '\n' : 'x';
	memcpy(big + sizeof(big) - 5, "\r\n.\r\n", 5);
	feed(big, sizeof(big), false, 1000, 65536, 0, 0, &r);
	CHECK(r.done);
	CHECK_INT(r.calls, 1);
	CHECK_INT(r.out_len, sizeof(big) - 3);
	feed("a\r\n..b\r\n.\r\n", 11, false, 1000, 65536, 0, 0, &r);
	CHECK_INT(r.calls, 2);
}

static void
test_after_done(void)
{
	struct smtp_data	 d;
	struct result		 r;
	bool			 done;

	memset(&r, 0, sizeof(r));
	smtp_data_init(&d, 1000, 65536, false);
	CHECK_INT(smtp_data_feed(&d, (const uint8_t *)"x\r\n.\r\nRSET\r\n",
	    12, &done, collect, &r), 6);
	CHECK(done);
	CHECK_INT(smtp_data_feed(&d, (const uint8_t *)"RSET\r\n", 6, &done,
	    collect, &r), 0);
	CHECK(done);
	CHECK_INT(r.out_len, 3);
	CHECK_INT(smtp_data_feed(&d, (const uint8_t *)"", 0, &done, NULL,
	    NULL), 0);
	/* a new message after init; config is kept */
	smtp_data_init(&d, 10, 20, true);
	CHECK_INT(d.line_max, 10);
	CHECK_INT(d.header_max, 20);
	CHECK(d.normalize);
	CHECK_INT(smtp_data_feed(&d, (const uint8_t *)"a\n.\r\n", 5, &done,
	    NULL, NULL), 5);
	CHECK(!done);
	CHECK_INT(d.out_len, 6);
	CHECK_INT(d.flags, DATA_F_BARE_LF);
}

/* A line of n octets before its CRLF, then the end of data. */
static size_t
make_line(char *buf, size_t n)
{
	memset(buf, 'x', n);
	memcpy(buf + n, "\r\n.\r\n", 5);
	return n + 5;
}

static void
test_long_line(void)
{
	static char	buf[3000];
	struct result	r;
	size_t		len;

	len = make_line(buf, 998);		/* 1000 with CRLF */
	feed(buf, len, false, 1000, 65536, 0, 0, &r);
	CHECK(r.done);
	CHECK_INT(r.flags, 0);
	len = make_line(buf, 999);
	feed(buf, len, false, 1000, 65536, 0, 0, &r);
	CHECK(r.done);
	CHECK_INT(r.flags, DATA_F_LONG_LINE);
	CHECK(split_invariant(buf, len, false, 1000, 65536));
	/* a stuffing dot counts: it is on the wire */
	buf[0] = '.';
	len = make_line(buf, 998);
	buf[0] = '.';
	feed(buf, len, false, 1000, 65536, 0, 0, &r);
	CHECK_INT(r.flags, 0);
	CHECK_INT(r.out_len, 997 + 2);
	/* a long line that never ends is flagged as it grows */
	memset(buf, 'y', 2000);
	feed(buf, 2000, false, 1000, 65536, 0, 0, &r);
	CHECK(!r.done);
	CHECK_INT(r.flags, DATA_F_LONG_LINE);
	/* bare LF ends a line for the count too */
	memset(buf, 'z', 2000);
	buf[900] = '\n';
	memcpy(buf + 1800, "\r\n.\r\n", 5);
	feed(buf, 1805, false, 1000, 65536, 0, 0, &r);
	CHECK_INT(r.flags, DATA_F_BARE_LF);
	/* line_max 0: no bound */
	feed(buf, 2000, false, 0, 65536, 0, 0, &r);
	CHECK_INT(r.flags & DATA_F_LONG_LINE, 0);
}

struct recv_row {
	const char	*name;
	const char	*input;
	unsigned int	 received;
	bool		 hdr_done;
	size_t		 header_len;	/* 0: not checked */
};

static const struct recv_row recv_rows[] = {
	{ "none", "Subject: x\r\n\r\n.\r\n", 0, true, 14 },
	{ "three", "Received: a\r\nreceived : b\r\nX-Received: c\r\n"
	  "RECEIVED:d\r\n Received: cont\r\nReceivedX: no\r\n"
	  "Received\r\nReceive: no\r\n\r\nReceived: body\r\n.\r\n", 3, true,
	  0 },
	{ "tab before colon", "Received\t: a\r\n\r\n.\r\n", 1, true, 16 },
	{ "continuation", "Received: a\r\n\tReceived: b\r\n\r\n.\r\n", 1,
	  true, 0 },
	{ "in body", "Subject: x\r\n\r\nReceived: a\r\n.\r\n", 0, true, 14 },
	{ "stuffed", ".Received: a\r\n\r\n.\r\n", 1, true, 15 },
	{ "bare LF header", "Received: a\nReceived: b\n\nReceived: c\r\n.\r\n",
	  2, true, 0 },
	{ "no empty line", "Received: a\r\nReceived: b\r\n.\r\n", 2, false,
	  26 },
	{ "empty message", ".\r\n", 0, false, 0 },
	{ "body only", "\r\nReceived: a\r\n.\r\n", 0, true, 2 },
	{ "CR in name", "Rece\rived: a\r\n\r\n.\r\n", 0, true, 0 },
};

static void
test_received(void)
{
	struct result	r;
	size_t		i, len;

	for (i = 0; i < NROWS(recv_rows); i++) {
		const struct recv_row	*row = &recv_rows[i];

		len = strlen(row->input);
		feed(row->input, len, false, 1000, 65536, 0, 0, &r);
		CHECK_ROW(r.received == row->received, row->name);
		CHECK_ROW(r.hdr_done == row->hdr_done, row->name);
		CHECK_ROW(row->header_len == 0 ||
		    r.header_len == row->header_len, row->name);
		CHECK_ROW(split_invariant(row->input, len, false, 1000, 65536),
		    row->name);
		CHECK_ROW(split_invariant(row->input, len, true, 1000, 65536),
		    row->name);
	}
}

static void
test_long_header(void)
{
	const char	*msg = "Subject: 0123456789\r\n\r\nbody\r\n.\r\n";
	struct result	r;

	feed(msg, strlen(msg), false, 1000, 23, 0, 0, &r);
	CHECK_INT(r.flags, 0);
	CHECK_INT(r.header_len, 23);
	feed(msg, strlen(msg), false, 1000, 22, 0, 0, &r);
	CHECK_INT(r.flags, DATA_F_LONG_HEADER);
	CHECK(r.done);
	CHECK(split_invariant(msg, strlen(msg), false, 1000, 22));
	feed(msg, strlen(msg), false, 1000, 0, 0, 0, &r);
	CHECK_INT(r.flags, 0);
}

/* header_scan on raw octets (BDAT), fed whole and one octet at a time. */
static void
test_header_scan(void)
{
	const char		*msg = "Received: a\r\nSubject: b\r\n"
	    "RECEIVED: c\r\n\r\nReceived: d\r\n";
	struct header_scan	 a, b;
	size_t			 i, len = strlen(msg);

	header_scan_init(&a);
	header_scan_feed(&a, 65536, (const uint8_t *)msg, len);
	CHECK_INT(a.received, 2);
	CHECK(a.done);
	CHECK(!a.too_long);
	CHECK_INT(a.header_len, 40);
	header_scan_init(&b);
	for (i = 0; i < len; i++)
		header_scan_feed(&b, 65536, (const uint8_t *)msg + i, 1);
	CHECK_INT(b.received, a.received);
	CHECK_INT(b.header_len, a.header_len);
	CHECK(b.done);
	header_scan_init(&b);
	header_scan_feed(&b, 39, (const uint8_t *)msg, len);
	CHECK(b.too_long);
	CHECK_INT(b.received, 2);
}

/* The header section also ends at a line that is not a field (as in
 * Postfix): a body without a header is not one long header. */
static void
test_header_end_without_blank(void)
{
	static const struct {
		const char	*msg;
		unsigned int	 received;
		bool		 done;
	} rows[] = {
		{ "hello world\r\nReceived: x\r\n", 0, true },
		{ "Received: a\r\n\tfolded\r\nbody text\r\nReceived: b\r\n",
		  1, true },
		{ "Received: a\r\nno colon here\r\n", 1, true },
		{ "X-Long-Name-Without-Colon\r\nReceived: b\r\n", 0, true },
		{ "Received-SPF: pass\r\nReceived : a\r\n", 1, false },
		{ ": starts with a colon\r\n", 0, true },
	};
	struct header_scan	h;
	size_t			i, j, len;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		len = strlen(rows[i].msg);
		header_scan_init(&h);
		header_scan_feed(&h, 65536, (const uint8_t *)rows[i].msg, len);
		CHECK_ROW(h.received == rows[i].received, rows[i].msg);
		CHECK_ROW(h.done == rows[i].done, rows[i].msg);
		header_scan_init(&h);
		for (j = 0; j < len; j++)
			header_scan_feed(&h, 65536,
			    (const uint8_t *)rows[i].msg + j, 1);
		CHECK_ROW(h.received == rows[i].received, rows[i].msg);
	}
}

/* Byte soup: every split gives the same result, in both modes. */
static void
test_split_random(void)
{
	static const char	alphabet[] = "\r\n.aR:";
	char			buf[64];
	unsigned int		seed = 1;
	size_t			i, n;
	int			round, ok = 1;

	for (round = 0; round < 400 && ok; round++) {
		n = 1 + (size_t)(rand_r(&seed) % (sizeof(buf) - 1));
		for (i = 0; i < n; i++)
			buf[i] = alphabet[rand_r(&seed) % 6];
		ok = split_invariant(buf, n, round & 1, 8, 16);
	}
	CHECK(ok);
}

int
main(void)
{
	RUN(test_rows);
	RUN(test_runs);
	RUN(test_after_done);
	RUN(test_long_line);
	RUN(test_received);
	RUN(test_long_header);
	RUN(test_header_scan);
	RUN(test_header_end_without_blank);
	RUN(test_split_random);
	return test_done();
}

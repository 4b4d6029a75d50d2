/*
 * fuzz_smtp_data.c - libFuzzer target for smtp_data.c.  The first two
 * octets choose normalize, line_max, header_max and a seed for chunk
 * sizes; the rest is the DATA stream.  It is fed whole, then in random
 * chunks: both must agree, and the invariants of the parser must hold.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	uint8_t		*buf;
	size_t		 len, max;
};

struct run {
	size_t		 consumed;
	bool		 done;
	unsigned int	 flags, received;
	size_t		 header_len;
	uint64_t	 out_len;
};

static void
collect(void *arg, const uint8_t *p, size_t len)
{
	struct sink	*s = arg;

	if (len == 0 || len > s->max - s->len)
		abort();
	memcpy(s->buf + s->len, p, len);
	s->len += len;
}

/* Feed in chunks: chunk size from the seed (0: all at once). */
static void
feed(const uint8_t *in, size_t len, uint8_t cfg, unsigned int seed,
    struct sink *s, struct run *r)
{
	struct smtp_data	d;
	size_t			off = 0, n, got;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d, 2 + (cfg >> 1) % 40, (cfg >> 5) * 16, cfg & 1);
	while (off < len && !r->done) {
		n = len - off;
		if (seed != 0)
			n = 1 + (size_t)rand_r(&seed) % (n < 17 ? n : 17);
		got = smtp_data_feed(&d, in + off, n, &r->done, collect, s);
		if (got > n || (got < n && !r->done))
			abort();
		off += got;
	}
	r->consumed = off;
	r->flags = d.flags;
	r->received = d.hdr.received;
	r->header_len = d.hdr.header_len;
	r->out_len = d.out_len;
	if (d.out_len != s->len || d.hdr.header_len > s->len)
		abort();
}

/* The end of data is CRLF "." CRLF, or "." CRLF at the very start. */
static void
check_end(const uint8_t *in, const struct run *r)
{
	size_t	c = r->consumed;

	if (!r->done)
		return;
	if (c < 3 || memcmp(in + c - 3, ".\r\n", 3) != 0)
		abort();
	if (c > 3 && (c < 5 || memcmp(in + c - 5, "\r\n", 2) != 0))
		abort();
}

/* With normalize, no bare CR or LF is ever passed on. */
static void
check_normal(const struct sink *s, const struct run *r)
{
	size_t	i;

	for (i = 0; i < s->len; i++) {
		if (s->buf[i] == '\n' && (i == 0 || s->buf[i - 1] != '\r'))
			abort();
		if (s->buf[i] == '\r' && (i + 1 < s->len ?
		    s->buf[i + 1] != '\n' : r->done))
			abort();
	}
	if ((r->flags & (DATA_F_BARE_CR | DATA_F_BARE_LF)) == 0 &&
	    s->len > r->consumed)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sink	 a, b;
	struct run	 ra, rb;
	const uint8_t	*in;
	size_t		 len;
	uint8_t		 cfg;

	if (size < 2)
		return 0;
	cfg = data[0];
	in = data + 2;
	len = size - 2;
	a.max = b.max = 2 * len + 1;
	a.buf = malloc(a.max);
	b.buf = malloc(b.max);
	if (a.buf == NULL || b.buf == NULL)
		abort();
	a.len = b.len = 0;
	feed(in, len, cfg, 0, &a, &ra);
	feed(in, len, cfg, data[1] + 1, &b, &rb);
	if (ra.consumed > len || memcmp(&ra, &rb, sizeof(ra)) != 0 ||
	    a.len != b.len || memcmp(a.buf, b.buf, a.len) != 0)
		abort();
	if (!(cfg & 1) && a.len > ra.consumed)
		abort();
	if (ra.done && (ra.flags & DATA_F_LONG_HEADER) == 0 &&
	    ra.header_len > 0 && (cfg >> 5) != 0 &&
	    ra.header_len > (size_t)(cfg >> 5) * 16)
		abort();
	check_end(in, &ra);
	if (cfg & 1)
		check_normal(&a, &ra);
	free(a.buf);
	free(b.buf);
	return 0;
}

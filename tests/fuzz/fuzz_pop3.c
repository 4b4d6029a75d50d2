/*
 * fuzz_pop3.c - libFuzzer target for pop3_syntax.c.  The first octet
 * chooses TOP's line count, the second seeds the chunk sizes; the rest
 * is both a command line (through pop3_cmd_split(), pop3_parse_msgno()
 * and pop3_parse_top()) and a message (through pop3_vsize and the RETR
 * and TOP streams, fed whole and in chunks).  Both feeds must agree,
 * and the stream must hold its invariants: one end, at the end; RETR
 * without stuffing and the end is the pop3_vsize; unstuffed, it is the
 * message with CRLF line ends; TOP is a prefix of RETR.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_syntax.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	uint8_t		*buf;
	size_t		 len, max;
	size_t		 calls;
};

struct run {
	struct sink	 out;
	uint64_t	 in_len, out_len;
	bool		 done;
	size_t		 chunks;
};

static void
collect(void *arg, const uint8_t *p, size_t len)
{
	struct sink	*s = arg;

	if (len == 0 || len > s->max - s->len)
		abort();
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	s->calls++;
}

static void
check_verb(const char *verb)
{
	size_t	i, len = strnlen(verb, POP3_VERB_MAX + 1);

	if (len == 0 || len > POP3_VERB_MAX)
		abort();
	for (i = 0; i < len; i++)
		if (verb[i] < 'A' || verb[i] > 'Z')
			abort();
}

/* A number the parsers took: digits only, at most 10 of them. */
static uint64_t
check_number(const char *s, size_t len)
{
	uint64_t	v = 0;
	size_t		i;

	if (len == 0 || len > 10)
		abort();
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			abort();
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v;
}

/* What the number parsers accept, read again by hand. */
static void
parse_args(const char *args, uint32_t max)
{
	const char	*sp;
	uint64_t	 lines;
	uint32_t	 n, msg;
	size_t		 k;

	if (pop3_parse_msgno(args, max, &n) == 0 &&
	    (n == 0 || n > max || check_number(args, strlen(args)) != n))
		abort();
	if (pop3_parse_top(args, max, &msg, &lines) != 0)
		return;
	if ((sp = strchr(args, ' ')) == NULL || msg == 0 || msg > max ||
	    lines > 999999999 ||
	    check_number(args, (size_t)(sp - args)) != msg)
		abort();
	sp += strspn(sp, " ");
	k = strcspn(sp, " ");
	if (check_number(sp, k) != lines || sp[k + strspn(sp + k, " ")] != '\0')
		abort();
}

static void
fuzz_line(const uint8_t *in, size_t len)
{
	char		*line, verb[POP3_VERB_MAX + 1];
	const char	*args;
	size_t		 i;

	if ((line = malloc(len + 1)) == NULL)
		return;
	memcpy(line, in, len);
	line[len] = '\0';
	if (pop3_cmd_split(line, verb, &args) == 0) {
		check_verb(verb);
		if (args < line || args > line + strlen(line) || *args == ' ')
			abort();
		for (i = 0; line[i] != '\0'; i++)
			if ((uint8_t)line[i] < 0x20 || (uint8_t)line[i] == 0x7f)
				abort();
		parse_args(args, UINT32_MAX);
		parse_args(args, 100);
	}
	parse_args(line, UINT32_MAX);
	parse_args(line, 7);
	free(line);
}

/* Feed in chunks: chunk sizes from the seed (0: all at once). */
static void
feed(const uint8_t *in, size_t len, bool top, uint64_t lines,
    unsigned int seed, struct run *r, struct pop3_vsize *v)
{
	struct pop3_stuff	s;
	uint64_t		in_len;
	size_t			off = 0, n, out_len;

	r->out.len = r->out.calls = 0;
	r->done = false;
	r->chunks = 0;
	pop3_vsize_init(v);
	pop3_stuff_init(&s, top, lines);
	while (off < len && !r->done) {
		n = len - off;
		if (seed != 0)
			n = 1 + (size_t)rand_r(&seed) % (n < 17 ? n : 17);
		pop3_vsize_feed(v, in + off, n);
		r->done = pop3_stuff_feed(&s, in + off, n, collect, &r->out);
		r->chunks++;
		off += n;
	}
	/* a done TOP ignores what comes after */
	in_len = s.in_len;
	out_len = r->out.len;
	if (r->done && (!pop3_stuff_feed(&s, in, len, collect, &r->out) ||
	    s.in_len != in_len || r->out.len != out_len))
		abort();
	pop3_stuff_end(&s, collect, &r->out);
	r->in_len = s.in_len;
	r->out_len = s.out_len;
	if (s.out_len != r->out.len || s.in_len > len || (!top && r->done))
		abort();
}

/*
 * One end, at the end: ".CRLF" alone or after a CRLF, and no CRLF "."
 * CRLF, nor a first line ".", before it.
 */
static void
check_end(const struct sink *s)
{
	size_t	i;

	if (s->len < 3 || memcmp(s->buf + s->len - 3, ".\r\n", 3) != 0)
		abort();
	if (s->len > 3 && (s->len < 5 ||
	    memcmp(s->buf + s->len - 5, "\r\n", 2) != 0))
		abort();
	if (s->len > 3 && memcmp(s->buf, ".\r\n", 3) == 0)
		abort();
	for (i = 0; i + 5 < s->len; i++)
		if (memcmp(s->buf + i, "\r\n.\r\n", 5) == 0)
			abort();
}

/*
 * RETR: unstuffed, the stream is the message with each bare LF made
 * CRLF (and a CRLF of its own if it has no final line end); without the
 * dots, that CRLF and the end, its size is the pop3_vsize.  check_end()
 * ran first: the stream ends with ".CRLF" after a CRLF.
 */
static void
check_retr(const uint8_t *in, size_t len, const struct run *r,
    const struct pop3_vsize *v)
{
	const uint8_t	*p = r->out.buf;
	uint8_t		*msg, *norm;
	size_t		 i, m = 0, n = 0, dots = 0, added = 0;

	if ((msg = malloc(r->out.len)) == NULL ||
	    (norm = malloc(2 * len + 2)) == NULL)
		abort();
	for (i = 0; i < r->out.len - 3; i++) {
		if (p[i] == '.' && (i == 0 || p[i - 1] == '\n')) {
			if (p[++i] != '.')
				abort();	/* a dot left unstuffed */
			dots++;
		}
		msg[m++] = p[i];
	}
	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			norm[n++] = '\r';
		norm[n++] = in[i];
	}
	if (n > 0 && norm[n - 1] != '\n') {
		memcpy(norm + n, "\r\n", 2);
		n += added = 2;
	}
	if (m != n || memcmp(msg, norm, n) != 0 ||
	    r->out_len - dots - added - 3 != v->n)
		abort();
	free(msg);
	free(norm);
}

/* TOP without its end starts RETR without its end; it is RETR if not done. */
static void
check_top(size_t len, const struct run *retr, const struct run *top)
{
	size_t	rlen = retr->out.len - 3, tlen = top->out.len - 3;

	if (tlen > rlen || memcmp(top->out.buf, retr->out.buf, tlen) != 0)
		abort();
	if (!top->done && (tlen != rlen || top->in_len != len))
		abort();
	if (top->done && (tlen < 2 || top->out.buf[tlen - 1] != '\n'))
		abort();
}

/* Runs, not octets: at most two calls an inserted octet, a chunk, end. */
static void
check_calls(const uint8_t *in, size_t len, const struct run *r)
{
	size_t	i, lf = 0;

	for (i = 0; i < len; i++)
		lf += in[i] == '\n';
	if (r->out.calls > 4 * lf + 2 + r->chunks + 2)
		abort();
}

static bool
same(const struct run *a, const struct run *b)
{
	return a->out.len == b->out.len &&
	    memcmp(a->out.buf, b->out.buf, a->out.len) == 0 &&
	    a->in_len == b->in_len && a->out_len == b->out_len &&
	    a->done == b->done;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run		 r[4];
	struct pop3_vsize	 v[4];
	const uint8_t		*in;
	uint64_t		 lines;
	size_t			 i, len;

	if (size < 2)
		return 0;
	lines = data[0] < 250 ? data[0] % 5 : 999999999;
	in = data + 2;
	len = size - 2;
	fuzz_line(in, len);
	for (i = 0; i < 4; i++) {
		r[i].out.max = 2 * len + 5;
		if ((r[i].out.buf = malloc(r[i].out.max)) == NULL)
			abort();
	}
	feed(in, len, false, 0, 0, &r[0], &v[0]);
	feed(in, len, false, 0, data[1] + 1U, &r[1], &v[1]);
	feed(in, len, true, lines, 0, &r[2], &v[2]);
	feed(in, len, true, lines, data[1] + 1U, &r[3], &v[3]);
	if (!same(&r[0], &r[1]) || !same(&r[2], &r[3]) || v[0].n != v[1].n)
		abort();
	for (i = 0; i < 4; i++) {
		check_end(&r[i].out);
		check_calls(in, len, &r[i]);
	}
	if (r[0].in_len != len)
		abort();
	check_retr(in, len, &r[0], &v[0]);
	check_top(len, &r[0], &r[2]);
	for (i = 0; i < 4; i++)
		free(r[i].out.buf);
	return 0;
}

/*
 * pop3_syntax.c - POP3 command lines (RFC 1939 3, RFC 2449 4), message
 * numbers and TOP's arguments, the POP3 size of a message and the
 * RETR / TOP stream (RFC 1939 3: CRLF, dot-stuffing, ".CRLF").
 *
 * The parsers run in the net role on lines from the client, already
 * bounded by the session and stripped of CRLF, and trusted no
 * further.  The stream transformer runs on the octets of a Maildir file
 * the store role opened: mail from anyone, so any octet may come, and
 * nothing in it may end the stream early.  It holds no buffer: a chunk
 * is passed on as runs of its own octets, and the few octets it adds (a
 * CR before a bare LF, a stuffing dot, the end) come from constants.
 */
#include <stdlib.h>
#include <string.h>

#include "pop3_syntax.h"

/*
 * Decimal arguments: at most 10 digits, leading zeros included, so
 * that any value fits in 64 bits before it is bounded, and "0000000001"
 * is still 1.  UINT32_MAX has 10 digits.
 */
#define DEC_DIGITS_MAX	10
#define TOP_LINES_MAX	999999999ULL

/* pop3_stuff.state */
enum {
	S_BOL,		/* at a line start: start of message or after an LF */
	S_BOL_CR,	/* a line that is a single CR so far */
	S_TEXT,		/* inside a line; the last octet was not a CR */
	S_CR,		/* inside a line; the last octet was a CR */
	S_END		/* pop3_stuff_end() was called */
};

static const uint8_t	crlf[] = "\r\n";
static const uint8_t	dot[] = ".";
static const uint8_t	dot_end[] = ".\r\n";

/* One call of pop3_stuff_feed(): the chunk and its pending output run. */
struct feed {
	struct pop3_stuff	*s;
	const uint8_t		*in;
	size_t			 run;	/* start of the octets not yet out */
	pop3_out_cb		 out;
	void			*arg;
};

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 1939 3 allows printable ASCII; octets over 0x7f pass (UTF-8). */
static bool
is_ctl(char c)
{
	return (unsigned char)c < 0x20 || (unsigned char)c == 0x7f;
}

int
pop3_cmd_split(const char *line, char verb[POP3_VERB_MAX + 1],
    const char **args_r)
{
	size_t	i, n;

	for (i = 0; line[i] != '\0'; i++)
		if (is_ctl(line[i]))
			return -1;
	for (n = 0; is_alpha(line[n]); n++)
		if (n == POP3_VERB_MAX)
			return -1;
	if (n == 0 || (line[n] != ' ' && line[n] != '\0'))
		return -1;
	for (i = 0; i < n; i++)
		verb[i] = line[i] & ~0x20;
	verb[n] = '\0';
	while (line[n] == ' ')
		n++;
	*args_r = line + n;
	return 0;
}

/*
 * 1 to DEC_DIGITS_MAX digits at s.  Returns the number of digits read,
 * or 0 when there are none or too many.
 */
static size_t
parse_dec(const char *s, uint64_t *v_r)
{
	uint64_t	v = 0;
	size_t		n;

	for (n = 0; is_digit(s[n]); n++) {
		if (n == DEC_DIGITS_MAX)
			return 0;
		v = v * 10 + (uint64_t)(s[n] - '0');	/* UNSAFE: < 10^10 */
	}
	*v_r = v;
	return n;
}

/* A message number at s, 1..max; returns its length in digits, or 0. */
static size_t
parse_msgno(const char *s, uint32_t max, uint32_t *n_r)
{
	uint64_t	v;
	size_t		n;

	if ((n = parse_dec(s, &v)) == 0 || v == 0 || v > max)
		return 0;
	*n_r = (uint32_t)v;
	return n;
}

int
pop3_parse_msgno(const char *arg, uint32_t max, uint32_t *n_r)
{
	uint32_t	v;
	size_t		n;

	if ((n = parse_msgno(arg, max, &v)) == 0 || arg[n] != '\0')
		return -1;
	*n_r = v;
	return 0;
}

/* Trailing spaces are let through: some clients pad their commands. */
int
pop3_parse_top(const char *args, uint32_t max, uint32_t *msg_r,
    uint64_t *lines_r)
{
	const char	*s = args;
	uint64_t	 lines;
	uint32_t	 msg;
	size_t		 n;

	if ((n = parse_msgno(s, max, &msg)) == 0 || s[n] != ' ')
		return -1;
	for (s += n; *s == ' '; s++)
		;
	if ((n = parse_dec(s, &lines)) == 0 || lines > TOP_LINES_MAX)
		return -1;
	for (s += n; *s == ' '; s++)
		;
	if (*s != '\0')
		return -1;
	*msg_r = msg;
	*lines_r = lines;
	return 0;
}

void
pop3_vsize_init(struct pop3_vsize *v)
{
	memset(v, 0, sizeof(*v));
}

void
pop3_vsize_feed(struct pop3_vsize *v, const uint8_t *p, size_t len)
{
	const uint8_t	*lf, *end = p + len;
	bool		 cr = v->cr;

	if (len == 0)
		return;
	v->n += len;
	for (; (lf = memchr(p, '\n', (size_t)(end - p))) != NULL; p = lf + 1) {
		if (!(lf == p ? cr : lf[-1] == '\r'))
			v->n++;
		cr = false;
	}
	v->cr = end[-1] == '\r';
}

void
pop3_stuff_init(struct pop3_stuff *s, bool top, uint64_t body_lines)
{
	memset(s, 0, sizeof(*s));
	s->state = S_BOL;
	s->top = top;
	s->lines_left = body_lines;
}

static void
emit(struct feed *f, const uint8_t *p, size_t len)
{
	if (len == 0)
		return;
	f->s->out_len += len;
	f->out(f->arg, p, len);
}

/* Pass on the run up to octet i, not included. */
static void
flush(struct feed *f, size_t i)
{
	emit(f, f->in + f->run, i - f->run);
	f->run = i;
}

/* Add octets of our own before octet i. */
static void
insert(struct feed *f, size_t i, const uint8_t *p, size_t len)
{
	flush(f, i);
	emit(f, p, len);
}

/*
 * An LF ended a line; empty says the line held nothing else (but a CR).
 * The first empty line ends the header section (RFC 5322 2.1); a TOP is
 * done after it and body_lines more lines.
 */
static void
line_end(struct pop3_stuff *s, bool empty)
{
	s->state = S_BOL;
	if (!s->in_body) {
		if (empty)
			s->in_body = true;
		if (s->top && s->in_body && s->lines_left == 0)
			s->done = true;
		return;
	}
	if (s->top && --s->lines_left == 0)
		s->done = true;
}

/*
 * Inside a line, from octet i: up to and including the next LF, or to
 * the end of the chunk.  Returns the index after the octets consumed.
 */
static size_t
step_text(struct feed *f, size_t i, size_t len)
{
	struct pop3_stuff	*s = f->s;
	const uint8_t		*in = f->in, *lf;
	size_t			 j;
	bool			 cr;

	if ((lf = memchr(in + i, '\n', len - i)) == NULL) {
		s->state = in[len - 1] == '\r' ? S_CR : S_TEXT;
		return len;
	}
	j = (size_t)(lf - in);
	cr = j == i ? s->state == S_CR : in[j - 1] == '\r';
	if (!cr)
		insert(f, j, crlf, 1);
	line_end(s, false);
	return j + 1;
}

/* Octet i at a line start, or after a CR there. */
static size_t
step_bol(struct feed *f, size_t i)
{
	struct pop3_stuff	*s = f->s;
	uint8_t			 c = f->in[i];

	if (s->state == S_BOL_CR) {
		if (c == '\n') {
			line_end(s, true);
			return i + 1;
		}
		s->state = S_CR;	/* the CR was a bare one, sent as is */
		return i;
	}
	switch (c) {
	case '.':
		/* RFC 1939 3: the line would read as the end otherwise */
		insert(f, i, dot, 1);
		s->state = S_TEXT;
		return i + 1;
	case '\n':
		insert(f, i, crlf, 1);
		line_end(s, true);
		return i + 1;
	case '\r':
		s->state = S_BOL_CR;
		return i + 1;
	default:
		s->state = S_TEXT;
		return i;
	}
}

bool
pop3_stuff_feed(struct pop3_stuff *s, const uint8_t *p, size_t len,
    pop3_out_cb out, void *arg)
{
	struct feed	f = { s, p, 0, out, arg };
	size_t		i = 0;

	if (s->state == S_END)
		return true;
	while (i < len && !s->done) {
		switch (s->state) {
		case S_BOL:
		case S_BOL_CR:
			i = step_bol(&f, i);
			break;
		case S_TEXT:
		case S_CR:
			i = step_text(&f, i, len);
			break;
		default:
			abort();		/* our own bug */
		}
	}
	flush(&f, i);
	s->in_len += i;
	return s->done;
}

/*
 * A message that does not end with a line end (S_BOL_CR included: its
 * CR was sent as a bare one) gets a CRLF of its own, so that the end is
 * on a line by itself; an empty message sends ".CRLF" alone.
 */
void
pop3_stuff_end(struct pop3_stuff *s, pop3_out_cb out, void *arg)
{
	struct feed	f = { s, NULL, 0, out, arg };

	if (s->state == S_END)
		return;
	if (s->state != S_BOL)
		emit(&f, crlf, 2);
	emit(&f, dot_end, 3);
	s->state = S_END;
}

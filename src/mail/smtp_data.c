/*
 * smtp_data.c - the DATA stream as a byte-wise state machine: the end of
 * data, dot-unstuffing, bare CR / bare LF, line and header bounds and
 * the Received: count.
 *
 * Run by the net role on the octets the client sends after 354, which
 * it does not trust.  It holds no buffer: a chunk is passed on as runs
 * of its own octets, and the few octets it withholds (a stuffing dot, a
 * CR that may start the end of data) are known by the state alone.
 *
 * SMTP smuggling (R1.5): only CRLF "." CRLF ends the data, where the
 * first CRLF is a true one or the start of the stream.  A line that
 * begins after a bare CR or a bare LF is not at a true line start: a dot
 * there is data, neither stuffing nor an end, with or without normalize.
 */
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

/* smtp_data.state */
enum {
	S_BOL,		/* at a true line start */
	S_TEXT,		/* inside a line */
	S_CR,		/* a CR was passed on; LF makes it a line end */
	S_DOT,		/* "." at a true line start, withheld */
	S_DOT_CR,	/* "." CR at a true line start, both withheld */
	S_DONE		/* CRLF "." CRLF seen */
};

/* header_scan.state */
enum {
	H_BOL,		/* at a line start */
	H_BOL_CR,	/* a line that holds a CR so far */
	H_NAME,		/* matching "Received"; col octets matched */
	H_NAME_WS,	/* "Received" then white space */
	H_FIELD,	/* another field name, up to its colon */
	H_SKIP		/* the rest of a line */
};

static const char	received[] = "received";
static const uint8_t	crlf[] = "\r\n";

/* One call of smtp_data_feed(): the chunk and its pending output run. */
struct feed {
	struct smtp_data	*d;
	const uint8_t		*in;
	size_t			 run;	/* start of the octets not yet out */
	smtp_data_out_cb	 out;
	void			*arg;
};

void
header_scan_init(struct header_scan *h)
{
	memset(h, 0, sizeof(*h));
	h->state = H_BOL;
}

/* RFC 5322 ftext: printable US-ASCII but ":". */
static bool
is_ftext(uint8_t c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/*
 * A field name up to its colon.  A line that is neither a field nor a
 * continuation ends the header section, as in Postfix: a message
 * without an empty line after its header is not all header.
 */
static void
scan_field(struct header_scan *h, uint8_t c)
{
	if (c == ':')
		h->state = H_SKIP;
	else if (!is_ftext(c))
		h->done = true;
}

/* Count "Received" + optional WSP + ":" at a line start. */
static void
scan_name(struct header_scan *h, uint8_t c)
{
	if (h->state == H_NAME && h->col < sizeof(received) - 1) {
		if ((c | 0x20) == received[h->col]) {
			h->col++;
		} else {
			h->state = H_FIELD;
			scan_field(h, c);
		}
		return;
	}
	if (c == ' ' || c == '\t')
		h->state = H_NAME_WS;
	else if (c == ':') {
		h->received++;
		h->state = H_SKIP;
	} else if (h->state == H_NAME) {
		h->state = H_FIELD;
		scan_field(h, c);
	} else
		h->state = H_SKIP;
}

/* A line start: the empty line ends the header section. */
static void
scan_bol(struct header_scan *h, uint8_t c)
{
	if (c == '\n') {
		h->done = true;
	} else if (h->state == H_BOL && c == '\r') {
		h->state = H_BOL_CR;
	} else if (h->state == H_BOL && (c | 0x20) == received[0]) {
		h->state = H_NAME;
		h->col = 1;
	} else if (h->state == H_BOL && is_ftext(c)) {
		h->state = H_FIELD;
	} else if (h->state == H_BOL && c != ' ' && c != '\t') {
		h->done = true;		/* not a field: the body begins */
	} else
		h->state = H_SKIP;
}

/*
 * The header section ends at the first empty line (CRLF, or a bare LF);
 * a line is a Received: field when it starts with that name (any case),
 * continuation lines (SP / HTAB) never are.  With header_max 0 the size
 * is not bounded.
 */
void
header_scan_feed(struct header_scan *h, size_t header_max, const uint8_t *p,
    size_t len)
{
	const uint8_t	*lf;
	size_t		 i, n;

	for (i = 0; i < len && !h->done; i += n) {
		n = 1;
		if (h->state == H_SKIP) {
			lf = memchr(p + i, '\n', len - i);
			n = lf == NULL ? len - i : (size_t)(lf - (p + i)) + 1;
			if (lf != NULL)
				h->state = H_BOL;
		} else if (h->state == H_BOL || h->state == H_BOL_CR)
			scan_bol(h, p[i]);
		else if (h->state == H_FIELD && p[i] == '\n')
			h->done = true;	/* a line without a colon */
		else if (p[i] == '\n')
			h->state = H_BOL;
		else if (h->state == H_FIELD)
			scan_field(h, p[i]);
		else
			scan_name(h, p[i]);
		h->header_len += n;
		if (header_max != 0 && h->header_len > header_max)
			h->too_long = true;
	}
}

void
smtp_data_init(struct smtp_data *d, size_t line_max, size_t header_max,
    bool normalize)
{
	memset(d, 0, sizeof(*d));
	d->line_max = line_max;
	d->header_max = header_max;
	d->normalize = normalize;
	d->state = S_BOL;
	header_scan_init(&d->hdr);
}

static void
emit(struct feed *f, const uint8_t *p, size_t len)
{
	struct smtp_data	*d = f->d;

	if (len == 0)
		return;
	d->out_len += len;
	if (!d->hdr.done) {
		header_scan_feed(&d->hdr, d->header_max, p, len);
		if (d->hdr.too_long)
			d->flags |= DATA_F_LONG_HEADER;
	}
	if (f->out != NULL)
		f->out(f->arg, p, len);
}

/* Pass on the run up to octet i, not included. */
static void
flush(struct feed *f, size_t i)
{
	emit(f, f->in + f->run, i - f->run);
	f->run = i;
}

/* Withhold octet i. */
static void
skip(struct feed *f, size_t i)
{
	flush(f, i);
	f->run = i + 1;
}

/* Count octets of the current line (CRLF included) against line_max. */
static void
line_count(struct smtp_data *d, size_t n)
{
	d->col += n;
	if (d->line_max != 0 && d->col > d->line_max)
		d->flags |= DATA_F_LONG_LINE;
}

/* A CR not followed by LF, before octet i: with normalize, add the LF. */
static void
bare_cr(struct feed *f, size_t i)
{
	f->d->flags |= DATA_F_BARE_CR;
	if (f->d->normalize) {
		flush(f, i);
		emit(f, crlf + 1, 1);
	}
}

/* Octet i is an LF not preceded by CR: with normalize, add the CR. */
static void
bare_lf(struct feed *f, size_t i)
{
	f->d->flags |= DATA_F_BARE_LF;
	if (f->d->normalize) {
		flush(f, i);
		emit(f, crlf, 1);
	}
}

/* Inside a line, or after a bare CR / LF: no dot is special here. */
static void
step_text(struct feed *f, size_t i, uint8_t c)
{
	f->d->state = S_TEXT;
	if (c == '\r')
		f->d->state = S_CR;
	else if (c == '\n')
		bare_lf(f, i);
	else if (c == '\0')
		f->d->flags |= DATA_F_NUL;
}

/* One octet; the state says what came before it. */
static void
step(struct feed *f, size_t i, uint8_t c)
{
	struct smtp_data	*d = f->d;

	switch (d->state) {
	case S_BOL:
		if (c == '.') {
			skip(f, i);
			d->state = S_DOT;
		} else
			step_text(f, i, c);
		break;
	case S_DOT:
		if (c == '\r') {
			skip(f, i);
			d->state = S_DOT_CR;
		} else
			step_text(f, i, c);	/* the dot was stuffing */
		break;
	case S_DOT_CR:
		if (c == '\n') {
			skip(f, i);
			d->state = S_DONE;
			break;
		}
		flush(f, i);
		emit(f, crlf, 1);		/* the withheld CR */
		bare_cr(f, i);
		step_text(f, i, c);
		break;
	case S_CR:
		if (c == '\n') {
			d->state = S_BOL;
			break;
		}
		bare_cr(f, i);
		step_text(f, i, c);
		break;
	case S_TEXT:
		step_text(f, i, c);
		break;
	default:
		abort();			/* our own bug */
	}
}

/* Octets at p that need no state change inside a line. */
static size_t
text_span(const uint8_t *p, size_t len)
{
	size_t	n;

	for (n = 0; n < len; n++)
		if (p[n] == '\r' || p[n] == '\n' || p[n] == '\0')
			break;
	return n;
}

size_t
smtp_data_feed(struct smtp_data *d, const uint8_t *in, size_t len,
    bool *done_r, smtp_data_out_cb out, void *arg)
{
	struct feed	f = { d, in, 0, out, arg };
	size_t		i = 0, n;

	while (i < len && d->state != S_DONE) {
		if (d->state == S_TEXT &&
		    (n = text_span(in + i, len - i)) > 0) {
			line_count(d, n);
			i += n;
			continue;
		}
		line_count(d, 1);
		if (in[i] == '\n')
			d->col = 0;
		step(&f, i, in[i]);
		i++;
	}
	flush(&f, i);
	*done_r = d->state == S_DONE;
	return i;
}

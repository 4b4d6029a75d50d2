/*
 * dsn.c - the delivery status notification (see dsn.h): the report's
 * header, the text for people, the message/delivery-status and the
 * quoted header section, each part built on its own and then joined
 * with a boundary that occurs in none of them.
 *
 * Runs in the store role (the queue).  Its input came from remote
 * servers (the diagnostic), from the client that sent the original (the
 * recipient, the header section) and from the spool; none of it is
 * trusted.  Every string reaches the output only through field_clean(),
 * diag_clean() or put_header_line(), which bound it and replace what
 * could end a line or leave ASCII.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "log.h"
#include "xalloc.h"

#define BOUNDARY_PREFIX	"=_postino_"
#define BOUNDARY_MAX	70	/* RFC 2046 5.1.1 */
#define DATE_MAX	40	/* "Thu, 01 Jan 1970 00:00:00 +0000" */
#define DAY_SECONDS	86400
#define OBUF_INIT	4096

enum { PART_TEXT, PART_STATUS, PART_HEADERS, NPARTS };

/* A growing output buffer, always NUL-terminated. */
struct obuf {
	char		*p;
	size_t		 len, size;
};

/* A diagnostic after diag_clean(): non-blank lines of printable ASCII,
 * joined with '\n'. */
struct diag {
	char		 text[DSN_DIAG_MAX + 1];
	size_t		 len;
};

/* One recipient, cleaned for the output. */
struct rcpt_view {
	char		 rcpt[DSN_FIELD_MAX + 1];
	char		 status[DSN_FIELD_MAX + 1];
	char		 mta[DSN_FIELD_MAX + 1];
	struct diag	 diag;
	const char	*action;	/* "failed", "delayed" */
};

struct report {
	const struct dsn *d;
	size_t		 nrcpt;		/* 0 when d->rcpts is NULL */
	char		 host[DSN_FIELD_MAX + 1];
	char		 qid[DSN_FIELD_MAX + 1];
	char		 from[DSN_FIELD_MAX + 1];
	char		 token[DSN_TOKEN_MAX + 1];
	char		 boundary[BOUNDARY_MAX + 1];
	bool		 failed, delayed;	/* some recipient has it */
	bool		 eightbit;	/* 8-bit octets in the quoted headers */
	struct obuf	 parts[NPARTS];
};

static void
ob_add(struct obuf *b, const void *p, size_t n)
{
	size_t	need, size;

	if (n == 0)
		return;
	if (__builtin_add_overflow(b->len, n, &need) ||
	    __builtin_add_overflow(need, 1, &need))
		fatalx("dsn: report too large");
	if (need > b->size) {
		size = b->size ? b->size : OBUF_INIT;
		while (size < need)
			if (__builtin_mul_overflow(size, 2, &size))
				fatalx("dsn: report too large");
		b->p = xreallocarray(b->p, size, 1);
		b->size = size;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
ob_str(struct obuf *b, const char *s)
{
	ob_add(b, s, strlen(s));
}

/* Only for our own short pieces: numbers and fixed text. */
static void __attribute__((format(printf, 2, 3)))
ob_printf(struct obuf *b, const char *fmt, ...)
{
	va_list	ap;
	char	s[256];
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(s))
		panic("dsn: ob_printf \"%s\" does not fit", fmt);
	ob_add(b, s, (size_t)n);
}

static bool
is_print(char c)
{
	return (uint8_t)c >= 0x20 && (uint8_t)c < 0x7f;
}

/*
 * s cut to DSN_FIELD_MAX octets, each octet that is not printable ASCII
 * made '?' (so no CR, LF or NUL survives).  NULL gives "".  Returns out.
 */
static char *
field_clean(const char *s, char out[DSN_FIELD_MAX + 1])
{
	size_t	n = 0;

	for (; s != NULL && s[n] != '\0' && n < DSN_FIELD_MAX; n++)
		out[n] = is_print(s[n]) ? s[n] : '?';
	out[n] = '\0';
	return out;
}

/* Ends the line that began at *start: a blank one is dropped, since a
 * blank continuation line could read as the end of a header. */
static void
diag_end_line(struct diag *dg, size_t *start, bool *ink)
{
	if (!*ink)
		dg->len = *start;
	else if (dg->len < DSN_DIAG_MAX)
		dg->text[dg->len++] = '\n';
	*start = dg->len;
	*ink = false;
}

/*
 * The diagnostic as lines of at most DSN_DIAG_LINE_MAX octets, in all at
 * most DSN_DIAG_MAX.  "\n" and "\r\n" separate lines; any other control
 * octet, a lone CR included, and non-ASCII become '?'.
 */
static void
diag_clean(const char *s, struct diag *dg)
{
	size_t	start = 0;
	bool	ink = false;

	dg->len = 0;
	for (; s != NULL && *s != '\0' && dg->len < DSN_DIAG_MAX; s++) {
		if (*s == '\n' || (s[0] == '\r' && s[1] == '\n')) {
			s += *s == '\r';
			diag_end_line(dg, &start, &ink);
			continue;
		}
		if (dg->len - start >= DSN_DIAG_LINE_MAX)
			continue;
		dg->text[dg->len++] = is_print(*s) ? *s : '?';
		ink |= *s != ' ';
	}
	if (!ink)
		dg->len = start;
	if (dg->len > 0 && dg->text[dg->len - 1] == '\n')
		dg->len--;
	dg->text[dg->len] = '\0';
}

/* Writes the diagnostic's lines, each after the first preceded by
 * indent, each ended by CRLF. */
static void
put_diag(struct obuf *b, const struct diag *dg, const char *indent)
{
	const char	*p = dg->text, *end = dg->text + dg->len, *nl;

	for (;;) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		ob_add(b, p, (size_t)(nl - p));
		ob_str(b, "\r\n");
		if (nl == end)
			break;
		p = nl + 1;
		ob_str(b, indent);
	}
}

/* RFC 3463: class "." subject "." detail, class 2, 4 or 5, the others
 * one to three digits. */
static bool
status_valid(const char *s)
{
	size_t	i, n;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return false;
	s++;
	for (i = 0; i < 2; i++) {
		if (*s++ != '.')
			return false;
		for (n = 0; *s >= '0' && *s <= '9'; n++)
			s++;
		if (n < 1 || n > 3)
			return false;
	}
	return *s == '\0';
}

static const char *
action_name(enum dsn_action action)
{
	switch (action) {
	case DSN_FAILED:
		return "failed";
	case DSN_DELAYED:
		return "delayed";
	default:
		panic("dsn: action %d", (int)action);
	}
}

static void
rcpt_clean(const struct dsn_rcpt *r, struct rcpt_view *v)
{
	v->action = action_name(r->action);
	field_clean(r->rcpt, v->rcpt);
	field_clean(r->remote_mta, v->mta);
	field_clean(r->status, v->status);
	if (!status_valid(v->status))
		strcpy(v->status, r->action == DSN_FAILED ? "5.0.0" : "4.0.0");
	diag_clean(r->diagnostic, &v->diag);
}

/*
 * A date-time as RFC 5322 3.3 writes it, in UTC.  Returns false when t
 * has no such form (a year before 1900 or after 9999).  The names are
 * spelt out here: strftime's %a and %b follow the locale.
 */
static bool
date_format(time_t t, char out[DATE_MAX])
{
	static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed",
	    "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 ||
	    tm.tm_year > 9999 - 1900)
		return false;
	snprintf(out, DATE_MAX, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    wdays[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return true;
}

/* "Name: date" CRLF, or nothing when t is 0 or has no date form. */
static void
put_date_field(struct obuf *b, const char *name, time_t t)
{
	char	date[DATE_MAX];

	if (t == 0 || !date_format(t, date))
		return;
	ob_printf(b, "%s: %s\r\n", name, date);
}

/* arrival + retry_days, or 0 when unknown or out of range. */
static time_t
retry_until(const struct dsn *d)
{
	time_t	add, until;

	if (d->arrival == 0 ||
	    __builtin_mul_overflow((time_t)d->retry_days, DAY_SECONDS, &add) ||
	    __builtin_add_overflow(d->arrival, add, &until))
		return 0;
	return until;
}

/*
 * The token for the boundary and the Message-ID: letters, digits, '-',
 * '_' and single inner dots (a dot-atom, RFC 5322 3.4.1); any other
 * octet becomes '_'.  Empty: the report's time in decimal.
 */
static void
token_clean(const char *s, time_t now, char out[DSN_TOKEN_MAX + 1])
{
	size_t	n = 0;
	char	c;

	for (; s != NULL && *s != '\0' && n < DSN_TOKEN_MAX; s++) {
		c = *s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_')
			out[n++] = c;
		else if (c != '.')
			out[n++] = '_';
		else if (n > 0 && out[n - 1] != '.')
			out[n++] = '.';
	}
	while (n > 0 && out[n - 1] == '.')
		n--;
	out[n] = '\0';
	if (n == 0)
		snprintf(out, DSN_TOKEN_MAX + 1, "%lld", (long long)now);
}

static const char *
plural(unsigned long n)
{
	return n == 1 ? "" : "s";
}

/* The text part's list: "<rcpt>: diagnostic" for each with action. */
static void
text_rcpts(struct report *r, enum dsn_action action)
{
	struct obuf		*b = &r->parts[PART_TEXT];
	struct rcpt_view	 v;
	size_t			 i;

	for (i = 0; i < r->nrcpt; i++) {
		if (r->d->rcpts[i].action != action)
			continue;
		rcpt_clean(&r->d->rcpts[i], &v);
		ob_str(b, "<");
		ob_str(b, v.rcpt);
		ob_str(b, ">: ");
		if (v.diag.len > 0) {
			put_diag(b, &v.diag, "    ");
			continue;
		}
		ob_printf(b, "delivery %s, status ", v.action);
		ob_str(b, v.status);
		ob_str(b, "\r\n");
	}
}

static void
text_failed(struct report *r)
{
	ob_str(&r->parts[PART_TEXT],
	    "I'm sorry to have to inform you that your message could not\r\n"
	    "be delivered to one or more recipients. Its header section is\r\n"
	    "attached below.\r\n"
	    "\r\n");
}

static void
text_delayed(struct report *r)
{
	struct obuf	*b = &r->parts[PART_TEXT];

	if (!r->failed)
		ob_str(b,
		    "##################################################"
		    "##################\r\n"
		    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND "
		    "YOUR MESSAGE. #\r\n"
		    "##################################################"
		    "##################\r\n"
		    "\r\n");
	ob_str(b, "Your message has not yet been delivered to ");
	ob_str(b, r->failed ? "some other recipients.\r\n" :
	    "one or more recipients.\r\n");
	ob_printf(b, "It will be retried until it is %u day%s old.\r\n\r\n",
	    r->d->retry_days, plural(r->d->retry_days));
}

static void
build_text(struct report *r)
{
	struct obuf	*b = &r->parts[PART_TEXT];

	ob_str(b, "This is the mail system at host ");
	ob_str(b, r->host);
	if (r->qid[0] != '\0') {
		ob_str(b, ",\r\nabout your message with queue ID ");
		ob_str(b, r->qid);
	}
	ob_str(b, ".\r\n\r\n");
	if (r->failed)
		text_failed(r);
	if (r->delayed)
		text_delayed(r);
	ob_str(b, "For further assistance, please send mail to postmaster.\r\n"
	    "If you do so, please include this problem report.\r\n"
	    "\r\n"
	    "                   The mail system\r\n"
	    "\r\n");
	text_rcpts(r, DSN_FAILED);
	if (r->failed && r->delayed)
		ob_str(b, "\r\nStill being retried:\r\n\r\n");
	text_rcpts(r, DSN_DELAYED);
}

/*
 * An SMTP reply begins with its code (RFC 5321 4.2); anything else is
 * postino's own text, which RFC 3464 2.3.6 types as our own, as Postfix
 * does with "X-Postfix".
 */
static const char *
diag_type(const struct diag *dg)
{
	const char	*s = dg->text;

	if (s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
	    s[2] >= '0' && s[2] <= '9' &&
	    (s[3] == ' ' || s[3] == '-' || s[3] == '\n' || s[3] == '\0'))
		return "smtp";
	return "X-Postino";
}

/* RFC 3464 2.3: one recipient's fields, after the blank line. */
static void
status_rcpt(struct report *r, const struct dsn_rcpt *rc)
{
	struct obuf		*b = &r->parts[PART_STATUS];
	struct rcpt_view	 v;
	time_t			 until;

	rcpt_clean(rc, &v);
	ob_str(b, "\r\nFinal-Recipient: rfc822; ");
	ob_str(b, v.rcpt);
	ob_str(b, "\r\nOriginal-Recipient: rfc822; ");
	ob_str(b, v.rcpt);
	ob_printf(b, "\r\nAction: %s\r\nStatus: ", v.action);
	ob_str(b, v.status);
	ob_str(b, "\r\n");
	if (v.mta[0] != '\0') {
		ob_str(b, "Remote-MTA: dns; ");
		ob_str(b, v.mta);
		ob_str(b, "\r\n");
	}
	if (v.diag.len > 0) {
		ob_printf(b, "Diagnostic-Code: %s; ", diag_type(&v.diag));
		put_diag(b, &v.diag, " ");
	}
	put_date_field(b, "Last-Attempt-Date", rc->last_attempt);
	if (rc->action == DSN_DELAYED && (until = retry_until(r->d)) != 0)
		put_date_field(b, "Will-Retry-Until", until);
}

/* RFC 3464 2.2 and 2.3: the per-message fields, then each recipient. */
static void
build_status(struct report *r)
{
	struct obuf	*b = &r->parts[PART_STATUS];
	size_t		 i;

	ob_str(b, "Reporting-MTA: dns; ");
	ob_str(b, r->host);
	ob_str(b, "\r\n");
	if (r->qid[0] != '\0') {
		ob_str(b, "X-Postino-Queue-ID: ");
		ob_str(b, r->qid);
		ob_str(b, "\r\n");
	}
	put_date_field(b, "Arrival-Date", r->d->arrival);
	for (i = 0; i < r->nrcpt; i++)
		status_rcpt(r, &r->d->rcpts[i]);
}

/*
 * One line of the quoted header section (n octets, its line end not
 * included), folded into pieces of at most DSN_LINE_MAX octets, each
 * after the first a continuation beginning with a space.  Control
 * octets other than HT, a lone CR among them, become '?'; 8-bit octets
 * are kept.  Returns false, having written the pieces that fit, when the
 * part would pass DSN_HEADERS_MAX.
 */
static bool
put_header_line(struct report *r, const char *s, size_t n)
{
	struct obuf	*b = &r->parts[PART_HEADERS];
	char		 line[DSN_LINE_MAX + 2];
	size_t		 len = 0;
	bool		 eightbit = false;
	uint8_t		 c;

	for (;;) {
		for (; n > 0 && len < DSN_LINE_MAX; n--, s++) {
			c = (uint8_t)*s;
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				c = '?';
			eightbit |= c >= 0x80;
			line[len++] = (char)c;
		}
		line[len++] = '\r';
		line[len++] = '\n';
		/* UNSAFE: b->len never passes DSN_HEADERS_MAX */
		if (len > DSN_HEADERS_MAX - b->len)
			return false;
		ob_add(b, line, len);
		r->eightbit |= eightbit;
		if (n == 0)
			return true;
		line[0] = ' ';
		len = 1;
	}
}

/*
 * The line at s: returns its length without the line end (LF, or CRLF)
 * and sets *next_r past that end.  The last line may have none.
 */
static size_t
line_span(const char *s, size_t len, size_t *next_r)
{
	const char	*nl;
	size_t		 n;

	if ((nl = memchr(s, '\n', len)) == NULL) {
		n = len;
		*next_r = len;
	} else {
		n = (size_t)(nl - s);
		*next_r = n + 1;
	}
	if (n > 0 && s[n - 1] == '\r')
		n--;
	return n;
}

/* Part 3: the original's header lines, up to an empty line if one was
 * passed, with CRLF ends, cut at a line end to fit DSN_HEADERS_MAX. */
static void
build_headers(struct report *r)
{
	const char	*h = r->d->headers;
	size_t		 len = h != NULL ? r->d->headers_len : 0, n, next;

	while (len > 0) {
		n = line_span(h, len, &next);
		if (n == 0 && next > 0 && h[next - 1] == '\n')
			break;
		if (n > 0 && !put_header_line(r, h, n))
			break;
		h += next;
		len -= next;
	}
}

static bool
boundary_in_parts(const struct report *r)
{
	size_t	i, n = strlen(r->boundary);

	for (i = 0; i < NPARTS; i++)
		if (r->parts[i].len > 0 && memmem(r->parts[i].p,
		    r->parts[i].len, r->boundary, n) != NULL)
			return true;
	return false;
}

/*
 * BOUNDARY_PREFIX and the token, then with "_1", "_2", ... added while a
 * part holds it (RFC 2046 5.1.1: it must not occur in the parts).  This
 * ends: a candidate is found only where the plain boundary occurs, and
 * at one place only one candidate of each length, so after at most 10
 * tries per occurrence.  At most 10 + 40 + 11 octets, under 70.
 */
static void
boundary_pick(struct report *r)
{
	unsigned int	n;

	snprintf(r->boundary, sizeof(r->boundary), BOUNDARY_PREFIX "%s",
	    r->token);
	for (n = 1; boundary_in_parts(r); n++)
		snprintf(r->boundary, sizeof(r->boundary),
		    BOUNDARY_PREFIX "%s_%u", r->token, n);
}

/* The report's own header section and the MIME preamble. */
static void
put_top(const struct report *r, struct obuf *m)
{
	char	date[DATE_MAX];

	if (!date_format(r->d->now, date))
		date_format(0, date);
	ob_str(m, "From: Mail Delivery System <MAILER-DAEMON@");
	ob_str(m, r->host);
	ob_str(m, ">\r\n");
	if (r->from[0] != '\0') {
		ob_str(m, "To: <");
		ob_str(m, r->from);
		ob_str(m, ">\r\n");
	} else
		ob_str(m, "To: undisclosed-recipients:;\r\n");
	ob_str(m, r->failed ?
	    "Subject: Undelivered Mail Returned to Sender\r\n" :
	    "Subject: Delayed Mail (still being retried)\r\n");
	ob_printf(m, "Date: %s\r\n", date);
	ob_printf(m, "Message-ID: <%s@", r->token);
	ob_str(m, r->host);
	/* RFC 3834 5: an automatic response */
	ob_str(m, ">\r\nAuto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n");
	ob_printf(m, "\tboundary=\"%s\"\r\n", r->boundary);
	if (r->eightbit)
		ob_str(m, "Content-Transfer-Encoding: 8bit\r\n");
	ob_str(m, "\r\nThis is a MIME-encapsulated message.\r\n");
}

/* A delimiter, the part's header, its content (ending in CRLF). */
static void
put_part(const struct report *r, struct obuf *m, int part,
    const char *header)
{
	ob_printf(m, "\r\n--%s\r\n", r->boundary);
	ob_str(m, header);
	ob_add(m, r->parts[part].p, r->parts[part].len);
}

static void
report_init(struct report *r, const struct dsn *d)
{
	size_t	i;

	memset(r, 0, sizeof(*r));
	r->d = d;
	r->nrcpt = d->rcpts != NULL ? d->nrcpt : 0;
	if (field_clean(d->reporting_mta, r->host)[0] == '\0')
		strcpy(r->host, "localhost");
	field_clean(d->qid, r->qid);
	field_clean(d->from, r->from);
	token_clean(d->random, d->now, r->token);
	for (i = 0; i < r->nrcpt; i++) {
		(void)action_name(d->rcpts[i].action);	/* panics if bad */
		r->failed |= d->rcpts[i].action == DSN_FAILED;
		r->delayed |= d->rcpts[i].action == DSN_DELAYED;
	}
}

char *
dsn_format(const struct dsn *d, size_t *len_r)
{
	struct report	r;
	struct obuf	m = { NULL, 0, 0 };
	int		i;

	report_init(&r, d);
	build_text(&r);
	build_status(&r);
	build_headers(&r);
	boundary_pick(&r);
	put_top(&r, &m);
	put_part(&r, &m, PART_TEXT, "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	put_part(&r, &m, PART_STATUS, "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n");
	put_part(&r, &m, PART_HEADERS,
	    r.eightbit ? "Content-Description: Undelivered Message Headers\r\n"
	    "Content-Type: text/rfc822-headers\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n" :
	    "Content-Description: Undelivered Message Headers\r\n"
	    "Content-Type: text/rfc822-headers\r\n\r\n");
	ob_printf(&m, "\r\n--%s--\r\n", r.boundary);
	for (i = 0; i < NPARTS; i++)
		free(r.parts[i].p);
	*len_r = m.len;
	return m.p;
}

size_t
dsn_header_length(const char *msg, size_t len)
{
	size_t	off = 0, n, next;

	while (off < len) {
		n = line_span(msg + off, len - off, &next);
		if (n == 0 && msg[off + next - 1] == '\n')
			return off;
		off += next;
	}
	return len;
}

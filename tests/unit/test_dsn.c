/*
 * test_dsn.c - dsn.c: a golden non-delivery report, the delay notice,
 * CR / LF / NUL injection through the diagnostic, the recipient and the
 * quoted headers, the header bound, bare LF, line lengths and
 * dsn_header_length().
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))
#define T0		1700000000	/* Tue, 14 Nov 2023 22:13:20 +0000 */

static const char golden_headers[] =
    "Received: from client.example.com\r\n"
    "\tby mail.example.com; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: Alice <alice@example.com>\r\n"
    "Subject: hello\r\n";

static const struct dsn_rcpt golden_rcpts[] = {
	{ "bob@example.net", DSN_FAILED, "5.1.1", "mx.example.net",
	  "550-5.1.1 <bob@example.net>: Recipient address rejected:\n"
	  "550 5.1.1 User unknown in virtual mailbox table", T0 + 3600 },
	{ "carol@example.org", DSN_FAILED, "5.4.4", NULL,
	  "Host or domain name not found", T0 + 3700 },
};

#define B	"=_postino_4F2A9C.1700003800"
static const char golden[] =
    "From: Mail Delivery System <MAILER-DAEMON@mail.example.com>\r\n"
    "To: <alice@example.com>\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Date: Tue, 14 Nov 2023 23:16:40 +0000\r\n"
    "Message-ID: <4F2A9C.1700003800@mail.example.com>\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"" B "\"\r\n"
    "\r\n"
    "This is a MIME-encapsulated message.\r\n"
    "\r\n"
    "--" B "\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "This is the mail system at host mail.example.com,\r\n"
    "about your message with queue ID 4F2A9C.\r\n"
    "\r\n"
    "I'm sorry to have to inform you that your message could not\r\n"
    "be delivered to one or more recipients. Its header section is\r\n"
    "attached below.\r\n"
    "\r\n"
    "For further assistance, please send mail to postmaster.\r\n"
    "If you do so, please include this problem report.\r\n"
    "\r\n"
    "                   The mail system\r\n"
    "\r\n"
    "<bob@example.net>: 550-5.1.1 <bob@example.net>: Recipient address "
    "rejected:\r\n"
    "    550 5.1.1 User unknown in virtual mailbox table\r\n"
    "<carol@example.org>: Host or domain name not found\r\n"
    "\r\n"
    "--" B "\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mail.example.com\r\n"
    "X-Postino-Queue-ID: 4F2A9C\r\n"
    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@example.net\r\n"
    "Original-Recipient: rfc822; bob@example.net\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; mx.example.net\r\n"
    "Diagnostic-Code: smtp; 550-5.1.1 <bob@example.net>: Recipient address "
    "rejected:\r\n"
    " 550 5.1.1 User unknown in virtual mailbox table\r\n"
    "Last-Attempt-Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; carol@example.org\r\n"
    "Original-Recipient: rfc822; carol@example.org\r\n"
    "Action: failed\r\n"
    "Status: 5.4.4\r\n"
    "Diagnostic-Code: X-Postino; Host or domain name not found\r\n"
    "Last-Attempt-Date: Tue, 14 Nov 2023 23:15:00 +0000\r\n"
    "\r\n"
    "--" B "\r\n"
    "Content-Description: Undelivered Message Headers\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "Received: from client.example.com\r\n"
    "\tby mail.example.com; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: Alice <alice@example.com>\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "--" B "--\r\n";
#undef B

/* The golden report's input; tests change copies of it. */
static struct dsn
base_dsn(void)
{
	struct dsn	d = {
		.reporting_mta = "mail.example.com",
		.qid = "4F2A9C",
		.from = "alice@example.com",
		.arrival = T0,
		.now = T0 + 3800,
		.retry_days = 5,
		.rcpts = golden_rcpts,
		.nrcpt = NROWS(golden_rcpts),
		.headers = golden_headers,
		.headers_len = sizeof(golden_headers) - 1,
		.random = "4F2A9C.1700003800",
	};

	return d;
}

/* Every line ends in CRLF and has at most 998 octets; no NUL, no bare
 * CR or LF; the text ends with a line end. */
static bool
lines_ok(const char *m, size_t len)
{
	size_t	i, col = 0;

	if (len < 2 || m[len - 2] != '\r' || m[len - 1] != '\n')
		return false;
	for (i = 0; i < len; i++) {
		if (m[i] == '\0')
			return false;
		if (m[i] == '\r' && (i + 1 == len || m[i + 1] != '\n'))
			return false;
		if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
			return false;
		if (m[i] == '\r' || m[i] == '\n') {
			if (col > 998)
				return false;
			col = 0;
		} else
			col++;
	}
	return true;
}

/* The names of the report's own header fields, joined by ','. */
static void
field_names(const char *m, size_t len, char *out, size_t size)
{
	size_t	i = 0, n, o = 0;

	out[0] = '\0';
	while (i + 1 < len && !(m[i] == '\r' && m[i + 1] == '\n')) {
		if (m[i] != ' ' && m[i] != '\t') {
			for (n = 0; i + n < len && m[i + n] != ':' &&
			    m[i + n] != '\r'; n++)
				;
			if (o + n + 2 > size)
				return;
			memcpy(out + o, m + i, n);
			o += n;
			out[o++] = ',';
			out[o] = '\0';
		}
		while (i < len && m[i] != '\n')
			i++;
		i++;
	}
}

/* The boundary named in the Content-Type; "" when there is none. */
static void
get_boundary(const char *m, char *out, size_t size)
{
	const char	*p, *q;

	out[0] = '\0';
	if ((p = strstr(m, "\r\n\tboundary=\"")) == NULL)
		return;
	p += strlen("\r\n\tboundary=\"");
	if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= size)
		return;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
}

/* Lines of m (CRLF lines) that begin with prefix. */
static int
lines_with(const char *m, size_t len, const char *prefix)
{
	size_t	i, n = strlen(prefix);
	int	count = 0;

	for (i = 0; i < len; i++)
		if ((i == 0 || m[i - 1] == '\n') && len - i >= n &&
		    memcmp(m + i, prefix, n) == 0)
			count++;
	return count;
}

/* Occurrences of s in m. */
static int
count_in(const char *m, size_t len, const char *s)
{
	const char	*p = m, *end = m + len;
	int		 count = 0;

	while ((p = memmem(p, (size_t)(end - p), s, strlen(s))) != NULL) {
		count++;
		p++;
	}
	return count;
}

/*
 * The MIME structure holds: three delimiter lines and one close delimiter
 * at the very end, and the boundary nowhere else in the body.
 */
static bool
mime_ok(const char *m, size_t len, char *bnd, size_t size)
{
	char	delim[100], close[104];

	get_boundary(m, bnd, size);
	if (bnd[0] == '\0')
		return false;
	snprintf(delim, sizeof(delim), "--%s\r\n", bnd);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", bnd);
	return lines_with(m, len, delim) == 3 &&
	    count_in(m, len, close) == 1 &&
	    len > strlen(close) &&
	    strcmp(m + len - strlen(close), close) == 0 &&
	    count_in(m + dsn_header_length(m, len),
	    len - dsn_header_length(m, len), bnd) == 4;
}

/* The content of part k (0, 1, 2): after its header, before the next
 * delimiter's CRLF.  NULL when the structure is not there. */
static const char *
part(const char *m, size_t len, int k, size_t *plen)
{
	char		 bnd[100], delim[104];
	const char	*p = m, *end = m + len, *q;
	int		 i;

	get_boundary(m, bnd, sizeof(bnd));
	snprintf(delim, sizeof(delim), "\r\n--%s", bnd);
	for (i = 0; i <= k; i++) {
		if ((p = memmem(p, (size_t)(end - p), delim,
		    strlen(delim))) == NULL)
			return NULL;
		p += strlen(delim);
	}
	if ((p = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) == NULL)
		return NULL;
	p += 4;
	if ((q = memmem(p, (size_t)(end - p), delim, strlen(delim))) == NULL)
		return NULL;
	*plen = (size_t)(q - p);
	return p;
}

static void
test_golden(void)
{
	struct dsn	 d = base_dsn();
	size_t		 len;
	char		*m;

	m = dsn_format(&d, &len);
	CHECK_INT(len, sizeof(golden) - 1);
	CHECK(len == sizeof(golden) - 1 && memcmp(m, golden, len) == 0);
	CHECK_INT(strlen(m), len);
	if (len != sizeof(golden) - 1 || memcmp(m, golden, len) != 0)
		printf("  got:\n%s\n", m);
	CHECK(lines_ok(m, len));
	free(m);
}

static void
test_delay(void)
{
	static const struct dsn_rcpt	rcpts[] = {
		{ "bob@example.net", DSN_DELAYED, "4.4.1", "mx.example.net",
		  "connect to mx.example.net[192.0.2.7]:25: Connection timed "
		  "out", T0 + 14400 },
	};
	static const struct dsn_rcpt	mixed[] = {
		{ "bob@example.net", DSN_DELAYED, "4.4.1", NULL, NULL, 0 },
		{ "carol@example.org", DSN_FAILED, "5.1.1", NULL, NULL, 0 },
	};
	struct dsn	 d = base_dsn();
	char		 bnd[100], *m;
	size_t		 len;

	d.rcpts = rcpts;
	d.nrcpt = 1;
	d.now = T0 + 14400;
	m = dsn_format(&d, &len);
	CHECK(lines_ok(m, len));
	CHECK(mime_ok(m, len, bnd, sizeof(bnd)));
	CHECK_INT(lines_with(m, len,
	    "Subject: Delayed Mail (still being retried)\r\n"), 1);
	CHECK_INT(lines_with(m, dsn_header_length(m, len), "Subject:"), 1);
	CHECK_INT(lines_with(m, len, "Action: delayed\r\n"), 1);
	CHECK_INT(lines_with(m, len, "Action:"), 1);
	CHECK_INT(lines_with(m, len, "Status: 4.4.1\r\n"), 1);
	/* T0 + 5 days */
	CHECK_INT(lines_with(m, len,
	    "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n"), 1);
	CHECK_INT(lines_with(m, len,
	    "Last-Attempt-Date: Wed, 15 Nov 2023 02:13:20 +0000\r\n"), 1);
	CHECK_INT(lines_with(m, len,
	    "It will be retried until it is 5 days old.\r\n"), 1);
	CHECK_INT(lines_with(m, len, "# THIS IS A WARNING ONLY."), 1);
	free(m);

	/* one failed, one delayed: a bounce; only the delayed one retries */
	d.rcpts = mixed;
	d.nrcpt = 2;
	d.retry_days = 1;
	m = dsn_format(&d, &len);
	CHECK(lines_ok(m, len));
	CHECK(mime_ok(m, len, bnd, sizeof(bnd)));
	CHECK_INT(lines_with(m, len,
	    "Subject: Undelivered Mail Returned to Sender\r\n"), 1);
	CHECK_INT(lines_with(m, len, "Will-Retry-Until: Wed, 15 Nov 2023 "
	    "22:13:20 +0000\r\n"), 1);
	CHECK_INT(lines_with(m, len, "Will-Retry-Until:"), 1);
	CHECK_INT(lines_with(m, len, "Action: failed\r\n"), 1);
	CHECK_INT(lines_with(m, len, "It will be retried until it is 1 day "
	    "old.\r\n"), 1);
	CHECK_INT(lines_with(m, len, "# THIS IS A WARNING ONLY."), 0);
	CHECK_INT(lines_with(m, len, "<bob@example.net>: delivery delayed, "
	    "status 4.4.1\r\n"), 1);
	CHECK_INT(lines_with(m, len, "Diagnostic-Code:"), 0);
	free(m);
}

/* What may begin a line of the message/delivery-status part. */
static bool
status_line_ok(const char *line, size_t n)
{
	static const char *const names[] = { "Reporting-MTA: ",
	    "X-Postino-Queue-ID: ", "Arrival-Date: ", "Final-Recipient: ",
	    "Original-Recipient: ", "Action: ", "Status: ", "Remote-MTA: ",
	    "Diagnostic-Code: ", "Last-Attempt-Date: ", "Will-Retry-Until: " };
	size_t	i;

	if (n == 0)
		return true;
	if (line[0] == ' ') {		/* a continuation, never blank */
		for (i = 0; i < n; i++)
			if (line[i] != ' ')
				return true;
		return false;
	}
	for (i = 0; i < NROWS(names); i++)
		if (n >= strlen(names[i]) &&
		    memcmp(line, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

static bool
status_part_ok(const char *p, size_t len)
{
	const char	*end = p + len, *nl;

	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return false;
		if (!status_line_ok(p, (size_t)(nl - p - 1)))
			return false;
		p = nl + 1;
	}
	return true;
}

struct inject_row {
	const char	*name;
	const char	*rcpt;
	const char	*diag;
	const char	*headers;
	size_t		 headers_len;	/* 0: strlen(headers) */
	bool		 altered;	/* the boundary must have changed */
};

/* Each row tries to add a header field "X-Evil" or a MIME part. */
static const struct inject_row inject_rows[] = {
	{ "diag CRLF", "a@b", "550 x\r\nX-Evil: 1", NULL, 0, false },
	{ "diag LF", "a@b", "550 x\nX-Evil: 1", NULL, 0, false },
	{ "diag lone CR", "a@b", "550 x\rX-Evil: 1", NULL, 0, false },
	{ "diag empty line", "a@b", "550 x\r\n\r\nX-Evil: 1", NULL, 0,
	  false },
	{ "diag blank line", "a@b", "550 x\n   \n\t\nX-Evil: 1", NULL, 0,
	  false },
	{ "diag LF first", "a@b", "\nX-Evil: 1", NULL, 0, false },
	{ "diag NUL", "a@b", "550 x\0\r\nX-Evil: 1", NULL, 0, false },
	{ "diag boundary", "a@b",
	  "550 x\r\n\r\n--=_postino_tok\r\nX-Evil: 1\r\n", NULL, 0, true },
	{ "diag close", "a@b", "550 x\n--=_postino_tok--", NULL, 0, true },
	{ "rcpt CRLF", "a@b\r\nX-Evil: 1", "550 x", NULL, 0, false },
	{ "rcpt LF", "a@b\nX-Evil: 1", NULL, NULL, 0, false },
	{ "rcpt CR", "a@b\rX-Evil: 1", NULL, NULL, 0, false },
	{ "rcpt empty line", "a@b\r\n\r\nX-Evil: 1", NULL, NULL, 0, false },
	{ "rcpt NUL", "a@b\0\r\nX-Evil: 1", NULL, NULL, 0, false },
	{ "rcpt boundary", "a@b>\r\n--=_postino_tok\r\nX-Evil: 1", NULL,
	  NULL, 0, true },
	{ "headers lone CR", "a@b", NULL, "Subject: a\rX-Evil: 1\r\n", 0,
	  false },
	{ "headers NUL", "a@b", NULL, "Subject: a\0X-Evil: 1\r\n", 22,
	  false },
	{ "headers empty line", "a@b", NULL,
	  "Subject: a\r\n\r\nX-Evil: 1\r\n", 0, false },
	{ "headers LF empty line", "a@b", NULL, "Subject: a\n\nX-Evil: 1\n",
	  0, false },
	{ "headers boundary", "a@b", NULL,
	  "Subject: a\r\n--=_postino_tok\r\nX-Note: 1\r\n", 0, true },
	{ "headers close", "a@b", NULL,
	  "Subject: a\r\n--=_postino_tok--\r\n", 0, true },
};

static void
test_injection(void)
{
	struct dsn_rcpt	 rc[2];
	struct dsn	 d = base_dsn();
	const char	*p;
	char		 bnd[100], names[400], *m;
	size_t		 i, len, plen;

	for (i = 0; i < NROWS(inject_rows); i++) {
		const struct inject_row	*row = &inject_rows[i];

		memset(rc, 0, sizeof(rc));
		rc[0] = (struct dsn_rcpt){ row->rcpt, DSN_FAILED, "5.1.1",
		    "mx.example.net", row->diag, T0 };
		rc[1] = (struct dsn_rcpt){ "c@d", DSN_DELAYED, "4.4.1", NULL,
		    row->diag, T0 };
		d.rcpts = rc;
		d.nrcpt = 2;
		d.random = "tok";
		d.headers = row->headers;
		d.headers_len = row->headers == NULL ? 0 : row->headers_len ?
		    row->headers_len : strlen(row->headers);
		m = dsn_format(&d, &len);
		CHECK_ROW(lines_ok(m, len), row->name);
		CHECK_ROW(mime_ok(m, len, bnd, sizeof(bnd)), row->name);
		CHECK_ROW((strcmp(bnd, "=_postino_tok") != 0) == row->altered,
		    row->name);
		field_names(m, len, names, sizeof(names));
		CHECK_ROW(strcmp(names, "From,To,Subject,Date,Message-ID,"
		    "Auto-Submitted,MIME-Version,Content-Type,") == 0,
		    row->name);
		CHECK_ROW(lines_with(m, len, "X-Evil") == 0, row->name);
		CHECK_ROW(lines_with(m, len, "Content-Type:") == 4, row->name);
		p = part(m, len, 1, &plen);
		CHECK_ROW(p != NULL && status_part_ok(p, plen), row->name);
		CHECK_ROW(p != NULL && lines_with(p, plen,
		    "Final-Recipient:") == 2, row->name);
		free(m);
	}
}

/* A 100 KB header section: the part is a prefix cut at a line end, and
 * the next line would not have fitted. */
static void
test_big_headers(void)
{
	struct dsn	 d = base_dsn();
	const char	*p;
	char		*h, *m;
	size_t		 hlen = 0, len, plen, line = 0;
	unsigned int	 i;

	h = malloc(110000);
	for (i = 0; hlen < 100 * 1024; i++) {
		line = (size_t)snprintf(h + hlen, 110000 - hlen,
		    "X-Fill-%05u: %.*s\r\n", i, (int)(40 + i % 50),
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
		hlen += line;
	}
	d.headers = h;
	d.headers_len = hlen;
	m = dsn_format(&d, &len);
	CHECK(lines_ok(m, len));
	p = part(m, len, 2, &plen);
	CHECK(p != NULL);
	if (p != NULL) {
		CHECK(plen <= DSN_HEADERS_MAX);
		CHECK(plen > DSN_HEADERS_MAX - 110);
		CHECK(memcmp(p, h, plen) == 0);
		CHECK(plen >= 2 && p[plen - 2] == '\r' && p[plen - 1] == '\n');
		/* the next input line would have passed the bound */
		CHECK(plen + (size_t)(strchr(h + plen, '\n') - (h + plen)) + 1 >
		    DSN_HEADERS_MAX);
	}
	free(m);

	/* bare LF: the CRLF form is longer than the input, still bounded */
	for (i = 0; i < hlen; i++)
		if (h[i] == '\r')
			h[i] = ' ';
	m = dsn_format(&d, &len);
	CHECK(lines_ok(m, len));
	p = part(m, len, 2, &plen);
	CHECK(p != NULL && plen <= DSN_HEADERS_MAX &&
	    plen > DSN_HEADERS_MAX - 110);
	free(m);
	free(h);
}

struct crlf_row {
	const char	*in;
	const char	*want;
};

static const struct crlf_row crlf_rows[] = {
	{ "A: 1\nB: 2\n", "A: 1\r\nB: 2\r\n" },
	{ "A: 1\r\nB: 2\n", "A: 1\r\nB: 2\r\n" },
	{ "A: 1\n\tcont\nB: 2\r\n", "A: 1\r\n\tcont\r\nB: 2\r\n" },
	{ "A: 1", "A: 1\r\n" },
	{ "A: 1\r", "A: 1\r\n" },
	{ "A: 1\rB: 2\n", "A: 1?B: 2\r\n" },
	{ "A: 1\r\r\nB: 2\n", "A: 1?\r\nB: 2\r\n" },
	{ "A: 1\n\nbody\n", "A: 1\r\n" },
	{ "A: 1\r\n\nbody\n", "A: 1\r\n" },
	{ "\nA: 1\n", "" },
	{ "", "" },
	{ "A:\x01\x7f\tb\n", "A:??\tb\r\n" },
};

static void
test_bare_lf(void)
{
	struct dsn	 d = base_dsn();
	const char	*p;
	char		 bnd[100], *m;
	size_t		 i, len, plen;

	for (i = 0; i < NROWS(crlf_rows); i++) {
		d.headers = crlf_rows[i].in;
		d.headers_len = strlen(crlf_rows[i].in);
		m = dsn_format(&d, &len);
		CHECK_ROW(lines_ok(m, len), crlf_rows[i].in);
		CHECK_ROW(mime_ok(m, len, bnd, sizeof(bnd)), crlf_rows[i].in);
		p = part(m, len, 2, &plen);
		CHECK_ROW(p != NULL && plen == strlen(crlf_rows[i].want) &&
		    memcmp(p, crlf_rows[i].want, plen) == 0, crlf_rows[i].in);
		free(m);
	}
}

/* 8-bit header octets are kept and declared; in fields they are not. */
static void
test_8bit(void)
{
	static const struct dsn_rcpt	rc = { "j\xc3\xb6rg@example.net",
	    DSN_FAILED, "5.1.1", NULL, "550 unknown \xc3\xb6", 0 };
	static const char		h[] = "Subject: caf\xc3\xa9\r\n";
	struct dsn	 d = base_dsn();
	const char	*p;
	char		*m;
	size_t		 len, plen;

	d.rcpts = &rc;
	d.nrcpt = 1;
	d.headers = h;
	d.headers_len = sizeof(h) - 1;
	m = dsn_format(&d, &len);
	CHECK(lines_ok(m, len));
	CHECK_INT(lines_with(m, len, "Content-Transfer-Encoding: 8bit\r\n"),
	    2);
	p = part(m, len, 2, &plen);
	CHECK(p != NULL && plen == sizeof(h) - 1 && memcmp(p, h, plen) == 0);
	p = part(m, len, 1, &plen);
	CHECK(p != NULL && lines_with(p, plen,
	    "Final-Recipient: rfc822; j??rg@example.net\r\n") == 1);
	CHECK(p != NULL && lines_with(p, plen,
	    "Diagnostic-Code: smtp; 550 unknown ??\r\n") == 1);
	free(m);
	d.headers = "Subject: cafe\r\n";
	d.headers_len = strlen(d.headers);
	m = dsn_format(&d, &len);
	CHECK_INT(count_in(m, len, "Content-Transfer-Encoding"), 0);
	free(m);
}

/* Undoes the folding of a quoted header line. */
static size_t
unfold(const char *p, size_t len, char *out)
{
	size_t	i, o = 0;

	for (i = 0; i < len; i++) {
		if (i + 2 < len && memcmp(p + i, "\r\n ", 3) == 0) {
			i += 2;
			continue;
		}
		out[o++] = p[i];
	}
	return o;
}

static void
check_diag_bound(const char *m, size_t len)
{
	const char	*p, *end;
	size_t		 plen, total = 0, n;

	p = part(m, len, 1, &plen);
	CHECK(p != NULL);
	if (p == NULL || (p = memmem(p, plen, "Diagnostic-Code: ",
	    17)) == NULL)
		return;
	p = strchr(p, ';') + 2;
	for (;;) {
		end = strstr(p, "\r\n");
		n = (size_t)(end - p);
		CHECK(n <= DSN_DIAG_LINE_MAX);
		total += n + 1;
		if (end[2] != ' ')
			break;
		p = end + 3;
	}
	CHECK(total - 1 <= DSN_DIAG_MAX);
	CHECK(total - 1 > DSN_DIAG_MAX - DSN_DIAG_LINE_MAX);
}

/* Long everything: every line of the output is at most 998 octets. */
static void
test_line_bounds(void)
{
	struct dsn_rcpt	 rc;
	struct dsn	 d = base_dsn();
	const char	*p;
	char		*big, *lines, *hdr, *m, *flat, bnd[100];
	size_t		 i, len, plen, flen;

	big = malloc(10001);
	memset(big, 'd', 10000);
	big[10000] = '\0';
	lines = malloc(30001);
	for (i = 0; i < 30000; i++)
		lines[i] = i % 100 == 99 ? '\n' : 'l';
	lines[30000] = '\0';
	hdr = malloc(5001);
	memcpy(hdr, "X-Long: ", 8);
	memset(hdr + 8, 'h', 4992);
	hdr[5000] = '\0';

	rc = (struct dsn_rcpt){ big, DSN_FAILED, big, big, big, T0 };
	d.rcpts = &rc;
	d.nrcpt = 1;
	d.reporting_mta = d.qid = d.from = d.random = big;
	d.headers = hdr;
	d.headers_len = 5000;
	m = dsn_format(&d, &len);
	CHECK(lines_ok(m, len));
	CHECK(mime_ok(m, len, bnd, sizeof(bnd)));
	/* the header line is folded, not cut */
	p = part(m, len, 2, &plen);
	flat = malloc(plen + 1);
	flen = p != NULL ? unfold(p, plen, flat) : 0;
	CHECK(flen == 5002 && memcmp(flat, hdr, 5000) == 0);
	CHECK(p != NULL && lines_with(p, plen, " h") == 5);
	free(flat);
	free(m);

	rc.diagnostic = lines;	/* 300 lines of 99 */
	m = dsn_format(&d, &len);
	CHECK(lines_ok(m, len));
	check_diag_bound(m, len);
	free(m);
	for (i = 0; i < 30000; i++)
		lines[i] = i % 2000 == 1999 ? '\n' : 'l';
	m = dsn_format(&d, &len);	/* 15 lines of 1999 */
	CHECK(lines_ok(m, len));
	check_diag_bound(m, len);
	free(m);
	free(big);
	free(lines);
	free(hdr);
}

/* NULL and empty fields: no crash, a well-formed report. */
static void
test_empty_fields(void)
{
	static const struct dsn_rcpt	rc = { NULL, DSN_FAILED, "5.1.1\r\nX",
	    NULL, "", 0 };
	struct dsn	 d;
	char		 bnd[100], *m;
	size_t		 len;

	memset(&d, 0, sizeof(d));
	d.now = T0;
	m = dsn_format(&d, &len);
	CHECK(lines_ok(m, len));
	CHECK(mime_ok(m, len, bnd, sizeof(bnd)));
	CHECK_STR(bnd, "=_postino_1700000000");
	CHECK_INT(lines_with(m, len, "From: Mail Delivery System "
	    "<MAILER-DAEMON@localhost>\r\n"), 1);
	CHECK_INT(lines_with(m, len, "To: undisclosed-recipients:;\r\n"), 1);
	CHECK_INT(lines_with(m, len, "Message-ID: <1700000000@localhost>\r\n"),
	    1);
	CHECK_INT(lines_with(m, len, "X-Postino-Queue-ID:"), 0);
	CHECK_INT(lines_with(m, len, "Arrival-Date:"), 0);
	free(m);

	d.rcpts = &rc;
	d.nrcpt = 1;
	d.random = "..a..b=c.";
	d.headers_len = 10;	/* with headers NULL */
	m = dsn_format(&d, &len);
	CHECK(lines_ok(m, len));
	CHECK(mime_ok(m, len, bnd, sizeof(bnd)));
	CHECK_STR(bnd, "=_postino_a.b_c");
	CHECK_INT(lines_with(m, len, "Status: 5.0.0\r\n"), 1);
	CHECK_INT(lines_with(m, len, "Final-Recipient: rfc822; \r\n"), 1);
	CHECK_INT(lines_with(m, len, "<>: delivery failed, status 5.0.0\r\n"),
	    1);
	CHECK_INT(lines_with(m, len, "Diagnostic-Code:"), 0);
	CHECK_INT(lines_with(m, len, "Last-Attempt-Date:"), 0);
	free(m);
}

/* The boundary is altered past every form the headers already hold. */
static void
test_boundary_taken(void)
{
	static const char	h[] = "X-A: =_postino_tok\r\n"
	    "X-B: =_postino_tok_1\r\nX-C: x=_postino_tok_2x\r\n";
	struct dsn	d = base_dsn();
	char		bnd[100], *m;
	size_t		len;

	d.random = "tok";
	d.headers = h;
	d.headers_len = sizeof(h) - 1;
	m = dsn_format(&d, &len);
	get_boundary(m, bnd, sizeof(bnd));
	CHECK_STR(bnd, "=_postino_tok_3");
	CHECK(mime_ok(m, len, bnd, sizeof(bnd)));
	CHECK_STR(bnd, "=_postino_tok_3");
	free(m);
	d.headers_len = 0;
	m = dsn_format(&d, &len);
	get_boundary(m, bnd, sizeof(bnd));
	CHECK_STR(bnd, "=_postino_tok");
	free(m);
}

static const struct {
	const char	*msg;
	size_t		 want;
} hlen_rows[] = {
	{ "A: 1\r\nB: 2\r\n\r\nbody\r\n", 12 },
	{ "A: 1\nB: 2\n\nbody\n", 10 },
	{ "A: 1\r\n\nbody", 6 },
	{ "A: 1\n\r\nbody", 5 },
	{ "A: 1\r\nB: 2\r\n", 12 },
	{ "A: 1\r\n\tcont\r\n", 13 },
	{ "A: 1", 4 },
	{ "A: 1\r\n\r", 7 },
	{ "A: 1\r\r\nB: 2", 11 },
	{ "\r\nbody", 0 },
	{ "\nbody", 0 },
	{ "", 0 },
};

static void
test_header_length(void)
{
	size_t	i;

	for (i = 0; i < NROWS(hlen_rows); i++)
		CHECK_ROW(dsn_header_length(hlen_rows[i].msg,
		    strlen(hlen_rows[i].msg)) == hlen_rows[i].want,
		    hlen_rows[i].msg);
	CHECK_INT(dsn_header_length(NULL, 0), 0);
	/* the length bounds the search */
	CHECK_INT(dsn_header_length("A: 1\r\n\r\n", 6), 6);
}

int
main(void)
{
	RUN(test_golden);
	RUN(test_delay);
	RUN(test_injection);
	RUN(test_big_headers);
	RUN(test_bare_lf);
	RUN(test_8bit);
	RUN(test_line_bounds);
	RUN(test_empty_fields);
	RUN(test_boundary_taken);
	RUN(test_header_length);
	return test_done();
}

/*
 * fuzz_dsn.c - libFuzzer target for dsn.c.  The first octet chooses the
 * actions, which fields are NULL and whether the header section is
 * repeated past DSN_HEADERS_MAX; the rest is the diagnostic, a NUL, the
 * recipient, a NUL, and the header section (NULs and all).  Checks that
 * the report has CRLF line ends only, no line over 998 octets, its own
 * header fields and no others, three delimiter lines and one close
 * delimiter at the very end, the boundary nowhere else in the body, and
 * a delivery-status part of known fields, without blank continuations.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"

#define NRCPT		2
#define BIG		(DSN_HEADERS_MAX + 8192)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The header octets repeated past DSN_HEADERS_MAX, for long lines and
 * the cut, which small inputs never reach. */
static char *
amplify(const char *h, size_t len, size_t *len_r)
{
	char	*big;
	size_t	 off;

	if ((big = malloc(BIG)) == NULL)
		abort();
	for (off = 0; off < BIG; off += len)
		memcpy(big + off, h, len < BIG - off ? len : BIG - off);
	*len_r = BIG;
	return big;
}

static void
check_lines(const char *m, size_t len)
{
	size_t	i, col = 0;

	if (len < 2 || m[len - 2] != '\r' || m[len - 1] != '\n' ||
	    m[len] != '\0')
		abort();
	for (i = 0; i < len; i++) {
		if (m[i] == '\0')
			abort();
		if (m[i] == '\r' && m[i + 1] != '\n')
			abort();
		if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
			abort();
		if (m[i] == '\r' || m[i] == '\n') {
			if (col > 998)
				abort();
			col = 0;
		} else
			col++;
	}
}

static int
count(const char *m, size_t len, const char *s, bool line_start)
{
	const char	*p = m, *end = m + len;
	int		 n = 0;

	while ((p = memmem(p, (size_t)(end - p), s, strlen(s))) != NULL) {
		if (!line_start || p == m || p[-1] == '\n')
			n++;
		p++;
	}
	return n;
}

/* The report's own header: these fields, in this order, and no more. */
static void
check_top(const char *m, size_t len)
{
	static const char *const names[] = { "From: ", "To: ", "Subject: ",
	    "Date: ", "Message-ID: ", "Auto-Submitted: ", "MIME-Version: ",
	    "Content-Type: ", "Content-Transfer-Encoding: " };
	size_t	 hlen = dsn_header_length(m, len), i = 0, k = 0;

	if (hlen == len)
		abort();
	while (i < hlen) {
		if (m[i] != '\t') {
			if (k == sizeof(names) / sizeof(names[0]) ||
			    strncmp(m + i, names[k], strlen(names[k])) != 0)
				abort();
			k++;
		}
		i = (size_t)((const char *)memchr(m + i, '\n', hlen - i) - m) +
		    1;
	}
	if (k < 8)
		abort();
}

static bool
status_line_ok(const char *p)
{
	static const char *const names[] = { "Reporting-MTA: ",
	    "X-Postino-Queue-ID: ", "Arrival-Date: ", "Final-Recipient: ",
	    "Original-Recipient: ", "Action: ", "Status: ", "Remote-MTA: ",
	    "Diagnostic-Code: ", "Last-Attempt-Date: ", "Will-Retry-Until: " };
	size_t	i;

	if (p[0] == '\r' && p[1] == '\n')
		return true;
	if (p[0] == ' ')		/* a continuation, never blank */
		return p[strspn(p, " ")] != '\r';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(p, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

static void
check_mime(const char *m, size_t len)
{
	char		 bnd[80], delim[90], close[96];
	const char	*p, *q, *s2, *s3;
	size_t		 hlen = dsn_header_length(m, len);

	if ((p = strstr(m, "\r\n\tboundary=\"")) == NULL)
		abort();
	p += strlen("\r\n\tboundary=\"");
	if ((q = strchr(p, '"')) == NULL || q - p < 10 || q - p > 70)
		abort();
	memcpy(bnd, p, (size_t)(q - p));
	bnd[q - p] = '\0';
	snprintf(delim, sizeof(delim), "--%s\r\n", bnd);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", bnd);
	if (count(m, len, delim, true) != 3 ||
	    count(m, len, close, false) != 1 ||
	    strcmp(m + len - strlen(close), close) != 0 ||
	    count(m + hlen, len - hlen, bnd, false) != 4)
		abort();
	/* part 2 lies between the second and third delimiter lines */
	s2 = strstr(strstr(m, delim) + 1, delim);
	s3 = strstr(s2 + 1, delim);
	p = strstr(s2, "\r\n\r\n") + 4;
	if (count(p, (size_t)(s3 - p), "Final-Recipient: ", true) != NRCPT)
		abort();
	for (; p < s3; p = strchr(p, '\n') + 1)
		if (!status_line_ok(p))
			abort();
	/* part 3, between its header and the close delimiter */
	p = strstr(s3, "\r\n\r\n") + 4;
	if ((size_t)(m + len - strlen(close) - p) > DSN_HEADERS_MAX)
		abort();
}

static void
check_header_length(const char *h, size_t len)
{
	size_t	n = dsn_header_length(h, len);

	if (n > len)
		abort();
	if (n < len && (n > 0 && h[n - 1] != '\n'))
		abort();
	if (n < len && h[n] != '\n' &&
	    !(h[n] == '\r' && n + 1 < len && h[n + 1] == '\n'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn_rcpt	 rc[NRCPT];
	struct dsn	 d;
	char		*in, *diag, *rcpt, *hdr, *m, *end, *big = NULL;
	size_t		 len, hlen;
	uint8_t		 flags;

	if (size == 0)
		return 0;
	flags = data[0];
	in = malloc(size + 2);
	memcpy(in, data + 1, size - 1);
	in[size - 1] = in[size] = in[size + 1] = '\0';
	end = in + size - 1;
	diag = in;
	rcpt = diag + strlen(diag) + 1;
	hdr = rcpt < end ? rcpt + strlen(rcpt) + 1 : end;
	if (hdr > end)
		hdr = end;

	memset(rc, 0, sizeof(rc));
	rc[0] = (struct dsn_rcpt){ rcpt, (flags & 1) ? DSN_DELAYED :
	    DSN_FAILED, (flags & 4) ? diag : "5.1.1",
	    (flags & 4) ? NULL : "mx.example.net", diag, 1700000000 };
	rc[1] = (struct dsn_rcpt){ diag, (flags & 2) ? DSN_DELAYED :
	    DSN_FAILED, rcpt, rcpt, (flags & 4) ? NULL : rcpt, 0 };
	memset(&d, 0, sizeof(d));
	d.reporting_mta = "mail.example.com";
	d.qid = (flags & 8) ? rcpt : "4F2A9C";
	d.from = (flags & 8) ? diag : "alice@example.com";
	d.arrival = 1700000000;
	d.now = 1700003800;
	d.retry_days = flags >> 6;
	d.rcpts = rc;
	d.nrcpt = NRCPT;
	hlen = (size_t)(end - hdr);
	if ((flags & 32) && hlen > 0)
		hdr = big = amplify(hdr, hlen, &hlen);
	d.headers = (flags & 16) ? NULL : hdr;
	d.headers_len = hlen;
	d.random = (flags & 8) ? rcpt : "fz";

	m = dsn_format(&d, &len);
	if (strlen(m) != len)
		abort();
	check_lines(m, len);
	check_top(m, len);
	check_mime(m, len);
	free(m);
	check_header_length(hdr, hlen);
	free(big);
	free(in);
	return 0;
}

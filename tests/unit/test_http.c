/*
 * test_http.c - lib/http.c: request heads as the metrics endpoint reads
 * them (the request line's three parts, header fields' shape, the end
 * of the head, the bounds), and every prefix of a good head is "more".
 */
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

static void
test_heads(void)
{
	static const struct {
		const char	*in;
		enum http_parse	 want;
		const char	*method, *target;
		int		 minor;
		size_t		 head_len;
	} rows[] = {
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", HTTP_DONE,
		    "GET", "/metrics", 1, 34 },
		{ "GET /metrics HTTP/1.0\r\n\r\n", HTTP_DONE, "GET",
		    "/metrics", 0, 25 },
		/* bare LF ends lines too (RFC 9112 2.2); after: ignored */
		{ "GET /m?a=b HTTP/1.1\nA: b\n\nBODY", HTTP_DONE, "GET",
		    "/m?a=b", 1, 26 },
		{ "POST /metrics HTTP/1.1\r\n\r\n", HTTP_DONE, "POST",
		    "/metrics", 1, 26 },
		{ "GET /metrics HTTP/1.1\r\nA:\r\nB:\tv v\r\n\r\n", HTTP_DONE,
		    "GET", "/metrics", 1, 37 },
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n", HTTP_MORE, NULL,
		    NULL, 0, 0 },
		{ "GET /metrics HTTP/1.1", HTTP_MORE, NULL, NULL, 0, 0 },
		{ "", HTTP_MORE, NULL, NULL, 0, 0 },
		{ "GARBAGE\r\n\r\n", HTTP_BAD, NULL, NULL, 0, 0 },
		{ "get /metrics HTTP/1.1\r\n\r\n", HTTP_BAD, NULL, NULL, 0,
		    0 },
		{ "GET metrics HTTP/1.1\r\n\r\n", HTTP_BAD, NULL, NULL, 0, 0 },
		{ "GET  /metrics HTTP/1.1\r\n\r\n", HTTP_BAD, NULL, NULL, 0,
		    0 },
		{ "GET /metrics HTTP/1.1 \r\n\r\n", HTTP_BAD, NULL, NULL, 0,
		    0 },
		{ "GET /metrics HTTP/2.0\r\n\r\n", HTTP_BAD, NULL, NULL, 0,
		    0 },
		{ "GET /metrics HTTP/1.10\r\n\r\n", HTTP_BAD, NULL, NULL, 0,
		    0 },
		{ "GET /metrics\r\n\r\n", HTTP_BAD, NULL, NULL, 0, 0 },
		{ "GET /a\x7f HTTP/1.1\r\n\r\n", HTTP_BAD, NULL, NULL, 0, 0 },
		{ "GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n", HTTP_BAD, NULL,
		    NULL, 0, 0 },
		{ "GET /metrics HTTP/1.1\r\n: v\r\n\r\n", HTTP_BAD, NULL,
		    NULL, 0, 0 },
		{ "GET /metrics HTTP/1.1\r\nA : v\r\n\r\n", HTTP_BAD, NULL,
		    NULL, 0, 0 },
		/* obsolete line folding */
		{ "GET /metrics HTTP/1.1\r\nA: v\r\n w\r\n\r\n", HTTP_BAD,
		    NULL, NULL, 0, 0 },
		{ "GET /metrics HTTP/1.1\r\nA: \x01\r\n\r\n", HTTP_BAD, NULL,
		    NULL, 0, 0 },
		{ "GETTINGVERYLONGMETHOD /m HTTP/1.1\r\n\r\n", HTTP_BAD,
		    NULL, NULL, 0, 0 },
	};
	struct http_request	r;
	size_t			i;

	for (i = 0; i < NROWS(rows); i++) {
		CHECK_ROW(http_request_parse(rows[i].in, strlen(rows[i].in),
		    &r) == rows[i].want, rows[i].in);
		if (rows[i].want != HTTP_DONE)
			continue;
		CHECK_STR(r.method, rows[i].method);
		CHECK_STR(r.target, rows[i].target);
		CHECK_INT(r.minor, rows[i].minor);
		CHECK_INT(r.head_len, rows[i].head_len);
	}
}

/* NUL anywhere, and the length bounds of the fixed fields. */
static void
test_bounds(void)
{
	struct http_request	r;
	char			buf[600], a[HTTP_TARGET_MAX + 1];
	int			n;

	CHECK(http_request_parse("GET /a\0b HTTP/1.1\r\n\r\n", 21, &r) ==
	    HTTP_BAD);
	CHECK(http_request_parse("GET /a\0", 7, &r) == HTTP_BAD);
	CHECK(http_request_parse("GET /a HTTP/1.1\r\nA: \0", 21, &r) ==
	    HTTP_BAD);
	memset(a, 'a', sizeof(a));
	n = snprintf(buf, sizeof(buf), "GET /%.*s HTTP/1.1\r\n\r\n",
	    HTTP_TARGET_MAX - 1, a);
	CHECK(http_request_parse(buf, (size_t)n, &r) == HTTP_DONE);
	CHECK_INT(strlen(r.target), HTTP_TARGET_MAX);
	n = snprintf(buf, sizeof(buf), "GET /%.*s HTTP/1.1\r\n\r\n",
	    HTTP_TARGET_MAX, a);
	CHECK(http_request_parse(buf, (size_t)n, &r) == HTTP_BAD);
}

/* Whatever arrives in pieces is "more" until the empty line. */
static void
test_prefixes(void)
{
	static const char	good[] = "GET /metrics HTTP/1.1\r\n"
				    "Host: 127.0.0.1:9325\r\nAccept: */*\r\n\r\n";
	struct http_request	r;
	size_t			i;

	for (i = 0; i < sizeof(good) - 2; i++)
		CHECK(http_request_parse(good, i, &r) == HTTP_MORE);
	CHECK(http_request_parse(good, sizeof(good) - 1, &r) == HTTP_DONE);
}

int
main(void)
{
	RUN(test_heads);
	RUN(test_bounds);
	RUN(test_prefixes);
	return test_done();
}

/*
 * http.h - the head of an HTTP/1.0 or 1.1 request (RFC 9112 3, 5), as
 * far as a small read-only endpoint needs it: the method and the
 * target.  Header fields are checked for shape and skipped.
 *
 * Pure code, no I/O and no allocation: the caller bounds what it has
 * read and passes all of it each time.  Everything is untrusted.
 */
#ifndef LIB_HTTP_H
#define LIB_HTTP_H

#include <stddef.h>

#define HTTP_METHOD_MAX	15
#define HTTP_TARGET_MAX	255

struct http_request {
	char	method[HTTP_METHOD_MAX + 1];
	char	target[HTTP_TARGET_MAX + 1];	/* origin-form, as sent */
	int	minor;				/* HTTP/1.minor */
	size_t	head_len;	/* octets up to and with the empty line */
};

enum http_parse {
	HTTP_MORE,	/* the empty line that ends the head is not there yet */
	HTTP_DONE,	/* a well-formed head: *r is filled */
	HTTP_BAD	/* malformed: answer 400 and close */
};

/*
 * Parse the request head at the start of buf (len octets, not
 * NUL-terminated; a NUL anywhere in the head is malformed).  Lines end
 * in CRLF or a bare LF (RFC 9112 2.2).  The request line is METHOD SP
 * TARGET SP HTTP/1.0|1.1, the method upper-case letters, the target
 * visible ASCII starting with "/"; each header field is NAME ":" VALUE
 * without control characters but HTAB, and obsolete line folding is
 * refused.  Over the maxima is HTTP_BAD.
 */
enum http_parse	http_request_parse(const char *buf, size_t len,
		    struct http_request *r);

#endif

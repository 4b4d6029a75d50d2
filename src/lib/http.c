/*
 * http.c - the head of an HTTP/1.x request (see http.h).
 *
 * Every octet comes from an unauthenticated peer.  The parser copies
 * only the method and the target, each into a fixed field after its
 * length was checked, and reads nothing past len.
 */
#include <stdbool.h>
#include <string.h>

#include "http.h"

/* The length of the line at p (its end of line excluded), and in *next
 * where the next one starts; -1 when no LF is within end. */
static long
line_len(const char *p, const char *end, const char **next)
{
	const char	*lf = memchr(p, '\n', (size_t)(end - p));

	if (lf == NULL)
		return -1;
	*next = lf + 1;
	if (lf > p && lf[-1] == '\r')
		lf--;
	return lf - p;
}

static bool
field_ok(const char *p, size_t len)
{
	const char	*colon = memchr(p, ':', len);
	size_t		 i;

	/* no name, or obsolete folding (RFC 9112 5.2) */
	if (colon == NULL || colon == p || *p == ' ' || *p == '\t')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
		if (p + i < colon && (c == ' ' || c == '\t'))
			return false;	/* RFC 9112 5.1: no space before ':' */
	}
	return true;
}

/* Copy the word ending at the next SP (or at end) into dst. */
static const char *
word(const char *p, const char *end, char *dst, size_t size)
{
	const char	*sp = memchr(p, ' ', (size_t)(end - p));
	size_t		 n = (size_t)((sp != NULL ? sp : end) - p);

	if (n == 0 || n >= size)
		return NULL;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return sp != NULL ? sp + 1 : end;
}

static bool
request_line(const char *p, size_t len, struct http_request *r)
{
	const char	*end = p + len;
	size_t		 i;

	if ((p = word(p, end, r->method, sizeof(r->method))) == NULL ||
	    p == end ||
	    (p = word(p, end, r->target, sizeof(r->target))) == NULL)
		return false;
	for (i = 0; r->method[i] != '\0'; i++)
		if (r->method[i] < 'A' || r->method[i] > 'Z')
			return false;
	if (r->target[0] != '/')
		return false;
	for (i = 0; r->target[i] != '\0'; i++)
		if (r->target[i] <= 0x20 || r->target[i] >= 0x7f)
			return false;
	if (end - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 ||
	    (p[7] != '0' && p[7] != '1'))
		return false;
	r->minor = p[7] - '0';
	return true;
}

enum http_parse
http_request_parse(const char *buf, size_t len, struct http_request *r)
{
	const char	*p = buf, *end = buf + len, *next;
	long		 n;

	memset(r, 0, sizeof(*r));
	if ((n = line_len(p, end, &next)) == -1)
		return memchr(buf, '\0', len) != NULL ? HTTP_BAD : HTTP_MORE;
	if (memchr(p, '\0', (size_t)n) != NULL ||
	    !request_line(p, (size_t)n, r))
		return HTTP_BAD;
	for (p = next; (n = line_len(p, end, &next)) != -1; p = next) {
		if (n == 0) {
			r->head_len = (size_t)(next - buf);
			return HTTP_DONE;
		}
		if (!field_ok(p, (size_t)n))
			return HTTP_BAD;
	}
	return memchr(p, '\0', (size_t)(end - p)) != NULL ? HTTP_BAD :
	    HTTP_MORE;
}

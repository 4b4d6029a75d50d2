/*
 * clamd_reply.c - reading clamd's answer to zINSTREAM (clamd_reply.h).
 *
 * Used by the store role's clamd client (store/clamd.c) on a worker
 * thread, and by net to check the virus name store sends; the input is
 * whatever clamd, a peer, wrote.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "clamd_reply.h"

#define PREFIX	"stream: "
#define SUFFIX_FOUND	" FOUND"
#define SUFFIX_ERROR	" ERROR"

size_t
clamd_text_clean(char *dst, size_t size, const void *src, size_t len)
{
	const uint8_t	*s = src;
	size_t		 i;

	for (i = 0; i < len && i + 1 < size; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
	dst[i] = '\0';
	return i;
}

static bool
has_prefix(const uint8_t *b, size_t n, const char *p)
{
	size_t	k = strlen(p);

	return n >= k && memcmp(b, p, k) == 0;
}

static bool
has_suffix(const uint8_t *b, size_t n, const char *s)
{
	size_t	k = strlen(s);

	return n >= k && memcmp(b + n - k, s, k) == 0;
}

static bool
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static bool
is_hex(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The length of a name less an ExtendedDetectionInfo "(HEX:DIGITS)". */
static size_t
name_len(const uint8_t *b, size_t n)
{
	size_t	i;

	if (n == 0 || b[n - 1] != ')')
		return n;
	for (i = n - 1; i > 0 && is_digit(b[i - 1]); i--)
		;
	if (i == n - 1 || i < 2 || b[i - 1] != ':')
		return n;
	for (i--; i > 0 && is_hex(b[i - 1]); i--)
		;
	if (b[i] == ':' || i < 2 || b[i - 1] != '(')
		return n;
	return i - 1;
}

/* CLAMD_INFECTED, when b is "stream: NAME FOUND" with a name. */
static bool
parse_found(const uint8_t *b, size_t n, struct clamd_reply *r)
{
	size_t	plen = strlen(PREFIX), slen = strlen(SUFFIX_FOUND), len;

	if (!has_prefix(b, n, PREFIX) || !has_suffix(b, n, SUFFIX_FOUND) ||
	    n < plen + slen)
		return false;
	b += plen;
	len = n - plen - slen;
	while (len > 0 && b[0] == ' ') {
		b++;
		len--;
	}
	while (len > 0 && b[len - 1] == ' ')
		len--;
	if ((len = name_len(b, len)) == 0)
		return false;
	r->verdict = CLAMD_INFECTED;
	clamd_text_clean(r->text, CLAMD_NAME_MAX + 1, b, len);
	return true;
}

void
clamd_reply_parse(const uint8_t *buf, size_t len, struct clamd_reply *r)
{
	static const char	 unexpected[] = "unexpected reply: ";
	size_t			 n, k;

	memset(r, 0, sizeof(*r));
	for (n = 0; n < len && buf[n] != '\0' && buf[n] != '\n'; n++)
		;
	while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n == strlen(PREFIX "OK") && has_prefix(buf, n, PREFIX "OK")) {
		r->verdict = CLAMD_CLEAN;
		return;
	}
	if (parse_found(buf, n, r))
		return;
	r->verdict = CLAMD_FAILED;
	if (has_suffix(buf, n, SUFFIX_ERROR) && n > strlen(SUFFIX_ERROR)) {
		n -= strlen(SUFFIX_ERROR);
		if (has_prefix(buf, n, PREFIX) && n > strlen(PREFIX)) {
			buf += strlen(PREFIX);
			n -= strlen(PREFIX);
		}
		clamd_text_clean(r->text, sizeof(r->text), buf, n);
		return;
	}
	if (n == 0) {
		snprintf(r->text, sizeof(r->text), "empty reply");
		return;
	}
	k = strlen(unexpected);
	memcpy(r->text, unexpected, k);
	clamd_text_clean(r->text + k, sizeof(r->text) - k, buf, n);
}

/*
 * fuzz_smtp_reply.c - libFuzzer target for smtp_reply.c: the input,
 * split at LF, is a server's reply lines and EHLO keywords, as the
 * outbound client reads them.  Invariants: the text stays bounded and
 * NUL-terminated, has no control octet, a complete reply has a code of
 * 200..599 and a status of its class.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct smtp_reply *r, int res)
{
	size_t	i;

	if (r->len >= sizeof(r->text) || r->text[r->len] != '\0' ||
	    strlen(r->text) != r->len)
		abort();
	for (i = 0; i < r->len; i++)
		if ((unsigned char)r->text[i] < 0x20 || r->text[i] == 0x7f)
			abort();
	if (res == 1 && (r->code < 200 || r->code > 599 ||
	    r->status[0] != r->text[0] || r->status[1] != '.'))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply	 r;
	struct smtp_ehlo	 e;
	const char		*p = (const char *)data, *end = p + size, *nl;
	int			 res;

	smtp_reply_init(&r);
	smtp_ehlo_init(&e);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		res = smtp_reply_add(&r, p, (size_t)(nl - p));
		check(&r, res);
		if (res != 0)
			smtp_reply_init(&r);
		if (nl - p > 4)
			smtp_ehlo_keyword(&e, p + 4, (size_t)(nl - p - 4));
		p = nl + 1;
	}
	return 0;
}

/*
 * fuzz_http.c - libFuzzer target for lib/http.c: the input is a request
 * head as the metrics endpoint reads it.  Invariants: a done head lies
 * within the input and ends in an empty line, its method is upper-case
 * letters and its target visible ASCII starting with "/", both
 * NUL-terminated within their fields; and the answer for the whole
 * input does not change when bytes follow a done head.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct http_request *r, const char *p, size_t size)
{
	size_t	i;

	if (r->head_len == 0 || r->head_len > size || p[r->head_len - 1] !=
	    '\n')
		abort();
	if (memchr(r->method, '\0', sizeof(r->method)) == NULL ||
	    memchr(r->target, '\0', sizeof(r->target)) == NULL ||
	    r->method[0] == '\0' || r->target[0] != '/')
		abort();
	for (i = 0; r->method[i] != '\0'; i++)
		if (r->method[i] < 'A' || r->method[i] > 'Z')
			abort();
	for (i = 0; r->target[i] != '\0'; i++)
		if (r->target[i] <= ' ' || r->target[i] >= 0x7f)
			abort();
	if (r->minor != 0 && r->minor != 1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request	 r, r2;
	const char		*p = (const char *)data;

	if (http_request_parse(p, size, &r) != HTTP_DONE)
		return 0;
	check(&r, p, size);
	if (http_request_parse(p, r.head_len, &r2) != HTTP_DONE ||
	    memcmp(&r, &r2, sizeof(r)) != 0)
		abort();
	return 0;
}

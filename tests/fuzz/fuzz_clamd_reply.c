/*
 * fuzz_clamd_reply.c - libFuzzer target for clamd_reply.c: the input is
 * what clamd (a peer) wrote.  Invariants: the text is NUL-terminated,
 * printable ASCII and bounded (a name by CLAMD_NAME_MAX); empty exactly
 * when the message is clean; a name found is the reply's text between
 * "stream: " and " FOUND", so an input without them is never infected;
 * and net's second clean of a name changes nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clamd_reply.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *t, size_t max)
{
	size_t	i, n = strnlen(t, CLAMD_TEXT_MAX + 1);

	if (n > max)
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct clamd_reply	r;
	char			again[CLAMD_NAME_MAX + 1];

	clamd_reply_parse(data, size, &r);
	switch (r.verdict) {
	case CLAMD_CLEAN:
		if (r.text[0] != '\0' || size < 10 ||
		    memcmp(data, "stream: OK", 10) != 0)
			abort();
		break;
	case CLAMD_INFECTED:
		check_text(r.text, CLAMD_NAME_MAX);
		if (r.text[0] == '\0' || size < 14 ||
		    memcmp(data, "stream: ", 8) != 0 ||
		    memmem(data, size, " FOUND", 6) == NULL)
			abort();
		clamd_text_clean(again, sizeof(again), r.text, strlen(r.text));
		if (strcmp(again, r.text) != 0)
			abort();
		break;
	case CLAMD_FAILED:
		check_text(r.text, CLAMD_TEXT_MAX);
		if (r.text[0] == '\0')
			abort();
		break;
	default:
		abort();
	}
	return 0;
}

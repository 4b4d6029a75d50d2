/*
 * fuzz_conf.c - libFuzzer target for conf.c: conf_parse() on arbitrary
 * bytes must never crash, leak or write more than one line of error;
 * a file it accepts must dump and parse back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf	*c = NULL, *c2 = NULL;
	char		 err[512], *d = NULL;
	size_t		 n;
	FILE		*f;

	if (conf_parse("/etc/postino/fuzz.conf", (const char *)data, size,
	    &c, err, sizeof(err)) == -1) {
		if (c != NULL || strchr(err, '\n') != NULL)
			abort();
		return 0;
	}
	if ((f = open_memstream(&d, &n)) == NULL)
		abort();
	conf_dump(c, f);
	fclose(f);
	if (conf_parse("/etc/postino/fuzz.conf", d, n, &c2, err,
	    sizeof(err)) == -1)
		abort();	/* the dump must read back */
	conf_free(&c2);
	conf_free(&c);
	free(d);
	return 0;
}

/*
 * fuzz_addr.c - libFuzzer target for addr.c.  The first octet chooses
 * UTF-8 on or off; the rest is a path.  Checks the bounds of what is
 * stored and that addr_format() output parses back to the same address.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s, size_t max)
{
	size_t	i, len = strnlen(s, max + 1);

	if (len > max)
		abort();
	for (i = 0; i < len; i++)
		if ((uint8_t)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

static void
check_roundtrip(const struct mailaddr *a, bool utf8)
{
	struct mailaddr	 b;
	const char	*end, *errstr;
	char		 buf[ADDR_PATH_MAX + 1], path[ADDR_PATH_MAX + 3];
	int		 n;

	if ((n = addr_format(a, buf, sizeof(buf))) < 0)
		abort();
	if ((size_t)n != strlen(buf) || n > ADDR_PATH_MAX - 2)
		abort();
	snprintf(path, sizeof(path), "<%s>", buf);
	if (addr_parse_path(path, utf8, &b, &end, &errstr) == -1)
		abort();
	if (*end != '\0' || strcmp(a->local, b.local) != 0 ||
	    strcmp(a->domain, b.domain) != 0 ||
	    (a->flags & ~(ADDR_F_QUOTED | ADDR_F_ROUTE)) !=
	    (b.flags & ~ADDR_F_QUOTED))
		abort();
	if (addr_format(&b, path, sizeof(path)) != n || strcmp(buf, path))
		abort();
	if (n > 0 && addr_format(a, buf, (size_t)n) != -1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mailaddr	 a;
	const char	*end, *errstr;
	char		*s, fold[ADDR_LOCAL_MAX + 1];
	bool		 utf8;

	if (size == 0)
		return 0;
	utf8 = data[0] & 1;
	if ((s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (addr_parse_path(s, utf8, &a, &end, &errstr) == 0) {
		if (end <= s || end > s + strlen(s) || end - s > ADDR_PATH_MAX ||
		    end[-1] != '>')
			abort();
		check_text(a.local, ADDR_LOCAL_MAX);
		check_text(a.domain, ADDR_DOMAIN_MAX);
		if (!utf8 && (a.flags & ADDR_F_UTF8))
			abort();
		if (addr_local_fold(&a, fold, sizeof(fold)) == -1)
			abort();
		check_roundtrip(&a, utf8);
	} else if (errstr == NULL || a.local[0] != '\0')
		abort();
	if (addr_parse(s, utf8, &a, &errstr) == 0) {
		check_text(a.local, ADDR_LOCAL_MAX);
		check_text(a.domain, ADDR_DOMAIN_MAX);
		check_roundtrip(&a, utf8);
	}
	if (addr_domain_valid(s, utf8) && strlen(s) > ADDR_DOMAIN_MAX)
		abort();
	free(s);
	return 0;
}

/*
 * fuzz_ipmatch.c - libFuzzer target for the administrator's address
 * entries (ipmatch.c), the interval table over them (iptable.c) and the
 * [dns] servers items (resolve_server_parse).  Input: lines, each tried
 * as an entry, a server and an address; every address is then looked up
 * in the table of all entries and checked against a linear scan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iptable.h"
#include "ipmatch.h"
#include "resolve.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINES_MAX	64

static bool
inside(const struct ip_range *r, const uint8_t a[16])
{
	return memcmp(r->lo, a, 16) <= 0 && memcmp(r->hi, a, 16) >= 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ip_range		 r[LINES_MAX];
	struct resolve_server	 srv;
	struct iptable		 t;
	uint8_t			 addr[LINES_MAX][16];
	char			*text, *line, *save, canon[64];
	const char		*errstr, *got;
	size_t			 nr = 0, na = 0, i, j;
	bool			 want;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	iptable_init(&t);
	for (line = strtok_r(text, "\n", &save); line != NULL &&
	    nr < LINES_MAX; line = strtok_r(NULL, "\n", &save)) {
		(void)resolve_server_parse(line, &srv, &errstr);
		if (ipmatch_parse(line, &r[nr]) == 0) {
			if (memcmp(r[nr].lo, r[nr].hi, 16) > 0)
				abort();
			iptable_add(&t, &r[nr], line);
			nr++;
		}
		if (ipmatch_addr(line, addr[na]) == 0) {
			if (ipmatch_canon(line, canon, sizeof(canon)) != 0)
				abort();
			na++;
		}
	}
	iptable_build(&t);
	for (i = 0; i < nr; i++)	/* both ends of every entry */
		if (iptable_lookup(&t, r[i].lo) == NULL ||
		    iptable_lookup(&t, r[i].hi) == NULL)
			abort();
	for (i = 0; i < na; i++) {
		want = false;
		for (j = 0; j < nr; j++)
			want = want || inside(&r[j], addr[i]);
		got = iptable_lookup(&t, addr[i]);
		if (want != (got != NULL))
			abort();
	}
	iptable_clear(&t);
	free(text);
	return 0;
}

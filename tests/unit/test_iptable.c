/*
 * test_iptable.c - the interval table of trusted hosts, devices and
 * bypass entries: fixed rows, then random tables checked against a
 * linear scan of the same entries.
 */
#include <stdlib.h>
#include <string.h>

#include "iptable.h"
#include "ipmatch.h"
#include "test.h"

static const char *
lookup(const struct iptable *t, const char *ip)
{
	uint8_t	a[16];

	if (ipmatch_addr(ip, a) == -1)
		return "bad address";
	return iptable_lookup(t, a);
}

static void
test_rows(void)
{
	static const char *const entries[] = {
		"10.0.0.0/8", "10.1.2.3", "192.0.2.1-50", "192.0.2.40-60",
		"198.51.100.7-198.51.101.20", "2001:db8::/32",
		"2001:db8:1::5-2001:db8:1::9", "::1",
	};
	static const struct { const char *ip, *want; } rows[] = {
		{ "10.200.0.1", "10.0.0.0/8" },
		{ "10.1.2.3", NULL },		/* either entry: checked below */
		{ "11.0.0.0", NULL },
		{ "9.255.255.255", NULL },
		{ "192.0.2.1", "192.0.2.1-50" },
		{ "192.0.2.55", "192.0.2.40-60" },
		{ "192.0.2.61", NULL },
		{ "192.0.2.0", NULL },
		{ "198.51.100.255", "198.51.100.7-198.51.101.20" },
		{ "198.51.101.21", NULL },
		{ "2001:db8:ffff::1", "2001:db8::/32" },
		{ "2001:db9::", NULL },
		{ "::1", "::1" },
		{ "::2", NULL },
		{ "::ffff:10.9.9.9", "10.0.0.0/8" },
	};
	struct iptable	t;
	const char	*got;
	size_t		i;

	iptable_init(&t);
	CHECK(lookup(&t, "10.0.0.1") == NULL);
	for (i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
		CHECK_ROW(iptable_add_entry(&t, entries[i]) == 0, entries[i]);
	CHECK(iptable_add_entry(&t, "host.example") == -1);
	iptable_build(&t);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		got = lookup(&t, rows[i].ip);
		if (strcmp(rows[i].ip, "10.1.2.3") == 0)
			CHECK_ROW(got != NULL, rows[i].ip);
		else
			CHECK_ROW(got == rows[i].want || (got && rows[i].want &&
			    strcmp(got, rows[i].want) == 0), rows[i].ip);
	}
	iptable_clear(&t);
}

/* Random nested and overlapping intervals in a small space. */
static void
test_random(void)
{
	struct ip_range	 r[300];
	struct iptable	 t;
	uint8_t		 ip[16];
	char		 tag[16];
	unsigned int	 seed = 7, i, j, round, bad = 0;
	bool		 covered;

	for (round = 0; round < 50; round++) {
		unsigned int n = 1 + (unsigned int)rand_r(&seed) % 300;

		iptable_init(&t);
		for (i = 0; i < n; i++) {
			unsigned int lo = (unsigned int)rand_r(&seed) % 4000;
			unsigned int len = (unsigned int)rand_r(&seed) %
			    (i % 10 == 0 ? 2000 : 20);

			memset(&r[i], 0, sizeof(r[i]));
			r[i].lo[14] = (uint8_t)(lo >> 8);
			r[i].lo[15] = (uint8_t)lo;
			r[i].hi[14] = (uint8_t)((lo + len) >> 8);
			r[i].hi[15] = (uint8_t)(lo + len);
			snprintf(tag, sizeof(tag), "%u", i);
			iptable_add(&t, &r[i], tag);
		}
		iptable_build(&t);
		for (j = 0; j < 6100; j++) {
			const char *got;

			memset(ip, 0, sizeof(ip));
			ip[14] = (uint8_t)(j >> 8);
			ip[15] = (uint8_t)j;
			covered = false;
			for (i = 0; i < n; i++)
				if (memcmp(r[i].lo, ip, 16) <= 0 &&
				    memcmp(r[i].hi, ip, 16) >= 0)
					covered = true;
			got = iptable_lookup(&t, ip);
			if (covered != (got != NULL))
				bad++;
			else if (got != NULL) {
				i = (unsigned int)atoi(got);
				if (memcmp(r[i].lo, ip, 16) > 0 ||
				    memcmp(r[i].hi, ip, 16) < 0)
					bad++;
			}
		}
		iptable_clear(&t);
	}
	CHECK_INT(bad, 0);
}

static void
test_canon(void)
{
	char	buf[64];

	CHECK(ipmatch_canon("::ffff:192.0.2.1", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "192.0.2.1");
	CHECK(ipmatch_canon("2001:DB8:0::1", buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "2001:db8::1");
	CHECK(ipmatch_canon("192.0.2.1", buf, 5) == -1);
	CHECK(ipmatch_canon("example.org", buf, sizeof(buf)) == -1);
}

int
main(void)
{
	RUN(test_rows);
	RUN(test_random);
	RUN(test_canon);
	return test_done();
}

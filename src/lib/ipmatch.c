/*
 * ipmatch.c - addresses against single addresses, CIDR blocks and
 * ranges.  Input comes from the administrator (entries) and from the
 * kernel (client addresses); both are parsed strictly, nothing is
 * copied without a bound.
 */
#include <arpa/inet.h>

#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "ipmatch.h"

int
ipmatch_addr(const char *ip, uint8_t out[16])
{
	struct in_addr	a4;

	if (inet_pton(AF_INET, ip, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, ip, out) == 1 ? 0 : -1;
}

static bool
is_v4(const uint8_t a[16])
{
	static const uint8_t	prefix[12] = { [10] = 0xff, [11] = 0xff };

	return memcmp(a, prefix, 12) == 0;
}

int
ipmatch_canon(const char *ip, char *out, size_t size)
{
	uint8_t	a[16];
	char	buf[INET6_ADDRSTRLEN];

	if (ipmatch_addr(ip, a) == -1)
		return -1;
	if (is_v4(a) ? inet_ntop(AF_INET, a + 12, buf, sizeof(buf)) == NULL :
	    inet_ntop(AF_INET6, a, buf, sizeof(buf)) == NULL)
		return -1;
	return strlcpy(out, buf, size) < size ? 0 : -1;
}

static int
parse_cidr(char *buf, char *slash, struct ip_range *r)
{
	char		*end;
	unsigned long	 bits;
	int		 i;

	*slash = '\0';
	if (ipmatch_addr(buf, r->lo) == -1 || slash[1] == '\0')
		return -1;
	bits = strtoul(slash + 1, &end, 10);
	if (*end != '\0' || bits > (is_v4(r->lo) ? 32UL : 128UL))
		return -1;
	if (is_v4(r->lo))
		bits += 96;
	memcpy(r->hi, r->lo, 16);
	for (i = 0; i < 128; i++) {
		if ((unsigned long)i < bits)
			continue;
		r->lo[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
		r->hi[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	}
	return 0;
}

/* "a-b" with b a whole address, or only the last IPv4 octet. */
static int
parse_range(char *buf, char *dash, struct ip_range *r)
{
	char		*end;
	unsigned long	 last;

	*dash = '\0';
	if (ipmatch_addr(buf, r->lo) == -1 || dash[1] == '\0')
		return -1;
	if (ipmatch_addr(dash + 1, r->hi) == 0)
		return is_v4(r->lo) == is_v4(r->hi) &&
		    memcmp(r->lo, r->hi, 16) <= 0 ? 0 : -1;
	if (!is_v4(r->lo))
		return -1;
	last = strtoul(dash + 1, &end, 10);
	if (*end != '\0' || last > 255 || last < r->lo[15])
		return -1;
	memcpy(r->hi, r->lo, 16);
	r->hi[15] = (uint8_t)last;
	return 0;
}

int
ipmatch_parse(const char *entry, struct ip_range *r)
{
	char	buf[128], *p;

	if (strlcpy(buf, entry, sizeof(buf)) >= sizeof(buf))
		return -1;
	if ((p = strchr(buf, '/')) != NULL)
		return parse_cidr(buf, p, r);
	if ((p = strchr(buf, '-')) != NULL)
		return parse_range(buf, p, r);
	if (ipmatch_addr(buf, r->lo) == -1)
		return -1;
	memcpy(r->hi, r->lo, 16);
	return 0;
}

int
ipmatch(const char *entry, const char *ip)
{
	struct ip_range	r;
	uint8_t		a[16];

	if (ipmatch_parse(entry, &r) == -1 || ipmatch_addr(ip, a) == -1)
		return -1;
	return memcmp(a, r.lo, 16) >= 0 && memcmp(a, r.hi, 16) <= 0;
}

/*
 * ipmatch.h - does an address fall in an administrator's entry: a
 * single address, a CIDR block or a range (R3.3, R3.5), IPv4 or IPv6.
 *
 *	192.0.2.7	192.0.2.0/24	192.0.2.1-50	192.0.2.1-192.0.3.20
 *	2001:db8::1	2001:db8::/32	2001:db8::1-2001:db8::ff
 *
 * A linear test of one entry: the policy engine builds its interval
 * table on top of ipmatch_parse().
 */
#ifndef LIB_IPMATCH_H
#define LIB_IPMATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An inclusive interval of addresses; IPv4 are kept as ::ffff:a.b.c.d. */
struct ip_range {
	uint8_t	lo[16], hi[16];
};

/* Parse an entry; 0, or -1 when it is not an address, CIDR or range. */
int	ipmatch_parse(const char *entry, struct ip_range *r);

/* Parse a bare address into the 16-octet form; 0 or -1. */
int	ipmatch_addr(const char *ip, uint8_t out[16]);

/*
 * The canonical text of an address: IPv4 (also when written as
 * ::ffff:a.b.c.d) dotted, IPv6 as inet_ntop(3) writes it.  0, or -1
 * when ip is no address or out is too small.
 */
int	ipmatch_canon(const char *ip, char *out, size_t size);

/* 1 when ip is inside entry, 0 when not, -1 when either is malformed. */
int	ipmatch(const char *entry, const char *ip);

#endif

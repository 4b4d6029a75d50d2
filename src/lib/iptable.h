/*
 * iptable.h - which of an administrator's address entries covers a
 * client: trusted hosts (R3.5), devices (R3.9), bypass lists (R3.3).
 *
 * The entries are intervals (lib/ipmatch.h) sorted by their low end;
 * beside each, which entry so far reaches highest.  A lookup is one
 * binary search: the last entry starting at or below the address, and
 * the highest-reaching entry up to it covers the address or none does.
 * Each entry keeps the text the administrator wrote, for explain.
 */
#ifndef LIB_IPTABLE_H
#define LIB_IPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "ipmatch.h"

struct iptable_entry {
	struct ip_range	 r;
	char		*tag;		/* the entry as written */
};

struct iptable {
	struct iptable_entry	*e;
	size_t			*reach;	/* argmax of hi over e[0..i] */
	size_t			 n, cap;
	int			 built;
};

void	iptable_init(struct iptable *);
void	iptable_clear(struct iptable *);

/* Add an interval; the tag is copied.  Lookups need iptable_build(). */
void	iptable_add(struct iptable *, const struct ip_range *, const char *tag);

/* Parse an entry (ipmatch_parse) and add it; -1 when it is no entry. */
int	iptable_add_entry(struct iptable *, const char *entry);

void	iptable_build(struct iptable *);

/* The tag of an entry covering ip, or NULL. */
const char	*iptable_lookup(const struct iptable *, const uint8_t ip[16]);

#endif

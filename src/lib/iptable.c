/*
 * iptable.c - interval lookup over the administrator's address entries.
 */
#include <stdlib.h>
#include <string.h>

#include "iptable.h"
#include "xalloc.h"

void
iptable_init(struct iptable *t)
{
	memset(t, 0, sizeof(*t));
}

void
iptable_clear(struct iptable *t)
{
	size_t	i;

	for (i = 0; i < t->n; i++)
		free(t->e[i].tag);
	free(t->e);
	free(t->reach);
	iptable_init(t);
}

void
iptable_add(struct iptable *t, const struct ip_range *r, const char *tag)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->e = xreallocarray(t->e, t->cap, sizeof(*t->e));
	}
	t->e[t->n].r = *r;
	t->e[t->n].tag = xstrdup(tag);
	t->n++;
	t->built = 0;
}

int
iptable_add_entry(struct iptable *t, const char *entry)
{
	struct ip_range	r;

	if (ipmatch_parse(entry, &r) == -1)
		return -1;
	iptable_add(t, &r, entry);
	return 0;
}

static int
cmp_lo(const void *a, const void *b)
{
	const struct iptable_entry	*x = a, *y = b;
	int				 c = memcmp(x->r.lo, y->r.lo, 16);

	return c != 0 ? c : memcmp(x->r.hi, y->r.hi, 16);
}

void
iptable_build(struct iptable *t)
{
	size_t	i;

	if (t->n > 1)
		qsort(t->e, t->n, sizeof(*t->e), cmp_lo);
	free(t->reach);
	t->reach = t->n ? xreallocarray(NULL, t->n, sizeof(*t->reach)) : NULL;
	for (i = 0; i < t->n; i++)
		t->reach[i] = i == 0 || memcmp(t->e[i].r.hi,
		    t->e[t->reach[i - 1]].r.hi, 16) > 0 ? i : t->reach[i - 1];
	t->built = 1;
}

const char *
iptable_lookup(const struct iptable *t, const uint8_t ip[16])
{
	size_t	lo = 0, hi = t->n, i;

	if (!t->built || t->n == 0)
		return NULL;
	/* the last entry whose low end is at or below ip */
	while (lo < hi) {
		i = lo + (hi - lo) / 2;
		if (memcmp(t->e[i].r.lo, ip, 16) <= 0)
			lo = i + 1;
		else
			hi = i;
	}
	if (lo == 0)
		return NULL;
	/* every entry up to lo - 1 starts at or below ip */
	i = t->reach[lo - 1];
	return memcmp(t->e[i].r.hi, ip, 16) >= 0 ? t->e[i].tag : NULL;
}

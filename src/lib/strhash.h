/*
 * strhash.h - the string hash of the hash tables (djb2): take it modulo
 * the table's number of buckets.
 */
#ifndef LIB_STRHASH_H
#define LIB_STRHASH_H

static inline unsigned int
strhash(const char *s)
{
	unsigned int	h = 5381;

	for (; *s != '\0'; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

#endif

/*
 * compat.h - what the C library may lack: strlcpy/strlcat (glibc has
 * them only from 2.38 on).
 */
#ifndef LIB_COMPAT_H
#define LIB_COMPAT_H

#include <stddef.h>
#include <string.h>

#if !defined(__GLIBC__) || !__GLIBC_PREREQ(2, 38)
size_t	strlcpy(char *dst, const char *src, size_t size);
size_t	strlcat(char *dst, const char *src, size_t size);
#endif

#endif

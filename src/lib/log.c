/*
 * log.c - logging to stderr for every role (the parent's stderr is
 * inherited by the roles, so one stream holds the whole server).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char	 log_role[16] = "postino";
static int	 log_lvl = LOGL_INFO;

void
log_init(const char *role, int level)
{
	log_set_role(role);
	log_lvl = level;
	setvbuf(stderr, NULL, _IOLBF, 0);
}

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

int
log_level(void)
{
	return log_lvl;
}

static void
vlog(int level, const char *tag, const char *fmt, va_list ap,
    const char *errtext)
{
	char		 msg[4096];
	char		 ts[32];
	struct timespec	 now;
	struct tm	 tm;

	if (level > log_lvl)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s.%03ldZ postino[%s/%d]: %s%s%s%s\n", ts,
	    now.tv_nsec / 1000000, log_role, (int)getpid(), tag, msg,
	    errtext ? ": " : "", errtext ? errtext : "");
}

#define LOGFN(name, level, tag)						\
void									\
name(const char *fmt, ...)						\
{									\
	va_list	ap;							\
									\
	va_start(ap, fmt);						\
	vlog(level, tag, fmt, ap, NULL);				\
	va_end(ap);							\
}
LOGFN(log_err, LOGL_ERR, "error: ")
LOGFN(log_warn, LOGL_WARN, "warning: ")
LOGFN(log_info, LOGL_INFO, "")
LOGFN(log_debug, LOGL_DEBUG, "debug: ")

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	saved = errno;

	va_start(ap, fmt);
	vlog(LOGL_ERR, "fatal: ", fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOGL_ERR, "fatal: ", fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

void
panic(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOGL_ERR, "panic: ", fmt, ap, NULL);
	va_end(ap);
	abort();
}

static char *
escape(const void *in, size_t len, char *out, size_t size, unsigned char low)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = in;
	size_t			 o = 0, i;

	if (size == 0)
		return out;
	for (i = 0; i < len; i++) {
		unsigned char c = p[i];
		size_t need = (c >= low && c < 0x7f && c != '\\' && c != '"')
		    ? 1 : 4;

		if (o + need + 4 > size) {	/* keep room for "..." */
			if (size >= 4) {
				memcpy(out + (o < size - 4 ? o : size - 4),
				    "...", 3);
				o = (o < size - 4 ? o : size - 4) + 3;
			}
			break;
		}
		if (need == 1) {
			out[o++] = c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o < size ? o : size - 1] = '\0';
	return out;
}

char *
log_escape(const void *in, size_t len, char *out, size_t size)
{
	return escape(in, len, out, size, 0x21);
}

char *
log_escape_quoted(const void *in, size_t len, char *out, size_t size)
{
	return escape(in, len, out, size, 0x20);
}

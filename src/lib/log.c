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
static pid_t	 log_pid;

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
	log_pid = getpid();
}

int
log_level(void)
{
	return log_lvl;
}

/*
 * "2026-12-04T23:41:24.809Z postino[net/26530]: " into buf: the part up
 * to the second is made again only when the second changes (a busy
 * server logs several lines a message, and strftime is not free).
 */
static size_t
log_prefix(char *buf, size_t size)
{
	static __thread time_t	 last = -1;
	static __thread char	 ts[32];
	struct timespec		 now;
	struct tm		 tm;
	int			 n;

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec != last) {
		gmtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		last = now.tv_sec;
	}
	if (log_pid == 0)
		log_pid = getpid();
	n = snprintf(buf, size, "%s.%03ldZ postino[%s/%d]: ", ts,
	    now.tv_nsec / 1000000, log_role, (int)log_pid);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* Format at the end of buf[*len], up to cap octets in all. */
static void
vappend(char *buf, size_t *len, size_t cap, const char *fmt, va_list ap)
{
	int	n;

	if (*len + 1 >= cap)
		return;
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	if (n > 0)
		*len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

static void
append(char *buf, size_t *len, size_t cap, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vappend(buf, len, cap, fmt, ap);
	va_end(ap);
}

/* One line, one write: the roles share the parent's stderr. */
static void
vlog(int level, const char *tag, const char *fmt, va_list ap,
    const char *errtext)
{
	char	line[4096 + 256];
	size_t	len, cap = sizeof(line) - 1;	/* the last for '\n' */

	if (level > log_lvl)
		return;
	len = log_prefix(line, cap);
	append(line, &len, cap, "%s", tag);
	vappend(line, &len, cap, fmt, ap);
	if (errtext != NULL)
		append(line, &len, cap, ": %s", errtext);
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
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

const char *
log_value(const char *s, char *buf, size_t size)
{
	const char	*p;
	size_t		 n;

	for (p = s; *p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\'; p++)
		;
	if (*p == '\0' && p != s)
		return s;
	if (size < 3)
		return "\"\"";
	buf[0] = '"';
	log_escape_quoted(s, strlen(s), buf + 1, size - 2);
	n = strlen(buf);		/* at most size - 2 */
	buf[n] = '"';
	buf[n + 1] = '\0';
	return buf;
}

/*
 * log.h - one line per event on stderr: "postino[ROLE]: text".
 *
 * fatal() means the environment is broken (with errno), fatalx() the
 * same without errno; panic() means our own bug and aborts.
 */
#ifndef LIB_LOG_H
#define LIB_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum { LOGL_ERR, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };

void	log_init(const char *role, int level);
void	log_set_role(const char *role);
int	log_level(void);
void	log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	panic(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Escape untrusted text for a log line: printable ASCII other than
 * backslash, '"' and space is kept, everything else becomes \xHH; the
 * result is cut at size-1 octets (ending in "..." when cut).  Returns out.
 */
char	*log_escape(const void *in, size_t len, char *out, size_t size);
/* The same for the inside of a "..." value: spaces stay as they are. */
char	*log_escape_quoted(const void *in, size_t len, char *out,
	    size_t size);
/*
 * A value for key=value out of text an administrator chose (a path, a
 * name): s itself when it is one bare word (printable ASCII, no space,
 * '"' or '\\'), else in buf, quoted and escaped as above.
 */
const char *log_value(const char *s, char *buf, size_t size);

#endif

/*
 * control.h - the store's control socket for postino-admin (R5.7 queue,
 * R7.1 reload, R7.5 stats).
 */
#ifndef STORE_CONTROL_H
#define STORE_CONTROL_H

/* Relative to data_dir, the store's working directory. */
#define CONTROL_SOCKET	"control.sock"

struct event_base;
struct sched;

#include <stddef.h>

/* The answer to a request: "ok ..." or "error REASON", one or more
 * lines; text is valid during the call. */
typedef void	(*control_answer_cb)(void *arg, const char *text, size_t len);

/* "reload": ask the parent, and answer through cb when it has. */
typedef void	(*control_reload_fn)(control_answer_cb cb, void *arg);

/* Stopping: no new request, and the socket goes at once, so that
 * postino-admin says "not running" even while the store finishes. */
void	control_stop(void);

/* Listen on data_dir/control.sock (mode 0600, the store's user). */
void	control_start(struct event_base *, struct sched *,
	    control_reload_fn);

#endif

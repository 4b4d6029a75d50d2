/*
 * control.h - the store's control socket for postino-admin (R5.7).
 */
#ifndef STORE_CONTROL_H
#define STORE_CONTROL_H

/* Relative to data_dir, the store's working directory. */
#define CONTROL_SOCKET	"control.sock"

struct event_base;
struct sched;

/* Listen on data_dir/control.sock (mode 0600, the store's user). */
void	control_start(struct event_base *, struct sched *);

#endif

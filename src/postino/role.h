/*
 * role.h - what the parent and the two roles share: the descriptors a
 * role is started with, privilege dropping, and the role entry points.
 */
#ifndef POSTINO_ROLE_H
#define POSTINO_ROLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/*
 * A role's descriptors after re-exec: 3 is the channel to the peer
 * role, 4 the configuration text the parent checked (the role parses
 * that, never the file, which may have changed since), 5 the channel to
 * the parent (reload); net's listening sockets follow from 6 on.
 */
#define ROLE_FD_PEER	3
#define ROLE_FD_CONF	4
#define ROLE_FD_PARENT	5
#define ROLE_FD_LISTEN	6
#define NET_USER	"postino-net"
#define CHROOT_DIR	"empty"		/* under data_dir */

struct role_listen {
	int	fd;
	size_t	listener;	/* index into conf->listeners */
};

/*
 * Become user (and chroot into dir first, when dir is not NULL) if we
 * are root; log what was done.  Also arranges to die with the parent.
 */
void	role_drop(const char *role, const char *user, const char *dir);

/* metrics_fd: the [metrics] listen socket, or -1 */
/*
 * IMSG_PARENT_RELOAD on a role's channel c to the parent: apply(fd,
 * path, generation) the new text, then answer IMSG_PARENT_RELOADED with
 * whether all of it could be applied.
 */
struct ipc;
struct ipc_msg;
void	role_reload(struct ipc *c, struct ipc_msg *m,
	    bool (*apply)(int fd, const char *path, uint64_t gen));

void	net_main(struct conf *, struct role_listen *, size_t nlisten,
	    int metrics_fd) __attribute__((noreturn));
void	store_main(struct conf *) __attribute__((noreturn));

#endif

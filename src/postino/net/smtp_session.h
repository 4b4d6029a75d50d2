/*
 * smtp_session.h - one inbound SMTP session, in the net role.
 */
#ifndef NET_SMTP_SESSION_H
#define NET_SMTP_SESSION_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "ipc.h"

/*
 * Start a session on an accepted socket of listener l (the connection
 * limits were checked and counted by the caller, with address ip).
 */
void	smtp_session_new(const struct conf_listener *l, int fd,
	    const struct sockaddr *sa, socklen_t salen, const char *ip);


#endif

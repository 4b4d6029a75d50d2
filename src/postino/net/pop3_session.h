/*
 * pop3_session.h - one inbound POP3 session (SPEC section 6), in the
 * net role.
 */
#ifndef NET_POP3_SESSION_H
#define NET_POP3_SESSION_H

#include <sys/socket.h>

#include "conf.h"

/*
 * Start a session on an accepted socket of listener l (profile pop3 or
 * pop3s; the connection limits were checked and counted by the caller,
 * with address ip).
 */
void	pop3_session_new(const struct conf_listener *l, int fd,
	    const struct sockaddr *sa, const char *ip);

#endif

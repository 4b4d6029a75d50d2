/*
 * auth.h - SMTP AUTH verification in the store role (R2.3, R2.4): the
 * SASL store half, run on a worker thread over credentials fetched on
 * the loop thread; and the sessions store knows to be authenticated.
 */
#ifndef STORE_AUTH_H
#define STORE_AUTH_H

#include <stdint.h>

struct db;
struct ipc;
struct ipc_msg;
struct pool;

/* grant_minutes: how long a POP3 login authorizes its IP (0: never). */
void	auth_init(struct db *, struct pool *, struct ipc *net,
	    unsigned int grant_minutes);
/* IMSG_AUTH_VERIFY: answered later with IMSG_AUTH_RESULT. */
void	auth_verify(struct ipc_msg *);
/* IMSG_SESSION_END. */
void	auth_session_end(uint64_t session);
/* The account session authenticated as, or NULL. */
const char	*auth_session_user(uint64_t session);

#endif

/*
 * auth.h - SMTP AUTH verification in the store role (R2.3, R2.4): the
 * SASL store half, run on a worker thread over credentials fetched on
 * the loop thread; and the sessions store knows to be authenticated.
 */
#ifndef STORE_AUTH_H
#define STORE_AUTH_H

#include <stdint.h>

struct conf;
struct db;
struct intrusion;
struct ipc;
struct ipc_msg;
struct pool;

/* Failures count toward intrusion blocks (R4.4); a POP3 login makes a
 * grant for [relay] pop_before_smtp_minutes. */
void	auth_init(const struct conf *, struct db *, struct pool *,
	    struct ipc *net, struct intrusion *);
void	auth_reconf(const struct conf *);
/* IMSG_AUTH_VERIFY: answered later with IMSG_AUTH_RESULT. */
void	auth_verify(struct ipc_msg *);
/* IMSG_AUTH_FAILED: a login net refused by itself; logged and counted
 * as one store refused. */
void	auth_net_failed(struct ipc_msg *);
/* IMSG_SESSION_END. */
void	auth_session_end(uint64_t session);
/* The account session authenticated as, or NULL. */
const char	*auth_session_user(uint64_t session);

#endif

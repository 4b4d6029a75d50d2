/*
 * net.h - the net role's shared state: configuration, event base, the
 * channel to store, the TLS context and the connection accounting.
 */
#ifndef NET_NET_H
#define NET_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "conf.h"
#include "ipc.h"

struct smtp_session;

struct net {
	struct conf		*conf;
	struct event_base	*base;
	struct ipc		*store;
	SSL_CTX			*ssl_ctx;
	struct resolver		*resolver;	/* client names, MX lookups */
	unsigned int		 nconn;
	bool			 closing;	/* SIGTERM received */
	uint64_t		 next_id;
};
extern struct net net;

/* Track sessions by id for the store's answers. */
void	net_session_add(struct smtp_session *, uint64_t id);
void	net_session_del(uint64_t id);

/* Count a connection from ip; false (and nothing counted) when over
 * the per-address limit. */
bool	net_conn_acquire(const char *ip, unsigned int max);
void	net_conn_release(const char *ip);

#endif

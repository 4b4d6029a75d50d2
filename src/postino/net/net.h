/*
 * net.h - the net role's shared state: configuration, event base, the
 * channel to store, the TLS context and the connection accounting.
 */
#ifndef NET_NET_H
#define NET_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/util.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "ipc.h"
#include "metrics.h"
#include "proto.h"
#include "sasl.h"

struct bufferevent;
struct sockaddr;

struct net {
	/* The running configuration; a session holds the one it started
	 * with (conf_ref) to its end, so a reload changes nothing under it. */
	struct conf		*conf;
	struct event_base	*base;
	struct ipc		*store;
	struct ipc		*parent;	/* reload */
	SSL_CTX			*ssl_ctx;
	struct resolver		*resolver;	/* client names, MX lookups */
	unsigned int		 nconn;
	bool			 closing;	/* SIGTERM received */
	uint64_t		 next_id;
	struct metrics_net	 stats;		/* R7.5 */
};
extern struct net net;

/* What net.c calls on an inbound session (SMTP or POP3). */
struct net_session_ops {
	/* An answer from store for the session (m->id). */
	void	(*store_reply)(void *session, struct ipc_msg *m);
	/* The server is stopping: say so, then close. */
	void	(*shutdown)(void *session);
};

/* Track sessions by id for the store's answers. */
void	net_session_add(uint64_t id, void *session,
	    const struct net_session_ops *);
void	net_session_del(uint64_t id);

/*
 * A TLS server bufferevent: on the socket fd (implicit TLS), or, with
 * fd -1, as a filter over under (STARTTLS, STLS).  NULL when TLS is not
 * available or on failure.
 */
struct bufferevent	*net_tls_wrap(int fd, struct bufferevent *under);

/*
 * Ask store to verify a SASL request of session id (IMSG_AUTH_VERIFY);
 * and read its answer (IMSG_AUTH_RESULT) into *r and account (the
 * canonical account on success, else "").
 */
void	net_auth_request(uint64_t id, const struct sasl_req *,
	    const char *ip, enum auth_service);
void	net_auth_reply(struct ipc_msg *, struct sasl_reply *,
	    char *account, size_t size);
/* A login refused in net without asking store (IMSG_AUTH_FAILED). */
void	net_auth_failed(uint64_t id, const char *ip, const char *mech,
	    enum auth_service);

/*
 * One line of client input from in, bounded before it is copied: max
 * octets at most, its end of line included; line has max + 1 octets.
 * NET_LINE_OK: the line, NUL-terminated, CRLF (or, with lf_ok, a bare
 * LF) removed, its length in *len_r (it may hold a NUL: compare with
 * strlen).  NET_LINE_MORE: not all there yet.  NET_LINE_LONG: over max,
 * dropped (*skip keeps track of a long line whose end is still to come:
 * one per session, false at first).  NET_LINE_BARE_LF: ended by LF
 * alone, without lf_ok; dropped.
 */
enum { NET_LINE_MORE, NET_LINE_OK, NET_LINE_LONG, NET_LINE_BARE_LF };
struct evbuffer;
int	net_line(struct evbuffer *in, char *line, size_t max, bool *skip,
	    bool lf_ok, size_t *len_r);

/*
 * A closing session, its own output buffer empty: have its last replies
 * also left the socket's buffer under a TLS filter (STARTTLS, STLS)?
 * That buffer's callbacks are the filter's, so *linger, a 10 ms timer
 * calling tick(arg), looks again, 5 s at most (*ticks counts).  True
 * when the session may be freed.
 */
struct event;
bool	net_flushed(struct bufferevent *bev, struct event **linger,
	    unsigned int *ticks, void (*tick)(evutil_socket_t, short, void *),
	    void *arg);

/*
 * The event word of a log line refusing a client (R7.4, docs/logs.md):
 * "reject" when the refusal is the client's doing, which fail2ban
 * counts; "defer" when it is a temporary one that is not: our own error
 * (check store-error, or an enhanced code 4.3.x), a lookup that failed
 * (4.4.x), a virus scan that could not run, more recipients than one
 * transaction takes, the server's own connection limit.  text is the
 * reply, SMTP ("451 4.3.0 ...") or POP3.
 */
const char	*net_refusal_event(const char *check, const char *text);

/*
 * An accept error (EMFILE and friends) on lev: log it (proto: the
 * log's first word) and pause lev a second instead of spinning; resume
 * is lev's timer from net_resume_timer(), which enables it again.
 */
struct evconnlistener;
struct event	*net_resume_timer(struct evconnlistener *);
void		 net_accept_pause(struct evconnlistener *, struct event *resume,
		    const char *proto);

/* The port of an IPv4 or IPv6 address. */
int	net_sockaddr_port(const struct sockaddr *);
/* Its address as text (an IPv4-mapped one as IPv4). */
void	net_sockaddr_text(const struct sockaddr *, char *buf, size_t size);

/* R7.5: net refused an SMTP command by itself: the stage and the check
 * its log line names (metrics.h has the table). */
void	net_stat_refused(const char *stage, const char *check);
/* R7.5: a session of listener l opens (open) or ends. */
void	net_stat_session(const struct conf_listener *l, bool open);
/* R7.5: an SMTP transaction on l got its final reply; it began (MAIL)
 * at start, CLOCK_MONOTONIC. */
struct timespec;
void	net_stat_transaction(const struct conf_listener *l,
	    const struct timespec *start);

/* Count a connection from ip; false (and nothing counted) when over
 * the per-address limit. */
bool	net_conn_acquire(const char *ip, unsigned int max);
void	net_conn_release(const char *ip);

#endif

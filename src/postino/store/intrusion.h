/*
 * intrusion.h - intrusion prevention (R4.4) and rate limits (R4.6), in
 * the store role.
 *
 * Counters per client address and per account live in memory, in
 * tables of a fixed size: a flood of distinct addresses evicts the
 * oldest entries and never grows store past INTRUSION_MEMORY_MAX.  A
 * block, once decided, is a row of the store's blocks table, so it
 * holds across restarts (and, with a shared store, across servers);
 * the connect check of the policy engine reads it there.  Trusted
 * hosts and the [intrusion] bypass list are never blocked.
 */
#ifndef STORE_INTRUSION_H
#define STORE_INTRUSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct db;
struct policy;

#define INTRUSION_IPS_MAX	65536	/* addresses with counters */
#define INTRUSION_ACCOUNTS_MAX	65536	/* accounts with rate counters */
#define INTRUSION_WINDOW	3600	/* seconds failures are counted over */

enum intrusion_event {
	INTR_AUTH_FAILURE,	/* a failed login, SMTP AUTH or POP3 */
	INTR_UNKNOWN_RCPT,	/* a RCPT to an unknown local user */
	INTR_CONNECTION,	/* a new connection */
	INTR_MESSAGE,		/* a message accepted */
	INTR_PROTOCOL_ERROR,	/* error replies of a session */
	INTR_MAX
};

/* What the rate limits count (R4.6). */
enum intrusion_rate {
	RATE_MESSAGES,
	RATE_RECIPIENTS
};

struct intrusion;

/* policy says who is never blocked (trusted, [intrusion] bypass); NULL
 * in tests: nobody. */
struct intrusion	*intrusion_new(const struct conf *, struct db *,
			    const struct policy *);
void			 intrusion_free(struct intrusion **);

/*
 * Count n events of a kind from ip; when that passes its threshold,
 * block ip (a row in the blocks table, a log line).  Returns true when
 * this call blocked it.
 */
bool	intrusion_event(struct intrusion *, const char *ip,
	    enum intrusion_event, unsigned int n);

/* A successful login from ip: its failed logins are forgotten (R4.4). */
void	intrusion_login_ok(struct intrusion *, const char *ip);

/* Failed logins counted now for ip (for the log). */
unsigned int	intrusion_auth_failures(const struct intrusion *,
		    const char *ip);

/*
 * Rate limits: how many messages or recipients ip or account (NULL for
 * none) sent in about the last hour (a sliding window), and count more.
 */
unsigned int	intrusion_rate_ip(struct intrusion *, const char *ip,
		    enum intrusion_rate);
unsigned int	intrusion_rate_account(struct intrusion *,
		    const char *account, enum intrusion_rate);
void		intrusion_rate_add(struct intrusion *, const char *ip,
		    const char *account, unsigned int messages,
		    unsigned int recipients);

/* Blocks whose time is up, or that the administrator lifted, go: one
 * log line each.  Call now and then (store: every few seconds). */
void	intrusion_tick(struct intrusion *);
/* Thresholds of a reloaded configuration, from the next event on. */
void	intrusion_reconf(struct intrusion *, const struct conf *);

/* R7.5: blocks made since start for event ev, and the event's name. */
uint64_t	 intrusion_blocks(const struct intrusion *,
		    enum intrusion_event);
const char	*intrusion_event_name(enum intrusion_event);

/* Entries held now (tests, the memory bound). */
size_t	intrusion_entries(const struct intrusion *);

#endif

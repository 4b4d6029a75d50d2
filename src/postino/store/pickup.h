/*
 * pickup.h - messages that sendmail(1) dropped in maildrop/ (R7.6).
 */
#ifndef STORE_PICKUP_H
#define STORE_PICKUP_H

#include "addr.h"
#include "db.h"
#include "envelope.h"

struct event_base;
struct queue;
struct conf;

/* Make maildrop/ (mode 1733) and look into it every second. */
void	pickup_start(struct event_base *, struct queue *, const struct conf *);
void	pickup_reconf(const struct conf *);

/*
 * Resolve a recipient and add its targets to env (store.c): local
 * targets for one of our domains, a remote target otherwise.  Returns
 * the lookup's answer; nothing is added for DB_RCPT_UNKNOWN and
 * DB_RCPT_TEMPFAIL.
 */
enum db_rcpt	store_envelope_add(struct envelope *, const struct mailaddr *,
		    const char *given);

#endif

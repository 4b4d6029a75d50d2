/*
 * metrics.h - the statistics of R7.5 as net keeps them, and how they
 * cross to store, which renders every number (store/stats.c) for the
 * Prometheus endpoint and for "postino-admin stats".
 *
 * net counts what only it sees: connections per listener, outbound
 * sessions, the SMTP refusals it makes itself and how long SMTP
 * transactions take.  Every label is an index into a table fixed at
 * build time or a listener of the configuration, never client text,
 * so the number of series is bounded.
 */
#ifndef POSTINO_METRICS_H
#define POSTINO_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

struct ipc_msg;
struct ipc_out;

/*
 * The SMTP transaction latency histogram, MAIL to the final reply of
 * DATA or of the last BDAT: upper bounds in milliseconds, then +Inf.
 */
#define METRICS_BUCKETS	12
extern const unsigned int metrics_bucket_ms[METRICS_BUCKETS];

/*
 * Refusals net decides itself, without a policy check; each reason is
 * the check= its log line names (docs/logs.md).
 */
enum metrics_refusal {
	MR_SIZE_MAIL,		/* 552 5.3.4: MAIL's SIZE= over the limit */
	MR_RECIPIENTS,		/* 452 4.5.3: over max_recipients */
	MR_SIZE,		/* 552 5.3.4: over max_message_size */
	MR_BARE_LF,		/* 554 5.6.0 */
	MR_BARE_CR,		/* 554 5.6.0 */
	MR_LINE_LENGTH,		/* 500 5.5.2, in DATA */
	MR_HEADER_SIZE,		/* 552 5.6.0 */
	MR_MAX_HOPS,		/* 554 5.4.6: over max_hops */
	MR_STORE_ERROR,		/* 451/452 4.3.x: the spool could not be had
				   or written */
	MR_ERRORS,		/* 421 4.7.0: over max_errors */
	MR_PREGREET,		/* 554 5.5.1: talked before the greeting */
	MR_MAX
};

/* The reason (a label value), stage and reply class of a refusal. */
struct metrics_refusal_name {
	const char	*reason;
	const char	*stage;
	bool		 temporary;	/* 4xx */
};
extern const struct metrics_refusal_name metrics_refusals[MR_MAX];

/* The refusal of that stage and reason, or MR_MAX. */
enum metrics_refusal	metrics_refusal_find(const char *stage,
			    const char *reason);

/*
 * Counters by listener name: a reload may add, rename or remove
 * listeners while sessions of the old ones still run, so net keeps
 * room for the old and the new at once.
 */
#define METRICS_LISTENERS	(2 * CONF_LISTENERS_MAX)

struct metrics_listener {
	char		name[CONF_NAME_MAX];	/* "": a free slot */
	uint64_t	conn_current, conn_peak, conn_total;
	uint64_t	conn_refused;		/* over a connection limit */
	uint64_t	tx_bucket[METRICS_BUCKETS + 1];	/* not cumulative */
	uint64_t	tx_count, tx_sum_us;
};

struct metrics_net {
	struct metrics_listener	listener[METRICS_LISTENERS];
	uint64_t		out_current, out_peak, out_total;
	uint64_t		refused[MR_MAX];
};

/* Why net sends its numbers (IMSG_METRICS). */
enum metrics_for {
	METRICS_FOR_HTTP,	/* a scrape: store answers IMSG_METRICS_TEXT */
	METRICS_FOR_ADMIN	/* store's IMSG_METRICS_ASK, same id */
};

/*
 * The counters of the listener named name, in net: its slot, or a free
 * one, or else the slot of a listener conf no longer has and no
 * session uses (cleared).  NULL when none is left: not counted.
 */
struct metrics_listener	*metrics_listener(struct metrics_net *,
			    const char *name, const struct conf *conf);

/* Add m to o: every listener slot in use, with its name (proto.h). */
void	metrics_net_put(struct ipc_out *o, const struct metrics_net *m);
/*
 * Read what metrics_net_put wrote into *m, its listener slots in the
 * order of conf's listeners: a name conf does not have (a reload not
 * yet seen by both roles, or a removed listener) is skipped.
 * Malformed input is fatal (lib/ipc).
 */
void	metrics_net_get(struct ipc_msg *msg, struct metrics_net *m,
	    const struct conf *conf);

/* The histogram bucket of a transaction that took us microseconds. */
unsigned int	metrics_bucket(uint64_t us);

#endif

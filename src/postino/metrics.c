/*
 * metrics.c - net's statistics on the wire between the roles (see
 * metrics.h).  Runs in net (writing) and in store (reading); store
 * trusts only the shape: counts are numbers, a listener is one of its
 * own configuration, the tables have the sizes both were built with.
 */
#include <string.h>

#include "compat.h"
#include "ipc.h"
#include "log.h"
#include "metrics.h"

const unsigned int metrics_bucket_ms[METRICS_BUCKETS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000
};

const struct metrics_refusal_name metrics_refusals[MR_MAX] = {
	[MR_SIZE_MAIL] = { "size", "mail", false },
	[MR_RECIPIENTS] = { "max-recipients", "rcpt", true },
	[MR_SIZE] = { "size", "data", false },
	[MR_BARE_LF] = { "bare-lf", "data", false },
	[MR_BARE_CR] = { "bare-cr", "data", false },
	[MR_LINE_LENGTH] = { "line-length", "data", false },
	[MR_HEADER_SIZE] = { "header-size", "data", false },
	[MR_MAX_HOPS] = { "max-hops", "data", false },
	[MR_STORE_ERROR] = { "store-error", "data", true },
	[MR_ERRORS] = { "errors", "session", true },
	[MR_PREGREET] = { "pregreet", "connect", false },
};

enum metrics_refusal
metrics_refusal_find(const char *stage, const char *reason)
{
	size_t	i;

	for (i = 0; i < MR_MAX; i++)
		if (strcmp(metrics_refusals[i].stage, stage) == 0 &&
		    strcmp(metrics_refusals[i].reason, reason) == 0)
			break;
	return (enum metrics_refusal)i;
}

unsigned int
metrics_bucket(uint64_t us)
{
	unsigned int	i;

	for (i = 0; i < METRICS_BUCKETS; i++)
		if (us <= (uint64_t)metrics_bucket_ms[i] * 1000)
			break;
	return i;		/* METRICS_BUCKETS: +Inf */
}

/* The index of a listener name in conf, or -1. */
static int
listener_index(const struct conf *conf, const char *name)
{
	size_t	i;

	for (i = 0; i < conf->nlisteners; i++)
		if (strcmp(conf->listeners[i].name, name) == 0)
			return (int)i;
	return -1;
}

struct metrics_listener *
metrics_listener(struct metrics_net *m, const char *name,
    const struct conf *conf)
{
	struct metrics_listener	*l, *free_l = NULL, *stale = NULL;
	size_t			 i;

	for (i = 0; i < METRICS_LISTENERS; i++) {
		l = &m->listener[i];
		if (strcmp(l->name, name) == 0)
			return l;
		if (l->name[0] == '\0' && free_l == NULL)
			free_l = l;
		else if (l->name[0] != '\0' && l->conn_current == 0 &&
		    stale == NULL && listener_index(conf, l->name) == -1)
			stale = l;
	}
	if ((l = free_l != NULL ? free_l : stale) == NULL)
		return NULL;
	memset(l, 0, sizeof(*l));
	strlcpy(l->name, name, sizeof(l->name));
	return l;
}

void
metrics_net_put(struct ipc_out *o, const struct metrics_net *m)
{
	const struct metrics_listener	*l;
	uint32_t			 n = 0;
	size_t				 i, j;

	for (i = 0; i < METRICS_LISTENERS; i++)
		if (m->listener[i].name[0] != '\0')
			n++;
	ipc_put_u32(o, n);
	for (i = 0; i < METRICS_LISTENERS; i++) {
		l = &m->listener[i];
		if (l->name[0] == '\0')
			continue;
		ipc_put_str(o, l->name);
		ipc_put_u64(o, l->conn_current);
		ipc_put_u64(o, l->conn_peak);
		ipc_put_u64(o, l->conn_total);
		ipc_put_u64(o, l->conn_refused);
		for (j = 0; j <= METRICS_BUCKETS; j++)
			ipc_put_u64(o, l->tx_bucket[j]);
		ipc_put_u64(o, l->tx_count);
		ipc_put_u64(o, l->tx_sum_us);
	}
	ipc_put_u64(o, m->out_current);
	ipc_put_u64(o, m->out_peak);
	ipc_put_u64(o, m->out_total);
	ipc_put_u32(o, MR_MAX);
	for (i = 0; i < MR_MAX; i++)
		ipc_put_u64(o, m->refused[i]);
}

void
metrics_net_get(struct ipc_msg *msg, struct metrics_net *m,
    const struct conf *conf)
{
	struct metrics_listener	 l;
	const char		*name;
	uint32_t		 n, i, j;
	int			 k;

	memset(m, 0, sizeof(*m));
	if ((n = ipc_get_u32(msg)) > METRICS_LISTENERS)
		fatalx("metrics: %u listeners from %s", n, msg->peer);
	for (i = 0; i < n; i++) {
		if ((name = ipc_get_str(msg)) == NULL)
			fatalx("metrics: null listener from %s", msg->peer);
		k = listener_index(conf, name);
		l.conn_current = ipc_get_u64(msg);
		l.conn_peak = ipc_get_u64(msg);
		l.conn_total = ipc_get_u64(msg);
		l.conn_refused = ipc_get_u64(msg);
		for (j = 0; j <= METRICS_BUCKETS; j++)
			l.tx_bucket[j] = ipc_get_u64(msg);
		l.tx_count = ipc_get_u64(msg);
		l.tx_sum_us = ipc_get_u64(msg);
		if (k >= 0) {
			strlcpy(l.name, name, sizeof(l.name));
			m->listener[k] = l;
		}
	}
	m->out_current = ipc_get_u64(msg);
	m->out_peak = ipc_get_u64(msg);
	m->out_total = ipc_get_u64(msg);
	if ((n = ipc_get_u32(msg)) != MR_MAX)
		fatalx("metrics: %u refusal reasons from %s", n, msg->peer);
	for (i = 0; i < MR_MAX; i++)
		m->refused[i] = ipc_get_u64(msg);
}

/*
 * stats.h - the statistics of R7.5 in the store role: what store
 * counts (decisions, commits, logins, deliveries), and the one
 * rendering of every number, net's included, as Prometheus text for
 * the endpoint and as the same samples for "postino-admin stats".
 */
#ifndef STORE_STATS_H
#define STORE_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "control.h"
#include "policy.h"
#include "proto.h"

struct conf;
struct intrusion;
struct ipc;
struct ipc_msg;
struct sched;

enum stats_transport { ST_SMTP, ST_LMTP, ST_MAILDIR, ST_TRANSPORT_MAX };
enum stats_outcome { SO_DELIVERED, SO_DEFERRED, SO_BOUNCED, SO_OUTCOME_MAX };

void	stats_init(const struct conf *, struct ipc *net, struct sched *,
	    struct intrusion *);
/* A reload: the listeners shown are the new configuration's. */
void	stats_reconf(const struct conf *);

/* A stage's decision for a session on a listener of that profile (only
 * SMTP refusals count). */
void	stats_policy(enum policy_stage, enum listener_profile,
	    const struct policy_result *);
/* The end of a message: committed (accepted) or refused. */
void	stats_commit(enum commit_status);
/* A finished login: mech as net named it (a name outside the SASL
 * table counts as "other"). */
void	stats_auth(enum auth_service, const char *mech, bool ok);
/* A recipient's delivery attempt; safe from the worker threads. */
void	stats_delivery(enum stats_transport, enum stats_outcome);

/* IMSG_METRICS from net. */
void	stats_net(struct ipc_msg *);

/*
 * "postino-admin stats" (control.c): ask net for its numbers, then
 * call cb with "ok" and the samples, one a line, as the endpoint shows
 * them.
 */
void	stats_control(control_answer_cb, void *arg);

#endif

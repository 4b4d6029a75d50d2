/*
 * explain.h - a whole SMTP dialogue through the policy engine, with the
 * trace of every check printed: "postino-admin explain" (R3.13) and the
 * policy golden files (tests/unit/policy/) print through it.
 */
#ifndef STORE_EXPLAIN_H
#define STORE_EXPLAIN_H

#include <stdbool.h>
#include <stdio.h>

#include "conf.h"
#include "policy.h"

struct resolver;

#define EXPLAIN_RCPTS_MAX	100

struct explain_req {
	const char		*ip;
	enum listener_profile	 profile;
	const char		*auth;		/* account, or NULL */
	const char		*helo;		/* NULL: "explain.invalid" */
	const char		*from;		/* "" for the null sender */
	const char		*to[EXPLAIN_RCPTS_MAX];
	size_t			 nto;
	/* the DNS a live session asks (DNSBL, sender domain); NULL: none */
	struct resolver		*resolver;
};

/*
 * Run connect, MAIL and each RCPT as a live session would, printing each
 * check's result and the reply of each command to f; stops at the first
 * command refused before RCPT.  The last line is "final: REPLY", the
 * reply to the last command run.  Returns its action.
 */
enum policy_action	explain(struct policy *, const struct explain_req *,
			    FILE *f);

/* Strip one pair of angle brackets an administrator may have typed. */
const char	*explain_path(const char *arg, char *buf, size_t size);

#endif

/*
 * dnscheck.h - what the policy engine needs from the DNS, gathered
 * before a stage runs: at connect, whether a DNSBL lists the client
 * (R4.1); at MAIL, whether the sender's domain exists (R4.2).  The
 * store role runs it for live sessions, "postino-admin explain" for its
 * dialogue, so both see the same facts.
 */
#ifndef STORE_DNSCHECK_H
#define STORE_DNSCHECK_H

#include "policy.h"

struct resolver;
struct dnscheck;

typedef void	dnscheck_fn(void *arg);

/*
 * Look up what the checks of stage need for session s (MAIL: path is
 * the sender as the client wrote it) and write the answers into s; then
 * call done(arg) once, from the event loop, when every answer is in or
 * [antispam] dns_timeout seconds have passed, whichever comes first (a
 * DNSBL that did not answer lists nobody; a sender domain that did not
 * answer is a temporary failure).  Returns NULL, calling nothing, when
 * there is nothing to look up: a trusted client (or, for DNSBL, one in
 * the [intrusion] bypass list), an authenticated session, the null sender, a local domain, the checks
 * switched off, or an answer s already holds.
 */
struct dnscheck	*dnscheck_start(struct resolver *, const struct policy *,
		    enum policy_stage, struct policy_session *s,
		    const char *path, dnscheck_fn *done, void *arg);

/* The session goes before done was called: it never will be, and s is
 * no longer touched.  NULL is fine. */
void		 dnscheck_cancel(struct dnscheck **);

#endif

/*
 * explain.c - print why: the policy engine's trace of one dialogue.
 *
 *	connect  devices          DUNNO     mx listener
 *	connect  => 220 mx.example ESMTP postino
 *	mail     submission-auth  DUNNO     mx listener: AUTH not required
 *	...
 *	final: 550 5.7.1 <a@example.org> Relay access denied
 *
 * A check after the one that decided is listed as "-": not reached.
 */
#include <string.h>

#include <event2/event.h>

#include "compat.h"
#include "dnscheck.h"
#include "explain.h"
#include "resolve.h"

static void
trace_line(void *arg, enum policy_stage stage, const char *check,
    enum policy_action a, const char *detail)
{
	FILE	*f = arg;

	fprintf(f, "%-8s %-16s %-9s %s\n", policy_stage_name(stage), check,
	    detail == NULL ? "-" : policy_action_name(a),
	    detail == NULL ? "not reached" : detail);
}

static void
looked_up(void *arg)
{
	*(bool *)arg = true;
}

/* The DNS facts of the stage, as a live session would wait for them. */
static void
lookups(struct policy *p, struct resolver *res, enum policy_stage stage,
    struct policy_session *s, const char *path)
{
	struct dnscheck	*c;
	bool		 done = false;

	if ((c = dnscheck_start(res, p, stage, s, path, looked_up,
	    &done)) == NULL)
		return;
	while (!done && event_base_loop(resolver_base(res), EVLOOP_ONCE) == 0)
		;
	if (!done)
		dnscheck_cancel(&c);
}

static bool
step(struct policy *p, const struct explain_req *q, enum policy_stage stage,
    struct policy_session *s, const char *path, struct policy_result *res,
    FILE *f)
{
	struct policy_input	in = { path, false };

	if (q->resolver != NULL)
		lookups(p, q->resolver, stage, s, path);
	policy_run(p, stage, s, path != NULL ? &in : NULL, res, trace_line, f);
	fprintf(f, "%-8s => %s\n", policy_stage_name(stage), res->reply);
	/* the trace field the message would get (Received-SPF), unfolded */
	if (res->header != NULL && res->header[0] != '\0') {
		const char	*h;

		fprintf(f, "%-8s +> ", policy_stage_name(stage));
		for (h = res->header; *h != '\0'; h++)
			if (*h == '\r' || *h == '\n')
				continue;
			else
				fputc(*h == '\t' ? ' ' : *h, f);
		fputc('\n', f);
	}
	return res->action == POLICY_ACCEPT;
}

enum policy_action
explain(struct policy *p, const struct explain_req *q, FILE *f)
{
	struct policy_session	s;
	struct policy_result	res;
	size_t			i;

	policy_session_init(&s, q->ip, q->profile);
	if (step(p, q, POLICY_CONNECT, &s, NULL, &res, f)) {
		strlcpy(s.helo, q->helo ? q->helo : "explain.invalid",
		    sizeof(s.helo));
		if (q->auth != NULL)
			strlcpy(s.auth, q->auth, sizeof(s.auth));
		if (step(p, q, POLICY_MAIL, &s, q->from, &res, f))
			for (i = 0; i < q->nto; i++)
				step(p, q, POLICY_RCPT, &s, q->to[i], &res, f);
	}
	fprintf(f, "final: %s\n", res.reply);
	policy_session_clear(&s);
	return res.action;
}

const char *
explain_path(const char *arg, char *buf, size_t size)
{
	size_t	len = strlen(arg);

	if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>') {
		if (len - 2 >= size)
			return arg;
		memcpy(buf, arg + 1, len - 2);
		buf[len - 2] = '\0';
		return buf;
	}
	return arg;
}

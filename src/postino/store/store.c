/*
 * store.c - the store role: owner of every file of the data directory.
 *
 * Answers net's requests (recipient lookups, spool files, commits) and
 * runs the queue.  Runs as the configured user, in the data directory.
 * Trusts nothing net sends: every address is parsed again before it is
 * looked up or written into an envelope, and a malformed message is
 * fatal (lib/ipc), after which the parent restarts both roles.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "auth.h"
#include "compat.h"
#include "db.h"
#include "ipc.h"
#include "ipmatch.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "pickup.h"
#include "queue.h"
#include "role.h"
#include "smtp_syntax.h"
#include "xalloc.h"

static struct {
	struct conf		*conf;
	struct event_base	*base;
	struct ipc		*net;
	struct db		*db;
	struct queue		*queue;
	struct pool		*pool;
} st;

struct commit_ctx {
	uint64_t	session;
};

static void
reply_u32(uint32_t type, uint64_t id, uint32_t v)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_put_u32(&o, v);
	ipc_send(st.net, type, id, -1, &o);
}

/* Canonical form of an address net sent in two parts. */
static int
canon(const char *local_part, const char *domain, struct mailaddr *a)
{
	char		 buf[ADDR_PATH_MAX + 2];
	const char	*errstr;

	if ((size_t)snprintf(buf, sizeof(buf), "%s@%s", local_part, domain)
	    >= sizeof(buf))
		return -1;
	return addr_parse(buf, true, a, &errstr);
}

static enum db_rcpt
resolve(const char *local_part, const char *domain, struct db_targets *t)
{
	struct mailaddr	a;
	char		lp[ADDR_LOCAL_MAX + 1];

	if (canon(local_part, domain, &a) == -1 ||
	    addr_local_fold(&a, lp, sizeof(lp)) == -1)
		return DB_RCPT_UNKNOWN;
	if (a.flags & ADDR_F_LITERAL)
		return DB_RCPT_NOT_LOCAL;
	return db_rcpt_resolve(st.db, lp, a.domain, t);
}

struct bypass_ctx {
	const char	*sender, *sender_domain, *rcpt, *rcpt_domain, *ip;
	bool		 match;
};

static void
bypass_row(void *arg, int ncols, const char *const *cols)
{
	struct bypass_ctx	*b = arg;
	const char		*e = cols[0];

	if (ncols < 1 || b->match)
		return;
	if (*e == '@')
		e++;
	b->match = strcasecmp(e, b->sender) == 0 ||
	    strcasecmp(e, b->sender_domain) == 0 ||
	    strcasecmp(e, b->rcpt) == 0 ||
	    strcasecmp(e, b->rcpt_domain) == 0 || ipmatch(e, b->ip) == 1;
}

/*
 * R3.2: an authenticated session may send only as its account, one of
 * its aliases or an address granted to it, unless an entry of the
 * auth-mismatch bypass list (R3.3) names the sender, the recipient,
 * their domains or the client's address.  -1 on a store error.
 *
 * XXX The policy engine (SPEC section 3) will take this over, with its
 * interval table for the address entries.
 */
static int
sender_denied(uint64_t session, const char *sender, const char *lp,
    const char *domain, const char *ip)
{
	struct bypass_ctx	 b = { .ip = ip };
	const char		*user = auth_session_user(session), *at;
	char			 rcpt[ADDR_PATH_MAX + 2], err[256];
	int			 owned;

	if (user == NULL || *sender == '\0' ||
	    !st.conf->relay.reject_auth_sender_mismatch)
		return 0;
	if ((owned = db_sender_owned(st.db, user, sender)) != 0)
		return owned == 1 ? 0 : -1;
	snprintf(rcpt, sizeof(rcpt), "%s@%s", lp, domain);
	at = strrchr(sender, '@');
	b.sender = sender;
	b.sender_domain = at != NULL ? at + 1 : "";
	b.rcpt = rcpt;
	b.rcpt_domain = domain;
	if (db_view(st.db, DB_VIEW_BYPASS_AUTH_MISMATCH, bypass_row, &b, err,
	    sizeof(err)) == -1)
		return -1;
	return b.match ? 0 : 1;
}

static void
do_rcpt_lookup(struct ipc_msg *m)
{
	const char		*local_part, *domain, *sender, *ip;
	struct db_targets	 t;
	int			 denied;

	local_part = ipc_get_str(m);
	domain = ipc_get_str(m);
	sender = ipc_get_str(m);
	ip = ipc_get_str(m);
	ipc_end(m);
	if (local_part == NULL || domain == NULL || sender == NULL ||
	    ip == NULL)
		fatalx("store: null field in rcpt lookup");
	if ((denied = sender_denied(m->id, sender, local_part, domain, ip))
	    != 0) {
		reply_u32(IMSG_RCPT_RESULT, m->id, denied == 1 ?
		    RCPT_SENDER_DENIED : DB_RCPT_TEMPFAIL);
		return;
	}
	reply_u32(IMSG_RCPT_RESULT, m->id, resolve(local_part, domain, &t));
}

static void
do_spool_open(struct ipc_msg *m)
{
	struct ipc_out	o;
	char		qid[QID_LEN + 1];
	int		fd;

	ipc_end(m);
	ipc_out_init(&o);
	if (queue_spool_open(st.queue, qid, &fd) == -1) {
		log_err("queue event=open-failed error=\"%s\"",
		    strerror(errno));
		ipc_put_u32(&o, 0);
		ipc_put_str(&o, "");
		ipc_send(st.net, IMSG_SPOOL_FD, m->id, -1, &o);
		return;
	}
	ipc_put_u32(&o, 1);
	ipc_put_str(&o, qid);
	ipc_send(st.net, IMSG_SPOOL_FD, m->id, fd, &o);
}

static void
commit_cb(void *arg, enum commit_status status)
{
	struct commit_ctx	*c = arg;

	if (st.net != NULL)
		reply_u32(IMSG_SPOOL_COMMITTED, c->session, status);
	free(c);
}

/* Add the targets of a resolved recipient. */
static void
add_targets(struct envelope *env, const struct db_targets *t,
    const char *given)
{
	struct env_target	*et;
	size_t			 i;

	for (i = 0; i < t->n; i++) {
		et = envelope_add_target(env);
		et->local = t->t[i].local;
		strlcpy(et->domain, t->t[i].domain, sizeof(et->domain));
		strlcpy(et->local_part, t->t[i].local_part,
		    sizeof(et->local_part));
		strlcpy(et->rcpt, given, sizeof(et->rcpt));
	}
}

/*
 * Add the targets of one recipient; -1 (and a log line) if it does not
 * resolve now as it did at RCPT time.  A recipient outside the local
 * domains is taken only from a session that store itself saw
 * authenticate (relay, R3.6).
 */
static int
add_rcpt(struct envelope *env, const char *local_part, const char *domain,
    const char *given, bool relay)
{
	struct db_targets	 t;
	struct mailaddr		 a;
	enum db_rcpt		 r;

	const char		*errstr;

	r = resolve(local_part, domain, &t);
	/* Remote local parts keep their case: the address as given. */
	if (r == DB_RCPT_NOT_LOCAL && relay && (addr_parse(given, true, &a,
	    &errstr) == 0 || canon(local_part, domain, &a) == 0)) {
		store_envelope_add(env, &a, given);
		return 0;
	}
	if (r != DB_RCPT_OK) {
		log_warn("queue qid=%s event=commit-refused rcpt=<%s@%s> "
		    "lookup=%d", env->qid, local_part, domain, (int)r);
		return -1;
	}
	add_targets(env, &t, given);
	return 0;
}

enum db_rcpt
store_envelope_add(struct envelope *env, const struct mailaddr *a,
    const char *given)
{
	struct db_targets	 t;
	struct env_target	*et;
	char			 lp[ADDR_LOCAL_MAX + 1];
	enum db_rcpt		 r;

	if (addr_local_fold(a, lp, sizeof(lp)) == -1)
		return DB_RCPT_UNKNOWN;
	r = (a->flags & ADDR_F_LITERAL) ? DB_RCPT_NOT_LOCAL :
	    db_rcpt_resolve(st.db, lp, a->domain, &t);
	if (r == DB_RCPT_OK)
		add_targets(env, &t, given);
	else if (r == DB_RCPT_NOT_LOCAL) {
		et = envelope_add_target(env);
		strlcpy(et->domain, a->domain, sizeof(et->domain));
		strlcpy(et->local_part, a->local, sizeof(et->local_part));
		strlcpy(et->rcpt, given, sizeof(et->rcpt));
	}
	return r;
}

static void
do_spool_commit(struct ipc_msg *m)
{
	struct envelope		 env;
	struct commit_ctx	*c;
	uint32_t		 i, n;
	const char		*lp, *dom, *given;
	bool			 bad = false;

	memset(&env, 0, sizeof(env));
	ipc_get_strbuf(m, env.qid, sizeof(env.qid));
	env.msglen = ipc_get_u64(m);
	ipc_get_strbuf(m, env.helo, sizeof(env.helo));
	ipc_get_strbuf(m, env.client, sizeof(env.client));
	ipc_get_strbuf(m, env.proto, sizeof(env.proto));
	ipc_get_strbuf(m, env.from, sizeof(env.from));
	env.body = ipc_get_u32(m);
	env.smtputf8 = ipc_get_u32(m) != 0;
	env.time = time(NULL);
	n = ipc_get_u32(m);
	for (i = 0; i < n; i++) {
		lp = ipc_get_str(m);
		dom = ipc_get_str(m);
		given = ipc_get_str(m);
		if (lp == NULL || dom == NULL || given == NULL)
			fatalx("store: null field in commit");
		if (!bad && add_rcpt(&env, lp, dom, given,
		    auth_session_user(m->id) != NULL) == -1)
			bad = true;
	}
	ipc_end(m);
	if (bad || n == 0) {
		envelope_clear(&env);
		queue_spool_abort(st.queue, env.qid);
		reply_u32(IMSG_SPOOL_COMMITTED, m->id, COMMIT_TEMPFAIL);
		return;
	}
	envelope_dedupe(&env);
	c = xcalloc(1, sizeof(*c));
	c->session = m->id;
	queue_spool_commit(st.queue, &env, commit_cb, c);
}

static void
do_spool_abort(struct ipc_msg *m)
{
	char	qid[QID_LEN + 1];

	ipc_get_strbuf(m, qid, sizeof(qid));
	ipc_end(m);
	queue_spool_abort(st.queue, qid);
}

static void
net_dispatch(struct ipc *c, struct ipc_msg *m, void *arg)
{
	if (m == NULL) {
		log_info("store event=exit reason=\"net has gone\"");
		exit(0);
	}
	if (m->fd != -1)
		fatalx("store: unexpected descriptor from net");
	switch (m->type) {
	case IMSG_RCPT_LOOKUP:
		do_rcpt_lookup(m);
		break;
	case IMSG_SPOOL_OPEN:
		do_spool_open(m);
		break;
	case IMSG_SPOOL_COMMIT:
		do_spool_commit(m);
		break;
	case IMSG_SPOOL_ABORT:
		do_spool_abort(m);
		break;
	case IMSG_AUTH_VERIFY:
		auth_verify(m);
		break;
	case IMSG_SESSION_END:
		ipc_end(m);
		auth_session_end(m->id);
		break;
	default:
		fatalx("store: unknown message %u from net", m->type);
	}
}

static void
exit_now(evutil_socket_t fd, short ev, void *arg)
{
	log_info("store event=exit reason=signal");
	exit(0);
}

/* SIGTERM: net, stopping too, may still commit what it has; we go when
 * it has gone, or after 3 s. */
static void
on_signal(evutil_socket_t sig, short ev, void *arg)
{
	struct timeval	tv = { 3, 0 };

	event_base_once(st.base, -1, EV_TIMEOUT, exit_now, NULL, &tv);
}

void
store_main(struct conf *conf)
{
	char		 err[512];
	struct event	*sigterm, *sigint;

	st.conf = conf;
	if (chdir(conf->data_dir) == -1)
		fatal("chdir %s", conf->data_dir);
	role_drop("store", conf->user, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (db_open("postino.db", &st.db, err, sizeof(err)) == -1)
		fatalx("%s", err);
	st.base = event_base_new();
	st.pool = pool_new(st.base, conf->workers);
	st.queue = queue_open(st.base, st.pool, conf);
	pickup_start(st.base, st.queue, conf);
	st.net = ipc_new(st.base, ROLE_FD_PEER, "net", net_dispatch, NULL);
	auth_init(st.db, st.pool, st.net);
	sigterm = evsignal_new(st.base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(st.base, SIGINT, on_signal, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("store event=ready");
	event_base_dispatch(st.base);
	exit(0);
}

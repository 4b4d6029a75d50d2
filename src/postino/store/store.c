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
#include "antivirus.h"
#include "auth.h"
#include "compat.h"
#include "control.h"
#include "db.h"
#include "dnscheck.h"
#include "intrusion.h"
#include "ipc.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "pickup.h"
#include "pop3.h"
#include "policy.h"
#include "queue.h"
#include "resolve.h"
#include "role.h"
#include "scheduler.h"
#include "shared.h"
#include "smtp_syntax.h"
#include "stats.h"
#include "xalloc.h"

static struct {
	struct conf		*conf;
	struct event_base	*base;
	struct ipc		*net;
	struct ipc		*parent;	/* reload */
	struct db		*db;
	struct queue		*queue;
	struct antivirus	*av;
	struct sched		*sched;
	struct pool		*pool;
	struct policy		*policy;
	struct resolver		*resolver;
	struct event		*resolve_tick;
	struct intrusion	*intrusion;
} st;

struct commit_ctx {
	uint64_t	session;
};

/* --- sessions --------------------------------------------------------- */

#define SESS_BUCKETS	4096

/* What the policy engine keeps of one of net's sessions. */
struct sess {
	struct sess		*next;
	uint64_t		 id;
	struct policy_session	 ps;
	/* a request waiting for its DNS facts (dnscheck.h) */
	struct dnscheck		*dc;
	enum policy_stage	 stage;
	char			 path[ADDR_PATH_MAX + 1];
	bool			 utf8;
};

static struct sess	*sessions[SESS_BUCKETS];

static struct sess **
sess_slot(uint64_t id)
{
	struct sess	**sp;

	for (sp = &sessions[id % SESS_BUCKETS]; *sp != NULL;
	    sp = &(*sp)->next)
		if ((*sp)->id == id)
			break;
	return sp;
}

static struct sess *
sess_find(uint64_t id)
{
	return *sess_slot(id);
}

static void
sess_end(uint64_t id)
{
	struct sess	**sp = sess_slot(id), *x = *sp;

	if (x == NULL)
		return;
	*sp = x->next;
	dnscheck_cancel(&x->dc);
	conf_unref(&x->ps.conf);
	policy_session_clear(&x->ps);
	free(x);
}

static void
policy_reply(uint64_t id, const struct policy_result *r)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_put_u32(&o, r->action);
	ipc_put_u32(&o, r->relay);
	ipc_put_str(&o, r->check);
	ipc_put_str(&o, r->reply);
	ipc_put_str(&o, r->header);
	ipc_send(st.net, IMSG_POLICY_RESULT, id, -1, &o);
}

/* Run a stage of the policy engine for session x and answer net. */
static void
decide(struct sess *x, enum policy_stage stage, const struct policy_input *in)
{
	struct policy_result	res;

	policy_run(st.policy, stage, &x->ps, in, &res, NULL, NULL);
	stats_policy(stage, x->ps.profile, &res);
	if (res.action == POLICY_REJECT && strcmp(res.check, "recipient") == 0)
		intrusion_event(st.intrusion, x->ps.ip, INTR_UNKNOWN_RCPT, 1);
	policy_reply(x->id, &res);
	/* a host name the reload just found is looked up now */
	if (stage != POLICY_RCPT)
		policy_resolve(st.policy, st.resolver);
}

static void
dns_done(void *arg)
{
	struct sess		*x = arg;
	struct policy_input	 in = { x->path, x->utf8 };

	x->dc = NULL;
	decide(x, x->stage, x->stage == POLICY_MAIL ? &in : NULL);
}

static void
do_policy(struct ipc_msg *m)
{
	struct policy_input	 in = { NULL, false };
	struct sess		*x, **sp;
	const char		*ip, *helo;
	uint32_t		 stage, profile;

	stage = ipc_get_u32(m);
	if (stage == POLICY_CONNECT) {
		ip = ipc_get_str(m);
		profile = ipc_get_u32(m);
		ipc_end(m);
		if (ip == NULL || profile > PROFILE_POP3S)
			fatalx("store: bad connect from net");
		if (*(sp = sess_slot(m->id)) != NULL)
			fatalx("store: session %llu connects twice",
			    (unsigned long long)m->id);
		x = xcalloc(1, sizeof(*x));
		x->id = m->id;
		policy_session_init(&x->ps, ip, profile);
		/* Its checks keep the settings it started with. */
		x->ps.conf = conf_ref(st.conf);
		*sp = x;
		intrusion_event(st.intrusion, ip, INTR_CONNECTION, 1);
	} else if (stage == POLICY_MAIL || stage == POLICY_RCPT) {
		if ((x = sess_find(m->id)) == NULL)
			fatalx("store: policy request for unknown session");
		if (stage == POLICY_MAIL) {
			helo = ipc_get_str(m);
			if (helo == NULL)
				fatalx("store: null helo from net");
			strlcpy(x->ps.helo, helo, sizeof(x->ps.helo));
		}
		in.path = ipc_get_str(m);
		if (stage == POLICY_MAIL)
			in.utf8 = ipc_get_u32(m) != 0;
		else
			in.utf8 = x->ps.utf8;
		ipc_end(m);
		if (in.path == NULL)
			fatalx("store: null path from net");
	} else
		fatalx("store: policy stage %u from net", stage);
	if (x->dc != NULL)
		fatalx("store: policy request while one waits for the DNS");
	snprintf(x->ps.auth, sizeof(x->ps.auth), "%s",
	    auth_session_user(m->id) ? auth_session_user(m->id) : "");
	/* DNSBL at connect, the sender's domain at MAIL: the answer waits
	 * for them (the path, inside m, is kept meanwhile); whom they skip
	 * (trusted hosts) is as the administrator left it just now */
	if (stage != POLICY_RCPT)
		policy_reload(st.policy, false);
	if ((in.path == NULL || strlen(in.path) < sizeof(x->path)) &&
	    (x->dc = dnscheck_start(st.resolver, st.policy, stage, &x->ps,
	    in.path, dns_done, x)) != NULL) {
		x->stage = stage;
		strlcpy(x->path, in.path ? in.path : "", sizeof(x->path));
		x->utf8 = in.utf8;
		return;
	}
	decide(x, stage, in.path ? &in : NULL);
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

/* IMSG_SPOOL_COMMITTED; virus: the name for COMMIT_INFECTED, or NULL. */
static void
commit_reply(uint64_t id, enum commit_status status, const char *virus)
{
	struct ipc_out	o;

	ipc_out_init(&o);
	ipc_put_u32(&o, status);
	ipc_put_str(&o, virus != NULL ? virus : "");
	ipc_send(st.net, IMSG_SPOOL_COMMITTED, id, -1, &o);
}

static void
commit_cb(void *arg, enum commit_status status, const char *virus)
{
	struct commit_ctx	*c = arg;

	stats_commit(status);
	if (st.net != NULL)
		commit_reply(c->session, status, virus);
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
 * Add the targets of one recipient; -1 (and a log line) if the policy
 * engine did not accept it in this transaction, or it does not resolve
 * now as it did then.  A recipient outside the local domains is queued
 * only when the engine accepted it for relay (R3.6).
 */
static int
add_rcpt(struct envelope *env, const struct policy_session *ps,
    const char *path)
{
	struct db_targets	 t;
	struct mailaddr		 a;
	char			 lp[ADDR_LOCAL_MAX + 1];
	char			 esc[ADDR_PATH_MAX * 4];
	bool			 relay;
	enum db_rcpt		 r = DB_RCPT_UNKNOWN;

	if (policy_rcpt_parse(st.policy, path, ps->utf8, &a, lp,
	    sizeof(lp)) == -1 ||
	    !policy_rcpt_accepted(ps, lp, a.domain, &relay)) {
		log_warn("queue qid=%s event=commit-refused reason=\"recipient "
		    "not accepted at RCPT\"", env->qid);
		return -1;
	}
	if (relay) {
		store_envelope_add(env, &a, path);
		return 0;
	}
	if ((r = db_rcpt_resolve(st.db, lp, a.domain, &t)) != DB_RCPT_OK) {
		log_warn("queue qid=%s event=commit-refused rcpt=<%s> "
		    "lookup=%d", env->qid, log_escape(path, strlen(path), esc,
		    sizeof(esc)), (int)r);
		return -1;
	}
	add_targets(env, &t, path);
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

/* R4.4, R4.6: what a session sends counts toward its limits. */
static void
count_message(const struct policy_session *ps, unsigned int nrcpt)
{
	const char	*acct = ps->auth[0] != '\0' ? ps->auth :
			    ps->authz == AUTHZ_GRANT ? ps->identity : NULL;

	intrusion_rate_add(st.intrusion, ps->ip, acct, 1, nrcpt);
	intrusion_event(st.intrusion, ps->ip, INTR_MESSAGE, 1);
}

static void
do_spool_commit(struct ipc_msg *m)
{
	struct envelope		 env;
	struct commit_ctx	*c;
	struct sess		*x;
	uint32_t		 i, n;
	const char		*path;
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
	if ((x = sess_find(m->id)) == NULL || !x->ps.in_tx ||
	    strcasecmp(env.from, x->ps.sender) != 0) {
		log_warn("queue qid=%s event=commit-refused reason=\"sender "
		    "not accepted at MAIL\"", env.qid);
		bad = true;
	}
	for (i = 0; i < n; i++) {
		if ((path = ipc_get_str(m)) == NULL)
			fatalx("store: null field in commit");
		if (!bad && add_rcpt(&env, &x->ps, path) == -1)
			bad = true;
	}
	ipc_end(m);
	if (bad || n == 0) {
		envelope_clear(&env);
		queue_spool_abort(st.queue, env.qid);
		commit_reply(m->id, COMMIT_TEMPFAIL, NULL);
		return;
	}
	envelope_dedupe(&env);
	count_message(&x->ps, n);
	c = xcalloc(1, sizeof(*c));
	c->session = m->id;
	/* R4.5: clamd scans it first, when [antivirus] clamd is set */
	antivirus_spool_commit(st.av, &env, commit_cb, c);
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
queue_added(void *arg, const char *qid)
{
	sched_add(st.sched, qid);
}

/* IMSG_SESSION_END: the refused commands count toward a block. */
static void
session_end(struct ipc_msg *m)
{
	struct sess	*x = sess_find(m->id);
	uint32_t	 errors = ipc_get_u32(m);

	ipc_end(m);
	if (x != NULL && errors > 0)
		intrusion_event(st.intrusion, x->ps.ip, INTR_PROTOCOL_ERROR,
		    errors);
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
	/* the lookups of one request: one read transaction (db.h) */
	db_read_begin(st.db);
	switch (m->type) {
	case IMSG_POLICY:
		do_policy(m);
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
		session_end(m);
		pop3_session_end(m->id);
		auth_session_end(m->id);
		sess_end(m->id);
		break;
	case IMSG_POP3_OPEN:
		pop3_open(m);
		break;
	case IMSG_POP3_READ:
		pop3_read(m);
		break;
	case IMSG_POP3_UPDATE:
		pop3_update(m);
		break;
	case IMSG_AUTH_END:
		ipc_end(m);
		auth_session_end(m->id);
		break;
	case IMSG_AUTH_FAILED:
		auth_net_failed(m);
		break;
	case IMSG_DELIVER_RESULT:
		sched_delivery_result(st.sched, m);
		break;
	case IMSG_METRICS:
		stats_net(m);
		break;
	default:
		fatalx("store: unknown message %u from net", m->type);
	}
	db_read_end(st.db);
}

/* --- reload ------------------------------------------------------------ */

/*
 * How long the store's own reference to a configuration replaced by a
 * reload stays: work already running on a worker (a clamd scan, a
 * mailbox open) may still read it; none takes nearly this long.  Each
 * session holds its own reference besides, to its end.
 */
#define CONF_RETIRE_SECONDS	900

static void
conf_retire(evutil_socket_t fd, short ev, void *arg)
{
	const struct conf	*c = arg;

	conf_unref(&c);
}

/* The parent's new configuration (checked there): for the sessions
 * from now on; a session in flight finishes on its own. */
static bool
reload(int fd, const char *path, uint64_t gen)
{
	struct timeval	 tv = { CONF_RETIRE_SECONDS, 0 };
	struct conf	*nc;
	char		 err[1024], esc[sizeof(err) * 4];
	bool		 ok;

	if (conf_load_fd(fd, path, &nc, err, sizeof(err)) == -1) {
		log_err("store event=reload-failed error=\"%s\"",
		    log_escape_quoted(err, strlen(err), esc, sizeof(esc)));
		return false;
	}
	policy_reconf(st.policy, nc);
	intrusion_reconf(st.intrusion, nc);
	antivirus_reconf(st.av, nc);
	ok = sched_reconf(st.sched, nc);
	pickup_reconf(nc);
	auth_reconf(nc);
	pop3_reconf(nc);
	stats_reconf(nc);
	event_base_once(st.base, -1, EV_TIMEOUT, conf_retire, st.conf, &tv);
	st.conf = nc;
	log_init("store", (int)nc->log_level);
	log_info("store event=reload generation=%llu",
	    (unsigned long long)gen);
	return ok;
}

/* postino-admin reload, waiting for the parent's answer. */
struct reload_ask {
	struct reload_ask	*next;
	uint64_t		 id;
	control_answer_cb	 cb;
	void			*arg;
};
static struct reload_ask	*asks;

static void
reload_ask(control_answer_cb cb, void *arg)
{
	static uint64_t		 next_id;
	struct reload_ask	*a = xcalloc(1, sizeof(*a));
	struct ipc_out		 o;

	/* This store's pid in the high half: an answer the parent meant
	 * for a store before a restart can never match. */
	a->id = (uint64_t)getpid() << 32 | ++next_id;
	a->cb = cb;
	a->arg = arg;
	a->next = asks;
	asks = a;
	ipc_out_init(&o);
	ipc_send(st.parent, IMSG_PARENT_RELOAD_ASK, a->id, -1, &o);
}

static void
reload_answered(struct ipc_msg *m)
{
	struct reload_ask	**ap, *a;
	const char		 *text;
	char			  line[1200];
	uint32_t		  ok;
	int			  n;

	ok = ipc_get_u32(m);
	text = ipc_get_str(m);
	ipc_end(m);
	for (ap = &asks; (a = *ap) != NULL && a->id != m->id; ap = &a->next)
		;
	if (a == NULL)
		return;
	*ap = a->next;
	n = snprintf(line, sizeof(line), "%s%s\n", ok ? "ok\n" : "error ",
	    text != NULL ? text : "");
	a->cb(a->arg, line, n < (int)sizeof(line) ? (size_t)n :
	    sizeof(line) - 1);
	free(a);
}

static void
parent_dispatch(struct ipc *c, struct ipc_msg *m, void *arg)
{
	if (m == NULL) {
		log_info("store event=exit reason=\"parent has gone\"");
		exit(0);
	}
	switch (m->type) {
	case IMSG_PARENT_RELOAD:
		role_reload(c, m, reload);
		break;
	case IMSG_PARENT_RELOAD_DONE:
		reload_answered(m);
		break;
	default:
		fatalx("store: unexpected message %u from the parent", m->type);
	}
}

/* Host names of the trusted list: looked up again as TTLs run out. */
static void
resolve_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval	tv = { 10, 0 };

	policy_reload(st.policy, false);
	policy_resolve(st.policy, st.resolver);
	intrusion_tick(st.intrusion);
	evtimer_add(st.resolve_tick, &tv);
}

static void
policy_start(struct conf *conf)
{
	char	err[256];

	st.policy = policy_new(conf, st.db);
	if (policy_reload(st.policy, true) == -1)
		fatalx("store: cannot read the policy lists");
	st.intrusion = intrusion_new(conf, st.db, st.policy);
	policy_set_intrusion(st.policy, st.intrusion);
	if ((st.resolver = resolver_new(st.base, conf->dns.servers.v,
	    conf->dns.servers.n, err,
	    sizeof(err))) == NULL)
		fatalx("store: resolver: %s", err);
	st.resolve_tick = evtimer_new(st.base, resolve_tick, NULL);
	resolve_tick(-1, 0, NULL);
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

	control_stop();
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
	if (shared_open(conf, &st.db, err, sizeof(err)) == -1)
		fatalx("%s", err);
	st.base = event_base_new();
	st.pool = pool_new(st.base, conf->workers);
	shared_start(st.base, st.pool);
	st.queue = queue_open(st.base, st.pool, conf);
	st.av = antivirus_new(st.pool, st.queue, conf);
	st.net = ipc_new(st.base, ROLE_FD_PEER, "net", net_dispatch, NULL);
	st.sched = sched_new(st.base, st.pool, conf, st.queue, st.net, st.db);
	queue_set_added(st.queue, queue_added, NULL);
	st.parent = ipc_new(st.base, ROLE_FD_PARENT, "parent",
	    parent_dispatch, NULL);
	control_start(st.base, st.sched, reload_ask);
	pickup_start(st.base, st.queue, conf);
	policy_start(conf);
	auth_init(conf, st.db, st.pool, st.net, st.intrusion);
	pop3_init(conf, st.pool, st.net);
	stats_init(conf, st.net, st.sched, st.intrusion);
	sigterm = evsignal_new(st.base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(st.base, SIGINT, on_signal, NULL);
	evsignal_add(sigterm, NULL);
	evsignal_add(sigint, NULL);
	log_info("store event=ready");
	event_base_dispatch(st.base);
	exit(0);
}

/*
 * stats.c - the statistics of R7.5 in the store role (see stats.h).
 *
 * Counters live where their events happen: net counts connections,
 * its own refusals and transaction times (metrics.h) and sends them
 * with each request; store counts the policy engine's refusals, the
 * commits, the logins, the deliveries, and reads the queue and the
 * blocks.  Everything is rendered here, once, in the Prometheus text
 * format (version 0.0.4): HELP and TYPE before each family, counters
 * named _total, label values escaped.  Every label value comes from a
 * table of ours or from the configuration, so the text is bounded;
 * what does not fit in one message is an error, not a cut.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipc.h"
#include "intrusion.h"
#include "log.h"
#include "metrics.h"
#include "sasl.h"
#include "scheduler.h"
#include "stats.h"
#include "xalloc.h"

#define CHECKS_MAX	32		/* rows of the policy table */
#define MECHS_MAX	8		/* of the SASL table, then "other" */
#define ASKS_MAX	16		/* control clients waiting for net */
#define TEXT_MAX	(IPC_MSG_MAX - 64)

enum { CLASS_PERM, CLASS_TEMP };

#define POLICY_STAGES	(POLICY_DATA + 1)

/* What the engine names a decision no check of its table made. */
static const char *const policy_extra[] = { "store-error", "syntax" };
#define NEXTRA	(sizeof(policy_extra) / sizeof(policy_extra[0]))

static const char *const transport_names[ST_TRANSPORT_MAX] = {
	"smtp", "lmtp", "maildir"
};
static const char *const outcome_names[SO_OUTCOME_MAX] = {
	"delivered", "deferred", "bounced"
};
static const char *const service_names[] = { "smtp", "pop3" };

/* Refusals at the end of a message, decided by the commit. */
static const struct {
	const char	*reason;
	bool		 temporary;
} commit_refusals[] = {
	[COMMIT_OK] = { NULL, false },
	[COMMIT_TEMPFAIL] = { "store-error", true },
	[COMMIT_NOSPACE] = { "store-error", true },
	[COMMIT_INFECTED] = { "virus", false },
	[COMMIT_SCANFAIL] = { "virus-scan", true },
};
#define NCOMMIT	(sizeof(commit_refusals) / sizeof(commit_refusals[0]))

struct ask {
	uint64_t		 id;
	control_answer_cb	 cb;
	void			*arg;
};

static struct {
	const struct conf	*conf;
	struct ipc		*net;
	struct sched		*sched;
	struct intrusion	*intrusion;
	size_t			 nchecks, nmechs;
	uint64_t		 accepted;
	uint64_t		 policy[CHECKS_MAX][2];
	/* by stage: the engine's own words, then any other */
	uint64_t		 policy_extra[POLICY_STAGES][NEXTRA + 1][2];
	uint64_t		 commit[NCOMMIT];
	uint64_t		 auth[2][MECHS_MAX + 1][2];	/* svc, mech, ok */
	uint64_t		 delivery[ST_TRANSPORT_MAX][SO_OUTCOME_MAX];
	struct ask		 asks[ASKS_MAX];
	uint64_t		 next_ask;
} sx;

/* The text being rendered: bounded, an overflow is remembered. */
struct text {
	char	buf[TEXT_MAX];
	size_t	len;
	bool	overflow;
	bool	comments;	/* HELP and TYPE lines (not for admin) */
};

void
stats_init(const struct conf *conf, struct ipc *net, struct sched *sched,
    struct intrusion *intrusion)
{
	sx.conf = conf;
	sx.net = net;
	sx.sched = sched;
	sx.intrusion = intrusion;
	if ((sx.nchecks = policy_ncheck()) > CHECKS_MAX)
		panic("stats: %zu policy checks, CHECKS_MAX %d", sx.nchecks,
		    CHECKS_MAX);
	while (sasl_mech_at(sx.nmechs) != NULL)
		sx.nmechs++;
	if (sx.nmechs > MECHS_MAX)
		panic("stats: %zu SASL mechanisms", sx.nmechs);
}

void
stats_reconf(const struct conf *conf)
{
	sx.conf = conf;
}

/* --- counting ------------------------------------------------------- */

static int
reply_class(const char *reply)
{
	return reply[0] == '4' ? CLASS_TEMP : CLASS_PERM;
}

void
stats_policy(enum policy_stage stage, enum listener_profile profile,
    const struct policy_result *r)
{
	enum policy_stage	st;
	size_t			i;

	if (r->action != POLICY_REJECT && r->action != POLICY_TEMPFAIL)
		return;
	if (profile == PROFILE_POP3 || profile == PROFILE_POP3S)
		return;		/* a POP3 connect: not an SMTP refusal */
	for (i = 0; i < sx.nchecks; i++)
		if (strcmp(policy_check_name(i, &st), r->check) == 0 &&
		    st == stage) {
			sx.policy[i][reply_class(r->reply)]++;
			return;
		}
	for (i = 0; i < NEXTRA; i++)
		if (strcmp(policy_extra[i], r->check) == 0)
			break;
	if ((size_t)stage < POLICY_STAGES)	/* NEXTRA: "other" */
		sx.policy_extra[stage][i][reply_class(r->reply)]++;
}

void
stats_commit(enum commit_status status)
{
	if (status == COMMIT_OK)
		sx.accepted++;
	else if ((size_t)status < NCOMMIT)
		sx.commit[status]++;
}

void
stats_auth(enum auth_service service, const char *mech, bool ok)
{
	size_t	i;

	/* POP3 USER/PASS is verified as PLAIN, and counted so */
	if (strcasecmp(mech, "USER") == 0)
		mech = "PLAIN";
	for (i = 0; i < sx.nmechs; i++)
		if (strcasecmp(sasl_mech_at(i)->name, mech) == 0)
			break;
	sx.auth[service == AUTH_POP3][i][ok]++;	/* nmechs: "other" */
}

void
stats_delivery(enum stats_transport t, enum stats_outcome o)
{
	__atomic_add_fetch(&sx.delivery[t][o], 1, __ATOMIC_RELAXED);
}

/* --- the text ------------------------------------------------------- */

static void
out(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2,
    3)));

static void
out(struct text *t, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (t->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(t->buf) - t->len) {
		t->overflow = true;
		return;
	}
	t->len += (size_t)n;
}

/* A family's HELP and TYPE lines. */
static void
family(struct text *t, const char *name, const char *type, const char *help)
{
	if (t->comments)
		out(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the exposition format wants it: \\, \" and \n. */
static const char *
label(const char *v, char *buf, size_t size)
{
	size_t	o = 0;

	for (; *v != '\0' && o + 3 < size; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			buf[o++] = '\\';
			buf[o++] = *v == '\n' ? 'n' : *v;
		} else
			buf[o++] = *v;
	}
	buf[o] = '\0';
	return buf;
}

static void
listener_families(struct text *t, const struct metrics_net *m)
{
	static const struct {
		const char	*name, *type, *help;
		size_t		 off;
	} fams[] = {
		{ "postino_connections_current", "gauge",
		    "Inbound connections open now, by listener.",
		    offsetof(struct metrics_listener, conn_current) },
		{ "postino_connections_peak", "gauge",
		    "Most inbound connections open at once since start.",
		    offsetof(struct metrics_listener, conn_peak) },
		{ "postino_connections_total", "counter",
		    "Inbound connections accepted.",
		    offsetof(struct metrics_listener, conn_total) },
		{ "postino_connections_refused_total", "counter",
		    "Inbound connections refused over max_connections or "
		    "max_connections_per_ip.",
		    offsetof(struct metrics_listener, conn_refused) },
	};
	char	name[CONF_NAME_MAX * 2];
	size_t	f, i;

	for (f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		family(t, fams[f].name, fams[f].type, fams[f].help);
		for (i = 0; i < sx.conf->nlisteners; i++)
			out(t, "%s{listener=\"%s\"} %llu\n", fams[f].name,
			    label(sx.conf->listeners[i].name, name,
			    sizeof(name)), *(const unsigned long long *)(
			    (const char *)&m->listener[i] + fams[f].off));
	}
}

static void
histograms(struct text *t, const struct metrics_net *m)
{
	const char			*h = "postino_smtp_transaction_seconds";
	const struct metrics_listener	*l;
	char				 name[CONF_NAME_MAX * 2];
	unsigned long long		 cum;
	size_t				 i, b;

	family(t, h, "histogram", "SMTP transactions from MAIL to the "
	    "final reply of DATA or BDAT, by listener.");
	for (i = 0; i < sx.conf->nlisteners; i++) {
		if (sx.conf->listeners[i].profile == PROFILE_POP3 ||
		    sx.conf->listeners[i].profile == PROFILE_POP3S)
			continue;
		l = &m->listener[i];
		label(sx.conf->listeners[i].name, name, sizeof(name));
		for (cum = 0, b = 0; b < METRICS_BUCKETS; b++) {
			cum += l->tx_bucket[b];
			out(t, "%s_bucket{listener=\"%s\",le=\"%g\"} %llu\n", h,
			    name, metrics_bucket_ms[b] / 1000.0, cum);
		}
		out(t, "%s_bucket{listener=\"%s\",le=\"+Inf\"} %llu\n", h, name,
		    (unsigned long long)l->tx_count);
		out(t, "%s_sum{listener=\"%s\"} %llu.%06llu\n", h, name,
		    (unsigned long long)(l->tx_sum_us / 1000000),
		    (unsigned long long)(l->tx_sum_us % 1000000));
		out(t, "%s_count{listener=\"%s\"} %llu\n", h, name,
		    (unsigned long long)l->tx_count);
	}
}

static void
outbound(struct text *t, const struct metrics_net *m)
{
	family(t, "postino_outbound_sessions_current", "gauge",
	    "Outbound SMTP and LMTP sessions (delivery jobs) open now.");
	out(t, "postino_outbound_sessions_current %llu\n",
	    (unsigned long long)m->out_current);
	family(t, "postino_outbound_sessions_peak", "gauge",
	    "Most outbound sessions open at once since start.");
	out(t, "postino_outbound_sessions_peak %llu\n",
	    (unsigned long long)m->out_peak);
	family(t, "postino_outbound_sessions_total", "counter",
	    "Outbound sessions (delivery jobs) started.");
	out(t, "postino_outbound_sessions_total %llu\n",
	    (unsigned long long)m->out_total);
}

/* One series of postino_smtp_rejections_total, before it is written. */
struct rej_row {
	const char	*stage, *reason;
	int		 class;
	uint64_t	 n;
};

/*
 * Add n to the row of these labels, or make it: the same check may be
 * counted by net and by store (the 4.3.x "store-error" at the end of
 * DATA, the R3.10 "max-recipients"), and is one series.
 */
static void
rej_add(struct rej_row *rows, size_t *nrows, size_t max, const char *stage,
    const char *reason, int class, uint64_t n)
{
	size_t	i;

	for (i = 0; i < *nrows; i++)
		if (rows[i].class == class && strcmp(rows[i].stage, stage) ==
		    0 && strcmp(rows[i].reason, reason) == 0) {
			rows[i].n += n;
			return;
		}
	if (*nrows == max)
		panic("stats: more than %zu rejection rows", max);
	rows[(*nrows)++] = (struct rej_row){ stage, reason, class, n };
}

/*
 * Every refusal: the policy checks (each with both classes: a check
 * may answer either), net's own, the commit's; the reasons are the
 * check= words of the log lines.
 */
static void
rejections(struct text *t, const struct metrics_net *m)
{
	struct rej_row		 rows[2 * CHECKS_MAX + POLICY_STAGES *
				    (NEXTRA + 1) * 2 + MR_MAX + NCOMMIT];
	enum policy_stage	 st;
	const char		*name;
	size_t			 i, n = 0, max = sizeof(rows) / sizeof(rows[0]);
	int			 c;

	family(t, "postino_messages_accepted_total", "counter",
	    "Messages committed to the queue (250 after DATA or BDAT).");
	out(t, "postino_messages_accepted_total %llu\n",
	    (unsigned long long)sx.accepted);
	for (i = 0; i < sx.nchecks; i++) {
		name = policy_check_name(i, &st);
		for (c = CLASS_PERM; c <= CLASS_TEMP; c++)
			rej_add(rows, &n, max, policy_stage_name(st), name, c,
			    sx.policy[i][c]);
	}
	for (st = 0; st < POLICY_STAGES; st++)
		for (i = 0; i <= NEXTRA; i++)
			for (c = CLASS_PERM; c <= CLASS_TEMP; c++)
				if (sx.policy_extra[st][i][c] > 0)
					rej_add(rows, &n, max,
					    policy_stage_name(st), i < NEXTRA ?
					    policy_extra[i] : "other", c,
					    sx.policy_extra[st][i][c]);
	for (i = 0; i < MR_MAX; i++)
		rej_add(rows, &n, max, metrics_refusals[i].stage,
		    metrics_refusals[i].reason, metrics_refusals[i].temporary ?
		    CLASS_TEMP : CLASS_PERM, m->refused[i]);
	for (i = 1; i < NCOMMIT; i++)
		rej_add(rows, &n, max, "data", commit_refusals[i].reason,
		    commit_refusals[i].temporary ? CLASS_TEMP : CLASS_PERM,
		    sx.commit[i]);
	family(t, "postino_smtp_rejections_total", "counter",
	    "SMTP commands refused, by stage, reason (the check the log "
	    "names) and reply class; a refused RCPT counts once.");
	for (i = 0; i < n; i++)
		out(t, "postino_smtp_rejections_total{stage=\"%s\","
		    "reason=\"%s\",class=\"%s\"} %llu\n", rows[i].stage,
		    rows[i].reason, rows[i].class == CLASS_TEMP ? "temporary" :
		    "permanent", (unsigned long long)rows[i].n);
}

static void
deliveries(struct text *t)
{
	size_t		i, j;
	uint64_t	n;

	family(t, "postino_deliveries_total", "counter",
	    "Delivery attempts per recipient, by transport and outcome.");
	for (i = 0; i < ST_TRANSPORT_MAX; i++)
		for (j = 0; j < SO_OUTCOME_MAX; j++) {
			n = __atomic_load_n(&sx.delivery[i][j],
			    __ATOMIC_RELAXED);
			out(t, "postino_deliveries_total{transport=\"%s\","
			    "outcome=\"%s\"} %llu\n", transport_names[i],
			    outcome_names[j], (unsigned long long)n);
		}
}

static void
queue_and_blocks(struct text *t)
{
	size_t		n, i;
	uint64_t	oldest;

	sched_queue_stats(sx.sched, &n, &oldest);
	family(t, "postino_queue_messages", "gauge",
	    "Messages in the queue (held ones not counted).");
	out(t, "postino_queue_messages %zu\n", n);
	family(t, "postino_queue_oldest_seconds", "gauge",
	    "Age of the oldest message in the queue; 0 when empty.");
	out(t, "postino_queue_oldest_seconds %llu\n",
	    (unsigned long long)oldest);
	family(t, "postino_blocks_total", "counter",
	    "Client addresses blocked (R4.4), by reason.");
	for (i = 0; i < INTR_MAX; i++)
		out(t, "postino_blocks_total{reason=\"%s\"} %llu\n",
		    intrusion_event_name((enum intrusion_event)i),
		    (unsigned long long)intrusion_blocks(sx.intrusion,
		    (enum intrusion_event)i));
}

static void
logins(struct text *t)
{
	size_t	svc, i;
	int	ok;

	family(t, "postino_auth_total", "counter",
	    "Logins (SMTP AUTH, POP3) by service, mechanism and result.");
	for (svc = 0; svc < 2; svc++)
		for (i = 0; i <= sx.nmechs; i++)
			for (ok = 1; ok >= 0; ok--) {
				if (i == sx.nmechs && sx.auth[svc][i][ok] == 0)
					continue;	/* "other": if seen */
				out(t, "postino_auth_total{service=\"%s\","
				    "mechanism=\"%s\",result=\"%s\"} %llu\n",
				    service_names[svc], i < sx.nmechs ?
				    sasl_mech_at(i)->name : "other", ok ?
				    "success" : "failure", (unsigned long long)
				    sx.auth[svc][i][ok]);
			}
}

static void
render(struct text *t, const struct metrics_net *m)
{
	listener_families(t, m);
	outbound(t, m);
	rejections(t, m);
	histograms(t, m);
	logins(t);
	deliveries(t);
	queue_and_blocks(t);
}

/* --- requests ------------------------------------------------------- */

static struct ask *
ask_find(uint64_t id)
{
	size_t	i;

	for (i = 0; i < ASKS_MAX; i++)
		if (sx.asks[i].cb != NULL && sx.asks[i].id == id)
			return &sx.asks[i];
	return NULL;
}

void
stats_net(struct ipc_msg *msg)
{
	static struct text	 t;
	struct metrics_net	 m;
	struct ipc_out		 o;
	struct ask		*a;
	uint32_t		 why = ipc_get_u32(msg);

	if (why != METRICS_FOR_HTTP && why != METRICS_FOR_ADMIN)
		fatalx("store: metrics request %u from net", why);
	metrics_net_get(msg, &m, sx.conf);
	ipc_end(msg);
	t.len = 0;
	t.overflow = false;
	t.comments = why == METRICS_FOR_HTTP;
	if (why == METRICS_FOR_ADMIN)
		out(&t, "ok\n");		/* control.c's answer */
	render(&t, &m);
	if (t.overflow)
		log_err("store event=metrics-too-large max=%d", TEXT_MAX);
	t.buf[t.overflow ? 0 : t.len] = '\0';
	if (why == METRICS_FOR_HTTP) {
		ipc_out_init(&o);
		ipc_put_u32(&o, !t.overflow);
		ipc_put_str(&o, t.buf);
		ipc_send(sx.net, IMSG_METRICS_TEXT, msg->id, -1, &o);
		return;
	}
	if ((a = ask_find(msg->id)) == NULL)
		return;
	if (t.overflow)
		a->cb(a->arg, "error statistics too large\n", 27);
	else
		a->cb(a->arg, t.buf, t.len);
	a->cb = NULL;
}

void
stats_control(control_answer_cb cb, void *arg)
{
	struct ipc_out	o;
	size_t		i;

	for (i = 0; i < ASKS_MAX && sx.asks[i].cb != NULL; i++)
		;
	if (i == ASKS_MAX) {
		cb(arg, "error busy\n", 11);
		return;
	}
	sx.asks[i] = (struct ask){ ++sx.next_ask, cb, arg };
	ipc_out_init(&o);
	ipc_send(sx.net, IMSG_METRICS_ASK, sx.asks[i].id, -1, &o);
}

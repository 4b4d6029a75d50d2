/*
 * policy.c - the policy engine: the table of checks and what each one
 * decides.  policy.h says how it is used; docs/policy.md says, for an
 * administrator, what every check does and which reply it gives.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "compat.h"
#include "db.h"
#include "intrusion.h"
#include "iptable.h"
#include "ipmatch.h"
#include "log.h"
#include "policy.h"
#include "resolve.h"
#include "xalloc.h"

#define HOSTS_MAX	1024	/* host names in the trusted list */
#define HOST_ADDRS_MAX	64
#define TTL_MIN		30	/* seconds a host name's addresses are kept */
#define TTL_MAX		86400
#define RETRY_SECS	60	/* after a failed lookup */

/* A host name of the trusted list and what it resolved to. */
struct policy_host {
	char		 name[ADDR_DOMAIN_MAX + 1];
	uint8_t		 addrs[HOST_ADDRS_MAX][16];
	size_t		 naddrs;
	time_t		 expires;	/* 0: never looked up */
	bool		 pending;
	bool		 seen;		/* still in the list */
};

/* A bypass list (R3.3): addresses and domains, and address entries. */
struct bypass {
	char		**names;	/* sorted, lower case */
	size_t		  n;
	struct iptable	  ips;
};

struct policy {
	const struct conf	*conf;
	struct db		*db;
	long long		 version;	/* db_data_version at load */
	bool			 loaded;
	struct iptable		 trusted;	/* addresses, CIDR, ranges */
	struct iptable		 trusted_names;	/* resolved host names */
	struct policy_host	*hosts;
	size_t			 nhosts;
	size_t			 resolving;
	time_t			 due;		/* next name to look up */
	struct iptable		 devices;
	struct bypass		 local_sender, auth_mismatch;
	struct iptable		 never_blocked;	/* [intrusion] bypass */
	struct intrusion	*intrusion;	/* rate counters; NULL in explain */
};

/* One run of a stage: what the checks share. */
struct run {
	struct policy		*p;
	const struct conf	*conf;	/* the session's, else p's */
	enum policy_stage	 stage;
	struct policy_session	*s;
	struct policy_result	*res;
	char			 detail[POLICY_DETAIL_MAX];

	/* RCPT */
	struct mailaddr		 to;
	const char		*given;		/* as the client wrote it */
	char			 lp[ADDR_LOCAL_MAX + 1];	/* folded */
	char			 addr[ADDR_LOCAL_MAX + ADDR_DOMAIN_MAX + 2];
	bool			 literal;	/* [192.0.2.1] */
	bool			 trick;		/* % ! @ in the local part */
	int			 local;		/* domain local: 1, 0, -1 */

	struct db_cred		 cred;		/* MAIL: a grant's account */
};

typedef enum policy_action check_fn(struct run *);

static check_fn	check_blocked, check_dnsbl, check_devices,
		check_submission_auth, check_authorized, check_sender,
		check_sender_domain, check_spf, check_rate_messages,
		check_max_recipients, check_recipient_form, check_local_sender,
		check_auth_sender, check_rate_recipients, check_relay,
		check_recipient;

static const struct check {
	const char		*name;
	enum policy_stage	 stage;
	check_fn		*fn;
} checks[] = {
	{ "blocked",		POLICY_CONNECT,	check_blocked },
	{ "dnsbl",		POLICY_CONNECT,	check_dnsbl },
	{ "devices",		POLICY_CONNECT,	check_devices },
	{ "submission-auth",	POLICY_MAIL,	check_submission_auth },
	{ "authorized",		POLICY_MAIL,	check_authorized },
	{ "sender",		POLICY_MAIL,	check_sender },
	{ "sender-domain",	POLICY_MAIL,	check_sender_domain },
	{ "spf",		POLICY_MAIL,	check_spf },
	{ "rate-messages",	POLICY_MAIL,	check_rate_messages },
	{ "max-recipients",	POLICY_RCPT,	check_max_recipients },
	{ "recipient-form",	POLICY_RCPT,	check_recipient_form },
	{ "local-sender",	POLICY_RCPT,	check_local_sender },
	{ "auth-sender",	POLICY_RCPT,	check_auth_sender },
	{ "rate-recipients",	POLICY_RCPT,	check_rate_recipients },
	{ "dnsbl",		POLICY_RCPT,	check_dnsbl },
	{ "relay",		POLICY_RCPT,	check_relay },
	{ "recipient",		POLICY_RCPT,	check_recipient },
};
#define NCHECKS	(sizeof(checks) / sizeof(checks[0]))

static const char *const stage_names[] = {
	"connect", "helo", "mail", "rcpt", "data"
};
static const char *const action_names[] = {
	"DUNNO", "ACCEPT", "REJECT", "TEMPFAIL"
};
static const char *const authz_names[] = {
	"no", "SMTP AUTH", "trusted host", "POP-before-SMTP grant",
	"registered device"
};

static void	detail(struct run *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static enum policy_action reply(struct run *, enum policy_action,
		    const char *, ...) __attribute__((format(printf, 3, 4)));

static void
detail(struct run *r, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

static enum policy_action
reply(struct run *r, enum policy_action a, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(r->res->reply, sizeof(r->res->reply), fmt, ap);
	va_end(ap);
	return a;
}

/* Named as itself, not as the check that ran into it: the log says
 * "event=defer check=store-error", which nobody is banned for. */
static enum policy_action
store_error(struct run *r)
{
	r->res->check = "store-error";
	detail(r, "store error");
	/* in the client's protocol: net refuses to send POP3 an SMTP reply */
	if (r->s->profile == PROFILE_POP3 || r->s->profile == PROFILE_POP3S)
		return reply(r, POLICY_TEMPFAIL, "-ERR [SYS/TEMP] Local error "
		    "in processing.");
	return reply(r, POLICY_TEMPFAIL,
	    "451 4.3.0 Error: local error in processing");
}

/* --- the lists ------------------------------------------------------- */

static void
bypass_clear(struct bypass *b)
{
	size_t	i;

	for (i = 0; i < b->n; i++)
		free(b->names[i]);
	free(b->names);
	b->names = NULL;
	b->n = 0;
	iptable_clear(&b->ips);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An entry: an address, "@domain" or "domain", or an address entry. */
static void
bypass_row(void *arg, int ncols, const char *const *cols)
{
	struct bypass	*b = arg;
	const char	*e = cols[0];
	char		*s;
	size_t		 i;

	if (ncols < 1 || *e == '\0' || iptable_add_entry(&b->ips, e) == 0)
		return;
	if (*e == '@')
		e++;
	s = xstrdup(e);
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] += 'a' - 'A';
	b->names = xreallocarray(b->names, b->n + 1, sizeof(*b->names));
	b->names[b->n++] = s;
}

static void
bypass_build(struct bypass *b)
{
	if (b->n > 1)
		qsort(b->names, b->n, sizeof(*b->names), cmp_str);
	iptable_build(&b->ips);
}

static bool
bypass_name(const struct bypass *b, const char *name)
{
	return *name != '\0' && b->n > 0 &&
	    bsearch(&name, b->names, b->n, sizeof(*b->names), cmp_str) != NULL;
}

/*
 * Does an entry of the list name the sender, the recipient, one of
 * their domains or the client?  The entry is written into why.
 */
static bool
bypass_match(const struct bypass *b, const struct run *r, char *why,
    size_t size)
{
	const char	*v[4] = { r->s->sender, r->s->sender_domain, r->addr,
			    r->to.domain };
	const char	*tag;
	size_t		 i;

	for (i = 0; i < 4; i++)
		if (bypass_name(b, v[i])) {
			snprintf(why, size, "%s", v[i]);
			return true;
		}
	if (r->s->ip_ok && (tag = iptable_lookup(&b->ips, r->s->ip16)) !=
	    NULL) {
		snprintf(why, size, "%s", tag);
		return true;
	}
	return false;
}

static void
trusted_row(void *arg, int ncols, const char *const *cols)
{
	struct policy		*p = arg;
	struct policy_host	*h;

	if (ncols < 1 || iptable_add_entry(&p->trusted, cols[0]) == 0)
		return;
	/* a host name: kept with its addresses if it was there before */
	for (h = p->hosts; h < p->hosts + p->nhosts; h++)
		if (strcasecmp(h->name, cols[0]) == 0) {
			h->seen = true;
			return;
		}
	if (p->nhosts == HOSTS_MAX || strlen(cols[0]) > ADDR_DOMAIN_MAX)
		return;
	p->hosts = xreallocarray(p->hosts, p->nhosts + 1, sizeof(*p->hosts));
	h = &p->hosts[p->nhosts++];
	memset(h, 0, sizeof(*h));
	strlcpy(h->name, cols[0], sizeof(h->name));
	h->seen = true;
	p->due = 0;		/* look it up at the next policy_resolve */
}

static void
device_row(void *arg, int ncols, const char *const *cols)
{
	if (ncols >= 1)
		iptable_add_entry(arg, cols[0]);
}

static void
names_build(struct policy *p)
{
	struct ip_range		 r;
	struct policy_host	*h;
	size_t			 i;

	iptable_clear(&p->trusted_names);
	for (h = p->hosts; h < p->hosts + p->nhosts; h++)
		for (i = 0; i < h->naddrs; i++) {
			memcpy(r.lo, h->addrs[i], 16);
			memcpy(r.hi, h->addrs[i], 16);
			iptable_add(&p->trusted_names, &r, h->name);
		}
	iptable_build(&p->trusted_names);
}

/* Only the host names still in the list stay (a lookup under way for
 * one that went finds nothing to update). */
static void
hosts_prune(struct policy *p)
{
	size_t	i, j;

	for (i = j = 0; i < p->nhosts; i++)
		if (p->hosts[i].seen)
			p->hosts[j++] = p->hosts[i];
	p->nhosts = j;
}

int
policy_reload(struct policy *p, bool force)
{
	char		err[256], esc[sizeof(err) * 4];
	long long	v;

	if ((v = db_data_version(p->db)) == -1)
		return -1;
	if (p->loaded && !force && v == p->version)
		return 0;
	iptable_clear(&p->trusted);
	iptable_clear(&p->devices);
	for (size_t i = 0; i < p->nhosts; i++)
		p->hosts[i].seen = false;
	bypass_clear(&p->local_sender);
	bypass_clear(&p->auth_mismatch);
	if (db_view(p->db, DB_VIEW_TRUSTED, trusted_row, p, err,
	    sizeof(err)) == -1 ||
	    db_view(p->db, DB_VIEW_DEVICES, device_row, &p->devices, err,
	    sizeof(err)) == -1 ||
	    db_view(p->db, DB_VIEW_BYPASS_LOCAL_SENDER, bypass_row,
	    &p->local_sender, err, sizeof(err)) == -1 ||
	    db_view(p->db, DB_VIEW_BYPASS_AUTH_MISMATCH, bypass_row,
	    &p->auth_mismatch, err, sizeof(err)) == -1) {
		log_warn("policy event=reload-failed error=\"%s\"",
		    log_escape_quoted(err, strlen(err), esc, sizeof(esc)));
		p->loaded = false;
		return -1;
	}
	hosts_prune(p);
	iptable_build(&p->trusted);
	iptable_build(&p->devices);
	bypass_build(&p->local_sender);
	bypass_build(&p->auth_mismatch);
	names_build(p);
	p->version = v;
	p->loaded = true;
	log_debug("policy event=reload trusted=%zu hosts=%zu devices=%zu",
	    p->trusted.n, p->nhosts, p->devices.n);
	return 0;
}

/* --- host names ------------------------------------------------------ */

struct lookup {
	struct policy	*p;
	char		 name[ADDR_DOMAIN_MAX + 1];
};

static void
resolved(void *arg, enum resolve_status st, const uint8_t (*addrs)[16],
    size_t n, unsigned int ttl)
{
	struct lookup		*l = arg;
	struct policy		*p = l->p;
	struct policy_host	*h = NULL;
	size_t			 i;

	p->resolving--;
	for (i = 0; i < p->nhosts; i++)
		if (strcmp(p->hosts[i].name, l->name) == 0)
			h = &p->hosts[i];
	if (h == NULL || st == RESOLVE_CANCELLED) {
		if (h != NULL)
			h->pending = false;
		free(l);
		return;
	}
	h->pending = false;
	if (st == RESOLVE_OK) {
		h->naddrs = n < HOST_ADDRS_MAX ? n : HOST_ADDRS_MAX;
		if (h->naddrs > 0)
			memcpy(h->addrs, addrs, h->naddrs * 16);
		ttl = ttl < TTL_MIN ? TTL_MIN : ttl > TTL_MAX ? TTL_MAX : ttl;
	} else {
		/* a name that no longer exists trusts nobody; on a
		 * temporary failure the last answer stays a while */
		if (st == RESOLVE_NXDOMAIN)
			h->naddrs = 0;
		ttl = RETRY_SECS;
	}
	h->expires = time(NULL) + ttl;
	if (p->due == 0 || h->expires < p->due)
		p->due = h->expires;
	log_info("policy event=trusted-host name=%s addresses=%zu ttl=%u%s",
	    h->name, h->naddrs, ttl, st == RESOLVE_OK ? "" :
	    st == RESOLVE_NXDOMAIN ? " status=nxdomain" : " status=tempfail");
	names_build(p);
	free(l);
}

void
policy_resolve(struct policy *p, struct resolver *res)
{
	struct policy_host	*h;
	struct lookup		*l;
	time_t			 now = time(NULL);

	/* called for every connect and MAIL: mostly nothing is due */
	if (p->due > now)
		return;
	p->due = 0;
	for (h = p->hosts; h < p->hosts + p->nhosts; h++) {
		if (h->pending)
			continue;
		if (h->expires != 0 && h->expires > now) {
			if (p->due == 0 || h->expires < p->due)
				p->due = h->expires;
			continue;
		}
		h->pending = true;
		p->resolving++;
		l = xcalloc(1, sizeof(*l));
		l->p = p;
		strlcpy(l->name, h->name, sizeof(l->name));
		resolver_addrs(res, h->name, resolved, l);
	}
}

size_t
policy_resolving(const struct policy *p)
{
	return p->resolving;
}

/* --- the engine ------------------------------------------------------ */

/* [intrusion] bypass, from conf (at start and on reload). */
static void
never_blocked_build(struct policy *p, const struct conf *conf)
{
	char	esc[1024];
	size_t	i;

	iptable_clear(&p->never_blocked);
	for (i = 0; i < conf->intrusion.bypass.n; i++)
		if (iptable_add_entry(&p->never_blocked,
		    conf->intrusion.bypass.v[i]) == -1)
			log_warn("policy event=bad-entry key=bypass entry=\"%s\"",
			    log_escape_quoted(conf->intrusion.bypass.v[i],
			    strlen(conf->intrusion.bypass.v[i]), esc,
			    sizeof(esc)));
	iptable_build(&p->never_blocked);
}

struct policy *
policy_new(const struct conf *conf, struct db *db)
{
	struct policy	*p = xcalloc(1, sizeof(*p));

	p->conf = conf;
	p->db = db;
	iptable_init(&p->trusted);
	iptable_init(&p->trusted_names);
	iptable_init(&p->devices);
	iptable_init(&p->local_sender.ips);
	iptable_init(&p->auth_mismatch.ips);
	iptable_init(&p->never_blocked);
	never_blocked_build(p, conf);
	return p;
}

const struct conf *
policy_conf(const struct policy *p)
{
	return p->conf;
}

void
policy_reconf(struct policy *p, const struct conf *conf)
{
	p->conf = conf;
	never_blocked_build(p, conf);
}

int
policy_domain_local(const struct policy *p, const char *domain)
{
	return db_domain_local(p->db, domain);
}

void
policy_set_intrusion(struct policy *p, struct intrusion *in)
{
	p->intrusion = in;
}

bool
policy_trusted(const struct policy *p, const uint8_t ip16[16])
{
	return iptable_lookup(&p->trusted, ip16) != NULL ||
	    iptable_lookup(&p->trusted_names, ip16) != NULL;
}

bool
policy_never_blocked(const struct policy *p, const uint8_t ip16[16])
{
	return iptable_lookup(&p->never_blocked, ip16) != NULL ||
	    iptable_lookup(&p->trusted, ip16) != NULL ||
	    iptable_lookup(&p->trusted_names, ip16) != NULL;
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	iptable_clear(&p->trusted);
	iptable_clear(&p->trusted_names);
	iptable_clear(&p->devices);
	bypass_clear(&p->local_sender);
	bypass_clear(&p->auth_mismatch);
	iptable_clear(&p->never_blocked);
	free(p->hosts);
	free(p);
}

void
policy_session_init(struct policy_session *s, const char *ip,
    enum listener_profile profile)
{
	memset(s, 0, sizeof(*s));
	s->profile = profile;
	if (ipmatch_canon(ip, s->ip, sizeof(s->ip)) == 0 &&
	    ipmatch_addr(s->ip, s->ip16) == 0)
		s->ip_ok = true;
	else
		strlcpy(s->ip, ip, sizeof(s->ip));
}

void
policy_session_clear(struct policy_session *s)
{
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = 0;
}

static void
tx_reset(struct policy_session *s)
{
	policy_session_clear(s);
	s->in_tx = false;
	s->authz = AUTHZ_NONE;
	s->authz_by[0] = s->identity[0] = '\0';
	s->sender[0] = s->sender_given[0] = s->sender_domain[0] = '\0';
	s->sender_local = false;
	s->utf8 = false;
	s->naccepted = 0;
}

int
policy_rcpt_accepted(const struct policy_session *s, const char *local_part,
    const char *domain, bool *relay)
{
	size_t	i;

	for (i = 0; i < s->nrcpt; i++)
		if (strcmp(s->rcpts[i].local_part, local_part) == 0 &&
		    strcmp(s->rcpts[i].domain, domain) == 0) {
			*relay = s->rcpts[i].relay;
			return 1;
		}
	return 0;
}

/* connect ------------------------------------------------------------ */

static const char *
device_entry(const struct run *r)
{
	return r->s->ip_ok ? iptable_lookup(&r->p->devices, r->s->ip16) :
	    NULL;
}

/* R4.4: a blocked address is refused at once, on every listener. */
static enum policy_action
check_blocked(struct run *r)
{
	char		 reason[64];
	long long	 end;
	int		 b;

	if (!r->s->ip_ok) {
		detail(r, "no address");
		return POLICY_DUNNO;
	}
	if (policy_never_blocked(r->p, r->s->ip16)) {
		detail(r, "%s is never blocked (trusted or [intrusion] bypass)",
		    r->s->ip);
		return POLICY_DUNNO;
	}
	if ((b = db_block_find(r->p->db, r->s->ip, &end, reason,
	    sizeof(reason))) == -1)
		return store_error(r);
	if (b == 0) {
		detail(r, "%s is not blocked", r->s->ip);
		return POLICY_DUNNO;
	}
	(void)end;		/* "postino-admin block list" shows it */
	detail(r, "%s is blocked (%s); \"postino-admin block del\" lifts it",
	    r->s->ip, reason);
	if (r->s->profile == PROFILE_POP3 || r->s->profile == PROFILE_POP3S)
		return reply(r, POLICY_REJECT, "-ERR [SYS/TEMP] Client host "
		    "[%s] blocked, try again later.", r->s->ip);
	return reply(r, POLICY_REJECT, "421 4.7.0 Client host [%s] blocked, "
	    "try again later", r->s->ip);
}

/*
 * R4.1: a client a DNSBL lists (dnscheck.h looked it up at connect):
 * refused at once with dnsbl_close, else at each RCPT unless the
 * session is authorized.  Reply as Postfix words it.
 */
static enum policy_action
check_dnsbl(struct run *r)
{
	const struct policy_session	*s = r->s;
	const struct conf		*c = r->conf;

	if (c->antispam.dnsbl.n == 0) {
		detail(r, "no [antispam] dnsbl zones");
		return POLICY_DUNNO;
	}
	if (!s->dnsbl_checked) {
		detail(r, "not looked up: %s",
		    s->profile != PROFILE_MX ? "not the mx listener" :
		    s->ip_ok && policy_never_blocked(r->p, s->ip16) ?
		    "trusted or bypassed" : "no DNS here");
		return POLICY_DUNNO;
	}
	if (s->dnsbl_zone[0] == '\0') {
		detail(r, "%s listed by none of %zu zones", s->ip,
		    c->antispam.dnsbl.n);
		return POLICY_DUNNO;
	}
	if (r->stage == POLICY_CONNECT && !c->antispam.dnsbl_close) {
		detail(r, "%s listed by %s (%s): refused at RCPT", s->ip,
		    s->dnsbl_zone, s->dnsbl_code);
		return POLICY_DUNNO;
	}
	if (r->stage == POLICY_RCPT && s->authz != AUTHZ_NONE) {
		detail(r, "%s listed by %s, but the session is authorized",
		    s->ip, s->dnsbl_zone);
		return POLICY_DUNNO;
	}
	detail(r, "%s listed by %s (%s)", s->ip, s->dnsbl_zone, s->dnsbl_code);
	return reply(r, POLICY_REJECT, "554 5.7.1 Service unavailable; Client "
	    "host [%s] blocked using %s%s%s", s->ip, s->dnsbl_zone,
	    s->dnsbl_text[0] != '\0' ? "; " : "", s->dnsbl_text);
}

/* R3.9: the devices listener serves registered addresses only. */
static enum policy_action
check_devices(struct run *r)
{
	const char	*e;

	if (r->s->profile != PROFILE_DEVICES) {
		detail(r, "%s listener", conf_profile_name(r->s->profile));
		return POLICY_DUNNO;
	}
	if ((e = device_entry(r)) != NULL) {
		detail(r, "registered device %s", e);
		return POLICY_DUNNO;
	}
	detail(r, "%s is not registered with \"postino-admin device add\"",
	    r->s->ip);
	return reply(r, POLICY_REJECT, "554 5.7.1 Client host [%s] is not a "
	    "registered device", r->s->ip);
}

/* MAIL --------------------------------------------------------------- */

/* R2.6: the submission listeners take mail only after AUTH. */
static enum policy_action
check_submission_auth(struct run *r)
{
	if (r->s->profile != PROFILE_SUBMISSION &&
	    r->s->profile != PROFILE_SUBMISSIONS) {
		detail(r, "%s listener: AUTH not required",
		    conf_profile_name(r->s->profile));
		return POLICY_DUNNO;
	}
	if (r->s->auth[0] != '\0') {
		detail(r, "authenticated as %s", r->s->auth);
		return POLICY_DUNNO;
	}
	detail(r, "%s listener: AUTH required",
	    conf_profile_name(r->s->profile));
	return reply(r, POLICY_REJECT, "530 5.7.0 Authentication required");
}

/*
 * SPEC 3: authorized by AUTH, a trusted host (R3.5) or a live
 * POP-before-SMTP grant (R3.4), in that order; on the devices listener
 * by being a registered device (R3.9) and nothing else.  AUTH and a
 * grant (unless global) also name the account R3.2 holds the sender to.
 */
static enum policy_action
check_authorized(struct run *r)
{
	struct policy_session	*s = r->s;
	const char		*e;
	char			 account[ADDR_PATH_MAX + 1];
	long long		 until;
	int			 g;

	if (s->profile == PROFILE_DEVICES) {
		if ((e = device_entry(r)) != NULL) {
			s->authz = AUTHZ_DEVICE;
			strlcpy(s->authz_by, e, sizeof(s->authz_by));
		}
	} else if (s->auth[0] != '\0') {
		s->authz = AUTHZ_AUTH;
		strlcpy(s->authz_by, s->auth, sizeof(s->authz_by));
		strlcpy(s->identity, s->auth, sizeof(s->identity));
	} else if (s->ip_ok &&
	    ((e = iptable_lookup(&r->p->trusted, s->ip16)) != NULL ||
	    (e = iptable_lookup(&r->p->trusted_names, s->ip16)) != NULL)) {
		s->authz = AUTHZ_TRUSTED;
		strlcpy(s->authz_by, e, sizeof(s->authz_by));
	} else if (r->conf->relay.pop_before_smtp_minutes > 0 && s->ip_ok) {
		if ((g = db_popauth_find(r->p->db, s->ip, account,
		    sizeof(account), &until)) == -1)
			return store_error(r);
		/* the rights of SMTP AUTH as that account: not once it
		 * has been disabled */
		if (g == 1 && db_account_cred(r->p->db, account, false,
		    &r->cred) == DB_AUTH_TEMPFAIL)
			return store_error(r);
		if (g == 1 && r->cred.usable) {
			s->authz = AUTHZ_GRANT;
			strlcpy(s->authz_by, account, sizeof(s->authz_by));
			if (!r->conf->relay.pop_before_smtp_global)
				strlcpy(s->identity, account,
				    sizeof(s->identity));
		}
	}
	switch (s->authz) {
	case AUTHZ_NONE:
		detail(r, "no: not authenticated, %s not trusted, no "
		    "POP-before-SMTP grant", s->ip);
		break;
	case AUTHZ_GRANT:
		detail(r, "yes: POP-before-SMTP grant of %s as %s%s", s->ip,
		    s->authz_by, s->identity[0] ? "" : " (global)");
		break;
	default:
		detail(r, "yes: %s %s", authz_names[s->authz], s->authz_by);
		break;
	}
	return POLICY_DUNNO;
}

static enum policy_action
check_sender(struct run *r)
{
	struct policy_session	*s = r->s;
	int			 l;

	if (s->sender[0] == '\0') {
		detail(r, "null sender <>");
		return POLICY_DUNNO;
	}
	if ((l = db_domain_local(r->p->db, s->sender_domain)) == -1)
		return store_error(r);
	s->sender_local = l == 1;
	detail(r, "%s: %s domain", s->sender, l ? "local" : "remote");
	return POLICY_DUNNO;
}

/* R4.2: a remote sender's domain must exist (dnscheck.h looked). */
static enum policy_action
check_sender_domain(struct run *r)
{
	const struct policy_session	*s = r->s;

	if (!r->conf->antispam.reject_unknown_sender_domain) {
		detail(r, "off");
		return POLICY_DUNNO;
	}
	if (s->sender[0] == '\0' || s->sender_local) {
		detail(r, s->sender[0] == '\0' ? "null sender <>" :
		    "local domain");
		return POLICY_DUNNO;
	}
	if (s->authz != AUTHZ_NONE) {
		detail(r, "session authorized");
		return POLICY_DUNNO;
	}
	if (s->sender_dns == SENDER_DNS_UNKNOWN ||
	    strcasecmp(s->sender_dns_domain, s->sender_domain) != 0) {
		detail(r, "%s not looked up (no DNS here, or not a host name)",
		    s->sender_domain);
		return POLICY_DUNNO;
	}
	switch (s->sender_dns) {
	case SENDER_DNS_OK:
		detail(r, "%s has an MX or an address", s->sender_domain);
		return POLICY_DUNNO;
	case SENDER_DNS_NONE:
		detail(r, "%s: no such domain, or no MX, A or AAAA",
		    s->sender_domain);
		return reply(r, POLICY_REJECT, "550 5.1.8 <%s>: Sender "
		    "address rejected: Domain not found", s->sender_given);
	case SENDER_DNS_NULL_MX:
		detail(r, "%s has a null MX", s->sender_domain);
		return reply(r, POLICY_REJECT, "550 5.7.27 <%s>: Sender "
		    "address rejected: Domain does not accept mail (null MX)",
		    s->sender_given);
	case SENDER_DNS_TEMPFAIL:
		detail(r, "%s: no answer from the DNS in time",
		    s->sender_domain);
		return reply(r, POLICY_TEMPFAIL, "451 4.4.3 <%s>: Sender "
		    "address rejected: Domain lookup failed, try again later",
		    s->sender_given);
	default:
		panic("policy: sender_dns %d", (int)s->sender_dns);
	}
}

/*
 * R4.3: SPF of a sender from a session not authorized (dnscheck.h ran
 * it): fail is refused (spf_fail = reject, the default), softfail with
 * spf_softfail = reject; every result is tagged, Received-SPF: in front
 * of the message.
 */
static enum policy_action
check_spf(struct run *r)
{
	const struct policy_session	*s = r->s;
	const struct conf		*c = r->conf;
	const char			*res = spf_result_name(s->spf);

	if (!c->antispam.spf) {
		detail(r, "off");
		return POLICY_DUNNO;
	}
	if (s->authz != AUTHZ_NONE || s->sender_local) {
		detail(r, s->authz != AUTHZ_NONE ? "session authorized" :
		    "local domain");
		return POLICY_DUNNO;
	}
	if (!s->spf_checked || strcasecmp(s->spf_sender, s->sender) != 0) {
		detail(r, "not checked (no DNS here, or not a host name)");
		return POLICY_DUNNO;
	}
	if ((s->spf == SPF_FAIL && c->antispam.spf_fail_reject) ||
	    (s->spf == SPF_SOFTFAIL && c->antispam.spf_softfail_reject)) {
		/* a softfail has no exp= text: say it as a fail would */
		detail(r, "%s", res);
		if (s->spf_exp[0] != '\0')
			return reply(r, POLICY_REJECT, "550 5.7.23 <%s>: Sender "
			    "address rejected: SPF %s: %s", s->sender_given, res,
			    s->spf_exp);
		return reply(r, POLICY_REJECT, "550 5.7.23 <%s>: Sender "
		    "address rejected: SPF %s: %s does not designate %s as "
		    "permitted sender", s->sender_given, res,
		    s->sender_domain[0] ? s->sender_domain : s->helo, s->ip);
	}
	detail(r, "%s: tagged", res);
	return POLICY_DUNNO;
}

/*
 * R4.6: messages and recipients of the last hour, of the account (AUTH,
 * or the account of a POP-before-SMTP grant) and of the address (not of
 * a trusted or bypassed one).  pending: what this transaction adds.
 */
static enum policy_action
check_rate(struct run *r, enum intrusion_rate what, unsigned int pending)
{
	const struct conf	*c = r->conf;
	const struct policy_session *s = r->s;
	const char		*noun = what == RATE_MESSAGES ? "Message" :
				    "Recipient";
	const char		*acct = s->auth[0] != '\0' ? s->auth :
				    s->authz == AUTHZ_GRANT && s->identity[0] ?
				    s->identity : NULL;
	unsigned int		 amax, imax, n = 0;

	amax = what == RATE_MESSAGES ? c->ratelimit.messages_per_account :
	    c->ratelimit.recipients_per_account;
	imax = what == RATE_MESSAGES ? c->ratelimit.messages_per_ip :
	    c->ratelimit.recipients_per_ip;
	if (acct == NULL)
		amax = 0;
	if (s->ip_ok && policy_never_blocked(r->p, s->ip16))
		imax = 0;
	if (amax == 0 && imax == 0) {
		detail(r, "no limit applies");
		return POLICY_DUNNO;
	}
	if (r->p->intrusion == NULL) {
		detail(r, "counted by the running daemon only");
		return POLICY_DUNNO;
	}
	if (amax != 0 && (n = intrusion_rate_account(r->p->intrusion, acct,
	    what)) + pending >= amax) {
		detail(r, "%s: %u in the last hour, at most %u", acct, n, amax);
		return reply(r, POLICY_TEMPFAIL, "%s %s rate limit of %u an "
		    "hour reached for %s", what == RATE_MESSAGES ?
		    "451 4.7.1" : "452 4.5.3", noun, amax, acct);
	}
	if (imax != 0 && (n = intrusion_rate_ip(r->p->intrusion, s->ip,
	    what)) + pending >= imax) {
		detail(r, "[%s]: %u in the last hour, at most %u", s->ip, n,
		    imax);
		return reply(r, POLICY_TEMPFAIL, "%s %s rate limit of %u an "
		    "hour reached for [%s]", what == RATE_MESSAGES ?
		    "451 4.7.1" : "452 4.5.3", noun, imax, s->ip);
	}
	detail(r, "under the limits");
	return POLICY_DUNNO;
}

static enum policy_action
check_rate_messages(struct run *r)
{
	return check_rate(r, RATE_MESSAGES, 0);
}

/* RCPT --------------------------------------------------------------- */

static enum policy_action
check_rate_recipients(struct run *r)
{
	return check_rate(r, RATE_RECIPIENTS, (unsigned int)r->s->naccepted);
}

/* R3.10 */
static enum policy_action
check_max_recipients(struct run *r)
{
	unsigned int	max = r->conf->smtp.max_recipients;

	detail(r, "%zu accepted, at most %u", r->s->naccepted, max);
	if (r->s->naccepted < max)
		return POLICY_DUNNO;
	return reply(r, POLICY_TEMPFAIL, "452 4.5.3 Too many recipients");
}

/*
 * R3.6: the forms that once opened relays.  Nothing here rewrites an
 * address: a local part holding '%', '!' or '@' (quoted) is what some
 * other mailer would route onwards, so it is never taken as local for
 * an unauthorized client; an address literal is never local at all; a
 * source route is dropped, as RFC 5321 4.1.1.3 lets a server do, and the
 * mailbox at its end decides.
 */
static enum policy_action
check_recipient_form(struct run *r)
{
	const char	*l = r->to.local;
	const char	*what = NULL;

	if (r->literal)
		what = "address literal: never a local domain";
	else if (strchr(l, '@') != NULL)
		what = "'@' in a quoted local part: never taken as local "
		    "unless authorized";
	else if (strchr(l, '%') != NULL)
		what = "percent hack: never taken as local unless authorized";
	else if (strchr(l, '!') != NULL)
		what = "bang path: never taken as local unless authorized";
	r->trick = what != NULL && !r->literal;
	if (what == NULL)
		what = r->to.flags & ADDR_F_ROUTE ? "source route dropped, "
		    "the mailbox decides" : "plain address";
	detail(r, "%s", what);
	return POLICY_DUNNO;
}

static bool
authorized(const struct run *r)
{
	return r->s->authz != AUTHZ_NONE;
}

/* R3.1, with its bypass list (R3.3). */
static enum policy_action
check_local_sender(struct run *r)
{
	char	why[ADDR_PATH_MAX + 1];

	if (!r->conf->relay.reject_unauthorized_local_sender) {
		detail(r, "off (reject_unauthorized_local_sender = no)");
		return POLICY_DUNNO;
	}
	if (!r->s->sender_local) {
		detail(r, "sender not in a local domain");
		return POLICY_DUNNO;
	}
	if (authorized(r)) {
		detail(r, "session authorized");
		return POLICY_DUNNO;
	}
	if (bypass_match(&r->p->local_sender, r, why, sizeof(why))) {
		detail(r, "bypass local-sender %s", why);
		return POLICY_DUNNO;
	}
	detail(r, "local sender, session not authorized");
	return reply(r, POLICY_REJECT, "550 5.7.1 <%s> Access to <%s> not "
	    "allowed", r->s->sender_given, r->given);
}

/* R3.2, with its bypass list (R3.3). */
static enum policy_action
check_auth_sender(struct run *r)
{
	char	why[ADDR_PATH_MAX + 1];
	int	owned;

	if (!r->conf->relay.reject_auth_sender_mismatch) {
		detail(r, "off (reject_auth_sender_mismatch = no)");
		return POLICY_DUNNO;
	}
	if (r->s->identity[0] == '\0') {
		detail(r, "no account to hold the sender to");
		return POLICY_DUNNO;
	}
	if (r->s->sender[0] == '\0') {
		detail(r, "null sender <>");
		return POLICY_DUNNO;
	}
	if ((owned = db_sender_owned(r->p->db, r->s->identity,
	    r->s->sender)) == -1)
		return store_error(r);
	if (owned) {
		detail(r, "%s may send as %s", r->s->identity, r->s->sender);
		return POLICY_DUNNO;
	}
	if (bypass_match(&r->p->auth_mismatch, r, why, sizeof(why))) {
		detail(r, "bypass auth-mismatch %s", why);
		return POLICY_DUNNO;
	}
	detail(r, "%s may not send as %s", r->s->identity, r->s->sender);
	return reply(r, POLICY_REJECT, "501 5.7.1 <%s>... Permission denied",
	    r->s->sender_given);
}

static enum policy_action
relay_denied(struct run *r)
{
	return reply(r, POLICY_REJECT, "550 5.7.1 <%s> Relay access denied",
	    r->given);
}

/* R3.6, R3.7, R3.9: may this recipient leave through us? */
static enum policy_action
check_relay(struct run *r)
{
	if (!r->literal &&
	    (r->local = db_domain_local(r->p->db, r->to.domain)) == -1)
		return store_error(r);
	if (r->to.flags & ADDR_F_POSTMASTER) {
		detail(r, "<postmaster> is never relayed");
		return POLICY_DUNNO;
	}
	if (r->local == 1 && !r->trick) {
		detail(r, "%s is a local domain", r->to.domain);
		return POLICY_DUNNO;
	}
	if (r->local == 1) {
		if (authorized(r)) {
			detail(r, "local domain, local part looked up as "
			    "written");
			return POLICY_DUNNO;
		}
		detail(r, "local part routes onwards, session not "
		    "authorized");
		return relay_denied(r);
	}
	if (r->s->profile == PROFILE_DEVICES) {
		detail(r, "devices may send to local domains only");
		return relay_denied(r);
	}
	if (!authorized(r)) {
		detail(r, "%s is not local, session not authorized",
		    r->to.domain);
		return relay_denied(r);
	}
	if (r->conf->relay.relay_only_local_senders && !r->s->sender_local) {
		detail(r, "relay_only_local_senders: sender not in a local "
		    "domain");
		return relay_denied(r);
	}
	detail(r, "relay for %s %s", authz_names[r->s->authz],
	    r->s->authz_by);
	r->res->relay = r->s->authz;
	return reply(r, POLICY_ACCEPT, "250 2.1.5 Ok");
}

/* R3.8 */
static enum policy_action
check_recipient(struct run *r)
{
	struct db_targets	t;

	switch (db_rcpt_resolve(r->p->db, r->lp, r->to.domain, &t)) {
	case DB_RCPT_OK:
		detail(r, "%s: %zu mailbox%s", r->addr, t.n,
		    t.n == 1 ? "" : "es");
		return reply(r, POLICY_ACCEPT, "250 2.1.5 Ok");
	case DB_RCPT_UNKNOWN:
		detail(r, "no account, alias or catch-all for %s", r->addr);
		return reply(r, POLICY_REJECT, "550 5.1.1 <%s> User unknown",
		    r->given);
	case DB_RCPT_NOT_LOCAL:		/* <postmaster> with no local domain */
		detail(r, "%s is not a local domain", r->to.domain);
		return reply(r, POLICY_REJECT, "550 5.1.1 <%s> User unknown",
		    r->given);
	case DB_RCPT_TEMPFAIL:
	default:
		return store_error(r);
	}
}

/* --- running a stage ------------------------------------------------- */

/* Parse the path again (net is not trusted) into the run. */
static int
parse_path(const struct policy_input *in, struct mailaddr *a)
{
	char		 buf[ADDR_PATH_MAX + 3];
	const char	*end, *errstr;

	if (in == NULL || in->path == NULL ||
	    (size_t)snprintf(buf, sizeof(buf), "<%s>",
	    in->path) >= sizeof(buf) ||
	    addr_parse_path(buf, in->utf8, a, &end, &errstr) == -1 ||
	    *end != '\0')
		return -1;
	return 0;
}

static int
mail_begin(struct run *r, const struct policy_input *in)
{
	struct policy_session	*s = r->s;
	struct mailaddr		 from;

	tx_reset(s);
	if (parse_path(in, &from) == -1 || (from.flags & ADDR_F_POSTMASTER))
		return -1;
	s->utf8 = in->utf8;
	strlcpy(s->sender_given, in->path, sizeof(s->sender_given));
	if (from.flags & ADDR_F_NULL)
		return 0;
	if (addr_format(&from, s->sender, sizeof(s->sender)) == -1)
		return -1;
	/* R3.1 and R3.2 compare addresses without case */
	for (char *c = s->sender; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c += 'a' - 'A';
	strlcpy(s->sender_domain, from.domain, sizeof(s->sender_domain));
	return 0;
}

/*
 * "<postmaster>" (RFC 5321 4.5.1: it must be accepted) is the postmaster
 * of the first local domain among the host name, its parent domains
 * (mx.example.org, then example.org) and the domain of [delivery]
 * failed_mail; of the host name if none is local.  It is never relayed.
 */
static void
postmaster_domain(const struct policy *p, char *domain, size_t size)
{
	const char	*h = p->conf->hostname, *d;
	const char	*at = strrchr(p->conf->delivery.failed_mail, '@');

	strlcpy(domain, h, size);
	for (d = h; d != NULL && strchr(d, '.') != NULL;
	    d = strchr(d, '.') + 1)
		if (db_domain_local(p->db, d) == 1) {
			strlcpy(domain, d, size);
			goto out;
		}
	if (at != NULL && db_domain_local(p->db, at + 1) == 1)
		strlcpy(domain, at + 1, size);
out:
	for (; *domain != '\0'; domain++)
		if (*domain >= 'A' && *domain <= 'Z')
			*domain += 'a' - 'A';
}

int
policy_rcpt_parse(const struct policy *p, const char *path, bool utf8,
    struct mailaddr *a, char *lp, size_t size)
{
	struct policy_input	in = { path, utf8 };

	if (parse_path(&in, a) == -1 || (a->flags & ADDR_F_NULL))
		return -1;
	if (a->flags & ADDR_F_POSTMASTER)
		postmaster_domain(p, a->domain, sizeof(a->domain));
	return addr_local_fold(a, lp, size);
}

static int
rcpt_begin(struct run *r, const struct policy_input *in)
{
	if (policy_rcpt_parse(r->p, in->path, r->s->utf8, &r->to, r->lp,
	    sizeof(r->lp)) == -1)
		return -1;
	r->given = in->path;
	r->literal = (r->to.flags & ADDR_F_LITERAL) != 0;
	r->local = 0;
	snprintf(r->addr, sizeof(r->addr), "%s@%s", r->lp, r->to.domain);
	return 0;
}

static void
default_reply(struct run *r, enum policy_stage stage)
{
	const char	*h = r->conf->hostname;

	switch (stage) {
	case POLICY_CONNECT:
		reply(r, POLICY_ACCEPT, "220 %s ESMTP postino", h);
		break;
	case POLICY_HELO:
		reply(r, POLICY_ACCEPT, "250 %s", h);
		break;
	case POLICY_MAIL:
		reply(r, POLICY_ACCEPT, "250 2.1.0 Ok");
		break;
	case POLICY_RCPT:
		reply(r, POLICY_ACCEPT, "250 2.1.5 Ok");
		break;
	case POLICY_DATA:
		reply(r, POLICY_ACCEPT, "250 2.0.0 Ok");
		break;
	}
}

void
policy_run(struct policy *p, enum policy_stage stage,
    struct policy_session *s, const struct policy_input *in,
    struct policy_result *res, policy_trace_fn *trace, void *arg)
{
	struct run		r;
	enum policy_action	a = POLICY_DUNNO;
	size_t			i;
	int			bad = 0;

	memset(&r, 0, sizeof(r));
	memset(res, 0, sizeof(*res));
	r.p = p;
	r.conf = s->conf != NULL ? s->conf : p->conf;
	r.stage = stage;
	r.s = s;
	r.res = res;
	res->check = "";
	res->header = "";
	if (stage == POLICY_CONNECT || stage == POLICY_MAIL)
		policy_reload(p, false);
	if (stage == POLICY_MAIL)
		bad = mail_begin(&r, in);
	else if (stage == POLICY_RCPT)
		bad = !s->in_tx || rcpt_begin(&r, in);
	if (bad) {
		/* net parsed it and let it through: only a broken or
		 * hostile net gets here */
		res->action = POLICY_REJECT;
		res->check = "syntax";
		strlcpy(res->reply, "501 5.5.4 Syntax error in parameters "
		    "or arguments", sizeof(res->reply));
		return;
	}
	for (i = 0; i < NCHECKS; i++) {
		if (checks[i].stage != stage)
			continue;
		r.detail[0] = '\0';
		if (a != POLICY_DUNNO) {
			if (trace != NULL)
				trace(arg, stage, checks[i].name, POLICY_DUNNO,
				    NULL);
			continue;
		}
		a = checks[i].fn(&r);
		if (a != POLICY_DUNNO && res->check[0] == '\0')
			res->check = checks[i].name;
		if (trace != NULL)
			trace(arg, stage, checks[i].name, a, r.detail);
	}
	if (a == POLICY_DUNNO)
		default_reply(&r, stage);
	res->action = a == POLICY_DUNNO ? POLICY_ACCEPT : a;
	res->header = "";
	if (stage == POLICY_MAIL && res->action == POLICY_ACCEPT) {
		s->in_tx = true;
		if (s->spf_checked && p->conf->antispam.spf &&
		    s->authz == AUTHZ_NONE &&
		    strcasecmp(s->spf_sender, s->sender) == 0)
			res->header = s->spf_header;
	}
	if (stage == POLICY_RCPT && res->action == POLICY_ACCEPT)
		s->naccepted++;
	if (stage == POLICY_RCPT && res->action == POLICY_ACCEPT &&
	    !policy_rcpt_accepted(s, r.lp, r.to.domain, &(bool){ false })) {
		s->rcpts = xreallocarray(s->rcpts, s->nrcpt + 1,
		    sizeof(*s->rcpts));
		strlcpy(s->rcpts[s->nrcpt].local_part, r.lp,
		    sizeof(s->rcpts[s->nrcpt].local_part));
		strlcpy(s->rcpts[s->nrcpt].domain, r.to.domain,
		    sizeof(s->rcpts[s->nrcpt].domain));
		s->rcpts[s->nrcpt++].relay = res->relay != AUTHZ_NONE;
	}
}

const char *
policy_stage_name(enum policy_stage s)
{
	return (size_t)s < sizeof(stage_names) / sizeof(stage_names[0]) ?
	    stage_names[s] : "?";
}

const char *
policy_action_name(enum policy_action a)
{
	return (size_t)a < sizeof(action_names) / sizeof(action_names[0]) ?
	    action_names[a] : "?";
}

const char *
policy_authz_word(enum policy_authz a)
{
	static const char *const words[] = { "none", "auth", "trusted",
	    "pop-before-smtp", "device" };

	return (size_t)a < sizeof(words) / sizeof(words[0]) ? words[a] : "?";
}

size_t
policy_ncheck(void)
{
	return NCHECKS;
}

const char *
policy_check_name(size_t i, enum policy_stage *stage)
{
	if (i >= NCHECKS)
		return NULL;
	if (stage != NULL)
		*stage = checks[i].stage;
	return checks[i].name;
}

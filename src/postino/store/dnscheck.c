/*
 * dnscheck.c - the DNS facts of the policy engine: DNSBL listings of a
 * client (R4.1) and the existence of a sender's domain (R4.2), looked
 * up in parallel through lib/resolve (c-ares) before the stage that
 * reads them runs, within [antispam] dns_timeout seconds.
 *
 * Runs on the loop of whoever owns the resolver: the store role, or
 * postino-admin explain.  Answers come from the network: a TXT reason
 * is cut and stripped of anything but printable ASCII before it can
 * reach a reply or a log; the sender's domain comes from a client and
 * is checked as a host name before it is looked up.
 */
#include <sys/socket.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "compat.h"
#include "dnscheck.h"
#include "spf.h"
#include "log.h"
#include "resolve.h"
#include "xalloc.h"

#define ZONES_MAX	CONF_LIST_MAX
#define CACHE_SLOTS	4096	/* DNSBL answers kept, by client address */
#define CACHE_TTL_MIN	60
#define CACHE_TTL_MAX	3600

/* One DNSBL zone's lookups: A of the reversed address, then its TXT. */
struct zone_q {
	struct dnscheck	*c;
	size_t		 i;		/* in [antispam] dnsbl */
	char		 name[ADDR_DOMAIN_MAX + 80];
	bool		 answered;	/* not a temporary failure */
	unsigned int	 ttl;
	bool		 listed;
	char		 code[INET_ADDRSTRLEN];
	char		 text[256];
};

struct dnscheck {
	struct resolver		*res;
	const struct conf	*conf;
	struct policy_session	*s;	/* NULL once finished or cancelled */
	enum policy_stage	 stage;
	dnscheck_fn		*done;
	void			*arg;
	struct event		*timer;
	unsigned int		 pending;	/* resolver callbacks to come */
	bool			 finished;
	struct zone_q		 zones[ZONES_MAX];
	size_t			 nzones;
	char			 domain[ADDR_DOMAIN_MAX + 1];
	enum sender_dns		 sender;
	bool			 sender_known;
	struct spf		*spf;		/* R4.3, one query at a time */
	char			 spf_sender[ADDR_PATH_MAX + 1];
};

/*
 * The DNSBL verdicts of recent clients, for as long as the answers'
 * TTLs say (RFC 5782 5: a listing is as fresh as its record), between
 * CACHE_TTL_MIN and CACHE_TTL_MAX: a client that connects again and
 * again costs one set of lookups.  Direct-mapped by address: a slot
 * taken by another address is simply overwritten.  Only complete
 * answers are kept, never one cut short by a timeout.
 */
struct cached {
	uint8_t	ip[16];
	time_t	expires;		/* 0: empty */
	char	zone[ADDR_DOMAIN_MAX + 1];	/* "": listed by none */
	char	code[INET_ADDRSTRLEN];
	char	text[256];
};
static struct cached	*cache;

static struct cached *
cache_slot(const uint8_t ip[16])
{
	unsigned int	h = 2166136261u;
	size_t		i;

	if (cache == NULL)
		cache = xcalloc(CACHE_SLOTS, sizeof(*cache));
	for (i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 16777619u;
	return &cache[h % CACHE_SLOTS];
}

/* A fresh verdict for s's address: written into s, true. */
static bool
cache_get(struct policy_session *s)
{
	struct cached	*e = cache_slot(s->ip16);

	if (e->expires <= time(NULL) || memcmp(e->ip, s->ip16, 16) != 0)
		return false;
	s->dnsbl_checked = true;
	strlcpy(s->dnsbl_zone, e->zone, sizeof(s->dnsbl_zone));
	strlcpy(s->dnsbl_code, e->code, sizeof(s->dnsbl_code));
	strlcpy(s->dnsbl_text, e->text, sizeof(s->dnsbl_text));
	return true;
}

static void
cache_put(const struct dnscheck *c, const struct policy_session *s)
{
	struct cached	*e;
	unsigned int	 ttl = CACHE_TTL_MAX;
	size_t		 i;

	for (i = 0; i < c->nzones; i++) {
		if (!c->zones[i].answered)
			return;
		if (c->zones[i].ttl < ttl)
			ttl = c->zones[i].ttl;
	}
	e = cache_slot(s->ip16);
	memcpy(e->ip, s->ip16, 16);
	e->expires = time(NULL) + (ttl < CACHE_TTL_MIN ? CACHE_TTL_MIN : ttl);
	strlcpy(e->zone, s->dnsbl_zone, sizeof(e->zone));
	strlcpy(e->code, s->dnsbl_code, sizeof(e->code));
	strlcpy(e->text, s->dnsbl_text, sizeof(e->text));
}

static void
release(struct dnscheck *c)
{
	if (!c->finished || c->pending > 0)
		return;
	if (c->timer != NULL)
		event_free(c->timer);
	spf_free(&c->spf);
	free(c);
}

/* What SPF found, or temperror when it did not finish in time. */
static void
spf_facts(struct dnscheck *c, struct policy_session *s)
{
	struct spf_query	q;
	const char		*exp;

	s->spf_checked = true;
	strlcpy(s->spf_sender, c->spf_sender, sizeof(s->spf_sender));
	s->spf_exp[0] = '\0';
	if (spf_next(c->spf, &q) != SPF_STEP_DONE) {
		s->spf = SPF_TEMPERROR;
		snprintf(s->spf_header, sizeof(s->spf_header), "Received-SPF: "
		    "temperror (%s: no answer from the DNS in time)\r\n",
		    c->conf->hostname);
		return;
	}
	s->spf = spf_result(c->spf);
	if ((exp = spf_explanation(c->spf)) != NULL)
		strlcpy(s->spf_exp, exp, sizeof(s->spf_exp));
	if (spf_received(c->spf, s->spf_header, sizeof(s->spf_header)) == -1)
		s->spf_header[0] = '\0';
}

/* Write what is known into the session. */
static void
write_facts(struct dnscheck *c)
{
	struct policy_session	*s = c->s;
	size_t			 i;

	if (c->stage == POLICY_CONNECT) {
		s->dnsbl_checked = true;
		for (i = 0; i < c->nzones; i++)
			if (c->zones[i].listed) {
				strlcpy(s->dnsbl_zone, c->conf->antispam.dnsbl.v[
				    c->zones[i].i], sizeof(s->dnsbl_zone));
				strlcpy(s->dnsbl_code, c->zones[i].code,
				    sizeof(s->dnsbl_code));
				strlcpy(s->dnsbl_text, c->zones[i].text,
				    sizeof(s->dnsbl_text));
				break;
			}
		cache_put(c, s);
	} else {
		if (c->domain[0] != '\0') {
			strlcpy(s->sender_dns_domain, c->domain,
			    sizeof(s->sender_dns_domain));
			s->sender_dns = c->sender_known ? c->sender :
			    SENDER_DNS_TEMPFAIL;
		}
		if (c->spf != NULL)
			spf_facts(c, s);
	}
}

/* ... and call the caller back. */
static void
finish(struct dnscheck *c)
{
	if (c->finished)
		return;
	c->finished = true;
	if (c->timer != NULL)
		evtimer_del(c->timer);
	write_facts(c);
	c->s = NULL;
	c->done(c->arg);
	release(c);
}

static void
timed_out(evutil_socket_t fd, short ev, void *arg)
{
	struct dnscheck	*c = arg;

	log_debug("dnscheck event=timeout stage=%s pending=%u",
	    policy_stage_name(c->stage), c->pending);
	finish(c);
}

/* One more answer in; the last one finishes. */
static void
answered(struct dnscheck *c)
{
	c->pending--;
	if (c->finished) {
		release(c);
		return;
	}
	if (c->pending == 0)
		finish(c);
}

/* --- DNSBL (R4.1) ------------------------------------------------------ */

/* A reason from the network, fit for a reply: printable ASCII, cut. */
static void
clean_text(char *dst, size_t size, const char *src)
{
	size_t	i, j = 0;

	for (i = 0; src[i] != '\0' && j + 1 < size; i++)
		dst[j++] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : ' ';
	dst[j] = '\0';
}

static void
zone_txt(void *arg, enum resolve_status st, const char *const *txt,
    size_t n, unsigned int ttl)
{
	struct zone_q	*z = arg;

	if (st == RESOLVE_OK && n > 0)
		clean_text(z->text, sizeof(z->text), txt[0]);
	answered(z->c);
}

static void
zone_a(void *arg, enum resolve_status st, const uint8_t (*addrs)[16],
    size_t n, unsigned int ttl)
{
	static const uint8_t	 v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				    0xff, 0xff };
	struct zone_q		*z = arg;
	size_t			 i;

	/* Listed: an A record in 127.0.0.0/8 (RFC 5782 2.1); anything
	 * else is a zone that answers every name, or a broken one. */
	z->answered = st == RESOLVE_OK || st == RESOLVE_NXDOMAIN;
	z->ttl = ttl;
	for (i = 0; st == RESOLVE_OK && i < n; i++)
		if (memcmp(addrs[i], v4, 12) == 0 && addrs[i][12] == 127) {
			z->listed = true;
			inet_ntop(AF_INET, addrs[i] + 12, z->code,
			    sizeof(z->code));
			break;
		}
	if (z->listed && !z->c->finished) {
		z->c->pending++;
		resolver_txt(z->c->res, z->name, zone_txt, z);
	}
	answered(z->c);
}

/* The DNSBL name of an address in a zone (RFC 5782 2.1, 2.4). */
static int
dnsbl_name(const struct policy_session *s, const char *zone, char *buf,
    size_t size)
{
	static const char	 hex[] = "0123456789abcdef";
	const uint8_t		*a = s->ip16;
	char			*p = buf;
	int			 i;

	if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0)
		return snprintf(buf, size, "%u.%u.%u.%u.%s", a[15], a[14],
		    a[13], a[12], zone) >= (int)size ? -1 : 0;
	if (size < 64 + strlen(zone) + 1)
		return -1;
	for (i = 15; i >= 0; i--) {
		*p++ = hex[a[i] & 15];
		*p++ = '.';
		*p++ = hex[a[i] >> 4];
		*p++ = '.';
	}
	strlcpy(p, zone, size - 64);
	return 0;
}

static bool
start_dnsbl(struct dnscheck *c, const struct policy *p,
    struct policy_session *s)
{
	const struct conf_list	*zones = &c->conf->antispam.dnsbl;
	struct zone_q		*z;
	size_t			 i;

	if (s->profile != PROFILE_MX || zones->n == 0 || !s->ip_ok ||
	    s->dnsbl_checked || policy_never_blocked(p, s->ip16) ||
	    cache_get(s))
		return false;
	for (i = 0; i < zones->n && c->nzones < ZONES_MAX; i++) {
		z = &c->zones[c->nzones];
		z->c = c;
		z->i = i;
		if (dnsbl_name(s, zones->v[i], z->name, sizeof(z->name)) == -1)
			continue;
		c->nzones++;
	}
	c->pending = (unsigned int)c->nzones;
	/* RFC 5782 2.1: a listing is an A record; no AAAA is asked */
	for (i = 0; i < c->nzones; i++)
		resolver_addrs_af(c->res, c->zones[i].name, AF_INET, zone_a,
		    &c->zones[i]);
	return c->nzones > 0;
}

/* --- the sender's domain (R4.2) --------------------------------------- */

static void
sender_addrs(void *arg, enum resolve_status st, const uint8_t (*addrs)[16],
    size_t n, unsigned int ttl)
{
	struct dnscheck	*c = arg;

	if (!c->sender_known) {
		c->sender_known = true;
		c->sender = st == RESOLVE_OK && n > 0 ? SENDER_DNS_OK :
		    st == RESOLVE_TEMPFAIL || st == RESOLVE_CANCELLED ?
		    SENDER_DNS_TEMPFAIL : SENDER_DNS_NONE;
	}
	answered(c);
}

static void
sender_mx(void *arg, enum resolve_status st, const struct resolve_mx *mx,
    size_t n, unsigned int ttl)
{
	struct dnscheck	*c = arg;

	if (st == RESOLVE_OK && n == 0 && !c->finished) {
		/* no MX: the domain's own addresses (RFC 5321 5.1) */
		c->pending++;
		resolver_addrs(c->res, c->domain, sender_addrs, c);
	} else if (!c->sender_known) {
		c->sender_known = true;
		if (st == RESOLVE_OK)
			c->sender = mx[0].host[0] == '\0' ?
			    SENDER_DNS_NULL_MX : SENDER_DNS_OK;
		else
			c->sender = st == RESOLVE_NXDOMAIN ? SENDER_DNS_NONE :
			    SENDER_DNS_TEMPFAIL;
	}
	answered(c);
}

/* The domain of a path, lower case, if it is a host name to look up. */
static bool
path_domain(const char *path, char *buf, size_t size)
{
	const char	*at = strrchr(path, '@');
	size_t		 i, len;

	if (at == NULL || (len = strlen(at + 1)) == 0 || len >= size)
		return false;
	for (i = 0; i < len; i++) {
		char ch = at[1 + i];

		if (!isalnum((unsigned char)ch) && ch != '-' && ch != '.' &&
		    ch != '_')
			return false;	/* a literal, or not a name */
		buf[i] = (char)tolower((unsigned char)ch);
	}
	buf[len] = '\0';
	return buf[0] != '.' && strstr(buf, "..") == NULL;
}

static bool
start_sender(struct dnscheck *c, const struct policy *p,
    struct policy_session *s, const char *path)
{
	if (!c->conf->antispam.reject_unknown_sender_domain ||
	    s->auth[0] != '\0' || path == NULL ||
	    !path_domain(path, c->domain, sizeof(c->domain)) ||
	    (s->ip_ok && policy_trusted(p, s->ip16)) ||
	    policy_domain_local(p, c->domain) != 0)
		return false;
	if (strcmp(s->sender_dns_domain, c->domain) == 0 &&
	    s->sender_dns != SENDER_DNS_TEMPFAIL)
		return false;	/* known from an earlier MAIL */
	c->pending = 1;
	resolver_mx(c->res, c->domain, sender_mx, c);
	return true;
}

/* --- SPF (R4.3): the machine's queries, one after the other ----------- */

static void	spf_step(struct dnscheck *);

static enum spf_dns
spf_status(enum resolve_status st, size_t n)
{
	switch (st) {
	case RESOLVE_OK:
		return n > 0 ? SPF_DNS_OK : SPF_DNS_NODATA;
	case RESOLVE_NXDOMAIN:
		return SPF_DNS_NXDOMAIN;
	default:
		return SPF_DNS_TEMPFAIL;
	}
}

static void
spf_txt(void *arg, enum resolve_status st, const char *const *txt, size_t n,
    unsigned int ttl)
{
	struct dnscheck	*c = arg;
	struct spf_rr	 rrs[RESOLVE_TXT_MAX];
	size_t		 i;

	for (i = 0; i < n && i < RESOLVE_TXT_MAX; i++) {
		rrs[i].text = txt[i];
		rrs[i].len = strlen(txt[i]);
	}
	if (!c->finished)
		spf_answer(c->spf, spf_status(st, n), rrs, i);
	spf_step(c);
}

static void
spf_addrs(void *arg, enum resolve_status st, const uint8_t (*addrs)[16],
    size_t n, unsigned int ttl)
{
	struct dnscheck	*c = arg;
	struct spf_rr	 rrs[RESOLVE_ADDRS_MAX];
	size_t		 i;

	for (i = 0; i < n && i < RESOLVE_ADDRS_MAX; i++) {
		rrs[i].text = NULL;
		rrs[i].len = 0;
		memcpy(rrs[i].addr, addrs[i], 16);
	}
	if (!c->finished)
		spf_answer(c->spf, spf_status(st, n), rrs, i);
	spf_step(c);
}

static void
spf_mx(void *arg, enum resolve_status st, const struct resolve_mx *mx,
    size_t n, unsigned int ttl)
{
	struct dnscheck	*c = arg;
	struct spf_rr	 rrs[RESOLVE_MX_MAX];
	size_t		 i, k = 0;

	for (i = 0; i < n && i < RESOLVE_MX_MAX; i++)
		if (mx[i].host[0] != '\0') {	/* a null MX names no host */
			rrs[k].text = mx[i].host;
			rrs[k++].len = strlen(mx[i].host);
		}
	if (!c->finished)
		spf_answer(c->spf, spf_status(st, k), rrs, k);
	spf_step(c);
}

static void
spf_ptr(void *arg, enum resolve_status st, const char *name)
{
	struct dnscheck	*c = arg;
	struct spf_rr	 rr = { name, name ? strlen(name) : 0, { 0 } };

	if (!c->finished)
		spf_answer(c->spf, spf_status(st, name ? 1 : 0), &rr,
		    name ? 1 : 0);
	spf_step(c);
}

/*
 * Ask the next query of the SPF machine, if there is one; called with
 * one answer in (pending counts it) or, at the start, with none.
 */
static void
spf_next_query(struct dnscheck *c)
{
	struct spf_query	q;

	if (c->finished || spf_next(c->spf, &q) == SPF_STEP_DONE)
		return;
	/* c-ares reads "\\." escapes; SPF names never need one: refuse */
	if (strchr(q.name, '\\') != NULL) {
		spf_answer(c->spf, SPF_DNS_NXDOMAIN, NULL, 0);
		spf_next_query(c);
		return;
	}
	c->pending++;
	switch (q.type) {
	case SPF_Q_TXT:
		resolver_txt(c->res, q.name, spf_txt, c);
		break;
	case SPF_Q_A:
	case SPF_Q_AAAA:
		resolver_addrs_af(c->res, q.name, q.type == SPF_Q_A ? AF_INET :
		    AF_INET6, spf_addrs, c);
		break;
	case SPF_Q_MX:
		resolver_mx(c->res, q.name, spf_mx, c);
		break;
	case SPF_Q_PTR:
		resolver_ptr(c->res, q.addr, spf_ptr, c);
		break;
	default:
		panic("dnscheck: SPF query type %d", (int)q.type);
	}
}

static void
spf_step(struct dnscheck *c)
{
	spf_next_query(c);
	answered(c);
}

static bool
start_spf(struct dnscheck *c, const struct policy *p,
    struct policy_session *s, const char *path)
{
	struct spf_params	 sp = { .addr = s->ip16, .sender = path,
	    .helo = s->helo, .receiver = c->conf->hostname,
	    .now = time(NULL) };
	const char		*err;
	char			 domain[ADDR_DOMAIN_MAX + 1];

	if (!c->conf->antispam.spf || s->auth[0] != '\0' || path == NULL ||
	    !s->ip_ok || policy_trusted(p, s->ip16) ||
	    strlen(path) >= sizeof(c->spf_sender) ||
	    (path_domain(path, domain, sizeof(domain)) &&
	    policy_domain_local(p, domain) != 0))
		return false;
	if (s->spf_checked && strcasecmp(s->spf_sender, path) == 0 &&
	    s->spf != SPF_TEMPERROR)
		return false;	/* known from an earlier MAIL */
	if ((c->spf = spf_new(&sp, &err)) == NULL) {
		log_warn("dnscheck event=spf-error error=\"%s\"", err);
		return false;
	}
	strlcpy(c->spf_sender, path, sizeof(c->spf_sender));
	spf_next_query(c);
	return true;
}

/* --- start, cancel --------------------------------------------------- */

struct dnscheck *
dnscheck_start(struct resolver *res, const struct policy *p,
    enum policy_stage stage, struct policy_session *s, const char *path,
    dnscheck_fn *done, void *arg)
{
	struct dnscheck	*c;
	struct timeval	 tv;
	bool		 started = false;

	if (res == NULL || (stage != POLICY_CONNECT && stage != POLICY_MAIL))
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->res = res;
	c->conf = s->conf != NULL ? s->conf : policy_conf(p);
	c->s = s;
	c->stage = stage;
	c->done = done;
	c->arg = arg;
	if (stage == POLICY_CONNECT)
		started = start_dnsbl(c, p, s);
	else {
		started = start_sender(c, p, s, path);
		if (!started)
			c->domain[0] = '\0';	/* no answer to write */
		started = start_spf(c, p, s, path) || started;
	}
	if (!started) {
		free(c);
		return NULL;
	}
	if (c->pending == 0) {		/* decided without the DNS */
		write_facts(c);
		spf_free(&c->spf);
		free(c);
		return NULL;
	}
	tv.tv_sec = c->conf->antispam.dns_timeout;
	tv.tv_usec = 0;
	c->timer = evtimer_new(resolver_base(res), timed_out, c);
	evtimer_add(c->timer, &tv);
	return c;
}

void
dnscheck_cancel(struct dnscheck **cp)
{
	struct dnscheck	*c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (c->finished)
		return;
	c->finished = true;
	c->s = NULL;
	evtimer_del(c->timer);
	release(c);
}

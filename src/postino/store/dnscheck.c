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
#include <arpa/inet.h>

#include <ctype.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compat.h"
#include "dnscheck.h"
#include "log.h"
#include "resolve.h"
#include "xalloc.h"

#define ZONES_MAX	CONF_LIST_MAX

/* One DNSBL zone's lookups: A of the reversed address, then its TXT. */
struct zone_q {
	struct dnscheck	*c;
	size_t		 i;		/* in [antispam] dnsbl */
	char		 name[ADDR_DOMAIN_MAX + 80];
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
};

static void
release(struct dnscheck *c)
{
	if (!c->finished || c->pending > 0)
		return;
	if (c->timer != NULL)
		event_free(c->timer);
	free(c);
}

/* Write what is known into the session and call the caller back. */
static void
finish(struct dnscheck *c)
{
	struct policy_session	*s = c->s;
	size_t			 i;

	if (c->finished)
		return;
	c->finished = true;
	if (c->timer != NULL)
		evtimer_del(c->timer);
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
	} else {
		strlcpy(s->sender_dns_domain, c->domain,
		    sizeof(s->sender_dns_domain));
		s->sender_dns = c->sender_known ? c->sender :
		    SENDER_DNS_TEMPFAIL;
	}
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
	    s->dnsbl_checked || policy_never_blocked(p, s->ip16))
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
	for (i = 0; i < c->nzones; i++)
		resolver_addrs(c->res, c->zones[i].name, zone_a, &c->zones[i]);
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
	    (s->ip_ok && policy_never_blocked(p, s->ip16)) ||
	    policy_domain_local(p, c->domain) != 0)
		return false;
	if (strcmp(s->sender_dns_domain, c->domain) == 0 &&
	    s->sender_dns != SENDER_DNS_TEMPFAIL)
		return false;	/* known from an earlier MAIL */
	c->pending = 1;
	resolver_mx(c->res, c->domain, sender_mx, c);
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
	c->conf = policy_conf(p);
	c->s = s;
	c->stage = stage;
	c->done = done;
	c->arg = arg;
	if (stage == POLICY_CONNECT)
		started = start_dnsbl(c, p, s);
	else
		started = start_sender(c, p, s, path);
	if (!started) {
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

/*
 * intrusion.c - intrusion prevention (R4.4) and rate limits (R4.6), in
 * the store role, on its loop thread.
 *
 * Input: client addresses as net reported them (parsed again here) and
 * accounts store verified itself.  Each address has one entry with its
 * counters; the entries sit in a hash table and in a FIFO by first
 * sight, and when the table is full the oldest goes, so memory stays
 * bounded whatever a flood of distinct addresses does (a flood can
 * only make us forget, never grow).  Failures count over a window of
 * INTRUSION_WINDOW seconds; connections over a minute; messages and
 * recipients over a sliding hour (two hourly buckets, the older one
 * weighted by how much of it is still inside the hour).
 */
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compat.h"
#include "conf.h"
#include "db.h"
#include "intrusion.h"
#include "ipmatch.h"
#include "log.h"
#include "policy.h"
#include "xalloc.h"

#define BUCKETS	16384
#define HOUR	3600

/* A count over a sliding hour. */
struct rate {
	time_t		start;		/* of the current bucket */
	uint32_t	cur, prev;
};

struct ip_ent {
	struct ip_ent	*hnext;		/* hash chain */
	struct ip_ent	*older, *newer;	/* FIFO by first sight */
	uint8_t		 ip[16];
	time_t		 window;	/* start of the failure window */
	uint32_t	 auth, unknown, errors;
	time_t		 minute;	/* start of the connection minute */
	uint32_t	 conns;
	struct rate	 msgs_block;	/* max_messages_per_hour */
	struct rate	 rl[2];		/* RATE_MESSAGES, RATE_RECIPIENTS */
};

struct acct_ent {
	struct acct_ent	*hnext;
	struct acct_ent	*older, *newer;
	char		*account;
	struct rate	 rl[2];
};

/* Entries of one kind, hashed, and in FIFO order to evict the oldest. */
struct intrusion {
	const struct conf	*conf;
	struct db		*db;
	const struct policy	*policy;
	struct {
		struct ip_ent	**hash;		/* BUCKETS chains */
		struct ip_ent	 *oldest, *newest;
		size_t		  n, max;
	} ips;
	struct {
		struct acct_ent	**hash;
		struct acct_ent	 *oldest, *newest;
		size_t		  n, max;
	} accts;
	uint64_t		 blocks[INTR_MAX];	/* made, R7.5 */
};

static const char *const event_names[INTR_MAX] = {
	"auth-failures", "unknown-recipients", "connections",
	"messages", "protocol-errors"
};

struct intrusion *
intrusion_new(const struct conf *conf, struct db *db,
    const struct policy *policy)
{
	struct intrusion	*in = xcalloc(1, sizeof(*in));

	in->conf = conf;
	in->db = db;
	in->policy = policy;
	in->ips.hash = xcalloc(BUCKETS, sizeof(*in->ips.hash));
	in->ips.max = INTRUSION_IPS_MAX;
	in->accts.hash = xcalloc(BUCKETS, sizeof(*in->accts.hash));
	in->accts.max = INTRUSION_ACCOUNTS_MAX;
	return in;
}

void
intrusion_reconf(struct intrusion *in, const struct conf *conf)
{
	in->conf = conf;
}

void
intrusion_free(struct intrusion **inp)
{
	struct intrusion	*in = *inp;
	struct ip_ent		*e, *ne;
	struct acct_ent		*a, *na;

	if (in == NULL)
		return;
	for (e = in->ips.oldest; e != NULL; e = ne) {
		ne = e->newer;
		free(e);
	}
	for (a = in->accts.oldest; a != NULL; a = na) {
		na = a->newer;
		free(a->account);
		free(a);
	}
	free(in->ips.hash);
	free(in->accts.hash);
	free(in);
	*inp = NULL;
}

static unsigned int
hash(const void *p, size_t len)
{
	const uint8_t	*c = p;
	unsigned int	 h = 2166136261u;

	while (len-- > 0)
		h = (h ^ *c++) * 16777619u;
	return h % BUCKETS;
}

/* --- the address table ------------------------------------------------- */

static void
ip_unlink(struct intrusion *in, struct ip_ent *e)
{
	struct ip_ent	**pp = &in->ips.hash[hash(e->ip, 16)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		in->ips.oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		in->ips.newest = e->older;
	in->ips.n--;
	free(e);
}

/* The entry of ip; made (evicting the oldest when full) if create. */
static struct ip_ent *
ip_find(struct intrusion *in, const uint8_t ip[16], bool create)
{
	struct ip_ent	*e, **chain;

	chain = &in->ips.hash[hash(ip, 16)];
	for (e = *chain; e != NULL; e = e->hnext)
		if (memcmp(e->ip, ip, 16) == 0)
			return e;
	if (!create)
		return NULL;
	if (in->ips.n >= in->ips.max)
		ip_unlink(in, in->ips.oldest);
	e = xcalloc(1, sizeof(*e));
	memcpy(e->ip, ip, 16);
	e->hnext = *chain;
	*chain = e;
	e->older = in->ips.newest;
	if (in->ips.newest != NULL)
		in->ips.newest->newer = e;
	else
		in->ips.oldest = e;
	in->ips.newest = e;
	in->ips.n++;
	return e;
}

/* --- sliding hours ----------------------------------------------------- */

static void
rate_roll(struct rate *r, time_t now)
{
	time_t	bucket = now - now % HOUR;

	if (r->start == bucket)
		return;
	r->prev = r->start == bucket - HOUR ? r->cur : 0;
	r->cur = 0;
	r->start = bucket;
}

static unsigned int
rate_count(struct rate *r, time_t now)
{
	rate_roll(r, now);
	/* the part of the older bucket still inside the last hour */
	return r->cur + (unsigned int)((uint64_t)r->prev *
	    (uint64_t)(HOUR - (now - r->start)) / HOUR);
}

static void
rate_add(struct rate *r, time_t now, unsigned int n)
{
	rate_roll(r, now);
	r->cur = r->cur + n < r->cur ? UINT32_MAX : r->cur + n;
}

/* --- blocks -------------------------------------------------------------- */

static bool
exempt(const struct intrusion *in, const uint8_t ip[16])
{
	return in->policy != NULL && policy_never_blocked(in->policy, ip);
}

static void
block(struct intrusion *in, const char *ip, struct ip_ent *e,
    enum intrusion_event ev, unsigned int count)
{
	char	err[256], esc[sizeof(err) * 4];

	if (db_block_add(in->db, ip, in->conf->intrusion.block_minutes,
	    event_names[ev], err, sizeof(err)) == -1) {
		log_err("intrusion event=block-failed address=[%s] error=\"%s\"",
		    ip, log_escape_quoted(err, strlen(err), esc, sizeof(esc)));
		return;
	}
	log_info("intrusion event=block address=[%s] reason=%s count=%u "
	    "minutes=%u", ip, event_names[ev], count,
	    in->conf->intrusion.block_minutes);
	in->blocks[ev]++;
	ip_unlink(in, e);	/* counting starts again after the block */
}

/* The threshold of an event (0: off) and its count after n more. */
static unsigned int
bump(struct intrusion *in, struct ip_ent *e, enum intrusion_event ev,
    unsigned int n, time_t now, unsigned int *max)
{
	uint32_t	*c = NULL;

	if (now - e->window >= INTRUSION_WINDOW) {
		e->window = now;
		e->auth = e->unknown = e->errors = 0;
	}
	switch (ev) {
	case INTR_AUTH_FAILURE:
		*max = in->conf->intrusion.max_auth_failures;
		c = &e->auth;
		break;
	case INTR_UNKNOWN_RCPT:
		*max = in->conf->intrusion.max_unknown_rcpts;
		c = &e->unknown;
		break;
	case INTR_PROTOCOL_ERROR:
		*max = in->conf->intrusion.max_protocol_errors;
		c = &e->errors;
		break;
	case INTR_CONNECTION:
		*max = in->conf->intrusion.max_connections_per_minute;
		if (now - e->minute >= 60) {
			e->minute = now;
			e->conns = 0;
		}
		c = &e->conns;
		break;
	case INTR_MESSAGE:
		*max = in->conf->intrusion.max_messages_per_hour;
		rate_add(&e->msgs_block, now, n);
		return rate_count(&e->msgs_block, now);
	default:
		panic("intrusion: event %d", (int)ev);
	}
	*c = *c + n < *c ? UINT32_MAX : *c + n;
	return *c;
}

bool
intrusion_event(struct intrusion *in, const char *ip,
    enum intrusion_event ev, unsigned int n)
{
	struct ip_ent	*e;
	uint8_t		 a[16];
	unsigned int	 count, max = 0;

	if (n == 0 || ipmatch_addr(ip, a) == -1)
		return false;
	e = ip_find(in, a, true);
	count = bump(in, e, ev, n, time(NULL), &max);
	/* "max_auth_failures = 5": the fifth failure blocks */
	if (max == 0 || count < max || exempt(in, a))
		return false;
	block(in, ip, e, ev, count);
	return true;
}

uint64_t
intrusion_blocks(const struct intrusion *in, enum intrusion_event ev)
{
	return in->blocks[ev];
}

const char *
intrusion_event_name(enum intrusion_event ev)
{
	return event_names[ev];
}

void
intrusion_login_ok(struct intrusion *in, const char *ip)
{
	struct ip_ent	*e;
	uint8_t		 a[16];

	if (ipmatch_addr(ip, a) == 0 && (e = ip_find(in, a, false)) != NULL)
		e->auth = 0;
}

unsigned int
intrusion_auth_failures(const struct intrusion *in, const char *ip)
{
	struct ip_ent	*e;
	uint8_t		 a[16];

	if (ipmatch_addr(ip, a) == -1 ||
	    (e = ip_find((struct intrusion *)in, a, false)) == NULL)
		return 0;
	return e->auth;
}

/* --- rate limits --------------------------------------------------------- */

static struct acct_ent *
acct_find(struct intrusion *in, const char *account, bool create)
{
	struct acct_ent	*a, **chain, *old;
	size_t		 len = strlen(account);

	chain = &in->accts.hash[hash(account, len)];
	for (a = *chain; a != NULL; a = a->hnext)
		if (strcmp(a->account, account) == 0)
			return a;
	if (!create)
		return NULL;
	if (in->accts.n >= in->accts.max) {
		struct acct_ent **pp;

		old = in->accts.oldest;
		pp = &in->accts.hash[hash(old->account,
		    strlen(old->account))];
		while (*pp != old)
			pp = &(*pp)->hnext;
		*pp = old->hnext;
		in->accts.oldest = old->newer;
		if (old->newer != NULL)
			old->newer->older = NULL;
		else
			in->accts.newest = NULL;
		in->accts.n--;
		free(old->account);
		free(old);
	}
	a = xcalloc(1, sizeof(*a));
	a->account = xstrdup(account);
	a->hnext = *chain;
	*chain = a;
	a->older = in->accts.newest;
	if (in->accts.newest != NULL)
		in->accts.newest->newer = a;
	else
		in->accts.oldest = a;
	in->accts.newest = a;
	in->accts.n++;
	return a;
}

unsigned int
intrusion_rate_ip(struct intrusion *in, const char *ip,
    enum intrusion_rate what)
{
	struct ip_ent	*e;
	uint8_t		 a[16];

	if (ipmatch_addr(ip, a) == -1 || (e = ip_find(in, a, false)) == NULL)
		return 0;
	return rate_count(&e->rl[what], time(NULL));
}

unsigned int
intrusion_rate_account(struct intrusion *in, const char *account,
    enum intrusion_rate what)
{
	struct acct_ent	*a;

	if (account == NULL || (a = acct_find(in, account, false)) == NULL)
		return 0;
	return rate_count(&a->rl[what], time(NULL));
}

void
intrusion_rate_add(struct intrusion *in, const char *ip, const char *account,
    unsigned int messages, unsigned int recipients)
{
	struct ip_ent	*e;
	struct acct_ent	*a;
	uint8_t		 addr[16];
	time_t		 now = time(NULL);

	if (ipmatch_addr(ip, addr) == 0) {
		e = ip_find(in, addr, true);
		rate_add(&e->rl[RATE_MESSAGES], now, messages);
		rate_add(&e->rl[RATE_RECIPIENTS], now, recipients);
	}
	if (account != NULL && *account != '\0') {
		a = acct_find(in, account, true);
		rate_add(&a->rl[RATE_MESSAGES], now, messages);
		rate_add(&a->rl[RATE_RECIPIENTS], now, recipients);
	}
}

/* --- the end of blocks --------------------------------------------------- */

static void
unblocked(void *arg, int ncols, const char *const *cols)
{
	if (ncols < 3)
		return;
	log_info("intrusion event=unblock address=[%s] reason=%s was=%s",
	    cols[0], strcmp(cols[1], "0") == 0 ? "admin" : "expired",
	    cols[2]);
}

void
intrusion_tick(struct intrusion *in)
{
	char	err[256], esc[sizeof(err) * 4];

	if (db_block_expire(in->db, unblocked, in, err, sizeof(err)) == -1)
		log_warn("intrusion event=expire-failed error=\"%s\"",
		    log_escape_quoted(err, strlen(err), esc, sizeof(esc)));
}

size_t
intrusion_entries(const struct intrusion *in)
{
	return in->ips.n + in->accts.n;
}

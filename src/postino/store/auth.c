/*
 * auth.c - SMTP AUTH verification in the store role.
 *
 * The exchange itself runs in net (mail/sasl.c, net half); here is the
 * half that touches secrets.  The account's row is read on the loop
 * thread (SQLite is used from that thread only); the hashing runs on a
 * worker, with the same work for an unknown account as for a known one
 * (a dummy hash, a fake SCRAM salt), so timing says nothing about which
 * accounts exist.  Only what store itself verified makes a session
 * authenticated: the table below, which the commit consults for relay
 * and POP3 for the mailbox.  A POP3 login also records the client's
 * POP-before-SMTP grant (R3.4, R6.2).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "compat.h"
#include "conf.h"
#include "intrusion.h"
#include "db.h"
#include "ipc.h"
#include "log.h"
#include "pool.h"
#include "proto.h"
#include "sasl.h"
#include "stats.h"
#include "xalloc.h"

#define SESS_BUCKETS	1024

struct auth_sess {
	struct auth_sess	*next;
	uint64_t		 id;
	char			 user[DB_SECRET_MAX];
};

static struct {
	struct intrusion	*intrusion;
	unsigned int		 max_failures;	/* max_auth_failures */
	struct db		*db;
	struct pool		*pool;
	struct ipc		*net;
	unsigned int		 grant_minutes;	/* pop_before_smtp_minutes */
	uint8_t			 fake_key[32];
	struct auth_sess	*sess[SESS_BUCKETS];
} au;

struct auth_job {
	uint64_t		 session;
	struct sasl_req		 req;
	char			 mech[32], authzid[SASL_USER_MAX + 1];
	char			 user[SASL_USER_MAX + 1];
	char			 password[SASL_PASS_MAX + 1];
	char			 challenge[SASL_TEXT_MAX + 1];
	char			 response[SASL_PROOF_MAX + 1];
	char			 authmsg[SASL_AUTHMSG_MAX + 1];
	char			 client[64];
	enum auth_service	 service;
	struct db_cred		 cred;
	enum db_auth		 lookup;
	struct sasl_reply	 reply;
};

void
auth_reconf(const struct conf *conf)
{
	au.grant_minutes = conf->relay.pop_before_smtp_minutes;
	au.max_failures = conf->intrusion.max_auth_failures;
}

void
auth_init(const struct conf *conf, struct db *db, struct pool *pool,
    struct ipc *net, struct intrusion *intrusion)
{
	auth_reconf(conf);
	au.intrusion = intrusion;
	au.db = db;
	au.pool = pool;
	au.net = net;
	if (sasl_random(au.fake_key, sizeof(au.fake_key)) == -1)
		fatalx("auth: no randomness for the fake SCRAM salts");
}

static enum sasl_result
check_password(const char *user, const char *password, void *arg)
{
	struct auth_job	*j = arg;
	bool		 ok;

	ok = db_password_ok(password, j->cred.hash);	/* always hashed */
	if (j->lookup == DB_AUTH_TEMPFAIL)
		return SASL_TEMPFAIL;
	return ok && j->lookup == DB_AUTH_OK ? SASL_OK : SASL_FAIL;
}

static enum sasl_result
get_secret(const char *user, const char *scheme, char *buf, size_t size,
    void *arg)
{
	struct auth_job	*j = arg;
	const char	*v = "";

	if (j->lookup == DB_AUTH_TEMPFAIL)
		return SASL_TEMPFAIL;
	if (strcmp(scheme, "SCRAM-SHA-256") == 0)
		v = j->cred.scram_sha256;
	else if (strcmp(scheme, "SCRAM-SHA-1") == 0)
		v = j->cred.scram_sha1;
	else if (strcmp(scheme, "CRAM-MD5") == 0)
		v = j->cred.cram_md5;
	if (j->lookup != DB_AUTH_OK || *v == '\0' ||
	    strlcpy(buf, v, size) >= size)
		return SASL_FAIL;
	return SASL_OK;
}

static void
auth_work(void *arg)
{
	struct auth_job		*j = arg;
	struct sasl_store_env	 env = {
		.check_password = check_password,
		.get_secret = get_secret,
		.arg = j,
		.fake_key = au.fake_key,
		.fake_key_len = sizeof(au.fake_key),
		.fake_iterations = DB_SCRAM_ITERATIONS,
	};

	sasl_store_verify(&j->req, &env, &j->reply);
}

static struct auth_sess **
sess_find(uint64_t id)
{
	struct auth_sess	**pp = &au.sess[id % SESS_BUCKETS];

	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->next;
	return pp;
}

/* R4.4: a failure counts toward a block; a success forgets them. */
static unsigned int
count_failure(const char *ip, bool ok)
{
	if (ok) {
		intrusion_login_ok(au.intrusion, ip);
		return 0;
	}
	if (intrusion_event(au.intrusion, ip, INTR_AUTH_FAILURE, 1))
		return au.max_failures;		/* and blocked now */
	return intrusion_auth_failures(au.intrusion, ip);
}

/* R6.2: a POP3 login authorizes its client address for a while. */
static void
grant(const char *account, const char *ip)
{
	char	err[256], esc[sizeof(err) * 4];

	if (au.grant_minutes == 0)
		return;
	if (db_popauth_grant(au.db, account, ip, au.grant_minutes, err,
	    sizeof(err)) == -1) {
		log_warn("popauth event=grant-failed address=[%s] user=%s "
		    "error=\"%s\"", ip, account,
		    log_escape_quoted(err, strlen(err), esc, sizeof(esc)));
		return;
	}
	log_info("popauth event=grant address=[%s] user=%s minutes=%u", ip,
	    account, au.grant_minutes);
}

static void
auth_done(void *arg)
{
	struct auth_job		*j = arg;
	struct auth_sess	*as;
	struct ipc_out		 o;
	bool			 final = j->req.type != SASL_REQ_SCRAM_FIRST;
	bool			 ok = j->reply.result == SASL_OK && final;

	if (ok && *sess_find(j->session) == NULL) {
		as = xcalloc(1, sizeof(*as));
		as->id = j->session;
		strlcpy(as->user, j->cred.address, sizeof(as->user));
		as->next = au.sess[j->session % SESS_BUCKETS];
		au.sess[j->session % SESS_BUCKETS] = as;
	}
	if (final && j->reply.result != SASL_TEMPFAIL) {
		log_info("auth session=%016llx address=[%s] service=%s "
		    "sasl_method=%s sasl_username=%s result=%s failures=%u",
		    (unsigned long long)j->session, j->client,
		    j->service == AUTH_POP3 ? "pop3" : "smtp", j->mech,
		    ok ? j->cred.address : "-", ok ? "ok" : "fail",
		    count_failure(j->client, ok));
		stats_auth(j->service, j->mech, ok);
	}
	if (ok && j->service == AUTH_POP3)
		grant(j->cred.address, j->client);
	ipc_out_init(&o);
	ipc_put_u32(&o, j->reply.result);
	ipc_put_str(&o, j->reply.salt);
	ipc_put_u32(&o, j->reply.iterations);
	ipc_put_str(&o, j->reply.server_sig);
	ipc_put_str(&o, ok ? j->cred.address : "");
	ipc_send(au.net, IMSG_AUTH_RESULT, j->session, -1, &o);
	explicit_bzero(j, sizeof(*j));
	free(j);
}

void
auth_verify(struct ipc_msg *m)
{
	struct auth_job	*j = xcalloc(1, sizeof(*j));
	uint32_t	 type = ipc_get_u32(m);

	j->session = m->id;
	ipc_get_strbuf(m, j->mech, sizeof(j->mech));
	ipc_get_strbuf(m, j->authzid, sizeof(j->authzid));
	ipc_get_strbuf(m, j->user, sizeof(j->user));
	ipc_get_strbuf(m, j->password, sizeof(j->password));
	ipc_get_strbuf(m, j->challenge, sizeof(j->challenge));
	ipc_get_strbuf(m, j->response, sizeof(j->response));
	ipc_get_strbuf(m, j->authmsg, sizeof(j->authmsg));
	ipc_get_strbuf(m, j->client, sizeof(j->client));
	j->service = ipc_get_u32(m);
	ipc_end(m);
	if (type > SASL_REQ_SCRAM_FINAL || j->service > AUTH_POP3)
		fatalx("store: bad SASL request from net");
	j->req = (struct sasl_req){ .type = type, .mech = j->mech,
	    .authzid = j->authzid, .user = j->user, .password = j->password,
	    .challenge = j->challenge, .response = j->response,
	    .authmsg = j->authmsg };
	/* The SMTP-AUTH switch (R2.5) is SMTP's only. */
	j->lookup = db_account_cred(au.db, j->user, j->service == AUTH_SMTP,
	    &j->cred);
	pool_run(au.pool, auth_work, auth_done, j);
}

void
auth_net_failed(struct ipc_msg *m)
{
	char		ip[64], mech[32];
	uint32_t	service;

	ipc_get_strbuf(m, ip, sizeof(ip));
	ipc_get_strbuf(m, mech, sizeof(mech));
	service = ipc_get_u32(m);
	ipc_end(m);
	if (service > AUTH_POP3)
		fatalx("store: bad failed login from net");
	stats_auth(service, mech, false);
	log_info("auth session=%016llx address=[%s] service=%s sasl_method=%s "
	    "sasl_username=- result=fail failures=%u", (unsigned long long)m->id,
	    ip, service == AUTH_POP3 ? "pop3" : "smtp", mech,
	    count_failure(ip, false));
}

void
auth_session_end(uint64_t session)
{
	struct auth_sess	**pp = sess_find(session), *as = *pp;

	if (as == NULL)
		return;
	*pp = as->next;
	free(as);
}

const char *
auth_session_user(uint64_t session)
{
	struct auth_sess	*as = *sess_find(session);

	return as != NULL ? as->user : NULL;
}

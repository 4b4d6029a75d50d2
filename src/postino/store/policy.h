/*
 * policy.h - the policy engine (SPEC section 3, DESIGN "The policy
 * engine"): who may send what, from where, to whom.
 *
 * One ordered table of checks.  Each belongs to a stage of the session
 * (connect, HELO, MAIL, RCPT, end of DATA) and answers DUNNO (no
 * opinion: the next check runs), ACCEPT, REJECT or TEMPFAIL with the
 * reply the client gets.  A stage whose checks all say DUNNO gets the
 * usual positive reply.  The same code decides for live sessions (in the
 * store role) and for "postino-admin explain" (R3.13), which prints the
 * trace every check leaves, so an administrator sees why.
 *
 * The engine reads the account store (local domains, accounts, aliases,
 * grants) through db.h, and keeps the administrator's lists - trusted
 * hosts, devices, bypass entries - in interval tables it reloads when
 * the database has changed.
 */
#ifndef STORE_POLICY_H
#define STORE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "conf.h"
#include "spf.h"

struct db;
struct intrusion;
struct policy;
struct resolver;

enum policy_stage {
	POLICY_CONNECT, POLICY_HELO, POLICY_MAIL, POLICY_RCPT, POLICY_DATA
};

enum policy_action {
	POLICY_DUNNO, POLICY_ACCEPT, POLICY_REJECT, POLICY_TEMPFAIL
};

/* How a session came to be authorized (SPEC 3: any of the three). */
enum policy_authz {
	AUTHZ_NONE,
	AUTHZ_AUTH,		/* SMTP AUTH (R2) */
	AUTHZ_TRUSTED,		/* trusted host (R3.5) */
	AUTHZ_GRANT,		/* POP-before-SMTP grant (R3.4) */
	AUTHZ_DEVICE		/* registered device on its listener (R3.9) */
};

/* a reply may quote two paths of ADDR_PATH_MAX octets */
#define POLICY_REPLY_MAX	1024
#define POLICY_DETAIL_MAX	512

/* A recipient the engine accepted in the current transaction. */
struct policy_rcpt {
	char	local_part[ADDR_LOCAL_MAX + 1];		/* folded */
	char	domain[ADDR_DOMAIN_MAX + 1];
	bool	relay;
};

/* Whether a sender's domain exists (R4.2), as dnscheck.h found. */
enum sender_dns {
	SENDER_DNS_UNKNOWN,	/* not looked up */
	SENDER_DNS_OK,		/* an MX, or an A or AAAA */
	SENDER_DNS_NONE,	/* NXDOMAIN, or neither MX nor address */
	SENDER_DNS_NULL_MX,	/* a null MX: takes no mail (RFC 7505) */
	SENDER_DNS_TEMPFAIL	/* no answer in time */
};

/* What the engine knows of one session; the caller fills the top. */
struct policy_session {
	/* the settings the session started with (a reload may come
	 * meanwhile); NULL: the engine's own, policy_conf() */
	const struct conf	*conf;
	char			 ip[64];		/* canonical text */
	uint8_t			 ip16[16];
	bool			 ip_ok;
	enum listener_profile	 profile;
	char			 helo[256];
	char			 auth[ADDR_PATH_MAX + 1];	/* AUTH account */

	/* the transaction, set by MAIL */
	bool			 in_tx;
	enum policy_authz	 authz;
	char			 authz_by[ADDR_PATH_MAX + 64];
	char			 identity[ADDR_PATH_MAX + 1];	/* R3.2 */
	char			 sender[ADDR_PATH_MAX + 1];	/* canonical */
	char			 sender_given[ADDR_PATH_MAX + 1];
	char			 sender_domain[ADDR_DOMAIN_MAX + 1];
	bool			 sender_local;
	bool			 utf8;		/* MAIL had SMTPUTF8 */
	struct policy_rcpt	*rcpts;		/* each accepted once */
	size_t			 nrcpt;
	size_t			 naccepted;	/* RCPTs accepted (R3.10) */

	/* DNS facts (dnscheck.h), gathered before the stage that reads them */
	bool			 dnsbl_checked;
	char			 dnsbl_zone[ADDR_DOMAIN_MAX + 1]; /* "": none */
	char			 dnsbl_code[16];	/* 127.0.0.2 */
	char			 dnsbl_text[256];	/* its TXT, cleaned */
	char			 sender_dns_domain[ADDR_DOMAIN_MAX + 1];
	enum sender_dns		 sender_dns;
	/* SPF (R4.3) of spf_sender from this client and HELO */
	bool			 spf_checked;
	char			 spf_sender[ADDR_PATH_MAX + 1];
	enum spf_result		 spf;
	char			 spf_exp[SPF_EXP_MAX];
	char			 spf_header[SPF_HEADER_MAX];	/* Received-SPF */
};

/* MAIL and RCPT: the path as the client wrote it, between < and >. */
struct policy_input {
	const char	*path;
	bool		 utf8;		/* MAIL had SMTPUTF8 */
};

struct policy_result {
	enum policy_action	 action;	/* never DUNNO */
	const char		*check;		/* which decided; "" if none */
	char			 reply[POLICY_REPLY_MAX];
	enum policy_authz	 relay;		/* RCPT accepted for relay
						   thanks to this, or NONE */
	const char		*header;	/* MAIL accepted: a trace field
						   to prepend (Received-SPF),
						   or "" */
};

/* Called once per check of the stage, in order; detail says why, or is
 * NULL for a check not reached (an earlier one decided). */
typedef void	policy_trace_fn(void *arg, enum policy_stage,
		    const char *check, enum policy_action, const char *detail);

struct policy	*policy_new(const struct conf *, struct db *);
void		 policy_free(struct policy *);

const struct conf	*policy_conf(const struct policy *);
/* A reloaded configuration, for the requests from now on. */
void			 policy_reconf(struct policy *, const struct conf *);

/* Is domain one of ours?  1, 0, or -1 on a store error. */
int	policy_domain_local(const struct policy *, const char *domain);

/* The rate counters of the running daemon (R4.6); without them (explain)
 * the rate checks say DUNNO. */
void	policy_set_intrusion(struct policy *, struct intrusion *);

/* A trusted host (R3.5). */
bool	policy_trusted(const struct policy *, const uint8_t ip16[16]);

/* Trusted (R3.5) or in the [intrusion] bypass list: never blocked nor
 * rate-limited by address (R4.4). */
bool	policy_never_blocked(const struct policy *, const uint8_t ip16[16]);

/*
 * Read the administrator's lists again if the database changed since
 * the last time (or always, with force).  0, or -1 on a store error
 * (the lists loaded before stay).
 */
int	policy_reload(struct policy *, bool force);

/* A new session from ip (as the kernel wrote it) on a listener. */
void	policy_session_init(struct policy_session *, const char *ip,
	    enum listener_profile);
void	policy_session_clear(struct policy_session *);

/*
 * Run the checks of a stage.  in: the path of MAIL or RCPT (NULL for
 * the other stages).  trace may be NULL.
 */
void	policy_run(struct policy *, enum policy_stage, struct policy_session *,
	    const struct policy_input *in, struct policy_result *,
	    policy_trace_fn *trace, void *arg);

/*
 * A RCPT path as the engine reads it: parsed, "<postmaster>" given the
 * configured host name, the local part folded into lp.  0 or -1.
 */
int	policy_rcpt_parse(const struct policy *, const char *path, bool utf8,
	    struct mailaddr *a, char *lp, size_t size);

/* Was this recipient (folded local part, domain) accepted by RCPT in
 * the current transaction?  1, with *relay; 0 when not. */
int	policy_rcpt_accepted(const struct policy_session *,
	    const char *local_part, const char *domain, bool *relay);

/*
 * Host names in the trusted list are resolved through the resolver and
 * looked up again when their TTL runs out: call policy_resolve after
 * each reload and now and then (store: a timer); policy_resolving says
 * how many lookups are still under way (explain waits for none).
 */
void	policy_resolve(struct policy *, struct resolver *);
size_t	policy_resolving(const struct policy *);

const char	*policy_stage_name(enum policy_stage);
const char	*policy_action_name(enum policy_action);
/* One word for logs: "auth", "trusted", "pop-before-smtp", "device". */
const char	*policy_authz_word(enum policy_authz);

/* Every check, in order, for documentation and explain. */
size_t	policy_ncheck(void);
const char	*policy_check_name(size_t i, enum policy_stage *);

#endif

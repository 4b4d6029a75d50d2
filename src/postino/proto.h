/*
 * proto.h - the messages between the roles (lib/ipc carries them).
 *
 * net -> store requests carry the session id as the message id; the
 * store answers with the same id.  Payload fields are listed in order.
 */
#ifndef POSTINO_PROTO_H
#define POSTINO_PROTO_H

enum imsg_type {
	/*
	 * net -> store: a stage of the policy engine (store/policy.h):
	 * u32 enum policy_stage, then
	 *   connect: str client address, u32 enum listener_profile
	 *   mail:    str helo, str path (between < and >), u32 smtputf8
	 *   rcpt:    str path (between < and >)
	 * The first message of every session is its connect.
	 */
	IMSG_POLICY = 1,
	/*
	 * store -> net: u32 enum policy_action (never DUNNO), u32 relay,
	 * str the check that decided ("" if none), str the reply, str a
	 * trace header field to put in front of the message, CRLF
	 * included (MAIL: Received-SPF), or ""
	 */
	IMSG_POLICY_RESULT,
	/* net -> store: (nothing) */
	IMSG_SPOOL_OPEN,
	/* store -> net: u32 ok, str queue id; with the spool fd when ok */
	IMSG_SPOOL_FD,
	/*
	 * net -> store: str queue id, u64 message length, str helo,
	 * str client address, str protocol (ESMTP...), str mail from,
	 * u32 body (enum smtp_body), u32 smtputf8, u32 nrcpt,
	 * then nrcpt x str path (between < and >, as in its RCPT)
	 */
	IMSG_SPOOL_COMMIT,
	/*
	 * store -> net: u32 enum commit_status, str the virus name for
	 * COMMIT_INFECTED (printable ASCII, at most CLAMD_NAME_MAX
	 * octets; "" for the others)
	 */
	IMSG_SPOOL_COMMITTED,
	/* net -> store: str queue id */
	IMSG_SPOOL_ABORT,
	/*
	 * net -> store: a SASL verification (mail/sasl.h struct sasl_req):
	 * u32 type, str mech, str authzid, str user, str password,
	 * str challenge, str response, str authmsg, str client address,
	 * u32 enum auth_service
	 */
	IMSG_AUTH_VERIFY,
	/*
	 * store -> net: u32 enum sasl_result, str salt, u32 iterations,
	 * str server signature, str the account (canonical, on success)
	 */
	IMSG_AUTH_RESULT,
	/* net -> store: a session has ended: u32 the commands it refused
	 * as protocol errors (R4.4) */
	IMSG_SESSION_END,
	/* net -> store: forget the session's AUTH: STARTTLS (nothing) */
	IMSG_AUTH_END,
	/*
	 * store -> net: deliver one message to the recipients of one
	 * domain (id: the job), with a read-only descriptor of the spool
	 * file whose first msglen octets are the message:
	 * str queue id, str mail from (between < and >), u32 body (enum
	 * smtp_body), u32 smtputf8, u64 msglen, str domain, u32 lmtp
	 * (1: local delivery over [delivery] lmtp), str route (a
	 * redirection rule's HOST[:PORT], R5.5; "" for MX), str smart host
	 * AUTH user ("" for none), str its password, u32 nrcpt, then nrcpt
	 * x str recipient (local@domain)
	 */
	IMSG_DELIVER,
	/*
	 * net -> store: the outcome of a job, per recipient in the order
	 * given: u32 nrcpt, then nrcpt x (u32 reply code: 2xx delivered,
	 * 4xx try later, 5xx failed; str enhanced status "5.1.1"; str the
	 * remote host "name[address]" or ""; str the reply or the reason,
	 * one line)
	 */
	IMSG_DELIVER_RESULT,
	/*
	 * store -> net, just before the IMSG_DELIVER of the same id: the
	 * socket store connected to an "unix:" LMTP server, which net's
	 * chroot cannot reach (nothing else)
	 */
	IMSG_DELIVER_SOCK,
	/*
	 * net -> store: open the mailbox of the account the POP3 session
	 * authenticated as (store's own record of it), nothing else
	 */
	IMSG_POP3_OPEN,
	/*
	 * store -> net: u32 enum pop3_open_status, u32 uidvalidity, u32
	 * nmsg; when POP3_OPEN_OK, IMSG_POP3_MSGS follow until nmsg
	 * messages were listed
	 */
	IMSG_POP3_OPENED,
	/*
	 * store -> net: u32 n, then n x (u64 POP3 size, u32 uid), in UID
	 * order, continuing the listing (at most POP3_MSGS_CHUNK)
	 */
	IMSG_POP3_MSGS,
	/* net -> store: u32 message (0-based) to read */
	IMSG_POP3_READ,
	/* store -> net: u32 ok; with a read-only descriptor when ok */
	IMSG_POP3_FD,
	/*
	 * net -> store: QUIT in the TRANSACTION state (RFC 1939 6):
	 * u32 n, then n x (u32 message (0-based), u32 MAILBOX_DELE |
	 * MAILBOX_SEEN); u32 last (1 on the last of these messages, after
	 * which store applies them and answers)
	 */
	IMSG_POP3_UPDATE,
	/* store -> net: u32 messages that could not be changed */
	IMSG_POP3_UPDATED,
	/*
	 * net -> store: a login net refused by itself, before any secret
	 * was needed (a malformed or over-long exchange): str client
	 * address, str mechanism, u32 enum auth_service; it counts and is
	 * logged as any failed login (R4.4)
	 */
	IMSG_AUTH_FAILED,
	/*
	 * net -> store: net's statistics (R7.5): u32 enum metrics_for,
	 * then metrics_net_put()'s fields (metrics.h).  For a scrape the
	 * id is the HTTP client's, and store answers IMSG_METRICS_TEXT;
	 * for IMSG_METRICS_ASK it is the id that asked
	 */
	IMSG_METRICS,
	/* store -> net: u32 ok, str the Prometheus text ("" when not ok) */
	IMSG_METRICS_TEXT,
	/* store -> net: send IMSG_METRICS for postino-admin (nothing) */
	IMSG_METRICS_ASK,

	/*
	 * The channel between the parent and each role (reload, R7.1).
	 * parent -> net, before IMSG_PARENT_RELOAD: one listening socket
	 * of the new configuration (fd): u32 listener index
	 */
	IMSG_PARENT_LISTEN = 100,
	/* parent -> net, before IMSG_PARENT_RELOAD: the [tls] cert file
	 * (fd), then the key file (fd) */
	IMSG_PARENT_TLS,
	/*
	 * parent -> role: the new configuration's text (fd, checked by the
	 * parent): u64 generation, str the file's name (for messages and
	 * relative paths).  net applies it with the listeners and the
	 * certificate sent before it; each role answers
	 * IMSG_PARENT_RELOADED with the same generation.
	 */
	IMSG_PARENT_RELOAD,
	/* role -> parent: u64 generation, u32 1 applied or 0 some of it
	 * could not be (the role's log says what); the parent checks the
	 * length and trusts nothing else of it */
	IMSG_PARENT_RELOADED,
	/* store -> parent: reload, asked through the control socket
	 * (postino-admin reload); id names the request */
	IMSG_PARENT_RELOAD_ASK,
	/* parent -> store: the outcome for request id: u32 0 refused or 1
	 * applied, str one line (the error names FILE:LINE) */
	IMSG_PARENT_RELOAD_DONE,
};

/* Which service an IMSG_AUTH_VERIFY is for. */
enum auth_service {
	AUTH_SMTP,
	AUTH_POP3,	/* a login records a POP-before-SMTP grant (R6.2) */
};

enum pop3_open_status {
	POP3_OPEN_OK,
	POP3_OPEN_IN_USE,	/* another session holds the mailbox */
	POP3_OPEN_TEMPFAIL,	/* store error */
};

#define POP3_MSGS_CHUNK	4096	/* listing entries in one message */

enum commit_status {
	COMMIT_OK,
	COMMIT_TEMPFAIL,	/* 451: store error */
	COMMIT_NOSPACE,		/* 452: disk full */
	COMMIT_INFECTED,	/* 554 5.7.1: clamd found a virus (R4.5) */
	COMMIT_SCANFAIL,	/* 451 4.7.1: no scan, on_error = tempfail */
};

#define QID_LEN	16	/* hex digits */

#endif

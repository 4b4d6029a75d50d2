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
	 * net -> store: str local_part, str domain, str sender (canonical,
	 * "" for <>), str client address
	 */
	IMSG_RCPT_LOOKUP = 1,
	/* store -> net: u32 enum db_rcpt, or RCPT_SENDER_DENIED */
	IMSG_RCPT_RESULT,
	/* net -> store: (nothing) */
	IMSG_SPOOL_OPEN,
	/* store -> net: u32 ok, str queue id; with the spool fd when ok */
	IMSG_SPOOL_FD,
	/*
	 * net -> store: str queue id, u64 message length, str helo,
	 * str client address, str protocol (ESMTP...), str mail from,
	 * u32 body (enum smtp_body), u32 smtputf8, u32 nrcpt,
	 * then nrcpt x (str local_part, str domain, str as given)
	 */
	IMSG_SPOOL_COMMIT,
	/* store -> net: u32 enum commit_status */
	IMSG_SPOOL_COMMITTED,
	/* net -> store: str queue id */
	IMSG_SPOOL_ABORT,
	/*
	 * net -> store: a SASL verification (mail/sasl.h struct sasl_req):
	 * u32 type, str mech, str authzid, str user, str password,
	 * str challenge, str response, str authmsg, str client address
	 */
	IMSG_AUTH_VERIFY,
	/*
	 * store -> net: u32 enum sasl_result, str salt, u32 iterations,
	 * str server signature, str the account (canonical, on success)
	 */
	IMSG_AUTH_RESULT,
	/* net -> store: an authenticated session has ended (nothing) */
	IMSG_SESSION_END,
};

enum commit_status {
	COMMIT_OK,
	COMMIT_TEMPFAIL,	/* 451: store error */
	COMMIT_NOSPACE,		/* 452: disk full */
};

#define QID_LEN	16	/* hex digits */

/* An IMSG_RCPT_RESULT beyond enum db_rcpt: R3.2 refuses the sender. */
#define RCPT_SENDER_DENIED	100

#endif

/*
 * sasl.h - the server side of SMTP AUTH (RFC 4954): strict base64, the
 * mechanism descriptors and the exchange state machine.
 *
 * Pure code: no I/O, no allocation but the session itself.  Every
 * mechanism has two halves.  The net half (struct sasl_server) runs in
 * the net role: it frames and decodes the client's lines, keeps the
 * state, makes challenges and nonces, and when it needs a secret it
 * hands out a request (struct sasl_req) instead.  The store half
 * (sasl_store_verify()) runs in the store role, which holds the secrets:
 * it checks the request and answers with a struct sasl_reply, which the
 * net half takes back with sasl_server_verified().  Neither half trusts
 * the other: each bounds and checks what it is given.
 *
 *	s = sasl_server_new();
 *	r = sasl_server_start(s, "PLAIN", initial_or_NULL, &params);
 *	loop:
 *	SASL_CONTINUE	send "334 " + sasl_server_challenge(s), then pass
 *			the client's next line to sasl_server_step()
 *	SASL_NEED_VERIFY send sasl_server_request(s) to the store, which
 *			calls sasl_store_verify(); pass its reply to
 *			sasl_server_verified()
 *	SASL_OK		235; sasl_server_user(s) is the identity
 *	SASL_FAIL	535 5.7.8	SASL_CANCEL	501 5.7.0
 *	SASL_MALFORMED	501 5.5.2	SASL_TOOLONG	500 5.5.6
 *	SASL_NOMECH	504 5.5.4	SASL_TEMPFAIL	454 4.7.0
 *	sasl_server_free(&s);
 */
#ifndef MAIL_SASL_H
#define MAIL_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SASL_LINE_MAX	12288	/* RFC 4954 4: octets of base64 in a line */
#define SASL_MSG_MAX	(SASL_LINE_MAX / 4 * 3)	/* decoded */
#define SASL_USER_MAX	255	/* RFC 4616 2: authzid, authcid, passwd */
#define SASL_PASS_MAX	255
#define SASL_HOST_MAX	255	/* CRAM-MD5 challenge host name */
#define SASL_TEXT_MAX	2048	/* a CRAM challenge, one SCRAM message */
#define SASL_AUTHMSG_MAX (3 * SASL_TEXT_MAX + 2)	/* SCRAM AuthMessage */
#define SASL_CHALLENGE_MAX 4096	/* base64 of one server message */
#define SASL_PROOF_MAX	64	/* base64 of a SCRAM proof or signature */
#define SASL_SALT_MAX	64	/* SCRAM salt, octets */
#define SASL_SALT_B64_MAX 88
#define SASL_SECRET_MAX	256	/* a stored secret, text */

/* SCRAM iteration counts accepted from a stored secret (RFC 7677 4). */
#define SASL_SCRAM_ITER_MIN	4096
#define SASL_SCRAM_ITER_MAX	10000000

enum sasl_result {
	SASL_CONTINUE,		/* send sasl_server_challenge() in a 334 */
	SASL_NEED_VERIFY,	/* send sasl_server_request() to the store */
	SASL_OK,		/* authenticated */
	SASL_FAIL,		/* credentials invalid: 535 */
	SASL_CANCEL,		/* client sent "*": 501 */
	SASL_MALFORMED,		/* bad base64 or syntax: 501 */
	SASL_TOOLONG,		/* line over SASL_LINE_MAX: 500 5.5.6 */
	SASL_NOMECH,		/* unknown mechanism: 504 */
	SASL_TEMPFAIL		/* no randomness, store trouble: 454 */
};

enum sasl_hash {
	SASL_HASH_NONE,
	SASL_HASH_SHA1,
	SASL_HASH_SHA256
};

/*
 * What the net half asks of the store.  Every field is NUL-terminated
 * text and never NULL ("" when unused), so each can be carried over IPC
 * as a string; which fields are used depends on type:
 *
 *	SASL_REQ_PASSWORD	mech, authzid, user, password (PLAIN, LOGIN)
 *	SASL_REQ_CRAM_MD5	mech, user, challenge, response (32 hex)
 *	SASL_REQ_SCRAM_FIRST	mech, user
 *	SASL_REQ_SCRAM_FINAL	mech, user, authmsg, response (proof, base64)
 *
 * The pointers point into the session and are valid until its next call.
 */
enum sasl_req_type {
	SASL_REQ_PASSWORD,
	SASL_REQ_CRAM_MD5,
	SASL_REQ_SCRAM_FIRST,
	SASL_REQ_SCRAM_FINAL
};

struct sasl_req {
	enum sasl_req_type	 type;
	const char		*mech;		/* descriptor name */
	const char		*authzid;
	const char		*user;		/* authentication identity */
	const char		*password;
	const char		*challenge;
	const char		*response;
	const char		*authmsg;
};

/*
 * The store's answer.  result is SASL_OK, SASL_FAIL or SASL_TEMPFAIL.
 * SCRAM_FIRST fills salt and iterations (always, with a fake salt for an
 * unknown user); SCRAM_FINAL fills server_sig on success.
 */
struct sasl_reply {
	enum sasl_result	 result;
	char			 salt[SASL_SALT_B64_MAX + 1];	/* base64 */
	unsigned int		 iterations;
	char			 server_sig[SASL_PROOF_MAX + 1];	/* base64 */
};

/*
 * What the store role provides to sasl_store_verify().
 * check_password: SASL_OK when password is the user's, SASL_FAIL when it
 * is not or the user is unknown, disabled or has SMTP-AUTH off (R2.3,
 * R2.5), SASL_TEMPFAIL when the store cannot tell.
 * get_secret: copy the user's stored secret for scheme ("CRAM-MD5",
 * "SCRAM-SHA-1", "SCRAM-SHA-256") into buf; same results.
 * fake_key (random, made once at start-up) and fake_iterations make the
 * SCRAM salt of an unknown user, so that it looks like a real one.
 */
struct sasl_store_env {
	enum sasl_result (*check_password)(const char *user,
			    const char *password, void *arg);
	enum sasl_result (*get_secret)(const char *user, const char *scheme,
			    char *buf, size_t size, void *arg);
	void		*arg;
	const uint8_t	*fake_key;
	size_t		 fake_key_len;
	unsigned int	 fake_iterations;
};

struct sasl_params {
	const char	*hostname;	/* in the CRAM-MD5 challenge */
	/*
	 * Tests only, NULL otherwise: the SCRAM server nonce part, or the
	 * whole CRAM-MD5 challenge, instead of random ones.
	 */
	const char	*test_nonce;
};

struct sasl_server;

/*
 * A mechanism: one file, one const descriptor.  The net half is start
 * (no initial response: make the first challenge), step (one decoded
 * client message, NUL-terminated after len) and verified (the store's
 * reply); the store half is verify.
 */
struct sasl_mech {
	const char	*name;
	bool		 plaintext;	/* offered only under TLS (R2.2) */
	bool		 client_first;	/* may take an initial response */
	enum sasl_hash	 hash;		/* SCRAM */
	const char	*scheme;	/* stored secret for get_secret */
	enum sasl_result (*start)(struct sasl_server *);
	enum sasl_result (*step)(struct sasl_server *, const uint8_t *,
			    size_t);
	enum sasl_result (*verified)(struct sasl_server *,
			    const struct sasl_reply *);
	enum sasl_result (*verify)(const struct sasl_req *,
			    const struct sasl_store_env *, struct sasl_reply *);
};

extern const struct sasl_mech	sasl_mech_plain, sasl_mech_login,
				sasl_mech_cram_md5, sasl_mech_scram_sha1,
				sasl_mech_scram_sha256;

/*
 * The session.  Fields are private to sasl*.c; the struct is here so
 * that the mechanism files can share it.  The password and the keys are
 * wiped on reset and free.
 */
struct sasl_server {
	const struct sasl_mech	*mech;
	int			 state;		/* the mechanism's own */
	int			 phase;		/* SP_* in sasl.c */
	char			 hostname[SASL_HOST_MAX + 1];
	char			 test_nonce[SASL_TEXT_MAX + 1];
	struct sasl_req		 req;
	char			 challenge[SASL_CHALLENGE_MAX + 1];
	uint8_t			 in[SASL_MSG_MAX + 1];
	char			 user[SASL_USER_MAX + 1];
	char			 authzid[SASL_USER_MAX + 1];
	char			 password[SASL_PASS_MAX + 1];
	char			 response[SASL_PROOF_MAX + 1];
	char			 gs2[SASL_TEXT_MAX + 1];	/* SCRAM */
	char			 nonce[SASL_TEXT_MAX + 1];	/* SCRAM, full */
	char			 text1[SASL_TEXT_MAX + 1];
	char			 text2[SASL_TEXT_MAX + 1];
	char			 authmsg[SASL_AUTHMSG_MAX + 1];
	const char		*errstr;
};

/* The descriptor named name (case-insensitive), or NULL. */
const struct sasl_mech	*sasl_mech_find(const char *name);
/* Every mechanism, by index from 0: NULL past the last. */
const struct sasl_mech	*sasl_mech_at(size_t i);

/* A zeroed session, or NULL when out of memory. */
struct sasl_server	*sasl_server_new(void);
/* Wipe and free *sp, set it to NULL; NULL is fine. */
void			 sasl_server_free(struct sasl_server **sp);

/*
 * Begin an exchange with mechanism name; initial is the initial
 * response of RFC 4954 (base64, "=" for an empty one) or NULL.  A session
 * can be started again after any result but SASL_NEED_VERIFY.
 */
enum sasl_result	 sasl_server_start(struct sasl_server *, const char *name,
			    const char *initial, const struct sasl_params *);
/*
 * One client line, CRLF removed: base64, "" for an empty response, "*"
 * to cancel.  Legal only after SASL_CONTINUE.
 */
enum sasl_result	 sasl_server_step(struct sasl_server *, const char *line);
/* The store's reply to the last request.  Legal after SASL_NEED_VERIFY. */
enum sasl_result	 sasl_server_verified(struct sasl_server *,
			    const struct sasl_reply *);

/* The challenge to send after SASL_CONTINUE, base64, maybe "". */
const char		*sasl_server_challenge(const struct sasl_server *);
/* The request after SASL_NEED_VERIFY; valid until the next call. */
const struct sasl_req	*sasl_server_request(const struct sasl_server *);
/* After SASL_OK: the authenticated user; else "". */
const char		*sasl_server_user(const struct sasl_server *);
/* Why the last call failed, for the log (never client data); or NULL. */
const char		*sasl_server_errstr(const struct sasl_server *);

/*
 * Store half: check req against the secrets behind env and fill *reply.
 * Returns reply->result.  The request comes from the net role and is
 * checked like network input.
 */
enum sasl_result	 sasl_store_verify(const struct sasl_req *,
			    const struct sasl_store_env *, struct sasl_reply *);

/*
 * Strict base64 (RFC 4648 4): standard alphabet, padding required, no
 * whitespace, unused bits of the last symbol zero.  Encode writes a
 * NUL-terminated string into out; decode writes *outlen_r octets.  Both
 * return 0, or -1 on bad input or when out (size octets) is too small.
 */
int	sasl_b64_encode(const uint8_t *in, size_t len, char *out, size_t size);
int	sasl_b64_decode(const char *in, size_t len, uint8_t *out, size_t size,
	    size_t *outlen_r);

/*
 * Secrets for postino-admin, written to out as text:
 * CRAM-MD5: 64 lower-case hex digits (see sasl_cram_md5.c);
 * SCRAM: "iterations$salt$StoredKey$ServerKey", base64 fields, with a
 * random 16-octet salt, or the given one for the _salt variant.
 * Return 0, or -1 (bad arguments, out too small, no randomness).
 */
int	sasl_cram_md5_secret(const char *password, char *out, size_t size);
int	sasl_scram_secret(const char *password, enum sasl_hash,
	    unsigned int iterations, char *out, size_t size);
int	sasl_scram_secret_salt(const char *password, enum sasl_hash,
	    unsigned int iterations, const uint8_t *salt, size_t saltlen,
	    char *out, size_t size);

/* Store halves, exported for the tests. */
int	sasl_cram_md5_check(const char *secret, const char *challenge,
	    const char *digest);
int	sasl_scram_check(const char *secret, enum sasl_hash,
	    const char *authmsg, const char *proof, char *sig, size_t sigsize);

/* For the mechanism files. */
bool	sasl_text_valid(const uint8_t *p, size_t len, bool controls);
int	sasl_server_set_challenge(struct sasl_server *, const void *, size_t);
int	sasl_random(void *buf, size_t len);
void	sasl_server_need(struct sasl_server *, enum sasl_req_type);
enum sasl_result sasl_verified_simple(struct sasl_server *,
	    const struct sasl_reply *);
enum sasl_result sasl_verify_password(const struct sasl_req *,
	    const struct sasl_store_env *, struct sasl_reply *);
enum sasl_result sasl_server_error(struct sasl_server *, enum sasl_result,
	    const char *errstr);

#endif

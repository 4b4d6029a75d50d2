/*
 * sasl_cram_md5.c - CRAM-MD5 (RFC 2195): the server sends a unique
 * challenge "<random.time@hostname>", the client answers "user SP
 * digest", digest = HMAC-MD5(secret, challenge) in 32 hex digits.
 *
 * Net half (net role): makes the challenge and splits the answer; the
 * user name ends at the last space (as Dovecot).  The digest may be in
 * either case: RFC 2195 says lower-case, we accept upper-case too and
 * compare the decoded octets.
 *
 * Store half (store role): the stored secret is not the password but,
 * as Dovecot's {CRAM-MD5} scheme, the HMAC-MD5 key schedule: the MD5
 * chaining state after the opad block and after the ipad block (RFC 2104
 * with K^opad and K^ipad as first blocks).  Text form, 64 lower-case hex
 * digits: outer A, B, C, D then inner A, B, C, D, each word little-endian.
 * It is password-equivalent for CRAM-MD5 only: keep it as secret as a
 * password hash.  The check resumes MD5 from those states.
 */
/* The low-level MD5_CTX is the only way to export and resume a state. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/md5.h>

#include "sasl.h"

#define CRAM_STATE_LEN	16	/* four 32-bit words */
#define CRAM_SECRET_LEN	(2 * CRAM_STATE_LEN)
#define CRAM_DIGEST_HEX	(2 * MD5_DIGEST_LENGTH)

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exactly 2 * len hex digits at hex into out. */
static int
hex_decode(const char *hex, uint8_t *out, size_t len)
{
	size_t	i;
	int	hi, lo;

	if (strlen(hex) != 2 * len)
		return -1;
	for (i = 0; i < len; i++) {
		if ((hi = hex_value(hex[2 * i])) == -1 ||
		    (lo = hex_value(hex[2 * i + 1])) == -1)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void
hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static void
state_store(const MD5_CTX *c, uint8_t *p)
{
	const MD5_LONG	w[4] = { c->A, c->B, c->C, c->D };
	int		i;

	for (i = 0; i < 4; i++) {
		p[4 * i] = w[i] & 0xff;
		p[4 * i + 1] = w[i] >> 8 & 0xff;
		p[4 * i + 2] = w[i] >> 16 & 0xff;
		p[4 * i + 3] = w[i] >> 24 & 0xff;
	}
}

/* An MD5 context that has hashed one 64-octet block into state p. */
static void
state_load(MD5_CTX *c, const uint8_t *p)
{
	MD5_LONG	w[4];
	int		i;

	for (i = 0; i < 4; i++)
		w[i] = (MD5_LONG)p[4 * i] | (MD5_LONG)p[4 * i + 1] << 8 |
		    (MD5_LONG)p[4 * i + 2] << 16 | (MD5_LONG)p[4 * i + 3] << 24;
	memset(c, 0, sizeof(*c));
	c->A = w[0];
	c->B = w[1];
	c->C = w[2];
	c->D = w[3];
	c->Nl = MD5_CBLOCK * 8;		/* bits done */
}

int
sasl_cram_md5_secret(const char *password, char *out, size_t size)
{
	uint8_t		key[MD5_CBLOCK], pad[MD5_CBLOCK], st[CRAM_SECRET_LEN];
	size_t		len = strlen(password), i;
	MD5_CTX		c;

	if (size < 2 * CRAM_SECRET_LEN + 1)
		return -1;
	memset(key, 0, sizeof(key));
	if (len > MD5_CBLOCK)		/* RFC 2104 2: hash a long key */
		MD5((const uint8_t *)password, len, key);
	else
		memcpy(key, password, len);
	for (i = 0; i < MD5_CBLOCK; i++)
		pad[i] = key[i] ^ 0x5c;
	MD5_Init(&c);
	MD5_Update(&c, pad, sizeof(pad));
	state_store(&c, st);
	for (i = 0; i < MD5_CBLOCK; i++)
		pad[i] = key[i] ^ 0x36;
	MD5_Init(&c);
	MD5_Update(&c, pad, sizeof(pad));
	state_store(&c, st + CRAM_STATE_LEN);
	hex_encode(st, sizeof(st), out);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(st, sizeof(st));
	OPENSSL_cleanse(&c, sizeof(c));
	return 0;
}

/*
 * Store half, pure: 0 when digest (32 hex digits) is HMAC-MD5 of
 * challenge under the key whose schedule is secret; -1 otherwise.
 */
int
sasl_cram_md5_check(const char *secret, const char *challenge,
    const char *digest)
{
	uint8_t		st[CRAM_SECRET_LEN], want[MD5_DIGEST_LENGTH];
	uint8_t		inner[MD5_DIGEST_LENGTH], got[MD5_DIGEST_LENGTH];
	MD5_CTX		c;
	int		ret = -1;

	if (hex_decode(secret, st, sizeof(st)) == -1 ||
	    hex_decode(digest, got, sizeof(got)) == -1)
		goto out;
	state_load(&c, st + CRAM_STATE_LEN);
	MD5_Update(&c, challenge, strlen(challenge));
	MD5_Final(inner, &c);
	state_load(&c, st);
	MD5_Update(&c, inner, sizeof(inner));
	MD5_Final(want, &c);
	ret = CRYPTO_memcmp(want, got, sizeof(want)) == 0 ? 0 : -1;
out:
	OPENSSL_cleanse(st, sizeof(st));
	OPENSSL_cleanse(&c, sizeof(c));
	return ret;
}

static enum sasl_result
cram_start(struct sasl_server *s)
{
	unsigned long long	rnd;
	int			n;

	if (s->test_nonce[0] != '\0')
		n = snprintf(s->text1, sizeof(s->text1), "%s", s->test_nonce);
	else {
		if (sasl_random(&rnd, sizeof(rnd)) == -1)
			return sasl_server_error(s, SASL_TEMPFAIL, "random");
		n = snprintf(s->text1, sizeof(s->text1), "<%llu.%lld@%s>",
		    rnd, (long long)time(NULL), s->hostname);
	}
	if (n < 0 || (size_t)n >= sizeof(s->text1) ||
	    sasl_server_set_challenge(s, s->text1, (size_t)n) == -1)
		return sasl_server_error(s, SASL_TEMPFAIL, "challenge");
	return SASL_CONTINUE;
}

static enum sasl_result
cram_step(struct sasl_server *s, const uint8_t *in, size_t len)
{
	const uint8_t	*sp = NULL;
	size_t		 i, ulen;

	for (i = 0; i < len; i++)
		if (in[i] == ' ')
			sp = in + i;
	if (sp == NULL || (size_t)(in + len - sp - 1) != CRAM_DIGEST_HEX)
		return sasl_server_error(s, SASL_MALFORMED, "bad response");
	for (i = 0; i < CRAM_DIGEST_HEX; i++)
		if (hex_value(sp[1 + i]) == -1)
			return sasl_server_error(s, SASL_MALFORMED, "bad digest");
	if ((ulen = sp - in) == 0)
		return sasl_server_error(s, SASL_MALFORMED, "empty user");
	if (ulen > SASL_USER_MAX || !sasl_text_valid(in, ulen, false))
		return sasl_server_error(s, SASL_FAIL, "bad name");
	memcpy(s->user, in, ulen);
	s->user[ulen] = '\0';
	for (i = 0; i < CRAM_DIGEST_HEX; i++)
		s->response[i] = (char)(sp[1 + i] | 0x20);	/* lower case */
	s->response[CRAM_DIGEST_HEX] = '\0';
	sasl_server_need(s, SASL_REQ_CRAM_MD5);
	return SASL_NEED_VERIFY;
}

static enum sasl_result
cram_verify(const struct sasl_req *req, const struct sasl_store_env *env,
    struct sasl_reply *reply)
{
	char			secret[SASL_SECRET_MAX + 1];
	enum sasl_result	r;

	(void)reply;
	if (req->type != SASL_REQ_CRAM_MD5 || req->challenge[0] == '\0')
		return SASL_FAIL;
	if (env->get_secret == NULL)
		return SASL_TEMPFAIL;
	secret[0] = '\0';
	r = env->get_secret(req->user, sasl_mech_cram_md5.scheme, secret, sizeof(secret),
	    env->arg);
	secret[sizeof(secret) - 1] = '\0';
	if (r == SASL_OK && sasl_cram_md5_check(secret, req->challenge,
	    req->response) == -1)
		r = SASL_FAIL;
	OPENSSL_cleanse(secret, sizeof(secret));
	return r == SASL_OK || r == SASL_TEMPFAIL ? r : SASL_FAIL;
}

const struct sasl_mech sasl_mech_cram_md5 = {
	.name = "CRAM-MD5",
	.plaintext = false,
	.client_first = false,
	.hash = SASL_HASH_NONE,
	.scheme = "CRAM-MD5",
	.start = cram_start,
	.step = cram_step,
	.verified = sasl_verified_simple,
	.verify = cram_verify,
};

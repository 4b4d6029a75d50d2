/*
 * sasl_scram.c - SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677):
 * one file, two descriptors that differ only in the hash.
 *
 * Net half (net role, on decoded client messages it does not trust):
 * parses client-first and client-final, makes the server nonce (24
 * random octets, base64), builds server-first from the salt and count
 * the store sends, checks the channel binding and the nonce, and builds
 * the AuthMessage.  It never sees a key: the proof is checked and the
 * ServerSignature made by the store half, which holds StoredKey and
 * ServerKey.  Requests: SCRAM_FIRST {user} -> {salt, iterations};
 * SCRAM_FINAL {user, authmsg, proof} -> {server_sig} or failure.
 *
 * Only the gs2 header "n" or "y" is accepted: no channel binding (no
 * -PLUS mechanism is offered, so "y" is no downgrade); "p=" is refused
 * with e=channel-binding-not-supported (RFC 5802 7).  A gs2 authzid must
 * name the user itself.  Errors found in the client-final message, and a
 * wrong proof, are sent as "e=..." in a challenge (RFC 5802 3); whatever
 * the client answers then ends in SASL_FAIL.
 * XXX no SASLprep (RFC 4013): UTF-8 names and passwords are used as sent,
 * without normalisation, so a client that normalises may fail.
 *
 * Stored secret (store half, made by sasl_scram_secret()):
 * "iterations$salt$StoredKey$ServerKey", the last three in base64.  An
 * unknown user gets a fake salt HMAC-SHA256(fake_key, scheme NUL user),
 * so that server-first does not tell who exists (RFC 5802 9).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sasl.h"

#define SNONCE_RAND	24	/* octets of randomness in our nonce */
#define CNONCE_MAX	256	/* client nonce, octets */
#define SALT_LEN	16	/* salt made by sasl_scram_secret() */

enum { SC_FIRST, SC_LOOKUP, SC_FINAL, SC_PROOF, SC_DONE, SC_ERROR };

struct scram_secret {
	unsigned int	iterations;
	uint8_t		salt[SASL_SALT_MAX];
	size_t		saltlen;
	uint8_t		stored[EVP_MAX_MD_SIZE];
	uint8_t		server[EVP_MAX_MD_SIZE];
};

static const EVP_MD *
hash_md(enum sasl_hash h)
{
	switch (h) {
	case SASL_HASH_SHA1:
		return EVP_sha1();
	case SASL_HASH_SHA256:
		return EVP_sha256();
	default:
		return NULL;
	}
}

/* Decode base64 field [p, p + len) to exactly want octets (0: any). */
static int
b64_field(const char *p, size_t len, uint8_t *out, size_t size, size_t want,
    size_t *outlen_r)
{
	size_t	n;

	if (sasl_b64_decode(p, len, out, size, &n) == -1 || n == 0 ||
	    (want != 0 && n != want))
		return -1;
	if (outlen_r != NULL)
		*outlen_r = n;
	return 0;
}

/* "iterations$salt$StoredKey$ServerKey" for a hash of hlen octets. */
static int
secret_parse(const char *text, size_t hlen, struct scram_secret *k)
{
	const char	*p = text, *d1, *d2, *d3;
	char		*end;
	unsigned long	 it;

	if (*p < '1' || *p > '9')
		return -1;
	it = strtoul(p, &end, 10);
	if (*end != '$' || end - p > 8 || it < SASL_SCRAM_ITER_MIN ||
	    it > SASL_SCRAM_ITER_MAX)
		return -1;
	k->iterations = (unsigned int)it;
	d1 = end + 1;
	if ((d2 = strchr(d1, '$')) == NULL || (d3 = strchr(d2 + 1, '$')) ==
	    NULL || strchr(d3 + 1, '$') != NULL)
		return -1;
	if (b64_field(d1, d2 - d1, k->salt, sizeof(k->salt), 0,
	    &k->saltlen) == -1 ||
	    b64_field(d2 + 1, d3 - d2 - 1, k->stored, sizeof(k->stored), hlen,
	    NULL) == -1 ||
	    b64_field(d3 + 1, strlen(d3 + 1), k->server, sizeof(k->server),
	    hlen, NULL) == -1)
		return -1;
	return 0;
}

int
sasl_scram_secret_salt(const char *password, enum sasl_hash h,
    unsigned int iterations, const uint8_t *salt, size_t saltlen, char *out,
    size_t size)
{
	const EVP_MD	*md = hash_md(h);
	uint8_t		 salted[EVP_MAX_MD_SIZE], ck[EVP_MAX_MD_SIZE];
	uint8_t		 stored[EVP_MAX_MD_SIZE], sk[EVP_MAX_MD_SIZE];
	char		 b64[3][SASL_SALT_B64_MAX + 1];
	int		 hlen, n, ret = -1;

	if (md == NULL || iterations < SASL_SCRAM_ITER_MIN ||
	    iterations > SASL_SCRAM_ITER_MAX || saltlen == 0 ||
	    saltlen > SASL_SALT_MAX)
		return -1;
	hlen = EVP_MD_size(md);
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt,
	    (int)saltlen, (int)iterations, md, hlen, salted) != 1 ||
	    HMAC(md, salted, hlen, (const uint8_t *)"Client Key", 10, ck,
	    NULL) == NULL ||
	    EVP_Digest(ck, hlen, stored, NULL, md, NULL) != 1 ||
	    HMAC(md, salted, hlen, (const uint8_t *)"Server Key", 10, sk,
	    NULL) == NULL)
		goto out;
	if (sasl_b64_encode(salt, saltlen, b64[0], sizeof(b64[0])) == -1 ||
	    sasl_b64_encode(stored, hlen, b64[1], sizeof(b64[1])) == -1 ||
	    sasl_b64_encode(sk, hlen, b64[2], sizeof(b64[2])) == -1)
		goto out;
	n = snprintf(out, size, "%u$%s$%s$%s", iterations, b64[0], b64[1],
	    b64[2]);
	if (n >= 0 && (size_t)n < size)
		ret = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ck, sizeof(ck));
	OPENSSL_cleanse(sk, sizeof(sk));
	OPENSSL_cleanse(b64, sizeof(b64));
	return ret;
}

int
sasl_scram_secret(const char *password, enum sasl_hash h,
    unsigned int iterations, char *out, size_t size)
{
	uint8_t	salt[SALT_LEN];

	if (sasl_random(salt, sizeof(salt)) == -1)
		return -1;
	return sasl_scram_secret_salt(password, h, iterations, salt,
	    sizeof(salt), out, size);
}

/*
 * Store half, pure: 0 when proof (base64) is the ClientProof for authmsg
 * under secret, with the base64 ServerSignature in sig; -1 otherwise.
 * ClientKey = proof XOR HMAC(StoredKey, authmsg); it must hash to
 * StoredKey (RFC 5802 3), compared in constant time.
 */
int
sasl_scram_check(const char *secret, enum sasl_hash h, const char *authmsg,
    const char *proof, char *sig, size_t sigsize)
{
	const EVP_MD		*md = hash_md(h);
	struct scram_secret	 k;
	uint8_t			 p[EVP_MAX_MD_SIZE], cs[EVP_MAX_MD_SIZE];
	uint8_t			 hk[EVP_MAX_MD_SIZE];
	size_t			 hlen, i;
	int			 ret = -1;

	if (md == NULL)
		return -1;
	hlen = (size_t)EVP_MD_size(md);
	if (secret_parse(secret, hlen, &k) == -1 ||
	    b64_field(proof, strlen(proof), p, sizeof(p), hlen, NULL) == -1 ||
	    HMAC(md, k.stored, hlen, (const uint8_t *)authmsg, strlen(authmsg),
	    cs, NULL) == NULL)
		goto out;
	for (i = 0; i < hlen; i++)
		p[i] ^= cs[i];			/* ClientKey */
	if (EVP_Digest(p, hlen, hk, NULL, md, NULL) != 1 ||
	    CRYPTO_memcmp(hk, k.stored, hlen) != 0)
		goto out;
	if (HMAC(md, k.server, hlen, (const uint8_t *)authmsg, strlen(authmsg),
	    cs, NULL) == NULL || sasl_b64_encode(cs, hlen, sig, sigsize) == -1)
		goto out;
	ret = 0;
out:
	OPENSSL_cleanse(&k, sizeof(k));
	OPENSSL_cleanse(p, sizeof(p));
	return ret;
}

/* Refuse with server-error e (RFC 5802 7): "e=..." in one challenge. */
static enum sasl_result
scram_refuse(struct sasl_server *s, const char *e)
{
	char	msg[64];
	int	n;

	n = snprintf(msg, sizeof(msg), "e=%s", e);
	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    sasl_server_set_challenge(s, msg, (size_t)n) == -1)
		return sasl_server_error(s, SASL_FAIL, e);
	s->state = SC_ERROR;
	return sasl_server_error(s, SASL_CONTINUE, e);
}

/*
 * The value of attribute name at *pp, up to the next ',' or the end.
 * *pp moves to that ',' or NUL.
 */
static int
get_attr(const char **pp, char name, const char **val_r, size_t *len_r)
{
	const char	*p = *pp;

	if (p[0] != name || p[1] != '=')
		return -1;
	*val_r = p + 2;
	*len_r = strcspn(p + 2, ",");
	*pp = p + 2 + *len_r;
	return 0;
}

/* saslname (RFC 5802 5.1): "=2C" is ',', "=3D" is '=', no other '='. */
static int
saslname_decode(const char *v, size_t len, char *out)
{
	size_t	i, o = 0;
	char	c;

	for (i = 0; i < len; i++) {
		if ((c = v[i]) == '=') {
			if (len - i < 3)
				return -1;
			if (v[i + 1] == '2' && v[i + 2] == 'C')
				c = ',';
			else if (v[i + 1] == '3' && v[i + 2] == 'D')
				c = '=';
			else
				return -1;
			i += 2;
		}
		if (o >= SASL_USER_MAX)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	if (o == 0 || !sasl_text_valid((const uint8_t *)out, o, false))
		return -1;
	return 0;
}

/* printable = %x21-2B / %x2D-7E: a nonce, never empty. */
static bool
nonce_valid(const char *p, size_t len)
{
	size_t	i;

	if (len == 0 || len > CNONCE_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return false;
	return true;
}

/* extensions = attr-val *("," attr-val), attr-val = ALPHA "=" 1*value. */
static bool
ext_valid(const char *p, const char *end)
{
	size_t	n;

	while (p < end) {
		if (end - p < 3 || !((p[0] >= 'a' && p[0] <= 'z') ||
		    (p[0] >= 'A' && p[0] <= 'Z')) || p[1] != '=')
			return false;
		n = strcspn(p + 2, ",");
		if (n == 0 || p + 2 + n > end)
			return false;
		p += 2 + n;
		if (p < end && ++p == end)
			return false;		/* trailing ',' */
	}
	return true;
}

/* Our nonce part, then the whole nonce in s->nonce. */
static enum sasl_result
make_nonce(struct sasl_server *s, const char *cnonce, size_t clen)
{
	uint8_t	rnd[SNONCE_RAND];
	char	snonce[SNONCE_RAND / 3 * 4 + 1];
	int	n;

	if (s->test_nonce[0] != '\0')
		n = snprintf(s->nonce, sizeof(s->nonce), "%.*s%s", (int)clen,
		    cnonce, s->test_nonce);
	else {
		if (sasl_random(rnd, sizeof(rnd)) == -1 ||
		    sasl_b64_encode(rnd, sizeof(rnd), snonce,
		    sizeof(snonce)) == -1)
			return sasl_server_error(s, SASL_TEMPFAIL, "random");
		n = snprintf(s->nonce, sizeof(s->nonce), "%.*s%s", (int)clen,
		    cnonce, snonce);
	}
	if (n < 0 || (size_t)n >= sizeof(s->nonce) ||
	    !nonce_valid(s->nonce + clen, (size_t)n - clen))
		return sasl_server_error(s, SASL_TEMPFAIL, "nonce");
	return SASL_CONTINUE;
}

/* gs2-header: "n," or "y," then [ "a=" saslname ] ","; *pp past it. */
static enum sasl_result
parse_gs2(struct sasl_server *s, const char **pp, char *authz)
{
	const char	*p = *pp, *v;
	size_t		 vlen;

	if (p[0] == 'p' && p[1] == '=')
		return scram_refuse(s, "channel-binding-not-supported");
	if ((p[0] != 'n' && p[0] != 'y') || p[1] != ',')
		return sasl_server_error(s, SASL_MALFORMED, "gs2 header");
	p += 2;
	authz[0] = '\0';
	if (*p == 'a' && (get_attr(&p, 'a', &v, &vlen) == -1 ||
	    saslname_decode(v, vlen, authz) == -1))
		return sasl_server_error(s, SASL_MALFORMED, "gs2 authzid");
	if (*p++ != ',')
		return sasl_server_error(s, SASL_MALFORMED, "gs2 header");
	memcpy(s->gs2, *pp, p - *pp);
	s->gs2[p - *pp] = '\0';
	*pp = p;
	return SASL_NEED_VERIFY;
}

/* client-first-message = gs2-header [reserved-mext ","] n= "," r= [,ext] */
static enum sasl_result
scram_first(struct sasl_server *s, const char *msg)
{
	const char		*p = msg, *v, *cn;
	size_t			 vlen, cnlen;
	char			 authz[SASL_USER_MAX + 1];
	enum sasl_result	 r;

	if ((r = parse_gs2(s, &p, authz)) != SASL_NEED_VERIFY)
		return r;
	strcpy(s->text1, p);	/* UNSAFE: msg fits text1, checked by step */
	if (p[0] == 'm' && p[1] == '=')
		return sasl_server_error(s, SASL_MALFORMED, "mandatory ext");
	if (get_attr(&p, 'n', &v, &vlen) == -1 ||
	    saslname_decode(v, vlen, s->user) == -1)
		return sasl_server_error(s, SASL_MALFORMED, "bad username");
	if (*p++ != ',' || get_attr(&p, 'r', &cn, &cnlen) == -1 ||
	    !nonce_valid(cn, cnlen))
		return sasl_server_error(s, SASL_MALFORMED, "bad nonce");
	if (*p != '\0' && (*p != ',' || !ext_valid(p + 1, p + strlen(p))))
		return sasl_server_error(s, SASL_MALFORMED, "bad extension");
	if (authz[0] != '\0' && strcmp(authz, s->user) != 0)
		return sasl_server_error(s, SASL_FAIL, "authzid not authcid");
	if ((r = make_nonce(s, cn, cnlen)) != SASL_CONTINUE)
		return r;
	s->state = SC_LOOKUP;
	sasl_server_need(s, SASL_REQ_SCRAM_FIRST);
	return SASL_NEED_VERIFY;
}

/* The proof: the last attribute, "p=" base64 of the hash length. */
static const char *
find_proof(struct sasl_server *s, const char *msg)
{
	const char	*pr = strrchr(msg, ',');
	uint8_t		 buf[EVP_MAX_MD_SIZE];
	size_t		 hlen = (size_t)EVP_MD_size(hash_md(s->mech->hash));

	if (pr == NULL || pr[1] != 'p' || pr[2] != '=' ||
	    strlen(pr + 3) > SASL_PROOF_MAX ||
	    b64_field(pr + 3, strlen(pr + 3), buf, sizeof(buf), hlen,
	    NULL) == -1)
		return NULL;
	strcpy(s->response, pr + 3);	/* UNSAFE: length checked above */
	return pr;
}

/* Our channel-binding value: base64 of the gs2 header (no cbind-data). */
static bool
cbind_matches(struct sasl_server *s, const char *v, size_t vlen)
{
	char	want[SASL_TEXT_MAX / 3 * 4 + 5];

	if (sasl_b64_encode((const uint8_t *)s->gs2, strlen(s->gs2), want,
	    sizeof(want)) == -1)
		return false;
	return strlen(want) == vlen && memcmp(want, v, vlen) == 0;
}

/* client-final-message = c= "," r= [,ext] "," p= */
static enum sasl_result
scram_final(struct sasl_server *s, const char *msg)
{
	const char	*p = msg, *pr, *c, *r;
	size_t		 clen, rlen;
	int		 n;

	if ((pr = find_proof(s, msg)) == NULL)
		return sasl_server_error(s, SASL_MALFORMED, "bad proof");
	if (get_attr(&p, 'c', &c, &clen) == -1 || *p++ != ',' ||
	    get_attr(&p, 'r', &r, &rlen) == -1 ||
	    (p != pr && !ext_valid(p + 1, pr)))
		return sasl_server_error(s, SASL_MALFORMED, "client-final");
	if (!cbind_matches(s, c, clen))
		return scram_refuse(s, "channel-bindings-dont-match");
	if (rlen != strlen(s->nonce) || memcmp(r, s->nonce, rlen) != 0)
		return scram_refuse(s, "other-error");
	n = snprintf(s->authmsg, sizeof(s->authmsg), "%s,%s,%.*s", s->text1,
	    s->text2, (int)(pr - msg), msg);
	if (n < 0 || (size_t)n >= sizeof(s->authmsg))
		return sasl_server_error(s, SASL_MALFORMED, "authmsg");
	s->state = SC_PROOF;
	sasl_server_need(s, SASL_REQ_SCRAM_FINAL);
	return SASL_NEED_VERIFY;
}

static enum sasl_result
scram_start(struct sasl_server *s)
{
	s->state = SC_FIRST;
	s->challenge[0] = '\0';		/* "334 " and wait for client-first */
	return SASL_CONTINUE;
}

static enum sasl_result
scram_step(struct sasl_server *s, const uint8_t *in, size_t len)
{
	const char	*msg = (const char *)in;

	if (s->state == SC_DONE)	/* the answer to "v=": empty */
		return len == 0 ? SASL_OK :
		    sasl_server_error(s, SASL_MALFORMED, "data after v=");
	if (s->state == SC_ERROR)
		return sasl_server_error(s, SASL_FAIL, "refused");
	if (len > SASL_TEXT_MAX || !sasl_text_valid(in, len, false))
		return sasl_server_error(s, SASL_MALFORMED, "bad message");
	if (s->state == SC_FIRST)
		return scram_first(s, msg);
	if (s->state == SC_FINAL)
		return scram_final(s, msg);
	abort();			/* our bug: no step while verifying */
}

/* server-first-message = r= "," s= "," i= */
static enum sasl_result
scram_lookup_done(struct sasl_server *s, const struct sasl_reply *r)
{
	uint8_t	salt[SASL_SALT_MAX];
	size_t	slen = strnlen(r->salt, sizeof(r->salt));
	int	n;

	if (r->result != SASL_OK)
		return sasl_verified_simple(s, r);
	if (slen >= sizeof(r->salt) || b64_field(r->salt, slen, salt,
	    sizeof(salt), 0, NULL) == -1 ||
	    r->iterations < SASL_SCRAM_ITER_MIN ||
	    r->iterations > SASL_SCRAM_ITER_MAX)
		return sasl_server_error(s, SASL_TEMPFAIL, "bad store reply");
	n = snprintf(s->text2, sizeof(s->text2), "r=%s,s=%s,i=%u", s->nonce,
	    r->salt, r->iterations);
	if (n < 0 || (size_t)n >= sizeof(s->text2) ||
	    sasl_server_set_challenge(s, s->text2, (size_t)n) == -1)
		return sasl_server_error(s, SASL_TEMPFAIL, "server-first");
	s->state = SC_FINAL;
	return SASL_CONTINUE;
}

/* server-final-message = "v=" ServerSignature, or e=invalid-proof. */
static enum sasl_result
scram_proof_done(struct sasl_server *s, const struct sasl_reply *r)
{
	uint8_t	sig[EVP_MAX_MD_SIZE];
	size_t	hlen = (size_t)EVP_MD_size(hash_md(s->mech->hash));
	size_t	slen = strnlen(r->server_sig, sizeof(r->server_sig));
	char	msg[SASL_PROOF_MAX + 3];

	if (r->result == SASL_TEMPFAIL)
		return sasl_verified_simple(s, r);
	if (r->result != SASL_OK)
		return scram_refuse(s, "invalid-proof");
	if (slen >= sizeof(r->server_sig) || b64_field(r->server_sig, slen,
	    sig, sizeof(sig), hlen, NULL) == -1)
		return sasl_server_error(s, SASL_TEMPFAIL, "bad store reply");
	snprintf(msg, sizeof(msg), "v=%s", r->server_sig);
	if (sasl_server_set_challenge(s, msg, strlen(msg)) == -1)
		return sasl_server_error(s, SASL_TEMPFAIL, "server-final");
	s->state = SC_DONE;
	return SASL_CONTINUE;
}

static enum sasl_result
scram_verified(struct sasl_server *s, const struct sasl_reply *r)
{
	if (s->state == SC_LOOKUP)
		return scram_lookup_done(s, r);
	if (s->state == SC_PROOF)
		return scram_proof_done(s, r);
	abort();			/* our bug */
}

/* Salt and count of an unknown user: fixed for (scheme, user). */
static void
fake_lookup(const char *scheme, const char *user,
    const struct sasl_store_env *env, struct sasl_reply *reply)
{
	static const uint8_t	 nokey[1];
	uint8_t			 mac[EVP_MAX_MD_SIZE], msg[64 + SASL_USER_MAX];
	size_t			 slen = strlen(scheme) + 1, ulen = strlen(user);

	memset(mac, 0, sizeof(mac));
	if (slen <= 64 && ulen <= SASL_USER_MAX) {
		memcpy(msg, scheme, slen);		/* with its NUL */
		memcpy(msg + slen, user, ulen);
		HMAC(EVP_sha256(), env->fake_key_len ? env->fake_key : nokey,
		    (int)env->fake_key_len, msg, slen + ulen, mac, NULL);
	}
	sasl_b64_encode(mac, SALT_LEN, reply->salt, sizeof(reply->salt));
	reply->iterations = env->fake_iterations;
	if (reply->iterations < SASL_SCRAM_ITER_MIN ||
	    reply->iterations > SASL_SCRAM_ITER_MAX)
		reply->iterations = SASL_SCRAM_ITER_MIN;
}

static enum sasl_result
get_secret(const char *scheme, const char *user,
    const struct sasl_store_env *env, char *buf, size_t size)
{
	enum sasl_result	r;

	if (env->get_secret == NULL)
		return SASL_TEMPFAIL;
	buf[0] = '\0';
	r = env->get_secret(user, scheme, buf, size, env->arg);
	buf[size - 1] = '\0';
	return r == SASL_OK || r == SASL_TEMPFAIL ? r : SASL_FAIL;
}

static enum sasl_result
scram_lookup(const struct sasl_req *req, const struct sasl_store_env *env,
    struct sasl_reply *reply, const struct sasl_mech *m)
{
	char			secret[SASL_SECRET_MAX + 1];
	struct scram_secret	k;
	enum sasl_result	r;

	r = get_secret(m->scheme, req->user, env, secret, sizeof(secret));
	if (r == SASL_OK && secret_parse(secret,
	    (size_t)EVP_MD_size(hash_md(m->hash)), &k) == 0) {
		sasl_b64_encode(k.salt, k.saltlen, reply->salt,
		    sizeof(reply->salt));
		reply->iterations = k.iterations;
	} else if (r != SASL_TEMPFAIL) {
		fake_lookup(m->scheme, req->user, env, reply);
		r = SASL_OK;
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(&k, sizeof(k));
	return r;
}

static enum sasl_result
scram_verify(const struct sasl_req *req, const struct sasl_store_env *env,
    struct sasl_reply *reply)
{
	const struct sasl_mech	*m = sasl_mech_find(req->mech);
	char			 secret[SASL_SECRET_MAX + 1];
	enum sasl_result	 r;

	if (m == NULL || m->hash == SASL_HASH_NONE)
		return SASL_FAIL;
	if (req->type == SASL_REQ_SCRAM_FIRST)
		return scram_lookup(req, env, reply, m);
	if (req->type != SASL_REQ_SCRAM_FINAL)
		return SASL_FAIL;
	r = get_secret(m->scheme, req->user, env, secret, sizeof(secret));
	if (r == SASL_OK && sasl_scram_check(secret, m->hash, req->authmsg,
	    req->response, reply->server_sig, sizeof(reply->server_sig)) == -1)
		r = SASL_FAIL;
	OPENSSL_cleanse(secret, sizeof(secret));
	return r;
}

const struct sasl_mech sasl_mech_scram_sha1 = {
	.name = "SCRAM-SHA-1",
	.plaintext = false,
	.client_first = true,
	.hash = SASL_HASH_SHA1,
	.scheme = "SCRAM-SHA-1",
	.start = scram_start,
	.step = scram_step,
	.verified = scram_verified,
	.verify = scram_verify,
};

const struct sasl_mech sasl_mech_scram_sha256 = {
	.name = "SCRAM-SHA-256",
	.plaintext = false,
	.client_first = true,
	.hash = SASL_HASH_SHA256,
	.scheme = "SCRAM-SHA-256",
	.start = scram_start,
	.step = scram_step,
	.verified = scram_verified,
	.verify = scram_verify,
};

/*
 * fuzz_sasl.c - libFuzzer target for sasl*.c: whole exchanges through
 * the net half and the store half, then the store half's parsers alone.
 *
 * Octet 0 chooses: bits 0-2 the mechanism, bit 3 an initial response,
 * bit 4 lines passed raw (else each is base64-encoded here, so that the
 * fuzzer reaches the mechanisms' parsers), bits 5-6 the store's mood
 * (answers / refuses all / fails), bit 7 the RFC 5802 test nonce.  The
 * rest is client lines separated by LF.  Checks that every result is in
 * range, every challenge is strict base64, requests and replies keep
 * their bounds, and that SASL_OK names a user the store knows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const mechs[] = { "PLAIN", "LOGIN", "CRAM-MD5",
	"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-256", "plain", "X" };

static char	 cram[SASL_SECRET_MAX + 1], sha1[SASL_SECRET_MAX + 1];
static char	 sha256[SASL_SECRET_MAX + 1];
static int	 mood;

static void
setup(void)
{
	static const uint8_t	salt[] = "0123456789abcdef";

	if (cram[0] != '\0')
		return;
	if (sasl_cram_md5_secret("pencil", cram, sizeof(cram)) == -1 ||
	    sasl_scram_secret_salt("pencil", SASL_HASH_SHA1, 4096, salt, 16,
	    sha1, sizeof(sha1)) == -1 ||
	    sasl_scram_secret_salt("pencil", SASL_HASH_SHA256, 4096, salt, 16,
	    sha256, sizeof(sha256)) == -1)
		abort();
}

static enum sasl_result
check_password(const char *user, const char *password, void *arg)
{
	(void)arg;
	if (mood == 3)
		return SASL_TEMPFAIL;
	return mood != 2 && strcmp(user, "user") == 0 &&
	    strcmp(password, "pencil") == 0 ? SASL_OK : SASL_FAIL;
}

static enum sasl_result
get_secret(const char *user, const char *scheme, char *buf, size_t size,
    void *arg)
{
	const char	*sec = NULL;

	(void)arg;
	if (mood == 3)
		return SASL_TEMPFAIL;
	if (mood == 2 || strcmp(user, "user") != 0)
		return SASL_FAIL;
	if (strcmp(scheme, "CRAM-MD5") == 0)
		sec = cram;
	else if (strcmp(scheme, "SCRAM-SHA-1") == 0)
		sec = sha1;
	else if (strcmp(scheme, "SCRAM-SHA-256") == 0)
		sec = sha256;
	if (sec == NULL || strlen(sec) >= size)
		abort();
	memcpy(buf, sec, strlen(sec) + 1);
	return SASL_OK;
}

static const struct sasl_store_env env = {
	check_password, get_secret, NULL, (const uint8_t *)"k", 1, 4096
};

static void
check_b64(const char *s)
{
	static uint8_t	buf[SASL_CHALLENGE_MAX];
	size_t		n;

	if (strlen(s) > SASL_CHALLENGE_MAX ||
	    sasl_b64_decode(s, strlen(s), buf, sizeof(buf), &n) == -1)
		abort();
}

static void
check_req(const struct sasl_req *q)
{
	if (q->mech == NULL || q->authzid == NULL || q->user == NULL ||
	    q->password == NULL || q->challenge == NULL ||
	    q->response == NULL || q->authmsg == NULL)
		abort();
	if (strlen(q->user) == 0 || strlen(q->user) > SASL_USER_MAX ||
	    strlen(q->authzid) > SASL_USER_MAX ||
	    strlen(q->password) > SASL_PASS_MAX ||
	    strlen(q->challenge) > SASL_TEXT_MAX ||
	    strlen(q->response) > SASL_PROOF_MAX ||
	    strlen(q->authmsg) > SASL_AUTHMSG_MAX)
		abort();
}

static enum sasl_result
roundtrip(struct sasl_server *s)
{
	struct sasl_reply	reply;
	enum sasl_result	r;

	check_req(sasl_server_request(s));
	r = sasl_store_verify(sasl_server_request(s), &env, &reply);
	if (r != reply.result || (r != SASL_OK && r != SASL_FAIL &&
	    r != SASL_TEMPFAIL))
		abort();
	if (strnlen(reply.salt, sizeof(reply.salt)) >= sizeof(reply.salt) ||
	    strnlen(reply.server_sig, sizeof(reply.server_sig)) >=
	    sizeof(reply.server_sig))
		abort();
	return sasl_server_verified(s, &reply);
}

/* The next line of input at *pp (up to LF), as the client would send it. */
static char *
next_line(const uint8_t **pp, const uint8_t *end, int raw, char *buf,
    size_t size)
{
	const uint8_t	*p = *pp, *nl;
	size_t		 len;

	if (p >= end)
		return NULL;
	nl = memchr(p, '\n', end - p);
	len = (nl != NULL ? nl : end) - p;
	*pp = p + len + 1;
	if (raw) {
		len = len < size - 1 ? len : size - 1;
		memcpy(buf, p, len);
		buf[len] = '\0';
		return buf;
	}
	if (len > SASL_MSG_MAX)
		len = SASL_MSG_MAX;
	if (sasl_b64_encode(p, len, buf, size) == -1)
		abort();
	return buf;
}

static void
exchange(const uint8_t *data, size_t size)
{
	static char		 line[SASL_LINE_MAX + 64], initial[sizeof(line)];
	struct sasl_params	 p = { "host.example", NULL };
	struct sasl_server	*s;
	const uint8_t		*cur = data + 1, *end = data + size;
	enum sasl_result	 r;
	int			 raw = data[0] & 0x10, steps = 0;
	char			*l;

	mood = data[0] >> 5 & 3;
	if (data[0] & 0x80)
		p.test_nonce = "3rfcNHYJY1ZVvWVs7j";
	if ((s = sasl_server_new()) == NULL)
		return;
	l = NULL;
	if ((data[0] & 0x08) &&
	    (l = next_line(&cur, end, raw, initial, sizeof(initial))) != NULL &&
	    !raw && l[0] == '\0')
		l = "=";
	r = sasl_server_start(s, mechs[data[0] & 7], l, &p);
	for (;;) {
		if (r == SASL_NEED_VERIFY) {
			r = roundtrip(s);
			continue;
		}
		if (r != SASL_CONTINUE)
			break;
		check_b64(sasl_server_challenge(s));
		if (++steps > 16 ||
		    (l = next_line(&cur, end, raw, line, sizeof(line))) == NULL)
			break;
		r = sasl_server_step(s, l);
	}
	if (r > SASL_TEMPFAIL)
		abort();
	if (r == SASL_OK && strcmp(sasl_server_user(s), "user") != 0)
		abort();
	if (r != SASL_OK && r != SASL_CONTINUE && sasl_server_user(s)[0])
		abort();
	sasl_server_free(&s);
}

/* The store half's own parsers, on the whole input as one string. */
static void
store_parsers(const uint8_t *data, size_t size)
{
	char	*t, sig[SASL_PROOF_MAX + 1];

	if ((t = malloc(size + 1)) == NULL)
		return;
	memcpy(t, data, size);
	t[size] = '\0';
	(void)sasl_cram_md5_check(t, "<1.2@x>",
	    "00112233445566778899aabbccddeeff");
	(void)sasl_cram_md5_check(cram, t, t);
	if (sasl_scram_check(t, SASL_HASH_SHA1, "a", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	    sig, sizeof(sig)) == 0 ||
	    sasl_scram_check(sha256, SASL_HASH_SHA256, t, t, sig,
	    sizeof(sig)) == 0)
		check_b64(sig);
	free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	setup();
	exchange(data, size);
	if (size < 512)
		store_parsers(data, size);
	return 0;
}

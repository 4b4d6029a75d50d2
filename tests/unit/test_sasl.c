/*
 * test_sasl.c - sasl*.c: strict base64, then every vector of
 * shared/testdata/sasl-vectors.md sections 1-5 byte for byte (PLAIN,
 * LOGIN, CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256), run through both halves:
 * the net half (struct sasl_server) and the store half
 * (sasl_store_verify()) with a fake account store, the request strings
 * copied between them as IPC would.  Then malformed and hostile input.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sasl.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

/* RFC 5802 5 / RFC 7677 3 */
#define SHA1_SALT	"QSXCR+Q6sek8bf92"
#define SHA256_SALT	"W22ZaJ0SNY7soEsUEjb6gQ=="
#define SHA1_AUTHMSG	"n=user,r=fyko+d2lbbFgONRv9qkxdawL," \
	"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92," \
	"i=4096,c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j"
#define SHA256_AUTHMSG	"n=user,r=rOprNGfwEbeRWgbNEkqO," \
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws," \
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define SHA1_SECRET	"4096$QSXCR+Q6sek8bf92$" \
	"6dlGYMOdZcOPutkcNY8U2g7vK9Y=$D+CSWLOshSulAsxiupA+qs2/fTE="
#define SHA256_SECRET	"4096$W22ZaJ0SNY7soEsUEjb6gQ==$" \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$" \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* The wire forms of sections 4 and 5. */
#define SHA1_C1	"biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM"
#define SHA1_S1	"cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0wzcmZjTkhZSlkxWlZ2V1Z" \
	"zN2oscz1RU1hDUitRNnNlazhiZjkyLGk9NDA5Ng=="
#define SHA1_C2	"Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUp" \
	"ZMVpWdldWczdqLHA9djBYOHYzQnoyVDBDSkdiSlF5RjBYK0hJNFRzPQ=="
#define SHA1_S2	"dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9"
#define SHA1_NONCE "3rfcNHYJY1ZVvWVs7j"
#define SHA256_C1 "biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8="
#define SHA256_S1 "cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZ" \
	"JbGopaE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY="
#define SHA256_C2 "Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8laHZZRHBXVWEyUmF" \
	"UQ0FmdXhGSWxqKWhObEYkazAscD1kSHpiWmFwV0lrNGpVaE4rVXRlOXl0YWc5empmTU" \
	"hnc3FtbWl6N0FuZFZRPQ=="
#define SHA256_S2 "dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw" \
	"5NUc0PQ=="
#define SHA256_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define CRAM_CHAL "<1896.697170952@postoffice.reston.mci.net>"
#define CRAM_CHAL_B64 "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
#define CRAM_RESP_B64 "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
#define INVALID_PROOF "ZT1pbnZhbGlkLXByb29m"		/* e=invalid-proof */

/* The fake account store. */
struct account {
	const char	*user;
	const char	*password;
	char		 cram[SASL_SECRET_MAX + 1];
	char		 sha1[SASL_SECRET_MAX + 1];
	char		 sha256[SASL_SECRET_MAX + 1];
};

static struct account accounts[] = {
	{ "tim", "tanstaaftanstaaf", "", "", "" },
	{ "test", "1234", "", "", "" },
	{ "Kurt", "xipj3plmq", "", "", "" },
	{ "Ursel", "ursel", "", "", "" },
	{ "bob@mydomain.tld", "secret", "", "", "" },
	{ "user", "pencil", "", "", "" },
	{ "us,er=x", "pencil", "", "", "" },
};

static bool	store_down;		/* callbacks answer SASL_TEMPFAIL */
static char	last_authmsg[SASL_AUTHMSG_MAX + 1];
static int	store_calls;

static struct account *
account_find(const char *user)
{
	size_t	i;

	for (i = 0; i < NROWS(accounts); i++)
		if (strcmp(accounts[i].user, user) == 0)
			return &accounts[i];
	return NULL;
}

static enum sasl_result
check_password(const char *user, const char *password, void *arg)
{
	struct account	*a = account_find(user);

	(void)arg;
	if (store_down)
		return SASL_TEMPFAIL;
	return a != NULL && strcmp(a->password, password) == 0 ? SASL_OK :
	    SASL_FAIL;
}

static enum sasl_result
get_secret(const char *user, const char *scheme, char *buf, size_t size,
    void *arg)
{
	struct account	*a = account_find(user);
	const char	*sec;

	(void)arg;
	if (store_down)
		return SASL_TEMPFAIL;
	if (a == NULL)
		return SASL_FAIL;
	if (strcmp(scheme, "CRAM-MD5") == 0)
		sec = a->cram;
	else if (strcmp(scheme, "SCRAM-SHA-1") == 0)
		sec = a->sha1;
	else if (strcmp(scheme, "SCRAM-SHA-256") == 0)
		sec = a->sha256;
	else
		return SASL_FAIL;
	if (sec[0] == '\0' || strlen(sec) >= size)
		return SASL_FAIL;
	strcpy(buf, sec);
	return SASL_OK;
}

static const uint8_t	fake_key[] = "0123456789abcdef0123456789abcdef";

static const struct sasl_store_env env = {
	.check_password = check_password,
	.get_secret = get_secret,
	.arg = NULL,
	.fake_key = fake_key,
	.fake_key_len = 32,
	.fake_iterations = 4096,
};

/* The store role's side: copies of each request field, as over IPC. */
static enum sasl_result
store_roundtrip(struct sasl_server *s)
{
	const struct sasl_req	*q = sasl_server_request(s);
	struct sasl_req		 c;
	struct sasl_reply	 reply;
	enum sasl_result	 r;

	store_calls++;
	c.type = q->type;
	c.mech = strdup(q->mech);
	c.authzid = strdup(q->authzid);
	c.user = strdup(q->user);
	c.password = strdup(q->password);
	c.challenge = strdup(q->challenge);
	c.response = strdup(q->response);
	c.authmsg = strdup(q->authmsg);
	if (q->type == SASL_REQ_SCRAM_FINAL)
		snprintf(last_authmsg, sizeof(last_authmsg), "%s", q->authmsg);
	sasl_store_verify(&c, &env, &reply);
	free((char *)c.mech);
	free((char *)c.authzid);
	free((char *)c.user);
	free((char *)c.password);
	free((char *)c.challenge);
	free((char *)c.response);
	free((char *)c.authmsg);
	r = sasl_server_verified(s, &reply);
	return r;
}

#define MAXCH	6

/* An exchange: what the client sends, what the server must send back. */
struct xrow {
	const char	*name;
	const char	*mech;
	const char	*nonce;		/* test nonce, or NULL: random */
	const char	*initial;
	const char	*lines[MAXCH];
	const char	*challenges[MAXCH];	/* each 334 text, in order */
	enum sasl_result want;
	const char	*user;		/* after SASL_OK */
};

/* Run row x; the challenges sent go to ch[], their number to *nch. */
static enum sasl_result
run(struct sasl_server *s, const struct xrow *x, char ch[][SASL_CHALLENGE_MAX + 1],
    int *nch)
{
	struct sasl_params	p = { "mail.example.org", x->nonce };
	enum sasl_result	r;
	int			i = 0;

	*nch = 0;
	r = sasl_server_start(s, x->mech, x->initial, &p);
	for (;;) {
		if (r == SASL_NEED_VERIFY) {
			r = store_roundtrip(s);
			continue;
		}
		if (r != SASL_CONTINUE)
			return r;
		if (*nch < MAXCH)
			strcpy(ch[(*nch)++], sasl_server_challenge(s));
		if (i >= MAXCH || x->lines[i] == NULL)
			return r;
		r = sasl_server_step(s, x->lines[i++]);
	}
}

static void
check_rows(const struct xrow *rows, size_t n)
{
	static char		 ch[MAXCH][SASL_CHALLENGE_MAX + 1];
	struct sasl_server	*s = sasl_server_new();
	enum sasl_result	 r;
	size_t			 i;
	int			 nch, k;

	CHECK(s != NULL);
	for (i = 0; i < n; i++) {
		const struct xrow	*x = &rows[i];

		r = run(s, x, ch, &nch);
		if (r != x->want)
			printf("  row \"%s\": result %d, want %d (%s)\n",
			    x->name, r, x->want, sasl_server_errstr(s) ?
			    sasl_server_errstr(s) : "-");
		CHECK_ROW(r == x->want, x->name);
		for (k = 0; k < MAXCH && x->challenges[k] != NULL; k++) {
			CHECK_ROW(k < nch, x->name);
			if (k < nch && strcmp(ch[k], x->challenges[k]) != 0)
				printf("  row \"%s\": challenge %d \"%s\"\n",
				    x->name, k, ch[k]);
			CHECK_ROW(k < nch && strcmp(ch[k], x->challenges[k]) ==
			    0, x->name);
		}
		if (x->want == SASL_OK)
			CHECK_ROW(strcmp(sasl_server_user(s), x->user) == 0,
			    x->name);
		else
			CHECK_ROW(sasl_server_user(s)[0] == '\0', x->name);
	}
	sasl_server_free(&s);
	CHECK(s == NULL);
}

/* Fill the stored secrets; "user" gets the RFC salts. */
static void
setup_accounts(void)
{
	uint8_t	salt1[32], salt256[32];
	size_t	n1, n256, i;

	CHECK(sasl_b64_decode(SHA1_SALT, strlen(SHA1_SALT), salt1,
	    sizeof(salt1), &n1) == 0);
	CHECK(sasl_b64_decode(SHA256_SALT, strlen(SHA256_SALT), salt256,
	    sizeof(salt256), &n256) == 0);
	for (i = 0; i < NROWS(accounts); i++) {
		struct account	*a = &accounts[i];

		CHECK(sasl_cram_md5_secret(a->password, a->cram,
		    sizeof(a->cram)) == 0);
		CHECK(sasl_scram_secret_salt(a->password, SASL_HASH_SHA1, 4096,
		    salt1, n1, a->sha1, sizeof(a->sha1)) == 0);
		CHECK(sasl_scram_secret_salt(a->password, SASL_HASH_SHA256,
		    4096, salt256, n256, a->sha256, sizeof(a->sha256)) == 0);
	}
}

/* ---- base64 ---- */

struct b64_row {
	const char	*text;		/* decoded, as a C string */
	const char	*b64;
};

static const struct b64_row b64_rows[] = {	/* RFC 4648 10 */
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
	{ "Username:", "VXNlcm5hbWU6" }, { "Password:", "UGFzc3dvcmQ6" },
	{ "bob@mydomain.tld", "Ym9iQG15ZG9tYWluLnRsZA==" },
	{ "secret", "c2VjcmV0" }, { CRAM_CHAL, CRAM_CHAL_B64 },
	{ "tim b913a602c7eda7a495b4e6e7334d3890", CRAM_RESP_B64 },
	{ "e=invalid-proof", INVALID_PROOF },
	{ "tim tanstaaftanstaaf", "dGltIHRhbnN0YWFmdGFuc3RhYWY=" },
	{ "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", SHA1_C1 },
	{ "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", SHA1_S2 },
	{ "n,,n=user,r=rOprNGfwEbeRWgbNEkqO", SHA256_C1 },
	{ "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", SHA256_S2 },
	{ "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,"
	  "i=4096", SHA1_S1 },
	{ "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
	  "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", SHA1_C2 },
	{ "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	  "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", SHA256_S1 },
	{ "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", SHA256_C2 },
};

/* Vectors with NULs: the PLAIN messages of section 1. */
static const struct {
	const char	*bytes;
	size_t		 len;
	const char	*b64;
} plain_msgs[] = {
	{ "\0tim\0tanstaaftanstaaf", 21, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm" },
	{ "Ursel\0Kurt\0xipj3plmq", 20, "VXJzZWwAS3VydAB4aXBqM3BsbXE=" },
	{ "test\0test\0" "1234", 14, "dGVzdAB0ZXN0ADEyMzQ=" },
	{ "\0test\0" "1234", 10, "AHRlc3QAMTIzNA==" },
	{ "\0\0tanstaaftanstaaf", 18, "AAB0YW5zdGFhZnRhbnN0YWFm" },
	{ "\0tim\0", 5, "AHRpbQA=" },
	{ "\0tim\0tanstaaftanstaaf\0x", 23,
	  "AHRpbQB0YW5zdGFhZnRhbnN0YWFmAHg=" },
	{ "\0tim\0wrong", 10, "AHRpbQB3cm9uZw==" },
};

static const char *const b64_bad[] = {
	"Zg=", "Zg", "Z", "Zh==", "Zm9=", "Z===", "====", "=Zg=", "Zg==Zg==",
	" Zg==", "Zg== ", "Zm9v\r\n", "Zm9\nv", "Zm-v", "Zm_v", "Zm9v=",
	"Zm9v====", "!!!notbase64", "Zg=a", "*", "=",
};

static void
test_b64(void)
{
	uint8_t	out[256];
	char	enc[256];
	size_t	i, n;

	for (i = 0; i < NROWS(b64_rows); i++) {
		const struct b64_row *r = &b64_rows[i];

		CHECK_ROW(sasl_b64_encode((const uint8_t *)r->text,
		    strlen(r->text), enc, sizeof(enc)) == 0, r->b64);
		CHECK_ROW(strcmp(enc, r->b64) == 0, r->b64);
		CHECK_ROW(sasl_b64_decode(r->b64, strlen(r->b64), out,
		    sizeof(out), &n) == 0, r->b64);
		CHECK_ROW(n == strlen(r->text) && memcmp(out, r->text, n) == 0,
		    r->b64);
	}
	for (i = 0; i < NROWS(plain_msgs); i++) {
		CHECK_ROW(sasl_b64_encode((const uint8_t *)plain_msgs[i].bytes,
		    plain_msgs[i].len, enc, sizeof(enc)) == 0,
		    plain_msgs[i].b64);
		CHECK_ROW(strcmp(enc, plain_msgs[i].b64) == 0,
		    plain_msgs[i].b64);
	}
	for (i = 0; i < NROWS(b64_bad); i++)
		CHECK_ROW(sasl_b64_decode(b64_bad[i], strlen(b64_bad[i]), out,
		    sizeof(out), &n) == -1, b64_bad[i]);
}

static void
test_b64_bounds(void)
{
	uint8_t	out[8];
	char	enc[9];
	size_t	n;

	/* 6 octets need 8 symbols and a NUL */
	CHECK(sasl_b64_encode((const uint8_t *)"foobar", 6, enc, 9) == 0);
	CHECK(sasl_b64_encode((const uint8_t *)"foobar", 6, enc, 8) == -1);
	CHECK(sasl_b64_encode((const uint8_t *)"fooba", 5, enc, 9) == 0);
	CHECK(sasl_b64_encode((const uint8_t *)"", 0, enc, 1) == 0);
	CHECK(sasl_b64_encode((const uint8_t *)"", 0, enc, 0) == -1);
	CHECK(sasl_b64_decode("Zm9vYmFy", 8, out, 6, &n) == 0 && n == 6);
	CHECK(sasl_b64_decode("Zm9vYmFy", 8, out, 5, &n) == -1);
	CHECK(sasl_b64_decode("Zm9vYmE=", 8, out, 5, &n) == 0 && n == 5);
	CHECK(sasl_b64_decode("Zm9vYg==", 8, out, 4, &n) == 0 && n == 4);
	CHECK(sasl_b64_decode("Zm9vYg==", 8, out, 3, &n) == -1);
}

/* ---- PLAIN (section 1) ---- */

static const struct xrow plain_rows[] = {
	{ "1a RFC 4616 ex 1", "PLAIN", NULL, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
	  { NULL }, { NULL }, SASL_OK, "tim" },
	{ "1b authzid Ursel", "PLAIN", NULL, "VXJzZWwAS3VydAB4aXBqM3BsbXE=",
	  { NULL }, { NULL }, SASL_FAIL, NULL },
	{ "1c RFC 4954 initial", "PLAIN", NULL, "dGVzdAB0ZXN0ADEyMzQ=",
	  { NULL }, { NULL }, SASL_OK, "test" },
	{ "1c no initial", "plain", NULL, NULL,
	  { "dGVzdAB0ZXN0ADEyMzQ=" }, { "" }, SASL_OK, "test" },
	{ "1c no authzid", "PLAIN", NULL, "AHRlc3QAMTIzNA==",
	  { NULL }, { NULL }, SASL_OK, "test" },
	{ "1d = empty initial", "PLAIN", NULL, "=", { NULL }, { NULL },
	  SASL_MALFORMED, NULL },
	{ "1d empty line", "PLAIN", NULL, NULL, { "" }, { "" },
	  SASL_MALFORMED, NULL },
	{ "1d cancel", "PLAIN", NULL, NULL, { "*" }, { "" }, SASL_CANCEL,
	  NULL },
	{ "1d bad base64", "PLAIN", NULL, NULL, { "!!!notbase64" }, { "" },
	  SASL_MALFORMED, NULL },
	{ "1d bad base64 initial", "PLAIN", NULL, "!!!notbase64", { NULL },
	  { NULL }, SASL_MALFORMED, NULL },
	{ "1d unknown mechanism", "DIGEST-MD5", NULL, NULL, { NULL },
	  { NULL }, SASL_NOMECH, NULL },
	{ "1e no NULs", "PLAIN", NULL, "dGltIHRhbnN0YWFmdGFuc3RhYWY=",
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },
	{ "1e empty authcid", "PLAIN", NULL, "AAB0YW5zdGFhZnRhbnN0YWFm",
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },
	{ "1e empty passwd", "PLAIN", NULL, "AHRpbQA=", { NULL }, { NULL },
	  SASL_MALFORMED, NULL },
	{ "1e third NUL", "PLAIN", NULL, "AHRpbQB0YW5zdGFhZnRhbnN0YWFmAHg=",
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },
	{ "1e wrong password", "PLAIN", NULL, "AHRpbQB3cm9uZw==", { NULL },
	  { NULL }, SASL_FAIL, NULL },
	{ "unknown user", "PLAIN", NULL, "AG5vYm9keQBwdw==", { NULL },
	  { NULL }, SASL_FAIL, NULL },
	{ "control octet in authcid", "PLAIN", NULL, "AHQKaW0AcHc=",
	  { NULL }, { NULL }, SASL_FAIL, NULL },
	{ "bad UTF-8 in authcid", "PLAIN", NULL, "AHTAgABwdw==", { NULL },
	  { NULL }, SASL_FAIL, NULL },
};

static void
test_plain(void)
{
	check_rows(plain_rows, NROWS(plain_rows));
}

/* A PLAIN message with an authcid of n 'a's, base64 into out. */
static void
plain_long(size_t n, char *out, size_t size)
{
	uint8_t	msg[600];

	msg[0] = '\0';
	memset(msg + 1, 'a', n);
	memcpy(msg + 1 + n, "\0pw", 3);
	CHECK(sasl_b64_encode(msg, n + 4, out, size) == 0);
}

static void
test_plain_long_fields(void)
{
	struct sasl_server	*s = sasl_server_new();
	char			 b64[1024];

	plain_long(255, b64, sizeof(b64));	/* RFC 4616: MUST accept */
	CHECK_INT(sasl_server_start(s, "PLAIN", b64, NULL), SASL_NEED_VERIFY);
	CHECK_INT(strlen(sasl_server_request(s)->user), 255);
	CHECK_INT(store_roundtrip(s), SASL_FAIL);	/* no such user */
	plain_long(256, b64, sizeof(b64));	/* 1e: refused cleanly */
	CHECK_INT(sasl_server_start(s, "PLAIN", b64, NULL), SASL_FAIL);
	plain_long(500, b64, sizeof(b64));
	CHECK_INT(sasl_server_start(s, "PLAIN", b64, NULL), SASL_FAIL);
	sasl_server_free(&s);
}

/* RFC 4954 4: 12288 octets of base64 are the limit of a line. */
static void
test_line_limit(void)
{
	struct sasl_server	*s = sasl_server_new();
	char			*line = malloc(SASL_LINE_MAX + 2);

	memset(line, 'A', SASL_LINE_MAX + 1);
	line[SASL_LINE_MAX + 1] = '\0';
	CHECK_INT(sasl_server_start(s, "PLAIN", NULL, NULL), SASL_CONTINUE);
	CHECK_INT(sasl_server_step(s, line), SASL_TOOLONG);
	CHECK_INT(sasl_server_start(s, "PLAIN", line, NULL), SASL_TOOLONG);
	CHECK_INT(sasl_server_start(s, "LOGIN", NULL, NULL), SASL_CONTINUE);
	CHECK_INT(sasl_server_step(s, line), SASL_TOOLONG);
	/* at the limit: decoded (9216 NULs), then refused by PLAIN */
	line[SASL_LINE_MAX] = '\0';
	CHECK_INT(sasl_server_start(s, "PLAIN", NULL, NULL), SASL_CONTINUE);
	CHECK_INT(sasl_server_step(s, line), SASL_MALFORMED);
	CHECK_INT(sasl_server_start(s, "SCRAM-SHA-256", line, NULL),
	    SASL_MALFORMED);
	memset(line, 'Y', SASL_LINE_MAX);	/* no NUL: too long a name */
	CHECK_INT(sasl_server_start(s, "LOGIN", line, NULL), SASL_FAIL);
	CHECK_INT(sasl_server_start(s, "CRAM-MD5", NULL, NULL), SASL_CONTINUE);
	CHECK_INT(sasl_server_step(s, line), SASL_MALFORMED);
	free(line);
	sasl_server_free(&s);
}

/* ---- LOGIN (section 2) ---- */

static const struct xrow login_rows[] = {
	{ "2 James transcript", "LOGIN", NULL, NULL,
	  { "Ym9iQG15ZG9tYWluLnRsZA==", "c2VjcmV0" },
	  { "VXNlcm5hbWU6", "UGFzc3dvcmQ6" }, SASL_OK, "bob@mydomain.tld" },
	{ "2 initial response", "LOGIN", NULL, "Ym9iQG15ZG9tYWluLnRsZA==",
	  { "c2VjcmV0" }, { "UGFzc3dvcmQ6" }, SASL_OK, "bob@mydomain.tld" },
	{ "wrong password", "LOGIN", NULL, "Ym9iQG15ZG9tYWluLnRsZA==",
	  { "d3Jvbmc=" }, { "UGFzc3dvcmQ6" }, SASL_FAIL, NULL },
	{ "cancel at password", "LOGIN", NULL, NULL,
	  { "Ym9iQG15ZG9tYWluLnRsZA==", "*" }, { "VXNlcm5hbWU6" },
	  SASL_CANCEL, NULL },
	{ "empty user", "LOGIN", NULL, "=", { NULL }, { NULL },
	  SASL_MALFORMED, NULL },
	{ "empty password", "LOGIN", NULL, "Ym9iQG15ZG9tYWluLnRsZA==",
	  { "" }, { NULL }, SASL_MALFORMED, NULL },
	{ "NUL in password", "LOGIN", NULL, "Ym9iQG15ZG9tYWluLnRsZA==",
	  { "c2UAY3JldA==" }, { NULL }, SASL_MALFORMED, NULL },
	{ "garbled base64", "LOGIN", NULL, NULL, { "Ym9i QG15" },
	  { "VXNlcm5hbWU6" }, SASL_MALFORMED, NULL },
};

static void
test_login(void)
{
	check_rows(login_rows, NROWS(login_rows));
}

/* ---- CRAM-MD5 (section 3) ---- */

static void
test_cram_store(void)
{
	const struct account	*tim = account_find("tim");
	char			 sec[SASL_SECRET_MAX], want[33];
	uint8_t			 mac[16];
	const char		*longpw =
	    "a password longer than the sixty-four octets of an MD5 block, "
	    "so that RFC 2104 hashes it first";
	int			 i;

	CHECK_INT(strlen(tim->cram), 64);
	CHECK(sasl_cram_md5_check(tim->cram, CRAM_CHAL,
	    "b913a602c7eda7a495b4e6e7334d3890") == 0);
	CHECK(sasl_cram_md5_check(tim->cram, CRAM_CHAL,	/* our choice */
	    "B913A602C7EDA7A495B4E6E7334D3890") == 0);
	CHECK(sasl_cram_md5_check(tim->cram, CRAM_CHAL,
	    "b913a602c7eda7a495b4e6e7334d3891") == -1);
	CHECK(sasl_cram_md5_check(tim->cram, CRAM_CHAL,
	    "b913a602c7eda7a495b4e6e7334d389") == -1);
	CHECK(sasl_cram_md5_check(tim->cram, "<1.2@x>",
	    "b913a602c7eda7a495b4e6e7334d3890") == -1);
	CHECK(sasl_cram_md5_check("zz", CRAM_CHAL,
	    "b913a602c7eda7a495b4e6e7334d3890") == -1);
	/* a long key: against OpenSSL's own HMAC-MD5 */
	CHECK(sasl_cram_md5_secret(longpw, sec, sizeof(sec)) == 0);
	HMAC(EVP_md5(), longpw, (int)strlen(longpw),
	    (const uint8_t *)CRAM_CHAL, strlen(CRAM_CHAL), mac, NULL);
	for (i = 0; i < 16; i++)
		snprintf(want + 2 * i, 3, "%02x", mac[i]);
	CHECK(sasl_cram_md5_check(sec, CRAM_CHAL, want) == 0);
	CHECK(sasl_cram_md5_secret("x", sec, 64) == -1);
}

static const struct xrow cram_rows[] = {
	{ "3 RFC 2195", "CRAM-MD5", CRAM_CHAL, NULL, { CRAM_RESP_B64 },
	  { CRAM_CHAL_B64 }, SASL_OK, "tim" },
	{ "3 upper-case digest", "CRAM-MD5", CRAM_CHAL, NULL,
	  { "dGltIEI5MTNBNjAyQzdFREE3QTQ5NUI0RTZFNzMzNEQzODkw" },
	  { CRAM_CHAL_B64 }, SASL_OK, "tim" },
	{ "3 replay on a fresh challenge", "CRAM-MD5", NULL, NULL,
	  { CRAM_RESP_B64 }, { NULL }, SASL_FAIL, NULL },
	{ "3 no space", "CRAM-MD5", CRAM_CHAL, NULL,
	  { "dGltYjkxM2E2MDJjN2VkYTdhNDk1YjRlNmU3MzM0ZDM4OTA=" }, { NULL },
	  SASL_MALFORMED, NULL },
	{ "3 two spaces", "CRAM-MD5", CRAM_CHAL, NULL,
	  { "dGltICBiOTEzYTYwMmM3ZWRhN2E0OTViNGU2ZTczMzRkMzg5MA==" },
	  { NULL }, SASL_FAIL, NULL },
	{ "3 31 hex digits", "CRAM-MD5", CRAM_CHAL, NULL,
	  { "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODk=" }, { NULL },
	  SASL_MALFORMED, NULL },
	{ "3 no user", "CRAM-MD5", CRAM_CHAL, NULL,
	  { "IGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw" }, { NULL },
	  SASL_MALFORMED, NULL },
	{ "3 non-hex digest", "CRAM-MD5", CRAM_CHAL, NULL,
	  { "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODl6" }, { NULL },
	  SASL_MALFORMED, NULL },
	{ "3 wrong user", "CRAM-MD5", CRAM_CHAL, NULL,
	  { "dGVzdCBiOTEzYTYwMmM3ZWRhN2E0OTViNGU2ZTczMzRkMzg5MA==" },
	  { NULL }, SASL_FAIL, NULL },
	{ "3 initial response refused", "CRAM-MD5", CRAM_CHAL, CRAM_RESP_B64,
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },
	{ "3 cancel", "CRAM-MD5", CRAM_CHAL, NULL, { "*" }, { NULL },
	  SASL_CANCEL, NULL },
};

static void
test_cram(void)
{
	check_rows(cram_rows, NROWS(cram_rows));
}

/* Random challenges: "<digits.digits@host>", unique per attempt. */
static void
test_cram_challenge(void)
{
	struct sasl_server	*s = sasl_server_new();
	struct sasl_params	 p = { "mail.example.org", NULL };
	uint8_t			 c1[300], c2[300];
	size_t			 n1, n2;
	const char		*ch;

	CHECK_INT(sasl_server_start(s, "CRAM-MD5", NULL, &p), SASL_CONTINUE);
	ch = sasl_server_challenge(s);
	CHECK(sasl_b64_decode(ch, strlen(ch), c1, sizeof(c1) - 1, &n1) == 0);
	c1[n1] = '\0';
	CHECK(c1[0] == '<' && c1[n1 - 1] == '>');
	CHECK(strstr((char *)c1, "@mail.example.org>") != NULL);
	CHECK(strspn((char *)c1 + 1, "0123456789.") > 3);
	CHECK_INT(sasl_server_start(s, "CRAM-MD5", NULL, &p), SASL_CONTINUE);
	ch = sasl_server_challenge(s);
	CHECK(sasl_b64_decode(ch, strlen(ch), c2, sizeof(c2) - 1, &n2) == 0);
	CHECK(n1 != n2 || memcmp(c1, c2, n1) != 0);
	sasl_server_free(&s);
}

/* ---- SCRAM (sections 4 and 5) ---- */

static void
hex(const uint8_t *p, size_t n, char *out)
{
	size_t	i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* Field k (0-3) of a stored secret, base64-decoded, as hex. */
static void
secret_field_hex(const char *secret, int k, char *out)
{
	const char	*p = secret, *e;
	uint8_t		 buf[64];
	size_t		 n = 0;

	while (k-- > 0)
		p = strchr(p, '$') + 1;
	e = strchr(p, '$');
	if (e == NULL)
		e = p + strlen(p);
	CHECK(sasl_b64_decode(p, e - p, buf, sizeof(buf), &n) == 0);
	hex(buf, n, out);
}

/* The intermediate values of the tables in sections 4 and 5. */
static void
test_scram_keys(void)
{
	struct account	*u = account_find("user");
	uint8_t		 salt[32], sp[32], ck[32];
	size_t		 n;
	char		 h[129];

	CHECK_STR(u->sha1, SHA1_SECRET);	/* gsasl --mkpasswd */
	CHECK_STR(u->sha256, SHA256_SECRET);
	secret_field_hex(u->sha1, 2, h);
	CHECK_STR(h, "e9d94660c39d65c38fbad91c358f14da0eef2bd6");
	secret_field_hex(u->sha1, 3, h);
	CHECK_STR(h, "0fe09258b3ac852ba502cc62ba903eaacdbf7d31");
	secret_field_hex(u->sha256, 2, h);
	CHECK_STR(h, "586e5df283e6dceb5c3e791d8b8528ec"
	    "191e664045ce971792e2e6b5bb13e2a6");
	secret_field_hex(u->sha256, 3, h);
	CHECK_STR(h, "c1f3cbc1c13a9d35a14c0990eed97629"
	    "ea225863e566a4314ab99f3f00e5d9d5");
	/* SaltedPassword and ClientKey, as a client computes them */
	sasl_b64_decode(SHA1_SALT, strlen(SHA1_SALT), salt, sizeof(salt), &n);
	PKCS5_PBKDF2_HMAC("pencil", 6, salt, (int)n, 4096, EVP_sha1(), 20, sp);
	hex(sp, 20, h);
	CHECK_STR(h, "1d96ee3a529b5a5f9e47c01f229a2cb8a6e15f7d");
	HMAC(EVP_sha1(), sp, 20, (const uint8_t *)"Client Key", 10, ck, NULL);
	hex(ck, 20, h);
	CHECK_STR(h, "e234c47bf6c36696dd6d852b99aaa2ba26555728");
	sasl_b64_decode(SHA256_SALT, strlen(SHA256_SALT), salt, sizeof(salt),
	    &n);
	PKCS5_PBKDF2_HMAC("pencil", 6, salt, (int)n, 4096, EVP_sha256(), 32,
	    sp);
	hex(sp, 32, h);
	CHECK_STR(h, "c4a49510323ab4f952cac1fa99441939"
	    "e78ea74d6be81ddf7096e87513dc615d");
	HMAC(EVP_sha256(), sp, 32, (const uint8_t *)"Client Key", 10, ck,
	    NULL);
	hex(ck, 32, h);
	CHECK_STR(h, "a60fc923d67e8644a92d16b96eda5ef4"
	    "656b0c725c484374be25535576996e8b");
}

/* The store half alone, on the RFC AuthMessages. */
static void
test_scram_store(void)
{
	char	sig[SASL_PROOF_MAX + 1];

	CHECK(sasl_scram_check(SHA1_SECRET, SASL_HASH_SHA1, SHA1_AUTHMSG,
	    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", sig, sizeof(sig)) == 0);
	CHECK_STR(sig, "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
	CHECK(sasl_scram_check(SHA256_SECRET, SASL_HASH_SHA256,
	    SHA256_AUTHMSG, "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    sig, sizeof(sig)) == 0);
	CHECK_STR(sig, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	/* one flipped bit; the other hash; another AuthMessage */
	CHECK(sasl_scram_check(SHA1_SECRET, SASL_HASH_SHA1, SHA1_AUTHMSG,
	    "v0X8v3Bz2T0CJGbJQyF0X+HI4Tt=", sig, sizeof(sig)) == -1);
	CHECK(sasl_scram_check(SHA1_SECRET, SASL_HASH_SHA256, SHA1_AUTHMSG,
	    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", sig, sizeof(sig)) == -1);
	CHECK(sasl_scram_check(SHA1_SECRET, SASL_HASH_SHA1, SHA256_AUTHMSG,
	    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", sig, sizeof(sig)) == -1);
	/* malformed secrets */
	CHECK(sasl_scram_check("4096$QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7"
	    "vK9Y=", SASL_HASH_SHA1, SHA1_AUTHMSG,
	    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", sig, sizeof(sig)) == -1);
	CHECK(sasl_scram_check("04096$QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g"
	    "7vK9Y=$D+CSWLOshSulAsxiupA+qs2/fTE=", SASL_HASH_SHA1,
	    SHA1_AUTHMSG, "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", sig,
	    sizeof(sig)) == -1);
	CHECK(sasl_scram_check("100$QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7v"
	    "K9Y=$D+CSWLOshSulAsxiupA+qs2/fTE=", SASL_HASH_SHA1, SHA1_AUTHMSG,
	    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", sig, sizeof(sig)) == -1);
	CHECK(sasl_scram_check(SHA256_SECRET, SASL_HASH_SHA1, SHA1_AUTHMSG,
	    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", sig, sizeof(sig)) == -1);
	CHECK(sasl_scram_check(SHA1_SECRET, SASL_HASH_SHA1, SHA1_AUTHMSG,
	    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", sig, 10) == -1);
}

static const struct xrow scram_rows[] = {
	{ "4 RFC 5802", "SCRAM-SHA-1", SHA1_NONCE, SHA1_C1,
	  { SHA1_C2, "" }, { SHA1_S1, SHA1_S2 }, SASL_OK, "user" },
	{ "4 RFC 5802, no initial", "SCRAM-SHA-1", SHA1_NONCE, NULL,
	  { SHA1_C1, SHA1_C2, "" }, { "", SHA1_S1, SHA1_S2 }, SASL_OK,
	  "user" },
	{ "5 RFC 7677", "SCRAM-SHA-256", SHA256_NONCE, SHA256_C1,
	  { SHA256_C2, "" }, { SHA256_S1, SHA256_S2 }, SASL_OK, "user" },
	{ "5 RFC 7677, no initial (gsasl)", "SCRAM-SHA-256", SHA256_NONCE,
	  NULL, { SHA256_C1, SHA256_C2, "" }, { "", SHA256_S1, SHA256_S2 },
	  SASL_OK, "user" },
	{ "5b flipped proof bit", "SCRAM-SHA-256", SHA256_NONCE, SHA256_C1,
	  /* c=biws,r=...,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU= */
	  { "Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8laHZZRHBXVWEyUmFUQ0FmdX"
	    "hGSWxqKWhObEYkazAscD1kSHpiWmFwV0lrNGpVaE4rVXRlOXl0YWc5empmTUhn"
	    "c3FtbWl6N0FuZFZVPQ==", "" },
	  { SHA256_S1, INVALID_PROOF }, SASL_FAIL, NULL },
	{ "5b proof of the other hash", "SCRAM-SHA-1", SHA1_NONCE, SHA1_C1,
	  /* c=biws,r=<sha1 nonce>,p=<the SHA-256 proof> */
	  { "Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpWdl"
	    "dWczdqLHA9ZEh6YlphcFdJazRqVWhOK1V0ZTl5dGFnOXpqZk1IZ3NxbW1pejdB"
	    "bmRWUT0=" }, { SHA1_S1 }, SASL_MALFORMED, NULL },
	{ "5b wrong nonce (replay)", "SCRAM-SHA-1", "other", SHA1_C1,
	  { SHA1_C2, "" },
	  /* r=fyko+d2lbbFgONRv9qkxdawLother,..., then e=other-error */
	  { "cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0xvdGhlcixzPVFTWENSK1E2c2VrOG"
	    "JmOTIsaT00MDk2", "ZT1vdGhlci1lcnJvcg==" }, SASL_FAIL, NULL },
	{ "5b c= not biws", "SCRAM-SHA-1", SHA1_NONCE, SHA1_C1,
	  /* c=eSws,r=...,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts= */
	  { "Yz1lU3dzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpWdl"
	    "dWczdqLHA9djBYOHYzQnoyVDBDSkdiSlF5RjBYK0hJNFRzPQ==", "" },
	  { SHA1_S1, "ZT1jaGFubmVsLWJpbmRpbmdzLWRvbnQtbWF0Y2g=" }, SASL_FAIL,
	  NULL },
	{ "5b p=tls-unique", "SCRAM-SHA-256", SHA256_NONCE,
	  /* p=tls-unique,,n=user,r=rOprNGfwEbeRWgbNEkqO */
	  "cD10bHMtdW5pcXVlLCxuPXVzZXIscj1yT3ByTkdmd0ViZVJXZ2JORWtxTw==",
	  { "" }, { "ZT1jaGFubmVsLWJpbmRpbmctbm90LXN1cHBvcnRlZA==" },
	  SASL_FAIL, NULL },
	{ "5b unescaped =", "SCRAM-SHA-256", SHA256_NONCE,
	  "biwsbj11PXNlcixyPWFiYw==",		/* n,,n=u=ser,r=abc */
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },
	{ "5b unescaped ,", "SCRAM-SHA-256", SHA256_NONCE,
	  "biwsbj11LHNlcixyPWFiYw==",		/* n,,n=u,ser,r=abc */
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },
	{ "5b m= extension", "SCRAM-SHA-256", SHA256_NONCE,
	  "biwsbT14LG49dXNlcixyPWFiYw==",	/* n,,m=x,n=user,r=abc */
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },
	{ "5b no n=", "SCRAM-SHA-256", SHA256_NONCE, "biwscj1hYmM=",
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },	/* n,,r=abc */
	{ "5b no r=", "SCRAM-SHA-256", SHA256_NONCE, "biwsbj11c2Vy",
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },	/* n,,n=user */
	{ "5b no p=", "SCRAM-SHA-1", SHA1_NONCE, SHA1_C1,
	  /* c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j */
	  { "Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpWdl"
	    "dWczdq" }, { SHA1_S1 }, SASL_MALFORMED, NULL },
	{ "5b unknown user: fake salt", "SCRAM-SHA-1", SHA1_NONCE,
	  /* n,,n=nobody,r=fyko+d2lbbFgONRv9qkxdawL */
	  "biwsbj1ub2JvZHkscj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0w=",
	  { SHA1_C2, "" }, { NULL, INVALID_PROOF }, SASL_FAIL, NULL },
	{ "y,, accepted (no -PLUS offered)", "SCRAM-SHA-1", SHA1_NONCE,
	  /* y,,n=user,r=fyko+d2lbbFgONRv9qkxdawL */
	  "eSwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM",
	  /* c=eSws,...: the proof is of the other AuthMessage */
	  { "Yz1lU3dzLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdMM3JmY05IWUpZMVpWdl"
	    "dWczdqLHA9djBYOHYzQnoyVDBDSkdiSlF5RjBYK0hJNFRzPQ==", "" },
	  { SHA1_S1, INVALID_PROOF }, SASL_FAIL, NULL },
	{ "authzid of another user", "SCRAM-SHA-1", SHA1_NONCE,
	  /* n,a=admin,n=user,r=abc */
	  "bixhPWFkbWluLG49dXNlcixyPWFiYw==", { NULL }, { NULL }, SASL_FAIL,
	  NULL },
	{ "bad gs2 flag", "SCRAM-SHA-1", SHA1_NONCE, "eCwsbj11c2VyLHI9YWJj",
	  { NULL }, { NULL }, SASL_MALFORMED, NULL },	/* x,,n=user,r=abc */
	{ "data after v=", "SCRAM-SHA-1", SHA1_NONCE, SHA1_C1,
	  { SHA1_C2, "eA==" }, { SHA1_S1, SHA1_S2 }, SASL_MALFORMED, NULL },
	{ "cancel after server-first", "SCRAM-SHA-1", SHA1_NONCE, SHA1_C1,
	  { "*" }, { SHA1_S1 }, SASL_CANCEL, NULL },
	{ "NUL in client-first", "SCRAM-SHA-1", SHA1_NONCE,
	  "biwsbj11AHNlcixyPWFiYw==", { NULL }, { NULL }, SASL_MALFORMED,
	  NULL },
	{ "comma in nonce part", "SCRAM-SHA-1", SHA1_NONCE,
	  "biwsbj11c2VyLHI9LA==", { NULL }, { NULL }, SASL_MALFORMED, NULL },
};

static void
test_scram(void)
{
	check_rows(scram_rows, NROWS(scram_rows));
}

/* The AuthMessage handed to the store is the RFC's, byte for byte. */
static void
test_scram_authmsg(void)
{
	static const struct xrow rows[] = {
		{ "4", "SCRAM-SHA-1", SHA1_NONCE, SHA1_C1, { SHA1_C2, "" },
		  { NULL }, SASL_OK, "user" },
		{ "5", "SCRAM-SHA-256", SHA256_NONCE, SHA256_C1,
		  { SHA256_C2, "" }, { NULL }, SASL_OK, "user" },
	};

	check_rows(rows, 1);
	CHECK_STR(last_authmsg, SHA1_AUTHMSG);
	check_rows(rows + 1, 1);
	CHECK_STR(last_authmsg, SHA256_AUTHMSG);
}

/* The requests the net half sends, field by field. */
static void
test_requests(void)
{
	struct sasl_server	*s = sasl_server_new();
	const struct sasl_req	*q;
	struct sasl_params	 p = { "h", SHA1_NONCE };

	CHECK_INT(sasl_server_start(s, "PLAIN", "dGVzdAB0ZXN0ADEyMzQ=", NULL),
	    SASL_NEED_VERIFY);
	q = sasl_server_request(s);
	CHECK_INT(q->type, SASL_REQ_PASSWORD);
	CHECK_STR(q->mech, "PLAIN");
	CHECK_STR(q->authzid, "test");
	CHECK_STR(q->user, "test");
	CHECK_STR(q->password, "1234");
	CHECK_STR(q->challenge, "");
	CHECK_STR(sasl_server_user(s), "");	/* not yet */
	CHECK_INT(store_roundtrip(s), SASL_OK);
	CHECK_STR(sasl_server_user(s), "test");
	p.test_nonce = CRAM_CHAL;
	CHECK_INT(sasl_server_start(s, "CRAM-MD5", NULL, &p), SASL_CONTINUE);
	CHECK_INT(sasl_server_step(s, "dGltIEI5MTNBNjAyQzdFREE3QTQ5NUI0RTZFN"
	    "zMzNEQzODkw"), SASL_NEED_VERIFY);
	q = sasl_server_request(s);
	CHECK_INT(q->type, SASL_REQ_CRAM_MD5);
	CHECK_STR(q->user, "tim");
	CHECK_STR(q->challenge, CRAM_CHAL);
	CHECK_STR(q->response, "b913a602c7eda7a495b4e6e7334d3890");
	CHECK_STR(q->password, "");
	CHECK_INT(store_roundtrip(s), SASL_OK);
	p.test_nonce = SHA1_NONCE;
	/* n,a=us=2Cer=3Dx,n=us=2Cer=3Dx,r=abc: escaped names */
	CHECK_INT(sasl_server_start(s, "SCRAM-SHA-1", "bixhPXVzPTJDZXI9M0R4LG"
	    "49dXM9MkNlcj0zRHgscj1hYmM=", &p), SASL_NEED_VERIFY);
	q = sasl_server_request(s);
	CHECK_INT(q->type, SASL_REQ_SCRAM_FIRST);
	CHECK_STR(q->mech, "SCRAM-SHA-1");
	CHECK_STR(q->user, "us,er=x");
	CHECK_STR(q->response, "");
	CHECK_INT(store_roundtrip(s), SASL_CONTINUE);
	CHECK_INT(sasl_server_step(s, "*"), SASL_CANCEL);
	sasl_server_free(&s);
}

/* A client for a secret with a random salt, to run the whole path. */
static void
client_proof(const EVP_MD *md, const char *pw, const char *salt_b64,
    unsigned int it, const char *authmsg, char *out, size_t size, char *v)
{
	uint8_t		salt[64], sp[32], ck[32], sk[32], cs[32];
	char		sig[64];
	size_t		n, i, h = (size_t)EVP_MD_size(md);

	sasl_b64_decode(salt_b64, strlen(salt_b64), salt, sizeof(salt), &n);
	PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, (int)n, (int)it, md,
	    (int)h, sp);
	HMAC(md, sp, (int)h, (const uint8_t *)"Client Key", 10, ck, NULL);
	EVP_Digest(ck, h, sk, NULL, md, NULL);
	HMAC(md, sk, (int)h, (const uint8_t *)authmsg, strlen(authmsg), cs,
	    NULL);
	for (i = 0; i < h; i++)
		ck[i] ^= cs[i];
	sasl_b64_encode(ck, h, out, size);
	/* the server-final we expect: base64 of "v=" ServerSignature */
	HMAC(md, sp, (int)h, (const uint8_t *)"Server Key", 10, sk, NULL);
	HMAC(md, sk, (int)h, (const uint8_t *)authmsg, strlen(authmsg), cs,
	    NULL);
	memcpy(sig, "v=", 2);
	sasl_b64_encode(cs, h, sig + 2, sizeof(sig) - 2);
	sasl_b64_encode((const uint8_t *)sig, strlen(sig), v, 100);
}

static void
test_scram_random_salt(void)
{
	struct account		*a = account_find("test");
	struct sasl_server	*s = sasl_server_new();
	char			 save[SASL_SECRET_MAX + 1], salt[100];
	char			 msg[1024], line[2048], proof[64], v[100];
	uint8_t			 dec[512];
	size_t			 n;
	unsigned int		 it;
	const char		*c1 = "n,,n=test,r=0123456789abcdef";

	strcpy(save, a->sha256);
	CHECK(sasl_scram_secret("1234", SASL_HASH_SHA256, 5000, a->sha256,
	    sizeof(a->sha256)) == 0);
	CHECK(strncmp(a->sha256, "5000$", 5) == 0);
	CHECK(strcmp(a->sha256, save) != 0);
	CHECK(sasl_scram_secret("1234", SASL_HASH_SHA256, 100, msg,
	    sizeof(msg)) == -1);
	CHECK(sasl_scram_secret("1234", SASL_HASH_SHA256, 5000, msg, 20) ==
	    -1);
	sasl_b64_encode((const uint8_t *)c1, strlen(c1), line, sizeof(line));
	CHECK_INT(sasl_server_start(s, "SCRAM-SHA-256", line, NULL),
	    SASL_NEED_VERIFY);
	CHECK_INT(store_roundtrip(s), SASL_CONTINUE);
	sasl_b64_decode(sasl_server_challenge(s),
	    strlen(sasl_server_challenge(s)), dec, sizeof(dec) - 1, &n);
	dec[n] = '\0';
	/* r=<32 octets of nonce>,s=<24>,i=5000 */
	CHECK(strncmp((char *)dec, "r=0123456789abcdef", 18) == 0);
	CHECK_INT(strcspn((char *)dec, ","), 2 + 16 + 32);
	CHECK(sscanf((char *)dec + 51, "s=%99[^,],i=%u", salt, &it) == 2);
	CHECK_INT(it, 5000);
	snprintf(msg, sizeof(msg), "%s,%s,c=biws,r=%.48s", c1 + 3, dec,
	    dec + 2);
	client_proof(EVP_sha256(), "1234", salt, it, msg, proof,
	    sizeof(proof), v);
	snprintf(msg, sizeof(msg), "c=biws,r=%.48s,p=%s", dec + 2, proof);
	sasl_b64_encode((const uint8_t *)msg, strlen(msg), line, sizeof(line));
	CHECK_INT(sasl_server_step(s, line), SASL_NEED_VERIFY);
	CHECK_INT(store_roundtrip(s), SASL_CONTINUE);
	CHECK_STR(sasl_server_challenge(s), v);
	CHECK_INT(sasl_server_step(s, ""), SASL_OK);
	CHECK_STR(sasl_server_user(s), "test");
	strcpy(a->sha256, save);
	sasl_server_free(&s);
}

/* Unknown users get the same fake salt each time, another per user. */
static void
test_scram_fake_salt(void)
{
	struct sasl_req		q = { SASL_REQ_SCRAM_FIRST, "SCRAM-SHA-256",
				    "", "nobody", "", "", "", "" };
	struct sasl_reply	r1, r2;

	CHECK_INT(sasl_store_verify(&q, &env, &r1), SASL_OK);
	CHECK_INT(r1.iterations, 4096);
	CHECK_INT(strlen(r1.salt), 24);
	CHECK_INT(sasl_store_verify(&q, &env, &r2), SASL_OK);
	CHECK_STR(r1.salt, r2.salt);
	q.user = "nobody2";
	CHECK_INT(sasl_store_verify(&q, &env, &r2), SASL_OK);
	CHECK(strcmp(r1.salt, r2.salt) != 0);
	q.user = "user";
	CHECK_INT(sasl_store_verify(&q, &env, &r2), SASL_OK);
	CHECK_STR(r2.salt, SHA256_SALT);
	q.type = SASL_REQ_SCRAM_FINAL;		/* no proof */
	CHECK_INT(sasl_store_verify(&q, &env, &r2), SASL_FAIL);
}

/* The store half checks requests like network input. */
static void
test_store_hostile(void)
{
	struct sasl_req		q = { SASL_REQ_PASSWORD, "PLAIN", "", "tim",
				    "tanstaaftanstaaf", "", "", "" };
	struct sasl_reply	r;
	char			big[400];

	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_OK);
	q.mech = "login";
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_OK);
	q.authzid = "Ursel";			/* 1b, even by the store */
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_FAIL);
	q.authzid = "";
	q.mech = "NOPE";
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_FAIL);
	q.mech = "PLAIN";
	q.user = NULL;
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_FAIL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	q.user = big;
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_FAIL);
	q.user = "";
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_FAIL);
	q.user = "tim";
	q.password = "";
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_FAIL);
	q.password = "tanstaaftanstaaf";
	q.type = SASL_REQ_SCRAM_FINAL;		/* wrong type for PLAIN */
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_FAIL);
	q.type = SASL_REQ_PASSWORD;
	q.mech = "CRAM-MD5";			/* wrong type for CRAM */
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_FAIL);
	q.mech = "PLAIN";
	store_down = true;
	CHECK_INT(sasl_store_verify(&q, &env, &r), SASL_TEMPFAIL);
	store_down = false;
}

static const struct xrow tempfail_rows[] = {
	{ "PLAIN", "PLAIN", NULL, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", { NULL },
	  { NULL }, SASL_TEMPFAIL, NULL },
	{ "CRAM-MD5", "CRAM-MD5", CRAM_CHAL, NULL, { CRAM_RESP_B64 },
	  { NULL }, SASL_TEMPFAIL, NULL },
	{ "SCRAM", "SCRAM-SHA-1", SHA1_NONCE, SHA1_C1, { NULL }, { NULL },
	  SASL_TEMPFAIL, NULL },
};

static void
test_tempfail(void)
{
	store_down = true;
	check_rows(tempfail_rows, NROWS(tempfail_rows));
	store_down = false;
}

/* Replies from the store are checked by the net half too. */
static void
test_bad_replies(void)
{
	struct sasl_server	*s = sasl_server_new();
	struct sasl_reply	 r;
	struct sasl_params	 p = { "h", SHA1_NONCE };

	memset(&r, 0, sizeof(r));
	r.result = SASL_OK;
	strcpy(r.salt, "not base64!");
	r.iterations = 4096;
	CHECK_INT(sasl_server_start(s, "SCRAM-SHA-1", SHA1_C1, &p),
	    SASL_NEED_VERIFY);
	CHECK_INT(sasl_server_verified(s, &r), SASL_TEMPFAIL);
	strcpy(r.salt, SHA1_SALT);
	r.iterations = 1;
	CHECK_INT(sasl_server_start(s, "SCRAM-SHA-1", SHA1_C1, &p),
	    SASL_NEED_VERIFY);
	CHECK_INT(sasl_server_verified(s, &r), SASL_TEMPFAIL);
	r.iterations = 4096;
	CHECK_INT(sasl_server_start(s, "SCRAM-SHA-1", SHA1_C1, &p),
	    SASL_NEED_VERIFY);
	CHECK_INT(sasl_server_verified(s, &r), SASL_CONTINUE);
	CHECK_STR(sasl_server_challenge(s), SHA1_S1);
	CHECK_INT(sasl_server_step(s, SHA1_C2), SASL_NEED_VERIFY);
	memset(r.server_sig, 'A', sizeof(r.server_sig));	/* no NUL */
	CHECK_INT(sasl_server_verified(s, &r), SASL_TEMPFAIL);
	CHECK_STR(sasl_server_user(s), "");
	sasl_server_free(&s);
	sasl_server_free(&s);			/* NULL is fine */
}

static void
test_mech_table(void)
{
	static const char *const names[] = { "PLAIN", "LOGIN", "CRAM-MD5",
	    "SCRAM-SHA-1", "SCRAM-SHA-256" };
	size_t	i;

	for (i = 0; i < NROWS(names); i++)
		CHECK_ROW(sasl_mech_find(names[i]) != NULL &&
		    strcmp(sasl_mech_find(names[i])->name, names[i]) == 0,
		    names[i]);
	CHECK(sasl_mech_find("scram-sha-256") == &sasl_mech_scram_sha256);
	CHECK(sasl_mech_find("SCRAM-SHA-256-PLUS") == NULL);
	CHECK(sasl_mech_find("") == NULL);
	CHECK(sasl_mech_plain.plaintext && sasl_mech_login.plaintext);
	CHECK(!sasl_mech_cram_md5.plaintext && !sasl_mech_scram_sha1.plaintext);
	CHECK(!sasl_mech_cram_md5.client_first);
}

int
main(void)
{
	setup_accounts();
	RUN(test_b64);
	RUN(test_b64_bounds);
	RUN(test_mech_table);
	RUN(test_plain);
	RUN(test_plain_long_fields);
	RUN(test_line_limit);
	RUN(test_login);
	RUN(test_cram_store);
	RUN(test_cram);
	RUN(test_cram_challenge);
	RUN(test_scram_keys);
	RUN(test_scram_store);
	RUN(test_scram);
	RUN(test_scram_authmsg);
	RUN(test_requests);
	RUN(test_scram_random_salt);
	RUN(test_scram_fake_salt);
	RUN(test_store_hostile);
	RUN(test_tempfail);
	RUN(test_bad_replies);
	return test_done();
}

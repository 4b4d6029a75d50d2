/*
 * sasl.c - the shared part of the SASL server: strict base64, the table
 * of mechanisms, the exchange state machine (net half) and the dispatch
 * of a request to a mechanism's store half.
 *
 * The net role runs sasl_server_*() on lines straight from the client;
 * the store role runs sasl_store_verify() on requests from the net role.
 * Neither input is trusted: every line and field is bounded before it is
 * decoded or copied.  Passwords are wiped as soon as the exchange ends.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "compat.h"
#include "sasl.h"

/* sasl_server.phase */
enum { SP_IDLE, SP_CONTINUE, SP_VERIFY };

static const struct sasl_mech *const mechs[] = {
	&sasl_mech_plain,
	&sasl_mech_login,
	&sasl_mech_cram_md5,
	&sasl_mech_scram_sha256,
	&sasl_mech_scram_sha1,
};

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Our own bug: the caller broke the call order. */
static void __attribute__((noreturn))
sasl_panic(void)
{
	abort();
}

const struct sasl_mech *
sasl_mech_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strcasecmp(mechs[i]->name, name) == 0)
			return mechs[i];
	return NULL;
}

const struct sasl_mech *
sasl_mech_at(size_t i)
{
	return i < sizeof(mechs) / sizeof(mechs[0]) ? mechs[i] : NULL;
}

int
sasl_b64_encode(const uint8_t *in, size_t len, char *out, size_t size)
{
	size_t		i, o = 0;
	uint32_t	v;

	/* 4 * ceil(len / 3) symbols and a NUL must fit */
	if (size == 0 || len > (size - 1) / 4 * 3)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < len) {
		v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return 0;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * The number of '=' at the end of a quad-aligned input, after checking
 * that they are where RFC 4648 puts them and that the bits they leave
 * unused are zero (a non-canonical encoding is refused).
 */
static int
b64_pads(const char *in, size_t len)
{
	int	pads = 0, last;

	if (len == 0)
		return 0;
	if (in[len - 1] == '=')
		pads++;
	if (pads && in[len - 2] == '=')
		pads++;
	if ((last = b64_value(in[len - 1 - pads])) == -1)
		return -1;
	if ((pads == 1 && (last & 3)) || (pads == 2 && (last & 15)))
		return -1;
	return pads;
}

int
sasl_b64_decode(const char *in, size_t len, uint8_t *out, size_t size,
    size_t *outlen_r)
{
	size_t		i, o = 0, n;
	uint32_t	v;
	int		pads, j, c;

	*outlen_r = 0;
	if (len % 4 != 0 || (pads = b64_pads(in, len)) == -1)
		return -1;
	n = len / 4 * 3 - (size_t)pads;
	if (n > size)
		return -1;
	for (i = 0; i < len; i += 4) {
		v = 0;
		for (j = 0; j < 4; j++) {
			c = b64_value(in[i + j]);
			if (c == -1 && !(i + 4 == len && 4 - j <= pads))
				return -1;
			v = v << 6 | (uint32_t)(c == -1 ? 0 : c);
		}
		out[o++] = v >> 16;
		if (o < n)
			out[o++] = v >> 8 & 0xff;
		if (o < n)
			out[o++] = v & 0xff;
	}
	*outlen_r = n;
	return 0;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
static size_t
utf8_len(const uint8_t *p, size_t avail)
{
	uint8_t	lo = 0x80, hi = 0xbf;
	size_t	n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;		/* overlong */
		if (p[0] == 0xed)
			hi = 0x9f;		/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		if (p[0] == 0xf4)
			hi = 0x8f;		/* over U+10FFFF */
	} else
		return 0;
	if (n > avail || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/*
 * True when p holds well-formed UTF-8 without NUL and, unless controls,
 * without ASCII controls (0x01-0x1f, 0x7f).
 */
bool
sasl_text_valid(const uint8_t *p, size_t len, bool controls)
{
	size_t	i = 0, n;

	while (i < len) {
		if (p[i] == 0)
			return false;
		if (p[i] < 0x80) {
			if (!controls && (p[i] < 0x20 || p[i] == 0x7f))
				return false;
			i++;
			continue;
		}
		if ((n = utf8_len(p + i, len - i)) == 0)
			return false;
		i += n;
	}
	return true;
}

int
sasl_random(void *buf, size_t len)
{
	if (len > 1024 || RAND_bytes(buf, (int)len) != 1)
		return -1;
	return 0;
}

int
sasl_server_set_challenge(struct sasl_server *s, const void *msg, size_t len)
{
	return sasl_b64_encode(msg, len, s->challenge, sizeof(s->challenge));
}

/* Fill the request of the given type from the session's buffers. */
void
sasl_server_need(struct sasl_server *s, enum sasl_req_type type)
{
	struct sasl_req	*r = &s->req;

	r->type = type;
	r->mech = s->mech->name;
	r->user = s->user;
	r->authzid = r->password = r->challenge = r->response = "";
	r->authmsg = "";
	switch (type) {
	case SASL_REQ_PASSWORD:
		r->authzid = s->authzid;
		r->password = s->password;
		break;
	case SASL_REQ_CRAM_MD5:
		r->challenge = s->text1;
		r->response = s->response;
		break;
	case SASL_REQ_SCRAM_FIRST:
		break;
	case SASL_REQ_SCRAM_FINAL:
		r->authmsg = s->authmsg;
		r->response = s->response;
		break;
	default:
		sasl_panic();
	}
}

/* Record why an exchange failed and return r. */
enum sasl_result
sasl_server_error(struct sasl_server *s, enum sasl_result r,
    const char *errstr)
{
	s->errstr = errstr;
	return r;
}

/* The net half's answer to a PASSWORD or CRAM_MD5 reply. */
enum sasl_result
sasl_verified_simple(struct sasl_server *s, const struct sasl_reply *r)
{
	if (r->result == SASL_OK)
		return SASL_OK;
	if (r->result == SASL_TEMPFAIL)
		return sasl_server_error(s, SASL_TEMPFAIL, "store failure");
	return sasl_server_error(s, SASL_FAIL, "credentials invalid");
}

static void
server_wipe(struct sasl_server *s)
{
	OPENSSL_cleanse(s->password, sizeof(s->password));
	OPENSSL_cleanse(s->in, sizeof(s->in));
	OPENSSL_cleanse(s->response, sizeof(s->response));
}

static void
server_reset(struct sasl_server *s)
{
	server_wipe(s);
	s->mech = NULL;
	s->state = 0;
	s->phase = SP_IDLE;
	s->errstr = NULL;
	s->challenge[0] = s->user[0] = s->authzid[0] = '\0';
	s->gs2[0] = s->nonce[0] = s->text1[0] = s->text2[0] = '\0';
	s->authmsg[0] = s->hostname[0] = s->test_nonce[0] = '\0';
	s->req.type = SASL_REQ_PASSWORD;
	s->req.mech = s->req.authzid = s->req.user = s->req.password = "";
	s->req.challenge = s->req.response = s->req.authmsg = "";
}

struct sasl_server *
sasl_server_new(void)
{
	struct sasl_server	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	server_reset(s);
	return s;
}

void
sasl_server_free(struct sasl_server **sp)
{
	if (*sp == NULL)
		return;
	server_wipe(*sp);
	free(*sp);
	*sp = NULL;
}

/* Move to the phase that result r leaves the session in. */
static enum sasl_result
server_enter(struct sasl_server *s, enum sasl_result r)
{
	switch (r) {
	case SASL_CONTINUE:
		s->phase = SP_CONTINUE;
		return r;
	case SASL_NEED_VERIFY:
		s->phase = SP_VERIFY;
		return r;
	case SASL_OK:
		break;
	case SASL_FAIL:
	case SASL_CANCEL:
	case SASL_MALFORMED:
	case SASL_TOOLONG:
	case SASL_NOMECH:
	case SASL_TEMPFAIL:
		s->user[0] = '\0';
		break;
	default:
		sasl_panic();
	}
	s->phase = SP_IDLE;
	server_wipe(s);
	return r;
}

/* Decode one client message and hand it to the mechanism. */
static enum sasl_result
server_feed(struct sasl_server *s, const char *line)
{
	size_t	len, n;

	if ((len = strnlen(line, SASL_LINE_MAX + 1)) > SASL_LINE_MAX)
		return sasl_server_error(s, SASL_TOOLONG, "line too long");
	if (strcmp(line, "*") == 0)
		return sasl_server_error(s, SASL_CANCEL, "cancelled");
	if (sasl_b64_decode(line, len, s->in, sizeof(s->in) - 1, &n) == -1)
		return sasl_server_error(s, SASL_MALFORMED, "bad base64");
	s->in[n] = '\0';
	return s->mech->step(s, s->in, n);
}

static enum sasl_result
server_setup(struct sasl_server *s, const char *name,
    const struct sasl_params *p)
{
	const char	*host = p != NULL && p->hostname != NULL ? p->hostname :
			    "localhost";

	if ((s->mech = sasl_mech_find(name)) == NULL)
		return sasl_server_error(s, SASL_NOMECH, "unknown mechanism");
	if (strlcpy(s->hostname, host, sizeof(s->hostname)) >=
	    sizeof(s->hostname))
		return sasl_server_error(s, SASL_TEMPFAIL, "hostname too long");
	if (p != NULL && p->test_nonce != NULL &&
	    strlcpy(s->test_nonce, p->test_nonce, sizeof(s->test_nonce)) >=
	    sizeof(s->test_nonce))
		return sasl_server_error(s, SASL_TEMPFAIL, "nonce too long");
	return SASL_CONTINUE;
}

enum sasl_result
sasl_server_start(struct sasl_server *s, const char *name,
    const char *initial, const struct sasl_params *p)
{
	enum sasl_result	r;

	if (s->phase == SP_VERIFY)
		sasl_panic();
	server_reset(s);
	if ((r = server_setup(s, name, p)) != SASL_CONTINUE)
		return server_enter(s, r);
	if (initial != NULL && !s->mech->client_first)
		return server_enter(s, sasl_server_error(s, SASL_MALFORMED,
		    "initial response to a server-first mechanism"));
	if ((r = s->mech->start(s)) != SASL_CONTINUE || initial == NULL)
		return server_enter(s, r);
	/* RFC 4954 4: "=" is an initial response of zero length. */
	if (strcmp(initial, "=") == 0)
		initial = "";
	else if (initial[0] == '\0')
		return server_enter(s, sasl_server_error(s, SASL_MALFORMED,
		    "empty initial response"));
	return server_enter(s, server_feed(s, initial));
}

enum sasl_result
sasl_server_step(struct sasl_server *s, const char *line)
{
	if (s->phase != SP_CONTINUE)
		sasl_panic();
	s->errstr = NULL;
	return server_enter(s, server_feed(s, line));
}

enum sasl_result
sasl_server_verified(struct sasl_server *s, const struct sasl_reply *r)
{
	if (s->phase != SP_VERIFY)
		sasl_panic();
	s->errstr = NULL;
	return server_enter(s, s->mech->verified(s, r));
}

const char *
sasl_server_challenge(const struct sasl_server *s)
{
	return s->challenge;
}

const struct sasl_req *
sasl_server_request(const struct sasl_server *s)
{
	return &s->req;
}

const char *
sasl_server_user(const struct sasl_server *s)
{
	return s->phase == SP_IDLE ? s->user : "";
}

const char *
sasl_server_errstr(const struct sasl_server *s)
{
	return s->errstr;
}

/* A request field is present and within max octets. */
static bool
field_ok(const char *f, size_t max)
{
	return f != NULL && strnlen(f, max + 1) <= max;
}

static bool
req_valid(const struct sasl_req *r)
{
	return field_ok(r->mech, 32) && field_ok(r->authzid, SASL_USER_MAX) &&
	    field_ok(r->user, SASL_USER_MAX) &&
	    field_ok(r->password, SASL_PASS_MAX) &&
	    field_ok(r->challenge, SASL_TEXT_MAX) &&
	    field_ok(r->response, SASL_PROOF_MAX) &&
	    field_ok(r->authmsg, SASL_AUTHMSG_MAX) && r->user[0] != '\0' &&
	    sasl_text_valid((const uint8_t *)r->user, strlen(r->user), false);
}

enum sasl_result
sasl_store_verify(const struct sasl_req *req, const struct sasl_store_env *env,
    struct sasl_reply *reply)
{
	const struct sasl_mech	*m;

	memset(reply, 0, sizeof(*reply));
	reply->result = SASL_FAIL;
	if (!req_valid(req) || (m = sasl_mech_find(req->mech)) == NULL)
		return reply->result;
	reply->result = m->verify(req, env, reply);
	return reply->result;
}

/*
 * Store half of PLAIN and LOGIN.  Proxy authorization is not offered:
 * the authzid must be empty or the authcid itself (RFC 4616 2).
 */
enum sasl_result
sasl_verify_password(const struct sasl_req *req,
    const struct sasl_store_env *env, struct sasl_reply *reply)
{
	(void)reply;
	if (req->type != SASL_REQ_PASSWORD || req->password[0] == '\0')
		return SASL_FAIL;
	if (req->authzid[0] != '\0' && strcmp(req->authzid, req->user) != 0)
		return SASL_FAIL;
	if (env->check_password == NULL)
		return SASL_TEMPFAIL;
	switch (env->check_password(req->user, req->password, env->arg)) {
	case SASL_OK:
		return SASL_OK;
	case SASL_TEMPFAIL:
		return SASL_TEMPFAIL;
	default:
		return SASL_FAIL;
	}
}

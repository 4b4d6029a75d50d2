/*
 * sasl_login.c - LOGIN (draft-murchison-sasl-login, de facto): the
 * server prompts "Username:" and "Password:", the client answers each.
 *
 * Net half: runs in the net role on decoded client messages.  An initial
 * response is taken as the user name, as common clients send it.  The
 * password check is the store's (sasl_verify_password() in sasl.c).
 * XXX no SASLprep (RFC 4013): names and passwords are used as sent.
 */
#include <string.h>

#include "sasl.h"

enum { L_USER, L_PASS };

static const char prompt_user[] = "Username:";
static const char prompt_pass[] = "Password:";

static enum sasl_result
login_start(struct sasl_server *s)
{
	s->state = L_USER;
	if (sasl_server_set_challenge(s, prompt_user, strlen(prompt_user)))
		return sasl_server_error(s, SASL_TEMPFAIL, "challenge");
	return SASL_CONTINUE;
}

static enum sasl_result
login_user(struct sasl_server *s, const uint8_t *in, size_t len)
{
	if (len == 0)
		return sasl_server_error(s, SASL_MALFORMED, "empty user");
	if (len > SASL_USER_MAX || !sasl_text_valid(in, len, false))
		return sasl_server_error(s, SASL_FAIL, "bad name");
	memcpy(s->user, in, len);
	s->user[len] = '\0';
	s->state = L_PASS;
	if (sasl_server_set_challenge(s, prompt_pass, strlen(prompt_pass)))
		return sasl_server_error(s, SASL_TEMPFAIL, "challenge");
	return SASL_CONTINUE;
}

static enum sasl_result
login_pass(struct sasl_server *s, const uint8_t *in, size_t len)
{
	if (len == 0)
		return sasl_server_error(s, SASL_MALFORMED, "empty password");
	if (memchr(in, '\0', len) != NULL)
		return sasl_server_error(s, SASL_MALFORMED, "NUL in password");
	if (len > SASL_PASS_MAX)
		return sasl_server_error(s, SASL_FAIL, "password too long");
	memcpy(s->password, in, len);
	s->password[len] = '\0';
	sasl_server_need(s, SASL_REQ_PASSWORD);
	return SASL_NEED_VERIFY;
}

static enum sasl_result
login_step(struct sasl_server *s, const uint8_t *in, size_t len)
{
	return s->state == L_USER ? login_user(s, in, len) :
	    login_pass(s, in, len);
}

const struct sasl_mech sasl_mech_login = {
	.name = "LOGIN",
	.plaintext = true,
	.client_first = true,
	.hash = SASL_HASH_NONE,
	.scheme = NULL,
	.start = login_start,
	.step = login_step,
	.verified = sasl_verified_simple,
	.verify = sasl_verify_password,
};

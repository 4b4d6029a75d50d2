/*
 * sasl_plain.c - PLAIN (RFC 4616): one client message
 * "[authzid] NUL authcid NUL passwd".
 *
 * Net half: runs in the net role on the decoded client message and
 * trusts none of it; it only splits and bounds the fields.  The password
 * check is the store's (sasl_verify_password() in sasl.c).  Proxy
 * authorization is not offered: a non-empty authzid must equal the
 * authcid.  The password may be any octets but NUL (legacy clients send
 * Latin-1); the names must be well-formed UTF-8 without controls.
 * XXX no SASLprep (RFC 4013): names and passwords are used as sent.
 */
#include <string.h>

#include "sasl.h"

static enum sasl_result
plain_start(struct sasl_server *s)
{
	s->challenge[0] = '\0';		/* "334 " and wait for the message */
	return SASL_CONTINUE;
}

/* Copy the field [p, p + len) into buf (SASL_USER_MAX + 1 octets). */
static int
copy_name(char *buf, const uint8_t *p, size_t len)
{
	if (len > SASL_USER_MAX || !sasl_text_valid(p, len, false))
		return -1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

static enum sasl_result
plain_step(struct sasl_server *s, const uint8_t *in, size_t len)
{
	const uint8_t	*nul1, *nul2, *pw, *end = in + len;

	if ((nul1 = memchr(in, '\0', len)) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', end - nul1 - 1)) == NULL)
		return sasl_server_error(s, SASL_MALFORMED, "missing NUL");
	pw = nul2 + 1;
	if (memchr(pw, '\0', end - pw) != NULL)
		return sasl_server_error(s, SASL_MALFORMED, "extra NUL");
	if (nul2 == nul1 + 1 || pw == end)
		return sasl_server_error(s, SASL_MALFORMED, "empty field");
	if ((size_t)(end - pw) > SASL_PASS_MAX)
		return sasl_server_error(s, SASL_FAIL, "password too long");
	if (copy_name(s->authzid, in, nul1 - in) == -1 ||
	    copy_name(s->user, nul1 + 1, nul2 - nul1 - 1) == -1)
		return sasl_server_error(s, SASL_FAIL, "bad name");
	if (s->authzid[0] != '\0' && strcmp(s->authzid, s->user) != 0)
		return sasl_server_error(s, SASL_FAIL, "authzid not authcid");
	memcpy(s->password, pw, end - pw);
	s->password[end - pw] = '\0';
	sasl_server_need(s, SASL_REQ_PASSWORD);
	return SASL_NEED_VERIFY;
}

const struct sasl_mech sasl_mech_plain = {
	.name = "PLAIN",
	.plaintext = true,
	.client_first = true,
	.hash = SASL_HASH_NONE,
	.scheme = NULL,
	.start = plain_start,
	.step = plain_step,
	.verified = sasl_verified_simple,
	.verify = sasl_verify_password,
};

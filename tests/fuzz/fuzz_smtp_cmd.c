/*
 * fuzz_smtp_cmd.c - libFuzzer target for smtp_syntax.c: one command
 * line through smtp_cmd_split(), then its argument through the MAIL,
 * RCPT and BDAT parsers whatever the verb.  The first octet chooses
 * SMTPUTF8 for RCPT.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_syntax.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_reply(const char *reply)
{
	if (reply == NULL || reply[0] != '5' || strlen(reply) < 10)
		abort();
}

static void
check_verb(const char *verb)
{
	size_t	i, len = strnlen(verb, SMTP_VERB_MAX);

	if (len == 0 || len >= SMTP_VERB_MAX)
		abort();
	for (i = 0; i < len; i++)
		if (verb[i] < 'A' || verb[i] > 'Z')
			abort();
}

static void
parse_args(const char *args, bool utf8)
{
	struct smtp_mail_params	 mp;
	struct smtp_rcpt_params	 rp;
	struct mailaddr		 a;
	const char		*reply;
	uint64_t		 size;
	bool			 last;

	reply = NULL;
	if (smtp_parse_mail(args, &a, &mp, &reply) == -1)
		check_reply(reply);
	else if (strnlen(mp.envid, sizeof(mp.envid)) == sizeof(mp.envid) ||
	    strnlen(mp.auth, sizeof(mp.auth)) == sizeof(mp.auth) ||
	    ((a.flags & ADDR_F_UTF8) && !mp.smtputf8))
		abort();
	reply = NULL;
	if (smtp_parse_rcpt(args, utf8, &a, &rp, &reply) == -1)
		check_reply(reply);
	else if (strnlen(rp.orcpt, sizeof(rp.orcpt)) == sizeof(rp.orcpt) ||
	    (a.flags & ADDR_F_NULL) || (!utf8 && (a.flags & ADDR_F_UTF8)))
		abort();
	reply = NULL;
	if (smtp_parse_bdat(args, &size, &last, &reply) == -1)
		check_reply(reply);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*line, verb[SMTP_VERB_MAX];
	const char	*args;
	bool		 utf8;

	if (size == 0)
		return 0;
	utf8 = data[0] & 1;
	if ((line = malloc(size)) == NULL)
		return 0;
	memcpy(line, data + 1, size - 1);
	line[size - 1] = '\0';
	if (smtp_cmd_split(line, verb, &args) == 0) {
		check_verb(verb);
		if (args < line || args > line + strlen(line) ||
		    (args > line && args[-1] != ' ' && *args != '\0'))
			abort();
		parse_args(args, utf8);
	}
	parse_args(line, utf8);
	free(line);
	return 0;
}

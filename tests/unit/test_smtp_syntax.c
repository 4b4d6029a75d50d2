/*
 * test_smtp_syntax.c - smtp_syntax.c: verb split, MAIL / RCPT
 * parameters and BDAT arguments, as tables of rows.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smtp_syntax.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

#define R_MAIL	"501 5.5.4 Syntax: MAIL FROM:<address>"
#define R_RCPT	"501 5.5.4 Syntax: RCPT TO:<address>"
#define R_FROM	"553 5.1.7 Bad sender address syntax"
#define R_TO	"553 5.1.3 Bad recipient address syntax"
#define R_PARAM	"501 5.5.4 Invalid parameter syntax"
#define R_UNSUP	"555 5.5.4 Unsupported parameter"
#define R_DUP	"501 5.5.4 Duplicate parameter"
#define R_BDAT	"501 5.5.4 Syntax: BDAT size [LAST]"

struct split_row {
	const char	*input;
	int		 ret;
	const char	*verb;
	const char	*args;
};

static const struct split_row split_rows[] = {
	{ "MAIL FROM:<a@b>", 0, "MAIL", "FROM:<a@b>" },
	{ "mail from:<a@b>", 0, "MAIL", "from:<a@b>" },
	{ "QUIT", 0, "QUIT", "" },
	{ "quit   ", 0, "QUIT", "" },
	{ "EHLO   x.org ", 0, "EHLO", "x.org " },
	{ "StartTLS", 0, "STARTTLS", "" },
	{ "ABCDEFGHIJKLMNO", 0, "ABCDEFGHIJKLMNO", "" },
	{ "ABCDEFGHIJKLMNOP", -1, NULL, NULL },
	{ "", -1, NULL, NULL },
	{ " MAIL", -1, NULL, NULL },
	{ "MAIL\tFROM:<a@b>", -1, NULL, NULL },
	{ "MAIL:FROM", -1, NULL, NULL },
	{ "HELO1", -1, NULL, NULL },
	{ "H\xc3\x89LO x", -1, NULL, NULL },
	{ "\r", -1, NULL, NULL },
};

static void
test_cmd_split(void)
{
	char		 verb[SMTP_VERB_MAX];
	const char	*args;
	size_t		 i;
	int		 r;

	for (i = 0; i < NROWS(split_rows); i++) {
		const struct split_row	*row = &split_rows[i];

		r = smtp_cmd_split(row->input, verb, &args);
		CHECK_ROW(r == row->ret, row->input);
		if (r == -1)
			continue;
		CHECK_ROW(strcmp(verb, row->verb) == 0, row->input);
		CHECK_ROW(strcmp(args, row->args) == 0, row->input);
	}
}

struct mail_row {
	const char	*input;
	const char	*reply;		/* NULL: accepted */
	const char	*addr;		/* addr_format() of the sender */
	struct smtp_mail_params want;
};

static const struct mail_row mail_rows[] = {
	{ "FROM:<a@b>", NULL, "a@b", { 0 } },
	{ "from:<a@b>", NULL, "a@b", { 0 } },
	{ "FROM: <a@b>", NULL, "a@b", { 0 } },
	{ "FROM:  <a@b>", R_MAIL, NULL, { 0 } },
	{ "FROM:<>", NULL, "", { 0 } },
	{ "FROM:a@b", R_MAIL, NULL, { 0 } },
	{ "FROM <a@b>", R_MAIL, NULL, { 0 } },
	{ "TO:<a@b>", R_MAIL, NULL, { 0 } },
	{ "", R_MAIL, NULL, { 0 } },
	{ "FROM:<a@b>x", R_MAIL, NULL, { 0 } },
	{ "FROM:<a b@c>", R_FROM, NULL, { 0 } },
	{ "FROM:<a@b", R_FROM, NULL, { 0 } },
	{ "FROM:<a@[1.2.3]>", R_FROM, NULL, { 0 } },
	{ "FROM:<a@b> ", NULL, "a@b", { 0 } },
	{ "FROM:<\"a b\"@c>  SIZE=10  ", NULL, "\"a b\"@c",
	  { .has_size = true, .size = 10 } },
	/* SIZE */
	{ "FROM:<a@b> SIZE=0", NULL, "a@b", { .has_size = true } },
	{ "FROM:<a@b> size=12345", NULL, "a@b",
	  { .has_size = true, .size = 12345 } },
	{ "FROM:<a@b> SIZE=18446744073709551615", NULL, "a@b",
	  { .has_size = true, .size = UINT64_MAX } },
	{ "FROM:<a@b> SIZE=00000000000000000001", NULL, "a@b",
	  { .has_size = true, .size = 1 } },
	{ "FROM:<a@b> SIZE=18446744073709551616", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=99999999999999999999", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=000000000000000000001", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=-1", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=+1", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=1k", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE= 1", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=1 SIZE=2", R_DUP, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=1 size=1", R_DUP, NULL, { 0 } },
	/* BODY */
	{ "FROM:<a@b> BODY=7BIT", NULL, "a@b", { .body = BODY_7BIT } },
	{ "FROM:<a@b> BODY=8bitmime", NULL, "a@b", { .body = BODY_8BITMIME } },
	{ "FROM:<a@b> Body=BINARYMIME", NULL, "a@b",
	  { .body = BODY_BINARYMIME } },
	{ "FROM:<a@b> BODY=9BIT", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> BODY", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> BODY=7BIT BODY=7BIT", R_DUP, NULL, { 0 } },
	/* SMTPUTF8 */
	{ "FROM:<a@b> SMTPUTF8", NULL, "a@b", { .smtputf8 = true } },
	{ "FROM:<\xc3\xa9@b> SMTPUTF8", NULL, "\xc3\xa9@b",
	  { .smtputf8 = true } },
	{ "FROM:<a@\xc3\xa9.fr> smtputf8 BODY=8BITMIME", NULL, "a@\xc3\xa9.fr",
	  { .smtputf8 = true, .body = BODY_8BITMIME } },
	{ "FROM:<\xc3\xa9@b>", R_FROM, NULL, { 0 } },
	{ "FROM:<\xc3\xa9@b> SMTPUTF8=yes", R_PARAM, NULL, { 0 } },
	{ "FROM:<\xc3@b> SMTPUTF8", R_FROM, NULL, { 0 } },
	{ "FROM:<a@b> SMTPUTF8 SMTPUTF8", R_DUP, NULL, { 0 } },
	/* RET, ENVID, AUTH (RFC 3461, 4954) */
	{ "FROM:<a@b> RET=FULL", NULL, "a@b", { .ret = RET_FULL } },
	{ "FROM:<a@b> RET=hdrs", NULL, "a@b", { .ret = RET_HDRS } },
	{ "FROM:<a@b> RET=NONE", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> RET=FULL RET=HDRS", R_DUP, NULL, { 0 } },
	{ "FROM:<a@b> ENVID=QQ314159", NULL, "a@b", { .envid = "QQ314159" } },
	{ "FROM:<a@b> ENVID=a+2Bb+3d", NULL, "a@b", { .envid = "a+2Bb+3d" } },
	{ "FROM:<a@b> ENVID=a+2", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> ENVID=a+ZZ", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> ENVID=a+b", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> ENVID=a=b", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> ENVID=\xc3\xa9", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> ENVID=x ENVID=y", R_DUP, NULL, { 0 } },
	{ "FROM:<a@b> AUTH=<>", NULL, "a@b", { .auth = "<>" } },
	{ "FROM:<a@b> AUTH=e+3Dmc2@example.com", NULL, "a@b",
	  { .auth = "e+3Dmc2@example.com" } },
	{ "FROM:<a@b> AUTH=", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> AUTH", R_PARAM, NULL, { 0 } },
	/* all at once */
	{ "FROM:<a@b> SIZE=5 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=e AUTH=<>",
	  NULL, "a@b", { .has_size = true, .size = 5, .body = BODY_8BITMIME,
	  .smtputf8 = true, .ret = RET_HDRS, .envid = "e", .auth = "<>" } },
	/* unknown and malformed parameters */
	{ "FROM:<a@b> FOO=bar", R_UNSUP, NULL, { 0 } },
	{ "FROM:<a@b> FOO", R_UNSUP, NULL, { 0 } },
	{ "FROM:<a@b> X-FOO=1", R_UNSUP, NULL, { 0 } },
	{ "FROM:<a@b> NOTIFY=NEVER", R_UNSUP, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=1 FOO", R_UNSUP, NULL, { 0 } },
	{ "FROM:<a@b> -FOO", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> =1", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE==1", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SIZE=1\t", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> SI\rZE=1", R_PARAM, NULL, { 0 } },
	{ "FROM:<a@b> FOO=\x01", R_PARAM, NULL, { 0 } },
};

static bool
mail_params_eq(const struct smtp_mail_params *a,
    const struct smtp_mail_params *b)
{
	return a->has_size == b->has_size && a->size == b->size &&
	    a->body == b->body && a->smtputf8 == b->smtputf8 &&
	    a->ret == b->ret && strcmp(a->envid, b->envid) == 0 &&
	    strcmp(a->auth, b->auth) == 0;
}

static void
test_parse_mail(void)
{
	struct smtp_mail_params	 p;
	struct mailaddr		 from;
	const char		*reply;
	char			 buf[ADDR_PATH_MAX + 1];
	size_t			 i;
	int			 r;

	for (i = 0; i < NROWS(mail_rows); i++) {
		const struct mail_row	*row = &mail_rows[i];

		reply = NULL;
		r = smtp_parse_mail(row->input, &from, &p, &reply);
		CHECK_ROW(r == (row->reply ? -1 : 0), row->input);
		if (r == -1) {
			CHECK_ROW(reply != NULL &&
			    strcmp(reply, row->reply) == 0, row->input);
			continue;
		}
		CHECK_ROW(addr_format(&from, buf, sizeof(buf)) >= 0,
		    row->input);
		CHECK_ROW(strcmp(buf, row->addr) == 0, row->input);
		CHECK_ROW(mail_params_eq(&p, &row->want), row->input);
	}
}

static void
test_mail_long_values(void)
{
	struct smtp_mail_params	 p;
	struct mailaddr		 from;
	const char		*reply;
	char			 line[600];

	memcpy(line, "FROM:<a@b> ENVID=", 17);
	memset(line + 17, 'e', 100);
	line[117] = '\0';
	CHECK_INT(smtp_parse_mail(line, &from, &p, &reply), 0);
	CHECK_INT(strlen(p.envid), 100);
	memcpy(line + 117, "e", 2);
	CHECK_INT(smtp_parse_mail(line, &from, &p, &reply), -1);
	CHECK_STR(reply, R_PARAM);
	memcpy(line, "FROM:<a@b> AUTH=", 16);
	memset(line + 16, 'u', ADDR_PATH_MAX + 2);
	line[16 + ADDR_PATH_MAX + 2] = '\0';
	CHECK_INT(smtp_parse_mail(line, &from, &p, &reply), 0);
	memcpy(line + 16 + ADDR_PATH_MAX + 2, "u", 2);
	CHECK_INT(smtp_parse_mail(line, &from, &p, &reply), -1);
	CHECK_STR(reply, R_PARAM);
}

struct rcpt_row {
	const char	*input;
	bool		 smtputf8;
	const char	*reply;
	const char	*addr;
	unsigned int	 notify;
	const char	*orcpt;
};

static const struct rcpt_row rcpt_rows[] = {
	{ "TO:<a@b>", false, NULL, "a@b", 0, "" },
	{ "to: <A@B.>", false, NULL, "A@b", 0, "" },
	{ "TO:<Postmaster>", false, NULL, "postmaster", 0, "" },
	{ "TO:<@r.org:a@b>", false, NULL, "a@b", 0, "" },
	{ "TO:<>", false, R_TO, NULL, 0, NULL },
	{ "TO:a@b", false, R_RCPT, NULL, 0, NULL },
	{ "TO:", false, R_RCPT, NULL, 0, NULL },
	{ "FROM:<a@b>", false, R_RCPT, NULL, 0, NULL },
	{ "TO:<a@b>junk", false, R_RCPT, NULL, 0, NULL },
	{ "TO:<a@@b>", false, R_TO, NULL, 0, NULL },
	{ "TO:<\xc3\xa9@b>", false, R_TO, NULL, 0, NULL },
	{ "TO:<\xc3\xa9@b>", true, NULL, "\xc3\xa9@b", 0, "" },
	{ "TO:<a@b> NOTIFY=NEVER", false, NULL, "a@b", NOTIFY_NEVER, "" },
	{ "TO:<a@b> NOTIFY=success,FAILURE", false, NULL, "a@b",
	  NOTIFY_SUCCESS | NOTIFY_FAILURE, "" },
	{ "TO:<a@b> NOTIFY=DELAY", false, NULL, "a@b", NOTIFY_DELAY, "" },
	{ "TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY", false, NULL, "a@b",
	  NOTIFY_SUCCESS | NOTIFY_FAILURE | NOTIFY_DELAY, "" },
	{ "TO:<a@b> NOTIFY=NEVER,SUCCESS", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> NOTIFY=SUCCESS,", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> NOTIFY=,SUCCESS", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> NOTIFY=SOMETIMES", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> NOTIFY", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> NOTIFY=DELAY NOTIFY=NEVER", false, R_DUP, NULL, 0, NULL },
	{ "TO:<a@b> ORCPT=rfc822;a+40b", false, NULL, "a@b", 0,
	  "rfc822;a+40b" },
	{ "TO:<a@b> ORCPT=rfc822;a@b NOTIFY=NEVER", false, NULL, "a@b",
	  NOTIFY_NEVER, "rfc822;a@b" },
	{ "TO:<a@b> ORCPT=a@b", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> ORCPT=;a@b", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> ORCPT=rfc822;", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> ORCPT=rfc 822;a", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> ORCPT=rfc822;a+4", false, R_PARAM, NULL, 0, NULL },
	{ "TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;b", false, R_DUP, NULL, 0,
	  NULL },
	{ "TO:<a@b> SIZE=1", false, R_UNSUP, NULL, 0, NULL },
	{ "TO:<a@b> FOO", false, R_UNSUP, NULL, 0, NULL },
	{ "TO:<a@b> NOTIFY=NEVER FOO", false, R_UNSUP, NULL, 0, NULL },
	{ "TO:<a@b> =x", false, R_PARAM, NULL, 0, NULL },
};

static void
test_parse_rcpt(void)
{
	struct smtp_rcpt_params	 p;
	struct mailaddr		 to;
	const char		*reply;
	char			 buf[ADDR_PATH_MAX + 1];
	size_t			 i;
	int			 r;

	for (i = 0; i < NROWS(rcpt_rows); i++) {
		const struct rcpt_row	*row = &rcpt_rows[i];

		reply = NULL;
		r = smtp_parse_rcpt(row->input, row->smtputf8, &to, &p,
		    &reply);
		CHECK_ROW(r == (row->reply ? -1 : 0), row->input);
		if (r == -1) {
			CHECK_ROW(reply != NULL &&
			    strcmp(reply, row->reply) == 0, row->input);
			continue;
		}
		CHECK_ROW(addr_format(&to, buf, sizeof(buf)) >= 0, row->input);
		CHECK_ROW(strcmp(buf, row->addr) == 0, row->input);
		CHECK_ROW(p.notify == row->notify, row->input);
		CHECK_ROW(strcmp(p.orcpt, row->orcpt) == 0, row->input);
	}
}

struct bdat_row {
	const char	*input;
	int		 ret;
	uint64_t	 size;
	bool		 last;
};

static const struct bdat_row bdat_rows[] = {
	{ "0", 0, 0, false },
	{ "1000", 0, 1000, false },
	{ "1000 LAST", 0, 1000, true },
	{ "0 last", 0, 0, true },
	{ "12  Last  ", 0, 12, true },
	{ "12 ", 0, 12, false },
	{ "18446744073709551615 LAST", 0, UINT64_MAX, true },
	{ "18446744073709551616", -1, 0, false },
	{ "123456789012345678901", -1, 0, false },
	{ "", -1, 0, false },
	{ "LAST", -1, 0, false },
	{ "-1", -1, 0, false },
	{ "+1", -1, 0, false },
	{ "0x10", -1, 0, false },
	{ "10LAST", -1, 0, false },
	{ "10 LASTX", -1, 0, false },
	{ "10 LAST x", -1, 0, false },
	{ "10 FIRST", -1, 0, false },
	{ "10\tLAST", -1, 0, false },
	{ "10 10", -1, 0, false },
};

static void
test_parse_bdat(void)
{
	const char	*reply;
	uint64_t	 size;
	bool		 last;
	size_t		 i;
	int		 r;

	for (i = 0; i < NROWS(bdat_rows); i++) {
		const struct bdat_row	*row = &bdat_rows[i];

		reply = NULL;
		size = 42;
		last = false;
		r = smtp_parse_bdat(row->input, &size, &last, &reply);
		CHECK_ROW(r == row->ret, row->input);
		if (r == -1) {
			CHECK_ROW(reply != NULL && strcmp(reply, R_BDAT) == 0,
			    row->input);
			continue;
		}
		CHECK_ROW(size == row->size, row->input);
		CHECK_ROW(last == row->last, row->input);
	}
}

int
main(void)
{
	RUN(test_cmd_split);
	RUN(test_parse_mail);
	RUN(test_mail_long_values);
	RUN(test_parse_rcpt);
	RUN(test_parse_bdat);
	return test_done();
}

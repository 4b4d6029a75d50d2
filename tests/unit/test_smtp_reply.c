/*
 * test_smtp_reply.c - smtp_reply.c: replies as a client reads them,
 * line by line (codes, continuation, enhanced status, bounds, control
 * octets), and the keywords of an EHLO reply.
 */
#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

/* Feed the lines (NULL-terminated); the result of the last add. */
static int
feed(struct smtp_reply *r, const char *const *lines)
{
	int	res = -2;

	smtp_reply_init(r);
	for (; *lines != NULL; lines++)
		if ((res = smtp_reply_add(r, *lines, strlen(*lines))) != 0)
			break;
	return res;
}

static void
test_replies(void)
{
	static const struct {
		const char	*lines[5];
		int		 res;
		unsigned int	 code;
		const char	*text, *status;
	} rows[] = {
		{ { "250 2.1.0 Ok" }, 1, 250, "250 2.1.0 Ok", "2.1.0" },
		{ { "250 Ok" }, 1, 250, "250 Ok", "2.0.0" },
		{ { "250" }, 1, 250, "250", "2.0.0" },
		{ { "250 " }, 1, 250, "250", "2.0.0" },
		{ { "550-5.1.1 <a@b>: Recipient address rejected:",
		    "550 5.1.1 User unknown" }, 1, 550,
		    "550 5.1.1 <a@b>: Recipient address rejected: 5.1.1 User "
		    "unknown", "5.1.1" },
		{ { "220-first", "220-", "220 last" }, 1, 220,
		    "220 first last", "2.0.0" },
		/* a status of another class is no status */
		{ { "550 2.1.0 odd" }, 1, 550, "550 2.1.0 odd", "5.0.0" },
		{ { "421 4.7.0 Try later" }, 1, 421, "421 4.7.0 Try later",
		    "4.7.0" },
		{ { "451 4.3.0x" }, 1, 451, "451 4.3.0x", "4.0.0" },
		/* control octets never reach the text */
		{ { "550 a\tb\x01" "c" }, 1, 550, "550 a b c", "5.0.0" },
		{ { "250-a", "251 b" }, -1, 250, NULL, NULL },
		{ { "25 Ok" }, -1, 0, NULL, NULL },
		{ { "2500 Ok" }, -1, 0, NULL, NULL },
		{ { "199 Ok" }, -1, 0, NULL, NULL },
		{ { "600 Ok" }, -1, 0, NULL, NULL },
		{ { "abc Ok" }, -1, 0, NULL, NULL },
		{ { "" }, -1, 0, NULL, NULL },
		{ { "250-more" }, 0, 250, NULL, NULL },
	};
	struct smtp_reply	r;
	size_t			i;

	for (i = 0; i < NROWS(rows); i++) {
		int res = feed(&r, rows[i].lines);

		CHECK_ROW(res == rows[i].res, rows[i].lines[0]);
		if (rows[i].res == 1) {
			CHECK_ROW(r.code == rows[i].code, rows[i].lines[0]);
			CHECK_ROW(strcmp(r.text, rows[i].text) == 0,
			    rows[i].lines[0]);
			CHECK_ROW(strcmp(r.status, rows[i].status) == 0,
			    rows[i].lines[0]);
			if (strcmp(r.text, rows[i].text) != 0)
				printf("  got \"%s\"\n", r.text);
		}
	}
}

static void
test_bounds(void)
{
	struct smtp_reply	r;
	char			line[2000];
	unsigned int		i;

	/* SMTP_REPLY_LINES_MAX lines at most */
	smtp_reply_init(&r);
	for (i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		CHECK_INT(smtp_reply_add(&r, "250-x", 5), 0);
	CHECK_INT(smtp_reply_add(&r, "250 x", 5), -1);
	/* the text is cut, never overrun */
	memset(line, 'a', sizeof(line));
	memcpy(line, "554 ", 4);
	smtp_reply_init(&r);
	CHECK_INT(smtp_reply_add(&r, line, sizeof(line)), 1);
	CHECK_INT(r.len, SMTP_REPLY_TEXT_MAX - 1);
	CHECK_INT(strlen(r.text), SMTP_REPLY_TEXT_MAX - 1);
	CHECK_STR(r.status, "5.0.0");
}

static void
test_ehlo(void)
{
	static const char *const lines[] = {
		"PIPELINING", "SIZE 10240000", "8BITMIME", "STARTTLS",
		"AUTH=LOGIN", "AUTH CRAM-MD5 PLAIN", "SMTPUTF8", "CHUNKING",
		"BINARYMIME",
	};
	struct smtp_ehlo	e;
	size_t			i;

	smtp_ehlo_init(&e);
	for (i = 0; i < NROWS(lines); i++)
		smtp_ehlo_keyword(&e, lines[i], strlen(lines[i]));
	CHECK(e.pipelining && e.eightbit && e.starttls && e.smtputf8 &&
	    e.chunking && e.binarymime && e.auth_plain && e.auth_login &&
	    e.has_size);
	CHECK(e.size_max == 10240000);

	/* prefixes of keywords are not keywords; AUTH tokens whole */
	smtp_ehlo_init(&e);
	smtp_ehlo_keyword(&e, "PIPELININGX", 11);
	smtp_ehlo_keyword(&e, "STARTTLSX", 9);
	smtp_ehlo_keyword(&e, "AUTH PLAINX LOGINS XPLAIN", 25);
	smtp_ehlo_keyword(&e, "SIZE", 4);
	CHECK(!e.pipelining && !e.starttls && !e.auth_plain && !e.auth_login);
	CHECK(e.has_size && e.size_max == 0);
	/* an absurd SIZE means no known limit */
	smtp_ehlo_keyword(&e, "SIZE 99999999999999999999999", 27);
	CHECK(e.size_max == 0);
	smtp_ehlo_keyword(&e, "size 5", 6);
	CHECK(e.size_max == 5);
}

int
main(void)
{
	RUN(test_replies);
	RUN(test_bounds);
	RUN(test_ehlo);
	return test_done();
}

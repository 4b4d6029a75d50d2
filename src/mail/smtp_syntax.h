/*
 * smtp_syntax.h - parsing of SMTP command lines and of the MAIL / RCPT
 * parameters (RFC 5321, 1870, 6152, 3030, 6531, 3461).
 *
 * Pure functions over one command line that the session has already
 * bounded (<= line_max) and stripped of its CRLF.
 */
#ifndef MAIL_SMTP_SYNTAX_H
#define MAIL_SMTP_SYNTAX_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"

#define SMTP_VERB_MAX	16

/*
 * Split a command line into verb (upper-cased into verb_r, at most
 * SMTP_VERB_MAX-1 chars) and argument.  "MAIL FROM:<a>" gives verb
 * "MAIL" and *args_r pointing at "FROM:<a>"; the argument starts after
 * exactly the spaces that follow the verb, and is "" when absent.
 * Returns 0, or -1 when the verb is empty, too long or holds anything
 * but letters.
 */
int	smtp_cmd_split(const char *line, char verb_r[SMTP_VERB_MAX],
	    const char **args_r);

enum smtp_body { BODY_7BIT, BODY_8BITMIME, BODY_BINARYMIME };
enum smtp_ret { RET_NONE, RET_FULL, RET_HDRS };

struct smtp_mail_params {
	bool		has_size;
	uint64_t	size;		/* SIZE=, RFC 1870 */
	enum smtp_body	body;		/* BODY=, RFC 6152 / 3030 */
	bool		smtputf8;	/* SMTPUTF8, RFC 6531 */
	enum smtp_ret	ret;		/* RET=, RFC 3461 */
	char		envid[101];	/* ENVID=, xtext kept encoded */
	char		auth[ADDR_PATH_MAX + 3]; /* AUTH=, RFC 4954, encoded */
};

#define NOTIFY_NEVER	0x01
#define NOTIFY_SUCCESS	0x02
#define NOTIFY_FAILURE	0x04
#define NOTIFY_DELAY	0x08

struct smtp_rcpt_params {
	unsigned int	notify;		/* NOTIFY=, 0 when absent */
	char		orcpt[ADDR_PATH_MAX + 12]; /* ORCPT=, encoded */
};

/*
 * Parse the argument of MAIL ("FROM:<path> params").  "FROM:" is matched
 * case-insensitively and a single space after the colon is tolerated, as
 * real clients send it.  The path is parsed with UTF-8 allowed only when
 * the SMTPUTF8 parameter is present.  On error returns -1 and sets
 * *reply_r to the complete SMTP reply (static), one of
 *   "501 5.5.4 Syntax: MAIL FROM:<address>"
 *   "553 5.1.7 Bad sender address syntax"
 *   "501 5.5.4 Invalid parameter syntax"
 *   "555 5.5.4 Unsupported parameter"
 *   "501 5.5.4 Duplicate parameter"
 */
int	smtp_parse_mail(const char *args, struct mailaddr *from,
	    struct smtp_mail_params *p, const char **reply_r);

/*
 * Parse the argument of RCPT ("TO:<path> params"); with smtputf8 the
 * path may hold UTF-8.  The null path is refused.  Replies on error:
 *   "501 5.5.4 Syntax: RCPT TO:<address>"
 *   "553 5.1.3 Bad recipient address syntax"
 *   "501 5.5.4 Invalid parameter syntax"
 *   "555 5.5.4 Unsupported parameter"
 *   "501 5.5.4 Duplicate parameter"
 */
int	smtp_parse_rcpt(const char *args, bool smtputf8, struct mailaddr *to,
	    struct smtp_rcpt_params *p, const char **reply_r);

/*
 * Parse the argument of BDAT: "SIZE [LAST]".  Returns 0 with *size_r and
 * *last_r, or -1 with *reply_r = "501 5.5.4 Syntax: BDAT size [LAST]".
 */
int	smtp_parse_bdat(const char *args, uint64_t *size_r, bool *last_r,
	    const char **reply_r);

#endif

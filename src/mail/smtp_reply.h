/*
 * smtp_reply.h - replies of an SMTP or LMTP server, as a client reads
 * them (RFC 5321 4.2, 4.2.1; RFC 3463 enhanced status codes), and the
 * keywords of an EHLO/LHLO reply.
 *
 * Input comes from the network: a line is at most what the caller read
 * (it bounds its own line length), a reply at most SMTP_REPLY_LINES_MAX
 * lines, and the text kept of it SMTP_REPLY_TEXT_MAX octets, with every
 * control octet made a space.  Pure functions, no allocation.
 */
#ifndef MAIL_SMTP_REPLY_H
#define MAIL_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_TEXT_MAX	512
#define SMTP_REPLY_LINES_MAX	64

struct smtp_reply {
	unsigned int	code;		/* 200..599 once a line is in */
	unsigned int	lines;
	/* "550 5.1.1 first line second line": the code once, then the
	 * text of each line after its "ddd-", joined by a space */
	char		text[SMTP_REPLY_TEXT_MAX];
	size_t		len;
	/* "5.1.1" when the first line has one of the code's class, else
	 * "5.0.0" (complete replies only) */
	char		status[16];
};

/* What a server's EHLO (or LHLO) reply offers. */
struct smtp_ehlo {
	bool		pipelining, starttls, eightbit, smtputf8, chunking;
	bool		binarymime;
	bool		auth_plain, auth_login;
	bool		has_size;
	uint64_t	size_max;	/* 0: no limit given */
};

void	smtp_reply_init(struct smtp_reply *);

/*
 * Add one line of a reply, its CRLF removed.  Returns 1 when it was the
 * last line (r is complete), 0 when more lines follow, -1 when the line
 * is malformed: not "ddd", "ddd text" or "ddd-text" with ddd from 200
 * to 599, another code than the lines before, or one line too many.
 */
int	smtp_reply_add(struct smtp_reply *r, const char *line, size_t len);

/* Clear e, then take the keyword of each line of an EHLO reply given
 * (its text after "250-" or "250 "), the first line being the name. */
void	smtp_ehlo_init(struct smtp_ehlo *e);
void	smtp_ehlo_keyword(struct smtp_ehlo *e, const char *kw, size_t len);

#endif

/*
 * dsn.h - delivery status notifications: the multipart/report message
 * (RFC 6522, RFC 3464) the queue sends to a message's envelope sender
 * when delivery to some recipients failed (a non-delivery report) or is
 * still being retried after hours (a delay notice).  Modelled on what
 * Postfix's bounce daemon writes.
 *
 * Pure formatting, no I/O.  Every string in struct dsn may come from the
 * network (the diagnostic and the recipient above all) and is trusted for
 * nothing: control octets and non-ASCII in fields become '?', each field
 * has a fixed bound and is cut to it, and no output line is longer than
 * DSN_LINE_MAX octets.  The quoted header section keeps its octets, 8-bit
 * included, but gets CRLF line ends and is cut at a line end.
 */
#ifndef MAIL_DSN_H
#define MAIL_DSN_H

#include <stddef.h>
#include <time.h>

#define DSN_LINE_MAX		998	/* RFC 5322 2.1.1, CRLF excluded */
#define DSN_FIELD_MAX		256	/* a host, address, queue id, status */
#define DSN_TOKEN_MAX		40	/* of random, in the boundary */
#define DSN_DIAG_LINE_MAX	512	/* one line of a diagnostic */
#define DSN_DIAG_MAX		4096	/* a whole diagnostic, "\n"s included */
#define DSN_HEADERS_MAX		65536	/* the quoted header section */

enum dsn_action { DSN_FAILED, DSN_DELAYED };

struct dsn_rcpt {
	const char	*rcpt;		/* as given in RCPT TO, without <> */
	enum dsn_action	 action;
	const char	*status;	/* "5.1.1"; bad: 5.0.0 or 4.0.0 */
	const char	*remote_mta;	/* "mx.example.org"; NULL: none */
	/*
	 * The remote server's reply as received ("550 5.1.1 <a@b>: Recipient
	 * address rejected"), its lines joined with "\n"; or postino's own
	 * text; or NULL.
	 */
	const char	*diagnostic;
	time_t		 last_attempt;	/* 0: never tried (no field) */
};

struct dsn {
	const char	*reporting_mta;	/* our hostname; NULL: "localhost" */
	const char	*qid;		/* queue id of the original */
	const char	*from;		/* original envelope sender, our To: */
	time_t		 arrival;	/* when it was queued; 0: unknown */
	time_t		 now;		/* the report's Date: */
	unsigned int	 retry_days;	/* how long a delayed one is retried */
	const struct dsn_rcpt *rcpts;
	size_t		 nrcpt;		/* RFC 3464 wants at least one */
	/* The original's header section: lines up to, not including, the
	 * empty line (dsn_header_length() finds it).  NULL: none. */
	const char	*headers;
	size_t		 headers_len;
	/* A unique token for the MIME boundary and the Message-ID, such as
	 * qid + "." + time: [A-Za-z0-9._-] are kept, other octets become
	 * '_'. */
	const char	*random;
};

/*
 * The whole report message with CRLF line ends, ready for the queue.
 * Subject "Undelivered Mail Returned to Sender" if any recipient failed,
 * else "Delayed Mail (still being retried)".  Part 1 explains in text,
 * part 2 is the message/delivery-status, part 3 the text/rfc822-headers
 * of the original (header section cut to DSN_HEADERS_MAX at a line end,
 * and at an empty line if there is one).  The boundary is "=_postino_"
 * plus the token, altered until it occurs in none of the parts.  When
 * the quoted headers hold 8-bit octets the message says
 * "Content-Transfer-Encoding: 8bit" and must be sent as BODY=8BITMIME.
 * An empty from gives "To: undisclosed-recipients:;" (a bounce of a
 * bounce should go to the failed-mail account instead).
 * The queue sends it with the null reverse-path, so that it is never
 * bounced itself (RFC 3464 2, RFC 5321 4.5.5).
 * Returns a malloc'ed buffer (NUL-terminated, the NUL not counted in
 * *len_r) that the caller frees; never NULL: out of memory is fatal().
 * Panics on an action that is not a dsn_action.
 */
char	*dsn_format(const struct dsn *, size_t *len_r);

/*
 * The length of msg's header section: the octets before the first empty
 * line, where a line ends in CRLF or LF (so CRLF CRLF, LF LF and mixes
 * end it); len when there is no empty line, 0 when msg begins with one.
 */
size_t	 dsn_header_length(const char *msg, size_t len);

#endif

/*
 * pop3_syntax.h - the POP3 command line (RFC 1939 3, RFC 2449 4) and the
 * message stream a RETR or TOP sends (RFC 1939 3: CRLF line ends, a
 * leading "." doubled, ".CRLF" at the end).
 *
 * Pure code, no I/O and no allocation: the net role runs the parsers on
 * what a client sends, and the stream transformer on the bytes of a
 * Maildir file store opened; the store role counts a message's POP3
 * size with pop3_vsize_feed() when the Maildir does not say it.
 */
#ifndef MAIL_POP3_SYNTAX_H
#define MAIL_POP3_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POP3_VERB_MAX	8	/* "CAPA", "STLS": 4 letters; room for junk */

/*
 * Split a command line (CRLF removed, NUL-terminated): the keyword,
 * upper-cased, into verb (POP3_VERB_MAX + 1 octets), and *args_r to the
 * rest after the spaces that follow it ("" when none).  Returns 0, or -1
 * when the line is empty, the keyword is not 1 to POP3_VERB_MAX letters
 * followed by a space or the end, or the line holds a control octet.
 * *args_r points into line.
 */
int	pop3_cmd_split(const char *line, char verb[POP3_VERB_MAX + 1],
	    const char **args_r);

/*
 * A message number (RFC 1939 5: decimal, no sign, 1..max): the whole of
 * arg, with no spaces around it.  Leading zeros are allowed, but not
 * more than 10 digits in all.  Returns 0 with *n_r, or -1.
 */
int	pop3_parse_msgno(const char *arg, uint32_t max, uint32_t *n_r);

/*
 * TOP's arguments: "msg n", separated by one or more spaces, msg as
 * pop3_parse_msgno(), n a decimal line count (0 allowed, at most
 * 999999999).  Spaces after n are tolerated, nothing else is.  Returns
 * 0 with *msg_r and *lines_r, or -1.
 */
int	pop3_parse_top(const char *args, uint32_t max, uint32_t *msg_r,
	    uint64_t *lines_r);

/*
 * The size of a message as POP3 reports it (RFC 1939 11: octets as
 * sent, CRLF line ends): its octets, plus one for each LF not preceded
 * by a CR.  Feed the file's octets in order, in pieces of any size.
 */
struct pop3_vsize {
	uint64_t	n;	/* the size so far */
	bool		cr;	/* private: the last octet was a CR */
};
void	pop3_vsize_init(struct pop3_vsize *);
void	pop3_vsize_feed(struct pop3_vsize *, const uint8_t *p, size_t len);

/*
 * The stream of a RETR (all of the message) or a TOP (the header
 * section, the empty line after it, and at most body_lines lines of the
 * body): every LF not preceded by a CR becomes CRLF, a "." at the start
 * of a line is doubled, and pop3_stuff_end() ends the stream with
 * ".CRLF" (after a CRLF of its own when the message does not end with
 * one).  Without stuffing and the end, a RETR sends exactly the
 * pop3_vsize of the message.  A message with no empty line is all
 * header: TOP sends it whole.
 *
 * pop3_stuff_feed() passes the octets to send to out, in runs (never
 * octet by octet), and returns true once a TOP has sent all it will:
 * the caller may stop reading the file then, and octets fed after that
 * are ignored.  The state holds no buffer; memory stays fixed whatever
 * the message.
 *
 * Only LF is normalized: a CR not followed by LF is sent as it is.  The
 * header section ends at its first empty line, CRLF or a bare LF alone.
 * pop3_stuff_end() is called once, after the last feed (or once feed
 * returned true); the state is spent after it until the next init.
 */
typedef void (*pop3_out_cb)(void *arg, const uint8_t *p, size_t len);

struct pop3_stuff {
	/* private */
	int		state;
	bool		top;
	bool		in_body;
	bool		done;
	uint64_t	lines_left;
	/* results */
	uint64_t	in_len;		/* octets consumed, not those ignored */
	uint64_t	out_len;	/* octets passed to out, dots and end */
};

void	pop3_stuff_init(struct pop3_stuff *, bool top, uint64_t body_lines);
bool	pop3_stuff_feed(struct pop3_stuff *, const uint8_t *p, size_t len,
	    pop3_out_cb out, void *arg);
void	pop3_stuff_end(struct pop3_stuff *, pop3_out_cb out, void *arg);

#endif

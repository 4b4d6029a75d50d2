/*
 * smtp_data.h - the DATA stream: end-of-data detection, dot-unstuffing,
 * bare CR / bare LF detection (SMTP smuggling, R1.5), line and header
 * bounds (R1.4) and the Received: count for the hop limit (R3.12).
 *
 * A byte-wise state machine: it holds no buffer, so memory stays fixed
 * whatever the client sends.  Only "<CRLF>.<CRLF>" ends the data; the
 * stream is taken to start at the beginning of a line, right after the
 * 354 reply, so a first line "." + CRLF ends an empty message.  A line
 * that starts after a bare CR or bare LF is not at a true line start: a
 * dot there is plain data (neither stuffing nor an end), normalize or
 * not.  Lines are counted in input octets up to each LF; a line_max or
 * header_max of 0 means no bound.
 */
#ifndef MAIL_SMTP_DATA_H
#define MAIL_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* smtp_data.flags: what went wrong; the caller decides the reply. */
#define DATA_F_BARE_LF		0x01	/* LF not preceded by CR */
#define DATA_F_BARE_CR		0x02	/* CR not followed by LF */
#define DATA_F_LONG_LINE	0x04	/* a line over line_max octets */
#define DATA_F_LONG_HEADER	0x08	/* header section over header_max */
#define DATA_F_NUL		0x10	/* a NUL octet (noted, not refused) */

struct header_scan {
	/* private */
	int		state;
	size_t		col;
	char		name[10];
	/* results */
	size_t		header_len;	/* octets of the header section so far */
	unsigned int	received;	/* "Received:" fields seen */
	bool		done;		/* the empty line was seen */
	bool		too_long;	/* header_len went past max */
};

struct smtp_data {
	/* configuration, set before the first feed */
	size_t		line_max;	/* octets per line, CRLF included: 1000 */
	size_t		header_max;	/* octets of the header section */
	bool		normalize;	/* bare CR/LF become CRLF (else flagged) */
	/* private */
	int		state;
	size_t		col;
	struct header_scan hdr;
	/* results */
	unsigned int	flags;
	uint64_t	out_len;	/* octets emitted so far */
};

typedef void (*smtp_data_out_cb)(void *arg, const uint8_t *p, size_t len);

/* Reset for a new message; keeps line_max, header_max and normalize. */
void	smtp_data_init(struct smtp_data *d, size_t line_max,
	    size_t header_max, bool normalize);

/*
 * Feed len octets.  The unstuffed message (CRLF line ends; with
 * normalize, bare CR and bare LF rewritten to CRLF) is passed to out in
 * pieces.  Returns the number of octets consumed: all of them, or fewer
 * when the end of data was reached, in which case *done_r is set and the
 * rest of the input (pipelined commands) belongs to the session.
 * Flags accumulate in d->flags; the stream is consumed to its end
 * whatever they say, so that the reply comes after the whole message.
 * The received count and header size are in d->hdr.
 */
size_t	smtp_data_feed(struct smtp_data *d, const uint8_t *in, size_t len,
	    bool *done_r, smtp_data_out_cb out, void *arg);

/*
 * Scan raw message octets (BDAT, or anything already unstuffed) for the
 * header section: counts Received: fields and the header size.
 */
void	header_scan_init(struct header_scan *h);
void	header_scan_feed(struct header_scan *h, size_t header_max,
	    const uint8_t *p, size_t len);

#endif

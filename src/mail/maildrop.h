/*
 * maildrop.h - the drop file that sendmail(1) leaves in <data_dir>/maildrop/
 * for the store role to pick up (Postfix postdrop -> maildrop/ -> pickup;
 * OpenSMTPD enqueue).  Both sides of the format, plus the helpers the
 * sendmail command needs to make one: CRLF conversion and the address
 * lists of To:, Cc: and Bcc: for -t.
 *
 * A drop file is an envelope of text lines, each ended by one LF, then an
 * empty line, then the message with CRLF line endings:
 *
 *	postino-maildrop 1
 *	sender alice@example.org	(empty after the space: "<>")
 *	uid 1000			(informational, see below)
 *	rcpt bob@example.net		(1 to MAILDROP_RCPT_MAX lines)
 *	rcpt carol@example.com
 *					(the empty line)
 *	Subject: hi<CR><LF> ...		(the message, from body_off on)
 *
 * Any local user can write such a file, so the reader trusts nothing in
 * it: the uid line is only what sendmail claimed, the owner of the file
 * (st_uid) is the submitter.  Pure code: no allocation, no I/O.
 */
#ifndef MAIL_MAILDROP_H
#define MAIL_MAILDROP_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define MAILDROP_DIR		"maildrop"	/* under data_dir, mode 1733 */
#define MAILDROP_MAGIC		"postino-maildrop 1"
#define MAILDROP_RCPT_MAX	1000		/* rcpt lines in one file */
#define MAILDROP_ENV_MAX	(256 * 1024)	/* octets up to the body */
#define MAILDROP_NAME_LEN	16		/* hex digits of a file name */

struct maildrop_env {
	struct mailaddr	 sender;	/* ADDR_F_NULL for "<>" */
	uid_t		 uid;		/* as claimed by the writer */
	bool		 utf8;		/* an address has ADDR_F_UTF8 */
	size_t		 nrcpts;	/* 1..MAILDROP_RCPT_MAX */
	struct mailaddr	 rcpts[MAILDROP_RCPT_MAX];
};

/*
 * Parse the envelope at the start of a drop file.  p may hold the whole
 * file or only its first MAILDROP_ENV_MAX octets (or more): the envelope
 * must end within them.  Addresses are parsed with addr_parse(), UTF-8
 * allowed; duplicates are kept.  env is large (about 330 KiB): allocate
 * it.  On success returns 0, fills env and sets *body_off_r to the offset
 * of the message's first octet (the message itself is not looked at).
 * On error returns -1 and sets *errstr_r to a static text; env is then
 * zeroed.
 */
int	maildrop_parse(const uint8_t *p, size_t len, struct maildrop_env *env,
	    size_t *body_off_r, const char **errstr_r);

/*
 * Write the envelope of env, its empty line included, into buf as text
 * that maildrop_parse() reads back to the same envelope.  Returns 0 and
 * sets *len_r (buf is then NUL-terminated), or -1 with *errstr_r when env
 * is invalid (no recipient, too many, a NULL recipient) or buf is too
 * small; a buffer of MAILDROP_ENV_MAX octets always suffices.
 */
int	maildrop_env_format(const struct maildrop_env *env, char *buf,
	    size_t size, size_t *len_r, const char **errstr_r);

/* True if name is the name of a complete drop file: MAILDROP_NAME_LEN
 * lower-case hex digits.  Temporary files begin with a dot. */
bool	maildrop_name_valid(const char *name);

/*
 * Streaming conversion of line endings to CRLF: LF -> CRLF, CRLF kept,
 * a bare CR -> CRLF.  State carries across calls, so the input may be cut
 * anywhere.  maildrop_crlf() writes at most MAILDROP_CRLF_OUT(len) octets
 * to out and returns how many.  maildrop_crlf_end() finishes the message:
 * it writes a pending CR's LF, or a final CRLF when the message does not
 * end with one (nothing for an empty message), at most 2 octets; it
 * returns how many.  Dots are not touched: this is not SMTP.
 */
struct maildrop_crlf {
	bool		 cr;		/* the last input octet was CR */
	bool		 bol;		/* nothing written since the last LF */
};
#define MAILDROP_CRLF_OUT(len)	(2 * (len) + 2)	/* UNSAFE: len <= 1 MiB */

void	maildrop_crlf_init(struct maildrop_crlf *st);
size_t	maildrop_crlf(struct maildrop_crlf *st, const uint8_t *in, size_t len,
	    uint8_t *out);
size_t	maildrop_crlf_end(struct maildrop_crlf *st, uint8_t *out);

/*
 * Called for each address found by maildrop_addr_list(): addr is the
 * addr-spec as written, display name, comments and folding removed, NUL
 * terminated, valid only during the call.  It may lack "@domain"; it is
 * not checked otherwise (use addr_parse).  Return 0 to go on, or -1 with
 * *errstr_r set to stop.
 */
typedef int	(*maildrop_addr_cb)(void *arg, const char *addr,
		    const char **errstr_r);

/*
 * Parse an RFC 5322 address-list (the value of a To: field, or one
 * command line argument): mailboxes "a@b", "Name <a@b>", "\"x, y\" <a@b>",
 * comments, and groups "name: a@b, c@d;" whose members are reported as
 * addresses ("undisclosed-recipients:;" yields none).  Line breaks count
 * as white space, so a folded value may be passed as is.  Empty list
 * elements are skipped.  Returns 0, or -1 with *errstr_r on a malformed
 * list (unterminated quote, comment or '<', a control octet, an address
 * longer than ADDR_PATH_MAX * 2) or when cb fails.
 */
int	maildrop_addr_list(const uint8_t *p, size_t len, maildrop_addr_cb cb,
	    void *arg, const char **errstr_r);

/*
 * Find the To:, Cc: and Bcc: fields of a header section (lines ended by
 * LF or CRLF, folded lines allowed; an empty line ends it) and pass their
 * addresses to cb, as maildrop_addr_list() does.  Returns 0, or -1 with
 * *errstr_r.
 */
int	maildrop_header_addrs(const uint8_t *hdr, size_t len,
	    maildrop_addr_cb cb, void *arg, const char **errstr_r);

/*
 * Remove every field called name (case-insensitive, with its folded
 * lines) from the header section hdr, in place.  Returns the new length.
 */
size_t	maildrop_header_strip(uint8_t *hdr, size_t len, const char *name);

#endif

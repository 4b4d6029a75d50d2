/*
 * clamd_reply.h - what clamd answers to a z-command such as zINSTREAM
 * (clamd(8)): "stream: OK", "stream: <virus name> FOUND", or a text
 * ending in "ERROR" ("INSTREAM size limit exceeded. ERROR").
 *
 * Input comes from a peer: only the octets before the first NUL or LF
 * are read, and the text kept of them (a virus name, or why the scan
 * failed) is printable ASCII, every other octet made '?', and at most
 * CLAMD_TEXT_MAX octets, so it may go into an SMTP reply and a log line
 * as it is.  Pure functions, no allocation.
 */
#ifndef MAIL_CLAMD_REPLY_H
#define MAIL_CLAMD_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define CLAMD_NAME_MAX	100	/* octets of a virus name kept */
#define CLAMD_TEXT_MAX	200	/* octets of any text kept */

enum clamd_verdict {
	CLAMD_CLEAN,
	CLAMD_INFECTED,		/* text: the virus name, never empty */
	CLAMD_FAILED,		/* text: why, never empty */
};

struct clamd_reply {
	enum clamd_verdict	verdict;
	char			text[CLAMD_TEXT_MAX + 1];
};

/*
 * Read clamd's reply in buf (len octets, the terminating NUL included
 * or not).  Anything but "stream: OK" or a "stream: NAME FOUND" whose
 * name has a printable octet is CLAMD_FAILED, with clamd's text (less
 * " ERROR") or the unexpected reply quoted.  A "(hash:size)" that
 * clamd's ExtendedDetectionInfo appends to a name is left out.
 */
void	clamd_reply_parse(const uint8_t *buf, size_t len,
	    struct clamd_reply *r);

/*
 * Copy len octets of src into dst (size octets, at least 1) as printable
 * ASCII, each other octet made '?', cut to size - 1; NUL-terminated.
 * Returns the length written.  Idempotent: net runs it again over the
 * name store sends.
 */
size_t	clamd_text_clean(char *dst, size_t size, const void *src, size_t len);

#endif

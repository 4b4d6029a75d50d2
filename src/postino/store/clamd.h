/*
 * clamd.h - a blocking client of clamd's INSTREAM command (R4.5), for
 * a worker thread of the store role: store owns the spool file and can
 * reach clamd's socket, which net's chroot cannot.
 *
 * Every wait is bounded by timeout_ms: the connect, each write (until
 * clamd has read enough for the next one to go), and the reply after
 * the last chunk (clamd scans then).  Nothing here touches the event
 * loop or logs; the outcome is a struct clamd_reply (mail/clamd_reply.h).
 */
#ifndef STORE_CLAMD_H
#define STORE_CLAMD_H

#include "clamd_reply.h"

#define CLAMD_CHUNK	65536	/* octets of message in one INSTREAM chunk */
#define CLAMD_REPLY_MAX	1024	/* octets of clamd's reply read */

/*
 * Connect to clamd at addr: a unix socket path ("/run/clamav/clamd.ctl",
 * or "unix:" and a path), else HOST:PORT or [ADDR]:PORT (a name is
 * resolved here, blocking).  Returns a connected socket, or -1 with a
 * one-line reason in err.
 */
int	clamd_connect(const char *addr, int timeout_ms, char *err,
	    size_t errlen);

/*
 * Send every octet of fd (read with pread from offset 0 to its end) to
 * clamd over sock with zINSTREAM: 4-octet big-endian chunk lengths, a
 * zero-length chunk to end; then read the reply.  Returns 0 when clamd
 * answered (r says what; CLAMD_FAILED for its "... ERROR"), -1 when the
 * exchange failed (r->verdict is CLAMD_FAILED and r->text says why: a
 * timeout, a closed connection, a read error of fd).  A reply that
 * comes early, as clamd's "INSTREAM size limit exceeded. ERROR" does
 * before it closes the connection, ends the sending.  Does not close
 * sock; the blocking mode of sock does not matter.
 */
int	clamd_instream(int sock, int fd, int timeout_ms,
	    struct clamd_reply *r);

/* clamd_connect, clamd_instream, close: r is always filled in. */
void	clamd_scan(const char *addr, int fd, int timeout_ms,
	    struct clamd_reply *r);

#endif

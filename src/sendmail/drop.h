/*
 * drop.h - writing one drop file (format in maildrop.h) into
 * <data_dir>/maildrop/, for both modes of sendmail(1): one file for a
 * run that reads a message, one file for each transaction of -bs.
 *
 * The file is made as ".tmp.<random>" with O_EXCL, gets the envelope
 * and the message (line ends converted to CRLF, counted against
 * max_message_size), then fsync, a checked close and a rename to a
 * random name that never replaces another file.  At most one drop file
 * is written at a time in the process; its temporary path is kept for
 * drop_tmp_unlink(), which a signal handler may call.
 */
#ifndef SENDMAIL_DROP_H
#define SENDMAIL_DROP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "maildrop.h"

#define DROP_IN_MAX	(64 * 1024)	/* octets converted at once */
#define DROP_OUT_MAX	(256 * 1024)	/* written to the file at once */

/* A drop file being written.  Large (over 256 KiB): make it static. */
struct drop {
	/* results */
	char		 name[MAILDROP_NAME_LEN + 1];	/* after commit */
	int		 status;	/* sysexits.h value of the failure, 0 */
	int		 errnum;	/* errno of a write failure, else 0 */
	char		 err[PATH_MAX + 256];	/* one line, for stderr */
	/* private */
	char		 dir[PATH_MAX];
	bool		 active;	/* fd is open, the file exists */
	int		 fd;
	uint8_t		 buf[DROP_OUT_MAX];
	size_t		 len;
	uint64_t	 msg_size, msg_max;	/* msg_max 0: no limit */
	struct maildrop_crlf crlf;
};

/*
 * Create the temporary file in conf's drop directory and write env's
 * envelope into it.  Returns 0, or -1 with d->status, d->errnum and
 * d->err set; no file is then left behind.
 */
int	drop_open(struct drop *d, const struct conf *conf,
	    const struct maildrop_env *env);

/*
 * Append message octets, in any pieces.  After a failure (a write error,
 * or more than max_message_size octets: status EX_DATAERR) the rest is
 * ignored and d->status says why; the caller may stop or go on reading.
 */
void	drop_put(struct drop *d, const uint8_t *p, size_t n);

/*
 * Finish the message, make it durable and give the file its final name
 * (in d->name).  Returns 0, or -1 with d->status, d->errnum and d->err
 * (also when drop_put failed before); the file is then removed.
 */
int	drop_commit(struct drop *d);

/* Give up the file being written, if any. */
void	drop_abort(struct drop *d);

/* Remove the temporary file, if any: async-signal-safe. */
void	drop_tmp_unlink(void);

#endif

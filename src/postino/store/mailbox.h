/*
 * mailbox.h - a Maildir as a POP3 session sees it (R6.1), in the store
 * role's worker threads.
 *
 * Opening a mailbox takes its lock (flock(2) on the Maildir directory:
 * one POP3 session at a time, released by mailbox_close() or when the
 * process dies), moves new/ into cur/ with an empty ":2," info, and
 * gives every message a UID that stays the same across sessions and
 * restarts: the UIDs are kept in the Maildir's dovecot-uidlist, in
 * Dovecot's own format (version 3), so Dovecot reading the same Maildir
 * keeps them, and they are read back from one that Dovecot wrote.  A
 * message's POP3 size (CRLF line ends) is kept there too ("W" field),
 * or read from a ",W=" in its name, or counted once from the file.
 *
 * Nothing is deleted until mailbox_commit() (the UPDATE state of RFC
 * 1939 6): a session that ends without it leaves the mailbox as it was,
 * apart from new/ having moved into cur/.
 */
#ifndef STORE_MAILBOX_H
#define STORE_MAILBOX_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define MAILBOX_MSGS_MAX	100000	/* a session shows the oldest ones */

/* What a session did to a message, applied by mailbox_commit(). */
#define MAILBOX_DELE	0x01	/* unlink */
#define MAILBOX_SEEN	0x02	/* add the S flag (RETR) */

struct mailbox_msg {
	char		*name;		/* file name in cur/ */
	uint64_t	 vsize;		/* POP3 size: CRLF line ends */
	uint32_t	 uid;
};

struct mailbox {
	char			 path[PATH_MAX];	/* the Maildir */
	int			 lockfd;	/* the directory, flock'ed */
	uint32_t		 uidvalidity;
	struct mailbox_msg	*msgs;		/* by UID, ascending */
	size_t			 n;
};

/*
 * Open the Maildir at path (made, with tmp/ new/ cur/, when absent),
 * listing at most max messages (the lowest UIDs).  Returns 0 with *mbp;
 * -2 when another session holds the lock; -1 with errno on any other
 * failure (nothing is held then).
 */
int	mailbox_open(const char *path, size_t max, struct mailbox **mbp);

/* Open message i (0-based) for reading: a descriptor, or -1 with errno
 * (ENOENT: something else removed the file). */
int	mailbox_msg_open(const struct mailbox *, size_t i);

/*
 * Apply marks[i] (MAILBOX_DELE, MAILBOX_SEEN; mb->n entries) and make
 * the deletions durable (fsync of cur/).  A file already gone counts as
 * deleted.  Returns 0 with *failed_r, the messages that could not be
 * changed (0 when all were).
 */
int	mailbox_commit(struct mailbox *, const uint8_t *marks,
	    size_t *failed_r);

/* Release the lock and free *mbp; NULL is fine. */
void	mailbox_close(struct mailbox **mbp);

#endif

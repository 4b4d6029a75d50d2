/*
 * maildir.h - local delivery into Maildir (R5.2), exactly once.
 */
#ifndef STORE_MAILDIR_H
#define STORE_MAILDIR_H

#include <sys/types.h>

#include <stdbool.h>

/*
 * Deliver len octets of msgfd (from offset 0) into the Maildir
 * <root>/<domain>/<local_part>/, under the file name <name>: written in
 * tmp/, fsync'ed, then linked into new/ and new/ fsync'ed.  The name
 * is the same for every attempt at the same recipient of the same
 * queued message, and a name already in new/ counts as delivered: so a
 * retry after a crash never delivers twice.
 * Returns 0; -1 with errno for a temporary failure; -2 when the
 * mailbox name is unusable (a permanent failure: '/', a leading dot or
 * a control character in a component).
 */
int	maildir_deliver(const char *root, const char *domain,
	    const char *local_part, const char *name, int msgfd, off_t len);

#endif

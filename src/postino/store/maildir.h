/*
 * maildir.h - local delivery into Maildir (R5.2), exactly once.
 */
#ifndef STORE_MAILDIR_H
#define STORE_MAILDIR_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MAILDIR_ROOT	"mail"	/* under data_dir: mail/<domain>/<local>/ */

/*
 * The Maildir <root>/<domain>/<local_part> (with "/sub" when sub is not
 * NULL) into buf.  Returns 0; -1 with errno ENAMETOOLONG; -2 when a
 * component is unusable ('/', a leading dot, a control character).
 */
int	maildir_box_path(char *buf, size_t size, const char *root,
	    const char *domain, const char *local_part, const char *sub);

/* Make the Maildir box (tmp/, new/, cur/, and the directories above,
 * mode 0700) if it is not there.  Returns 0, or -1 with errno. */
int	maildir_make(const char *box);

/*
 * Deliver len octets of msgfd (from offset 0) into the Maildir
 * <root>/<domain>/<local_part>/, under the file name <name>: written in
 * tmp/, fsync'ed, then linked into new/.  The name is the same for
 * every attempt at the same recipient of the same queued message, and
 * a name already in new/ counts as delivered: so a retry after a crash
 * never delivers twice.  The box is made when it is not there.
 * Returns 0 with the path of new/ in syncdir, which the caller must
 * fsync before the delivery counts (dirsync.h lets deliveries share
 * it), also when the name was already there; -1 with
 * errno for a temporary failure; -2 when the mailbox name is unusable
 * (a permanent failure: '/', a leading dot or a control character in
 * a component).
 */
int	maildir_deliver(const char *root, const char *domain,
	    const char *local_part, const char *name, int msgfd, off_t len,
	    char *syncdir, size_t size);

/*
 * The file name of target <index> of queued message <qid>, committed at
 * <t>, of <len> octets: "<t>.Q<qid>R<index>.<host>,S=<len>", the same
 * for every attempt, so a name in new/ means delivered.  host must
 * have been made safe by maildir_host().  -1 (ENAMETOOLONG) if it does
 * not fit.
 */
int	maildir_name(char *buf, size_t size, time_t t, const char *qid,
	    size_t index, const char *host, uint64_t len);

/* This host's name as a Maildir name may hold it: '/', ':' and ','
 * become '_'. */
void	maildir_host(char *dst, size_t size, const char *hostname);

/*
 * Deliver the whole, fsync'ed file src by a hard link into
 * <root>/<domain>/<local_part>/new/<name> (delivery at commit,
 * docs/queue.md): the file enters new/ complete, as a link from tmp/
 * would.  The box is made when it is not there.  Returns 0 with the
 * link's path in dst and new/ in syncdir (which the caller must fsync
 * before the delivery counts); -1 with errno (EXDEV: src is on another
 * file system); -2 when the mailbox name is unusable.
 */
int	maildir_link(const char *root, const char *domain,
	    const char *local_part, const char *name, const char *src,
	    char *dst, size_t dstsize, char *syncdir, size_t size);

#endif

/*
 * maildir.c - Maildir delivery, in the store role's worker threads.
 *
 * Trusts its arguments only as far as maildir_box_path() checks them: the
 * domain and local part come from the account store, but a mailbox name
 * must never leave <root>.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "fsio.h"
#include "maildir.h"

static bool
component_ok(const char *s)
{
	if (*s == '\0' || *s == '.')
		return false;
	for (; *s != '\0'; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int
maildir_box_path(char *buf, size_t size, const char *root, const char *domain,
    const char *local_part, const char *sub)
{
	if (!component_ok(domain) || !component_ok(local_part))
		return -2;
	if ((size_t)snprintf(buf, size, "%s/%s/%s%s%s", root, domain,
	    local_part, sub ? "/" : "", sub ? sub : "") >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
maildir_make(const char *box)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char	path[PATH_MAX];
	size_t	i;

	for (i = 0; i < 3; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", box,
		    subs[i]) >= sizeof(path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (fsio_mkdirs(path, 0700) == -1)
			return -1;
	}
	return 0;
}

/*
 * Make a box for a delivery.  A delivery counts once new/ is synced:
 * the entries that lead to new/ must be durable too, so the box and the
 * two directories above it (<root>/<domain>, <root>), which may be new,
 * are synced.  Only when a delivery found no box: once per mailbox.
 */
static int
box_make(const char *box)
{
	char	path[PATH_MAX], *slash;
	size_t	i;

	if (maildir_make(box) == -1 ||
	    strlcpy(path, box, sizeof(path)) >= sizeof(path))
		return -1;
	for (i = 0; i < 3; i++) {
		if (fsio_fsync_dir(path) == -1)
			return -1;
		if ((slash = strrchr(path, '/')) == NULL)
			break;
		*slash = '\0';
	}
	return 0;
}

/* Open tmp for writing; the first delivery to a box makes it. */
static int
tmp_open(const char *box, const char *tmp)
{
	int	fd;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 && errno == ENOENT) {
		if (box_make(box) == -1)
			return -1;
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	}
	return fd;
}

int
maildir_deliver(const char *root, const char *domain, const char *local_part,
    const char *name, int msgfd, off_t len, char *syncdir, size_t size)
{
	char	box[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX];
	int	fd, r, saved;

	if ((r = maildir_box_path(box, sizeof(box), root, domain, local_part,
	    NULL)) != 0)
		return r;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp/%s", box, name) >=
	    sizeof(tmp) || (size_t)snprintf(dst, sizeof(dst), "%s/new/%s",
	    box, name) >= sizeof(dst) || (size_t)snprintf(syncdir, size,
	    "%s/new", box) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (access(dst, F_OK) == 0) {
		/* delivered before a crash cut us short; maybe not yet
		 * durable if the crash was only of this process */
		unlink(tmp);
		return 0;
	}
	if ((fd = tmp_open(box, tmp)) == -1)
		return -1;
	if (fsio_copy(msgfd, 0, len, fd) == -1 || fsync(fd) == -1)
		goto out_close;
	if (close(fd) == -1) {
		fd = -1;
		goto out_unlink;
	}
	fd = -1;
	/* new/ removed under an existing tmp/: make the box again */
	if (link(tmp, dst) == -1 && (errno != ENOENT ||
	    box_make(box) == -1 || link(tmp, dst) == -1) &&
	    errno != EEXIST)
		goto out_unlink;
	unlink(tmp);
	return 0;

out_close:
	saved = errno;
	close(fd);
	errno = saved;
out_unlink:
	saved = errno;
	unlink(tmp);
	errno = saved;
	return -1;
}

int
maildir_name(char *buf, size_t size, time_t t, const char *qid, size_t index,
    const char *host, uint64_t len)
{
	if ((size_t)snprintf(buf, size, "%lld.Q%sR%zu.%s,S=%" PRIu64,
	    (long long)t, qid, index, host, len) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

void
maildir_host(char *dst, size_t size, const char *hostname)
{
	char	*p;

	strlcpy(dst, hostname, size);
	for (p = dst; *p != '\0'; p++)
		if (*p == '/' || *p == ':' || *p == ',')
			*p = '_';
}

int
maildir_link(const char *root, const char *domain, const char *local_part,
    const char *name, const char *src, char *dst, size_t dstsize,
    char *syncdir, size_t size)
{
	char	box[PATH_MAX];
	int	r;

	if ((r = maildir_box_path(box, sizeof(box), root, domain, local_part,
	    NULL)) != 0)
		return r;
	if ((size_t)snprintf(dst, dstsize, "%s/new/%s", box, name) >=
	    dstsize || (size_t)snprintf(syncdir, size, "%s/new", box) >=
	    size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (link(src, dst) == 0)
		return 0;
	if (errno != ENOENT || box_make(box) == -1)
		return -1;
	return link(src, dst);
}

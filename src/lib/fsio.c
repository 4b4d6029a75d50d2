/*
 * fsio.c - durable file operations (see fsio.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"
#include "fsio.h"

int
fsio_write_all(int fd, const void *p, size_t len)
{
	const char	*c = p;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, c, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fsio_pwrite_all(int fd, const void *p, size_t len, off_t off)
{
	const char	*c = p;
	ssize_t		 n;

	while (len > 0) {
		if ((n = pwrite(fd, c, len, off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fsio_fsync_dir(const char *path)
{
	int	fd, r, saved;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int
fsio_write_durable(const char *dir, const char *name, const void *data,
    size_t len, mode_t mode)
{
	char	tmp[PATH_MAX], dst[PATH_MAX];
	int	fd, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >=
	    sizeof(tmp) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >=
	    sizeof(dst)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	unlink(tmp);	/* a leftover of a crash, never acknowledged */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd == -1)
		return -1;
	if (fsio_write_all(fd, data, len) == -1 || fsync(fd) == -1)
		goto out_close;
	if (close(fd) == -1) {
		fd = -1;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, dst) == -1)
		goto out_unlink;
	return fsio_fsync_dir(dir);

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
fsio_mkdirs(const char *path, mode_t mode)
{
	char	buf[PATH_MAX], *p;

	if (strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

int
fsio_copy(int in, off_t off, off_t len, int out)
{
	char	buf[65536];
	ssize_t	n;

	if (__builtin_add_overflow(off, len, &len)) {	/* len: the end */
		errno = EINVAL;
		return -1;
	}
	while (off < len) {
		n = copy_file_range(in, &off, out, NULL, (size_t)(len - off), 0);
		if (n > 0)
			continue;
		if (n == 0) {
			errno = EIO;	/* the file is shorter than said */
			return -1;
		}
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return -1;
		break;		/* fall back to read/write */
	}
	while (off < len) {
		size_t want = (size_t)(len - off) < sizeof(buf) ?
		    (size_t)(len - off) : sizeof(buf);

		if ((n = pread(in, buf, want, off)) <= 0) {
			if (n == 0)
				errno = EIO;
			if (n == -1 && errno == EINTR)
				continue;
			return -1;
		}
		if (fsio_write_all(out, buf, (size_t)n) == -1)
			return -1;
		off += n;
	}
	return 0;
}

/*
 * fsio.h - durable file operations: the only way the spool and the
 * Maildirs are written (STYLE section 8).
 */
#ifndef LIB_FSIO_H
#define LIB_FSIO_H

#include <sys/types.h>

#include <stddef.h>

/* write(2) until done; -1 with errno on error. */
int	fsio_write_all(int fd, const void *p, size_t len);

/* pwrite(2) until done; -1 with errno on error. */
int	fsio_pwrite_all(int fd, const void *p, size_t len, off_t off);

/* fsync a directory by path or descriptor; -1 with errno. */
int	fsio_fsync_dir(const char *path);

/*
 * Write data to dir/name durably: a temporary file made with O_EXCL,
 * write all, fsync, checked close, rename over name, fsync of dir.
 * Returns 0, or -1 with errno (the temporary file is removed).
 */
int	fsio_write_durable(const char *dir, const char *name,
	    const void *data, size_t len, mode_t mode);

/* mkdir -p with mode for the directories it makes; -1 with errno. */
int	fsio_mkdirs(const char *path, mode_t mode);

/*
 * Copy len octets of in, from offset off, to out (at its current
 * position), with copy_file_range when the kernel allows; in's own
 * position is not used.  -1 with errno (EIO when in is shorter).
 */
int	fsio_copy(int in, off_t off, off_t len, int out);

#endif

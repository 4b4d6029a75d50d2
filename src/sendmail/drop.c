/*
 * drop.c - write one drop file into <data_dir>/maildrop/ (see drop.h),
 * in sendmail(1), as the invoking user.
 *
 * Nothing here is trusted by the store role but the file's owner; the
 * envelope is written by maildrop_env_format(), which refuses what
 * maildrop_parse() would not read back.  Failures are reported, never
 * fatal: the -bs session answers them and goes on.
 */
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "compat.h"
#include "drop.h"
#include "fsio.h"

#define NAME_TRIES	8		/* final names tried */

/* The temporary file, for drop_tmp_unlink(). */
static char			tmp_path[PATH_MAX];
static volatile sig_atomic_t	tmp_made;

void
drop_tmp_unlink(void)
{
	if (tmp_made)
		unlink(tmp_path);
}

/* Record the first failure; returns -1. */
static int __attribute__((format(printf, 4, 5)))
drop_fail(struct drop *d, int status, int errnum, const char *fmt, ...)
{
	va_list	ap;

	if (d->status != 0)
		return -1;
	d->status = status;
	d->errnum = errnum;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* 16 lower-case hex digits from the kernel's random source. */
static int
random_name(struct drop *d, char *buf, size_t size)
{
	uint8_t		r[MAILDROP_NAME_LEN / 2];
	size_t		i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return drop_fail(d, EX_OSERR, errno, "getrandom: %s",
		    strerror(errno));
	for (i = 0; i < sizeof(r) && 2 * i + 2 < size; i++)
		snprintf(buf + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/*
 * Create the temporary file.  Mode 0644: the drop directory (1733, owned
 * by the daemon's user) cannot be listed by others, and the store role
 * must be able to read what the submitting user owns.
 */
static int
create_tmp(struct drop *d, const struct conf *conf)
{
	char	name[MAILDROP_NAME_LEN + 1];

	if ((size_t)snprintf(d->dir, sizeof(d->dir), "%s/%s", conf->data_dir,
	    MAILDROP_DIR) >= sizeof(d->dir))
		return drop_fail(d, EX_CONFIG, 0, "data_dir too long");
	if (random_name(d, name, sizeof(name)) == -1)
		return -1;
	if ((size_t)snprintf(tmp_path, sizeof(tmp_path), "%s/.tmp.%s",
	    d->dir, name) >= sizeof(tmp_path))
		return drop_fail(d, EX_CONFIG, 0, "data_dir too long");
	d->fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	if (d->fd == -1)
		return drop_fail(d, EX_TEMPFAIL, errno, "cannot create a file "
		    "in the drop directory %s: %s", d->dir, strerror(errno));
	tmp_made = 1;
	d->active = true;
	if (fchmod(d->fd, 0644) == -1)		/* whatever the umask */
		return drop_fail(d, EX_TEMPFAIL, errno, "chmod %s: %s",
		    tmp_path, strerror(errno));
	return 0;
}

static int
write_env(struct drop *d, const struct maildrop_env *env)
{
	const char	*errstr;
	char		*buf;
	size_t		 len;
	int		 r = 0;

	if ((buf = malloc(MAILDROP_ENV_MAX)) == NULL)
		return drop_fail(d, EX_OSERR, ENOMEM, "out of memory");
	if (maildrop_env_format(env, buf, MAILDROP_ENV_MAX, &len,
	    &errstr) == -1)
		r = drop_fail(d, EX_SOFTWARE, 0, "envelope: %s", errstr);
	else if (fsio_write_all(d->fd, buf, len) == -1)
		r = drop_fail(d, EX_TEMPFAIL, errno, "writing %s: %s",
		    tmp_path, strerror(errno));
	free(buf);
	return r;
}

int
drop_open(struct drop *d, const struct conf *conf,
    const struct maildrop_env *env)
{
	d->name[0] = '\0';
	d->status = d->errnum = 0;
	d->err[0] = '\0';
	d->len = 0;
	d->msg_size = 0;
	d->msg_max = conf->smtp.max_message_size;
	maildrop_crlf_init(&d->crlf);
	if (create_tmp(d, conf) == -1 || write_env(d, env) == -1) {
		drop_abort(d);
		return -1;
	}
	return 0;
}

static void
drop_flush(struct drop *d)
{
	if (d->status == 0 && fsio_write_all(d->fd, d->buf, d->len) == -1)
		drop_fail(d, EX_TEMPFAIL, errno, "writing %s: %s", tmp_path,
		    strerror(errno));
	d->len = 0;
}

void
drop_put(struct drop *d, const uint8_t *p, size_t n)
{
	size_t	chunk, out;

	while (n > 0 && d->status == 0) {
		chunk = n < DROP_IN_MAX ? n : DROP_IN_MAX;
		if (MAILDROP_CRLF_OUT(chunk) > sizeof(d->buf) - d->len)
			drop_flush(d);
		out = maildrop_crlf(&d->crlf, p, chunk, d->buf + d->len);
		d->len += out;
		d->msg_size += out;
		if (d->msg_max != 0 && d->msg_size > d->msg_max)
			drop_fail(d, EX_DATAERR, 0, "message larger than "
			    "max_message_size (%llu octets)",
			    (unsigned long long)d->msg_max);
		p += chunk;
		n -= chunk;
	}
}

/* Give the file its final name, never over an existing one. */
static int
drop_rename(struct drop *d)
{
	char	path[PATH_MAX];
	int	i, r;

	for (i = 0; i < NAME_TRIES; i++) {
		if (random_name(d, d->name, sizeof(d->name)) == -1)
			return -1;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", d->dir,
		    d->name) >= sizeof(path))
			return drop_fail(d, EX_CONFIG, 0, "data_dir too long");
		r = renameat2(AT_FDCWD, tmp_path, AT_FDCWD, path,
		    RENAME_NOREPLACE);
		/* XXX file systems without RENAME_NOREPLACE: 64 random
		 * bits, and the sticky bit protects others' files. */
		if (r == -1 && (errno == EINVAL || errno == ENOSYS))
			r = rename(tmp_path, path);
		if (r == 0) {
			tmp_made = 0;
			return 0;
		}
		if (errno != EEXIST)
			break;
	}
	d->name[0] = '\0';
	return drop_fail(d, EX_TEMPFAIL, errno, "rename %s: %s", tmp_path,
	    strerror(errno));
}

int
drop_commit(struct drop *d)
{
	int	fd = d->fd, r;

	if (sizeof(d->buf) - d->len < MAILDROP_CRLF_OUT(0))
		drop_flush(d);
	d->len += maildrop_crlf_end(&d->crlf, d->buf + d->len);
	drop_flush(d);
	if (d->status != 0)
		goto out_abort;
	d->active = false;
	r = fsync(fd) == -1 ? errno : 0;
	if (close(fd) == -1 && r == 0)
		r = errno;
	if (r != 0) {
		drop_fail(d, EX_TEMPFAIL, r, "writing %s: %s", tmp_path,
		    strerror(r));
		goto out_unlink;
	}
	if (drop_rename(d) == -1)
		goto out_unlink;
	/*
	 * XXX Best effort: a user other than the daemon's cannot open the
	 * directory (mode 1733), so the new entry may not be on disk yet.
	 */
	(void)fsio_fsync_dir(d->dir);
	return 0;
out_abort:
	drop_abort(d);
	return -1;
out_unlink:
	drop_tmp_unlink();
	tmp_made = 0;
	return -1;
}

void
drop_abort(struct drop *d)
{
	if (d->active) {
		close(d->fd);
		d->active = false;
	}
	drop_tmp_unlink();
	tmp_made = 0;
	d->len = 0;
}

/*
 * mailbox.c - a Maildir as a POP3 session sees it (see mailbox.h), in
 * the store role's worker threads.
 *
 * Trusts path (it comes from the account store) and nothing inside the
 * Maildir: file names, the dovecot-uidlist and its lock may have been
 * written by Dovecot, by a mail client over IMAP or by the user.  So
 * every read is bounded (SCAN_MAX, UIDLIST_SIZE_MAX, UIDLIST_LINE_MAX),
 * and a dovecot-uidlist we cannot parse is replaced, never half used.
 *
 * The dovecot-uidlist, version 3 (Dovecot's maildir-uidlist.c):
 *
 *	3 V<uidvalidity> N<next uid> G<mailbox guid, 32 hex> [<key><value> ...]
 *	<uid> [<key><value> ...] :<base name>
 *
 * A record's keys are 'A' to 'Z' (W: the size with CRLF line ends,
 * S: the file's size, G, P, O ...); we read W and keep the others as
 * they are.  The base name is a file's name up to its first ':', the
 * part that flag changes leave alone.
 *
 * Dovecot reads the uidlist without a lock and writes it under the
 * dotlock dovecot-uidlist.lock.  We hold that dotlock for the whole
 * sync, as Dovecot does: readdir(3) may miss a file that another
 * process renames while we read the directory, and a file we miss
 * would lose its UID when we write the list back.
 */
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "fsio.h"
#include "mailbox.h"
#include "maildir.h"
#include "pop3_syntax.h"

#define UIDLIST_NAME		"dovecot-uidlist"
#define UIDLIST_LOCK		"dovecot-uidlist.lock"
#define UIDLIST_LOCK_STALE	120	/* s, Dovecot's own stale timeout */
#define UIDLIST_LOCK_TOUCH	30	/* s between touches of a held lock */
#define UIDLIST_SIZE_MAX	(64 * 1024 * 1024)
#define UIDLIST_LINE_MAX	8192	/* a name is NAME_MAX; room for fields */
#define SCAN_MAX		1000000	/* files in cur/, records in the list */
#define VSIZE_NONE		UINT64_MAX

/* A record of the dovecot-uidlist; the strings point into sync.buf. */
struct rec {
	const char	*base;
	const char	*ext;		/* the fields we keep, or NULL */
	uint64_t	 vsize;		/* W, or VSIZE_NONE */
	size_t		 baselen;
	uint32_t	 uid;
};

/* A file of cur/. */
struct entry {
	char		*name;		/* owned by mailbox.msgs once listed */
	const char	*ext;		/* from its record, or NULL */
	uint64_t	 vsize;		/* VSIZE_NONE until known */
	uint64_t	 time;		/* the leading decimal of the name */
	size_t		 baselen;
	uint32_t	 uid;		/* 0 until it has one */
	bool		 w_name;	/* vsize is the ",W=" of the name */
	bool		 gone;		/* vanished while we looked */
	bool		 listed;
};

/* One mailbox_open(): what the uidlist says and what the disk has. */
struct sync {
	struct mailbox	*mb;
	int		 curfd;
	int		 lockfd;	/* the dotlock, ours */
	time_t		 touched;	/* its mtime, as we last set it */
	char		*buf;		/* the uidlist, parsed in place */
	struct rec	*recs;
	size_t		 nrecs;
	struct entry	*ents;
	size_t		 nents, capents;
	const char	*hdr_ext;	/* header fields we keep, or NULL */
	char		 guid[33];	/* "" until known */
	uint32_t	 next_uid;
	bool		 changed;	/* the uidlist must be written */
};

static int
parse_num(const char *p, size_t len, uint64_t max, uint64_t *r)
{
	uint64_t	v = 0;
	size_t		i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(p[i] - '0'), &v))
			return -1;
	}
	if (v > max)
		return -1;
	*r = v;
	return 0;
}

/* Cut the next space-separated token of *pp in place; NULL at the end. */
static char *
token(char **pp)
{
	char	*p = *pp, *t;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		return NULL;
	t = p;
	p += strcspn(p, " ");
	if (*p == ' ')
		*p++ = '\0';
	*pp = p;
	return t;
}

/*
 * Append token t to the kept fields that start at start and end at
 * keep.  keep never passes t, so the copy only ever moves text back
 * over what was already read.
 */
static char *
keep_token(char *start, char *keep, const char *t)
{
	size_t	len = strlen(t);

	if (keep != start)
		*keep++ = ' ';
	memmove(keep, t, len);
	return keep + len;
}

static bool
guid_ok(const char *s)
{
	return strlen(s) == 32 && strspn(s, "0123456789abcdefABCDEF") == 32;
}

static int
uidlist_header(struct sync *s, char *line)
{
	char		*p = line + 2, *keep = p, *t;
	uint64_t	 v, n = 0;

	if (line[0] != '3' || line[1] != ' ')
		return -1;	/* version 1 (Courier's) or not a uidlist */
	s->mb->uidvalidity = 0;
	while ((t = token(&p)) != NULL) {
		switch (*t) {
		case 'V':
			if (parse_num(t + 1, strlen(t + 1), UINT32_MAX, &v) == -1)
				return -1;
			s->mb->uidvalidity = (uint32_t)v;
			break;
		case 'N':
			if (parse_num(t + 1, strlen(t + 1), UINT32_MAX, &n) == -1)
				return -1;
			break;
		case 'G':
			if (!guid_ok(t + 1))
				return -1;	/* Dovecot calls it broken too */
			memcpy(s->guid, t + 1, sizeof(s->guid));
			break;
		default:
			keep = keep_token(line + 2, keep, t);
			break;
		}
	}
	*keep = '\0';
	if (s->mb->uidvalidity == 0 || n == 0)
		return -1;
	s->next_uid = (uint32_t)n;
	s->hdr_ext = keep == line + 2 ? NULL : line + 2;
	return 0;
}

/* One record line; UIDs must grow from line to line, as Dovecot wants. */
static int
uidlist_record(struct sync *s, char *line, uint32_t *last_r)
{
	struct rec	*r = &s->recs[s->nrecs];
	char		*p, *start, *keep, *t, *base;
	uint64_t	 v;
	size_t		 n;

	n = strspn(line, "0123456789");
	if (n == 0 || line[n] != ' ' ||
	    parse_num(line, n, UINT32_MAX - 1, &v) == -1 || v <= *last_r)
		return -1;
	r->uid = *last_r = (uint32_t)v;
	r->vsize = VSIZE_NONE;
	for (p = start = keep = line + n + 1;;) {
		while (*p == ' ')
			p++;
		if (*p == ':' || (t = token(&p)) == NULL)
			break;
		if (*t == 'W' &&
		    parse_num(t + 1, strlen(t + 1), VSIZE_NONE - 1, &v) == 0)
			r->vsize = v;
		else if (*t >= 'A' && *t <= 'Z' && *t != 'W')
			keep = keep_token(start, keep, t);
		/* else dropped, as Dovecot drops it */
	}
	if (*p != ':')
		return -1;
	base = p + 1;
	n = strcspn(base, ":");		/* older lists held whole names */
	base[n] = '\0';
	if (n == 0 || n > NAME_MAX || strchr(base, '/') != NULL)
		return -1;
	*keep = '\0';		/* at most on the ':', already passed */
	r->ext = keep == start ? NULL : start;
	r->base = base;
	r->baselen = n;
	s->nrecs++;
	return 0;
}

/* Parse the uidlist in buf (len octets, NUL after); -1: malformed. */
static int
uidlist_parse(struct sync *s, char *buf, size_t len)
{
	char		*line, *eol;
	uint32_t	 last = 0;
	bool		 header = true;

	for (line = buf; (eol = memchr(line, '\n', len -
	    (size_t)(line - buf))) != NULL; line = eol + 1) {
		if ((size_t)(eol - line) > UIDLIST_LINE_MAX)
			return -1;
		*eol = '\0';
		if (strlen(line) != (size_t)(eol - line))
			return -1;	/* a NUL inside */
		if (header) {
			if (uidlist_header(s, line) == -1)
				return -1;
			header = false;
		} else if (uidlist_record(s, line, &last) == -1)
			return -1;
	}
	/*
	 * What follows the last LF is an append that a crash cut short:
	 * Dovecot appends records in place.  Its files get new UIDs.
	 */
	if (header)
		return -1;
	if (s->next_uid <= last)
		s->next_uid = last + 1;
	return 0;
}

static void
uidlist_forget(struct sync *s)
{
	s->nrecs = 0;
	s->hdr_ext = NULL;
	s->guid[0] = '\0';
	s->next_uid = 1;
	s->mb->uidvalidity = 0;
}

static int
read_all(int fd, char *buf, size_t size, size_t *len_r)
{
	ssize_t	n;

	*len_r = 0;
	while (*len_r < size) {
		if ((n = read(fd, buf + *len_r, size - *len_r)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		*len_r += (size_t)n;
	}
	return 0;
}

/*
 * Read the Maildir's dovecot-uidlist into s.  One that is absent,
 * malformed, too large or of another version leaves s empty (a new
 * UIDVALIDITY follows).  -1 with errno only when it cannot be read.
 */
static int
uidlist_read(struct sync *s)
{
	struct stat	 st;
	size_t		 len, lines;
	const char	*p;
	int		 fd, saved;

	fd = openat(s->mb->lockfd, UIDLIST_NAME, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (fd == -1)
		return errno == ENOENT || errno == ELOOP ? 0 : -1;
	if (fstat(fd, &st) == -1)
		goto out_close;
	if (!S_ISREG(st.st_mode) || st.st_size > UIDLIST_SIZE_MAX) {
		close(fd);
		return 0;
	}
	/* UNSAFE: st_size is at most UIDLIST_SIZE_MAX, + 1 cannot wrap. */
	if ((s->buf = malloc((size_t)st.st_size + 1)) == NULL ||
	    read_all(fd, s->buf, (size_t)st.st_size, &len) == -1)
		goto out_close;
	close(fd);
	s->buf[len] = '\0';
	for (lines = 0, p = s->buf; lines <= SCAN_MAX &&
	    (p = memchr(p, '\n', len - (size_t)(p - s->buf))) != NULL; p++)
		lines++;
	if (lines == 0 || lines > SCAN_MAX)
		return 0;
	if ((s->recs = calloc(lines, sizeof(*s->recs))) == NULL)
		return -1;
	if (uidlist_parse(s, s->buf, len) == -1)
		uidlist_forget(s);
	return 0;

out_close:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

static int
guid_new(char guid[33])
{
	static const char	 hex[] = "0123456789abcdef";
	uint8_t			 r[16];
	size_t			 i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;	/* 16 octets: never short once seeded */
	for (i = 0; i < sizeof(r); i++) {
		guid[2 * i] = hex[r[i] >> 4];
		guid[2 * i + 1] = hex[r[i] & 0x0f];
	}
	guid[32] = '\0';
	return 0;
}

/* A new list: a UIDVALIDITY unlike the one before, UIDs from 1. */
static void
uidlist_renew(struct sync *s)
{
	uint32_t	old = s->mb->uidvalidity, now = (uint32_t)time(NULL);

	s->mb->uidvalidity = now != old && now != 0 ? now : old + 1;
	if (s->mb->uidvalidity == 0)
		s->mb->uidvalidity = 1;
	s->next_uid = 1;
	s->changed = true;
}

/*
 * Take the dotlock: 0 with *fd_r, -2 when someone else holds it, -1
 * with errno.  A lock untouched for UIDLIST_LOCK_STALE seconds belongs
 * to a process that died; it is removed once.
 */
static int
lock_take(int dfd, int *fd_r)
{
	struct stat	st;
	int		try;

	for (try = 0; try < 2; try++) {
		*fd_r = openat(dfd, UIDLIST_LOCK, O_WRONLY | O_CREAT |
		    O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (*fd_r != -1)
			return 0;
		if (errno != EEXIST)
			return -1;
		if (fstatat(dfd, UIDLIST_LOCK, &st, AT_SYMLINK_NOFOLLOW) ==
		    -1) {
			if (errno == ENOENT)
				continue;	/* released meanwhile */
			return -1;
		}
		if (time(NULL) - st.st_mtime <= UIDLIST_LOCK_STALE)
			return -2;	/* Dovecot is writing the list */
		if (unlinkat(dfd, UIDLIST_LOCK, 0) == -1 && errno != ENOENT)
			return -1;
	}
	return -2;
}

/*
 * Keep the dotlock fresh through a long sync (a big new/, or sizes to
 * count): Dovecot takes a lock it sees untouched for 2 minutes.
 */
static void
lock_touch(struct sync *s)
{
	time_t	now = time(NULL);

	if (now - s->touched < UIDLIST_LOCK_TOUCH)
		return;
	futimens(s->lockfd, NULL);	/* at worst Dovecot goes ahead */
	s->touched = now;
}

/*
 * A name we list: not hidden (tmp files of some clients), with a base,
 * and nothing that would break a line of the uidlist.
 */
static bool
name_ok(const char *name)
{
	const char	*p;

	if (name[0] == '.' || name[0] == ':' || strlen(name) > NAME_MAX)
		return false;
	for (p = name; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* A regular file, not a link to one: we open what the name says. */
static bool
is_file(int dfd, const struct dirent *de)
{
	struct stat	st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_REG;
	if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return false;
	return S_ISREG(st.st_mode);
}

static DIR *
dir_open(int dfd, const char *sub)
{
	DIR	*d;
	int	 fd, saved;

	fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	return d;
}

/* rename(2) that never replaces a file; EEXIST when to exists. */
static int
rename_noreplace(int fromfd, const char *from, int tofd, const char *to)
{
	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* The file system cannot; link(2) does not replace either. */
	if (linkat(fromfd, from, tofd, to, 0) == -1)
		return -1;
	if (unlinkat(fromfd, from, 0) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

/*
 * Move new/ into cur/ with an empty ":2," info.  A file that vanished
 * went elsewhere; one whose name is taken in cur/ stays in new/ and is
 * not listed: a Maildir rename never replaces a message.
 */
static int
move_new(struct sync *s)
{
	char		 to[NAME_MAX + 1];
	struct dirent	*de;
	DIR		*d;
	int		 saved;

	if ((d = dir_open(s->mb->lockfd, "new")) == NULL)
		return -1;
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!name_ok(de->d_name) || !is_file(dirfd(d), de))
			continue;
		/* Info it already has, or no room for one: as it is. */
		if (strchr(de->d_name, ':') != NULL ||
		    (size_t)snprintf(to, sizeof(to), "%s:2,", de->d_name) >=
		    sizeof(to))
			strlcpy(to, de->d_name, sizeof(to));
		if (rename_noreplace(dirfd(d), de->d_name, s->curfd, to) ==
		    -1 && errno != ENOENT && errno != EEXIST)
			goto out_close;
		lock_touch(s);
	}
	if (errno != 0)
		goto out_close;
	closedir(d);
	return 0;

out_close:
	saved = errno;
	closedir(d);
	errno = saved;
	return -1;
}

static uint64_t
leading_time(const char *name)
{
	uint64_t	t = 0;

	for (; *name >= '0' && *name <= '9'; name++)
		if (__builtin_mul_overflow(t, 10, &t) ||
		    __builtin_add_overflow(t, (uint64_t)(*name - '0'), &t))
			return UINT64_MAX;
	return t;
}

/* The ",W=<vsize>" that Dovecot's delivery puts in a base name. */
static uint64_t
name_vsize(const char *name, size_t baselen)
{
	const char	*p, *v, *end = name + baselen;
	uint64_t	 w;
	size_t		 len;

	for (p = name; (p = memchr(p, ',', (size_t)(end - p))) != NULL;
	    p++) {
		if (end - p < 3 || p[1] != 'W' || p[2] != '=')
			continue;
		v = p + 3;
		for (len = 0; v + len < end && v[len] != ','; len++)
			;
		if (parse_num(v, len, VSIZE_NONE - 1, &w) == 0)
			return w;
	}
	return VSIZE_NONE;
}

static int
ents_add(struct sync *s, const char *name)
{
	struct entry	*e;
	size_t		 cap;

	if (s->nents == SCAN_MAX) {
		errno = EFBIG;	/* no session could list them all anyway */
		return -1;
	}
	if (s->nents == s->capents) {
		cap = s->capents == 0 ? 64 : s->capents * 2;
		if ((e = reallocarray(s->ents, cap, sizeof(*e))) == NULL)
			return -1;
		s->ents = e;
		s->capents = cap;
	}
	e = &s->ents[s->nents];
	memset(e, 0, sizeof(*e));
	if ((e->name = strdup(name)) == NULL)
		return -1;
	s->nents++;
	e->baselen = strcspn(name, ":");
	e->time = leading_time(name);
	e->vsize = name_vsize(name, e->baselen);
	e->w_name = e->vsize != VSIZE_NONE;
	return 0;
}

static int
scan_cur(struct sync *s)
{
	struct dirent	*de;
	DIR		*d;
	int		 saved;

	if ((d = dir_open(s->mb->lockfd, "cur")) == NULL)
		return -1;
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (!name_ok(de->d_name) || !is_file(dirfd(d), de))
			continue;
		if (ents_add(s, de->d_name) == -1)
			goto out_close;
	}
	if (errno != 0)
		goto out_close;
	closedir(d);
	return 0;

out_close:
	saved = errno;
	closedir(d);
	errno = saved;
	return -1;
}

static int
base_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int	c;

	if ((c = memcmp(a, b, alen < blen ? alen : blen)) != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

static int
ent_base_cmp(const void *va, const void *vb)
{
	const struct entry	*a = va, *b = vb;
	int			 c;

	if ((c = base_cmp(a->name, a->baselen, b->name, b->baselen)) != 0)
		return c;
	return strcmp(a->name, b->name);
}

static int
rec_cmp(const void *va, const void *vb)
{
	const struct rec	*a = va, *b = vb;
	int			 c;

	if ((c = base_cmp(a->base, a->baselen, b->base, b->baselen)) != 0)
		return c;
	return (a->uid > b->uid) - (a->uid < b->uid);
}

/* By UID; the new ones (0) last, by the time in their name, then name. */
static int
ent_uid_cmp(const void *va, const void *vb)
{
	const struct entry	*a = va, *b = vb;

	if ((a->uid == 0) != (b->uid == 0))
		return a->uid == 0 ? 1 : -1;
	if (a->uid != b->uid)
		return a->uid < b->uid ? -1 : 1;
	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	return base_cmp(a->name, a->baselen, b->name, b->baselen);
}

/*
 * Two files with one base name are one message (a redelivery after a
 * crash, or a client that copied it): list the first, by name.
 */
static void
ents_dedupe(struct sync *s)
{
	struct entry	*e = s->ents;
	size_t		 i, k;

	if (s->nents == 0)
		return;
	qsort(e, s->nents, sizeof(*e), ent_base_cmp);
	for (i = k = 1; i < s->nents; i++) {
		if (base_cmp(e[k - 1].name, e[k - 1].baselen, e[i].name,
		    e[i].baselen) == 0) {
			free(e[i].name);
			continue;
		}
		e[k++] = e[i];
	}
	s->nents = k;
}

/*
 * Give each file the UID and fields of its record (both sorted by base
 * name).  A record with no file, or one its base name appears in again
 * further down (Dovecot keeps the later), is dropped.
 */
static void
match(struct sync *s)
{
	struct entry	*e;
	struct rec	*r;
	size_t		 i = 0, j = 0;
	int		 c;

	if (s->nrecs > 1)	/* qsort(3) wants a pointer even for 0 */
		qsort(s->recs, s->nrecs, sizeof(*s->recs), rec_cmp);
	while (i < s->nents && j < s->nrecs) {
		e = &s->ents[i];
		r = &s->recs[j];
		c = base_cmp(e->name, e->baselen, r->base, r->baselen);
		if (c < 0) {
			i++;
			continue;
		}
		if (c > 0 || (j + 1 < s->nrecs && base_cmp(r->base,
		    r->baselen, r[1].base, r[1].baselen) == 0)) {
			j++;
			s->changed = true;
			continue;
		}
		e->uid = r->uid;
		e->ext = r->ext;
		if (r->vsize != VSIZE_NONE) {
			e->vsize = r->vsize;
			e->w_name = false;
		}
		i++;
		j++;
	}
	if (j < s->nrecs)
		s->changed = true;
}

/* Number the new files from next_uid, and sort everything by UID. */
static void
assign_uids(struct sync *s)
{
	size_t	i, nnew = 0;

	for (i = 0; i < s->nents; i++)
		if (s->ents[i].uid == 0)
			nnew++;
	/* UIDs next_uid .. UINT32_MAX - 1 are left; RFC 3501 2.3.1.1. */
	if (nnew > UINT32_MAX - s->next_uid) {
		uidlist_renew(s);
		for (i = 0; i < s->nents; i++)
			s->ents[i].uid = 0;
		nnew = s->nents;
	}
	if (nnew > 0)
		s->changed = true;
	if (s->nents > 1)
		qsort(s->ents, s->nents, sizeof(*s->ents), ent_uid_cmp);
	for (i = s->nents - nnew; i < s->nents; i++)
		s->ents[i].uid = s->next_uid++;
}

static int
count_vsize(int dfd, const char *name, uint64_t *vsize_r)
{
	struct pop3_vsize	 v;
	uint8_t			 buf[16384];
	ssize_t			 n;
	int			 fd, saved;

	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return -1;
	pop3_vsize_init(&v);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		pop3_vsize_feed(&v, buf, (size_t)n);
	}
	close(fd);
	*vsize_r = v.n;
	return 0;
}

/*
 * List the max lowest UIDs, counting the sizes nobody wrote down (once:
 * they go into the uidlist).  A file that vanished meanwhile is skipped.
 */
static int
list(struct sync *s, size_t max)
{
	struct mailbox	*mb = s->mb;
	struct entry	*e;
	size_t		 i, cap = s->nents < max ? s->nents : max;

	if (cap > 0 && (mb->msgs = calloc(cap, sizeof(*mb->msgs))) == NULL)
		return -1;
	for (i = 0; i < s->nents && mb->n < cap; i++) {
		e = &s->ents[i];
		if (e->vsize == VSIZE_NONE) {
			if (count_vsize(s->curfd, e->name, &e->vsize) == -1) {
				if (errno != ENOENT)
					return -1;
				e->gone = true;
				s->changed = true;
				continue;
			}
			s->changed = true;
			lock_touch(s);
		}
		mb->msgs[mb->n].name = e->name;
		mb->msgs[mb->n].vsize = e->vsize;
		mb->msgs[mb->n].uid = e->uid;
		mb->n++;
		e->listed = true;
	}
	return 0;
}

/* Write the list into fd (the lock), fsync and close it in any case. */
static int
uidlist_write(struct sync *s, int fd)
{
	struct entry	*e;
	FILE		*fp;
	size_t		 i;
	int		 saved;

	if ((fp = fdopen(fd, "w")) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	fprintf(fp, "3 V%u N%u G%s%s%s\n", s->mb->uidvalidity, s->next_uid,
	    s->guid, s->hdr_ext != NULL ? " " : "",
	    s->hdr_ext != NULL ? s->hdr_ext : "");
	for (i = 0; i < s->nents; i++) {
		e = &s->ents[i];
		if (e->gone)
			continue;
		fprintf(fp, "%u", e->uid);
		/* Like Dovecot: no W when the name says it. */
		if (e->vsize != VSIZE_NONE && !e->w_name)
			fprintf(fp, " W%llu", (unsigned long long)e->vsize);
		if (e->ext != NULL)
			fprintf(fp, " %s", e->ext);
		fprintf(fp, " :%.*s\n", (int)e->baselen, e->name);
	}
	if (fflush(fp) == EOF || ferror(fp) || fsync(fileno(fp)) == -1) {
		saved = errno;
		fclose(fp);
		errno = saved;
		return -1;
	}
	return fclose(fp) == EOF ? -1 : 0;
}

static void
sync_free(struct sync *s)
{
	size_t	i;

	for (i = 0; i < s->nents; i++)
		if (!s->ents[i].listed)
			free(s->ents[i].name);
	free(s->ents);
	free(s->recs);
	free(s->buf);
	if (s->curfd != -1)
		close(s->curfd);
}

static int
sync_scan(struct sync *s, size_t max)
{
	s->curfd = openat(s->mb->lockfd, "cur", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (s->curfd == -1 || uidlist_read(s) == -1 || move_new(s) == -1 ||
	    scan_cur(s) == -1)
		return -1;
	if (s->mb->uidvalidity == 0)
		uidlist_renew(s);
	if (s->guid[0] == '\0') {
		if (guid_new(s->guid) == -1)
			return -1;
		s->changed = true;
	}
	ents_dedupe(s);
	match(s);
	assign_uids(s);
	return list(s, max);
}

/*
 * Under the dotlock: read the uidlist, move new/, list cur/, and write
 * the uidlist back (into the lock, renamed over it) when it changed.
 * 0, -2 (the dotlock is held), or -1 with errno.
 */
static int
mailbox_sync(struct mailbox *mb, size_t max)
{
	struct sync	s;
	int		fd = -1, r, saved;

	memset(&s, 0, sizeof(s));
	s.mb = mb;
	s.curfd = -1;
	s.next_uid = 1;
	if ((r = lock_take(mb->lockfd, &fd)) != 0)
		return r;
	s.lockfd = fd;
	s.touched = time(NULL);
	if ((r = sync_scan(&s, max)) == -1 || !s.changed)
		goto out_unlock;
	r = uidlist_write(&s, fd);
	fd = -1;
	if (r == -1 || renameat(mb->lockfd, UIDLIST_LOCK, mb->lockfd,
	    UIDLIST_NAME) == -1) {
		r = -1;
		goto out_unlock;
	}
	r = fsync(mb->lockfd);	/* the lock is gone with the rename */
	goto out;

out_unlock:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlinkat(mb->lockfd, UIDLIST_LOCK, 0);
	errno = saved;
out:
	saved = errno;
	sync_free(&s);
	errno = saved;
	return r;
}

int
mailbox_open(const char *path, size_t max, struct mailbox **mbp)
{
	struct mailbox	*mb;
	int		 r = -1, saved;

	*mbp = NULL;
	if ((mb = calloc(1, sizeof(*mb))) == NULL)
		return -1;
	mb->lockfd = -1;
	if (strlcpy(mb->path, path, sizeof(mb->path)) >= sizeof(mb->path)) {
		errno = ENAMETOOLONG;
		goto out_close;
	}
	if (maildir_make(path) == -1)
		goto out_close;
	if ((mb->lockfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		goto out_close;
	/* Per open file description: a second open here conflicts too. */
	if (flock(mb->lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			r = -2;
		goto out_close;
	}
	if ((r = mailbox_sync(mb, max)) != 0)
		goto out_close;
	*mbp = mb;
	return 0;

out_close:
	saved = errno;
	mailbox_close(&mb);
	errno = saved;
	return r;
}

int
mailbox_msg_open(const struct mailbox *mb, size_t i)
{
	char	path[PATH_MAX];

	if (i >= mb->n) {
		errno = EINVAL;
		return -1;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/cur/%s", mb->path,
	    mb->msgs[i].name) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* A link put there since the listing is not a message of ours. */
	return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/*
 * The name with the S flag: 1 with it in to, 0 when there is nothing
 * to do (S already there, no room, or an info other than ":2,").
 * Flags stay in ASCII order; Dovecot's ",<fields>" after them stay.
 */
static int
seen_name(const char *name, char *to, size_t size)
{
	const char	*info, *flags, *end, *at;

	if ((info = strchr(name, ':')) == NULL)
		return (size_t)snprintf(to, size, "%s:2,S", name) < size;
	if (strncmp(info, ":2,", 3) != 0)
		return 0;
	flags = info + 3;
	end = flags + strcspn(flags, ",");
	if (memchr(flags, 'S', (size_t)(end - flags)) != NULL)
		return 0;
	for (at = flags; at < end && *at < 'S'; at++)
		;
	return (size_t)snprintf(to, size, "%.*sS%s", (int)(at - name), name,
	    at) < size;
}

static int
msg_seen(int curfd, struct mailbox_msg *m)
{
	char	to[NAME_MAX + 1], *name;

	if (seen_name(m->name, to, sizeof(to)) == 0)
		return 0;
	if ((name = strdup(to)) == NULL)
		return -1;
	if (rename_noreplace(curfd, m->name, curfd, to) == -1) {
		free(name);
		/* Gone, or another client set its flags: nothing lost. */
		return errno == ENOENT || errno == EEXIST ? 0 : -1;
	}
	free(m->name);
	m->name = name;
	return 0;
}

/* Find a file of cur/ with the base name of name: 1 with it in found. */
static int
find_base(int curfd, const char *name, char found[NAME_MAX + 1])
{
	struct dirent	*de;
	DIR		*d;
	size_t		 len = strcspn(name, ":");
	int		 r = 0, saved;

	if ((d = dir_open(curfd, ".")) == NULL)
		return -1;
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, name, len) == 0 &&
		    (de->d_name[len] == ':' || de->d_name[len] == '\0')) {
			strlcpy(found, de->d_name, NAME_MAX + 1);
			r = 1;
			break;
		}
	}
	if (r == 0 && errno != 0)
		r = -1;
	saved = errno;
	closedir(d);
	errno = saved;
	return r;
}

static int
msg_unlink(int curfd, const struct mailbox_msg *m)
{
	char	found[NAME_MAX + 1];
	int	r;

	if (unlinkat(curfd, m->name, 0) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	/*
	 * Another client (Dovecot does not know our flock) may have
	 * renamed it to change its flags; the base name stays.
	 */
	if ((r = find_base(curfd, m->name, found)) <= 0)
		return r;
	if (unlinkat(curfd, found, 0) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

/*
 * Beyond mailbox.h: -1 with errno (and *failed_r, every message marked)
 * when cur/ cannot be opened or its fsync fails, as the deletions may
 * then not last.
 */
int
mailbox_commit(struct mailbox *mb, const uint8_t *marks, size_t *failed_r)
{
	size_t	i, marked = 0;
	int	curfd, saved;

	*failed_r = 0;
	for (i = 0; i < mb->n; i++)
		if (marks[i] & (MAILBOX_DELE | MAILBOX_SEEN))
			marked++;
	if (marked == 0)
		return 0;
	curfd = openat(mb->lockfd, "cur", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (curfd == -1) {
		*failed_r = marked;
		return -1;
	}
	for (i = 0; i < mb->n; i++) {
		if (marks[i] & MAILBOX_DELE) {
			if (msg_unlink(curfd, &mb->msgs[i]) == -1)
				(*failed_r)++;
		} else if (marks[i] & MAILBOX_SEEN) {
			if (msg_seen(curfd, &mb->msgs[i]) == -1)
				(*failed_r)++;
		}
	}
	if (fsync(curfd) == -1) {
		saved = errno;
		close(curfd);
		*failed_r = marked;
		errno = saved;
		return -1;
	}
	close(curfd);
	return 0;
}

void
mailbox_close(struct mailbox **mbp)
{
	struct mailbox	*mb;
	size_t		 i;

	if (mbp == NULL || (mb = *mbp) == NULL)
		return;
	if (mb->lockfd != -1)
		close(mb->lockfd);	/* releases the flock */
	for (i = 0; i < mb->n; i++)
		free(mb->msgs[i].name);
	free(mb->msgs);
	free(mb);
	*mbp = NULL;
}

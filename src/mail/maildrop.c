/*
 * maildrop.c - the drop file of sendmail(1): envelope parser and writer,
 * CRLF conversion, and the address lists of To:, Cc: and Bcc: (see
 * maildrop.h for the format).
 *
 * maildrop_parse() runs in the store role on files that any local user
 * may have written by hand; it trusts none of it.  Every line is looked
 * for within MAILDROP_ENV_MAX octets, every address is bounded before it
 * is copied and then parsed by addr_parse(), the number of recipients is
 * bounded, and anything out of order is refused.  The other functions run
 * in sendmail, as the submitting user, on the message being sent.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "maildrop.h"

#define UID_DIGITS_MAX	10		/* UINT32_MAX has 10 digits */
#define LIST_ADDR_MAX	(ADDR_PATH_MAX * 2)	/* one list element */

/* A bounded writer for maildrop_env_format(). */
struct wbuf {
	char		*buf;
	size_t		 size, len;
	bool		 overflow;
};

/* The state of maildrop_addr_list() within one list element. */
struct alist {
	char		 spec[LIST_ADDR_MAX + 1];
	size_t		 len;
	bool		 ws;		/* white space since the last octet */
	bool		 angle;		/* inside "<...>" */
	bool		 had_angle;	/* this element has an angle-addr */
	bool		 overflow;	/* spec did not fit */
	maildrop_addr_cb cb;
	void		*arg;
};

static bool
is_ctl(uint8_t c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/*
 * The envelope line at *off: sets *line_r and *len_r (LF excluded) and
 * moves *off past the LF.  The LF must lie within MAILDROP_ENV_MAX octets.
 */
static int
next_line(const uint8_t *p, size_t len, size_t *off, const uint8_t **line_r,
    size_t *len_r, const char **errstr_r)
{
	size_t		 max = len < MAILDROP_ENV_MAX ? len : MAILDROP_ENV_MAX;
	const uint8_t	*nl;

	nl = memchr(p + *off, '\n', max - *off);
	if (nl == NULL) {
		*errstr_r = len < MAILDROP_ENV_MAX ? "truncated envelope" :
		    "envelope too long";
		return -1;
	}
	*line_r = p + *off;
	*len_r = (size_t)(nl - *line_r);
	*off = (size_t)(nl - p) + 1;
	return 0;
}

/* If line is "KEY VALUE" (VALUE may be empty), point *val_r at VALUE. */
static bool
line_key(const uint8_t *line, size_t len, const char *key,
    const uint8_t **val_r, size_t *vlen_r)
{
	size_t	klen = strlen(key);

	if (len < klen + 1 || memcmp(line, key, klen) != 0 || line[klen] != ' ')
		return false;
	*val_r = line + klen + 1;
	*vlen_r = len - klen - 1;
	return true;
}

/* Parse the address of a line; an empty one is the null path. */
static int
parse_addr(const uint8_t *v, size_t n, bool null_ok, struct mailaddr *a,
    const char **errstr_r)
{
	char	buf[ADDR_PATH_MAX];

	if (n == 0 && null_ok) {
		memset(a, 0, sizeof(*a));
		a->flags = ADDR_F_NULL;
		return 0;
	}
	if (n == 0) {
		*errstr_r = "empty address";
		return -1;
	}
	if (n > ADDR_PATH_MAX - 2) {
		*errstr_r = "address too long";
		return -1;
	}
	/* addr_parse() would stop at a NUL and accept what comes before. */
	if (memchr(v, '\0', n) != NULL) {
		*errstr_r = "NUL in address";
		return -1;
	}
	memcpy(buf, v, n);
	buf[n] = '\0';
	return addr_parse(buf, true, a, errstr_r);
}

/* Decimal, no sign, no leading zero, below (uid_t)-1. */
static int
parse_uid(const uint8_t *v, size_t n, uid_t *uid_r, const char **errstr_r)
{
	uint64_t	u = 0;
	size_t		i;

	if (n == 0 || n > UID_DIGITS_MAX || (v[0] == '0' && n > 1)) {
		*errstr_r = "bad uid";
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9') {
			*errstr_r = "bad uid";
			return -1;
		}
		u = u * 10 + (v[i] - '0');
	}
	if (u >= UINT32_MAX) {
		*errstr_r = "uid out of range";
		return -1;
	}
	*uid_r = (uid_t)u;
	return 0;
}

/* The lines before the recipients: magic, sender, uid. */
static int
parse_head(const uint8_t *p, size_t len, size_t *off,
    struct maildrop_env *env, const char **errstr_r)
{
	const uint8_t	*line, *v;
	size_t		 n, vn;

	if (next_line(p, len, off, &line, &n, errstr_r) == -1)
		return -1;
	if (n != strlen(MAILDROP_MAGIC) || memcmp(line, MAILDROP_MAGIC, n)) {
		*errstr_r = "not a drop file (bad first line)";
		return -1;
	}
	if (next_line(p, len, off, &line, &n, errstr_r) == -1)
		return -1;
	if (!line_key(line, n, "sender", &v, &vn)) {
		*errstr_r = "expected a sender line";
		return -1;
	}
	if (parse_addr(v, vn, true, &env->sender, errstr_r) == -1)
		return -1;
	if (next_line(p, len, off, &line, &n, errstr_r) == -1)
		return -1;
	if (!line_key(line, n, "uid", &v, &vn)) {
		*errstr_r = "expected a uid line";
		return -1;
	}
	return parse_uid(v, vn, &env->uid, errstr_r);
}

/* rcpt lines up to the empty line. */
static int
parse_rcpts(const uint8_t *p, size_t len, size_t *off,
    struct maildrop_env *env, const char **errstr_r)
{
	const uint8_t	*line, *v;
	size_t		 n, vn;

	for (;;) {
		if (next_line(p, len, off, &line, &n, errstr_r) == -1)
			return -1;
		if (n == 0)
			break;
		if (!line_key(line, n, "rcpt", &v, &vn)) {
			*errstr_r = "expected a rcpt line";
			return -1;
		}
		if (env->nrcpts == MAILDROP_RCPT_MAX) {
			*errstr_r = "too many recipients";
			return -1;
		}
		if (parse_addr(v, vn, false, &env->rcpts[env->nrcpts],
		    errstr_r) == -1)
			return -1;
		env->nrcpts++;
	}
	if (env->nrcpts == 0) {
		*errstr_r = "no recipient";
		return -1;
	}
	return 0;
}

int
maildrop_parse(const uint8_t *p, size_t len, struct maildrop_env *env,
    size_t *body_off_r, const char **errstr_r)
{
	size_t	off = 0, i;

	memset(env, 0, sizeof(*env));
	if (parse_head(p, len, &off, env, errstr_r) == -1 ||
	    parse_rcpts(p, len, &off, env, errstr_r) == -1) {
		memset(env, 0, sizeof(*env));
		return -1;
	}
	env->utf8 = (env->sender.flags & ADDR_F_UTF8) != 0;
	for (i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].flags & ADDR_F_UTF8)
			env->utf8 = true;
	*body_off_r = off;
	return 0;
}

static void
wput(struct wbuf *w, const char *s)
{
	size_t	n = strlen(s);

	if (w->overflow || n >= w->size - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, s, n + 1);
	w->len += n;
}

/*
 * Write "KEY ADDR\n".  The text is parsed back, so that a hand-made
 * mailaddr holding a LF cannot add a line to the envelope.
 */
static int
wput_addr(struct wbuf *w, const char *key, const struct mailaddr *a,
    bool null_ok, const char **errstr_r)
{
	struct mailaddr	 check;
	char		 buf[ADDR_PATH_MAX + 1];

	if ((a->flags & ADDR_F_NULL) && !null_ok) {
		*errstr_r = "null recipient";
		return -1;
	}
	if (a->flags & ADDR_F_NULL)
		buf[0] = '\0';
	else if (addr_format(a, buf, sizeof(buf)) == -1 ||
	    addr_parse(buf, true, &check, errstr_r) == -1) {
		*errstr_r = "unprintable address";
		return -1;
	}
	wput(w, key);
	wput(w, " ");
	wput(w, buf);
	wput(w, "\n");
	return 0;
}

int
maildrop_env_format(const struct maildrop_env *env, char *buf, size_t size,
    size_t *len_r, const char **errstr_r)
{
	struct wbuf	 w = { buf, size, 0, size == 0 };
	char		 uid[32];
	size_t		 i;

	if (env->nrcpts == 0 || env->nrcpts > MAILDROP_RCPT_MAX) {
		*errstr_r = env->nrcpts ? "too many recipients" : "no recipient";
		return -1;
	}
	if (env->uid == (uid_t)-1) {
		*errstr_r = "uid out of range";
		return -1;
	}
	if (size > 0)
		buf[0] = '\0';
	wput(&w, MAILDROP_MAGIC "\n");
	if (wput_addr(&w, "sender", &env->sender, true, errstr_r) == -1)
		return -1;
	snprintf(uid, sizeof(uid), "uid %lu\n", (unsigned long)env->uid);
	wput(&w, uid);
	for (i = 0; i < env->nrcpts; i++)
		if (wput_addr(&w, "rcpt", &env->rcpts[i], false, errstr_r) == -1)
			return -1;
	wput(&w, "\n");
	if (w.overflow) {
		*errstr_r = "envelope does not fit";
		return -1;
	}
	*len_r = w.len;
	return 0;
}

bool
maildrop_name_valid(const char *name)
{
	size_t	i;

	for (i = 0; i < MAILDROP_NAME_LEN; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		    (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return name[i] == '\0';
}

void
maildrop_crlf_init(struct maildrop_crlf *st)
{
	st->cr = false;
	st->bol = true;
}

size_t
maildrop_crlf(struct maildrop_crlf *st, const uint8_t *in, size_t len,
    uint8_t *out)
{
	size_t	i, o = 0;

	for (i = 0; i < len; i++) {
		if (st->cr) {
			/* A CR ends its line, with or without a LF after. */
			st->cr = false;
			st->bol = true;
			out[o++] = '\r';
			out[o++] = '\n';
			if (in[i] == '\n')
				continue;
		}
		if (in[i] == '\r') {
			st->cr = true;
		} else if (in[i] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			st->bol = true;
		} else {
			out[o++] = in[i];
			st->bol = false;
		}
	}
	return o;
}

size_t
maildrop_crlf_end(struct maildrop_crlf *st, uint8_t *out)
{
	if (!st->cr && st->bol)
		return 0;
	st->cr = false;
	st->bol = true;
	out[0] = '\r';
	out[1] = '\n';
	return 2;
}

static void
put(struct alist *l, uint8_t c)
{
	if (l->len == LIST_ADDR_MAX) {
		l->overflow = true;
		return;
	}
	l->spec[l->len++] = (char)c;
}

/*
 * Append an octet of a word.  White space or a comment between two words
 * becomes one space, so that "John Smith" without <> fails as an address
 * instead of becoming "JohnSmith"; around '.' and '@' it goes (CFWS is
 * allowed there, RFC 5322 3.4.1).
 */
static void
put_word(struct alist *l, uint8_t c)
{
	char	last = l->len > 0 ? l->spec[l->len - 1] : '\0';

	if (l->ws && l->len > 0 && last != '.' && last != '@' && c != '.' &&
	    c != '@')
		put(l, ' ');
	l->ws = false;
	put(l, c);
}

/* Skip a comment, nested ones and quoted-pairs included. */
static int
skip_comment(const uint8_t *p, size_t len, size_t *ip, const char **errstr_r)
{
	size_t	depth = 0, i;

	for (i = *ip; i < len; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '(')
			depth++;
		else if (p[i] == ')' && --depth == 0) {
			*ip = i;
			return 0;
		}
	}
	*errstr_r = "unterminated comment";
	return -1;
}

/* Copy a quoted-string or a domain literal, unfolded, as it is written. */
static int
put_quoted(struct alist *l, const uint8_t *p, size_t len, size_t *ip,
    const char **errstr_r)
{
	uint8_t	close = p[*ip] == '"' ? '"' : ']';
	size_t	i;

	put_word(l, p[*ip]);
	for (i = *ip + 1; i < len; i++) {
		if (p[i] == '\r' || p[i] == '\n')
			continue;
		if (is_ctl(p[i]) || (p[i] == '\\' && i + 1 < len &&
		    is_ctl(p[i + 1]))) {
			*errstr_r = "control character in address";
			return -1;
		}
		put(l, p[i]);
		if (p[i] == '\\' && i + 1 < len)
			put(l, p[++i]);
		else if (p[i] == close) {
			*ip = i;
			return 0;
		}
	}
	*errstr_r = close == '"' ? "unterminated quoted string" :
	    "unterminated domain literal";
	return -1;
}

static void
element_reset(struct alist *l)
{
	l->len = 0;
	l->ws = l->angle = l->had_angle = l->overflow = false;
}

/* The end of a list element: report its address, if it has one. */
static int
emit(struct alist *l, const char **errstr_r)
{
	const char	*s = l->spec;
	bool		 had_angle = l->had_angle;

	if (l->overflow) {
		*errstr_r = "address too long";
		return -1;
	}
	l->spec[l->len] = '\0';
	element_reset(l);
	/* An obsolete source route "<@a,@b:x@y>" (RFC 5322 4.4) goes. */
	if (had_angle && *s == '@' && (s = strchr(s, ':')) != NULL)
		s++;
	if (s == NULL) {
		*errstr_r = "bad source route";
		return -1;
	}
	if (*s == '\0' && had_angle) {
		*errstr_r = "empty address <>";
		return -1;
	}
	if (*s == '\0')
		return 0;
	return l->cb(l->arg, s, errstr_r);
}

/*
 * One octet (or quoted-string, literal or comment) at p[*ip].  Outside
 * "<...>", ',' and ';' end an element and ':' ends a group's name; a
 * '<' drops what came before it, a display name.
 */
static int
list_octet(struct alist *l, const uint8_t *p, size_t len, size_t *ip,
    const char **errstr_r)
{
	uint8_t	c = p[*ip];

	if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
		l->ws = true;
		return 0;
	}
	if (c == '(') {
		l->ws = true;
		return skip_comment(p, len, ip, errstr_r);
	}
	if (l->angle && c == '>') {
		l->angle = false;
		return 0;
	}
	if (!l->angle && (c == ',' || c == ';'))
		return emit(l, errstr_r);
	if ((l->angle && c == '<') || (!l->angle && c == '>')) {
		*errstr_r = "unbalanced '<' or '>'";
		return -1;
	}
	if (l->had_angle && !l->angle) {
		*errstr_r = "text after '>'";
		return -1;
	}
	if (!l->angle && (c == '<' || c == ':')) {
		element_reset(l);
		l->angle = l->had_angle = c == '<';
		return 0;
	}
	if (c == '"' || c == '[')
		return put_quoted(l, p, len, ip, errstr_r);
	if (is_ctl(c)) {
		*errstr_r = "control character in address";
		return -1;
	}
	put_word(l, c);
	return 0;
}

int
maildrop_addr_list(const uint8_t *p, size_t len, maildrop_addr_cb cb,
    void *arg, const char **errstr_r)
{
	struct alist	l;
	size_t		i;

	memset(&l, 0, sizeof(l));
	l.cb = cb;
	l.arg = arg;
	for (i = 0; i < len; i++)
		if (list_octet(&l, p, len, &i, errstr_r) == -1)
			return -1;
	if (l.angle) {
		*errstr_r = "unterminated '<'";
		return -1;
	}
	return emit(&l, errstr_r);
}

/* True if the line at h (n octets left) is empty: the end of a header. */
static bool
is_blank(const uint8_t *h, size_t n)
{
	return h[0] == '\n' || (n >= 2 && h[0] == '\r' && h[1] == '\n');
}

/* The end of the field at off: past the LF of its last folded line. */
static size_t
field_end(const uint8_t *h, size_t len, size_t off)
{
	const uint8_t	*nl;

	for (;;) {
		if ((nl = memchr(h + off, '\n', len - off)) == NULL)
			return len;
		off = (size_t)(nl - h) + 1;
		if (off == len || (h[off] != ' ' && h[off] != '\t'))
			return off;
	}
}

/* If the field f (n octets) is called name, the offset of its value;
 * else 0.  White space before the colon is obsolete but allowed. */
static size_t
field_value(const uint8_t *f, size_t n, const char *name)
{
	size_t	nlen = strlen(name), i;

	if (n <= nlen || strncasecmp((const char *)f, name, nlen) != 0)
		return 0;
	for (i = nlen; i < n && (f[i] == ' ' || f[i] == '\t'); i++)
		;
	if (i == n || f[i] != ':')
		return 0;
	return i + 1;
}

int
maildrop_header_addrs(const uint8_t *hdr, size_t len, maildrop_addr_cb cb,
    void *arg, const char **errstr_r)
{
	static const char *const names[] = { "To", "Cc", "Bcc" };
	size_t	off = 0, end, v, i;

	while (off < len && !is_blank(hdr + off, len - off)) {
		end = field_end(hdr, len, off);
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if ((v = field_value(hdr + off, end - off, names[i])) == 0)
				continue;
			if (maildrop_addr_list(hdr + off + v, end - off - v, cb,
			    arg, errstr_r) == -1)
				return -1;
		}
		off = end;
	}
	return 0;
}

size_t
maildrop_header_strip(uint8_t *hdr, size_t len, const char *name)
{
	size_t	r = 0, w = 0, end;

	while (r < len && !is_blank(hdr + r, len - r)) {
		end = field_end(hdr, len, r);
		if (field_value(hdr + r, end - r, name) == 0) {
			memmove(hdr + w, hdr + r, end - r);
			w += end - r;
		}
		r = end;
	}
	memmove(hdr + w, hdr + r, len - r);
	return w + (len - r);
}

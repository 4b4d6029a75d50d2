/*
 * smtp_syntax.c - SMTP command lines and the MAIL / RCPT / BDAT
 * arguments (RFC 5321, 1870, 6152, 3030, 6531, 3461, 4954).
 *
 * Run by the net role on lines from the client, already bounded to
 * line_max and stripped of CRLF, and trusted no further.  Parameters are
 * matched against a table per command; values are checked in place and
 * copied only into fields whose bound was checked first.
 */
#include <string.h>
#include <strings.h>

#include "smtp_syntax.h"

#define SIZE_DIGITS_MAX	20	/* UINT64_MAX has 20 digits */

static const char R_MAIL_SYNTAX[] = "501 5.5.4 Syntax: MAIL FROM:<address>";
static const char R_RCPT_SYNTAX[] = "501 5.5.4 Syntax: RCPT TO:<address>";
static const char R_BAD_SENDER[] = "553 5.1.7 Bad sender address syntax";
static const char R_BAD_RCPT[] = "553 5.1.3 Bad recipient address syntax";
static const char R_PARAM_SYNTAX[] = "501 5.5.4 Invalid parameter syntax";
static const char R_PARAM_UNKNOWN[] = "555 5.5.4 Unsupported parameter";
static const char R_PARAM_DUP[] = "501 5.5.4 Duplicate parameter";
static const char R_BDAT_SYNTAX[] = "501 5.5.4 Syntax: BDAT size [LAST]";

/*
 * One esmtp-param: its value (NULL when there is no "=") and length.
 * The check returns -1 on a bad value; it may store into p.
 */
struct param {
	const char	*name;
	int		(*parse)(const char *val, size_t len, void *p);
};

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_hex(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True if the value is exactly word, case-insensitively. */
static int
val_is(const char *val, size_t len, const char *word)
{
	return len == strlen(word) && strncasecmp(val, word, len) == 0;
}

/*
 * Decimal without overflow: 1 to 20 digits that fit in 64 bits.
 * Returns the number of digits read, or 0.
 */
static size_t
parse_u64(const char *s, uint64_t *v_r)
{
	uint64_t	v = 0;
	size_t		n;

	for (n = 0; is_digit(s[n]); n++) {
		if (n == SIZE_DIGITS_MAX ||
		    __builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[n] - '0'), &v))
			return 0;
	}
	*v_r = v;
	return n;
}

/* xtext (RFC 3461 4): "!".."~" but "+" and "=", or "+" and two hex. */
static int
xtext_valid(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (s[i] == '+') {
			if (len - i < 3 || !is_hex(s[i + 1]) ||
			    !is_hex(s[i + 2]))
				return 0;
			i += 2;
		} else if (s[i] < '!' || s[i] > '~' || s[i] == '=')
			return 0;
	}
	return 1;
}

/* Copy an xtext value into a field of size octets, if it fits. */
static int
xtext_copy(char *dst, size_t size, const char *val, size_t len)
{
	if (val == NULL || len >= size || !xtext_valid(val, len))
		return -1;
	memcpy(dst, val, len);
	dst[len] = '\0';
	return 0;
}

static int
mail_size(const char *val, size_t len, void *arg)
{
	struct smtp_mail_params	*p = arg;

	if (val == NULL || parse_u64(val, &p->size) != len)
		return -1;
	p->has_size = true;
	return 0;
}

static int
mail_body(const char *val, size_t len, void *arg)
{
	struct smtp_mail_params	*p = arg;

	if (val == NULL)
		return -1;
	if (val_is(val, len, "7BIT"))
		p->body = BODY_7BIT;
	else if (val_is(val, len, "8BITMIME"))
		p->body = BODY_8BITMIME;
	else if (val_is(val, len, "BINARYMIME"))
		p->body = BODY_BINARYMIME;
	else
		return -1;
	return 0;
}

static int
mail_smtputf8(const char *val, size_t len, void *arg)
{
	struct smtp_mail_params	*p = arg;

	(void)len;
	if (val != NULL)
		return -1;
	p->smtputf8 = true;
	return 0;
}

static int
mail_ret(const char *val, size_t len, void *arg)
{
	struct smtp_mail_params	*p = arg;

	if (val == NULL)
		return -1;
	if (val_is(val, len, "FULL"))
		p->ret = RET_FULL;
	else if (val_is(val, len, "HDRS"))
		p->ret = RET_HDRS;
	else
		return -1;
	return 0;
}

static int
mail_envid(const char *val, size_t len, void *arg)
{
	struct smtp_mail_params	*p = arg;

	return xtext_copy(p->envid, sizeof(p->envid), val, len);
}

static int
mail_auth(const char *val, size_t len, void *arg)
{
	struct smtp_mail_params	*p = arg;

	return xtext_copy(p->auth, sizeof(p->auth), val, len);
}

/* NOTIFY=NEVER / 1#(SUCCESS / FAILURE / DELAY), RFC 3461 4.1 */
static int
rcpt_notify(const char *val, size_t len, void *arg)
{
	struct smtp_rcpt_params	*p = arg;
	const char		*end, *comma;
	size_t			 n;

	if (val == NULL)
		return -1;
	if (val_is(val, len, "NEVER")) {
		p->notify = NOTIFY_NEVER;
		return 0;
	}
	for (end = val + len; val <= end; val = comma + 1) {
		if ((comma = memchr(val, ',', end - val)) == NULL)
			comma = end;
		n = comma - val;
		if (val_is(val, n, "SUCCESS"))
			p->notify |= NOTIFY_SUCCESS;
		else if (val_is(val, n, "FAILURE"))
			p->notify |= NOTIFY_FAILURE;
		else if (val_is(val, n, "DELAY"))
			p->notify |= NOTIFY_DELAY;
		else
			return -1;
	}
	return 0;
}

/* ORCPT=addr-type ";" xtext, RFC 3461 4.2; addr-type is an atom. */
static int
rcpt_orcpt(const char *val, size_t len, void *arg)
{
	struct smtp_rcpt_params	*p = arg;
	const char		*semi;
	size_t			 i;

	if (val == NULL || (semi = memchr(val, ';', len)) == NULL ||
	    semi == val || semi + 1 == val + len)
		return -1;
	for (i = 0; val + i < semi; i++)
		if (!is_alpha(val[i]) && !is_digit(val[i]) && val[i] != '-')
			return -1;
	return xtext_copy(p->orcpt, sizeof(p->orcpt), val, len);
}

static const struct param mail_params[] = {
	{ "SIZE",	mail_size },
	{ "BODY",	mail_body },
	{ "SMTPUTF8",	mail_smtputf8 },
	{ "RET",	mail_ret },
	{ "ENVID",	mail_envid },
	{ "AUTH",	mail_auth },
	{ NULL,		NULL }
};

static const struct param rcpt_params[] = {
	{ "NOTIFY",	rcpt_notify },
	{ "ORCPT",	rcpt_orcpt },
	{ NULL,		NULL }
};

/*
 * Split one esmtp-param at s into keyword and value; returns its length
 * or 0 when its syntax is bad.  esmtp-keyword = (ALPHA / DIGIT)
 * *(ALPHA / DIGIT / "-"); esmtp-value = 1*(%d33-60 / %d62-126).
 */
static size_t
param_split(const char *s, size_t *klen_r, const char **val_r,
    size_t *vlen_r)
{
	size_t	k, v;

	for (k = 0; is_alpha(s[k]) || is_digit(s[k]) ||
	    (k > 0 && s[k] == '-'); k++)
		;
	*klen_r = k;
	*val_r = NULL;
	*vlen_r = 0;
	if (k == 0)
		return 0;
	if (s[k] == ' ' || s[k] == '\0')
		return k;
	if (s[k] != '=')
		return 0;
	for (v = k + 1; s[v] > ' ' && s[v] <= '~' && s[v] != '='; v++)
		;
	if (v == k + 1 || (s[v] != ' ' && s[v] != '\0'))
		return 0;
	*val_r = s + k + 1;
	*vlen_r = v - k - 1;
	return v;
}

/* Look a keyword up in tab; returns its index or -1. */
static int
param_find(const struct param *tab, const char *key, size_t klen)
{
	int	i;

	for (i = 0; tab[i].name != NULL; i++)
		if (val_is(key, klen, tab[i].name))
			return i;
	return -1;
}

/*
 * Parse the parameters after the path: SP-separated (runs of spaces are
 * tolerated, as are trailing ones), each at most once.
 */
static int
params_parse(const char *s, const struct param *tab, void *p,
    const char **reply_r)
{
	const char	*val;
	size_t		 len, klen, vlen;
	unsigned int	 seen = 0;
	int		 i;

	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return 0;
		if ((len = param_split(s, &klen, &val, &vlen)) == 0) {
			*reply_r = R_PARAM_SYNTAX;
			return -1;
		}
		if ((i = param_find(tab, s, klen)) == -1) {
			*reply_r = R_PARAM_UNKNOWN;
			return -1;
		}
		if (seen & (1U << i)) {
			*reply_r = R_PARAM_DUP;
			return -1;
		}
		seen |= 1U << i;
		if (tab[i].parse(val, vlen, p) == -1) {
			*reply_r = R_PARAM_SYNTAX;
			return -1;
		}
		s += len;
	}
}

/*
 * Skip "FROM:" or "TO:" (any case) and one optional space; returns the
 * position of the path or NULL.
 */
static const char *
skip_prefix(const char *args, const char *prefix)
{
	size_t	len = strlen(prefix);

	if (strncasecmp(args, prefix, len) != 0)
		return NULL;
	args += len;
	if (*args == ' ')
		args++;
	return *args == '<' ? args : NULL;
}

int
smtp_cmd_split(const char *line, char verb_r[SMTP_VERB_MAX],
    const char **args_r)
{
	size_t	n;

	for (n = 0; is_alpha(line[n]); n++) {
		if (n == SMTP_VERB_MAX - 1)
			return -1;
		verb_r[n] = line[n] & ~0x20;
	}
	verb_r[n] = '\0';
	if (n == 0 || (line[n] != ' ' && line[n] != '\0'))
		return -1;
	while (line[n] == ' ')
		n++;
	*args_r = line + n;
	return 0;
}

/*
 * The path is parsed with UTF-8 allowed and refused afterwards when the
 * parameters lack SMTPUTF8: the parameters follow the path, and the two
 * give the same answer since UTF-8 only ever adds ADDR_F_UTF8.
 */
int
smtp_parse_mail(const char *args, struct mailaddr *from,
    struct smtp_mail_params *p, const char **reply_r)
{
	const char	*s, *end, *errstr;

	memset(p, 0, sizeof(*p));
	p->body = BODY_7BIT;
	p->ret = RET_NONE;
	if ((s = skip_prefix(args, "FROM:")) == NULL) {
		*reply_r = R_MAIL_SYNTAX;
		return -1;
	}
	if (addr_parse_path(s, true, from, &end, &errstr) == -1) {
		*reply_r = R_BAD_SENDER;
		return -1;
	}
	if (*end != ' ' && *end != '\0') {
		*reply_r = R_MAIL_SYNTAX;
		return -1;
	}
	if (params_parse(end, mail_params, p, reply_r) == -1)
		return -1;
	if ((from->flags & ADDR_F_UTF8) && !p->smtputf8) {
		*reply_r = R_BAD_SENDER;
		return -1;
	}
	return 0;
}

int
smtp_parse_rcpt(const char *args, bool smtputf8, struct mailaddr *to,
    struct smtp_rcpt_params *p, const char **reply_r)
{
	const char	*s, *end, *errstr;

	memset(p, 0, sizeof(*p));
	if ((s = skip_prefix(args, "TO:")) == NULL) {
		*reply_r = R_RCPT_SYNTAX;
		return -1;
	}
	if (addr_parse_path(s, smtputf8, to, &end, &errstr) == -1 ||
	    (to->flags & ADDR_F_NULL)) {
		*reply_r = R_BAD_RCPT;
		return -1;
	}
	if (*end != ' ' && *end != '\0') {
		*reply_r = R_RCPT_SYNTAX;
		return -1;
	}
	return params_parse(end, rcpt_params, p, reply_r);
}

int
smtp_parse_bdat(const char *args, uint64_t *size_r, bool *last_r,
    const char **reply_r)
{
	uint64_t	size;
	size_t		n;
	bool		last;

	if ((n = parse_u64(args, &size)) == 0 ||
	    (args[n] != ' ' && args[n] != '\0'))
		goto bad;
	for (args += n; *args == ' '; args++)
		;
	if ((last = strncasecmp(args, "LAST", 4) == 0))
		for (args += 4; *args == ' '; args++)
			;
	if (*args != '\0')
		goto bad;
	*size_r = size;
	*last_r = last;
	return 0;
bad:
	*reply_r = R_BDAT_SYNTAX;
	return -1;
}

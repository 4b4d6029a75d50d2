/*
 * smtp_reply.c - reading a server's replies (smtp_reply.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_reply.h"

void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
}

/* Append len octets of s to the text, controls made spaces. */
static void
text_add(struct smtp_reply *r, const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len && r->len + 1 < sizeof(r->text); i++) {
		unsigned char c = (unsigned char)s[i];

		r->text[r->len++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	r->text[r->len] = '\0';
}

/* "2.1.0" after the code when it is there and of the code's class. */
static void
set_status(struct smtp_reply *r)
{
	const char	*p = r->text + 4;
	size_t		 n;

	if (r->len > 4) {
		n = strspn(p, "0123456789.");
		if (n >= 5 && n < sizeof(r->status) && p[0] == r->text[0] &&
		    p[1] == '.' && (p[n] == ' ' || p[n] == '\0')) {
			memcpy(r->status, p, n);
			r->status[n] = '\0';
			return;
		}
	}
	r->status[0] = r->text[0];
	memcpy(r->status + 1, ".0.0", 5);
}

int
smtp_reply_add(struct smtp_reply *r, const char *line, size_t len)
{
	unsigned int	code;

	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-') ||
	    r->lines >= SMTP_REPLY_LINES_MAX)
		return -1;
	code = (unsigned int)(line[0] - '0') * 100 +
	    (unsigned int)(line[1] - '0') * 10 + (unsigned int)(line[2] - '0');
	if (code < 200 || code > 599 || (r->lines > 0 && code != r->code))
		return -1;
	if (r->lines++ == 0) {
		r->code = code;
		text_add(r, line, 3);
		text_add(r, " ", 1);
	} else if (len > 4 && r->len > 4)
		text_add(r, " ", 1);
	if (len > 4)
		text_add(r, line + 4, len - 4);
	if (len > 3 && line[3] == '-')
		return 0;
	/* no text at all: "250" */
	while (r->len > 3 && r->text[r->len - 1] == ' ')
		r->text[--r->len] = '\0';
	set_status(r);
	return 1;
}

void
smtp_ehlo_init(struct smtp_ehlo *e)
{
	memset(e, 0, sizeof(*e));
}

/* Is kw (len octets) the keyword word, alone or followed by a space? */
static bool
is_kw(const char *kw, size_t len, const char *word, const char **rest_r)
{
	size_t	n = strlen(word);

	if (len < n || strncasecmp(kw, word, n) != 0 ||
	    (len > n && kw[n] != ' ' && kw[n] != '='))
		return false;
	if (rest_r != NULL)
		*rest_r = len > n ? kw + n + 1 : kw + n;
	return true;
}

void
smtp_ehlo_keyword(struct smtp_ehlo *e, const char *kw, size_t len)
{
	const char	*rest, *end = kw + len, *w;
	size_t		 n;

	if (is_kw(kw, len, "PIPELINING", NULL))
		e->pipelining = true;
	else if (is_kw(kw, len, "STARTTLS", NULL))
		e->starttls = true;
	else if (is_kw(kw, len, "8BITMIME", NULL))
		e->eightbit = true;
	else if (is_kw(kw, len, "SMTPUTF8", NULL))
		e->smtputf8 = true;
	else if (is_kw(kw, len, "CHUNKING", NULL))
		e->chunking = true;
	else if (is_kw(kw, len, "BINARYMIME", NULL))
		e->binarymime = true;
	else if (is_kw(kw, len, "SIZE", &rest)) {
		uint64_t v = 0;

		e->has_size = true;
		for (; rest < end && isdigit((unsigned char)*rest); rest++) {
			if (v > (UINT64_MAX - 9) / 10) {
				v = 0;		/* absurd: no limit known */
				break;
			}
			v = v * 10 + (uint64_t)(*rest - '0');
		}
		e->size_max = v;
	} else if (is_kw(kw, len, "AUTH", &rest)) {
		for (w = rest; w < end; w += n) {
			while (w < end && *w == ' ')
				w++;
			for (n = 0; w + n < end && w[n] != ' '; n++)
				;
			if (n == 5 && strncasecmp(w, "PLAIN", 5) == 0)
				e->auth_plain = true;
			else if (n == 5 && strncasecmp(w, "LOGIN", 5) == 0)
				e->auth_login = true;
		}
	}
}

/*
 * envelope.c - the text form of a queued message's envelope.
 *
 * Written and read by the store role only; the values came from net,
 * which bounded them and refused CR, LF and NUL in every one, so a
 * value cannot break a line.  The parser still trusts nothing: a file
 * damaged on disk gives an error, never an overflow.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "envelope.h"
#include "xalloc.h"

struct env_out {
	char	*p;
	size_t	 len, size;
};

static void
out_line(struct env_out *o, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
out_line(struct env_out *o, const char *key, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	for (;;) {
		size_t room = o->size - o->len;

		n = snprintf(o->p + o->len, room, "%s ", key);
		if (n >= 0 && (size_t)n < room) {
			va_start(ap, fmt);
			n += vsnprintf(o->p + o->len + n, room - n, fmt, ap);
			va_end(ap);
			if ((size_t)n + 1 < room) {
				o->p[o->len + n] = '\n';
				o->len += (size_t)n + 1;
				return;
			}
		}
		o->size *= 2;
		o->p = xreallocarray(o->p, o->size, 1);
	}
}

char *
envelope_format(const struct envelope *e, size_t *len_r)
{
	struct env_out	 o = { xmalloc(1024), 0, 1024 };
	size_t		 i;

	out_line(&o, "version", "1");
	out_line(&o, "qid", "%s", e->qid);
	out_line(&o, "time", "%lld", (long long)e->time);
	out_line(&o, "helo", "%s", e->helo);
	out_line(&o, "client", "%s", e->client);
	out_line(&o, "proto", "%s", e->proto);
	out_line(&o, "body", "%u", e->body);
	out_line(&o, "smtputf8", "%d", e->smtputf8);
	out_line(&o, "from", "%s", e->from);
	for (i = 0; i < e->ntargets; i++) {
		const struct env_target *t = &e->targets[i];

		out_line(&o, "rcpt", "%s", t->rcpt);
		if (t->local)
			out_line(&o, "local", "%s %s", t->domain,
			    t->local_part);
		else
			out_line(&o, "remote", "%s@%s", t->local_part,
			    t->domain);
	}
	out_line(&o, "end", "%zu", e->ntargets);
	*len_r = o.len;
	return o.p;
}

struct env_target *
envelope_add_target(struct envelope *e)
{
	struct env_target	*t;

	e->targets = xreallocarray(e->targets, e->ntargets + 1,
	    sizeof(*e->targets));
	t = &e->targets[e->ntargets++];
	memset(t, 0, sizeof(*t));
	return t;
}

void
envelope_clear(struct envelope *e)
{
	free(e->targets);
	e->targets = NULL;
	e->ntargets = 0;
}

static int
copy_field(char *dst, size_t size, const char *v)
{
	return strlcpy(dst, v, size) < size ? 0 : -1;
}

/* One "key value" line; the caller's copy is NUL-terminated. */
static int
parse_line(struct envelope *e, char *key, char *v, char *rcpt,
    bool *end_r)
{
	struct env_target	*t;
	char			*sp, *at;

	if (strcmp(key, "version") == 0)
		return strcmp(v, "1") == 0 ? 0 : -1;
	if (strcmp(key, "qid") == 0)
		return copy_field(e->qid, sizeof(e->qid), v);
	if (strcmp(key, "time") == 0) {
		e->time = (time_t)strtoll(v, NULL, 10);
		return 0;
	}
	if (strcmp(key, "helo") == 0)
		return copy_field(e->helo, sizeof(e->helo), v);
	if (strcmp(key, "client") == 0)
		return copy_field(e->client, sizeof(e->client), v);
	if (strcmp(key, "proto") == 0)
		return copy_field(e->proto, sizeof(e->proto), v);
	if (strcmp(key, "body") == 0) {
		e->body = (unsigned int)strtoul(v, NULL, 10);
		return 0;
	}
	if (strcmp(key, "smtputf8") == 0) {
		e->smtputf8 = strcmp(v, "1") == 0;
		return 0;
	}
	if (strcmp(key, "from") == 0)
		return copy_field(e->from, sizeof(e->from), v);
	if (strcmp(key, "rcpt") == 0)
		return copy_field(rcpt, ADDR_PATH_MAX + 1, v);
	if (strcmp(key, "local") == 0) {
		if ((sp = strchr(v, ' ')) == NULL)
			return -1;
		*sp++ = '\0';
		t = envelope_add_target(e);
		t->local = true;
		strlcpy(t->rcpt, rcpt, sizeof(t->rcpt));
		return copy_field(t->domain, sizeof(t->domain), v) |
		    copy_field(t->local_part, sizeof(t->local_part), sp);
	}
	if (strcmp(key, "remote") == 0) {
		if ((at = strrchr(v, '@')) == NULL)
			return -1;
		*at++ = '\0';
		t = envelope_add_target(e);
		strlcpy(t->rcpt, rcpt, sizeof(t->rcpt));
		return copy_field(t->domain, sizeof(t->domain), at) |
		    copy_field(t->local_part, sizeof(t->local_part), v);
	}
	if (strcmp(key, "end") == 0) {
		*end_r = true;
		return strtoull(v, NULL, 10) == e->ntargets ? 0 : -1;
	}
	return -1;
}

int
envelope_parse(const char *text, size_t len, struct envelope *e,
    const char **errstr_r)
{
	char	 line[1024], rcpt[ADDR_PATH_MAX + 1] = "", *sp;
	size_t	 pos = 0, n;
	bool	 end = false;

	while (pos < len && !end) {
		const char *nl = memchr(text + pos, '\n', len - pos);

		if (nl == NULL || (n = (size_t)(nl - (text + pos))) >=
		    sizeof(line)) {
			*errstr_r = "malformed envelope line";
			return -1;
		}
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if ((sp = strchr(line, ' ')) == NULL) {
			*errstr_r = "envelope line without a value";
			return -1;
		}
		*sp++ = '\0';
		if (parse_line(e, line, sp, rcpt, &end) == -1) {
			*errstr_r = "bad envelope field";
			return -1;
		}
	}
	if (!end || pos != len) {
		*errstr_r = "truncated envelope";
		return -1;
	}
	return 0;
}

void
envelope_trailer(char buf[ENV_TRAILER_LEN + 1], uint64_t msglen,
    uint64_t envlen)
{
	snprintf(buf, ENV_TRAILER_LEN + 1, "#POSTINO %020" PRIu64 " %020"
	    PRIu64 "\n", msglen, envlen);
}

int
envelope_trailer_parse(const char *buf, uint64_t *msglen_r,
    uint64_t *envlen_r)
{
	char	copy[ENV_TRAILER_LEN + 1], *end;

	memcpy(copy, buf, ENV_TRAILER_LEN);
	copy[ENV_TRAILER_LEN] = '\0';
	if (strncmp(copy, "#POSTINO ", 9) != 0 || copy[29] != ' ' ||
	    copy[50] != '\n')
		return -1;
	*msglen_r = strtoull(copy + 9, &end, 10);
	if (end != copy + 29)
		return -1;
	*envlen_r = strtoull(copy + 30, &end, 10);
	return end == copy + 50 ? 0 : -1;
}

static int
target_cmp(const void *a, const void *b)
{
	const struct env_target	*x = a, *y = b;
	int			 r;

	if (x->local != y->local)
		return x->local ? -1 : 1;
	if ((r = strcmp(x->domain, y->domain)) != 0)
		return r;
	return strcmp(x->local_part, y->local_part);
}

void
envelope_dedupe(struct envelope *e)
{
	size_t	i, n = 0;

	if (e->ntargets < 2)
		return;
	qsort(e->targets, e->ntargets, sizeof(*e->targets), target_cmp);
	for (i = 1; i < e->ntargets; i++)
		if (target_cmp(&e->targets[n], &e->targets[i]) != 0)
			e->targets[++n] = e->targets[i];
	e->ntargets = n + 1;
}

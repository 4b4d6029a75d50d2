/*
 * spf_driver.c - runs SPF checks (src/mail/spf.c) against zone data held
 * in memory, for the OpenSPF conformance suites (tests/e2e/
 * test_spf_suite.py) and for trying records by hand.
 *
 * Input, on stdin, one command a line, fields split by TAB; in a field
 * "\\" is a backslash, "\t", "\n", "\r" what they say and "\xHH" any
 * octet:
 *
 *	zone NAME TXT STRING...	a TXT record of its character-strings
 *	zone NAME SPF STRING...	an SPF (type 99) record, the same way
 *	zone NAME A 192.0.2.1	zone NAME AAAA 2001:db8::1
 *	zone NAME MX PREF HOST	zone NAME PTR HOST	zone NAME CNAME HOST
 *	zone NAME TIMEOUT	the suite's bare TIMEOUT entry
 *	zone NAME TIMEOUT TYPE	a record whose value is TIMEOUT
 *	zone NAME NONE TYPE	a record whose value is NONE ("TXT: NONE")
 *	check IP MAILFROM HELO [RECEIVER]
 *	reset			forget the zone
 *
 * A check prints one line: result, explanation, mechanism, problem and
 * the Received-SPF field, TAB-separated and escaped the same way.
 *
 * The zone is read as the suite's README (pyspf's test driver) says:
 * this implementation asks TXT only, so an SPF record is also a TXT
 * record of its name unless the name has TXT entries of its own; names
 * are compared without regard to case; a name not in the zone is
 * NXDOMAIN; a bare TIMEOUT times out every type that has no record
 * listed above it; a TIMEOUT value times out its own type.  CNAMEs are
 * followed as a resolver does, and a chain longer than CNAME_MAX (a
 * loop) is a SERVFAIL.  Every query the checker asks is checked
 * against the promises of spf.h, and their number is bounded.
 *
 *	spf_driver [-v]		-v: log each query and answer on stderr
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

#define FIELDS_MAX	64
#define LINE_MAX_LEN	65536
#define CNAME_MAX	8
#define QUERIES_MAX	200	/* more than the limits of RFC 7208 allow */
#define ANSWER_MAX	64

enum kind { K_RECORD, K_TIMEOUT, K_TYPE_TIMEOUT, K_NONE };

struct entry {
	char		*name;		/* lower case, no trailing dot */
	enum kind	 kind;
	char		 type[8];	/* TXT SPF A AAAA MX PTR CNAME */
	char		*data;		/* TXT, SPF: the strings joined */
	size_t		 len;
	bool		 copy;		/* a TXT copy of an SPF record */
};

static struct entry	*zone;
static size_t		 nzone;
static bool		 verbose;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fputs("spf_driver: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n == 0 ? 1 : n)) == NULL)
		die("out of memory");
	return p;
}

/* Undo the field escapes in place; the length. */
static size_t
unescape(char *s)
{
	char	*w = s, *r = s;

	while (*r != '\0') {
		if (*r != '\\') {
			*w++ = *r++;
			continue;
		}
		r++;
		switch (*r) {
		case '\\': *w++ = '\\'; r++; break;
		case 't': *w++ = '\t'; r++; break;
		case 'n': *w++ = '\n'; r++; break;
		case 'r': *w++ = '\r'; r++; break;
		case 'x':
			if (!isxdigit((unsigned char)r[1]) ||
			    !isxdigit((unsigned char)r[2]))
				die("bad \\x escape");
			{
				char hex[3] = { r[1], r[2], '\0' };

				*w++ = (char)strtoul(hex, NULL, 16);
			}
			r += 3;
			break;
		default:
			die("bad escape \\%c", *r);
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static void
escape_out(FILE *fp, const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\')
			fputs("\\\\", fp);
		else if (c == '\t')
			fputs("\\t", fp);
		else if (c == '\n')
			fputs("\\n", fp);
		else if (c == '\r')
			fputs("\\r", fp);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(fp, "\\x%02x", c);
		else
			fputc(c, fp);
	}
}

/* name in lower case without its trailing dot, malloc'd */
static char *
canon(const char *name)
{
	size_t	 n = strlen(name), i;
	char	*c;

	if (n > 0 && name[n - 1] == '.')
		n--;
	c = xrealloc(NULL, n + 1);
	for (i = 0; i < n; i++)
		c[i] = (char)tolower((unsigned char)name[i]);
	c[n] = '\0';
	return c;
}

static struct entry *
zone_add(const char *name, enum kind kind, const char *type)
{
	struct entry	*e;

	if (strlen(type) >= sizeof(e->type))
		die("bad type %s", type);
	zone = xrealloc(zone, (nzone + 1) * sizeof(*zone));
	e = &zone[nzone++];
	memset(e, 0, sizeof(*e));
	e->name = canon(name);
	e->kind = kind;
	memcpy(e->type, type, strlen(type) + 1);
	return e;
}

static void
zone_reset(void)
{
	size_t	i;

	for (i = 0; i < nzone; i++) {
		free(zone[i].name);
		free(zone[i].data);
	}
	free(zone);
	zone = NULL;
	nzone = 0;
}

static void
cmd_zone(char **f, size_t *flen, size_t nf)
{
	struct entry	*e;
	size_t		 i, len = 0;

	if (nf < 3)
		die("zone: NAME TYPE ...");
	if (strcmp(f[2], "TIMEOUT") == 0) {
		zone_add(f[1], nf > 3 ? K_TYPE_TIMEOUT : K_TIMEOUT,
		    nf > 3 ? f[3] : "");
		return;
	}
	if (strcmp(f[2], "NONE") == 0) {
		zone_add(f[1], K_NONE, nf > 3 ? f[3] : "");
		return;
	}
	e = zone_add(f[1], K_RECORD, f[2]);
	if (strcmp(f[2], "TXT") == 0 || strcmp(f[2], "SPF") == 0) {
		/* the character-strings joined (RFC 7208 3.3) */
		e->data = xrealloc(NULL, 1);
		for (i = 3; i < nf; i++) {
			e->data = xrealloc(e->data, len + flen[i] + 1);
			memcpy(e->data + len, f[i], flen[i]);
			len += flen[i];
		}
		e->data[len] = '\0';
		e->len = len;
		return;
	}
	if (strcmp(f[2], "MX") == 0 && nf == 5)
		i = 4;
	else if (nf == 4)
		i = 3;
	else
		die("zone %s %s: wrong number of fields", f[1], f[2]);
	e->data = strdup(f[i]);
	e->len = flen[i];
}

/* Does name have an entry of type (of any kind)? */
static bool
has_type(const char *name, const char *type)
{
	size_t	i;

	for (i = 0; i < nzone; i++)
		if (strcmp(zone[i].name, name) == 0 &&
		    strcmp(zone[i].type, type) == 0 && !zone[i].copy)
			return true;
	return false;
}

/* SPF records become TXT records of names without TXT entries. */
static void
zone_copy_spf(void)
{
	size_t	i, n;

	/* drop the copies of an earlier check, the zone may have grown */
	for (i = n = 0; i < nzone; i++) {
		if (zone[i].copy) {
			free(zone[i].name);
			free(zone[i].data);
		} else
			zone[n++] = zone[i];
	}
	nzone = n;
	for (i = 0; i < n; i++) {
		struct entry *e;

		if (zone[i].kind != K_RECORD ||
		    strcmp(zone[i].type, "SPF") != 0 ||
		    has_type(zone[i].name, "TXT"))
			continue;
		e = zone_add(zone[i].name, K_RECORD, "TXT");
		e->copy = true;
		e->len = zone[i].len;
		e->data = xrealloc(NULL, e->len + 1);
		memcpy(e->data, zone[i].data, e->len + 1);
	}
}

struct answer {
	enum spf_dns	status;
	struct spf_rr	rr[ANSWER_MAX];
	size_t		n;
};

/*
 * The records of (name, type) in zone order.  The generated TXT copies
 * sit at the end of the zone, after any TIMEOUT of their name, as in
 * pyspf's driver.
 */
static void
lookup(const char *qname, const char *type, struct answer *a, int depth)
{
	char		*name = canon(qname);
	const char	*cname = NULL;
	bool		 exists = false, seen = false;
	size_t		 i;

	a->n = 0;
	a->status = SPF_DNS_OK;
	for (i = 0; i < nzone; i++) {
		struct entry *e = &zone[i];

		if (strcmp(e->name, name) != 0)
			continue;
		exists = true;
		if (e->kind == K_NONE)
			continue;
		if (e->kind == K_TIMEOUT) {
			if (!seen) {
				a->status = SPF_DNS_TEMPFAIL;
				goto out;
			}
			break;
		}
		if (strcmp(e->type, type) == 0)
			seen = true;
		if (e->kind == K_TYPE_TIMEOUT) {
			if (strcmp(e->type, type) == 0) {
				a->status = SPF_DNS_TEMPFAIL;
				goto out;
			}
			continue;
		}
		if (strcmp(e->type, "CNAME") == 0)
			cname = e->data;
		if (strcmp(e->type, type) != 0)
			continue;
		if (a->n == ANSWER_MAX)
			die("%s: too many records", name);
		memset(&a->rr[a->n], 0, sizeof(a->rr[a->n]));
		if (strcmp(type, "A") == 0 || strcmp(type, "AAAA") == 0) {
			uint8_t *o = a->rr[a->n].addr;

			if (strcmp(type, "A") == 0) {
				o[10] = o[11] = 0xff;
				if (inet_pton(AF_INET, e->data, o + 12) != 1)
					die("bad A %s", e->data);
			} else if (inet_pton(AF_INET6, e->data, o) != 1)
				die("bad AAAA %s", e->data);
		} else {
			a->rr[a->n].text = e->data;
			a->rr[a->n].len = e->len;
		}
		a->n++;
	}
	if (!exists)
		a->status = SPF_DNS_NXDOMAIN;
	else if (a->n == 0 && cname != NULL) {
		if (depth == CNAME_MAX)
			a->status = SPF_DNS_TEMPFAIL;
		else
			lookup(cname, type, a, depth + 1);
	} else if (a->n == 0)
		a->status = SPF_DNS_NODATA;
out:
	free(name);
}

/* What spf.h promises of a query name. */
static void
check_query(const struct spf_query *q)
{
	size_t	i, label = 0, n = strlen(q->name);

	if (n == 0 || n > SPF_NAME_MAX || q->name[n - 1] == '.')
		die("query name \"%s\" breaks spf.h", q->name);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)q->name[i];

		if (c < 0x20 || c > 0x7e)
			die("query name has octet %02x", c);
		label = c == '.' ? 0 : label + 1;
		if (label > 63 || (c == '.' && (i == 0 ||
		    q->name[i - 1] == '.')))
			die("query name \"%s\" has a bad label", q->name);
	}
}

static const char *const qtypes[] = {
	[SPF_Q_TXT] = "TXT", [SPF_Q_A] = "A", [SPF_Q_AAAA] = "AAAA",
	[SPF_Q_MX] = "MX", [SPF_Q_PTR] = "PTR",
};

static const char *const statuses[] = {
	[SPF_DNS_OK] = "ok", [SPF_DNS_NXDOMAIN] = "nxdomain",
	[SPF_DNS_NODATA] = "nodata", [SPF_DNS_TEMPFAIL] = "tempfail",
};

static void
print_field(const char *s)
{
	putchar('\t');
	if (s != NULL)
		escape_out(stdout, s, strlen(s));
}

static void
cmd_check(char **f, size_t nf)
{
	struct spf_params	 p;
	struct spf_query	 q;
	struct answer		 a;
	struct spf		*s;
	const char		*errstr;
	char			 hdr[SPF_HEADER_MAX];
	int			 queries = 0;

	if (nf < 4 || nf > 5)
		die("check: IP MAILFROM HELO [RECEIVER]");
	zone_copy_spf();
	memset(&p, 0, sizeof(p));
	p.ip = f[1];
	p.sender = f[2];
	p.helo = f[3];
	p.receiver = nf > 4 ? f[4] : NULL;
	p.default_exp = "DEFAULT";
	p.now = 1700000000;
	if ((s = spf_new(&p, &errstr)) == NULL)
		die("spf_new: %s", errstr);
	while (spf_next(s, &q) == SPF_STEP_QUERY) {
		if (++queries > QUERIES_MAX)
			die("more than %d queries", QUERIES_MAX);
		check_query(&q);
		lookup(q.name, qtypes[q.type], &a, 0);
		if (verbose)
			fprintf(stderr, "query %s %s: %s, %zu records\n",
			    qtypes[q.type], q.name, statuses[a.status], a.n);
		spf_answer(s, a.status, a.rr, a.n);
	}
	if (spf_next(s, &q) != SPF_STEP_DONE)
		die("not done after done");
	if (spf_received(s, hdr, sizeof(hdr)) == -1)
		die("Received-SPF does not fit");
	fputs(spf_result_name(spf_result(s)), stdout);
	print_field(spf_explanation(s));
	print_field(spf_mechanism(s));
	print_field(spf_problem(s));
	print_field(hdr);
	putchar('\n');
	fflush(stdout);
	spf_free(&s);
	if (s != NULL)
		die("spf_free did not clear");
}

int
main(int argc, char **argv)
{
	char	*line, *f[FIELDS_MAX], *p;
	size_t	 flen[FIELDS_MAX], nf, i;

	if (argc > 1 && strcmp(argv[1], "-v") == 0)
		verbose = true;
	line = xrealloc(NULL, LINE_MAX_LEN);
	while (fgets(line, LINE_MAX_LEN, stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		for (nf = 0, p = line; nf < FIELDS_MAX; nf++) {
			f[nf] = p;
			if ((p = strchr(p, '\t')) == NULL) {
				nf++;
				break;
			}
			*p++ = '\0';
		}
		if (p != NULL)
			die("too many fields");
		for (i = 0; i < nf; i++)
			flen[i] = unescape(f[i]);
		if (strcmp(f[0], "zone") == 0)
			cmd_zone(f, flen, nf);
		else if (strcmp(f[0], "check") == 0)
			cmd_check(f, nf);
		else if (strcmp(f[0], "reset") == 0)
			zone_reset();
		else
			die("unknown command %s", f[0]);
	}
	zone_reset();
	free(line);
	return 0;
}

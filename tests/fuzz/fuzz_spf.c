/*
 * fuzz_spf.c - libFuzzer target for spf.c.
 *
 * The whole input goes through the pure parts: as an SPF record
 * (spf_record_parse(), and so spf_term_parse() on each term), as a
 * domain-spec and as exp text through spf_macro_check() and
 * spf_macro_expand(), which must agree with each other.
 *
 * Then it drives a whole check.  Its first octet chooses the client,
 * sender and HELO name from small tables; each further line (LF) is the
 * answer to the next query: first octet the status (mod 4: OK,
 * NXDOMAIN, NODATA, TEMPFAIL), then records split by TAB.  A TXT, MX or
 * PTR record is its octets; an A or AAAA record "c" is the client's own
 * address, else its first octets padded with zeros (IPv4-mapped for A).
 * When the lines run out, every query gets NXDOMAIN.
 *
 * Invariants: the check ends within the query bound that the limits of
 * RFC 7208 4.6.4 give, every query name keeps the promises of spf.h,
 * an explanation exists for fail only and is printable, and the
 * Received-SPF field fits SPF_HEADER_MAX with CRLF only in its folds.
 */
#include <arpa/inet.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RR_MAX		32
/* 1 record + 10 terms of 1 + 10 lookups + the exp= text + %{p}: 11 */
#define QUERIES_MAX	(1 + SPF_LOOKUPS_MAX * (1 + SPF_MXPTR_MAX) + 1 + 11)

static const char *const ips[] = {
	"192.0.2.1", "2001:db8::cb01", "::ffff:192.0.2.1", "10.0.0.1",
};
static const char *const senders[] = {
	"user@example.com", "", "@example.com", "a.b-c+d=e@example.com",
	"\"x y\"@example.com", "user@example.com.", "example.com",
	"u%{l}@ex\x01ample.com",
};
static const char *const helos[] = {
	"mail.example.com", "%%%%", "JUMPIN' JUPITER", "[192.0.2.1]",
};

static void
check_pure(const char *p, size_t len)
{
	static const struct spf_macros	m = {
		.s = "strong-bad@email.example.com", .l = "strong-bad",
		.o = "email.example.com", .d = "email.example.com",
		.i = "192.0.2.3", .p = "mx.example.org", .v = "in-addr",
		.h = "mx.example.org", .c = "192.0.2.3", .r = "mx.example.net",
		.t = "1700000000",
	};
	struct spf_record	 r;
	char			 out[SPF_NAME_MAX + 1], exp[SPF_EXP_MAX];
	const char		*errstr;
	int			 n, flags;

	if (spf_record_parse(p, len, &r, &errstr) == 0) {
		if (!spf_record_is_spf(p, len))
			abort();
	} else if (r.bad != NULL && (r.bad < p || r.bad + r.bad_len > p + len))
		abort();
	for (flags = 0; flags <= SPF_MACRO_EXP; flags += SPF_MACRO_EXP) {
		char	*buf = flags ? exp : out;
		size_t	 size = flags ? sizeof(exp) : sizeof(out);

		n = spf_macro_expand(p, len, &m, flags, buf, size, &errstr);
		if (spf_macro_check(p, len, flags, NULL, &errstr) == -1 &&
		    n != -1)
			abort();
		if (n == -1)
			continue;
		if ((size_t)n >= size || strlen(buf) != (size_t)n ||
		    (!flags && n > SPF_NAME_MAX))
			abort();
	}
}

static void
check_query(const struct spf_query *q)
{
	size_t	i, label = 0, n = strnlen(q->name, sizeof(q->name));

	if (n == 0 || n > SPF_NAME_MAX || q->name[n - 1] == '.' ||
	    q->name[0] == '.' || q->type > SPF_Q_PTR)
		abort();
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)q->name[i];

		if (c < 0x20 || c > 0x7e)
			abort();
		if (c == '.' && q->name[i - 1] == '.')
			abort();
		label = c == '.' ? 0 : label + 1;
		if (label > 63)
			abort();
	}
}

/* Answer q with the next line of the input, or NXDOMAIN. */
static void
answer(struct spf *s, const struct spf_query *q, const uint8_t **pp,
    const uint8_t *end, const uint8_t client[16])
{
	struct spf_rr	 rr[RR_MAX];
	const uint8_t	*p = *pp, *nl, *r, *tab;
	enum spf_dns	 status;
	size_t		 n = 0, k;

	if (p >= end) {
		spf_answer(s, SPF_DNS_NXDOMAIN, NULL, 0);
		return;
	}
	if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
		nl = end;
	*pp = nl + 1;
	status = (enum spf_dns)(p[0] % 4);
	for (r = p + 1; r <= nl && n < RR_MAX; r = tab + 1) {
		if ((tab = memchr(r, '\t', (size_t)(nl - r))) == NULL)
			tab = nl;
		memset(&rr[n], 0, sizeof(rr[n]));
		rr[n].text = (const char *)r;
		rr[n].len = (size_t)(tab - r);
		if (q->type == SPF_Q_A || q->type == SPF_Q_AAAA) {
			if (rr[n].len == 1 && r[0] == 'c')
				memcpy(rr[n].addr, client, 16);
			else if (q->type == SPF_Q_A) {
				rr[n].addr[10] = rr[n].addr[11] = 0xff;
				k = rr[n].len < 4 ? rr[n].len : 4;
				memcpy(rr[n].addr + 12, r, k);
			} else {
				k = rr[n].len < 16 ? rr[n].len : 16;
				memcpy(rr[n].addr, r, k);
			}
		}
		n++;
	}
	spf_answer(s, status, rr, n);
}

static void
check_header(const char *h, int n)
{
	int	i, col = 0;

	if (n < 2 || strlen(h) != (size_t)n || h[n - 2] != '\r' ||
	    h[n - 1] != '\n')
		abort();
	for (i = 0; i < n - 2; i++, col++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '\r') {
			if (h[i + 1] != '\n' || h[i + 2] != '\t')
				abort();
			i++;
			col = 0;
		} else if ((c < 0x20 && c != '\t') || c > 0x7e || col >= 998)
			abort();
	}
}

static void
check_run(const uint8_t *data, size_t size)
{
	struct spf_params	 p;
	struct spf_query	 q;
	struct spf		*s;
	const uint8_t		*in = data + 1, *end = data + size;
	const char		*errstr, *exp;
	char			 hdr[SPF_HEADER_MAX];
	uint8_t			 client[16];
	unsigned int		 queries = 0;
	size_t			 i;
	int			 n;

	memset(&p, 0, sizeof(p));
	p.ip = ips[data[0] % 4];
	p.sender = senders[(data[0] >> 2) % 8];
	p.helo = helos[(data[0] >> 5) % 4];
	p.receiver = "mx.example.org";
	if (data[0] & 0x80)
		p.default_exp = "%{o} %{p} %{c}";
	if ((s = spf_new(&p, &errstr)) == NULL)
		abort();
	memset(client, 0, sizeof(client));
	if (strchr(p.ip, ':') == NULL || strchr(p.ip, '.') != NULL) {
		client[10] = client[11] = 0xff;
		inet_pton(AF_INET, strrchr(p.ip, ':') ? strrchr(p.ip, ':') + 1 :
		    p.ip, client + 12);
	} else
		inet_pton(AF_INET6, p.ip, client);
	while (spf_next(s, &q) == SPF_STEP_QUERY) {
		if (++queries > QUERIES_MAX)
			abort();
		check_query(&q);
		answer(s, &q, &in, end, client);
	}
	if (spf_result(s) > SPF_PERMERROR)
		abort();
	exp = spf_explanation(s);
	if ((exp != NULL) != (spf_result(s) == SPF_FAIL))
		abort();
	for (i = 0; exp != NULL && exp[i] != '\0'; i++)
		if ((unsigned char)exp[i] < 0x20 || exp[i] > 0x7e ||
		    i >= SPF_EXP_MAX)
			abort();
	for (i = 0; i < 2; i++) {
		const char *v = i == 0 ? spf_mechanism(s) : spf_problem(s);

		for (; v != NULL && *v != '\0'; v++)
			if ((unsigned char)*v < 0x20 || *v > 0x7e)
				abort();
	}
	(void)spf_result_name(spf_result(s));
	n = spf_received(s, hdr, sizeof(hdr));
	if (n == -1)
		abort();
	check_header(hdr, n);
	spf_free(&s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * SPF_RECORD_MAX)
		return 0;
	check_pure((const char *)data, size);
	if (size > 0)
		check_run(data, size);
	return 0;
}

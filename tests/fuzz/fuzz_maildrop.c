/*
 * fuzz_maildrop.c - libFuzzer target for maildrop.c.  The input is used
 * whole as a drop file (and again after "magic\nsender "), as an address
 * list, as a header section and as a message for CRLF conversion.
 * Checks: a parsed envelope is bounded, formats and parses back to
 * itself; reported addresses are bounded and free of control octets;
 * Bcc: stripping is idempotent; CRLF output is the same however the
 * input is cut, and every line ends in CRLF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "maildrop.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct maildrop_env	env, env2;
static char			envbuf[MAILDROP_ENV_MAX];

static void
same_addr(const struct mailaddr *a, const struct mailaddr *b)
{
	if (strcmp(a->local, b->local) != 0 ||
	    strcmp(a->domain, b->domain) != 0 ||
	    (a->flags & ~ADDR_F_QUOTED) != (b->flags & ~ADDR_F_QUOTED))
		abort();
}

static void
check_parse(const uint8_t *data, size_t size)
{
	const char	*errstr = NULL;
	size_t		 off, len, off2, i;

	if (maildrop_parse(data, size, &env, &off, &errstr) == -1) {
		if (errstr == NULL || env.nrcpts != 0)
			abort();
		return;
	}
	if (off > size || off > MAILDROP_ENV_MAX || off < 2 ||
	    data[off - 1] != '\n' || data[off - 2] != '\n' ||
	    env.nrcpts == 0 || env.nrcpts > MAILDROP_RCPT_MAX)
		abort();
	if (maildrop_env_format(&env, envbuf, sizeof(envbuf), &len,
	    &errstr) == -1)
		abort();
	if (maildrop_parse((const uint8_t *)envbuf, len, &env2, &off2,
	    &errstr) == -1 || off2 != len)
		abort();
	same_addr(&env.sender, &env2.sender);
	if (env.uid != env2.uid || env.nrcpts != env2.nrcpts ||
	    env.utf8 != env2.utf8)
		abort();
	for (i = 0; i < env.nrcpts; i++)
		same_addr(&env.rcpts[i], &env2.rcpts[i]);
}

static int
check_addr(void *arg, const char *addr, const char **errstr_r)
{
	size_t	i, len = strlen(addr);

	(void)arg;
	(void)errstr_r;
	if (len == 0 || len > ADDR_PATH_MAX * 2)
		abort();
	for (i = 0; i < len; i++)
		if (((uint8_t)addr[i] < 0x20 && addr[i] != '\t') ||
		    addr[i] == 0x7f)
			abort();
	return 0;
}

static void
check_header(const uint8_t *data, size_t size)
{
	const char	*errstr = NULL;
	uint8_t		*buf;
	size_t		 len, len2;

	if (maildrop_addr_list(data, size, check_addr, NULL, &errstr) == -1 &&
	    errstr == NULL)
		abort();
	errstr = NULL;
	if (maildrop_header_addrs(data, size, check_addr, NULL, &errstr) ==
	    -1 && errstr == NULL)
		abort();
	if ((buf = malloc(size + 1)) == NULL)
		return;
	memcpy(buf, data, size);
	len = maildrop_header_strip(buf, size, "Bcc");
	if (len > size)
		abort();
	len2 = maildrop_header_strip(buf, len, "bcc");
	if (len2 != len)
		abort();
	free(buf);
}

static size_t
crlf_run(const uint8_t *data, size_t size, size_t cut, uint8_t *out)
{
	struct maildrop_crlf	st;
	size_t			o;

	maildrop_crlf_init(&st);
	o = maildrop_crlf(&st, data, cut, out);
	if (o > MAILDROP_CRLF_OUT(cut))
		abort();
	o += maildrop_crlf(&st, data + cut, size - cut, out + o);
	return o + maildrop_crlf_end(&st, out + o);
}

static void
check_crlf(const uint8_t *data, size_t size)
{
	uint8_t	*a, *b;
	size_t	 n, m, i, cut = size ? data[0] % (size + 1) : 0;

	a = malloc(MAILDROP_CRLF_OUT(size) + 2);
	b = malloc(MAILDROP_CRLF_OUT(size) + 2);
	if (a == NULL || b == NULL)
		goto out;
	n = crlf_run(data, size, size, a);
	m = crlf_run(data, size, cut, b);
	if (n != m || memcmp(a, b, n) != 0 || n > MAILDROP_CRLF_OUT(size))
		abort();
	if (size > 0 && (n < 2 || a[n - 2] != '\r' || a[n - 1] != '\n'))
		abort();
	for (i = 0; i < n; i++)
		if ((a[i] == '\r' && (i + 1 == n || a[i + 1] != '\n')) ||
		    (a[i] == '\n' && (i == 0 || a[i - 1] != '\r')))
			abort();
out:
	free(a);
	free(b);
}

/* Random octets rarely begin with the magic line: give it to them. */
static void
check_parse_magic(const uint8_t *data, size_t size)
{
	static const char	 magic[] = MAILDROP_MAGIC "\nsender ";
	uint8_t			*buf;

	if ((buf = malloc(sizeof(magic) - 1 + size)) == NULL)
		return;
	memcpy(buf, magic, sizeof(magic) - 1);
	memcpy(buf + sizeof(magic) - 1, data, size);
	check_parse(buf, sizeof(magic) - 1 + size);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);
	check_parse_magic(data, size);
	check_header(data, size);
	check_crlf(data, size);
	return 0;
}

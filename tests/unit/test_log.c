/*
 * test_log.c - log.c's escaping: what a log line may hold of text a
 * client, a peer or an administrator chose (docs/logs.md): log_escape
 * (a bare value), log_escape_quoted (inside "..."), log_value (bare
 * when it can be, else quoted), and their bounds.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "test.h"

#define NROWS(t)	(sizeof(t) / sizeof((t)[0]))

static const struct {
	const char	*in;
	const char	*bare;		/* log_escape */
	const char	*quoted;	/* log_escape_quoted */
	const char	*value;		/* log_value */
} rows[] = {
	{ "plain", "plain", "plain", "plain" },
	{ "a b", "a\\x20b", "a b", "\"a b\"" },
	{ "say \"hi\"", "say\\x20\\x22hi\\x22", "say \\x22hi\\x22",
	  "\"say \\x22hi\\x22\"" },
	{ "back\\slash", "back\\x5cslash", "back\\x5cslash",
	  "\"back\\x5cslash\"" },
	{ "cr\r\nlf", "cr\\x0d\\x0alf", "cr\\x0d\\x0alf",
	  "\"cr\\x0d\\x0alf\"" },
	{ "caf\xc3\xa9", "caf\\xc3\\xa9", "caf\\xc3\\xa9",
	  "\"caf\\xc3\\xa9\"" },
	{ "x\" address=[6.6.6.6]", "x\\x22\\x20address=[6.6.6.6]",
	  "x\\x22 address=[6.6.6.6]", "\"x\\x22 address=[6.6.6.6]\"" },
	{ "/var/lib/postino", "/var/lib/postino", "/var/lib/postino",
	  "/var/lib/postino" },
	{ "", "", "", "\"\"" },
};

static void
test_rows(void)
{
	char	buf[256];
	size_t	i;

	for (i = 0; i < NROWS(rows); i++) {
		CHECK_ROW(strcmp(log_escape(rows[i].in, strlen(rows[i].in),
		    buf, sizeof(buf)), rows[i].bare) == 0, rows[i].in);
		CHECK_ROW(strcmp(log_escape_quoted(rows[i].in,
		    strlen(rows[i].in), buf, sizeof(buf)), rows[i].quoted) == 0,
		    rows[i].in);
		CHECK_ROW(strcmp(log_value(rows[i].in, buf, sizeof(buf)),
		    rows[i].value) == 0, rows[i].in);
	}
}

/* A NUL inside the text counts like any control octet. */
static void
test_nul(void)
{
	char	buf[64];

	CHECK_STR(log_escape("a\0b", 3, buf, sizeof(buf)), "a\\x00b");
}

/* Cut at the buffer, with "..." at the end; never a half escape. */
static void
test_bounds(void)
{
	char	buf[12];
	size_t	size;

	CHECK_STR(log_escape("abcdefghijklmnop", 16, buf, sizeof(buf)),
	    "abcdefgh...");
	CHECK_STR(log_escape("\"\"\"\"", 4, buf, sizeof(buf)),
	    "\\x22\\x22...");
	for (size = 3; size <= sizeof(buf); size++) {
		const char *v = log_value("a b c d e f g h", buf, size);

		CHECK(strlen(v) < size && v[0] == '"' &&
		    v[strlen(v) - 1] == '"');
	}
	CHECK_STR(log_value("a b", buf, 2), "\"\"");
}

int
main(void)
{
	RUN(test_rows);
	RUN(test_nul);
	RUN(test_bounds);
	return test_done();
}

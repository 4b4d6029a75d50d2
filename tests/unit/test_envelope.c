/*
 * test_envelope.c - the queued envelope's text form and trailer.
 */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "test.h"

static void
test_round_trip(void)
{
	struct envelope		 e, back;
	struct env_target	*t;
	const char		*errstr = NULL;
	char			*text;
	size_t			 len;

	memset(&e, 0, sizeof(e));
	strcpy(e.qid, "0123456789ABCDEF");
	e.time = 1700000000;
	strcpy(e.helo, "client.example.org");
	strcpy(e.client, "192.0.2.1");
	strcpy(e.proto, "ESMTPS");
	strcpy(e.from, "\"a b\"@example.org");
	e.body = 1;
	e.smtputf8 = true;
	t = envelope_add_target(&e);
	t->local = true;
	strcpy(t->domain, "example.test");
	strcpy(t->local_part, "demo");
	strcpy(t->rcpt, "Demo@Example.TEST");
	t = envelope_add_target(&e);
	strcpy(t->domain, "example.net");
	strcpy(t->local_part, "x@y");	/* quoted local part with an @ */
	strcpy(t->rcpt, "alias@example.test");

	text = envelope_format(&e, &len);
	memset(&back, 0, sizeof(back));
	CHECK_INT(envelope_parse(text, len, &back, &errstr), 0);
	CHECK_STR(back.qid, e.qid);
	CHECK_INT(back.time, e.time);
	CHECK_STR(back.helo, e.helo);
	CHECK_STR(back.from, e.from);
	CHECK_INT(back.body, 1);
	CHECK(back.smtputf8);
	CHECK_INT(back.ntargets, 2);
	CHECK(back.targets[0].local);
	CHECK_STR(back.targets[0].local_part, "demo");
	CHECK_STR(back.targets[0].rcpt, "Demo@Example.TEST");
	CHECK(!back.targets[1].local);
	CHECK_STR(back.targets[1].local_part, "x@y");
	CHECK_STR(back.targets[1].domain, "example.net");

	/* Every truncation is refused. */
	for (size_t cut = 0; cut < len; cut++) {
		struct envelope	part;

		memset(&part, 0, sizeof(part));
		CHECK_INT(envelope_parse(text, cut, &part, &errstr), -1);
		envelope_clear(&part);
	}
	free(text);
	envelope_clear(&e);
	envelope_clear(&back);
}

static void
test_trailer(void)
{
	char		buf[ENV_TRAILER_LEN + 1];
	uint64_t	m, e;

	envelope_trailer(buf, 12345, 678);
	CHECK_INT(strlen(buf), ENV_TRAILER_LEN);
	CHECK_INT(envelope_trailer_parse(buf, &m, &e), 0);
	CHECK_INT(m, 12345);
	CHECK_INT(e, 678);
	buf[3] = 'X';
	CHECK_INT(envelope_trailer_parse(buf, &m, &e), -1);
	envelope_trailer(buf, 1, 2);
	buf[20] = 'a';
	CHECK_INT(envelope_trailer_parse(buf, &m, &e), -1);
}

static void
test_dedupe(void)
{
	static const struct {
		bool		 local;
		const char	*domain, *lp;
	} rows[] = {
		{ true, "b.test", "x" }, { true, "a.test", "y" },
		{ true, "b.test", "x" }, { false, "b.test", "x" },
		{ true, "a.test", "y" }, { false, "b.test", "x" },
		{ true, "a.test", "z" },
	};
	struct envelope		 e;
	struct env_target	*t;
	size_t			 i;

	memset(&e, 0, sizeof(e));
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		t = envelope_add_target(&e);
		t->local = rows[i].local;
		strcpy(t->domain, rows[i].domain);
		strcpy(t->local_part, rows[i].lp);
	}
	envelope_dedupe(&e);
	CHECK_INT(e.ntargets, 4);
	CHECK_STR(e.targets[0].local_part, "y");
	CHECK_STR(e.targets[1].local_part, "z");
	CHECK_STR(e.targets[2].domain, "b.test");
	CHECK(e.targets[2].local);
	CHECK(!e.targets[3].local);
	envelope_clear(&e);
	envelope_dedupe(&e);
	CHECK_INT(e.ntargets, 0);
}

int
main(void)
{
	RUN(test_round_trip);
	RUN(test_trailer);
	RUN(test_dedupe);
	return test_done();
}

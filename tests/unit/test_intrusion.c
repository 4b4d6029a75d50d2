/*
 * test_intrusion.c - intrusion prevention (R4.4) and rate limits (R4.6)
 * through the store's interface: thresholds make blocks in the store,
 * a success forgets failures, trusted and bypassed addresses are never
 * blocked, and a flood of distinct addresses keeps memory bounded.
 */
#include <sys/stat.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "db.h"
#include "intrusion.h"
#include "log.h"
#include "policy.h"
#include "test.h"

static char		 dir[] = "/tmp/test_intrusion.XXXXXX";
static struct db	*db;

static struct conf *
conf_of(const char *text)
{
	struct conf	*c;
	char		 err[512], buf[1024];

	snprintf(buf, sizeof(buf), "data_dir = %s\n"
	    "[listener mx]\nlisten = 127.0.0.1:2525\nprofile = mx\n%s", dir,
	    text);
	if (conf_parse("test.conf", buf, strlen(buf), &c, err,
	    sizeof(err)) == -1) {
		printf("conf: %s\n", err);
		exit(1);
	}
	return c;
}

static bool
blocked(const char *ip)
{
	long long	until;
	char		reason[64];

	return db_block_find(db, ip, &until, reason, sizeof(reason)) == 1;
}

static void
test_auth_failures_block(void)
{
	struct conf		*c = conf_of("[intrusion]\nmax_auth_failures = 5\n");
	struct intrusion	*in = intrusion_new(c, db, NULL);
	int			 i;

	for (i = 1; i <= 4; i++) {
		CHECK(!intrusion_event(in, "192.0.2.1", INTR_AUTH_FAILURE, 1));
		CHECK_INT(intrusion_auth_failures(in, "192.0.2.1"), i);
	}
	CHECK(!blocked("192.0.2.1"));
	CHECK(intrusion_event(in, "192.0.2.1", INTR_AUTH_FAILURE, 1));
	CHECK(blocked("192.0.2.1"));
	/* the same address written as IPv4-mapped IPv6 is the same one */
	CHECK(blocked("::ffff:192.0.2.1"));
	CHECK(!blocked("192.0.2.2"));
	intrusion_free(&in);
	conf_free(&c);
}

/* An administrator who mistypes three times, then logs in, starts over. */
static void
test_success_forgets(void)
{
	struct conf		*c = conf_of("[intrusion]\nmax_auth_failures = 5\n");
	struct intrusion	*in = intrusion_new(c, db, NULL);
	int			 round, i;

	for (round = 0; round < 10; round++) {
		for (i = 0; i < 3; i++)
			CHECK(!intrusion_event(in, "192.0.2.10",
			    INTR_AUTH_FAILURE, 1));
		intrusion_login_ok(in, "192.0.2.10");
		CHECK_INT(intrusion_auth_failures(in, "192.0.2.10"), 0);
	}
	CHECK(!blocked("192.0.2.10"));
	intrusion_free(&in);
	conf_free(&c);
}

/* Each kind of event has its own threshold; 0 turns one off. */
static void
test_thresholds(void)
{
	static const struct {
		enum intrusion_event	 ev;
		const char		*ip;
		unsigned int		 n;	/* events, one at a time */
		bool			 blocks;
	} rows[] = {
		{ INTR_UNKNOWN_RCPT,	"192.0.2.20", 3, true },
		{ INTR_UNKNOWN_RCPT,	"192.0.2.21", 2, false },
		{ INTR_CONNECTION,	"192.0.2.22", 4, true },
		{ INTR_CONNECTION,	"192.0.2.23", 3, false },
		{ INTR_PROTOCOL_ERROR,	"192.0.2.24", 6, true },
		{ INTR_MESSAGE,		"192.0.2.25", 1000, false },	/* off */
		{ INTR_AUTH_FAILURE,	"192.0.2.26", 2, true },
	};
	struct conf		*c = conf_of("[intrusion]\nmax_auth_failures = 2\n"
				    "max_unknown_rcpts = 3\n"
				    "max_connections_per_minute = 4\n"
				    "max_protocol_errors = 6\n"
				    "max_messages_per_hour = 0\n");
	struct intrusion	*in = intrusion_new(c, db, NULL);
	size_t			 i, k;
	bool			 b = false;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		for (k = 0; k < rows[i].n; k++)
			b = intrusion_event(in, rows[i].ip, rows[i].ev, 1);
		CHECK_INT(b, rows[i].blocks);
		CHECK_INT(blocked(rows[i].ip), rows[i].blocks);
	}
	/* n events at once count as n */
	CHECK(intrusion_event(in, "192.0.2.27", INTR_PROTOCOL_ERROR, 6));
	intrusion_free(&in);
	conf_free(&c);
}

/* Trusted hosts and the bypass list are never blocked (R4.4). */
static void
test_never_blocked(void)
{
	struct conf		*c = conf_of("[intrusion]\nmax_auth_failures = 1\n"
				    "bypass = 192.0.2.32/30\n");
	struct policy		*p = policy_new(c, db);
	struct intrusion	*in;
	char			 err[256];
	int			 i;

	CHECK_INT(db_set_add(db, DB_SET_TRUSTED, "198.51.100.0/24", err,
	    sizeof(err)), 0);
	CHECK_INT(policy_reload(p, true), 0);
	in = intrusion_new(c, db, p);
	for (i = 0; i < 50; i++) {
		CHECK(!intrusion_event(in, "192.0.2.33", INTR_AUTH_FAILURE, 1));
		CHECK(!intrusion_event(in, "198.51.100.9", INTR_AUTH_FAILURE,
		    1));
	}
	CHECK(!blocked("192.0.2.33"));
	CHECK(!blocked("198.51.100.9"));
	CHECK(intrusion_event(in, "192.0.2.36", INTR_AUTH_FAILURE, 1));
	intrusion_free(&in);
	policy_free(p);
	conf_free(&c);
}

/* The block ends: lifted by the administrator, or when its time is up. */
static void
test_unblock(void)
{
	struct conf		*c = conf_of("");
	struct intrusion	*in = intrusion_new(c, db, NULL);
	char			 err[256];

	CHECK_INT(db_block_add(db, "192.0.2.40", 30, "auth-failures", err,
	    sizeof(err)), 0);
	CHECK(blocked("192.0.2.40"));
	CHECK_INT(db_block_del(db, "192.0.2.40", err, sizeof(err)), 0);
	CHECK(!blocked("192.0.2.40"));
	CHECK_INT(db_block_del(db, "192.0.2.40", err, sizeof(err)), -1);
	CHECK_STR(err, "no block for 192.0.2.40");
	intrusion_tick(in);
	intrusion_free(&in);
	conf_free(&c);
}

static void
test_rates(void)
{
	struct conf		*c = conf_of("");
	struct intrusion	*in = intrusion_new(c, db, NULL);

	CHECK_INT(intrusion_rate_ip(in, "192.0.2.50", RATE_MESSAGES), 0);
	intrusion_rate_add(in, "192.0.2.50", "demo@example.test", 1, 3);
	intrusion_rate_add(in, "192.0.2.50", NULL, 1, 2);
	intrusion_rate_add(in, "192.0.2.51", "demo@example.test", 1, 1);
	CHECK_INT(intrusion_rate_ip(in, "192.0.2.50", RATE_MESSAGES), 2);
	CHECK_INT(intrusion_rate_ip(in, "192.0.2.50", RATE_RECIPIENTS), 5);
	CHECK_INT(intrusion_rate_account(in, "demo@example.test",
	    RATE_MESSAGES), 2);
	CHECK_INT(intrusion_rate_account(in, "demo@example.test",
	    RATE_RECIPIENTS), 4);
	CHECK_INT(intrusion_rate_account(in, "other@example.test",
	    RATE_MESSAGES), 0);
	intrusion_free(&in);
	conf_free(&c);
}

/*
 * A flood of 100,000 distinct addresses' worth of failures: the table
 * keeps at most INTRUSION_IPS_MAX of them, and store's heap grows by
 * less than 16 MB (each entry is about 150 octets).
 */
static void
test_flood_is_bounded(void)
{
	struct conf		*c = conf_of("[intrusion]\nmax_auth_failures = 5\n");
	struct intrusion	*in = intrusion_new(c, db, NULL);
	struct mallinfo2	 before, after;
	char			 ip[64];
	int			 i;

	before = mallinfo2();
	for (i = 0; i < 100000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255,
		    (i >> 8) & 255, i & 255);
		intrusion_event(in, ip, INTR_AUTH_FAILURE, 1);
		intrusion_rate_add(in, ip, NULL, 1, 1);
	}
	after = mallinfo2();
	CHECK(intrusion_entries(in) <= INTRUSION_IPS_MAX);
	CHECK_INT(intrusion_entries(in), INTRUSION_IPS_MAX);
	printf("  100000 addresses: %zu entries, heap +%zu kB\n",
	    intrusion_entries(in), (after.uordblks - before.uordblks) / 1024);
	CHECK(after.uordblks - before.uordblks < 16u << 20);
	/* the newest are remembered, the oldest forgotten */
	CHECK_INT(intrusion_auth_failures(in, "10.1.134.159"), 1);
	CHECK_INT(intrusion_auth_failures(in, "10.0.0.0"), 0);
	intrusion_free(&in);
	conf_free(&c);
}

int
main(void)
{
	char	path[128], err[256];

	log_init("test", LOGL_WARN);	/* the block lines are the daemon's */
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/postino.db", dir);
	if (db_open(path, &db, err, sizeof(err)) == -1) {
		printf("db_open: %s\n", err);
		return 1;
	}
	RUN(test_auth_failures_block);
	RUN(test_success_forgets);
	RUN(test_thresholds);
	RUN(test_never_blocked);
	RUN(test_unblock);
	RUN(test_rates);
	RUN(test_flood_is_bounded);
	db_close(&db);
	unlink(path);
	rmdir(dir);
	return test_done();
}

/*
 * test_ipc.c - typed messages and passed descriptors over a socketpair.
 */
#include <sys/socket.h>

#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "test.h"

static int		 got, got_fd_ok, got_eof;
static struct event_base *base;

static void
on_msg(struct ipc *c, struct ipc_msg *m, void *arg)
{
	char		 buf[8];
	const char	*s;

	if (m == NULL) {
		got_eof++;
		event_base_loopbreak(base);
		return;
	}
	got++;
	CHECK_INT(m->type, 7);
	CHECK_INT(m->id, 0x1122334455667788ULL);
	CHECK_INT(ipc_get_u32(m), 42);
	CHECK_INT(ipc_get_u64(m), 1ULL << 40);
	CHECK_STR(ipc_get_str(m), "hello");
	CHECK(ipc_get_str(m) == NULL);
	s = ipc_get_str(m);
	CHECK_STR(s, "");
	ipc_get_strbuf(m, buf, sizeof(buf));
	CHECK_STR(buf, "1234567");
	ipc_end(m);
	if (m->fd != -1) {
		char c = 0;

		got_fd_ok = read(m->fd, &c, 1) == 1 && c == 'x';
		close(m->fd);
	}
	if (got == 2)
		event_base_loopbreak(base);
}

static void
test_round_trip(void)
{
	struct ipc	*a, *b;
	struct ipc_out	 o;
	int		 sp[2], pfd[2];

	base = event_base_new();
	CHECK_INT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
	CHECK_INT(pipe(pfd), 0);
	CHECK_INT(write(pfd[1], "x", 1), 1);
	close(pfd[1]);
	a = ipc_new(base, sp[0], "a", on_msg, NULL);
	b = ipc_new(base, sp[1], "b", on_msg, NULL);
	for (int i = 0; i < 2; i++) {
		ipc_out_init(&o);
		ipc_put_u32(&o, 42);
		ipc_put_u64(&o, 1ULL << 40);
		ipc_put_str(&o, "hello");
		ipc_put_str(&o, NULL);
		ipc_put_str(&o, "");
		ipc_put_str(&o, "1234567");
		ipc_send(a, 7, 0x1122334455667788ULL, i ? pfd[0] : -1, &o);
	}
	event_base_dispatch(base);
	CHECK_INT(got, 2);
	CHECK(got_fd_ok);
	ipc_free(&a);
	CHECK(a == NULL);
	event_base_dispatch(base);	/* b sees the EOF */
	CHECK_INT(got_eof, 1);
	ipc_free(&b);
	event_base_free(base);
}

static void
test_overflow(void)
{
	static struct ipc_out	o;
	static char		big[IPC_MSG_MAX];

	ipc_out_init(&o);
	ipc_put_bytes(&o, big, sizeof(big));
	CHECK(!o.overflow);
	ipc_put_u32(&o, 1);
	CHECK(o.overflow);
}

int
main(void)
{
	RUN(test_round_trip);
	RUN(test_overflow);
	return test_done();
}

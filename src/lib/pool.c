/*
 * pool.c - worker threads whose results return to the event loop.
 *
 * Threads are started lazily, one per waiting job, up to the bound, so
 * an idle server holds none.  Completion is signalled through a pipe
 * watched by the loop.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"
#include "xalloc.h"

struct job {
	struct job	*next;
	pool_fn		 work, done;
	void		*arg;
};

struct pool {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	struct job	*todo, **todo_tail;
	struct job	*finished, **fin_tail;
	unsigned int	 nthreads, max, idle, pending;
	int		 pipe[2];
	struct event	*ev;
};

static void *
pool_thread(void *arg)
{
	struct pool	*p = arg;
	struct job	*j;
	char		 c = 0;

	pthread_mutex_lock(&p->mtx);
	for (;;) {
		while (p->todo == NULL) {
			p->idle++;
			pthread_cond_wait(&p->cond, &p->mtx);
			p->idle--;
		}
		j = p->todo;
		if ((p->todo = j->next) == NULL)
			p->todo_tail = &p->todo;
		pthread_mutex_unlock(&p->mtx);

		j->work(j->arg);

		pthread_mutex_lock(&p->mtx);
		j->next = NULL;
		/* one wake-up for a list: the loop takes it all at once */
		if (p->finished == NULL && write(p->pipe[1], &c, 1) == -1 &&
		    errno != EAGAIN)
			fatal("pool: wake-up pipe");
		*p->fin_tail = j;
		p->fin_tail = &j->next;
	}
	return NULL;
}

static void
pool_collect(evutil_socket_t fd, short ev, void *arg)
{
	struct pool	*p = arg;
	struct job	*list, *j;
	char		 buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&p->mtx);
	list = p->finished;
	p->finished = NULL;
	p->fin_tail = &p->finished;
	pthread_mutex_unlock(&p->mtx);
	while ((j = list) != NULL) {
		list = j->next;
		p->pending--;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
	}
}

struct pool *
pool_new(struct event_base *base, unsigned int nthreads)
{
	struct pool	*p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->todo_tail = &p->todo;
	p->fin_tail = &p->finished;
	p->max = nthreads ? nthreads : 1;
	if (pipe2(p->pipe, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pool: pipe");
	p->ev = event_new(base, p->pipe[0], EV_READ | EV_PERSIST,
	    pool_collect, p);
	event_add(p->ev, NULL);
	return p;
}

static void
submit(struct pool *p, pool_fn work, pool_fn done, void *arg, bool first)
{
	struct job	*j = xcalloc(1, sizeof(*j));
	pthread_t	 t;

	j->work = work;
	j->done = done;
	j->arg = arg;
	p->pending++;
	pthread_mutex_lock(&p->mtx);
	if (first) {
		if ((j->next = p->todo) == NULL)
			p->todo_tail = &j->next;
		p->todo = j;
	} else {
		*p->todo_tail = j;
		p->todo_tail = &j->next;
	}
	if (p->idle == 0 && p->nthreads < p->max) {
		if (pthread_create(&t, NULL, pool_thread, p) != 0)
			fatalx("pool: cannot start a worker thread");
		pthread_detach(t);
		p->nthreads++;
	}
	if (p->idle > 0)
		pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mtx);
}

void
pool_run(struct pool *p, pool_fn work, pool_fn done, void *arg)
{
	submit(p, work, done, arg, false);
}

void
pool_run_first(struct pool *p, pool_fn work, pool_fn done, void *arg)
{
	submit(p, work, done, arg, true);
}

unsigned int
pool_pending(const struct pool *p)
{
	return p->pending;
}

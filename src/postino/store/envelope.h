/*
 * envelope.h - the envelope of a queued message, as stored at the end
 * of its spool file (docs/queue.md): text lines "key value", written
 * by the store role at commit and read back by delivery.
 */
#ifndef STORE_ENVELOPE_H
#define STORE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "proto.h"

struct env_target {
	bool	local;		/* Maildir of domain/local_part; else remote */
	char	domain[ADDR_DOMAIN_MAX + 1];
	char	local_part[ADDR_LOCAL_MAX + 1];
	char	rcpt[ADDR_PATH_MAX + 1];	/* the address as given */
};

struct envelope {
	char		 qid[QID_LEN + 1];
	time_t		 time;		/* of the commit */
	uint64_t	 msglen;
	char		 helo[256];
	char		 client[64];
	char		 proto[16];
	char		 from[ADDR_PATH_MAX + 1];
	unsigned int	 body;
	bool		 smtputf8;
	size_t		 ntargets;
	struct env_target *targets;	/* owned */
};

/* Serialise; returns a malloc'ed text and its length. */
char	*envelope_format(const struct envelope *, size_t *len_r);
/* Parse; 0, or -1 with *errstr_r.  Frees nothing of env on error but
 * targets (call envelope_clear in every case). */
int	 envelope_parse(const char *text, size_t len, struct envelope *env,
	    const char **errstr_r);
void	 envelope_clear(struct envelope *);
/*
 * Sort the targets and keep one of each mailbox or remote address, so a
 * recipient given twice, or reached through two aliases, gets the
 * message once (as Postfix's cleanup does).  O(n log n).
 */
void	 envelope_dedupe(struct envelope *);
/* Add a target, growing the array. */
struct env_target *envelope_add_target(struct envelope *);

/*
 * The spool file is message || envelope || trailer, the trailer being
 * "#POSTINO <20-digit message length> <20-digit envelope length>\n".
 */
#define ENV_TRAILER_LEN	51
void	envelope_trailer(char buf[ENV_TRAILER_LEN + 1], uint64_t msglen,
	    uint64_t envlen);
int	envelope_trailer_parse(const char *buf, uint64_t *msglen_r,
	    uint64_t *envlen_r);

#endif

/*
 * ipc.h - typed messages between the roles over SOCK_SEQPACKET
 * socketpairs, with an optional passed descriptor (SCM_RIGHTS).
 *
 * One packet is one message: a header (type, id) and a payload built
 * with ipc_put_* and read back, in the same order, with ipc_get_*.  A
 * reader must consume the payload to its exact end: ipc_end() kills
 * the process on leftover bytes, and every ipc_get_* on a short
 * payload does the same, because a malformed message from another role
 * means that role is broken or compromised.
 */
#ifndef LIB_IPC_H
#define LIB_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_MSG_MAX	(128 * 1024)	/* payload bound, both directions */

struct event_base;
struct ipc;

struct ipc_msg {
	uint32_t	 type;
	uint64_t	 id;		/* session or request the message is for */
	int		 fd;		/* passed descriptor or -1; the handler
					   owns it (must close or keep it) */
	const uint8_t	*data;
	size_t		 len;
	size_t		 pos;
	const char	*peer;		/* for fatal messages */
};

/* Called for each message; called with msg == NULL when the peer has
 * gone (EOF or error): the channel is then dead and must be freed. */
typedef void (*ipc_cb)(struct ipc *, struct ipc_msg *, void *arg);

struct ipc	*ipc_new(struct event_base *, int fd, const char *peer,
		    ipc_cb cb, void *arg);
/*
 * For a reader that must outlive a broken peer (the parent, root, reading
 * a role): a malformed packet is logged and reported as the end of the
 * channel (cb with NULL) instead of killing the process.  The payload's
 * length is then the reader's to check before any ipc_get_*.
 */
void		 ipc_set_untrusted(struct ipc *);
void		 ipc_free(struct ipc **);

/* Building a message: start, put fields, send (queued if the socket is
 * full; the fd, if not -1, is closed after it was sent). */
struct ipc_out {
	uint8_t		buf[IPC_MSG_MAX + 16];
	size_t		len;
	bool		overflow;
};
void	ipc_out_init(struct ipc_out *);
void	ipc_put_u32(struct ipc_out *, uint32_t);
void	ipc_put_u64(struct ipc_out *, uint64_t);
void	ipc_put_str(struct ipc_out *, const char *);	/* NULL allowed */
void	ipc_put_bytes(struct ipc_out *, const void *, size_t);
void	ipc_send(struct ipc *, uint32_t type, uint64_t id, int fd,
	    struct ipc_out *);

/* Reading: each kills the process on a short or malformed payload. */
uint32_t	 ipc_get_u32(struct ipc_msg *);
uint64_t	 ipc_get_u64(struct ipc_msg *);
/* A string inside the message (NUL-terminated, no embedded NUL); valid
 * while the handler runs. NULL if NULL was put. */
const char	*ipc_get_str(struct ipc_msg *);
/* Copy a string into a fixed field; too long is fatal. */
void		 ipc_get_strbuf(struct ipc_msg *, char *, size_t);
void		 ipc_end(struct ipc_msg *);

#endif

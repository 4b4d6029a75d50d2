/*
 * parent.h - the parent process: listeners, data directory, roles.
 */
#ifndef POSTINO_PARENT_H
#define POSTINO_PARENT_H

#include "conf.h"

/* Run the daemon: never returns. */
void	parent_main(struct conf *, const char *conf_path)
	    __attribute__((noreturn));

#endif

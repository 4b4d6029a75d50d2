/*
 * bs.h - sendmail -bs: an SMTP session on standard input and output.
 */
#ifndef SENDMAIL_BS_H
#define SENDMAIL_BS_H

#include "conf.h"

/*
 * Run the session to its end: QUIT, the end of input, a timeout
 * ([smtp] timeout_command, timeout_data) or too many errors.  Each
 * transaction accepted becomes one drop file.  Returns the exit status:
 * EX_OK after QUIT or at the end of input outside a transaction;
 * EX_PROTOCOL when the session ended otherwise (a transaction in
 * progress is dropped); EX_IOERR when standard input or output failed.
 */
int	bs_session_run(const struct conf *conf);

#endif

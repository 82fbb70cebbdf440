/*
 * cli.h - the administrator's subcommands: check, user, show, reload,
 * loglevel, doctor, help (everything but `run`, which is main.c's). Owns
 * only terminal I/O: accounts go through store/, the daemon through admin/.
 */
#ifndef PINHOLE_CLI_H
#define PINHOLE_CLI_H

#include <stdio.h>

/*
 * Run one subcommand. argv[0] is the subcommand ("check", "user", ...),
 * argv[1..argc-1] its arguments; conf_path is the -c FILE (NULL: see
 * cli_default_conf_path). Returns the process exit code: 0 success,
 * 1 failure, 2 usage error (unknown command, missing argument).
 */
int cli_main(int argc, char **argv, const char *conf_path);

/* The usage text listing every command (for -h and errors). */
void cli_usage(FILE *out);

/* ./pinhole.conf when it exists, else /etc/pinhole/pinhole.conf. */
const char *cli_default_conf_path(void);

#endif

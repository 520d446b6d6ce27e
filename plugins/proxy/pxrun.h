/* plugins/proxy/pxrun.h — run a command with input and captured output,
 * shared (as source) by the backends that drive command-line tools. */
#ifndef KUBUS_PXRUN_H
#define KUBUS_PXRUN_H

#include <stddef.h>

/* Run argv (argv[0] found on PATH) with `in` (inlen bytes, may be NULL)
 * on its stdin; its stdout into *out (malloc'd) when out is not NULL, the
 * first line of its stderr into err. The exit status, or -1 when it could
 * not run or died of a signal. A child that exits before reading all of
 * `in` would raise SIGPIPE: the kubus host ignores it (core/main.c), and
 * any other process loading a backend must too. */
int px_run_io(char *const argv[], const char *in, size_t inlen, char **out,
    char *err, size_t errlen);

#endif

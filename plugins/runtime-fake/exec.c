/* plugins/runtime-fake/exec.c — exec_sync without processes: a handful of
 * commands behave as a shell's would, so that exec probes are testable
 * without runc. Files named by `cat`/`test`/`ls` are looked up on the
 * host: a test flips a probe by creating or removing the file.
 *
 *   true                      exit 0
 *   false                     exit 1
 *   exit N, sh -c "exit N"    exit N
 *   cat|test -e|test -f|ls F  0 when F exists on the host, else 1
 *   sleep N                   sleeps; past the timeout: KB_ETIMEOUT
 *   echo ARGS                 prints ARGS, exit 0
 *   anything else             exit 0
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake.h"

static void nap(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000 };
	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static const char *base(const char *s)
{
	const char *b = strrchr(s, '/');
	return b ? b + 1 : s;
}

/* "exit 3" or "exit" as a shell script. */
static bool script_exit(const char *s, int *code)
{
	while (*s == ' ')
		s++;
	if (strncmp(s, "exit", 4) || (s[4] && s[4] != ' '))
		return false;
	*code = atoi(s + 4);
	return true;
}

int fake_exec(const char *const *argv, int64_t timeout_ms, int *exit_code,
    char *out, size_t outlen)
{
	const char *cmd = base(argv[0]);
	size_t argc = 0;
	while (argv[argc])
		argc++;
	int code = 0;
	if (!strcmp(cmd, "false")) {
		code = 1;
	} else if (!strcmp(cmd, "exit")) {
		code = argc > 1 ? atoi(argv[1]) : 0;
	} else if ((!strcmp(cmd, "sh") || !strcmp(cmd, "bash")) && argc > 2 &&
	    !strcmp(argv[1], "-c")) {
		if (!script_exit(argv[2], &code))
			code = 0;
	} else if (!strcmp(cmd, "cat") || !strcmp(cmd, "test") ||
	    !strcmp(cmd, "ls")) {
		const char *path = argv[argc - 1];
		if (argc < 2 || access(path, F_OK) != 0) {
			code = 1;
			if (out && outlen)
				snprintf(out, outlen,
				    "%s: can't open '%s': No such file or directory",
				    cmd, argc < 2 ? "" : path);
		}
	} else if (!strcmp(cmd, "sleep")) {
		int64_t ms = argc > 1 ? (int64_t)(atof(argv[1]) * 1000) : 0;
		if (timeout_ms > 0 && ms > timeout_ms) {
			nap(timeout_ms);
			return KB_ETIMEOUT;
		}
		nap(ms);
	} else if (!strcmp(cmd, "echo") && out && outlen) {
		size_t off = 0;
		for (size_t i = 1; i < argc && off < outlen; i++)
			off += (size_t)snprintf(out + off, outlen - off, "%s%s",
			    i > 1 ? " " : "", argv[i]);
	}
	*exit_code = code;
	return 0;
}

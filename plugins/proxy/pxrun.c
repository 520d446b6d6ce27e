/* plugins/proxy/pxrun.c — see pxrun.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pxbuf.h"
#include "pxrun.h"

extern char **environ;

/* Run argv with `in` on stdin; stdout into *out (malloc'd) when out is
 * not NULL, stderr's first line into err. Exit status, or -1. */
int px_run_io(char *const argv[], const char *in, size_t inlen, char **out,
    char *err, size_t errlen)
{
	int pin[2], pout[2], perr[2];
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) ||
	    pipe2(perr, O_CLOEXEC))
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (rc != 0) {
		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		snprintf(err, errlen, "cannot run %s: %s", argv[0],
		    strerror(rc));
		return -1;
	}
	struct pxbuf ob = { 0 }, eb = { 0 };
	size_t off = 0;
	if (in == NULL || inlen == 0) {
		close(pin[1]);
		pin[1] = -1;
	}
	/* the writer side is non-blocking so a chatty child cannot
	 * deadlock us */
	if (pin[1] >= 0)
		fcntl(pin[1], F_SETFL, O_NONBLOCK);
	int open_fds = 2;
	while (open_fds > 0 || pin[1] >= 0) {
		struct pollfd p[3] = { { pout[0], POLLIN, 0 },
			{ perr[0], POLLIN, 0 }, { pin[1], POLLOUT, 0 } };
		if (poll(p, 3, 60000) <= 0)
			break;
		char buf[65536];
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n > 0) {
				pxbuf_addn(i ? &eb : &ob, buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(p[i].fd);
				if (i)
					perr[0] = -1;
				else
					pout[0] = -1;
				open_fds--;
			}
		}
		if (pin[1] >= 0 && (p[2].revents & (POLLOUT | POLLERR))) {
			ssize_t n = write(pin[1], in + off, inlen - off);
			if (n > 0)
				off += (size_t)n;
			if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
			    off == inlen) {
				close(pin[1]);
				pin[1] = -1;
			}
		}
	}
	if (pin[1] >= 0)
		close(pin[1]);
	if (pout[0] >= 0)
		close(pout[0]);
	if (perr[0] >= 0)
		close(perr[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	snprintf(err, errlen, "%.*s", (int)strcspn(eb.p ? eb.p : "", "\n"),
	    eb.p ? eb.p : "");
	pxbuf_free(&eb);
	if (out)
		*out = pxbuf_take(&ob);
	else
		pxbuf_free(&ob);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

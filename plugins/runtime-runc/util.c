/* plugins/runtime-runc/util.c — files, ids, /proc, and running a tool with
 * a timeout (posix_spawn: cheap even from a large, threaded process). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rr.h"

extern char **environ;

int64_t rr_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rr_sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000 };
	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int rr_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -1;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int rmrf_at(int dfd, const char *name)
{
	int fd =
	    openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
			return -1;
		return 0;
	}
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		/* Never cross into a mount (an overlay still mounted). */
		struct stat st, dst;
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode) && fstat(fd, &dst) == 0 &&
		    st.st_dev != dst.st_dev) {
			rc = -1;
			continue;
		}
		if (rmrf_at(fd, e->d_name) != 0)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

int rr_rmrf(const char *path)
{
	return rmrf_at(AT_FDCWD, path);
}

char *rr_slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			buf = NULL;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}

int rr_write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

void rr_random_id(char *out, size_t len)
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		/* No entropy: the clock and the pid still make it unique. */
		uint64_t t = (uint64_t)rr_now_ms() ^ ((uint64_t)getpid() << 40);
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)(t >> (8 * (i % 8))) ^
			    (unsigned char)i;
	}
	size_t o = 0;
	for (size_t i = 0; i < sizeof(b) && o + 2 < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%02x", b[i]);
}

bool rr_valid_id(const char *id)
{
	if (id == NULL || *id == '\0' || strlen(id) >= KB_RT_ID_MAX)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			*p == '-'))
			return false;
	return true;
}

uint64_t rr_proc_starttime(pid_t pid)
{
	if (pid <= 0)
		return 0;
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The command may hold spaces and parentheses: count from the last
	 * ')'. Field 3 (state) follows it; starttime is field 22. */
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	p++;
	if (p[0] == ' ' && p[1] == 'Z')
		return 0; /* a zombie has exited */
	for (int field = 2; field < 21 && p; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return 0;
	return strtoull(p + 1, NULL, 10);
}

bool rr_proc_alive(pid_t pid, uint64_t starttime)
{
	uint64_t st = rr_proc_starttime(pid);
	return st != 0 && st == starttime;
}

int rr_run(const char *const *argv, int64_t timeout_ms, int *status, char *out,
    size_t outlen, pid_t *pid_out)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return KB_ESYS;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	pid_t pid;
	int rc = strchr(argv[0], '/') ?
	    posix_spawn(&pid, argv[0], &fa, &at, (char *const *)argv, environ) :
	    posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		errno = rc;
		if (out && outlen)
			snprintf(out, outlen, "cannot run %s: %s", argv[0],
			    strerror(rc));
		return KB_ESYS;
	}
	if (pid_out)
		*pid_out = pid;
	size_t n = 0;
	int64_t end = timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
	bool open_ = true, timed_out = false;
	while (open_) {
		int wait_ms = -1;
		if (end) {
			int64_t left = end - mono_ms();
			if (left <= 0) {
				timed_out = true;
				break;
			}
			wait_ms = (int)left;
		}
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		int pr = poll(&pf, 1, wait_ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			break;
		if (pr == 0)
			continue;
		char buf[4096];
		ssize_t r = read(p[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			open_ = false;
			break;
		}
		if (out && outlen > 1 && n < outlen - 1) {
			size_t k = (size_t)r;
			if (k > outlen - 1 - n)
				k = outlen - 1 - n;
			memcpy(out + n, buf, k);
			n += k;
		}
	}
	close(p[0]);
	if (out && outlen)
		out[n] = '\0';
	if (timed_out)
		goto out_timeout;
	/* The output closed: the tool is exiting (or left a child holding
	 * it, which the timeout then bounds). */
	for (;;) {
		int ws = 0;
		pid_t w = waitpid(pid, &ws, end ? WNOHANG : 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return KB_ESYS;
		if (w == pid) {
			*status = ws;
			return 0;
		}
		if (mono_ms() >= end)
			goto out_timeout;
		rr_sleep_ms(2);
	}
out_timeout:
	/* A caller that did not ask for the pid cannot clean up: do it. */
	if (pid_out == NULL) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return KB_ETIMEOUT;
}

int rr_wait_files(const char *dir, const char *name1, const char *name2,
    int64_t timeout_ms)
{
	char p1[PATH_MAX], p2[PATH_MAX];
	snprintf(p1, sizeof(p1), "%s/%s", dir, name1);
	if (name2)
		snprintf(p2, sizeof(p2), "%s/%s", dir, name2);
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (in >= 0 &&
	    inotify_add_watch(in, dir, IN_CREATE | IN_MOVED_TO) < 0) {
		close(in);
		in = -1;
	}
	int64_t end = mono_ms() + timeout_ms;
	int found = 0;
	for (;;) {
		if (access(p1, F_OK) == 0) {
			found = 1;
			break;
		}
		if (name2 && access(p2, F_OK) == 0) {
			found = 2;
			break;
		}
		int64_t left = end - mono_ms();
		if (left <= 0)
			break;
		if (in < 0) {
			/* No inotify (limits): poll the files. */
			rr_sleep_ms(left < 5 ? left : 5);
			continue;
		}
		/* Recheck once a second even without events: a dir that was
		 * replaced, or an event lost to a full queue. */
		struct pollfd pf = { .fd = in, .events = POLLIN };
		int pr = poll(&pf, 1, left > 1000 ? 1000 : (int)left);
		if (pr > 0) {
			char buf[4096];
			while (read(in, buf, sizeof(buf)) > 0)
				;
		}
	}
	if (in >= 0)
		close(in);
	return found;
}

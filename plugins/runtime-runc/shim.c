/* plugins/runtime-runc/shim.c — kubus-runc-shim: watches one container.
 *
 *   kubus-runc-shim RUNC ROOT BUNDLE ID LOGPATH POD_CGROUP
 *
 * Started by container_start; detaches at once (setsid and a second fork,
 * so it outlives a restarting kubelet and leaves no zombie), then runs
 * `RUNC --root ROOT run --bundle BUNDLE --pid-file BUNDLE/pid ID` in the
 * foreground with pipes for stdout and stderr, and:
 *   - writes every line to LOGPATH in the CRI log format (P for the parts
 *     of a line longer than 16 KiB), reopening the file when it was
 *     rotated away;
 *   - when runc's pid file appears, writes BUNDLE/started
 *     ("pid starttime started_ms");
 *   - watches the memory cgroup POD_CGROUP/ID (the spec's cgroupsPath,
 *     made before runc runs) for OOM: v1 cgroup.event_control eventfd, v2
 *     memory.events, and on v2 the pod cgroup's hierarchical count too,
 *     since runc removes the container's cgroup at exit;
 *   - when runc exits, writes BUNDLE/exit ("code finished_ms reason\n
 *     message"), 128+N for signal N, reason OOMKilled, Completed, Error or
 *     ContainerCannotRun (with runc's error as the message).
 * Both files are written atomically; BUNDLE/shim holds "pid starttime" so
 * that the runtime can tell a dead shim. Its own errors go to
 * BUNDLE/shim.log. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rr.h"

#define LINE_MAX_ 16384

struct stream {
	const char *name; /* "stdout" / "stderr" */
	int fd;           /* read end; -1 at EOF */
	char buf[LINE_MAX_];
	size_t n;
};

struct shim {
	const char *runc, *root, *bundle, *id, *log_path;
	int logfd;
	dev_t log_dev;
	ino_t log_ino;
	int64_t log_checked_ms;
	struct stream out, err;
	bool started;
	pid_t ctr_pid;
	/* OOM watch */
	int oom_fd;     /* v1: eventfd; v2: memory.events (POLLPRI) */
	int oom_ctl_fd; /* memory.oom_control (v1) / memory.events (v2) */
	bool v2;
	char pod_oom_file[PATH_MAX + 32]; /* the pod cgroup's counter file */
	char ctr_cg[PATH_MAX];            /* the memory cgroup we made */
	int64_t pod_oom_base;             /* its oom_kill before runc started */
	uint64_t oom_events;              /* v1 eventfd count */
	bool oom_alive_event; /* one came while the cgroup was there */
	bool oom;
};

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_open(struct shim *s)
{
	if (s->logfd >= 0)
		close(s->logfd);
	s->logfd = -1;
	if (s->log_path == NULL || *s->log_path == '\0')
		return;
	s->logfd =
	    open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	struct stat st;
	if (s->logfd >= 0 && fstat(s->logfd, &st) == 0) {
		s->log_dev = st.st_dev;
		s->log_ino = st.st_ino;
	}
	s->log_checked_ms = mono_ms();
}

/* The kubelet rotates by renaming: follow the path, at most once a second. */
static void log_check(struct shim *s)
{
	if (s->log_path == NULL || *s->log_path == '\0')
		return;
	int64_t now = mono_ms();
	if (now - s->log_checked_ms < 1000 && s->logfd >= 0)
		return;
	s->log_checked_ms = now;
	struct stat st;
	if (s->logfd < 0 || stat(s->log_path, &st) != 0 ||
	    st.st_ino != s->log_ino || st.st_dev != s->log_dev)
		log_open(s);
}

static void emit(struct shim *s, const char *stream, char tag, const char *text,
    size_t n)
{
	log_check(s);
	if (s->logfd < 0)
		return;
	static char line[LINE_MAX_ + 128];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t o = strftime(line, 64, "%Y-%m-%dT%H:%M:%S", &tm);
	o += (size_t)snprintf(line + o, 64, ".%09ldZ %s %c ", ts.tv_nsec,
	    stream, tag);
	memcpy(line + o, text, n);
	o += n;
	line[o++] = '\n';
	/* One write per record: O_APPEND keeps records whole. */
	ssize_t w;
	do
		w = write(s->logfd, line, o);
	while (w < 0 && errno == EINTR);
}

/* Turn what is buffered into records: full lines, then a partial one when
 * the buffer is full (or at EOF when flush). */
static void drain_lines(struct shim *s, struct stream *st, bool flush)
{
	size_t off = 0;
	for (;;) {
		char *nl = memchr(st->buf + off, '\n', st->n - off);
		if (nl == NULL)
			break;
		size_t len = (size_t)(nl - (st->buf + off));
		emit(s, st->name, 'F', st->buf + off, len);
		off += len + 1;
	}
	size_t rest = st->n - off;
	if (rest == sizeof(st->buf)) {
		emit(s, st->name, 'P', st->buf, rest);
		rest = 0;
		off = st->n;
	} else if (flush && rest) {
		/* The stream ended without a newline: the line is whole. */
		emit(s, st->name, 'F', st->buf + off, rest);
		rest = 0;
		off = st->n;
	}
	memmove(st->buf, st->buf + off, rest);
	st->n = rest;
}

static void read_stream(struct shim *s, struct stream *st)
{
	ssize_t r;
	do
		r = read(st->fd, st->buf + st->n, sizeof(st->buf) - st->n);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN)
		return;
	if (r <= 0) {
		close(st->fd);
		st->fd = -1;
		drain_lines(s, st, true);
		return;
	}
	st->n += (size_t)r;
	drain_lines(s, st, false);
}

static int64_t read_counter(int fd, const char *key)
{
	char buf[2048];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	size_t kl = strlen(key);
	for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (!strncmp(p, key, kl) && p[kl] == ' ')
			return strtoll(p + kl + 1, NULL, 10);
	return -1;
}

/* The container's own memory cgroup (`rel`: cgroupsPath), made here
 * before runc starts so that the watch is in place before the container
 * can run out of memory (runc takes a cgroup that already exists, and
 * removes it at exit). A fresh cgroup: any oom_kill in it is this
 * container's. v1: an eventfd on memory.oom_control, which fires when the
 * OOM starts and again when the cgroup goes; v2: POLLPRI on
 * memory.events. */
static void oom_watch(struct shim *s, const char *rel)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	if (rr_cgroup_mount_dir(s->v2 ? "" : "memory", rel, dir, sizeof(dir)) !=
		0 ||
	    rr_mkdirs(dir, 0755) != 0)
		return;
	snprintf(s->ctr_cg, sizeof(s->ctr_cg), "%s", dir);
	snprintf(path, sizeof(path), "%s/%s", dir,
	    s->v2 ? "memory.events" : "memory.oom_control");
	s->oom_ctl_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->oom_ctl_fd < 0)
		return;
	if (s->v2) {
		s->oom_fd = s->oom_ctl_fd;
		return;
	}
	s->oom_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	snprintf(path, sizeof(path), "%s/cgroup.event_control", dir);
	int ec = open(path, O_WRONLY | O_CLOEXEC);
	char reg[64];
	int n = snprintf(reg, sizeof(reg), "%d %d", s->oom_fd, s->oom_ctl_fd);
	if (s->oom_fd < 0 || ec < 0 || write(ec, reg, (size_t)n) != n) {
		if (s->oom_fd >= 0)
			close(s->oom_fd);
		s->oom_fd = -1;
	}
	if (ec >= 0)
		close(ec);
}

/* v1's notification fires when the OOM starts (before oom_kill counts
 * it) and again when the cgroup is removed: an event while the cgroup is
 * still there, or two events, mean an OOM. v2 notifies after counting. */
static void oom_check(struct shim *s)
{
	if (s->oom_fd >= 0 && !s->v2) {
		uint64_t v = 0;
		if (read(s->oom_fd, &v, sizeof(v)) == sizeof(v) && v > 0) {
			s->oom_events += v;
			char buf[64];
			if (s->oom_ctl_fd >= 0 &&
			    pread(s->oom_ctl_fd, buf, sizeof(buf), 0) > 0)
				s->oom_alive_event = true;
		}
	}
	if (s->oom_ctl_fd >= 0 && read_counter(s->oom_ctl_fd, "oom_kill") > 0)
		s->oom = true;
}

/* The pod's memory cgroup outlives the container; on v2 its oom_kill
 * counts its children's kills (memory.events is hierarchical). */
static int64_t pod_oom_kills(const struct shim *s)
{
	if (*s->pod_oom_file == '\0')
		return -1;
	int fd = open(s->pod_oom_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1; /* not made yet: none */
	int64_t k = read_counter(fd, "oom_kill");
	close(fd);
	return k;
}

static void check_started(struct shim *s)
{
	if (s->started)
		return;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/pid", s->bundle);
	char *txt = rr_slurp(path, NULL);
	if (txt == NULL)
		return;
	pid_t pid = (pid_t)strtol(txt, NULL, 10);
	free(txt);
	if (pid <= 0)
		return;
	s->started = true;
	s->ctr_pid = pid;
	uint64_t st = rr_proc_starttime(pid);
	char rec[128];
	int n = snprintf(rec, sizeof(rec), "%d %llu %lld\n", (int)pid,
	    (unsigned long long)st, (long long)rr_now_ms());
	snprintf(path, sizeof(path), "%s/started", s->bundle);
	if (rr_write_atomic(path, rec, (size_t)n) != 0)
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
}

/* runc's last error, from its text log: the msg="…" of the last
 * level=error line (or the last line). */
static void runc_error(const struct shim *s, char *out, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/runc.log", s->bundle);
	char *txt = rr_slurp(path, NULL);
	*out = '\0';
	if (txt == NULL)
		return;
	char *best = NULL;
	for (char *p = txt; p && *p;) {
		char *e = strchr(p, '\n');
		if (e)
			*e = '\0';
		if (*p && (best == NULL || strstr(p, "level=error")))
			best = p;
		p = e ? e + 1 : NULL;
	}
	if (best) {
		char *m = strstr(best, "msg=\"");
		if (m) {
			m += 5;
			size_t o = 0;
			for (; *m && *m != '"' && o + 1 < len; m++) {
				if (*m == '\\' && m[1])
					m++;
				out[o++] = *m;
			}
			out[o] = '\0';
		} else {
			snprintf(out, len, "%s", best);
		}
	}
	free(txt);
}

static pid_t spawn_runc(struct shim *s, int outw, int errw)
{
	char logp[PATH_MAX], pidp[PATH_MAX];
	snprintf(logp, sizeof(logp), "%s/runc.log", s->bundle);
	snprintf(pidp, sizeof(pidp), "%s/pid", s->bundle);
	const char *argv[] = { s->runc, "--root", s->root, "--log", logp, "run",
		"--bundle", s->bundle, "--pid-file", pidp, s->id, NULL };
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0 || dup2(outw, 1) < 0 ||
	    dup2(errw, 2) < 0)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], (char *const *)argv);
	dprintf(2, "kubus-runc-shim: cannot run %s: %s\n", argv[0],
	    strerror(errno));
	_exit(127);
}

static void write_exit(struct shim *s, int ws)
{
	int code = WIFEXITED(ws) ? WEXITSTATUS(ws) :
	    WIFSIGNALED(ws)      ? 128 + WTERMSIG(ws) :
				   255;
	char msg[KB_RT_MESSAGE_MAX] = "";
	const char *reason;
	if (!s->started) {
		reason = "ContainerCannotRun";
		runc_error(s, msg, sizeof(msg));
		if (*msg == '\0')
			snprintf(msg, sizeof(msg),
			    "runc exited with %d "
			    "before the container started",
			    code);
		/* As containerd's StartError: 128, whatever runc said. */
		code = 128;
	} else if (s->oom) {
		reason = "OOMKilled";
	} else {
		reason = code == 0 ? "Completed" : "Error";
	}
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	char rec[KB_RT_MESSAGE_MAX + 128], path[PATH_MAX];
	int n = snprintf(rec, sizeof(rec), "%d %lld %s\n%s\n", code,
	    (long long)rr_now_ms(), reason, msg);
	snprintf(path, sizeof(path), "%s/exit", s->bundle);
	if (rr_write_atomic(path, rec, (size_t)n) != 0)
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr,
		    "usage: kubus-runc-shim RUNC ROOT BUNDLE ID "
		    "LOGPATH POD_CGROUP\n");
		return 2;
	}
	struct shim s = { .runc = argv[1],
		.root = argv[2],
		.bundle = argv[3],
		.id = argv[4],
		.log_path = argv[5],
		.logfd = -1,
		.oom_fd = -1,
		.oom_ctl_fd = -1 };
	s.out = (struct stream){ .name = "stdout", .fd = -1 };
	s.err = (struct stream){ .name = "stderr", .fd = -1 };
	/* Nothing of the kubelet's (sockets, files) stays open here. */
	syscall(SYS_close_range, 3u, ~0u, 0u);
	if (setsid() < 0)
		return 1;
	pid_t p = fork();
	if (p < 0)
		return 1;
	if (p > 0)
		_exit(0);
	/* The detached shim. */
	if (chdir(s.bundle) != 0)
		return 1;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/shim.log", s.bundle);
	int null = open("/dev/null", O_RDWR);
	int el = open(path, O_WRONLY | O_CREAT | O_APPEND, 0640);
	if (null < 0 || el < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
	    dup2(el, 2) < 0)
		return 1;
	close(null);
	close(el);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	{
		char rec[64];
		pid_t me = getpid();
		int n = snprintf(rec, sizeof(rec), "%d %llu\n", (int)me,
		    (unsigned long long)rr_proc_starttime(me));
		snprintf(path, sizeof(path), "%s/shim", s.bundle);
		if (rr_write_atomic(path, rec, (size_t)n) != 0)
			die("cannot write %s: %s", path, strerror(errno));
	}
	log_open(&s);
	s.v2 = rr_cgroup2_only();
	char pod[PATH_MAX];
	if (argv[6][0] == '/' &&
	    rr_cgroup_mount_dir(s.v2 ? "" : "memory", argv[6], pod,
		sizeof(pod)) == 0)
		snprintf(s.pod_oom_file, sizeof(s.pod_oom_file), "%s/%s", pod,
		    s.v2 ? "memory.events" : "memory.oom_control");
	s.pod_oom_base = pod_oom_kills(&s);
	if (argv[6][0] == '/') {
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "%.2000s/%.200s", argv[6], s.id);
		oom_watch(&s, rel);
	}
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (in >= 0)
		inotify_add_watch(in, s.bundle, IN_MOVED_TO | IN_CREATE);
	pid_t runc = spawn_runc(&s, po[1], pe[1]);
	if (runc < 0)
		die("fork: %s", strerror(errno));
	close(po[1]);
	close(pe[1]);
	s.out.fd = po[0];
	s.err.fd = pe[0];
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pe[0], F_SETFL, O_NONBLOCK);
	int pidfd = -1;
#ifdef SYS_pidfd_open
	pidfd = (int)syscall(SYS_pidfd_open, runc, 0);
#endif
	int ws = 0;
	bool exited = false;
	while (!exited) {
		struct pollfd pf[5];
		int np = 0, iout = -1, ierr = -1, iin = -1, ioom = -1,
		    ipid = -1;
		if (s.out.fd >= 0) {
			iout = np;
			pf[np++] = (struct pollfd){ s.out.fd, POLLIN, 0 };
		}
		if (s.err.fd >= 0) {
			ierr = np;
			pf[np++] = (struct pollfd){ s.err.fd, POLLIN, 0 };
		}
		if (in >= 0 && !s.started) {
			iin = np;
			pf[np++] = (struct pollfd){ in, POLLIN, 0 };
		}
		if (s.oom_fd >= 0 && !s.oom) {
			ioom = np;
			pf[np++] = (struct pollfd){ s.oom_fd,
				s.v2 ? POLLPRI : POLLIN, 0 };
		}
		if (pidfd >= 0) {
			ipid = np;
			pf[np++] = (struct pollfd){ pidfd, POLLIN, 0 };
		}
		/* Without a pidfd (old kernels) or inotify, poll slowly. */
		int timeout = pidfd < 0 || in < 0 ? 20 : 1000;
		int pr = poll(pf, (nfds_t)np, timeout);
		if (pr < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (pr > 0 && iin >= 0 && pf[iin].revents) {
			char buf[4096];
			while (read(in, buf, sizeof(buf)) > 0)
				;
		}
		if (!s.started)
			check_started(&s);
		if (pr > 0 && iout >= 0 && pf[iout].revents)
			read_stream(&s, &s.out);
		if (pr > 0 && ierr >= 0 && pf[ierr].revents)
			read_stream(&s, &s.err);
		if (pr > 0 && ioom >= 0 && pf[ioom].revents)
			oom_check(&s);
		if (ipid < 0 || (pr > 0 && pf[ipid].revents)) {
			pid_t w = waitpid(runc, &ws, WNOHANG);
			exited = w == runc;
		}
	}
	check_started(&s);
	oom_check(&s);
	if (getenv("KUBUS_SHIM_DEBUG"))
		fprintf(stderr,
		    "debug: started=%d watch=%d/%d events=%llu "
		    "alive=%d oom=%d pod=%lld/%lld ws=%d\n",
		    s.started, s.oom_fd, s.oom_ctl_fd,
		    (unsigned long long)s.oom_events, s.oom_alive_event, s.oom,
		    (long long)s.pod_oom_base, (long long)pod_oom_kills(&s),
		    ws);
	/* An OOM kill ends in SIGKILL; then any sign of one counts: v1's
	 * events, or (v2, hierarchical) the pod cgroup's counter. */
	bool killed = WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + SIGKILL;
	int64_t kills = pod_oom_kills(&s);
	if (killed &&
	    (s.oom_alive_event || s.oom_events >= 2 ||
		(s.v2 && s.pod_oom_base >= 0 && kills > s.pod_oom_base)))
		s.oom = true;
	/* The container is gone; what it wrote is still in the pipes. A
	 * leftover holder of the pipe (a process that escaped) gets 500 ms. */
	int64_t end = mono_ms() + 500;
	while ((s.out.fd >= 0 || s.err.fd >= 0) && mono_ms() < end) {
		struct pollfd pf[2];
		int np = 0;
		struct stream *which[2];
		if (s.out.fd >= 0) {
			which[np] = &s.out;
			pf[np++] = (struct pollfd){ s.out.fd, POLLIN, 0 };
		}
		if (s.err.fd >= 0) {
			which[np] = &s.err;
			pf[np++] = (struct pollfd){ s.err.fd, POLLIN, 0 };
		}
		if (poll(pf, (nfds_t)np, 100) <= 0)
			continue;
		for (int i = 0; i < np; i++)
			if (pf[i].revents)
				read_stream(&s, which[i]);
	}
	if (s.out.fd >= 0)
		drain_lines(&s, &s.out, true);
	if (s.err.fd >= 0)
		drain_lines(&s, &s.err, true);
	/* runc removes the container's cgroups; not when it failed early. */
	if (*s.ctr_cg)
		rmdir(s.ctr_cg);
	write_exit(&s, ws);
	return 0;
}

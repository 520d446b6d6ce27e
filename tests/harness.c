/* tests/harness.c — real hosts inside test processes (see harness.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <kubus/client.h>

#include "harness.h"
#include "host.h"
#include "sanitize.h"

struct kbt_host {
	struct kb_host *h;
	char *tmp;
};

const char *kbt_build_dir(void)
{
	const char *b = getenv("KUBUS_BUILD");
	return b && *b ? b : "build";
}

const char *kbt_src_dir(void)
{
	const char *s = getenv("KUBUS_SRC");
	return s && *s ? s : ".";
}

char *kbt_mkdtemp(const char *tag)
{
	char tmpl[256];
	snprintf(tmpl, sizeof(tmpl), "/tmp/kubus-%s-XXXXXX", tag ? tag : "t");
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

char *kbt_mkdtemp_owned(const char *tag)
{
	char owner[600];
	char *d = kbt_mkdtemp(tag);
	if (d == NULL)
		return NULL;
	snprintf(owner, sizeof(owner), "%s/.owner", d);
	FILE *f = fopen(owner, "w");
	if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0) {
		if (f)
			fclose(f);
		kbt_rmrf(d);
		free(d);
		return NULL;
	}
	fclose(f);
	return d;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

void kbt_rmrf(const char *path)
{
	if (path && strncmp(path, "/tmp/", 5) == 0)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void kbt_pods_cleanup(const char *dir)
{
	char *cmd;
	if (dir == NULL || strncmp(dir, "/tmp/", 5) != 0 || strchr(dir, '\'') ||
	    asprintf(&cmd,
		"for r in $(find '%s' -maxdepth 4 -type d -name runc); do "
		"for c in $(runc --root \"$r\" list -q 2>/dev/null); do "
		"runc --root \"$r\" delete -f \"$c\" >/dev/null 2>&1; done; done; "
		"grep -o ' %s/[^ ]*' /proc/self/mountinfo | sort -r | "
		"xargs -r -n1 umount -l; "
		"for p in $(find '%s' -mindepth 4 -maxdepth 6 -type d "
		"-path '*/kubelet/*/pods/*' -prune); do "
		"n=kubus-$(basename \"$p\" | tr -d - | cut -c1-12); "
		"if [ -e /run/netns/$n ]; then ip netns del $n; fi; done; true",
		dir, dir, dir) < 0)
		return;
	if (system(cmd) != 0)
		fprintf(stderr, "# cleanup of %s failed\n", dir);
	free(cmd);
}

void kbt_sweep_stale(const char *tag)
{
	char pat[256];
	snprintf(pat, sizeof(pat), "/tmp/kubus-%s-", tag);
	DIR *d = opendir("/tmp");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		char dir[512], owner[600];
		if (strncmp(e->d_name, pat + 5, strlen(pat + 5)) != 0)
			continue;
		snprintf(dir, sizeof(dir), "/tmp/%s", e->d_name);
		snprintf(owner, sizeof(owner), "%s/.owner", dir);
		FILE *f = fopen(owner, "r");
		long pid = 0;
		if (f == NULL)
			continue;
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
		if (pid <= 0 || pid == (long)getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		fprintf(stderr, "# %s: left by process %ld, which is gone: cleaning up\n",
		    dir, pid);
		kbt_pods_cleanup(dir);
		kbt_rmrf(dir);
	}
	if (d)
		closedir(d);
}

int kbt_run(const char *cmd, char **out)
{
	char *full;
	if (asprintf(&full, "%s 2>&1", cmd) < 0)
		return -1;
	FILE *p = popen(full, "r");
	free(full);
	if (p == NULL)
		return -1;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
		n += r;
		if (cap - n < 2) {
			char *nb = realloc(buf, cap *= 2);
			if (nb == NULL)
				break;
			buf = nb;
		}
	}
	if (buf)
		buf[n] = '\0';
	int st = pclose(p);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int kbt_kubus(char **out, const char *fmt, ...)
{
	char args[4096], cmd[4700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s/kubus %s", kbt_build_dir(), args);
	char *o = NULL;
	int rc = kbt_run(cmd, &o);
	if (out)
		*out = o;
	else
		free(o);
	return rc;
}

bool kbt_cond_true(const msgpack_object *obj, const char *type)
{
	const msgpack_object *cs =
	    obj ? kb_mp_get(obj, "status.conditions") : NULL;
	for (uint32_t i = 0;
	     cs && cs->type == MSGPACK_OBJECT_ARRAY && i < cs->via.array.size;
	     i++)
		if (kb_mp_streq(&cs->via.array.ptr[i], "type", type))
			return kb_mp_streq(&cs->via.array.ptr[i], "status",
			    "True");
	return false;
}

int kbt_count_ready_nodes(kb_ctx *c)
{
	kb_msg *rep = NULL;
	int n = 0;
	if (kb_api_list(c, &KB_GVR_NODES, NULL, NULL, NULL, &rep) == 0) {
		const msgpack_object *items =
		    kb_mp_get(kb_msg_body(rep), "items");
		for (uint32_t i = 0;
		     items && items->type == MSGPACK_OBJECT_ARRAY &&
		     i < items->via.array.size;
		     i++)
			n += kbt_cond_true(&items->via.array.ptr[i], "Ready");
	}
	kb_msg_free(rep);
	return n;
}

static pid_t spawn(char *const argv[], const char *log, bool tied)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	if (tied) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1); /* the test is already gone */
	}
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	/* Not the test's signal mask or process group: a clean process. */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], argv);
	fprintf(stderr, "kbt_spawn: cannot run %s\n", argv[0]);
	_exit(127);
}

pid_t kbt_spawn(char *const argv[], const char *log)
{
	return spawn(argv, log, false);
}

pid_t kbt_spawn_tied(char *const argv[], const char *log)
{
	return spawn(argv, log, true);
}

/* The low end of the kernel's ephemeral range (32768 unless set). */
static int ephemeral_low(void)
{
	int lo = 32768, hi = 60999;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	return lo;
}

static bool port_binds(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Below the ephemeral range: a port the kernel hands out for bind(0) or
 * for an outgoing connection (another test's client of etcd, say) can be
 * taken between this check and the server's bind, and was (ha-etcd under
 * CI: "Address already in use"). Ports here are taken only by servers
 * that ask for them. Random, so that tests running side by side rarely
 * try the same one; the kernel's choice when none of the tries binds. */
int kbt_free_port(void)
{
	static _Atomic unsigned seq;
	int hi = ephemeral_low() - 1, lo = 10000;
	if (hi - lo >= 1000) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		unsigned seed = (unsigned)getpid() * 2654435761u ^
		    (unsigned)ts.tv_nsec ^ (seq++ * 40503u);
		for (int i = 0; i < 64; i++) {
			seed = seed * 1103515245u + 12345u;
			int port = lo + (int)((seed >> 8) % (unsigned)(hi - lo + 1));
			if (port_binds(port))
				return port;
		}
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int64_t kbt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kbt_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int kbt_wait_pid(pid_t pid, int ms)
{
	int64_t end = kbt_now_ms() + ms;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1;
		if (kbt_now_ms() >= end)
			return -1;
		usleep(10000);
	}
}

void kbt_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	if (waitpid(pid, NULL, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

char *kbt_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	size_t cap = 4096, n = 0, r;
	char *buf = malloc(cap);
	while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n < 2) {
			char *nb = realloc(buf, cap *= 2);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
	}
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

char *kbt_wait_file(const char *path, const char *needle, int ms)
{
	int64_t end = kbt_now_ms() + ms;
	for (;;) {
		char *s = kbt_slurp(path);
		if (s && strstr(s, needle))
			return s;
		free(s);
		if (kbt_now_ms() >= end)
			return NULL;
		usleep(20000);
	}
}

struct kbt_host *kbt_host_start(const char *yaml, char *err, size_t errlen)
{
	struct kbt_host *t = calloc(1, sizeof(*t));
	char path[2048], kubus[1024];
	snprintf(path, sizeof(path), "%s/plugins:%s/tests/plugins", kbt_build_dir(),
	    kbt_build_dir());
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	bool own_dir = strstr(yaml, "data_dir") == NULL;
	t->tmp = own_dir ? kbt_mkdtemp("host") : NULL;
	struct kb_host_opts o = {
		.config_text = yaml,
		.data_dir = t->tmp,
		.plugin_path = path,
		.argv0 = kubus,
	};
	/* A test host listens nowhere unless its YAML says so. */
	char *text = NULL;
	if (strstr(yaml, "listen") == NULL) {
		if (asprintf(&text, "%s%sbus:\n  listen: []\n", yaml,
		        yaml[0] && yaml[strlen(yaml) - 1] != '\n' ? "\n" : "") < 0)
			text = NULL;
		if (strstr(yaml, "bus:") == NULL && text)
			o.config_text = text;
	}
	t->h = kb_host_new(&o, err, errlen);
	free(text);
	if (t->h == NULL || kb_host_start(t->h, err, errlen) != 0) {
		if (t->h)
			kb_host_free(t->h);
		kbt_rmrf(t->tmp);
		free(t->tmp);
		free(t);
		return NULL;
	}
	return t;
}

struct kb_host *kbt_host_core(struct kbt_host *t)
{
	return t->h;
}

struct kbt_host *kbt_api_host_start_with(const char *host, const char *config,
    const char *more, char *err, size_t errlen)
{
	char yaml[4096];
	int n = snprintf(yaml, sizeof(yaml),
	    "host: {log_level: warn%s%s}\n"
	    "bus:\n"
	    "  listen: []\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {%s}\n"
	    "%s",
	    host ? ", " : "", host ? host : "", config, more ? more : "");
	if (n < 0 || (size_t)n >= sizeof(yaml)) {
		snprintf(err, errlen, "the host's YAML is over %zu bytes",
		    sizeof(yaml));
		return NULL;
	}
	return kbt_host_start(yaml, err, errlen);
}

struct kbt_host *kbt_api_host_start(const char *config, char *err,
    size_t errlen)
{
	return kbt_api_host_start_with(NULL, config, NULL, err, errlen);
}

const char *kbt_host_data_dir(struct kbt_host *t)
{
	return t->h->data_dir;
}

kb_ctx *kbt_client(struct kbt_host *t, const char *name, const char *user,
    const char *const *groups, size_t ngroups)
{
	return kb_host_client(t->h, name, user, groups, ngroups);
}

void kbt_host_stop(struct kbt_host *t)
{
	if (t == NULL)
		return;
	kb_host_stop(t->h);
	kb_host_free(t->h);
	kbt_rmrf(t->tmp);
	free(t->tmp);
	free(t);
}

bool kbt_kubus_start(struct kbt_kubus *k, const char *dir, const char *data,
    const char *yaml, const char *set, const char *ready)
{
	char cfg[600], kubus[600], plugins[600];
	k->starts++;
	snprintf(cfg, sizeof(cfg), "%s/kubus-%d.yaml", dir, k->starts);
	FILE *f = yaml ? fopen(cfg, "w") : NULL;
	if (f == NULL)
		return false;
	bool wrote = fputs(yaml, f) >= 0;
	if (fclose(f) != 0 || !wrote)
		return false;
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	snprintf(plugins, sizeof(plugins), "%s/plugins", kbt_build_dir());
	free(k->log);
	if (asprintf(&k->log, "%s/kubus-%d.log", dir, k->starts) < 0) {
		k->log = NULL;
		return false;
	}
	char *argv[] = { kubus, "run", "-c", cfg, "--data-dir", (char *)data,
		"--plugin-path", plugins, set ? "--set" : NULL, (char *)set,
		NULL };
	k->pid = kbt_spawn_tied(argv, k->log);
	if (k->pid <= 0)
		return false;
	char *l = kbt_wait_file(k->log, "export KUBECONFIG=", 30000);
	if (l != NULL && ready != NULL) {
		free(l);
		l = kbt_wait_file(k->log, ready, 15000);
	}
	if (l == NULL) {
		char *all = kbt_slurp(k->log);
		fprintf(stderr, "# kubus did not come up:\n%s\n",
		    all ? all : "");
		free(all);
		return false;
	}
	free(l);
	return true;
}

bool kbt_kubus_stop(struct kbt_kubus *k)
{
	if (k->pid <= 0)
		return true;
	kill(k->pid, SIGTERM);
	int st = kbt_wait_pid(k->pid, 20000);
	if (st < 0)
		kbt_kill(k->pid);
	k->pid = 0;
	char *l = kbt_slurp(k->log);
	bool clean = l && !strstr(l, "Sanitizer") &&
	    !strstr(l, "runtime error:");
	bool ok = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && clean;
	if (!ok)
		fprintf(stderr, "# kubus (status %d) log %s:\n%s\n", st, k->log,
		    l ? l : "");
	free(l);
	return ok;
}

bool kbt_runc_images(char *buf, size_t len, const char *dir)
{
	char img[600];
	snprintf(img, sizeof(img), "%s/images/busybox.tar", kbt_build_dir());
	if (access(img, R_OK) == 0) {
		snprintf(buf, len, "{}");
		return true;
	}
	snprintf(buf, len, "{local_images: {busybox: \"%s/rootfs\"}}", dir);
	return false;
}

bool kbt_busybox_rootfs(const char *dir)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	    "set -e; r='%s/rootfs'; mkdir -p $r/bin $r/etc $r/tmp $r/proc "
	    "$r/sys $r/dev $r/www; cp /bin/busybox $r/bin/busybox; "
	    "for a in $(/bin/busybox --list); do "
	    "[ -e $r/bin/$a ] || ln -s busybox $r/bin/$a; done; "
	    "echo 'root:x:0:0:root:/root:/bin/sh' > $r/etc/passwd",
	    dir);
	char *o = NULL;
	int rc = kbt_run(cmd, &o);
	if (rc)
		fprintf(stderr, "# rootfs: %s\n", o ? o : "");
	free(o);
	return rc == 0;
}

/* --- CPU by thread (benchmarks) ---------------------------------------------------- */

/* The first line of path, without its newline, into buf ("" if none). */
static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

void kbt_cpu_by_thread(struct kbt_cpu_groups *g)
{
	memset(g, 0, sizeof(*g));
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], name[16], stat[64];
		unsigned long long ns;
		snprintf(path, sizeof(path), "/proc/self/task/%s/schedstat", e->d_name);
		if (!read_line(path, stat, sizeof(stat)) || sscanf(stat, "%llu", &ns) != 1)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		if (!read_line(path, name, sizeof(name)))
			continue;
		int i = 0;
		while (i < g->n && strcmp(g->name[i], name))
			i++;
		if (i == g->n) {
			if (g->n == KBT_CPU_GROUPS)
				continue;
			snprintf(g->name[g->n++], sizeof(g->name[0]), "%s", name);
		}
		g->s[i] += (double)ns / 1e9;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		char line[128];
		long v;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
				g->csw[i] += v;
		fclose(f);
	}
	if (d)
		closedir(d);
}

void kbt_print_cpu_groups(const char *label, const struct kbt_cpu_groups *a,
    const struct kbt_cpu_groups *b, int per)
{
	double d[KBT_CPU_GROUPS];
	long c[KBT_CPU_GROUPS];
	int order[KBT_CPU_GROUPS];
	for (int i = 0; i < b->n; i++) {
		d[i] = b->s[i];
		c[i] = b->csw[i];
		for (int j = 0; j < a->n; j++)
			if (!strcmp(a->name[j], b->name[i])) {
				d[i] -= a->s[j];
				c[i] -= a->csw[j];
			}
		order[i] = i;
	}
	for (int i = 1; i < b->n; i++)
		for (int j = i; j > 0 && d[order[j]] > d[order[j - 1]]; j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	fprintf(stderr, "%s cpu by thread (voluntary context switches per pod):", label);
	for (int i = 0; i < b->n; i++)
		if (d[order[i]] >= 0.005)
			fprintf(stderr, " %s=%.2fs (%.1f)", b->name[order[i]], d[order[i]],
			    per > 0 ? (double)c[order[i]] / per : 0.0);
	fprintf(stderr, "\n");
}

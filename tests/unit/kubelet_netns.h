/* tests/unit/kubelet_netns.h — for kubelet tests that make real network
 * namespaces and run CNI: the test's own network namespace (the whole test
 * process moves into it, so the API server, the bridge and the pod veths
 * live there and nowhere else; it has only `lo` and no route out), and
 * real kubectl against the host's admin kubeconfig.
 *
 * Header-only, static functions: included (after <cmocka.h>) by
 * test_kubelet_cni.c, test_kubelet_runc.c, test_kubelet_runc2.c and
 * test_e2e_services.c. */
#ifndef KUBUS_TESTS_KUBELET_NETNS_H
#define KUBUS_TESTS_KUBELET_NETNS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define KN_NSFS_MAGIC 0x6e736673

static void kn_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Why this machine cannot run the test, or NULL. */
static const char *kn_missing(void)
{
	static const char *const need[] = { "/usr/lib/cni/bridge",
		"/usr/lib/cni/host-local", "/usr/lib/cni/loopback", NULL };
	if (geteuid() != 0)
		return "not root (network namespaces and CNI need it)";
	for (int i = 0; need[i]; i++)
		if (access(need[i], X_OK) != 0)
			return "no CNI plugins in /usr/lib/cni (containernetworking-plugins)";
	if (system("ip -V >/dev/null 2>&1") != 0)
		return "no `ip` (iproute2)";
	if (system("kubectl version --client >/dev/null 2>&1") != 0)
		return "no kubectl";
	return NULL;
}

/* kn_missing, and what real containers need too: runc, busybox and the
 * runtime-runc plugin. */
static inline const char *kn_missing_runc(void)
{
	const char *why = kn_missing();
	char so[600];
	snprintf(so, sizeof(so), "%s/plugins/kubus-runtime-runc.so",
	    kbt_build_dir());
	if (why == NULL && system("runc --version >/dev/null 2>&1") != 0)
		why = "no runc";
	if (why == NULL && access("/bin/busybox", X_OK) != 0)
		why = "no /bin/busybox (busybox-static)";
	if (why == NULL && access(so, R_OK) != 0)
		why = "runtime-runc is not built";
	return why;
}

/* Remove namespaces named PREFIX-<pid> whose test process is gone. */
static void kn_sweep(const char *prefix)
{
	DIR *d = opendir("/run/netns");
	struct dirent *e;
	size_t pl = strlen(prefix);
	while (d && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, pl) || e->d_name[pl] != '-')
			continue;
		long pid = strtol(e->d_name + pl + 1, NULL, 10);
		if (pid > 0 && kill((pid_t)pid, 0) == 0)
			continue;
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null",
		    e->d_name);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove stale netns %s\n",
			    e->d_name);
	}
	if (d)
		closedir(d);
}

static int kn_home_fd = -1; /* the netns the test started in */

/* Make the namespace `name` (lo up, nothing else) and move this process
 * (its main thread, before any other thread exists) into it. */
static int kn_enter(const char *name)
{
	char cmd[512], path[300];
	kn_home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(cmd, sizeof(cmd),
	    "ip netns del %s 2>/dev/null; ip netns add %s && ip -n %s link set lo up",
	    name, name, name);
	if (system(cmd) != 0) {
		fprintf(stderr, "# cannot make netns %s\n", name);
		return -1;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
		fprintf(stderr, "# cannot enter netns %s: %s\n", name,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void kn_leave(const char *name)
{
	char cmd[300];
	if (kn_home_fd >= 0) {
		if (setns(kn_home_fd, CLONE_NEWNET) != 0)
			fprintf(stderr,
			    "# cannot go back to the first netns\n");
		close(kn_home_fd);
		kn_home_fd = -1;
	}
	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", name);
	if (system(cmd) != 0)
		fprintf(stderr, "# could not remove netns %s\n", name);
}

/* A test's main once its checks are done: "# SKIP test: why" when `why`
 * is set; else remove stale PREFIX-<pid> namespaces, run the group inside
 * a fresh one (its name in `netns`, NETNS_LEN bytes) and remove it. */
#define KN_NETNS_LEN 64
#define kn_main(test, prefix, why, netns, tests, setup, teardown)              \
	kn_run_group(test, prefix, why, netns, tests,                          \
	    sizeof(tests) / sizeof((tests)[0]), setup, teardown)
static int kn_run_group(const char *test, const char *prefix, const char *why,
    char *netns, const struct CMUnitTest *tests, size_t n,
    CMFixtureFunction setup, CMFixtureFunction teardown)
{
	if (why) {
		printf("# SKIP %s: %s\n", test, why);
		return 0;
	}
	kn_sweep(prefix);
	snprintf(netns, KN_NETNS_LEN, "%s-%d", prefix, (int)getpid());
	if (kn_enter(netns) != 0)
		return 1;
	int rc = _cmocka_run_group_tests(test, tests, n, setup, teardown);
	kn_leave(netns);
	return rc;
}

static inline bool kn_is_netns(const char *path)
{
	struct statfs fs;
	return statfs(path, &fs) == 0 &&
	    (unsigned long)fs.f_type == KN_NSFS_MAGIC;
}

/* The kubelet's netns path for a pod uid (netns.c's naming). */
static inline void kn_pod_netns(const char *uid, char *buf, size_t len)
{
	char s[16];
	size_t n = 0;
	for (const char *u = uid; *u && n < 12; u++)
		if (*u != '-')
			s[n++] = *u;
	s[n] = '\0';
	snprintf(buf, len, "/run/netns/kubus-%s", s);
}

/* --- kubectl -------------------------------------------------------------- */

struct kn_kubectl {
	char home[512];
	char kubeconfig[512];
};

static char *kn_kubectl(const struct kn_kubectl *k, int *status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static char *kn_kubectl(const struct kn_kubectl *k, int *status,
    const char *fmt, ...)
{
	char args[4096], cmd[5200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd),
	    "HOME='%s' KUBECONFIG='%s' timeout 30 kubectl %s", k->home,
	    k->kubeconfig, args);
	char *out = NULL;
	int st = kbt_run(cmd, &out);
	if (status)
		*status = st;
	return out ? out : strdup("");
}

/* Poll `kubectl get <what> -o jsonpath=<jp>` until its output contains
 * `want` (or, with want starting with '=', equals the rest). The last
 * output is returned (malloc'd) in either case; *ok says which. */
static char *kn_wait(const struct kn_kubectl *k, const char *what,
    const char *jp, const char *want, int ms, bool *ok)
{
	char *out = NULL;
	*ok = false;
	for (int waited = 0; waited <= ms; waited += 250) {
		free(out);
		out = kn_kubectl(k, NULL, "get %s -o jsonpath='%s'", what, jp);
		if ((want[0] == '=' && !strcmp(out, want + 1)) ||
		    (want[0] != '=' && strstr(out, want))) {
			*ok = true;
			return out;
		}
		kn_sleep_ms(250);
	}
	fprintf(stderr, "# waited %d ms for %s %s to show \"%s\"; last: %s\n",
	    ms, what, jp, want, out);
	return out;
}

/* Write text to path; false on error. */
static bool kn_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return false;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

/* Write yaml to DIR/NAME.yaml and `kubectl apply -f` it: kubectl's output
 * (malloc'd), its exit status in *status (-1 when the file could not be
 * written); the output goes to stderr too when it failed. */
static char *kn_apply(const struct kn_kubectl *k, const char *dir,
    const char *name, const char *yaml, int *status)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s.yaml", dir, name);
	if (!kn_write(path, yaml)) {
		fprintf(stderr, "# cannot write %s\n", path);
		*status = -1;
		return strdup("");
	}
	char *out = kn_kubectl(k, status, "apply -f %s", path);
	if (*status != 0)
		fprintf(stderr, "# kubectl apply %s: %s\n", name, out);
	return out;
}

/* Entries of dir other than the named ones (count). */
static int kn_dir_count(const char *dir, const char *const *except)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		bool skip = false;
		for (int i = 0; except && except[i]; i++)
			skip |= !strcmp(e->d_name, except[i]);
		if (!skip) {
			fprintf(stderr, "#   %s/%s\n", dir, e->d_name);
			n++;
		}
	}
	if (d)
		closedir(d);
	return n;
}

#endif

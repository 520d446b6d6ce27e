/* tests/harness.h — start real hosts inside a test process.
 *
 * A test describes a host in YAML (the same config the `kubus` binary
 * reads), starts it in-process with the real loader and bus, and gets client
 * contexts: in-process endpoints with a principal of the test's choosing,
 * through which it calls services exactly as a plugin would.
 *
 *     char err[512];
 *     struct kbt_host *h = kbt_host_start(
 *         "plugins:\n"
 *         "  - name: store\n"
 *         "    use: store-lmdb\n", err, sizeof err);
 *     assert_non_null(h);
 *     const char *groups[] = {"kubus:plugins", "kubus:kind:frontend"};
 *     kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 2);
 *     kb_msg *rep;
 *     int rc = kb_call(c, "store", "revision", NULL, 1000, &rep);
 *     …
 *     kbt_host_stop(h);
 *
 * The data dir is a fresh temporary directory (removed by kbt_host_stop)
 * unless the YAML sets host.data_dir. The plugin path is
 * $KUBUS_BUILD/plugins:$KUBUS_BUILD/tests/plugins.
 */
#ifndef KUBUS_TESTS_HARNESS_H
#define KUBUS_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <kubus/kubus.h>

struct kbt_host;

struct kbt_host *kbt_host_start(const char *yaml, char *err, size_t errlen);
/* The core's host object, for tests that look inside (stats). */
struct kb_host *kbt_host_core(struct kbt_host *h);
/* The host's data dir (borrowed). */
const char *kbt_host_data_dir(struct kbt_host *h);
/* A host with store-lmdb (sync off) and the apiserver, no bus listener;
 * `config` is the apiserver's config map inside its braces, e.g.
 * `plain_http: true, listen: "127.0.0.1:0"`. */
struct kbt_host *kbt_api_host_start(const char *config, char *err,
    size_t errlen);
/* The same, with `host` inside the host's braces after log_level (e.g.
 * `data_dir: "/tmp/x"`, or NULL) and `more` (YAML list items, or NULL)
 * after the apiserver in the plugins list. */
struct kbt_host *kbt_api_host_start_with(const char *host, const char *config,
    const char *more, char *err, size_t errlen);
/* A new in-process endpoint named `name` with the given principal. Freed by
 * kbt_host_stop. Services may be registered on it with kb_serve() at once. */
kb_ctx *kbt_client(struct kbt_host *h, const char *name, const char *user,
    const char *const *groups, size_t ngroups);
/* Stop every plugin (reverse order), free the host, remove a temporary
 * data dir. */
void kbt_host_stop(struct kbt_host *h);

/* $KUBUS_BUILD, or "build" when unset. */
const char *kbt_build_dir(void);
/* $KUBUS_SRC, or "." when unset. */
const char *kbt_src_dir(void);
/* A new empty directory /tmp/kubus-<tag>-XXXXXX (malloc'd path); kbt_rmrf
 * removes one. kbt_mkdtemp_owned's holds `.owner`, this process's id,
 * for kbt_sweep_stale. */
char *kbt_mkdtemp(const char *tag);
char *kbt_mkdtemp_owned(const char *tag);
void kbt_rmrf(const char *path);
/* What pods run under dir may leave when a test fails: every runc
 * container of a runc state dir named `runc` up to four levels down (their
 * shims go with them), the mounts under dir, and the netns of every pod a
 * kubelet there had a directory for (kubelet/<node>/pods/<uid>). */
void kbt_pods_cleanup(const char *dir);
/* The same, then kbt_rmrf, for every /tmp/kubus-<tag>-* whose owner
 * process is gone: an earlier run killed before its teardown (ctest's
 * timeout kills with SIGKILL). A directory without `.owner` is left. */
void kbt_sweep_stale(const char *tag);
/* Run a shell command, capture its stdout+stderr (malloc'd, NUL-terminated)
 * and exit status. */
int kbt_run(const char *cmd, char **out);
/* Run `BUILD/kubus ARGS` (printf-style) the same way: its exit status, its
 * output in *out (malloc'd) when out is set. */
int kbt_kubus(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True when the object's status.conditions has `type` with status True
 * (false for NULL). */
bool kbt_cond_true(const msgpack_object *obj, const char *type);
/* How many Nodes the `api` service lists with condition Ready=True; 0
 * when the list fails. */
int kbt_count_ready_nodes(kb_ctx *c);

/* Start `argv[0]` (a path) in the background with stdout and stderr
 * appended to `log`; returns its pid, or -1. */
pid_t kbt_spawn(char *const argv[], const char *log);
/* The same, but the child gets SIGKILL when the test process dies (even
 * when an assertion or a sanitizer ends it before its teardown). Call from
 * the main thread: PDEATHSIG follows the thread that forked. */
pid_t kbt_spawn_tied(char *const argv[], const char *log);
/* A loopback TCP port that was free a moment ago, or -1. */
int kbt_free_port(void);
/* The monotonic clock in ms; a sleep of ms (through signals). */
int64_t kbt_now_ms(void);
void kbt_sleep_ms(int ms);
/* Wait up to ms for pid to exit: its wait status, or -1 when it is still
 * running (it is not killed). */
int kbt_wait_pid(pid_t pid, int ms);
/* SIGKILL pid and reap it, if it is still there (for cleanups). */
void kbt_kill(pid_t pid);
/* Wait up to ms for the file to contain `needle`: its contents (malloc'd)
 * when it does, NULL on timeout. */
char *kbt_wait_file(const char *path, const char *needle, int ms);
/* The whole file (malloc'd, NUL-terminated), or NULL. */
char *kbt_slurp(const char *path);

/* `kubus run` from the build dir as a child process, as a user runs it. */
struct kbt_kubus {
	pid_t pid;
	char *log; /* this start's output (malloc'd) */
	int starts;
};
/* Write `yaml` to DIR/kubus-N.yaml and start `kubus run -c` it with
 * `--data-dir data`, the build's plugins and, when not NULL, `--set set`;
 * its output goes to DIR/kubus-N.log (a log per start, so what is waited
 * for is this start's). True once the log shows the KUBECONFIG line and,
 * when not NULL, `ready` after it; else the log goes to stderr. The
 * process is tied to the test (kbt_spawn_tied): a test killed before its
 * teardown takes it along, and kbt_sweep_stale cleans up after both. */
bool kbt_kubus_start(struct kbt_kubus *k, const char *dir, const char *data,
    const char *yaml, const char *set, const char *ready);
/* SIGTERM, as a user would; true when it exited by itself with status 0
 * and the sanitizers (when built with them) wrote nothing to its log.
 * SIGKILL after 20 s. True at once when it is not running. */
bool kbt_kubus_stop(struct kbt_kubus *k);
/* A busybox root filesystem in DIR/rootfs (Debian's busybox-static), for
 * runtime-runc's local_images. */
bool kbt_busybox_rootfs(const char *dir);
/* runtime-runc's config in `buf`: "{}" when BUILD/images/busybox.tar is
 * there (the image store has busybox); else local_images naming
 * DIR/rootfs (see kbt_busybox_rootfs). True in the first case. */
bool kbt_runc_images(char *buf, size_t len, const char *dir);

/* CPU seconds on a CPU (schedstat, exact even for threads that run briefly
 * and often) and voluntary context switches, summed by thread name: named
 * threads ("inf:pods", "sched:run", "ctrl:replicaset", "kubelet:worker" …)
 * apart, unnamed ones (API server, bus, store) under the process's name.
 * Threads that ended between two snapshots are lost (their CPU is in the
 * process's total). */
#define KBT_CPU_GROUPS 512
struct kbt_cpu_groups {
	int n;
	char name[KBT_CPU_GROUPS][16];
	double s[KBT_CPU_GROUPS];
	long csw[KBT_CPU_GROUPS];
};
void kbt_cpu_by_thread(struct kbt_cpu_groups *g);
/* One line to stderr, "<label> cpu by thread (voluntary context switches
 * per pod): name=1.23s (4.5) …", the CPU between a and b, largest first;
 * switches divided by per (the pods of the phase). */
void kbt_print_cpu_groups(const char *label, const struct kbt_cpu_groups *a,
    const struct kbt_cpu_groups *b, int per);

#endif

/* tests/store/etcd_proc.h — start and stop local etcd clusters for tests.
 *
 * Each member is a real `etcd` process (Debian's etcd-server; $KUBUS_ETCD
 * overrides the binary) listening on free 127.0.0.1 ports, with its data in
 * a fresh directory under $TMPDIR (or /tmp) that etcd_cluster_stop()
 * removes. Settings are etcd's defaults, durable ones included (fsync on),
 * except --max-request-bytes 8 MiB so that a value at the store's 1.5 MiB
 * limit fits in one request (etcd's default caps the whole request there).
 *
 *     char err[256];
 *     struct etcd_cluster *c = etcd_cluster_start(1, err, sizeof err);
 *     if (!c)
 *             skip or fail with err;
 *     … "endpoints: " etcd_cluster_endpoints(c) …
 *     etcd_cluster_stop(c);
 *
 * Members are ended by their pid only. If the test exits without stopping
 * a cluster, an atexit handler does it; on a fatal signal (SIGSEGV, SIGABRT,
 * SIGTERM, SIGINT, …) a handler kills the members before the signal takes
 * its course; and if the test process is killed outright, each member gets
 * SIGKILL through PR_SET_PDEATHSIG. Because that signal follows the *thread*
 * that forked, call etcd_cluster_start() and etcd_cluster_restart_member()
 * from a thread that outlives the cluster (normally the main thread).
 * Data dirs left behind by a killed test are swept by the next start.
 *
 * Not thread-safe per cluster: drive one cluster from one thread.
 */
#ifndef KUBUS_TESTS_ETCD_PROC_H
#define KUBUS_TESTS_ETCD_PROC_H

#include <stddef.h>

struct etcd_cluster;

/* Start `members` (1..9) members as one new cluster and wait (bounded, about
 * 30 s) until each answers GET /health with a leader elected. NULL on
 * failure, with the reason (and the tail of the member's log) in err; no
 * process or directory is left behind then. */
struct etcd_cluster *etcd_cluster_start(int members, char *err, size_t errlen);

/* "http://127.0.0.1:P1,http://127.0.0.1:P2,…", every member's client URL,
 * stopped members included. Borrowed until etcd_cluster_stop(). */
const char *etcd_cluster_endpoints(struct etcd_cluster *c);

/* The number of members, and member i's client URL (borrowed). */
int etcd_cluster_members(struct etcd_cluster *c);
const char *etcd_cluster_member_endpoint(struct etcd_cluster *c, int i);

/* Is member i's process running (started and not stopped)? */
int etcd_cluster_member_running(struct etcd_cluster *c, int i);

/* The index of the member the running members agree is the leader, or -1
 * when none is known (asks each running member's maintenance status). */
int etcd_cluster_leader(struct etcd_cluster *c);

/* Stop member i: SIGTERM, then SIGKILL after 5 s; waits for it to exit.
 * Its data dir stays so it can be restarted. No-op if it is not running. */
void etcd_cluster_stop_member(struct etcd_cluster *c, int i);

/* Kill member i at once (SIGKILL), as a crash or power cut would. */
void etcd_cluster_kill_member(struct etcd_cluster *c, int i);

/* Start member i again on the same ports and data dir, and wait until it is
 * healthy. 0 on success, -1 on failure (the reason is logged to stderr). */
int etcd_cluster_restart_member(struct etcd_cluster *c, int i);

/* Stop every member, remove every data dir, free c. NULL is a no-op. */
void etcd_cluster_stop(struct etcd_cluster *c);

#endif

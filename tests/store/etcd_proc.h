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
 *
 * TLS: etcd_pki_create() makes a throwaway PKI with the `openssl` command
 * line, and etcd_cluster_start_tls() starts members that serve client
 * traffic only on https://127.0.0.1:P and require a client certificate
 * signed by that CA (peer traffic stays plain http on loopback):
 *
 *     char *pki = etcd_pki_create(err, sizeof err);
 *     struct etcd_cluster *c = etcd_cluster_start_tls(1, pki, err, …);
 *     … cacert: PKI/ETCD_PKI_CA, cert: PKI/ETCD_PKI_CLIENT_CERT, key: …
 *     etcd_cluster_stop(c);
 *     etcd_pki_remove(pki);
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

/* "http://127.0.0.1:P1,http://127.0.0.1:P2,…" (https:// for a TLS
 * cluster), every member's client URL, stopped members included. Borrowed until etcd_cluster_stop(). */
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

/* --- TLS -------------------------------------------------------------------- */

/* Files etcd_pki_create() writes (PEM, keys unencrypted, EC P-256). */
#define ETCD_PKI_CA "ca.pem"                 /* the CA that signs the rest */
#define ETCD_PKI_SERVER_CERT "server.pem"    /* SAN IP:127.0.0.1, localhost */
#define ETCD_PKI_SERVER_KEY "server-key.pem"
#define ETCD_PKI_CLIENT_CERT "client.pem"    /* CN=kubus-test-client */
#define ETCD_PKI_CLIENT_KEY "client-key.pem"
#define ETCD_PKI_OTHER_CA "other-ca.pem"     /* a CA that signed nothing here */

/* Make a fresh directory under $TMPDIR (or /tmp) holding the files above,
 * generated with `openssl` ($KUBUS_OPENSSL overrides the binary). Returns
 * its path (malloc'd), or NULL with the reason in err; nothing is left
 * behind then. A directory left by a killed test is swept by the next
 * etcd_cluster_start*() or etcd_pki_create(). */
char *etcd_pki_create(char *err, size_t errlen);

/* Remove a directory from etcd_pki_create() and free the path. NULL is a
 * no-op. */
void etcd_pki_remove(char *pki_dir);

/* As etcd_cluster_start(), but each member serves its client URL,
 * https://127.0.0.1:P, with pki_dir's server certificate, and only to
 * clients with a certificate signed by pki_dir's CA (--client-cert-auth).
 * pki_dir must hold ETCD_PKI_CA, ETCD_PKI_SERVER_CERT and ETCD_PKI_SERVER_KEY
 * (etcd_pki_create() makes them) and outlive the cluster. The test's own
 * probes (health, leader) use each member's plain-http metrics listener,
 * which serves /health and /metrics but no etcd API. Endpoints, restarts
 * and the rest work as for a plain cluster. */
struct etcd_cluster *etcd_cluster_start_tls(int members, const char *pki_dir,
    char *err, size_t errlen);

#endif

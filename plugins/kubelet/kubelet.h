/* plugins/kubelet/kubelet.h — what the kubelet's files share.
 *
 * Threads: the pod informer's thread enqueues pod keys; `workers` threads
 * take keys from the work queue and sync one pod each (the queue never
 * hands the same key to two workers); the heartbeat thread registers the
 * Node, renews the Lease, reports node status and re-enqueues every pod
 * each sync_period (the runtime has no events: that is how exits are
 * seen); the dispatch thread answers `kubelet/<node>` log requests.
 * `mu` guards the pod table and what the log service reads of a pod.
 */
#ifndef KUBUS_KUBELET_H
#define KUBUS_KUBELET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <kubus/client.h>
#include <kubus/kubus.h>
#include <kubus/runtime.h>
#include <kubus/strmap.h>

#define KL_WORKERS_MAX 64

struct kl_cfg {
	char *node_name;
	char *address;
	char *cpu;
	char *memory;
	int64_t pods;
	char *runtime;
	const kb_conf *runtime_config;
	int64_t lease_ms, lease_duration_ms, status_ms, sync_ms;
	int64_t backoff_initial_ms, backoff_max_ms;
	int64_t workers;
	int64_t event_qps, event_burst; /* eventRecordQPS, eventBurst */
	int64_t log_max_bytes; /* container_log_max_size (logs.c) */
	char *runtime_fallback; /* used when `runtime` cannot load */
	char *network;          /* auto, cni, none */
	char *cni_bin_dir, *pod_cidr, *bridge;
	char *cluster_dns, *cluster_domain;
	char *resolv_conf; /* dnsPolicy Default's file */
};

/* A container of a pod as the kubelet tracks it across restarts. */
struct kl_ctr {
	char *name, *image;
	bool init;
	char id[KB_RT_ID_MAX]; /* in the runtime; "" when none */
	bool have_cur;         /* cur holds the last status read */
	struct kb_rt_container_status cur;
	bool have_last; /* the previous attempt, terminated */
	struct kb_rt_container_status last;
	char last_id[KB_RT_ID_MAX];
	unsigned restarts;
	int64_t backoff_ms;  /* the last back-off; 0 none yet */
	int64_t retry_at_ms; /* monotonic; no start before */
	/* Image not in the store, pull policy not Never: the same back-off
	 * for the next "pull" (only a look in the store: nothing pulls). */
	int64_t pull_backoff_ms, pull_retry_at_ms;
	char wait_reason[KB_RT_REASON_MAX];
	char wait_message[KB_RT_MESSAGE_MAX];
	bool done; /* will not run again */
};

/* A runtime container found at start (adopt.c), until the pod's spec
 * arrives and claims it. */
struct kl_found {
	char id[KB_RT_ID_MAX];
	char name[KB_RT_ID_MAX];
	unsigned attempt;
	bool init;
	int state;
};

enum {
	KL_COND_INITIALIZED,
	KL_COND_READY,
	KL_COND_CONTAINERS_READY,
	KL_COND_SCHEDULED,
	KL_NCOND
};

struct kl_pod {
	char *key, *ns, *name, *uid;
	char sandbox[KB_RT_ID_MAX];
	char ip[KB_RT_IP_MAX];
	char start_time[32];
	struct kl_ctr *ctrs; /* init containers first */
	size_t nctrs, ninit;
	char *phase; /* as last computed */
	bool cond[KL_NCOND];
	char cond_time[KL_NCOND][32];
	bool terminating;
	int64_t kill_at_ms; /* monotonic end of the grace period */
	/* Under kubelet.mu (the replies to the calls below come on a bus
	 * thread): the final delete was sent (and not refused); the status
	 * body last sent (and not refused), one patch at most in flight,
	 * status_again when a sync meanwhile had another to write. */
	bool deleted;
	void *last_status;
	size_t last_status_len;
	bool status_inflight, status_again;
	int64_t gone_ms;    /* monotonic: the API object found gone (linger) */
	/* Adopted from the runtime at start: no spec yet (ctrs empty);
	 * found[] are its containers, claimed on the first sync. */
	bool adopted;
	bool net_down; /* kl_pod_net_teardown done */
	/* The sandbox was made hollow (sync.c): no /etc/hosts nor
	 * resolv.conf in the pod dir for its containers to mount. */
	bool no_pod_files;
	/* Under kubelet.mu: the last sync left every container running and
	 * the status written; the periodic sync then only asks the runtime
	 * whether they still run (kl_enqueue_all). */
	bool settled;
	struct kl_found *found;
	size_t nfound;
	/* The API object during a sync (borrowed; NULL outside kl_sync):
	 * what env and volumes are resolved from. */
	const msgpack_object *pod;
	struct kl_pod *next;
};

struct kubelet {
	kb_ctx *ctx;
	struct kl_cfg cfg;
	char *node;               /* == cfg.node_name, resolved */
	char *address;            /* InternalIP */
	char *root;               /* DATA_DIR/kubelet/<node> */
	char cpu[32], memory[48]; /* capacity as quantities */
	char service[160];        /* kubelet/<node> */
	char started_at[32];      /* RFC 3339, for condition times */
	struct kb_ext *rt_ext;
	const struct kb_runtime_ops *rt;
	void *rts; /* the runtime's state */
	struct kb_rt_info rt_info;

	struct kb_informer *pods_inf;
	struct kb_workqueue *queue;
	/* Status patches and final deletes, sent without waiting (a worker
	 * thread goes on with the next pod); kl_pod_call. */
	struct kb_api_batch *calls;
	unsigned relists; /* kl_enqueue_all rounds (heartbeat thread) */
	pthread_t workers[KL_WORKERS_MAX];
	int nworkers;

	pthread_mutex_t mu;
	pthread_cond_t cv; /* heartbeat wake-up (CLOCK_MONOTONIC) */
	bool stopping;
	pthread_t heartbeat;
	bool heartbeat_started;
	bool registered;
	char *node_uid;
	struct kl_pod *pods; /* under mu */
	/* Under mu: key -> the first pod of that key in pods (a lookup per
	 * sync; the list was scanned). pod_index_bad: out of memory once, the
	 * list is scanned again. */
	struct kb_strmap pod_index;
	bool pod_index_bad;
	struct kl_prober *prober; /* probe.c */
	struct kb_recorder *events; /* events.c */
	bool announced; /* its Node's events recorded (node.c) */

	bool cni;            /* the kubelet makes netns + CNI per pod */
	char pod_cidr[64];   /* config, else Node.spec.podCIDR; under mu */
	int64_t cidr_asked_ms;
};

/* config.c */
int kl_config(struct kubelet *kl, const kb_conf *conf);
void kl_config_free(struct kubelet *kl);
bool kl_cidr_ok(const char *s);

/* heartbeat.c */
int kl_heartbeat_start(struct kubelet *kl);
void kl_heartbeat_stop(struct kubelet *kl);

/* node.c */
int kl_node_register(struct kubelet *kl);
int kl_node_status(struct kubelet *kl);
/* Read Node.spec.podCIDR into kl->pod_cidr when the config set none. */
void kl_node_fetch_cidr(struct kubelet *kl);

/* lease.c */
int kl_lease_renew(struct kubelet *kl);

/* pods.c: the pod table */
struct kl_pod *kl_pod_find(struct kubelet *kl, const char *key);
/* The informer's delete of obj: when it is a pod whose final delete this
 * kubelet sent, its containers are gone already and it only lingers (for
 * a last `logs -f` read): true, and the periodic sync drops it after. */
bool kl_pod_gone(struct kubelet *kl, const msgpack_object *obj);
/* The same, the caller holding kl->mu; only the pod of that uid. */
struct kl_pod *kl_pod_find_locked(struct kubelet *kl, const char *key,
    const char *uid);
/* What a reply to kl_pod_call asks for: nothing, or the pod's sync again
 * (KL_AGAIN at once, KL_RETRY after the queue's back-off). */
enum { KL_DONE_CALL, KL_AGAIN, KL_RETRY };
/* Called under kl->mu with the pod (NULL when it is gone) and the
 * reply's rc; sent is kl_pod_call's. */
typedef int (*kl_call_done)(struct kubelet *kl, struct kl_pod *p, int rc,
    void *sent);
/* Send op ("patch", "delete") about pod p through kl->calls without
 * waiting: body is taken (a patch, or delete options); done is called
 * once with the reply, on a bus thread. 0 when sent. */
int kl_pod_call(struct kubelet *kl, const struct kl_pod *p, const char *op,
    kb_body *body, kl_call_done done, void *sent);
struct kl_pod *kl_pod_new(struct kubelet *kl, const char *key,
    const msgpack_object *pod);
void kl_pod_drop(struct kubelet *kl, struct kl_pod *p);
/* A record for a pod found in the runtime (no spec yet), and its spec's
 * containers once the API object is known. */
struct kl_pod *kl_pod_stub(struct kubelet *kl, const char *ns,
    const char *name, const char *uid);
int kl_pod_set_spec(struct kl_pod *p, const msgpack_object *pod);
void kl_pods_free(struct kubelet *kl);
/* Stop every container now and remove the sandbox. */
void kl_pod_kill(struct kubelet *kl, struct kl_pod *p, int64_t grace_ms);
/* The log file of a container's attempt (malloc'd). */
char *kl_log_path(struct kubelet *kl, const struct kl_pod *p, const char *ctr,
    unsigned attempt);

/* sync.c */
int kl_sync(struct kubelet *kl, const char *key);
void kl_enqueue_all(struct kubelet *kl);

/* container.c: one container one step on */
enum kl_step {
	KL_RUNNING,
	KL_WAITING,
	KL_DONE
};
int kl_container_step(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod, struct kl_ctr *c, const msgpack_object *spec,
    const char *policy);

/* terminate.c */
int kl_terminate(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod);

/* status.c */
int kl_status_write(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod);
const char *kl_phase(const struct kl_pod *p);

/* logs.c */
void kl_logs_serve(void *arg, kb_msg *req);

/* netns.c: named network namespaces, /run/netns/kubus-<short uid> */
void kl_netns_path(const char *uid, char *buf, size_t len);
int kl_netns_create(const char *path, char *err, size_t errlen);
int kl_netns_remove(const char *path);
bool kl_netns_is_ns(const char *path);

/* cni.c: CNI 1.0 ADD/DEL of the conflist the kubelet writes */
int kl_cni_add(struct kubelet *kl, const char *uid, const char *netns,
    const char *pod_dir, char **result, char *ip, size_t iplen, char *err,
    size_t errlen);
int kl_cni_del(struct kubelet *kl, const char *uid, const char *netns,
    const char *pod_dir, char *err, size_t errlen);
/* The first IPv4/IPv6 address of a CNI result, into ip. */
bool kl_cni_result_ip(const char *result, char *ip, size_t iplen);
/* Tear down what sandbox setup made for pod `uid`: CNI DEL, the netns,
 * tmpfs volumes, the pod dir. Idempotent. */
void kl_pod_net_teardown(struct kubelet *kl, const char *uid);
char *kl_pod_dir(struct kubelet *kl, const char *uid);

/* dnsfiles.c: /etc/resolv.conf and /etc/hosts of a pod, in its dir */
int kl_dns_files(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod, char *err, size_t errlen);

/* prepare.c: env and mounts of one container (kl_ctr_config_free after).
 * On failure the container's wait_reason/message say why
 * (CreateContainerConfigError) and nonzero is returned. */
struct kl_ctr_config {
	/* The container spec with $(VAR) expanded in command and args, or
	 * NULL when it had none (the spec as is); lives in body. */
	const msgpack_object *container;
	kb_body *body;
	char **env; /* "K=V", NULL-terminated */
	struct kb_rt_mount *mounts;
	size_t nmounts;
	char **strs; /* what the mounts point into */
	size_t nstrs;
};
int kl_ctr_config(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *spec, struct kl_ctr *c, struct kl_ctr_config *out);
void kl_ctr_config_free(struct kl_ctr_config *cc);

/* env.c */
int kl_env_build(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod, const msgpack_object *spec, char ***out,
    char *err, size_t errlen);
void kl_env_free(char **env);
/* $(VAR) expanded from env ("K=V" list), $$ a literal $: malloc'd. */
char *kl_env_expand(char *const *env, const char *s, size_t len);
/* A ConfigMap's or Secret's data map, read through the api service:
 * 0 (with *msg to free), KB_ENOTFOUND, or another error. */
int kl_get_source(struct kubelet *kl, bool secret, const char *ns,
    const char *name, kb_msg **msg);
/* The value of key in the source; secret values are base64-decoded.
 * malloc'd into *val (and *vlen); false when absent. */
bool kl_source_value(const msgpack_object *obj, bool secret, const char *key,
    char **val, size_t *vlen);

/* volumes.c */
int kl_volumes_mounts(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod, const msgpack_object *spec,
    struct kl_ctr_config *cc, char *err, size_t errlen);
void kl_volumes_teardown(const char *pod_dir);

/* adopt.c: rebuild the pod table from the runtime at start */
void kl_adopt(struct kubelet *kl);
/* Claim the found containers for the spec's containers (first sync). */
void kl_adopt_claim(struct kubelet *kl, struct kl_pod *p,
    const msgpack_object *pod);

/* util.c */
void kl_rfc3339(int64_t unix_ms, char *buf, size_t len); /* ...:05Z */
void kl_rfc3339_micro(int64_t unix_ms, char *buf,
    size_t len); /* ...:05.000000Z */
int64_t kl_mono_ms(void);
int64_t kl_wall_ms(void);
int kl_mkdirs(const char *path);
/* Have the runtime write out (keep) or forget (!keep, a directory) log
 * lines it holds: runtime.h ABI 1.2, a no-op for runtimes without it. */
void kl_log_sync(struct kubelet *kl, const char *path, bool keep);
/* A hollow node (runtime-fake): see sync.c. */
bool kl_hollow(const struct kubelet *kl);
void kl_rmrf(const char *path);
void kl_pack_str(msgpack_packer *pk, const char *k, const char *v);
/* A malloc'd printf, NULL on no memory. */
char *kl_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The strings up to the NULL, joined (malloc'd); NULL on no memory. For
 * the paths and keys made per pod: vasprintf was about 8 % of a
 * hollow kubelet's worker CPU. */
char *kl_cat(const char *s, ...) __attribute__((sentinel));
/* Append s to buf (size bytes, *len of them used), truncated as snprintf
 * truncates. */
void kl_append(char *buf, size_t size, size_t *len, const char *s);
/* v in decimal ("%llu") / lowercase hex ("%llx") into buf, which holds
 * KL_NUM_MAX; the length. */
#define KL_NUM_MAX 24
size_t kl_utoa(uint64_t v, char *buf);
size_t kl_xtoa(uint64_t v, char *buf);
/* Write a whole file atomically (tmp + rename), with mode. */
int kl_write_file(const char *path, const void *data, size_t len, int mode);
/* A whole file, NUL-terminated (malloc'd), its length into *len (may be
 * NULL); NULL when unreadable or over 16 MiB. */
char *kl_slurp(const char *path, size_t *len);

/* --- probes, events, log streaming (probe.c, events.c, logs.c) --- */

/* probe.c: one prober thread per kubelet, started with the first probe. */
int kl_probe_init(struct kubelet *kl);
void kl_probe_stop(struct kubelet *kl); /* joins the thread */
void kl_probe_free(struct kubelet *kl);
/* Arm the probes of the container's current attempt (c->id) from its
 * spec; a no-op when they are armed already. Worker threads. */
void kl_probe_sync(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, const msgpack_object *spec);
/* The container stopped running: no more probes until it runs again. */
void kl_probe_forget(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c);
/* started: no startup probe or it succeeded; ready: started and no
 * readiness probe or it succeeds. Both true without probes. */
void kl_probe_state(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, bool *started, bool *ready);
/* True when liveness or startup failed for the current attempt: which
 * into why ("liveness"), the probe's grace period (ms, -1: the pod's). */
bool kl_probe_kill(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, char *why, size_t len, int64_t *grace_ms);

/* events.c: core/v1 Events through the SDK's recorder (kb_recorder). */
int kl_events_init(struct kubelet *kl);
/* The work queue's key whose worker posts the Events held back by the
 * kubelet's rate limit (kl_events_flush); no pod key looks like it. */
#define KL_EVENTS_KEY "#events"
void kl_events_flush(struct kubelet *kl);
/* With the work queue: held Events are scheduled on it between start
 * and stop, and only kept otherwise. */
void kl_events_start(struct kubelet *kl);
void kl_events_stop(struct kubelet *kl);
void kl_events_free(struct kubelet *kl); /* after the endpoint closed */
void kl_event(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, bool warning, const char *reason,
    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void kl_event_raw(struct kubelet *kl, const char *ns, const char *pod,
    const char *uid, const char *field_path, bool warning, const char *reason,
    const char *message);

/* logs.c: copy-truncate current container logs over max_bytes into
 * PATH.1 (heartbeat thread). */
void kl_logs_rotate(struct kubelet *kl, int64_t max_bytes);

#endif

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
	char wait_reason[KB_RT_REASON_MAX];
	char wait_message[KB_RT_MESSAGE_MAX];
	bool done; /* will not run again */
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
	bool deleted;       /* the final delete was sent */
	void *last_status;  /* the status body last written */
	size_t last_status_len;
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
};

/* config.c */
int kl_config(struct kubelet *kl, const kb_conf *conf);
void kl_config_free(struct kubelet *kl);

/* heartbeat.c */
int kl_heartbeat_start(struct kubelet *kl);
void kl_heartbeat_stop(struct kubelet *kl);

/* node.c */
int kl_node_register(struct kubelet *kl);
int kl_node_status(struct kubelet *kl);

/* lease.c */
int kl_lease_renew(struct kubelet *kl);

/* pods.c: the pod table */
struct kl_pod *kl_pod_find(struct kubelet *kl, const char *key);
struct kl_pod *kl_pod_new(struct kubelet *kl, const char *key,
    const msgpack_object *pod);
void kl_pod_drop(struct kubelet *kl, struct kl_pod *p);
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

/* util.c */
void kl_rfc3339(int64_t unix_ms, char *buf, size_t len); /* ...:05Z */
void kl_rfc3339_micro(int64_t unix_ms, char *buf,
    size_t len); /* ...:05.000000Z */
int64_t kl_mono_ms(void);
int64_t kl_wall_ms(void);
int kl_mkdirs(const char *path);
void kl_rmrf(const char *path);
void kl_pack_str(msgpack_packer *pk, const char *k, const char *v);

#endif

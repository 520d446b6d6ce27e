/* plugins/scheduler/scheduler.h — what the scheduler's files share. */
#ifndef KUBUS_SCHEDULER_H
#define KUBUS_SCHEDULER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <kubus/client.h>
#include <kubus/strmap.h>
#include <kubus/kubus.h>
#include <kubus/sched.h>

/* --- map.c: a string-keyed hash map ------------------------------------- */

/* String maps are the SDK's (kubus/strmap.h). */

/* --- config.c: profiles --------------------------------------------------- */

enum sp_point {
	P_QUEUESORT,
	P_PREFILTER,
	P_FILTER,
	P_POSTFILTER,
	P_PRESCORE,
	P_SCORE,
	P_RESERVE,
	P_PERMIT,
	P_PREBIND,
	P_BIND,
	P_POSTBIND,
	P_MAX
};

struct sp_policy {
	char *name;
	struct kb_ext *ext;
	const struct kb_sched_policy_ops *ops;
	void *state;
};

struct sp_slot {
	struct sp_policy *p;
	int64_t weight;
};

struct sp_pool;
struct sp_scratch;
struct sp_eqcache;

struct sp_profile {
	char *name;                 /* schedulerName */
	struct sp_pool *pool;       /* the config's workers (borrowed) */
	struct sp_scratch *scratch; /* cycle buffers (cycle.c) */
	bool eq_on;                 /* use the equivalence cache */
	struct sp_eqcache *eq;      /* its classes (eqcache.c), or NULL */
	struct sp_policy **policies;
	size_t npolicies;
	struct sp_slot *points[P_MAX];
	size_t npoints[P_MAX];
};

struct sp_config {
	struct sp_profile *profiles;
	size_t nprofiles;
	int64_t backoff_initial_ms, backoff_max_ms;
	int64_t unsched_max_ms;
	int64_t bind_timeout_ms;
	int64_t parallelism; /* threads running Filter and Score */
	bool equivalence_cache;
	struct sp_pool *pool;
	bool leader_elect;
	int64_t lease_ms;
	char *lease_name, *lease_ns;
	int64_t client_qps, client_burst; /* clientConnection */
};

/* Parse and load every policy (kb_ext_load); on error kb_fail said why. */
int sp_config_load(kb_ctx *ctx, const kb_conf *conf, struct sp_config *c);
void sp_config_free(kb_ctx *ctx, struct sp_config *c);
struct sp_profile *sp_profile_find(struct sp_config *c, const char *name);

/* --- eqcache.c: Filter and Score results per class of equal pods ------------ */

#define SP_EQ_CLASSES 8  /* classes kept per profile (LRU) */
#define SP_EQ_REASONS 63 /* distinct Filter reasons per class */
#define SP_EQ_GHOSTS 32  /* keys seen once, remembered by hash */

/* One class of equivalent pods: per node row (snapshot order), what
 * Filter and Score gave at the node generation gen[row] (0: never). */
struct sp_eqclass {
	uint64_t hash;
	/* The pod the class was made for: another pod is of the class
	 * when its key parts equal this one's (struct sp_eqkey). */
	const struct kb_sched_pod *rep;
	uint64_t used; /* the cache's tick when last used (LRU) */
	size_t n;      /* rows */
	uint64_t *gen;
	uint64_t *verdict; /* 0: fits; else bits of reasons[] */
	uint8_t *scored;   /* 1: raw and ptotal hold the row's scores; 2:
			      queued in pend */
	int64_t *raw;      /* [score slot * n + row]: raw Score */
	int64_t *ptotal;   /* weighted sum of the raw scores of the active
			      policies without NormalizeScore */
	uint64_t fmask;    /* the Filter slots the rows ran (not skipped) */
	uint64_t smask;    /* the Score slots the scores cover */
	bool fvalid, svalid;
	/* The feasible rows in row order, kept from cycle to cycle (lvalid),
	 * each one's place (fpos, -1 when not feasible), the rejected rows
	 * counted per reason, and the feasible rows' ptotal (tvalid). */
	const struct kb_sched_node **fnodes;
	uint32_t *frows;
	int32_t *fpos;
	size_t nf;
	uint32_t counts[64];
	int64_t *ftotal;
	bool lvalid, tvalid;
	uint32_t *pend; /* feasible rows to score (scored == 2) */
	size_t npend;
	pthread_mutex_t mu; /* reasons */
	char reasons[SP_EQ_REASONS][KB_SCHED_REASON_MAX];
	size_t nreasons;
};

struct sp_eqcache {
	struct sp_eqclass *v[SP_EQ_CLASSES];
	size_t n;
	size_t nscore; /* the profile's Score slots */
	uint64_t tick;
	/* the pod at hand's key parts: labels, annotations, owner
	 * references, deletion time, spec (each NULL when absent) */
	const msgpack_object *key[5];
	/* A class is made for the second pod with a key, not the first: a
	 * stream of one-off pods never evicts the classes in use. */
	uint64_t ghosts[SP_EQ_GHOSTS];
	size_t nghost;
	/* counters */
	int64_t cycles, cached, rows_filtered, rows_scored, classes, evictions;
};

struct sp_eqcache *sp_eq_new(size_t nscore);
void sp_eq_free(struct sp_eqcache *q);
/* The pod's class (made, with rows for nnodes, when a pod with this key
 * came recently; its rows reset when the snapshot has another number of
 * rows); NULL for a key seen the first time, or without memory. */
struct sp_eqclass *sp_eq_class(struct sp_eqcache *q,
    const struct kb_sched_pod *pod, size_t nnodes);
void sp_eq_drop(struct sp_eqcache *q, struct sp_eqclass *ec);
/* Every row to compute again. */
void sp_eq_reset(struct sp_eqclass *ec);
/* The bit of a reason in the class's table, or -1 when full. Thread-safe. */
int sp_eq_reason(struct sp_eqclass *ec, const char *text);

/* --- cache.c: nodes and the pods on them ----------------------------------- */

struct sp_cache {
	struct kb_strmap nodes;            /* name -> struct sp_node */
	struct kb_strmap pods;             /* ns/name -> struct sp_cpod */
	const struct kb_sched_node **list; /* real nodes, by name */
	size_t nlist;
	struct kb_sched_columns *cols; /* the list's numbers, or NULL */
	bool dirty;
	/* pods with any pod (anti-)affinity term / a required anti-affinity
	 * term: the snapshot's totals */
	size_t naffinity_pods, nanti_pods;
};

void sp_cache_init(struct sp_cache *c);
void sp_cache_free(struct sp_cache *c);
/* Informer events (caller holds the scheduler's lock). */
void sp_cache_node_set(struct sp_cache *c, const msgpack_object *obj);
/* The same with a node built by kb_sched_node_new (taken). */
void sp_cache_node_put(struct sp_cache *c, struct kb_sched_node *nn);
void sp_cache_node_del(struct sp_cache *c, const char *name);
/* Account `pod` on `node` (replacing any earlier version); assumed marks
 * a pod the scheduler placed that the API has not confirmed yet. */
int sp_cache_pod_set(struct sp_cache *c, const struct kb_sched_pod *pod,
    const char *node, bool assumed);
/* Forget a pod; with only_assumed, only when it is still assumed on node. */
void sp_cache_pod_del(struct sp_cache *c, const char *ns, const char *name,
    const char *node, bool only_assumed);
/* The real nodes, sorted by name (valid until the next change). */
void sp_cache_snapshot(struct sp_cache *c, struct kb_sched_snapshot *snap);

/* --- queue.c ----------------------------------------------------------------- */

enum sp_where {
	Q_ACTIVE,
	Q_BACKOFF,
	Q_UNSCHED,
	Q_INFLIGHT,
	Q_BINDING
};

struct sp_qpod {
	char *key;
	const struct kb_sched_pod *pod;
	struct sp_profile *prof;
	int where;
	bool gone; /* deleted while in flight: the taker frees it */
	int attempts;
	int64_t seq;           /* queue order among equals */
	int64_t backoff_until; /* mono ms */
	int64_t unsched_since;
	uint64_t popped_move; /* the queue's move count when popped */
	char *last_msg;       /* the last unschedulable message reported */
	size_t hidx;          /* index in the active heap, SIZE_MAX if none */
};

struct sp_queue {
	struct kb_strmap pods; /* key -> struct sp_qpod */
	struct sp_qpod **heap; /* the active pods, QueueSort order */
	size_t nheap, capheap;
	size_t nwaiting;    /* pods in backoff or unschedulable */
	int64_t next_check; /* mono ms when one of them may be due */
	int64_t seq;
	uint64_t moves; /* cluster events that moved pods back */
	int64_t backoff_initial_ms, backoff_max_ms, unsched_max_ms;
};

void sp_queue_init(struct sp_queue *q, const struct sp_config *c);
void sp_queue_free(struct sp_queue *q);
/* Add or update an unscheduled pod (takes a reference to pod); an
 * unschedulable pod whose spec `changed` goes back to the active queue. */
void sp_queue_set(struct sp_queue *q, const char *key,
    const struct kb_sched_pod *pod, struct sp_profile *prof, bool changed,
    int64_t now);
/* Forget a pod (assigned elsewhere or deleted). */
void sp_queue_del(struct sp_queue *q, const char *key);
/* A cluster event: every unschedulable pod goes back (to backoff while it
 * still backs off). */
void sp_queue_move_all(struct sp_queue *q, int64_t now);
/* The next active pod, now in flight; NULL when none (*wake_ms: when a
 * backoff ends, or -1). */
struct sp_qpod *sp_queue_pop(struct sp_queue *q, int64_t now, int64_t *wake_ms);
/* After a failed attempt: to unschedulable (or backoff when a cluster
 * event came meanwhile, or when error). */
void sp_queue_failed(struct sp_queue *q, struct sp_qpod *qp, bool error,
    int64_t now);
/* After a successful cycle: waits for its binding. */
void sp_queue_binding(struct sp_queue *q, struct sp_qpod *qp);
/* A bind that failed: back off and retry. */
void sp_queue_bind_failed(struct sp_queue *q, const char *key, int64_t now);
void sp_qpod_free(struct sp_qpod *qp);

/* --- cycle.c: one scheduling cycle --------------------------------------------- */

struct sp_outcome {
	int code;       /* KB_SCHED_SUCCESS, UNSCHEDULABLE, ERROR */
	char node[256]; /* the chosen node */
	char *message;  /* malloc'd: "0/5 nodes are available: …" or error */
	struct kb_sched_cycle *cy; /* kept for the binding cycle */
};

int sp_cycle_run(struct sp_profile *prof, const struct kb_sched_snapshot *snap,
    const struct kb_sched_pod *pod, uint64_t *rng, struct sp_outcome *out);
/* Unreserve in reverse order (a later step failed). */
void sp_cycle_unreserve(struct sp_profile *prof, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const char *node);
void sp_outcome_clear(struct sp_outcome *o);
/* Workers for Filter and Score: parallelism - 1 threads (the scheduling
 * thread is the last). */
struct sp_pool *sp_pool_new(int parallelism);
void sp_pool_free(struct sp_pool *p);
int sp_pool_parts(const struct sp_pool *p);
void sp_scratch_free(struct sp_scratch *sc);
bool sp_default_less(const struct sp_qpod *a, const struct sp_qpod *b);

/* --- the plugin ------------------------------------------------------------------- */

/* A change for the cache and the queue, from an informer's thread or a
 * binding's reply, waiting in the inbox for the scheduling thread. */
struct sp_event {
	struct sp_event *next;
	int kind;                       /* SP_EV_* (plugin.c) */
	bool move;                      /* node set: pods back to the queue */
	bool changed;                   /* pod set: spec, labels, annotations */
	bool terminal;                  /* pod set: Succeeded or Failed */
	bool urgent; /* may give the scheduling thread work: wake it */
	struct kb_sched_node *node;     /* node set (taken) */
	const struct kb_sched_pod *pod; /* pod set, bind failed (a reference) */
	const char *aux;                /* bind failed: the node */
	char key[];                     /* ns/name, or the node's name */
};

struct sched {
	kb_ctx *ctx;
	struct sp_config conf;
	/* The cache and the queue are the scheduling thread's alone (before
	 * it starts and after it ends, whoever starts and stops it). Others
	 * post their changes to the inbox, which it drains between cycles. */
	struct sp_cache cache;
	struct sp_queue queue;
	pthread_mutex_t mu; /* the inbox and the fields below it */
	pthread_cond_t cv;  /* the scheduling thread waits here */
	struct sp_event *in_head, **in_tail;
	bool sleeping; /* the scheduling thread waits on cv */
	bool leading;  /* holds the Lease (or needs none) */
	bool running, stop;
	size_t nin;    /* events in the inbox */
	atomic_int pending;  /* async requests not yet answered */
	pthread_cond_t idle; /* pending reached 0 (signalled under mu) */
	int64_t bind_failures;
	struct kb_informer *nodes, *pods;
	struct kb_leader *leader;
	struct kb_recorder *events; /* Scheduled, FailedScheduling */
	pthread_t thread;
	uint64_t rng;
	/* counters (the scheduling thread's) */
	int64_t scheduled, unschedulable, errors;
};

/* plugin.c: a binding failed: forget the assumption, back off and retry
 * (applied by the scheduling thread). */
void sp_post_bind_failed(struct sched *s, const struct kb_sched_pod *pod,
    const char *node, const char *key);

/* bind.c: the binding cycle and the reports to the API. */
void sp_bind(struct sched *s, struct sp_profile *prof,
    struct kb_sched_cycle *cy, const struct kb_sched_pod *pod, const char *node,
    const char *key);
void sp_report_unschedulable(struct sched *s, const struct kb_sched_pod *pod,
    const char *message);

#endif

/* kubus/sched.h — writing a scheduling policy (a `sched-policy` extension).
 *
 * The scheduler plugin runs kube-scheduler's framework: for each pod, in
 * queue order, a scheduling cycle calls the enabled policies at each
 * extension point — PreFilter, Filter (per node), PostFilter (when no node
 * fits), PreScore, Score (per feasible node), NormalizeScore, Reserve,
 * Permit — then a binding cycle calls PreBind, Bind and PostBind. A policy
 * is a shared object `kubus-sched-NAME.so` whose descriptor has kind
 * KB_KIND_SCHED_POLICY and `ops` pointing at a struct kb_sched_policy_ops;
 * it fills only the slots it implements. Profiles in the scheduler's
 * config name it (`sched-NAME`) and hand it its `pluginConfig` args as the
 * `conf` of its init:
 *
 *     static int filter(void *state, struct kb_sched_cycle *cy,
 *         const struct kb_sched_pod *pod, const struct kb_sched_node *node,
 *         struct kb_sched_status *st)
 *     {
 *             if (kb_sched_label(node->labels, node->nlabels, "gpu") == NULL)
 *                     return kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE,
 *                         "node(s) had no gpu");
 *             return KB_SCHED_SUCCESS;
 *     }
 *     static const struct kb_sched_policy_ops ops = {
 *             .size = sizeof(struct kb_sched_policy_ops),
 *             .filter = filter,
 *     };
 *     KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
 *     {
 *             static const struct kb_plugin p = {
 *                     .hdr = KB_PLUGIN_HDR, .name = "sched-gpu",
 *                     .kind = KB_KIND_SCHED_POLICY, .ops = &ops,
 *             };
 *             return &p;
 *     }
 *
 * Versioning. struct kb_sched_policy_ops, struct kb_sched_pod and struct
 * kb_sched_node start with their size and only ever grow at their end. The
 * scheduler checks a policy's ops->size before calling a slot
 * (KB_SCHED_HAS); a policy that reads a pod or node field newer than this
 * header's first version checks pod->size the same way
 * (KB_SCHED_FIELD(pod, field)).
 *
 * Threading. Every slot of one profile is called from the scheduler's
 * scheduling thread, one pod at a time, except Filter and Score, which may
 * be called for different nodes of the same pod from several threads at
 * once: they must only read the cycle state and their own state (or lock
 * it). Binding-cycle slots (PreBind, Bind, PostBind, and Unreserve after a
 * failed bind) run outside the scheduling cycle and may block on the bus
 * (kb_call through the ctx the policy got in its init); no other slot
 * may: the scheduler holds its cache while they run. Today the binding
 * cycle runs on the scheduling thread; a policy must not rely on that.
 *
 * Memory. Pods, nodes and snapshots handed to a slot are borrowed for the
 * call and never change while it runs; every string in them is
 * NUL-terminated. A policy never frees them.
 */
#ifndef KUBUS_SCHED_H
#define KUBUS_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- results ------------------------------------------------------------- */

/* What a slot returns. Values are ABI: append, never renumber. */
enum kb_sched_code {
	KB_SCHED_SUCCESS = 0,
	/* The pod does not fit this node now; it may after a cluster event
	 * (another pod leaves, the node changes). */
	KB_SCHED_UNSCHEDULABLE = 1,
	/* The pod does not fit this node and preemption cannot help (a
	 * node selector, a node name, an unschedulable node). */
	KB_SCHED_UNRESOLVABLE = 2,
	/* Something went wrong (not a verdict on the node): the pod goes
	 * back to the queue with backoff and the cycle ends. */
	KB_SCHED_ERROR = 3,
	/* PreFilter/PreScore: this policy has nothing to do for this pod;
	 * its Filter/Score are skipped for the cycle. Bind: leave the pod
	 * to the next binder. */
	KB_SCHED_SKIP = 4,
	/* Permit: hold the pod (not yet supported: treated as success). */
	KB_SCHED_WAIT = 5,
};

/* Where a slot says why. Opaque; one per call, owned by the scheduler. */
struct kb_sched_status;

/* Add a reason and return `code`. Reasons are the short phrases Kubernetes
 * counts across nodes to build its message, so use its wording and keep
 * node names out of them:
 *     0/5 nodes are available: 2 node(s) had untolerated taint
 *     {dedicated: gpu}, 3 Insufficient cpu.
 * A slot may add several (a node short of cpu and memory counts for
 * both). Reasons longer than KB_SCHED_REASON_MAX-1 bytes are cut; at most
 * KB_SCHED_REASONS_MAX are kept. */
#define KB_SCHED_REASON_MAX 160
#define KB_SCHED_REASONS_MAX 8
int kb_sched_reject(struct kb_sched_status *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For the scheduler and tests: a status to hand to slots. */
struct kb_sched_status *kb_sched_status_new(void);
void kb_sched_status_reset(struct kb_sched_status *st);
void kb_sched_status_free(struct kb_sched_status *st);
int kb_sched_status_code(const struct kb_sched_status *st);
size_t kb_sched_status_nreasons(const struct kb_sched_status *st);
const char *kb_sched_status_reason(const struct kb_sched_status *st, size_t i);

/* --- the snapshot: typed pods and nodes ----------------------------------- */

/* Amounts as kube-scheduler's framework.Resource: cpu in millicores,
 * memory and ephemeral storage in bytes, pods as a count. */
struct kb_sched_resources {
	int64_t milli_cpu;
	int64_t memory;
	int64_t ephemeral_storage;
	int64_t pods;
};

/* Defaults that scoring uses for containers that request nothing
 * (kube-scheduler's non-zero requests): 0.1 cpu and 200 MiB. */
#define KB_SCHED_DEFAULT_MILLI_CPU 100
#define KB_SCHED_DEFAULT_MEMORY (200LL * 1024 * 1024)

struct kb_sched_label {
	const char *key, *value;
};

enum kb_sched_effect {
	KB_EFFECT_ALL =
	    0, /* a toleration with no effect: tolerates every effect */
	KB_EFFECT_NO_SCHEDULE = 1,
	KB_EFFECT_PREFER_NO_SCHEDULE = 2,
	KB_EFFECT_NO_EXECUTE = 3,
};

struct kb_sched_taint {
	const char *key, *value; /* value is "" when absent */
	int effect;              /* enum kb_sched_effect, never ALL */
};

struct kb_sched_toleration {
	const char *key;   /* "" with exists: tolerates every taint */
	const char *value; /* "" when absent */
	bool exists;       /* operator Exists (else Equal) */
	int effect;        /* enum kb_sched_effect; ALL when absent */
	int64_t seconds;   /* tolerationSeconds; -1 when absent */
};

enum kb_sched_op {
	KB_OP_IN = 1,
	KB_OP_NOT_IN = 2,
	KB_OP_EXISTS = 3,
	KB_OP_DOES_NOT_EXIST = 4,
	KB_OP_GT = 5,
	KB_OP_LT = 6,
};

/* A nodeSelectorRequirement. */
struct kb_sched_requirement {
	const char *key;
	int op; /* enum kb_sched_op */
	const char *const *values;
	size_t nvalues;
};

/* A nodeSelectorTerm: every expression (on labels) and every field
 * requirement (key "metadata.name") must hold. A term with neither matches
 * no node, as in Kubernetes. */
struct kb_sched_term {
	const struct kb_sched_requirement *exprs;
	size_t nexprs;
	const struct kb_sched_requirement *fields;
	size_t nfields;
};

/* A preferredSchedulingTerm. */
struct kb_sched_preferred {
	int32_t weight; /* 1..100 */
	struct kb_sched_term term;
};

struct kb_sched_host_port {
	int32_t port;         /* hostPort */
	const char *protocol; /* "TCP" (default), "UDP", "SCTP" */
	const char *host_ip;  /* "" means every address (0.0.0.0) */
};

/* A label selector (metav1.LabelSelector) on pods or namespaces. An
 * absent selector (present false) matches nothing; an empty one ({})
 * everything. Expressions use In, NotIn, Exists, DoesNotExist. */
struct kb_sched_selector {
	bool present;
	const struct kb_sched_label *labels; /* matchLabels */
	size_t nlabels;
	const struct kb_sched_requirement *exprs; /* matchExpressions */
	size_t nexprs;
};

/* A podAffinityTerm (or a weightedPodAffinityTerm's). Namespaces: the
 * listed ones and those namespaceSelector matches; neither means the
 * pod's own namespace. Namespace labels are not in the snapshot: a
 * namespaceSelector is matched against the one label every namespace
 * has, kubernetes.io/metadata.name. */
struct kb_sched_pod_term {
	struct kb_sched_selector selector;
	const char *topology_key;
	const char *const *namespaces;
	size_t nnamespaces;
	struct kb_sched_selector ns_selector; /* present when given */
	int32_t weight; /* preferred terms: 1..100; required: 0 */
};

/* A topologySpreadConstraint. matchLabelKeys are folded into `selector`
 * as `key In (the pod's value)`. */
struct kb_sched_spread {
	int32_t max_skew;
	const char *topology_key;
	bool do_not_schedule; /* whenUnsatisfiable (else ScheduleAnyway) */
	struct kb_sched_selector selector;
	int32_t min_domains;      /* 1 when absent */
	bool honor_node_affinity; /* nodeAffinityPolicy (default Honor) */
	bool honor_node_taints;   /* nodeTaintsPolicy (default Ignore) */
};

/* A pod, parsed once when the scheduler sees it. */
struct kb_sched_pod {
	size_t size; /* sizeof the struct the scheduler was built with */
	const char *ns, *name, *uid;
	const char *node_name;      /* spec.nodeName, "" when unassigned */
	const char *scheduler_name; /* "default-scheduler" when absent */
	int32_t priority;           /* spec.priority, 0 when absent */
	int64_t created_ms;         /* metadata.creationTimestamp, epoch ms */

	const struct kb_sched_label *labels;
	size_t nlabels;

	/* Effective requests as kube-scheduler computes them: the larger of
	 * the sum over containers and each init container, plus overhead;
	 * pods is 1. nonzero_requests replace an unset cpu/memory request
	 * with the defaults above (for scoring). */
	struct kb_sched_resources requests;
	struct kb_sched_resources nonzero_requests;

	/* spec.nodeSelector */
	const struct kb_sched_label *node_selector;
	size_t nnode_selector;
	/* spec.affinity.nodeAffinity: required terms are ORed; has_required
	 * is false when there is no requiredDuringScheduling… at all. */
	bool has_required;
	const struct kb_sched_term *required;
	size_t nrequired;
	const struct kb_sched_preferred *preferred;
	size_t npreferred;

	const struct kb_sched_toleration *tolerations;
	size_t ntolerations;
	const struct kb_sched_host_port *host_ports;
	size_t nhost_ports;

	/* The whole object, for what is not parsed above (borrowed, as the
	 * pod). */
	const msgpack_object *obj;

	/* --- version 1 ends here; check KB_SCHED_FIELD for what follows. */

	/* spec.affinity.podAffinity / podAntiAffinity: required terms
	 * (weight 0) and preferred ones (weight 1..100). */
	const struct kb_sched_pod_term *affinity;
	size_t naffinity;
	const struct kb_sched_pod_term *pref_affinity;
	size_t npref_affinity;
	const struct kb_sched_pod_term *anti_affinity;
	size_t nanti_affinity;
	const struct kb_sched_pod_term *pref_anti_affinity;
	size_t npref_anti_affinity;
	/* spec.topologySpreadConstraints */
	const struct kb_sched_spread *spread;
	size_t nspread;
	/* metadata.ownerReferences[controller=true].kind, "" when none (for
	 * default spreading constraints) */
	const char *owner_kind;
	/* metadata.deletionTimestamp is set */
	bool terminating;
};

/* A node with what the scheduler has placed on it. */
struct kb_sched_node {
	size_t size;
	const char *name;
	const struct kb_sched_label *labels;
	size_t nlabels;
	const struct kb_sched_taint *taints;
	size_t ntaints;
	bool unschedulable; /* spec.unschedulable */
	/* status.allocatable (status.capacity where absent) */
	struct kb_sched_resources allocatable;
	/* Sums over `pods` (assigned and assumed): their requests and
	 * non-zero requests; requested.pods is npods. */
	struct kb_sched_resources requested;
	struct kb_sched_resources nonzero_requested;
	const struct kb_sched_pod *const *pods;
	size_t npods;
	const msgpack_object *obj;

	/* --- version 1 ends here; check KB_SCHED_FIELD for what follows. */

	/* How many of `pods` have any pod affinity or anti-affinity term,
	 * and how many a required anti-affinity term: policies skip nodes
	 * where these are 0 without looking at their pods. */
	size_t naffinity_pods;
	size_t nanti_pods;

	/* --- version 2. */

	/* Changes whenever the node does: a new node object, a pod accounted
	 * on it or taken off (kb_sched_node_add_pod / remove_pod /
	 * move_pods). Drawn from one process-wide counter, so no two node
	 * states ever share a value (not even a freed node's and a new one
	 * at the same address): equal generation, same node, same pods. */
	uint64_t generation;
};

/* Every node of the cycle, in the scheduler's order. */
struct kb_sched_snapshot {
	size_t size;
	const struct kb_sched_node *const *nodes;
	size_t nnodes;

	/* --- version 1 ends here; check KB_SCHED_FIELD for what follows. */

	/* When `totals` is set: the sums of every node's naffinity_pods and
	 * nanti_pods (at least; 0 means no node has any), so that a policy
	 * can skip walking the nodes. */
	bool totals;
	size_t naffinity_pods, nanti_pods;

	/* --- version 2: NULL when the scheduler keeps no columns. */

	/* The nodes' numbers as arrays, row i for nodes[i] (see below). */
	const struct kb_sched_columns *cols;
};

/* Node flags in kb_sched_columns.flags. */
#define KB_SCHED_NODE_UNSCHEDULABLE 0x1u /* spec.unschedulable */
#define KB_SCHED_NODE_HARD_TAINTS 0x2u   /* a NoSchedule/NoExecute taint */
#define KB_SCHED_NODE_PREFER_TAINTS 0x4u /* a PreferNoSchedule taint */

/* The numbers Filter and Score read most, one array per field, one row per
 * node of the snapshot (struct of arrays: a policy's batch slot walks
 * thousands of nodes in a tight loop over a few dense arrays instead of
 * chasing a pointer per node). Kept equal to the nodes' own fields by the
 * SDK: kb_sched_node_add_pod / remove_pod / move_pods update the row of an
 * attached node. `nodes[row]` is the node (NULL for a row whose node was
 * freed: the scheduler rebuilds the columns before the next cycle). */
struct kb_sched_columns {
	size_t size;
	size_t n;
	const struct kb_sched_node **nodes;
	int64_t *alloc_cpu, *alloc_mem, *alloc_eph, *alloc_pods;
	int64_t *req_cpu, *req_mem, *req_eph, *npods;
	int64_t *nz_cpu, *nz_mem;
	uint32_t *flags; /* KB_SCHED_NODE_* */
	/* how many rows have each flag (index: bit number) */
	size_t nflag[8];

	/* --- version 2 (KB_SCHED_FIELD(cols, gen)). */

	uint64_t *gen; /* the nodes' generation */
};

/* For the scheduler (and tests): columns for these nodes, each attached
 * (a node is in at most one set of columns: attaching detaches it from
 * another). NULL on allocation failure. */
struct kb_sched_columns *
kb_sched_columns_new(const struct kb_sched_node *const *nodes, size_t n);
/* Put `node` in `row` (the old one is detached). */
void kb_sched_columns_set(struct kb_sched_columns *c, size_t row,
    const struct kb_sched_node *node);
/* Detach every node and free. */
void kb_sched_columns_free(struct kb_sched_columns *c);

/* True when a struct built by the scheduler has `field` (for fields added
 * after this header's first version). */
#define KB_SCHED_FIELD(p, field)                                               \
	((p)->size >= offsetof(__typeof__(*(p)), field) + sizeof((p)->field))

/* --- reading helpers --------------------------------------------------------- */

/* The value of a label, or NULL when absent. */
const char *kb_sched_label(const struct kb_sched_label *labels, size_t n,
    const char *key);
/* Kubernetes' ToleratesTaint: does this toleration tolerate the taint? */
bool kb_sched_tolerates(const struct kb_sched_toleration *t,
    const struct kb_sched_taint *taint);
/* Does any of the pod's tolerations tolerate the taint? */
bool kb_sched_pod_tolerates(const struct kb_sched_pod *pod,
    const struct kb_sched_taint *taint);
/* Does the node satisfy the requirement / the term? */
bool kb_sched_requirement_matches(const struct kb_sched_requirement *r,
    const struct kb_sched_node *node, bool field);
bool kb_sched_term_matches(const struct kb_sched_term *t,
    const struct kb_sched_node *node);
/* Does the selector match these labels? */
bool kb_sched_selector_matches(const struct kb_sched_selector *s,
    const struct kb_sched_label *labels, size_t n);
/* Does the term select `other` (its namespaces and its selector), for a
 * term of a pod in namespace `ns`? */
bool kb_sched_term_selects(const struct kb_sched_pod_term *t, const char *ns,
    const struct kb_sched_pod *other);
/* Does the node fit the pod's nodeSelector and required node affinity? */
bool kb_sched_node_affinity_matches(const struct kb_sched_pod *pod,
    const struct kb_sched_node *node);
/* "0"-"9"… or with a suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei,
 * e3) into millis (cpu) or units rounded up (bytes); false when malformed. */
bool kb_sched_quantity_milli(const char *s, size_t len, int64_t *out);
bool kb_sched_quantity(const char *s, size_t len, int64_t *out);

/* --- cycle state: data a policy's PreFilter leaves for its Filter ------------- */

/* One per scheduling cycle (one pod), owned by the scheduler. */
struct kb_sched_cycle;

/* Store `data` under `key` (use your policy's name as prefix) for the rest
 * of the cycle; `free_fn` (may be NULL) is called on it when the cycle
 * ends or the key is written again. Scheduling thread only (PreFilter,
 * PreScore, Reserve…), never from Filter or Score. 0 or KB_ENOMEM (then
 * free_fn has already been called on data). */
int kb_sched_cycle_write(struct kb_sched_cycle *cy, const char *key, void *data,
    void (*free_fn)(void *));
/* What was written under `key`, or NULL. Any slot. */
void *kb_sched_cycle_read(const struct kb_sched_cycle *cy, const char *key);
/* The nodes of this cycle. */
const struct kb_sched_snapshot *kb_sched_cycle_snapshot(
    const struct kb_sched_cycle *cy);

/* For the scheduler and tests: a cycle over `snap` (borrowed until free). */
struct kb_sched_cycle *kb_sched_cycle_new(const struct kb_sched_snapshot *snap);
void kb_sched_cycle_free(struct kb_sched_cycle *cy);

/* --- the policy vtable ------------------------------------------------------------ */

/* Scores: Score gives any int64; after NormalizeScore every score must be
 * within [0, KB_SCHED_MAX_SCORE]; the scheduler multiplies by the
 * policy's weight in the profile and sums. */
#define KB_SCHED_MAX_SCORE 100

struct kb_sched_node_score {
	const struct kb_sched_node *node;
	int64_t score;
};

/* Every slot is optional; `state` is what the policy's init set. Slots
 * return an enum kb_sched_code and say why through `st` when not
 * SUCCESS. */
struct kb_sched_policy_ops {
	size_t size; /* sizeof(struct kb_sched_policy_ops) of the policy */

	/* QueueSort: true when `a` goes before `b`. One profile uses exactly
	 * one; the default orders by priority (higher first), then creation
	 * time. */
	bool (*less)(void *state, const struct kb_sched_pod *a,
	    const struct kb_sched_pod *b);

	/* PreFilter: once per cycle, before Filter. UNSCHEDULABLE or
	 * UNRESOLVABLE rejects the pod on every node; SKIP skips this
	 * policy's Filter. */
	int (*pre_filter)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, struct kb_sched_status *st);
	/* Filter: may the pod run on this node? May run concurrently for
	 * different nodes. */
	int (*filter)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
	    struct kb_sched_status *st);
	/* PostFilter: when no node fits (e.g. preemption). SUCCESS with
	 * *nominated set (a node name from the snapshot, borrowed) nominates
	 * a node; the pod is retried later either way. */
	int (*post_filter)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const char **nominated,
	    struct kb_sched_status *st);

	/* PreScore: once, with the feasible nodes. SKIP skips this policy's
	 * Score. */
	int (*pre_score)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod,
	    const struct kb_sched_node *const *nodes, size_t n,
	    struct kb_sched_status *st);
	/* Score one feasible node into *score. May run concurrently. */
	int (*score)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const struct kb_sched_node *node,
	    int64_t *score, struct kb_sched_status *st);
	/* Bring this policy's scores into [0, KB_SCHED_MAX_SCORE]. Without
	 * it, scores must already be in range. */
	int (*normalize_score)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, struct kb_sched_node_score *scores,
	    size_t n, struct kb_sched_status *st);

	/* Reserve: the pod is assumed on `node`; Unreserve undoes it when a
	 * later step fails (called for every policy whose Reserve ran, in
	 * reverse order). */
	int (*reserve)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const char *node,
	    struct kb_sched_status *st);
	void (*unreserve)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const char *node);
	/* Permit: SUCCESS, UNSCHEDULABLE (unreserve and requeue) or WAIT
	 * with *timeout_ms. */
	int (*permit)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const char *node,
	    int64_t *timeout_ms, struct kb_sched_status *st);

	/* Binding cycle (may block). PreBind prepares (volumes…); Bind
	 * binds the pod or returns SKIP to let the next binder (the last
	 * is the built-in pods/binding call); PostBind is told of success. */
	int (*pre_bind)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const char *node,
	    struct kb_sched_status *st);
	int (*bind)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const char *node,
	    struct kb_sched_status *st);
	void (*post_bind)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const char *node);

	/* --- version 1 ends here; append new slots below. --- */

	/* Batch Filter and Score (version 2, optional): one call for many
	 * nodes of the snapshot, given by their rows in snap->cols. The
	 * scheduler calls them instead of Filter / Score only when the
	 * snapshot has columns, so they may read `cols` without checking;
	 * a policy with a batch slot keeps its per-node slot too (the
	 * scheduler uses it without columns, and for nodes the batch hands
	 * back). Same threading as Filter and Score.
	 *
	 * filter_nodes: out[i] for the node in rows[i]: 0 when it fits;
	 * else the bits (kb_sched_reason_bit) of the reasons it fails for,
	 * or KB_SCHED_ASK_NODE to have Filter called on that node. Returns
	 * SUCCESS, or ERROR (the cycle ends). */
	int (*filter_nodes)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const struct kb_sched_columns *cols,
	    const uint32_t *rows, size_t n, uint64_t *out,
	    struct kb_sched_status *st);
	/* score_nodes: scores[i] for the node in rows[i], as Score gives. */
	int (*score_nodes)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod, const struct kb_sched_columns *cols,
	    const uint32_t *rows, size_t n, int64_t *scores,
	    struct kb_sched_status *st);

	/* --- version 3: the equivalence cache. --- */

	/* NodeLocal (optional): true when, for this pod and the cycle's
	 * snapshot as they are, this policy's Filter and Score verdicts on
	 * a node depend only on the pod and that node (its object and the
	 * pods accounted on it: what its generation covers), not on the
	 * other nodes or anything else that changes. Called on the
	 * scheduling thread after PreFilter. When every Filter and Score
	 * policy of the profile says so, the scheduler may reuse a node's
	 * Filter verdict and raw Score from an earlier cycle of an
	 * equivalent pod (same namespace, labels, annotations, owner
	 * references, deletion state and spec: a policy whose verdicts read
	 * anything else of the pod, its name or uid, must not say true) on
	 * the same node generation, with the same policies skipped; it
	 * still calls PreFilter, PreScore and NormalizeScore every cycle,
	 * over every feasible node, so those may read other nodes. What a
	 * policy's PreFilter or PreScore leaves in the cycle for its Filter
	 * or Score must then depend on the pod alone. Without the slot a
	 * policy is never node-local. */
	bool (*node_local)(void *state, struct kb_sched_cycle *cy,
	    const struct kb_sched_pod *pod);
};

/* filter_nodes: "call Filter for this node". */
#define KB_SCHED_ASK_NODE (1ULL << 63)
/* At most this many distinct reasons in one status through
 * kb_sched_reason_bit. */
#define KB_SCHED_REASON_BITS 63
/* For filter_nodes: the bit of this reason in `st` (added the first time,
 * the same bit for the same text after), to OR into out[i]. When `st`
 * already holds KB_SCHED_REASON_BITS reasons: KB_SCHED_ASK_NODE, so the
 * node goes through Filter. */
uint64_t kb_sched_reason_bit(struct kb_sched_status *st, int code,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* True when `ops` (a policy's vtable) has `slot` and it is set. */
#define KB_SCHED_HAS(ops, slot)                                                \
	((ops)->size >= offsetof(struct kb_sched_policy_ops, slot) +           \
		    sizeof((ops)->slot) &&                                     \
	    (ops)->slot != NULL)

/* --- building a snapshot (the scheduler, and policy tests) ------------------------ */

/* Parse a Pod / Node object. The result holds its own copy of `obj`.
 * NULL when `obj` is not a map or on allocation failure. */
struct kb_sched_pod *kb_sched_pod_new(const msgpack_object *obj);
struct kb_sched_pod *kb_sched_pod_ref(const struct kb_sched_pod *pod);
void kb_sched_pod_unref(const struct kb_sched_pod *pod);
struct kb_sched_node *kb_sched_node_new(const msgpack_object *obj);
void kb_sched_node_free(struct kb_sched_node *node);
/* Account a pod on a node (takes a reference) / take it off (by ns and
 * name); requested, nonzero_requested, pods and npods follow. 0,
 * KB_ENOMEM, or KB_ENOTFOUND for a pod that is not there. */
int kb_sched_node_add_pod(struct kb_sched_node *node,
    const struct kb_sched_pod *pod);
int kb_sched_node_remove_pod(struct kb_sched_node *node, const char *ns,
    const char *name);
/* Move the pods (and their sums) of `from` onto `to`, leaving `from`
 * empty: for a node object replaced by a newer version. */
void kb_sched_node_move_pods(struct kb_sched_node *to,
    struct kb_sched_node *from);

#ifdef __cplusplus
}
#endif
#endif

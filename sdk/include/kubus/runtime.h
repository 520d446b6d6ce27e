/* kubus/runtime.h — the container runtime vtable (extension kind "runtime").
 *
 * The kubelet runs pods through a runtime driver it loads by name from its
 * config (`runtime: runtime-fake`) with kb_ext_load(KB_KIND_RUNTIME, …).
 * The driver's descriptor sets `ops` to a struct kb_runtime_ops. Kubus ships
 * runtime-fake (no processes: hollow nodes for scale tests and root-less
 * kubelet tests) and runtime-runc (real containers through the runc binary;
 * to come); a third party may write another (crun, a VM runtime) against
 * this header alone.
 *
 * Division of work, as between the kubelet and a CRI runtime:
 *   - the kubelet decides *what* runs: it resolves the pod spec (env with
 *     valueFrom, volumes to host paths, the network namespace and its CNI
 *     result, the log file of each attempt), applies restart policy and
 *     back-off, and writes status to the API;
 *   - the runtime makes it so: a sandbox per pod, containers in it, and
 *     answers what state each container is in.
 *
 * Versioning: the vtable starts with its size and only grows at its end (as
 * struct kb_host_api). Every argument struct also starts with `size`, set by
 * the caller to the sizeof it was built with: a runtime reads a field only
 * when `size` covers it (KB_RT_HAS). Output structs are sized by the caller
 * too; a runtime writes only the fields its `size` covers.
 *
 * Threading: the kubelet calls the vtable from several worker threads at
 * once (never for the same pod at the same time) and from its log service:
 * every slot must be thread-safe. Calls may block (stop waits up to its
 * timeout); they must not call back into the kubelet.
 *
 * Errors: 0 or a kb_err. KB_ENOTFOUND for an unknown id (remove of an
 * unknown id is 0: removal is idempotent), KB_EINVAL for a spec the runtime
 * cannot run (the message goes to the log), KB_ESYS for a failed system
 * call or tool.
 */
#ifndef KUBUS_RUNTIME_H
#define KUBUS_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True when a struct whose first member is `size` holds `field`. */
#define KB_RT_HAS(s, field)                                                    \
	((s)->size >= offsetof(__typeof__(*(s)), field) + sizeof((s)->field))

#define KB_RT_ID_MAX 128 /* ids, NUL included */
#define KB_RT_IP_MAX 64  /* an IPv4 or IPv6 address as text */
#define KB_RT_REASON_MAX 64
#define KB_RT_MESSAGE_MAX 256
#define KB_RT_PATH_MAX 512

/* --- sandboxes ---------------------------------------------------------------
 * One per pod: what its containers share (the network namespace, for runc
 * a pause-less set of namespace paths; for the fake only an id and an IP). */

struct kb_rt_sandbox_spec {
	size_t size;
	const char *uid;           /* metadata.uid */
	const char *ns, *name;     /* metadata.namespace, metadata.name */
	const msgpack_object *pod; /* the whole Pod, borrowed for the call */
	const char *hostname;      /* spec.hostname or the pod's name */
	bool host_network;         /* spec.hostNetwork */
	/* The network namespace the kubelet made and configured through CNI,
	 * and the CNI ADD result (JSON text); both NULL when the kubelet did
	 * no networking (host network, or a runtime that brings its own, as
	 * the fake does). */
	const char *netns_path;
	const char *cni_result;
	const char *pod_dir; /* a per-pod directory the runtime may use */
};

struct kb_rt_sandbox {
	size_t size;
	char id[KB_RT_ID_MAX];
	/* The pod IP when the runtime knows it (the fake makes one up; with
	 * CNI the kubelet takes it from the CNI result); "" when not. */
	char ip[KB_RT_IP_MAX];
};

/* --- containers -------------------------------------------------------------- */

struct kb_rt_mount {
	const char *host_path; /* resolved by the kubelet */
	const char *container_path;
	bool read_only;
};

struct kb_rt_container_spec {
	size_t size;
	const char *sandbox_id;
	const char *pod_uid;
	const char *name;  /* the container's name in the pod */
	const char *image; /* as written in the spec */
	bool init;         /* an init container */
	unsigned attempt;  /* 0 first, then the restart count */
	/* The container from the pod spec (command, args, workingDir, ports,
	 * resources, securityContext…), borrowed for the call. */
	const msgpack_object *container;
	/* Resolved by the kubelet: "NAME=value", NULL-terminated (may be
	 * NULL); the image's own env comes first, these override it. */
	const char *const *env;
	const struct kb_rt_mount *mounts;
	size_t nmounts;
	/* cgroup limits from resources; 0: none. */
	int64_t cpu_request_milli, cpu_limit_milli, memory_limit_bytes;
	/* Where stdout and stderr go, one line per record in the CRI log
	 * format the kubelet reads back for `kubectl logs`:
	 *     2026-01-02T03:04:05.123456789Z stdout F the text
	 * (stream stdout|stderr; F a full line, P a partial one). The runtime
	 * appends; the kubelet rotates and removes. */
	const char *log_path;
};

enum kb_rt_state {
	KB_RT_UNKNOWN = 0,
	KB_RT_CREATED = 1, /* created, not started */
	KB_RT_RUNNING = 2,
	KB_RT_EXITED = 3,
};

struct kb_rt_container_status {
	size_t size;
	int state;     /* enum kb_rt_state */
	int exit_code; /* when exited; 128+N for signal N */
	/* When exited: "Completed" (0), "Error", "OOMKilled", "ContainerCannotRun"…;
	 * may be "" and the kubelet picks Completed or Error. */
	char reason[KB_RT_REASON_MAX];
	char message[KB_RT_MESSAGE_MAX];
	/* Unix time in milliseconds; 0 when not yet. */
	int64_t created_ms, started_ms, finished_ms;
	char image_id[KB_RT_ID_MAX]; /* resolved image digest; "" if unknown */
	int pid; /* host pid of the main process; 0 if none */
};

struct kb_rt_info {
	size_t size;
	char name[KB_RT_ID_MAX]; /* "runc", "fake" */
	char version
	    [KB_RT_ID_MAX]; /* for Node.status.nodeInfo.containerRuntimeVersion */
};

/* --- listing, for adoption after a restart (ABI 1.1) -------------------------
 * Handed to a callback, valid for the call only. */

struct kb_rt_sandbox_info {
	size_t size;
	char id[KB_RT_ID_MAX];
	char pod_uid[KB_RT_ID_MAX];
	char ns[KB_RT_ID_MAX], name[KB_RT_ID_MAX]; /* the pod's */
	char ip[KB_RT_IP_MAX]; /* as in struct kb_rt_sandbox */
};

struct kb_rt_container_info {
	size_t size;
	char id[KB_RT_ID_MAX];
	char sandbox_id[KB_RT_ID_MAX];
	char pod_uid[KB_RT_ID_MAX];
	char name[KB_RT_ID_MAX]; /* the container's name in the pod */
	unsigned attempt;
	bool init;
	int state; /* enum kb_rt_state */
};

/* --- the vtable ---------------------------------------------------------------
 * `rt` is the state the extension's init set (struct kb_ext.state). */

struct kb_runtime_ops {
	size_t
	    size; /* sizeof(struct kb_runtime_ops) the runtime was built with */

	/* Name and version for the Node's nodeInfo. */
	int (*info)(void *rt, struct kb_rt_info *out);

	/* Make the pod's sandbox; out->id names it from then on. */
	int (*sandbox_create)(void *rt, const struct kb_rt_sandbox_spec *spec,
	    struct kb_rt_sandbox *out);
	/* Remove the sandbox and every container still in it (stopping them
	 * with SIGKILL). 0 when already gone. The kubelet tears the network
	 * namespace down afterwards. */
	int (*sandbox_remove)(void *rt, const char *sandbox_id);

	/* Is the image in the local store? 0 and *present either way, or an
	 * error when the store cannot be read. Nothing is ever pulled. */
	int (*image_present)(void *rt, const char *image, bool *present);

	/* Create a container (not started); its id into id[idlen]. */
	int (*container_create)(void *rt,
	    const struct kb_rt_container_spec *spec, char *id, size_t idlen);
	int (*container_start)(void *rt, const char *id);
	/* Send `signal` (SIGTERM as a rule), wait up to timeout_ms for the
	 * container to exit, then SIGKILL it. Returns once it has exited;
	 * 0 when it was not running. */
	int (*container_stop)(void *rt, const char *id, int signal,
	    int64_t timeout_ms);
	/* Forget an exited (or never started) container; 0 when unknown.
	 * Its log file stays: it belongs to the kubelet. */
	int (*container_remove)(void *rt, const char *id);
	int (*container_status)(void *rt, const char *id,
	    struct kb_rt_container_status *out);

	/* --- ABI 1.0 ends here. ---
	 * ABI 1.1: a restarted kubelet adopts what still runs, and runs
	 * commands in containers (exec probes; `kubectl exec` later). A
	 * kubelet checks KB_RT_HAS(ops, slot) and that the slot is not NULL
	 * before calling one of these. */

	/* Call fn once for every sandbox, then return 0. The runtime keeps
	 * what it needs to answer across a restart of the process (runc:
	 * state files under its state dir); the fake answers from memory. */
	int (*sandbox_list)(void *rt,
	    void (*fn)(void *arg, const struct kb_rt_sandbox_info *sb),
	    void *arg);
	/* Call fn once for every container (running or not), then return 0. */
	int (*container_list)(void *rt,
	    void (*fn)(void *arg, const struct kb_rt_container_info *c),
	    void *arg);
	/* Run argv (NULL-terminated) in the running container `id`, with
	 * the container's env, cwd and namespaces; wait up to timeout_ms.
	 * 0 and *exit_code when it ran (whatever its code); KB_ETIMEOUT
	 * (the process is killed) when it outlasted the timeout. Up to
	 * outlen-1 bytes of its combined stdout+stderr go into out (NUL-
	 * terminated; out may be NULL). */
	int (*exec_sync)(void *rt, const char *id, const char *const *argv,
	    int64_t timeout_ms, int *exit_code, char *out, size_t outlen);

	/* --- ABI 1.1 ends here. ---
	 * ABI 1.2: a runtime may hold a container's log lines in memory
	 * instead of appending them to log_path at once (runtime-fake
	 * does: a file and two directories per pod were most of a hollow
	 * node's disk work). keep: write out what it holds for the file
	 * `path`, so that the file is complete (the kubelet calls this
	 * before it reads a log). !keep: forget what it holds for any file
	 * under the directory `path` (the kubelet is removing it). A
	 * runtime without this slot writes every line at once. */
	int (*log_sync)(void *rt, const char *path, bool keep);

	/* --- ABI 1.2 ends here; append new slots below. --- */
};

#ifdef __cplusplus
}
#endif
#endif

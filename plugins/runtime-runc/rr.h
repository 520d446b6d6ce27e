/* plugins/runtime-runc/rr.h — what the runc runtime's files share.
 *
 * Everything a restarted process needs lives in files under state_dir:
 *
 *   sandboxes/<id>.json            the pod: uid, ns, name, netns, hostname, ip
 *   netns/<id>                     a pod's own network namespace (bind
 *                                  mount) when the kubelet gave none
 *   containers/<id>/meta.json      sandbox, pod uid, name, attempt, image, log
 *   containers/<id>/config.json    the OCI runtime spec (bundle = this dir)
 *   containers/<id>/rootfs         overlay: image rootfs below, upper/ work/
 *   containers/<id>/shim           "pid starttime" of kubus-runc-shim
 *   containers/<id>/pid            written by runc: the container's init
 *   containers/<id>/started        "pid starttime started_ms" (by the shim)
 *   containers/<id>/exit           "code finished_ms reason\nmessage" (shim)
 *   containers/<id>/runc.log       runc's own log (errors for the message)
 *
 * started and exit are written atomically (temp file + rename) by the shim,
 * the only writer while it lives; status reads them and /proc, no fork.
 */
#ifndef KUBUS_RUNTIME_RUNC_H
#define KUBUS_RUNTIME_RUNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <kubus/kubus.h>
#include <kubus/runtime.h>

#ifdef KUBUS_HAVE_IMAGE
#include "image.h"
#endif

struct rr_local_image {
	char *name; /* as written in pod specs */
	char *dir;  /* a root filesystem */
};

struct rr {
	kb_ctx *ctx;
	char *runc;          /* binary (path or name on PATH) */
	char *runc_name;     /* its basename: "runc", "crun" */
	char *root;          /* runc --root */
	char *state_dir;     /* see above */
	char *images;        /* image store dir */
	char *preload;       /* dir of *.tar oci-archives */
	char *cgroup_parent; /* "/kubus" */
	char *shim;          /* path of kubus-runc-shim */
	char version[KB_RT_ID_MAX];
	struct rr_local_image *local; /* config `local_images` */
	size_t nlocal;
	bool cgroup2; /* unified hierarchy only */
#ifdef KUBUS_HAVE_IMAGE
	kb_image_store *store;
#endif
};

/* The resolved image of a container. */
struct rr_image {
	char rootfs[KB_RT_PATH_MAX];
	char digest[80]; /* "" for a local image */
	char **env, **entrypoint, **cmd;
	char *working_dir, *user;
};

/* util.c */
int64_t rr_now_ms(void);
void rr_sleep_ms(int64_t ms);
int rr_mkdirs(const char *path, mode_t mode);
int rr_rmrf(const char *path);
/* The whole file, NUL-terminated (malloc'd); NULL with errno. */
char *rr_slurp(const char *path, size_t *len);
/* Write via path.tmp + rename. */
int rr_write_atomic(const char *path, const char *data, size_t len);
void rr_random_id(char *out, size_t len);
bool rr_valid_id(const char *id);
/* Field 22 of /proc/pid/stat; 0 when the process is gone. */
uint64_t rr_proc_starttime(pid_t pid);
/* Is pid still the process that started at `starttime`? */
bool rr_proc_alive(pid_t pid, uint64_t starttime);
/* Run argv (argv[0] a path or a name on PATH) with stdin from /dev/null
 * and stdout+stderr into out[outlen] (may be NULL); wait up to timeout_ms
 * (<= 0: forever). 0 and *status (its wait status), or KB_ETIMEOUT (the
 * process is left running for the caller when pid_out is not NULL, else
 * killed and reaped), or KB_ESYS. */
int rr_run(const char *const *argv, int64_t timeout_ms, int *status, char *out,
    size_t outlen, pid_t *pid_out);
/* Wait up to timeout_ms for dir/name1 or dir/name2 (may be NULL) to exist;
 * 1 or 2 for which, 0 on timeout. */
int rr_wait_files(const char *dir, const char *name1, const char *name2,
    int64_t timeout_ms);

/* cgroup.c (also in the shim) */
bool rr_cgroup2_only(void);
/* The directory of pid's cgroup for `controller` ("memory", "cpu"; "" for
 * the unified hierarchy) into out; 0 or -1. */
int rr_cgroup_dir(pid_t pid, const char *controller, char *out, size_t len);
/* The directory of cgroup path `rel` (/kubus/<uid>) in the hierarchy of
 * `controller` ("" for the unified one); 0 or -1. */
int rr_cgroup_mount_dir(const char *controller, const char *rel, char *out,
    size_t len);
/* rmdir `rel` (a cgroup path such as /kubus/<uid>) in every hierarchy. */
void rr_cgroup_rmdir_all(const char *rel);

/* image.c */
int rr_image_resolve(struct rr *r, const char *ref, struct rr_image *img,
    char *err, size_t errlen);
void rr_image_free(struct rr_image *img);
int rr_image_present(struct rr *r, const char *ref, bool *present);
void rr_image_preload(struct rr *r);

/* spec.c: the OCI config.json of a container. */
struct rr_sandbox; /* state.c */
char *rr_spec_build(struct rr *r, const struct kb_rt_container_spec *cs,
    const struct rr_sandbox *sb, const struct rr_image *img, const char *id,
    char *err, size_t errlen);

/* state.c */
struct rr_sandbox {
	char id[KB_RT_ID_MAX];
	char uid[KB_RT_ID_MAX];
	char ns[KB_RT_ID_MAX], name[KB_RT_ID_MAX];
	char hostname[KB_RT_ID_MAX];
	char netns[KB_RT_PATH_MAX]; /* "" none */
	char ip[KB_RT_IP_MAX];
	bool host_network;
	bool own_netns; /* netns is ours: state_dir/netns/<id> */
	int64_t created_ms;
};

struct rr_meta {
	char id[KB_RT_ID_MAX];
	char sandbox_id[KB_RT_ID_MAX];
	char pod_uid[KB_RT_ID_MAX];
	char name[KB_RT_ID_MAX];
	char image[256];
	char image_id[KB_RT_ID_MAX];
	char log_path[KB_RT_PATH_MAX];
	unsigned attempt;
	bool init;
	int64_t created_ms;
};

int rr_sandbox_save(struct rr *r, const struct rr_sandbox *sb);
int rr_sandbox_load(struct rr *r, const char *id, struct rr_sandbox *sb);
int rr_meta_save(struct rr *r, const struct rr_meta *m);
int rr_meta_load(struct rr *r, const char *id, struct rr_meta *m);
/* state_dir/containers/<id>[/name] into out. */
void rr_cdir(struct rr *r, const char *id, const char *name, char *out,
    size_t len);

/* netns.c: a network namespace with only loopback, up, pinned at path. */
int rr_netns_make(const char *path);
void rr_netns_remove(const char *path);

/* ops.c */
extern const struct kb_runtime_ops rr_ops;
void rr_sweep_partial(struct rr *r);

#endif

/* plugins/runtime-runc/ops.c — the vtable (kubus/runtime.h).
 *
 * create: bundle dir, overlay rootfs, config.json, meta.json.
 * start:  spawn kubus-runc-shim (it runs `runc run` and outlives us), wait
 *         for its `started` (or `exit`) file.
 * status: files and /proc only — no fork of runc.
 * stop:   kill(2) the verified init pid (what `runc kill` does, without
 *         the fork), wait for `exit`, then SIGKILL.
 * remove: `runc delete --force` only if runc still has state for it,
 *         unmount, remove the bundle (never the log). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "rr.h"

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif

extern char **environ;

static int rr_info(void *rt, struct kb_rt_info *out)
{
	struct rr *r = rt;
	if (KB_RT_HAS(out, name))
		snprintf(out->name, sizeof(out->name), "%s", r->runc_name);
	if (KB_RT_HAS(out, version))
		snprintf(out->version, sizeof(out->version), "%s", r->version);
	return 0;
}

/* --- sandboxes ------------------------------------------------------------ */

/* ips[0].address of a CNI result ("10.22.0.5/24"), without the prefix. */
static void cni_ip(const char *result, char *ip, size_t len)
{
	*ip = '\0';
	if (result == NULL)
		return;
	json_error_t je;
	json_t *o = json_loads(result, 0, &je);
	const char *a = json_string_value(
	    json_object_get(json_array_get(json_object_get(o, "ips"), 0),
		"address"));
	if (a)
		snprintf(ip, len, "%.*s", (int)strcspn(a, "/"), a);
	json_decref(o);
}

static int rr_sandbox_create(void *rt, const struct kb_rt_sandbox_spec *spec,
    struct kb_rt_sandbox *out)
{
	struct rr *r = rt;
	if (spec == NULL || spec->uid == NULL || *spec->uid == '\0') {
		kb_error(r->ctx, "sandbox without a pod uid", NULL);
		return KB_EINVAL;
	}
	struct rr_sandbox sb = { 0 };
	rr_random_id(sb.id, sizeof(sb.id));
	snprintf(sb.uid, sizeof(sb.uid), "%s", spec->uid);
	snprintf(sb.ns, sizeof(sb.ns), "%s", spec->ns ? spec->ns : "");
	snprintf(sb.name, sizeof(sb.name), "%s", spec->name ? spec->name : "");
	const char *hn = KB_RT_HAS(spec, hostname) && spec->hostname &&
		*spec->hostname ?
	    spec->hostname :
	    sb.name;
	/* A hostname is at most 63 characters (a DNS label). */
	snprintf(sb.hostname, sizeof(sb.hostname), "%.63s",
	    *hn ? hn : "localhost");
	sb.host_network = KB_RT_HAS(spec, host_network) && spec->host_network;
	if (KB_RT_HAS(spec, netns_path) && spec->netns_path) {
		if (spec->netns_path[0] != '/') {
			kb_error(r->ctx, "netns path is not absolute",
			    "path=%s", spec->netns_path);
			return KB_EINVAL;
		}
		snprintf(sb.netns, sizeof(sb.netns), "%s", spec->netns_path);
	}
	if (KB_RT_HAS(spec, cni_result))
		cni_ip(spec->cni_result, sb.ip, sizeof(sb.ip));
	int rc;
	if (*sb.netns == '\0' && !sb.host_network) {
		/* No networking from the kubelet: a namespace of the pod's
		 * own (loopback only), shared by its containers. */
		snprintf(sb.netns, sizeof(sb.netns), "%s/netns/%s",
		    r->state_dir, sb.id);
		if ((rc = rr_netns_make(sb.netns)) != 0) {
			kb_error(r->ctx,
			    "cannot make the pod's network "
			    "namespace",
			    "path=%s err=\"%s\"", sb.netns, strerror(errno));
			return rc;
		}
		sb.own_netns = true;
	}
	sb.created_ms = rr_now_ms();
	rc = rr_sandbox_save(r, &sb);
	if (rc) {
		kb_error(r->ctx, "cannot write the sandbox state", "dir=%s",
		    r->state_dir);
		if (sb.own_netns)
			rr_netns_remove(sb.netns);
		return rc;
	}
	snprintf(out->id, sizeof(out->id), "%s", sb.id);
	if (KB_RT_HAS(out, ip))
		snprintf(out->ip, sizeof(out->ip), "%s", sb.ip);
	return 0;
}

/* Call fn for every container dir with a readable meta.json. */
static void each_container(struct rr *r,
    void (*fn)(struct rr *r, const struct rr_meta *m, void *arg), void *arg)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/containers", r->state_dir);
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !rr_valid_id(e->d_name))
			continue;
		struct rr_meta m;
		if (rr_meta_load(r, e->d_name, &m) == 0)
			fn(r, &m, arg);
	}
	closedir(d);
}

static int rr_container_stop(void *rt, const char *id, int sig,
    int64_t timeout_ms);
static int rr_container_remove(void *rt, const char *id);

static void remove_if_in(struct rr *r, const struct rr_meta *m, void *arg)
{
	if (strcmp(m->sandbox_id, (const char *)arg))
		return;
	rr_container_stop(r, m->id, SIGKILL, 0);
	rr_container_remove(r, m->id);
}

static int rr_sandbox_remove(void *rt, const char *sandbox_id)
{
	struct rr *r = rt;
	struct rr_sandbox sb;
	int rc = rr_sandbox_load(r, sandbox_id, &sb);
	if (rc == KB_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	each_container(r, remove_if_in, (void *)sandbox_id);
	char cg[KB_RT_PATH_MAX];
	snprintf(cg, sizeof(cg), "%s/%s", r->cgroup_parent, sb.uid);
	rr_cgroup_rmdir_all(cg);
	if (sb.own_netns)
		rr_netns_remove(sb.netns);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/sandboxes/%s.json", r->state_dir,
	    sandbox_id);
	if (unlink(path) != 0 && errno != ENOENT)
		return KB_ESYS;
	return 0;
}

static int rr_image_present_op(void *rt, const char *image, bool *present)
{
	return rr_image_present(rt, image, present);
}

/* --- containers ------------------------------------------------------------ */

static bool overlay_mounted(const char *dir)
{
	struct statfs s;
	return statfs(dir, &s) == 0 && s.f_type == OVERLAYFS_SUPER_MAGIC;
}

static int overlay_mount(struct rr *r, const char *id, const char *lower)
{
	char cdir[PATH_MAX], opts[3 * PATH_MAX + 64], target[PATH_MAX];
	rr_cdir(r, id, NULL, cdir, sizeof(cdir));
	rr_cdir(r, id, "rootfs", target, sizeof(target));
	if (overlay_mounted(target))
		return 0;
	if (strpbrk(lower, ",:")) {
		kb_error(r->ctx, "image rootfs path holds ',' or ':'",
		    "path=%s", lower);
		return KB_EINVAL;
	}
	int n = snprintf(opts, sizeof(opts),
	    "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, cdir, cdir);
	if (n >= 4000) {
		kb_error(r->ctx, "overlay options too long", "len=%d", n);
		return KB_EINVAL;
	}
	if (mount("overlay", target, "overlay", 0, opts) != 0) {
		kb_error(r->ctx, "cannot mount the container's overlay",
		    "target=%s err=\"%s\"", target, strerror(errno));
		return KB_ESYS;
	}
	return 0;
}

static void overlay_unmount(struct rr *r, const char *id)
{
	char target[PATH_MAX];
	rr_cdir(r, id, "rootfs", target, sizeof(target));
	for (int i = 0; i < 8 && overlay_mounted(target); i++)
		if (umount2(target, MNT_DETACH) != 0)
			break;
}

static int rr_container_create(void *rt,
    const struct kb_rt_container_spec *spec, char *id, size_t idlen)
{
	struct rr *r = rt;
	char err[512] = "";
	if (spec == NULL || spec->name == NULL || *spec->name == '\0' ||
	    spec->image == NULL || *spec->image == '\0') {
		kb_error(r->ctx, "container spec without a name or image",
		    NULL);
		return KB_EINVAL;
	}
	struct rr_sandbox sb;
	int rc = rr_sandbox_load(r, spec->sandbox_id, &sb);
	if (rc) {
		kb_error(r->ctx, "no such sandbox", "sandbox=%s",
		    spec->sandbox_id ? spec->sandbox_id : "");
		return rc;
	}
	struct rr_image img;
	rc = rr_image_resolve(r, spec->image, &img, err, sizeof(err));
	if (rc) {
		kb_error(r->ctx, "cannot resolve the image",
		    "image=%s err=\"%s\"", spec->image, err);
		return rc;
	}
	struct rr_meta m = { 0 };
	rr_random_id(m.id, sizeof(m.id));
	char *text = rr_spec_build(r, spec, &sb, &img, m.id, err, sizeof(err));
	if (text == NULL) {
		kb_error(r->ctx, "cannot run this container",
		    "container=%s err=\"%s\"", spec->name, err);
		rr_image_free(&img);
		return KB_EINVAL;
	}
	snprintf(m.sandbox_id, sizeof(m.sandbox_id), "%s", sb.id);
	snprintf(m.pod_uid, sizeof(m.pod_uid), "%s",
	    spec->pod_uid && *spec->pod_uid ? spec->pod_uid : sb.uid);
	snprintf(m.name, sizeof(m.name), "%s", spec->name);
	snprintf(m.image, sizeof(m.image), "%s", spec->image);
	snprintf(m.image_id, sizeof(m.image_id), "%s", img.digest);
	if (KB_RT_HAS(spec, log_path) && spec->log_path)
		snprintf(m.log_path, sizeof(m.log_path), "%s", spec->log_path);
	m.attempt = spec->attempt;
	m.init = spec->init;
	m.created_ms = rr_now_ms();
	char cdir[PATH_MAX], p[PATH_MAX];
	rr_cdir(r, m.id, NULL, cdir, sizeof(cdir));
	rc = KB_ESYS;
	if (rr_mkdirs(cdir, 0700) != 0)
		goto out_fail;
	const char *subs[] = { "rootfs", "upper", "work" };
	for (size_t i = 0; i < 3; i++) {
		rr_cdir(r, m.id, subs[i], p, sizeof(p));
		if (mkdir(p, 0755) != 0)
			goto out_rm;
	}
	rr_cdir(r, m.id, "config.json", p, sizeof(p));
	if (rr_write_atomic(p, text, strlen(text)) != 0)
		goto out_rm;
	if ((rc = overlay_mount(r, m.id, img.rootfs)) != 0)
		goto out_rm;
	/* meta.json last: a container is listed only once it is whole. */
	if ((rc = rr_meta_save(r, &m)) != 0)
		goto out_umount;
	free(text);
	rr_image_free(&img);
	snprintf(id, idlen, "%s", m.id);
	return 0;
out_umount:
	overlay_unmount(r, m.id);
out_rm:
	rr_rmrf(cdir);
out_fail:
	if (rc == KB_ESYS)
		kb_error(r->ctx, "cannot make the container's bundle",
		    "dir=%s err=\"%s\"", cdir, strerror(errno));
	free(text);
	rr_image_free(&img);
	return rc;
}

/* "pid starttime [ms]" files. */
static int read_pidrec(const char *path, pid_t *pid, uint64_t *st, int64_t *ms)
{
	char *t = rr_slurp(path, NULL);
	if (t == NULL)
		return -1;
	int p = 0;
	unsigned long long s = 0;
	long long m = 0;
	int n = sscanf(t, "%d %llu %lld", &p, &s, &m);
	free(t);
	if (n < 2 || p <= 0)
		return -1;
	*pid = p;
	*st = s;
	if (ms)
		*ms = n >= 3 ? m : 0;
	return 0;
}

struct exitrec {
	int code;
	int64_t finished_ms;
	char reason[KB_RT_REASON_MAX];
	char message[KB_RT_MESSAGE_MAX];
};

static int read_exit(struct rr *r, const char *id, struct exitrec *e)
{
	char path[PATH_MAX];
	rr_cdir(r, id, "exit", path, sizeof(path));
	char *t = rr_slurp(path, NULL);
	if (t == NULL)
		return -1;
	memset(e, 0, sizeof(*e));
	long long f = 0;
	char reason[KB_RT_REASON_MAX] = "";
	int n = sscanf(t, "%d %lld %63s", &e->code, &f, reason);
	e->finished_ms = f;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	char *nl = strchr(t, '\n');
	if (nl) {
		nl++;
		snprintf(e->message, sizeof(e->message), "%.*s",
		    (int)strcspn(nl, "\n"), nl);
	}
	free(t);
	return n >= 2 ? 0 : -1;
}

static bool shim_alive(struct rr *r, const char *id)
{
	char path[PATH_MAX];
	rr_cdir(r, id, "shim", path, sizeof(path));
	pid_t pid;
	uint64_t st;
	return read_pidrec(path, &pid, &st, NULL) == 0 &&
	    rr_proc_alive(pid, st);
}

/* The shim is gone (killed, or the host rebooted) and so is the
 * container: record an exit nobody saw. */
static void write_lost_exit(struct rr *r, const char *id)
{
	char path[PATH_MAX], rec[256];
	rr_cdir(r, id, "exit", path, sizeof(path));
	int n = snprintf(rec, sizeof(rec),
	    "255 %lld Unknown\nthe container's monitor (kubus-runc-shim) "
	    "died; its exit code is unknown\n",
	    (long long)rr_now_ms());
	rr_write_atomic(path, rec, (size_t)n);
}

struct cstate {
	int state;
	pid_t pid;
	uint64_t starttime;
	int64_t started_ms;
	struct exitrec exit;
};

/* Where a container is, from its files and /proc. */
static void current(struct rr *r, const char *id, struct cstate *cs)
{
	memset(cs, 0, sizeof(*cs));
	char path[PATH_MAX];
	rr_cdir(r, id, "started", path, sizeof(path));
	bool started =
	    read_pidrec(path, &cs->pid, &cs->starttime, &cs->started_ms) == 0;
	if (read_exit(r, id, &cs->exit) == 0) {
		cs->state = KB_RT_EXITED;
		return;
	}
	if (!started) {
		/* Not started, or the shim is between spawn and pid file;
		 * unless the shim died on the way. */
		rr_cdir(r, id, "shim", path, sizeof(path));
		if (access(path, F_OK) == 0 && !shim_alive(r, id) &&
		    read_exit(r, id, &cs->exit) != 0) {
			write_lost_exit(r, id);
			if (read_exit(r, id, &cs->exit) == 0) {
				cs->state = KB_RT_EXITED;
				return;
			}
		}
		cs->state = KB_RT_CREATED;
		return;
	}
	if (rr_proc_alive(cs->pid, cs->starttime)) {
		cs->state = KB_RT_RUNNING;
		return;
	}
	/* The init is gone: the shim writes `exit` in a moment. */
	char cdir[PATH_MAX];
	rr_cdir(r, id, NULL, cdir, sizeof(cdir));
	for (int i = 0; i < 2; i++) {
		if (!shim_alive(r, id))
			break;
		rr_wait_files(cdir, "exit", NULL, 1000);
		if (read_exit(r, id, &cs->exit) == 0) {
			cs->state = KB_RT_EXITED;
			return;
		}
	}
	if (read_exit(r, id, &cs->exit) != 0) {
		if (shim_alive(r, id)) {
			cs->state = KB_RT_RUNNING; /* still draining */
			return;
		}
		write_lost_exit(r, id);
		read_exit(r, id, &cs->exit);
	}
	cs->state = KB_RT_EXITED;
}

static int rr_container_start(void *rt, const char *id)
{
	struct rr *r = rt;
	struct rr_meta m;
	int rc = rr_meta_load(r, id, &m);
	if (rc)
		return rc;
	struct cstate cs;
	current(r, id, &cs);
	char cdir[PATH_MAX], p[PATH_MAX];
	rr_cdir(r, id, NULL, cdir, sizeof(cdir));
	rr_cdir(r, id, "shim", p, sizeof(p));
	if (cs.state != KB_RT_CREATED || access(p, F_OK) == 0) {
		kb_error(r->ctx, "container was already started", "id=%s", id);
		return KB_ESTATE;
	}
	/* After a reboot the overlay is gone: mount it again. */
	rr_cdir(r, id, "rootfs", p, sizeof(p));
	if (!overlay_mounted(p)) {
		struct rr_image img;
		char err[512];
		if ((rc = rr_image_resolve(r, m.image, &img, err,
			 sizeof(err))) != 0) {
			kb_error(r->ctx, "cannot resolve the image",
			    "image=%s err=\"%s\"", m.image, err);
			return rc;
		}
		rc = overlay_mount(r, id, img.rootfs);
		rr_image_free(&img);
		if (rc)
			return rc;
	}
	char podcg[KB_RT_PATH_MAX];
	snprintf(podcg, sizeof(podcg), "%s/%s", r->cgroup_parent, m.pod_uid);
	const char *argv[] = { r->shim, r->runc, r->root, cdir, id, m.log_path,
		podcg, NULL };
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	pid_t pid;
	int e =
	    posix_spawn(&pid, r->shim, NULL, &at, (char *const *)argv, environ);
	posix_spawnattr_destroy(&at);
	if (e != 0) {
		kb_error(r->ctx, "cannot start the shim", "shim=%s err=\"%s\"",
		    r->shim, strerror(e));
		return KB_ESYS;
	}
	/* It forks the real shim and exits at once. */
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		kb_error(r->ctx, "the shim failed to detach", "status=%d", ws);
		return KB_ESYS;
	}
	int which = rr_wait_files(cdir, "started", "exit", 60000);
	if (which == 0) {
		kb_error(r->ctx, "container did not start within 60 s", "id=%s",
		    id);
		return KB_ETIMEOUT;
	}
	if (which == 2) {
		struct exitrec ex;
		if (read_exit(r, id, &ex) == 0 &&
		    !strcmp(ex.reason, "ContainerCannotRun")) {
			kb_error(r->ctx, "container cannot run",
			    "id=%s err=\"%s\"", id, ex.message);
			return KB_ESYS;
		}
	}
	return 0;
}

static int wait_exit(struct rr *r, const char *id, int64_t ms)
{
	char cdir[PATH_MAX];
	rr_cdir(r, id, NULL, cdir, sizeof(cdir));
	if (rr_wait_files(cdir, "exit", NULL, ms))
		return 0;
	struct cstate cs;
	current(r, id, &cs); /* a dead shim: writes the exit itself */
	return cs.state == KB_RT_EXITED ? 0 : -1;
}

static int rr_container_stop(void *rt, const char *id, int sig,
    int64_t timeout_ms)
{
	struct rr *r = rt;
	struct rr_meta m;
	int rc = rr_meta_load(r, id, &m);
	if (rc)
		return rc;
	struct cstate cs;
	current(r, id, &cs);
	if (cs.state != KB_RT_RUNNING)
		return 0;
	if (sig <= 0 || sig >= 65)
		sig = SIGTERM;
	if (sig != SIGKILL && timeout_ms > 0) {
		if (rr_proc_alive(cs.pid, cs.starttime))
			kill(cs.pid, sig);
		if (wait_exit(r, id, timeout_ms) == 0)
			return 0;
	}
	if (rr_proc_alive(cs.pid, cs.starttime))
		kill(cs.pid, SIGKILL);
	if (wait_exit(r, id, 10000) == 0)
		return 0;
	kb_error(r->ctx, "container did not exit after SIGKILL", "id=%s", id);
	return KB_ETIMEOUT;
}

static int rr_container_remove(void *rt, const char *id)
{
	struct rr *r = rt;
	if (!rr_valid_id(id))
		return 0;
	char cdir[PATH_MAX], p[PATH_MAX];
	rr_cdir(r, id, NULL, cdir, sizeof(cdir));
	if (access(cdir, F_OK) != 0)
		return 0;
	struct cstate cs;
	current(r, id, &cs);
	if (cs.state == KB_RT_RUNNING)
		rr_container_stop(r, id, SIGKILL, 0);
	/* `runc run` deletes its container when it returns; only a shim
	 * that died leaves runc state behind. */
	snprintf(p, sizeof(p), "%s/%s", r->root, id);
	if (access(p, F_OK) == 0) {
		const char *argv[] = { r->runc, "--root", r->root, "delete",
			"--force", id, NULL };
		int ws = 0;
		char out[512];
		if (rr_run(argv, 10000, &ws, out, sizeof(out), NULL) != 0 ||
		    !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
			kb_warn(r->ctx, "runc delete failed",
			    "id=%s out=\"%s\"", id, out);
	}
	overlay_unmount(r, id);
	if (rr_rmrf(cdir) != 0) {
		kb_error(r->ctx, "cannot remove the bundle",
		    "dir=%s err=\"%s\"", cdir, strerror(errno));
		return KB_ESYS;
	}
	return 0;
}

static int rr_container_status(void *rt, const char *id,
    struct kb_rt_container_status *out)
{
	struct rr *r = rt;
	struct rr_meta m;
	int rc = rr_meta_load(r, id, &m);
	if (rc)
		return rc;
	struct cstate cs;
	current(r, id, &cs);
	out->state = cs.state;
	if (KB_RT_HAS(out, created_ms))
		out->created_ms = m.created_ms;
	if (KB_RT_HAS(out, started_ms))
		out->started_ms = cs.started_ms;
	if (KB_RT_HAS(out, image_id))
		snprintf(out->image_id, sizeof(out->image_id), "%s",
		    m.image_id);
	if (KB_RT_HAS(out, pid))
		out->pid = cs.state == KB_RT_RUNNING ? cs.pid : 0;
	if (cs.state == KB_RT_EXITED) {
		out->exit_code = cs.exit.code;
		if (KB_RT_HAS(out, finished_ms))
			out->finished_ms = cs.exit.finished_ms;
		if (KB_RT_HAS(out, reason))
			snprintf(out->reason, sizeof(out->reason), "%s",
			    cs.exit.reason);
		if (KB_RT_HAS(out, message))
			snprintf(out->message, sizeof(out->message), "%s",
			    cs.exit.message);
	} else {
		out->exit_code = 0;
		if (KB_RT_HAS(out, reason))
			out->reason[0] = '\0';
		if (KB_RT_HAS(out, message))
			out->message[0] = '\0';
		if (KB_RT_HAS(out, finished_ms))
			out->finished_ms = 0;
	}
	return 0;
}

/* Container dirs without meta.json are what a crash in the middle of
 * container_create left: unmount and remove them (at init only, when no
 * create of this state dir runs). */
void rr_sweep_partial(struct rr *r)
{
	char dir[PATH_MAX], meta[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/containers", r->state_dir);
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !rr_valid_id(e->d_name))
			continue;
		rr_cdir(r, e->d_name, "meta.json", meta, sizeof(meta));
		if (access(meta, F_OK) == 0)
			continue;
		char cdir[PATH_MAX];
		rr_cdir(r, e->d_name, NULL, cdir, sizeof(cdir));
		overlay_unmount(r, e->d_name);
		rr_rmrf(cdir);
		kb_warn(r->ctx, "removed a half-created container", "dir=%s",
		    cdir);
	}
	closedir(d);
}

/* --- listing --------------------------------------------------------------- */

static int rr_sandbox_list(void *rt,
    void (*fn)(void *arg, const struct kb_rt_sandbox_info *sb), void *arg)
{
	struct rr *r = rt;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/sandboxes", r->state_dir);
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : KB_ESYS;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n <= 5 || strcmp(e->d_name + n - 5, ".json"))
			continue;
		char id[KB_RT_ID_MAX];
		snprintf(id, sizeof(id), "%.*s", (int)(n - 5), e->d_name);
		struct rr_sandbox sb;
		if (rr_sandbox_load(r, id, &sb) != 0)
			continue;
		struct kb_rt_sandbox_info info = { .size = sizeof(info) };
		snprintf(info.id, sizeof(info.id), "%s", sb.id);
		snprintf(info.pod_uid, sizeof(info.pod_uid), "%s", sb.uid);
		snprintf(info.ns, sizeof(info.ns), "%s", sb.ns);
		snprintf(info.name, sizeof(info.name), "%s", sb.name);
		snprintf(info.ip, sizeof(info.ip), "%s", sb.ip);
		fn(arg, &info);
	}
	closedir(d);
	return 0;
}

struct list_arg {
	void (*fn)(void *arg, const struct kb_rt_container_info *c);
	void *arg;
};

static void list_one(struct rr *r, const struct rr_meta *m, void *arg)
{
	struct list_arg *la = arg;
	struct kb_rt_container_info info = { .size = sizeof(info) };
	snprintf(info.id, sizeof(info.id), "%s", m->id);
	snprintf(info.sandbox_id, sizeof(info.sandbox_id), "%s", m->sandbox_id);
	snprintf(info.pod_uid, sizeof(info.pod_uid), "%s", m->pod_uid);
	snprintf(info.name, sizeof(info.name), "%s", m->name);
	info.attempt = m->attempt;
	info.init = m->init;
	struct cstate cs;
	current(r, m->id, &cs);
	info.state = cs.state;
	la->fn(la->arg, &info);
}

static int rr_container_list(void *rt,
    void (*fn)(void *arg, const struct kb_rt_container_info *c), void *arg)
{
	struct list_arg la = { fn, arg };
	each_container(rt, list_one, &la);
	return 0;
}

/* --- exec ------------------------------------------------------------------ */

static int rr_exec_sync(void *rt, const char *id, const char *const *argv,
    int64_t timeout_ms, int *exit_code, char *out, size_t outlen)
{
	struct rr *r = rt;
	if (out && outlen)
		*out = '\0';
	if (argv == NULL || argv[0] == NULL || *argv[0] == '\0')
		return KB_EINVAL;
	struct rr_meta m;
	int rc = rr_meta_load(r, id, &m);
	if (rc)
		return rc;
	struct cstate cs;
	current(r, id, &cs);
	if (cs.state != KB_RT_RUNNING)
		return KB_ESTATE;
	size_t n = 0;
	while (argv[n])
		n++;
	const char **av = calloc(n + 9, sizeof(*av));
	if (av == NULL)
		return KB_ENOMEM;
	char pidf[PATH_MAX], tag[40];
	rr_random_id(tag, 9);
	rr_cdir(r, id, NULL, pidf, sizeof(pidf));
	size_t dl = strlen(pidf);
	snprintf(pidf + dl, sizeof(pidf) - dl, "/exec-%s.pid", tag);
	size_t k = 0;
	av[k++] = r->runc;
	av[k++] = "--root";
	av[k++] = r->root;
	av[k++] = "exec";
	av[k++] = "--pid-file";
	av[k++] = pidf;
	av[k++] = id;
	for (size_t i = 0; i < n; i++)
		av[k++] = argv[i];
	av[k] = NULL;
	int ws = 0;
	pid_t child = -1;
	rc = rr_run(av, timeout_ms > 0 ? timeout_ms : 0, &ws, out, outlen,
	    &child);
	free(av);
	if (rc == KB_ETIMEOUT) {
		/* Kill what runs in the container, then runc exec itself. */
		pid_t p;
		uint64_t st;
		char *t = rr_slurp(pidf, NULL);
		if (t) {
			p = (pid_t)strtol(t, NULL, 10);
			free(t);
			st = rr_proc_starttime(p);
			if (p > 0 && st)
				kill(p, SIGKILL);
		}
		for (int i = 0; i < 200; i++) {
			if (waitpid(child, &ws, WNOHANG) == child) {
				child = -1;
				break;
			}
			rr_sleep_ms(10);
		}
		if (child > 0) {
			kill(child, SIGKILL);
			waitpid(child, &ws, 0);
		}
		unlink(pidf);
		return KB_ETIMEOUT;
	}
	unlink(pidf);
	if (rc)
		return rc;
	*exit_code = WIFEXITED(ws) ? WEXITSTATUS(ws) :
	    WIFSIGNALED(ws)        ? 128 + WTERMSIG(ws) :
				     255;
	return 0;
}

const struct kb_runtime_ops rr_ops = {
	.size = sizeof(struct kb_runtime_ops),
	.info = rr_info,
	.sandbox_create = rr_sandbox_create,
	.sandbox_remove = rr_sandbox_remove,
	.image_present = rr_image_present_op,
	.container_create = rr_container_create,
	.container_start = rr_container_start,
	.container_stop = rr_container_stop,
	.container_remove = rr_container_remove,
	.container_status = rr_container_status,
	.sandbox_list = rr_sandbox_list,
	.container_list = rr_container_list,
	.exec_sync = rr_exec_sync,
};
